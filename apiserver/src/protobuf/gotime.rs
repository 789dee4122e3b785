//! Go's `time` formats for `metav1.Time`, `MicroTime` and `Duration`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Unix seconds of Go's zero `time.Time` (year 1).
pub const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// `2006-01-02T15:04:05Z`, or with `.000000` for MicroTime (UTC).
pub fn format(seconds: i64, nanos: i32, micro: bool) -> Option<String> {
    let t = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micro {
        s.push_str(&format!(".{:06}", nanos.clamp(0, 999_999_999) / 1000));
    }
    s.push('Z');
    Some(s)
}

/// RFC 3339 -> (unix seconds, nanoseconds).
pub fn parse(s: &str) -> Option<(i64, i32)> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    Some((t.unix_timestamp(), t.nanosecond() as i32))
}

/// Go's `time.Duration.String` (`1h2m3.5s`, `150ms`, `0s`).
pub fn format_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Below a second: ns, µs or ms with a fraction.
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        out.push_str(&frac(u, scale));
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let rest = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&frac(rest, 1_000_000_000));
        out.push('s');
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// `v / scale` with the fraction's trailing zeros dropped.
fn frac(v: u64, scale: u64) -> String {
    let whole = v / scale;
    let mut f = v % scale;
    if f == 0 {
        return whole.to_string();
    }
    let mut digits = scale.to_string().len() - 1;
    while f.is_multiple_of(10) {
        f /= 10;
        digits -= 1;
    }
    format!("{whole}.{f:0digits$}")
}

/// Go's `time.ParseDuration` for what `format_duration` writes (and
/// sums of such units).
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * scale;
    }
    let total = total.round();
    if total > i64::MAX as f64 {
        return None;
    }
    Some(if neg { -(total as i64) } else { total as i64 })
}
