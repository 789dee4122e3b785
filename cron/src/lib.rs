//! Cron schedules as Kubernetes reads them: the syntax of `robfig/cron/v3`'s
//! `ParseStandard` (five fields or a descriptor, with that parser's error
//! messages), the next activation time in a time zone, and Go's
//! `time.LoadLocation` over the system zoneinfo; and Go's duration syntax,
//! which every component's duration flags share.
//!
//! One parser serves the apiserver's CronJob validation and the CronJob
//! controller's scheduling, so a schedule the API accepts is exactly one the
//! controller can run.
//!
//! No crate was used: the cron crates either require a seconds field and
//! number Sunday 1 (`cron`, `jiff-cron`) or bring chrono and its own time
//! zone tables (`croner`), while jiff is already here and robfig's exact
//! field rules are small.

mod duration;
mod fields;
mod next;
mod parse;
mod zone;

pub use duration::{parse_flag_duration, parse_go_duration};
pub use next::civil;
pub use parse::{Schedule, Spec, parse};
pub use zone::{check_time_zone, load_time_zone, valid_zone_part};
