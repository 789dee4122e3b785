//! Ages as `kubectl get` shows them: upstream's `duration.HumanDuration`
//! (`k8s.io/apimachinery/pkg/util/duration`), about two significant figures.

use time::{Duration, OffsetDateTime};

const SECOND: i64 = 1_000_000_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;

/// Formats a duration like upstream's `HumanDuration`: `45s`, `5m12s`, `3h4m`,
/// `2d5h`, `89d`, `3y45d`. Up to one second in the future counts as `0s`
/// (clock skew); further in the future is `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    // Go's time.Duration is int64 nanoseconds and saturates on overflow.
    let nanos = i64::try_from(d.whole_nanoseconds()).unwrap_or(if d.is_negative() { i64::MIN } else { i64::MAX });
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of `timestamp` at `now` (upstream's `translateTimestampSince`):
/// `<unknown>` when the timestamp is unset.
pub fn since(timestamp: Option<OffsetDateTime>, now: OffsetDateTime) -> String {
    match timestamp {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(d: Duration, expected: &str) {
        assert_eq!(human_duration(d), expected, "for {d:?}");
    }

    #[test]
    fn human_duration_matches_upstream() {
        let cases: &[(Duration, &str)] = &[
            (Duration::seconds(-2), "<invalid>"),
            (Duration::milliseconds(-1999), "0s"),
            (Duration::milliseconds(-1), "0s"),
            (Duration::ZERO, "0s"),
            (Duration::milliseconds(999), "0s"),
            (Duration::seconds(1), "1s"),
            (Duration::seconds(45), "45s"),
            (Duration::seconds(119), "119s"),
            (Duration::seconds(120), "2m"),
            (Duration::seconds(5 * 60 + 12), "5m12s"),
            (Duration::seconds(9 * 60 + 59), "9m59s"),
            (Duration::minutes(10), "10m"),
            (Duration::minutes(179), "179m"),
            (Duration::minutes(180), "3h"),
            (Duration::minutes(3 * 60 + 4), "3h4m"),
            (Duration::minutes(7 * 60 + 59), "7h59m"),
            (Duration::hours(8), "8h"),
            (Duration::hours(47), "47h"),
            (Duration::hours(48), "2d"),
            (Duration::hours(2 * 24 + 5), "2d5h"),
            (Duration::hours(7 * 24 + 23), "7d23h"),
            (Duration::hours(8 * 24), "8d"),
            (Duration::days(89), "89d"),
            (Duration::days(729), "729d"),
            (Duration::days(730), "2y"),
            (Duration::days(3 * 365 + 45), "3y45d"),
            (Duration::days(8 * 365 - 1), "7y364d"),
            (Duration::days(8 * 365), "8y"),
            (Duration::days(100 * 365 + 30), "100y"),
        ];
        for (d, expected) in cases {
            check(*d, expected);
        }
    }

    #[test]
    fn huge_durations_saturate_like_go() {
        // Go's Duration tops out at about 292 years.
        check(Duration::days(1000 * 365), "292y");
    }

    #[test]
    fn since_unknown_without_timestamp() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        assert_eq!(since(None, now), "<unknown>");
        assert_eq!(since(Some(now - Duration::seconds(30)), now), "30s");
        assert_eq!(since(Some(now + Duration::minutes(5)), now), "<invalid>");
    }
}
