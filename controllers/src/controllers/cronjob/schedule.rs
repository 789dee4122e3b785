//! Cron schedules as upstream reads them (`robfig/cron/v3`'s
//! `ParseStandard`): five fields (minute, hour, day of month, month, day
//! of week) with `*`, `?`, lists, ranges, steps and month/day names, the
//! `@yearly`..`@hourly` descriptors and `@every <duration>`. When both day
//! fields are restricted a day matching either runs (Vixie cron's rule).
//! Times are computed in the CronJob's `timeZone` (system zoneinfo, like
//! Go's `time.LoadLocation`).
//!
//! No crate was used: the cron crates either require a seconds field and
//! number Sunday 1 (`cron`, `jiff-cron`) or bring chrono and its own time
//! zone tables (`croner`), while jiff is already here and robfig's exact
//! field rules are small.

use std::time::Duration;

use k8s_openapi::jiff::civil::{Date, DateTime};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan};

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Field bitsets.
    Spec(Spec),
    /// `@every <duration>` (rounded down to whole seconds, at least 1 s).
    Every(Duration),
}

/// Bitsets per field; `dom_star`/`dow_star` record a `*`/`?` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    minute: u64,
    hour: u64,
    dom: u64,
    month: u64,
    dow: u64,
    dom_star: bool,
    dow_star: bool,
}

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    name_base: u32,
}

const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
};
const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
};
const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    name_base: 1,
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    name_base: 0,
};

fn value(s: &str, b: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(u32::try_from(i).unwrap_or(0) + b.name_base);
    }
    s.parse::<u32>()
        .map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))
}

/// One comma-separated element; returns its bits and whether it was a
/// bare `*`/`?` (a step above 1 clears that, as robfig does).
fn range_bits(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => (r, Some(s)),
        None => (expr, None),
    };
    let (mut start, mut end, mut star) = if range == "*" || range == "?" {
        (b.min, b.max, true)
    } else {
        let parts: Vec<&str> = range.split('-').collect();
        match parts.as_slice() {
            [one] => {
                let v = value(one, b)?;
                (v, v, false)
            }
            [lo, hi] => (value(lo, b)?, value(hi, b)?, false),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let n = s
                .parse::<u32>()
                .map_err(|_| format!("failed to parse int from {s}: strconv.Atoi: parsing \"{s}\": invalid syntax"))?;
            if !range.contains('-') && !star {
                end = b.max;
            }
            if n > 1 {
                star = false;
            }
            n
        }
    };
    if start < b.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        ));
    }
    if end > b.max {
        return Err(format!("end of range ({end}) above maximum ({}): {expr}", b.max));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    let mut bits = 0u64;
    while start <= end {
        bits |= 1 << start;
        start += step;
    }
    Ok((bits, star))
}

fn field(s: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0;
    let mut star = false;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (b2, s2) = range_bits(part, b)?;
        bits |= b2;
        star |= s2;
    }
    Ok((bits, star))
}

/// Go's `time.ParseDuration` for what `@every` takes.
fn go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    Some(Duration::from_secs_f64(total))
}

/// Parses a schedule; a `TZ=`/`CRON_TZ=` prefix is returned as the zone.
pub fn parse(spec: &str) -> Result<(Schedule, Option<String>), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec.trim();
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(sp) = spec.find(' ') else {
            return Err(format!("provided bad location {}: unknown time zone", &spec[eq + 1..]));
        };
        zone = Some(spec[eq + 1..sp].to_string());
        spec = spec[sp..].trim();
    }
    let standard = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        s if s.starts_with("@every ") => {
            let d = go_duration(&s["@every ".len()..])
                .ok_or_else(|| format!("failed to parse duration {s}: time: invalid duration"))?;
            let secs = d.as_secs().max(1);
            return Ok((Schedule::Every(Duration::from_secs(secs)), zone));
        }
        s if s.starts_with('@') => return Err(format!("unrecognized descriptor: {s}")),
        s => s,
    };
    let fields: Vec<&str> = standard.split_whitespace().collect();
    let [mi, h, dom, mo, dow] = fields.as_slice() else {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    };
    let (minute, _) = field(mi, &MINUTE)?;
    let (hour, _) = field(h, &HOUR)?;
    let (dom, dom_star) = field(dom, &DOM)?;
    let (month, _) = field(mo, &MONTH)?;
    let (dow, dow_star) = field(dow, &DOW)?;
    Ok((
        Schedule::Spec(Spec {
            minute,
            hour,
            dom,
            month,
            dow,
            dom_star,
            dow_star,
        }),
        zone,
    ))
}

/// Go's `time.LoadLocation` over the system zoneinfo: `UTC`, `Local`
/// (`/etc/localtime`) or an IANA name.
pub fn load_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    let unknown = || format!("unknown time zone {name}");
    let path = if name == "Local" {
        std::path::PathBuf::from("/etc/localtime")
    } else {
        if name.starts_with('/') || name.split('/').any(|p| p.is_empty() || p == "." || p == "..") {
            return Err(unknown());
        }
        std::path::Path::new("/usr/share/zoneinfo").join(name)
    };
    match std::fs::read(&path) {
        Ok(data) => TimeZone::tzif(name, &data).map_err(|_| unknown()),
        Err(_) if name == "Local" => Ok(TimeZone::UTC),
        Err(_) => Err(unknown()),
    }
}

