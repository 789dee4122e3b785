//! Time zone names: Go's `time.LoadLocation` over the system zoneinfo
//! database, and the name syntax the CronJob API accepts.

use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

const ZONEINFO: &str = "/usr/share/zoneinfo";

fn unknown(name: &str) -> String {
    format!("unknown time zone {name}")
}

/// A name that cannot leave the zoneinfo directory.
fn well_formed(name: &str) -> bool {
    !name.starts_with('/') && !name.split('/').any(|p| p.is_empty() || p == "." || p == "..")
}

/// Go's `time.LoadLocation` over the system zoneinfo: `UTC` (or empty),
/// `Local` (`/etc/localtime`, UTC when absent) or an IANA name.
pub fn load_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name == "UTC" {
        return Ok(TimeZone::UTC);
    }
    let path = if name == "Local" {
        PathBuf::from("/etc/localtime")
    } else if well_formed(name) {
        Path::new(ZONEINFO).join(name)
    } else {
        return Err(unknown(name));
    };
    match std::fs::read(&path) {
        Ok(data) => TimeZone::tzif(name, &data).map_err(|_| unknown(name)),
        Err(_) if name == "Local" => Ok(TimeZone::UTC),
        Err(_) => Err(unknown(name)),
    }
}

/// Whether [`load_time_zone`] would accept `name`, for validation: on a
/// host without a zoneinfo database any well-formed name passes, since
/// the nodes that run the schedule may have one.
pub fn check_time_zone(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "UTC" || name == "Local" {
        return Ok(());
    }
    if !well_formed(name) {
        return Err(unknown(name));
    }
    if !Path::new(ZONEINFO).is_dir() {
        return Ok(());
    }
    load_time_zone(name).map(drop)
}

/// The characters and length upstream allows in each `/`-separated part
/// of a `timeZone`.
pub fn valid_zone_part(part: &str) -> bool {
    (1..=14).contains(&part.len())
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(load_time_zone("UTC").is_ok());
        assert!(load_time_zone("").is_ok());
        assert!(load_time_zone("Local").is_ok());
        for bad in ["../etc/passwd", "/etc/passwd", "Europe//Paris", "Not/AZone"] {
            assert_eq!(load_time_zone(bad).err(), Some(unknown(bad)), "{bad}");
        }
        for bad in ["../etc/passwd", "/etc/passwd", "a/./b"] {
            assert_eq!(check_time_zone(bad), Err(unknown(bad)), "{bad}");
        }
        assert_eq!(check_time_zone("Local"), Ok(()));
        if Path::new(ZONEINFO).is_dir() {
            assert_eq!(check_time_zone("Not/AZone"), Err(unknown("Not/AZone")));
        }
        assert!(valid_zone_part("America"));
        assert!(valid_zone_part("GMT+0"));
        assert!(!valid_zone_part(""));
        assert!(!valid_zone_part("ABCDEFGHIJKLMNO"));
        assert!(!valid_zone_part("a b"));
    }
}
