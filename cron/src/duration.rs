//! Go's `time.ParseDuration`, for `@every <duration>` and for every
//! component's duration flags (`--leader-elect-lease-duration=15s`), with its
//! error messages.

use std::time::Duration;

/// Go's `time.quote`: ASCII printable as is (with `"` and `\` escaped),
/// every other byte as `\xNN`.
fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for &b in s.as_bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..0x80 => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

fn unit_seconds(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1e-9,
        "us" | "µs" | "μs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

/// Parses `orig` like Go; returns the sign (true if negative) and the
/// magnitude.
pub fn parse_go_duration(orig: &str) -> Result<(bool, Duration), String> {
    let invalid = || format!("time: invalid duration {}", quote(orig));
    let (neg, mut s) = match orig.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, orig.strip_prefix('+').unwrap_or(orig)),
    };
    if s == "0" {
        return Ok((false, Duration::ZERO));
    }
    if s.is_empty() {
        return Err(invalid());
    }
    let mut total = 0f64;
    while !s.is_empty() {
        let int_len = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (int, rest) = s.split_at(int_len);
        let (frac, rest) = match rest.strip_prefix('.') {
            Some(after) => {
                let n = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
                after.split_at(n)
            }
            None => ("", rest),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(rest.len());
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {}", quote(orig)));
        }
        let (unit, rest) = rest.split_at(unit_len);
        let Some(secs) = unit_seconds(unit) else {
            return Err(format!(
                "time: unknown unit {} in duration {}",
                quote(unit),
                quote(orig)
            ));
        };
        let n: f64 = format!("{}.{}", if int.is_empty() { "0" } else { int }, frac)
            .parse()
            .map_err(|_| invalid())?;
        total += n * secs;
        s = rest;
    }
    // Go counts nanoseconds in an int64.
    if total * 1e9 > 9.223_372_036_854_775e18 {
        return Err(invalid());
    }
    Ok((neg, Duration::from_secs_f64(total)))
}

/// A duration flag as Go's `flag.Duration` reads it (`1h30m`, `250ms`,
/// `0`), for a setting that cannot be negative: a negative value is refused
/// rather than taken as zero.
pub fn parse_flag_duration(s: &str) -> Result<Duration, String> {
    match parse_go_duration(s)? {
        (true, d) if !d.is_zero() => Err(format!("negative duration {} is not allowed", quote(s))),
        (_, d) => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_durations_refuse_negatives() {
        assert_eq!(parse_flag_duration("8760h0m0s"), Ok(Duration::from_secs(8760 * 3600)));
        assert_eq!(parse_flag_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_flag_duration("-0s"), Ok(Duration::ZERO));
        assert_eq!(
            parse_flag_duration("-1s").unwrap_err(),
            "negative duration \"-1s\" is not allowed"
        );
        assert_eq!(
            parse_flag_duration("15").unwrap_err(),
            "time: missing unit in duration \"15\""
        );
        assert!(parse_flag_duration("1e400s").is_err());
    }

    #[test]
    fn durations() {
        let ok = |s: &str| parse_go_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("0"), (false, Duration::ZERO));
        assert_eq!(ok("1h30m"), (false, Duration::from_secs(5400)));
        assert_eq!(ok("1.5s"), (false, Duration::from_millis(1500)));
        assert_eq!(ok(".5m"), (false, Duration::from_secs(30)));
        assert_eq!(ok("-2m"), (true, Duration::from_secs(120)));
        assert_eq!(ok("+100ms"), (false, Duration::from_millis(100)));
        let err = |s: &str| parse_go_duration(s).unwrap_err();
        assert_eq!(err(""), "time: invalid duration \"\"");
        assert_eq!(err("."), "time: invalid duration \".\"");
        assert_eq!(err("5"), "time: missing unit in duration \"5\"");
        assert_eq!(err("1.2.3s"), "time: missing unit in duration \"1.2.3s\"");
        assert_eq!(err("5d"), "time: unknown unit \"d\" in duration \"5d\"");
        assert_eq!(err("h"), "time: invalid duration \"h\"");
        assert_eq!(err("3000000h"), "time: invalid duration \"3000000h\"");
    }
}
