//! robfig's `ParseStandard`: an optional `TZ=`/`CRON_TZ=` prefix, then a
//! descriptor (`@yearly`..`@hourly`, `@every <duration>`) or five fields
//! (minute, hour, day of month, month, day of week).

use std::time::Duration;

use crate::duration::parse_go_duration;
use crate::fields::{DOM, DOW, HOUR, MINUTE, MONTH, field};
use crate::zone::check_time_zone;

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
    pub(crate) minute: u64,
    pub(crate) hour: u64,
    pub(crate) dom: u64,
    pub(crate) month: u64,
    pub(crate) dow: u64,
    pub(crate) dom_star: bool,
    pub(crate) dow_star: bool,
}

/// Parses a schedule like `cron.ParseStandard`; the error is its message.
/// A `TZ=`/`CRON_TZ=` prefix is checked with [`check_time_zone`] and
/// returned as the zone name.
pub fn parse(spec: &str) -> Result<(Schedule, Option<String>), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec;
    let mut zone = None;
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        let eq = spec.find('=').unwrap_or(0);
        let Some(sp) = spec.find(' ') else {
            return Err(format!("provided bad location {}: unknown time zone", &spec[eq + 1..]));
        };
        let name = &spec[eq + 1..sp];
        if let Err(e) = check_time_zone(name) {
            return Err(format!("provided bad location {name}: {e}"));
        }
        zone = Some(name.to_string());
        spec = spec[sp..].trim();
    }
    let standard = match spec {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        s if s.starts_with("@every ") => {
            let (negative, d) =
                parse_go_duration(&s["@every ".len()..]).map_err(|e| format!("failed to parse duration {s}: {e}"))?;
            // robfig's `Every`: whole seconds, at least one (a negative
            // duration is below one second too).
            let secs = if negative { 1 } else { d.as_secs().max(1) };
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
    let spec = Spec {
        minute,
        hour,
        dom,
        month,
        dow,
        dom_star,
        dow_star,
    };
    Ok((Schedule::Spec(spec), zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        for ok in [
            "*/5 * * * *",
            "0 0 1 jan,JUL sun-sat",
            "@hourly",
            "@every 1h30m",
            "@every -5m",
            "0-59/15 9-17 ? * MON-FRI",
            "5 4 * * 0",
            "TZ=UTC 0 * * * *",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(err(""), "empty spec string");
        assert_eq!(err("* * * *"), "expected exactly 5 fields, found 4: [* * * *]");
        assert_eq!(err(" @hourly"), "expected exactly 5 fields, found 1: [@hourly]");
        assert_eq!(err("60 * * * *"), "end of range (60) above maximum (59): 60");
        assert_eq!(err("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
        assert_eq!(
            err("5-1 * * * *"),
            "beginning of range (5) beyond end of range (1): 5-1"
        );
        assert_eq!(
            err("x * * * *"),
            "failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
        );
        assert_eq!(err("*/0 * * * *"), "step of range should be a positive number: */0");
        assert_eq!(err("1-2-3 * * * *"), "too many hyphens: 1-2-3");
        assert_eq!(err("@fortnightly"), "unrecognized descriptor: @fortnightly");
        assert_eq!(err("* * * * 7"), "end of range (7) above maximum (6): 7");
        assert_eq!(
            err("@every 5x"),
            "failed to parse duration @every 5x: time: unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(err("TZ=UTC"), "provided bad location UTC: unknown time zone");
        assert_eq!(
            err("TZ=../x 0 * * * *"),
            "provided bad location ../x: unknown time zone ../x"
        );
    }

    #[test]
    fn every_rounds_to_whole_seconds() {
        let every = |s: &str| parse(s).map(|(s, _)| s);
        assert_eq!(every("@every 90.5s"), Ok(Schedule::Every(Duration::from_secs(90))));
        assert_eq!(every("@every 10ms"), Ok(Schedule::Every(Duration::from_secs(1))));
        assert_eq!(every("@every -1h"), Ok(Schedule::Every(Duration::from_secs(1))));
    }

    #[test]
    fn zone_prefix_is_returned() {
        let zone = |s: &str| parse(s).map(|(_, z)| z);
        assert_eq!(zone("CRON_TZ=UTC @daily"), Ok(Some("UTC".to_string())));
        assert_eq!(zone("TZ=UTC   0 * * * *"), Ok(Some("UTC".to_string())));
        assert_eq!(zone("0 * * * *"), Ok(None));
    }
}