fn bit(set: u64, v: i8) -> bool {
    u8::try_from(v).is_ok_and(|v| set & (1 << v) != 0)
}

impl Spec {
    fn day_matches(&self, d: Date) -> bool {
        let dom = bit(self.dom, d.day());
        let dow = bit(self.dow, d.weekday().to_sunday_zero_offset());
        if self.dom_star || self.dow_star {
            dom && dow
        } else {
            dom || dow
        }
    }
}

impl Schedule {
    /// The first activation strictly after `after`, in `tz`; `None` if
    /// there is none within five years (e.g. `0 0 30 2 *`).
    pub fn next(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let spec = match self {
            Schedule::Every(d) => {
                // robfig: the next whole second plus the interval.
                let secs = i64::try_from(d.as_secs()).ok()?;
                return Timestamp::from_second(after.as_second().checked_add(secs)?).ok();
            }
            Schedule::Spec(s) => s,
        };
        let start = tz.to_datetime(after);
        // The next whole minute after `after`.
        let mut t = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = start.year().saturating_add(5);
        while t.year() <= limit {
            if !bit(spec.month, t.month()) {
                let first = Date::new(t.year(), t.month(), 1).ok()?.checked_add(1.month()).ok()?;
                t = first.to_datetime(k8s_openapi::jiff::civil::Time::midnight());
                continue;
            }
            if !spec.day_matches(t.date()) {
                t = t
                    .date()
                    .tomorrow()
                    .ok()?
                    .to_datetime(k8s_openapi::jiff::civil::Time::midnight());
                continue;
            }
            if !bit(spec.hour, t.hour()) {
                t = t.with().minute(0).build().ok()?.checked_add(1.hour()).ok()?;
                continue;
            }
            if !bit(spec.minute, t.minute()) {
                t = t.checked_add(1.minute()).ok()?;
                continue;
            }
            let ts = tz.to_ambiguous_timestamp(t).compatible().ok()?;
            if ts > after {
                return Some(ts);
            }
            t = t.checked_add(1.minute()).ok()?;
        }
        None
    }
}

/// A civil time in `tz` (for tests and messages).
pub fn civil(ts: Timestamp, tz: &TimeZone) -> DateTime {
    tz.to_datetime(ts)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn next(spec: &str, after: &str) -> Option<String> {
        let (s, _) = parse(spec).unwrap();
        s.next(after.parse().unwrap(), &TimeZone::UTC).map(|t| t.to_string())
    }

    #[test]
    fn standard_fields_and_descriptors() {
        for (spec, after, want) in [
            ("* * * * *", "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"),
            ("* * * * *", "2024-01-01T00:01:00Z", "2024-01-01T00:02:00Z"),
            ("*/15 * * * *", "2024-01-01T00:16:00Z", "2024-01-01T00:30:00Z"),
            ("5 4 * * *", "2024-01-01T05:00:00Z", "2024-01-02T04:05:00Z"),
            ("0 9-17/4 * * MON-fri", "2024-01-06T00:00:00Z", "2024-01-08T09:00:00Z"),
            ("0 0 1 jan,JUL *", "2024-02-01T00:00:00Z", "2024-07-01T00:00:00Z"),
            ("0 0 29 2 *", "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            ("@hourly", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"),
            ("@daily", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
            ("@weekly", "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"),
            ("@monthly", "2024-01-15T00:00:00Z", "2024-02-01T00:00:00Z"),
            ("@yearly", "2024-01-15T00:00:00Z", "2025-01-01T00:00:00Z"),
            ("@every 90s", "2024-01-01T00:00:00Z", "2024-01-01T00:01:30Z"),
            // Both day fields restricted: either matches (the 13th, or a Friday).
            ("0 0 13 * 5", "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"),
            ("0 0 13 * 5", "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"),
            // A star day-of-week: only the day of month counts.
            ("0 0 13 * ?", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"),
        ] {
            assert_eq!(next(spec, after).as_deref(), Some(want), "{spec} after {after}");
        }
        assert_eq!(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
    }

    #[test]
    fn errors_read_like_upstream() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
        assert_eq!(err("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(err("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(err("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let (s, zone) = parse("TZ=America/New_York 0 9 * * *").unwrap();
        assert_eq!(zone.as_deref(), Some("America/New_York"));
        let Ok(tz) = load_time_zone("America/New_York") else {
            return; // no zoneinfo on this host
        };
        // 09:00 in New York in January is 14:00 UTC.
        let got = s.next("2024-01-10T00:00:00Z".parse().unwrap(), &tz).unwrap();
        assert_eq!(got.to_string(), "2024-01-10T14:00:00Z");
        assert_eq!(civil(got, &tz).hour(), 9);
        assert!(load_time_zone("Not/AZone").is_err());
        assert!(load_time_zone("../etc/passwd").is_err());
        assert!(load_time_zone("UTC").is_ok());
    }
}
