//! Just enough `resource.Quantity` for quota usage: parsing into
//! nano-units, adding, and printing in upstream's canonical form
//! (`0.5` is `500m`, `1024Mi` is `1Gi`).

use std::fmt;

const NANO: i128 = 1_000_000_000;

/// A quantity in nano-units, remembering whether it was written with a
/// binary suffix (so sums of `Mi` print as `Mi`/`Gi`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantity {
    pub nanos: i128,
    pub binary: bool,
}

impl Quantity {
    pub fn count(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            binary: false,
        }
    }

    /// Parses `123`, `1.5`, `500m`, `2Gi`, `1e3`; `None` if malformed.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        let (sign, body) = match s.as_bytes().first()? {
            b'-' => (-1, &s[1..]),
            b'+' => (1, &s[1..]),
            _ => (1, s),
        };
        let num_len = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if frac.contains('.') {
            return None;
        }
        // The number as an integer and a power-of-ten scale.
        let digits = format!("{int}{frac}");
        let mantissa: i128 = digits.parse().ok()?;
        let mut pow10: i32 = -i32::try_from(frac.len()).ok()?;
        let mut mult: i128 = 1;
        let binary = suffix.ends_with('i');
        match suffix {
            "" => {}
            "n" => pow10 -= 9,
            "u" => pow10 -= 6,
            "m" => pow10 -= 3,
            "k" => pow10 += 3,
            "M" => pow10 += 6,
            "G" => pow10 += 9,
            "T" => pow10 += 12,
            "P" => pow10 += 15,
            "E" => pow10 += 18,
            "Ki" => mult = 1 << 10,
            "Mi" => mult = 1 << 20,
            "Gi" => mult = 1 << 30,
            "Ti" => mult = 1 << 40,
            "Pi" => mult = 1 << 50,
            "Ei" => mult = 1 << 60,
            e if e.starts_with(['e', 'E']) => pow10 += e[1..].parse::<i32>().ok()?,
            _ => return None,
        }
        let mut nanos = mantissa.checked_mul(mult)?;
        let exp = pow10 + 9;
        if exp >= 0 {
            nanos = nanos.checked_mul(10i128.checked_pow(u32::try_from(exp).ok()?)?)?;
        } else {
            // Below a nano-unit rounds up, as upstream does.
            let div = 10i128.checked_pow(u32::try_from(-exp).ok()?)?;
            nanos = (nanos + div - 1) / div;
        }
        Some(Quantity {
            nanos: sign * nanos,
            binary,
        })
    }

    /// `q.Add(other)`: a zero quantity takes the other's format.
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            binary: if self.nanos == 0 { other.binary } else { self.binary },
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let nano = NANO.unsigned_abs();
        if self.binary && abs.is_multiple_of(nano) && abs >= 1024 * nano {
            let mut units = abs / nano;
            let mut power = 0;
            while power < 6 && units.is_multiple_of(1024) {
                units /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{sign}{units}{suffix}");
        }
        let mut mantissa = abs;
        let mut exponent = 0usize;
        while exponent < 9 && mantissa.is_multiple_of(1000) {
            mantissa /= 1000;
            exponent += 1;
        }
        let suffix = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"][exponent];
        write!(f, "{sign}{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check(input: &str, canonical: &str) {
        assert_eq!(Quantity::parse(input).unwrap().to_string(), canonical, "{input}");
    }

    #[test]
    fn canonical_forms() {
        check("0.5", "500m");
        check("100m", "100m");
        check("1024Mi", "1Gi");
        check("1536Mi", "1536Mi");
        check("1500", "1500");
        check("2000", "2k");
        check("1e3", "1k");
        check("1Gi", "1Gi");
        check("0", "0");
        assert!(Quantity::parse("abc").is_none());
        assert!(Quantity::parse("1.2.3").is_none());
        assert!(Quantity::parse("").is_none());
    }

    #[test]
    fn sums_keep_the_first_format() {
        let a = Quantity::parse("512Mi")
            .unwrap()
            .plus(Quantity::parse("512Mi").unwrap());
        assert_eq!(a.to_string(), "1Gi");
        let c = Quantity::default()
            .plus(Quantity::parse("250m").unwrap())
            .plus(Quantity::parse("1").unwrap());
        assert_eq!(c.to_string(), "1250m");
    }
}
