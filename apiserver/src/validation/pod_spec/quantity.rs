//! Resource quantities as comparable numbers (`resource.Quantity.Cmp`):
//! a quantity becomes an integer count of nano-units, saturating far beyond
//! anything a real request or limit holds. Syntax errors are the schema
//! decoder's business; here a malformed quantity is simply `None`.

/// Nano-units per unit.
const NANO: i128 = 1_000_000_000;

/// The value of `s` in nano-units, `None` when it is not a quantity.
pub fn nano_value(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    // Value = digits * 10^(exp10) * 2^(exp2), tracked in nano-units.
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        s if s.starts_with(['e', 'E']) => (s[1..].parse().ok()?, 0),
        _ => return None,
    };
    let mut digits: i128 = 0;
    for b in int_part.bytes().chain(frac_part.bytes()) {
        digits = digits.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    // digits carries frac_part.len() extra decimal places.
    let scale = exp10 + 9 - i32::try_from(frac_part.len()).ok()?;
    let mut value = if scale >= 0 {
        digits.saturating_mul(10i128.checked_pow(scale.unsigned_abs()).unwrap_or(i128::MAX))
    } else {
        // Rounded up, as upstream rounds sub-nano values up.
        let div = 10i128.checked_pow(scale.unsigned_abs()).unwrap_or(i128::MAX);
        (digits + div - 1) / div
    };
    value = value.saturating_mul(1i128 << exp2);
    Some(if negative { -value } else { value })
}

/// Compares two quantities; `None` when either is malformed.
pub fn cmp(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    Some(nano_value(a)?.cmp(&nano_value(b)?))
}

/// Whether a quantity is a whole number of units.
pub fn is_integer(s: &str) -> bool {
    nano_value(s).is_some_and(|v| v % NANO == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn compares_like_quantities() {
        assert_eq!(cmp("500m", "1"), Some(Ordering::Less));
        assert_eq!(cmp("1000m", "1"), Some(Ordering::Equal));
        assert_eq!(cmp("1Gi", "1G"), Some(Ordering::Greater));
        assert_eq!(cmp("1e3", "1k"), Some(Ordering::Equal));
        assert_eq!(cmp("1.5", "1500m"), Some(Ordering::Equal));
        assert_eq!(cmp("128Mi", "134217728"), Some(Ordering::Equal));
        assert_eq!(nano_value("-1"), Some(-NANO));
        assert_eq!(nano_value("1x"), None);
        assert!(is_integer("2") && !is_integer("1500m"));
    }
}
