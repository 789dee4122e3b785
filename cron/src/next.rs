//! The next activation of a schedule in a time zone. When both day fields
//! are restricted a day matching either runs (Vixie cron's rule, kept by
//! robfig).

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

use crate::parse::{Schedule, Spec};

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
                t = first.to_datetime(Time::midnight());
                continue;
            }
            if !spec.day_matches(t.date()) {
                t = t.date().tomorrow().ok()?.to_datetime(Time::midnight());
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
    use crate::{load_time_zone, parse};

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
            // `*/1` is still a star; `*/2` restricts the day of week.
            ("0 0 13 * */1", "2024-01-01T00:00:00Z", "2024-01-13T00:00:00Z"),
            ("0 0 13 * */2", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
        ] {
            assert_eq!(next(spec, after).as_deref(), Some(want), "{spec} after {after}");
        }
        assert_eq!(next("0 0 30 2 *", "2024-01-01T00:00:00Z"), None);
    }

    #[test]
    fn time_zones_shift_the_schedule() {
        let (s, zone) = parse("TZ=UTC 0 9 * * *").unwrap();
        assert_eq!(zone.as_deref(), Some("UTC"));
        let Ok(tz) = load_time_zone("America/New_York") else {
            return; // no zoneinfo on this host
        };
        // 09:00 in New York in January is 14:00 UTC.
        let got = s.next("2024-01-10T00:00:00Z".parse().unwrap(), &tz).unwrap();
        assert_eq!(got.to_string(), "2024-01-10T14:00:00Z");
        assert_eq!(civil(got, &tz).hour(), 9);
    }
}
