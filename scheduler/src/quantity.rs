//! Resource quantities (`100m`, `1Gi`, `1e3`) as integers, like
//! apimachinery's `resource.Quantity` `MilliValue()` and `Value()`.

/// A parsed quantity, kept in nano-units so every suffix is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    nanos: i128,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses the Kubernetes quantity grammar; `None` when malformed or
    /// out of range.
    pub fn parse(s: &str) -> Option<Quantity> {
        let s = s.trim();
        if s.is_empty() {
            return None;
        }
        let (negative, rest) = match s.as_bytes()[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, suffix) = rest.split_at(num_end);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        // value = digits * 10^(-frac_len), scaled by the suffix.
        let mut digits: i128 = 0;
        for c in int_part.chars().chain(frac_part.chars()) {
            digits = digits.checked_mul(10)?.checked_add(i128::from(c.to_digit(10)?))?;
        }
        let mut exp10: i32 = -(frac_part.len() as i32);
        let mut binary: i128 = 1;
        match suffix {
            "" => {}
            "n" => exp10 -= 9,
            "u" => exp10 -= 6,
            "m" => exp10 -= 3,
            "k" => exp10 += 3,
            "M" => exp10 += 6,
            "G" => exp10 += 9,
            "T" => exp10 += 12,
            "P" => exp10 += 15,
            "E" => exp10 += 18,
            "Ki" => binary = 1 << 10,
            "Mi" => binary = 1 << 20,
            "Gi" => binary = 1 << 30,
            "Ti" => binary = 1 << 40,
            "Pi" => binary = 1 << 50,
            "Ei" => binary = 1 << 60,
            other => {
                let e = other.strip_prefix('e').or_else(|| other.strip_prefix('E'))?;
                exp10 += e.parse::<i32>().ok().filter(|e| e.abs() <= 30)?;
            }
        }
        // nanos = digits * binary * 10^(exp10 + 9), rounded up.
        let mut nanos = digits.checked_mul(binary)?;
        let shift = exp10 + 9;
        if shift >= 0 {
            nanos = nanos.checked_mul(10i128.checked_pow(shift as u32)?)?;
        } else {
            let div = 10i128.checked_pow((-shift) as u32)?;
            nanos = (nanos + div - 1) / div;
        }
        Some(Quantity {
            nanos: if negative { -nanos } else { nanos },
        })
    }

    /// The value in thousandths, rounded up (`MilliValue`).
    pub fn milli_value(&self) -> i64 {
        clamp(div_ceil(self.nanos, NANO / 1000))
    }

    /// The value rounded up to an integer (`Value`).
    pub fn value(&self) -> i64 {
        clamp(div_ceil(self.nanos, NANO))
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b > 0 { q + 1 } else { q }
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::Quantity;

    fn check(s: &str, milli: i64, value: i64) {
        let q = Quantity::parse(s).unwrap_or_else(|| panic!("{s} parses"));
        assert_eq!((q.milli_value(), q.value()), (milli, value), "{s}");
    }

    #[test]
    fn parses_suffixes() {
        check("100m", 100, 1);
        check("1", 1000, 1);
        check("1.5", 1500, 2);
        check("2k", 2_000_000, 2000);
        check("1Ki", 1_024_000, 1024);
        check("1Gi", 1_073_741_824_000, 1_073_741_824);
        check("200Mi", 209_715_200_000, 209_715_200);
        check("1e3", 1_000_000, 1000);
        check("0.1", 100, 1);
        check("1n", 1, 1);
        check("-1", -1000, -1);
        for bad in ["", "m", "1.2.3", "1Qi", "abc", "1e99"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
    }
}
