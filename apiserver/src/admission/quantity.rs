//! `resource.Quantity` arithmetic for admission: values in nano-units with
//! the format they were written in, added, subtracted, compared and printed
//! in upstream's canonical form (`Quantity.String()`: `0.5` is `500m`,
//! `1024Mi` is `1Gi`, `1500` stays `1500`), which LimitRanger's and
//! ResourceQuota's messages and quota usage show.

use std::cmp::Ordering;
use std::fmt;

use crate::validation::pod_spec::quantity::nano_value;

const NANO: i128 = 1_000_000_000;

/// How a quantity is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `k`, `M`, `m`, ... suffixes.
    DecimalSI,
    /// `Ki`, `Mi`, ... suffixes (integers of at least 1024 only).
    BinarySI,
    /// `e3` exponents.
    DecimalExponent,
}

/// A quantity: a value in nano-units and its format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    pub nanos: i128,
    pub format: Format,
}

impl Quantity {
    /// Zero, printed as `0`.
    pub const ZERO: Quantity = Quantity {
        nanos: 0,
        format: Format::DecimalSI,
    };

    /// Parses `s`; `None` when it is not a quantity.
    pub fn parse(s: &str) -> Option<Quantity> {
        let nanos = nano_value(s)?;
        let s = s.trim();
        let format = if s.ends_with('i') {
            Format::BinarySI
        } else if s.trim_start_matches(['+', '-']).contains(['e', 'E']) {
            Format::DecimalExponent
        } else {
            Format::DecimalSI
        };
        Some(Quantity { nanos, format })
    }

    /// A whole count (DecimalSI).
    pub fn count(n: i64) -> Quantity {
        Quantity {
            nanos: i128::from(n) * NANO,
            format: Format::DecimalSI,
        }
    }

    /// `q.Add(other)`: a zero quantity takes the other's format.
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_add(other.nanos),
            format: if self.nanos == 0 { other.format } else { self.format },
        }
    }

    /// `q.Sub(other)`.
    pub fn minus(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos.saturating_sub(other.nanos),
            format: if self.nanos == 0 { other.format } else { self.format },
        }
    }

    /// The value in milli-units, rounded up (`MilliValue`).
    pub fn milli_value(self) -> i128 {
        let m = 1_000_000;
        if self.nanos >= 0 {
            (self.nanos + m - 1) / m
        } else {
            self.nanos / m
        }
    }

    /// The value in units, rounded up (`Value`).
    pub fn value(self) -> i128 {
        if self.nanos >= 0 {
            (self.nanos + NANO - 1) / NANO
        } else {
            self.nanos / NANO
        }
    }

    pub fn is_zero(self) -> bool {
        self.nanos == 0
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    /// Upstream's canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let abs = self.nanos.unsigned_abs();
        let whole = abs.is_multiple_of(NANO as u128);
        if self.format == Format::BinarySI && whole && abs >= 1024 * NANO as u128 {
            let mut units = abs / NANO as u128;
            let mut power = 0;
            while power < 6 && units.is_multiple_of(1024) {
                units /= 1024;
                power += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][power];
            return write!(f, "{sign}{units}{suffix}");
        }
        // The largest exponent (a multiple of 3, from -9 to 18) that keeps
        // the mantissa whole.
        let mut mantissa = abs;
        let mut exponent = -9;
        while exponent < 18 && mantissa.is_multiple_of(1000) {
            mantissa /= 1000;
            exponent += 3;
        }
        let suffix = match (self.format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, e) => match e {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            }
            .to_string(),
        };
        write!(f, "{sign}{mantissa}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(s: &str) -> String {
        Quantity::parse(s)
            .map(|q| q.to_string())
            .unwrap_or_else(|| "<invalid>".into())
    }

    #[test]
    fn prints_the_canonical_form() {
        for (given, want) in [
            ("0", "0"),
            ("0.5", "500m"),
            ("1000m", "1"),
            ("1500", "1500"),
            ("2000", "2k"),
            ("1024Mi", "1Gi"),
            ("1.5Gi", "1536Mi"),
            ("512", "512"),
            ("1Ki", "1Ki"),
            ("100Mi", "100Mi"),
            ("1e3", "1e3"),
            ("1M", "1M"),
            ("-2", "-2"),
            ("250m", "250m"),
            ("0.1", "100m"),
            ("x", "<invalid>"),
        ] {
            assert_eq!(canonical(given), want, "{given}");
        }
    }

    #[test]
    fn arithmetic_keeps_formats() {
        let a = Quantity::parse("1Gi").unwrap();
        let b = Quantity::parse("512Mi").unwrap();
        assert_eq!(a.plus(b).to_string(), "1536Mi");
        assert_eq!(Quantity::ZERO.plus(b).to_string(), "512Mi");
        assert_eq!(a.minus(b).to_string(), "512Mi");
        assert!(b < a);
        assert_eq!(Quantity::parse("1.5").unwrap().milli_value(), 1500);
        assert_eq!(Quantity::parse("1.5").unwrap().value(), 2);
        assert_eq!(Quantity::count(3).to_string(), "3");
    }
}
