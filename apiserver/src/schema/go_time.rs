//! Go's `time.Parse` for the two layouts metav1 uses, with its error text.
//!
//! `metav1.Time` parses with `time.RFC3339` (`2006-01-02T15:04:05Z07:00`)
//! and `metav1.MicroTime` with `RFC3339Micro`
//! (`2006-01-02T15:04:05.000000Z07:00`). Go's general parser accepts a little
//! more than RFC 3339 (a one-digit hour, a comma before fractional seconds,
//! offsets up to 24:60) and explains failures as `parsing time "x" as
//! "<layout>": cannot parse "<rest>" as "<element>"` or `parsing time "x":
//! month out of range`; this is a port of that parser for those layouts.
//! It works on bytes, so no input can split a character and panic.

use super::quote::time_quote;

/// A layout element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Std {
    LongYear,
    ZeroMonth,
    ZeroDay,
    Hour,
    ZeroMinute,
    ZeroSecond,
    /// `.000000`: exactly this many fractional digits.
    FracSecond0(usize),
    /// `Z07:00`.
    Iso8601ColonTz,
}

/// A layout as Go's `nextStdChunk` splits it: (literal prefix, element, element text).
type Layout = &'static [(&'static str, Std, &'static str)];

const RFC3339: Layout = &[
    ("", Std::LongYear, "2006"),
    ("-", Std::ZeroMonth, "01"),
    ("-", Std::ZeroDay, "02"),
    ("T", Std::Hour, "15"),
    (":", Std::ZeroMinute, "04"),
    (":", Std::ZeroSecond, "05"),
    ("", Std::Iso8601ColonTz, "Z07:00"),
];
const RFC3339_TEXT: &str = "2006-01-02T15:04:05Z07:00";

const RFC3339_MICRO: Layout = &[
    ("", Std::LongYear, "2006"),
    ("-", Std::ZeroMonth, "01"),
    ("-", Std::ZeroDay, "02"),
    ("T", Std::Hour, "15"),
    (":", Std::ZeroMinute, "04"),
    (":", Std::ZeroSecond, "05"),
    ("", Std::FracSecond0(6), ".000000"),
    ("", Std::Iso8601ColonTz, "Z07:00"),
];
const RFC3339_MICRO_TEXT: &str = "2006-01-02T15:04:05.000000Z07:00";

/// Checks a `metav1.Time` string; the error is Go's message.
pub(crate) fn check_time(value: &str) -> Result<(), String> {
    parse(value.as_bytes(), RFC3339, RFC3339_TEXT)
}

/// Checks a `metav1.MicroTime` string; the error is Go's message.
pub(crate) fn check_micro_time(value: &str) -> Result<(), String> {
    parse(value.as_bytes(), RFC3339_MICRO, RFC3339_MICRO_TEXT)
}

struct Bad;

fn is_digit(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Go's `getnum`: one or two digits (exactly two when `fixed`).
fn getnum(s: &[u8], fixed: bool) -> Result<(i64, &[u8]), Bad> {
    if !is_digit(s, 0) {
        return Err(Bad);
    }
    if !is_digit(s, 1) {
        if fixed {
            return Err(Bad);
        }
        return Ok((i64::from(s[0] - b'0'), &s[1..]));
    }
    Ok((i64::from(s[0] - b'0') * 10 + i64::from(s[1] - b'0'), &s[2..]))
}

/// Go's `atoi`: an optional sign, then digits to the end.
fn atoi(s: &[u8]) -> Result<i64, Bad> {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Bad);
    }
    let mut x: i64 = 0;
    for &d in digits {
        x = x
            .checked_mul(10)
            .and_then(|x| x.checked_add(i64::from(d - b'0')))
            .ok_or(Bad)?;
    }
    Ok(if neg { -x } else { x })
}

/// Go's `parseNanoseconds`: the value starts with `.` or `,`; returns the
/// range error, if any.
fn parse_nanoseconds(value: &[u8], nbytes: usize) -> Result<Option<&'static str>, Bad> {
    if !matches!(value.first(), Some(b'.' | b',')) {
        return Err(Bad);
    }
    let nbytes = nbytes.min(10).min(value.len());
    let ns = atoi(&value[1..nbytes])?;
    Ok((ns < 0).then_some("fractional second"))
}

fn days_in(month: i64, year: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn parse(value: &[u8], layout: Layout, layout_text: &str) -> Result<(), String> {
    let whole = value;
    let cannot_parse = |rest: &[u8], elem: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            time_quote(whole),
            time_quote(layout_text.as_bytes()),
            time_quote(rest),
            time_quote(elem.as_bytes())
        )
    };
    let out_of_range = |what: &str| format!("parsing time {}: {what} out of range", time_quote(whole));

    let (mut year, mut month, mut day) = (0i64, -1i64, -1i64);
    let mut value = value;
    for (i, &(prefix, std, text)) in layout.iter().enumerate() {
        // Literal prefix (no spaces in these layouts).
        for &p in prefix.as_bytes() {
            match value.first() {
                Some(&v) if v == p => value = &value[1..],
                _ => return Err(cannot_parse(value, prefix)),
            }
        }
        let hold = value;
        let mut range: Option<&str> = None;
        let result: Result<(), Bad> = (|| {
            match std {
                Std::LongYear => {
                    if value.len() < 4 || !is_digit(value, 0) {
                        return Err(Bad);
                    }
                    year = atoi(&value[..4])?;
                    value = &value[4..];
                }
                Std::ZeroMonth => {
                    let (m, rest) = getnum(value, true)?;
                    value = rest;
                    month = m;
                    if !(1..=12).contains(&m) {
                        range = Some("month");
                    }
                }
                Std::ZeroDay => {
                    let (d, rest) = getnum(value, true)?;
                    value = rest;
                    day = d;
                }
                Std::Hour => {
                    let (h, rest) = getnum(value, false)?;
                    value = rest;
                    if h >= 24 {
                        range = Some("hour");
                    }
                }
                Std::ZeroMinute => {
                    let (m, rest) = getnum(value, true)?;
                    value = rest;
                    if m >= 60 {
                        range = Some("minute");
                    }
                }
                Std::ZeroSecond => {
                    let (s, rest) = getnum(value, true)?;
                    value = rest;
                    if s >= 60 {
                        range = Some("second");
                        return Ok(());
                    }
                    // A fractional second the layout does not have.
                    let layout_has_fraction = matches!(layout.get(i + 1), Some((_, Std::FracSecond0(_), _)));
                    if value.len() >= 2 && matches!(value[0], b'.' | b',') && is_digit(value, 1) && !layout_has_fraction
                    {
                        let mut n = 2;
                        while is_digit(value, n) {
                            n += 1;
                        }
                        range = parse_nanoseconds(value, n)?;
                        value = &value[n..];
                    }
                }
                Std::FracSecond0(digits) => {
                    let n = 1 + digits;
                    if value.len() < n {
                        return Err(Bad);
                    }
                    range = parse_nanoseconds(value, n)?;
                    value = &value[n..];
                }
                Std::Iso8601ColonTz => {
                    if value.first() == Some(&b'Z') {
                        value = &value[1..];
                        return Ok(());
                    }
                    if value.len() < 6 || value[3] != b':' {
                        return Err(Bad);
                    }
                    let (sign, hour, minute) = (value[0], &value[1..3], &value[4..6]);
                    value = &value[6..];
                    let hr = getnum(hour, true)?.0;
                    let mm = getnum(minute, true)?.0;
                    if hr > 24 {
                        range = Some("time zone offset hour");
                    }
                    if mm > 60 {
                        range = Some("time zone offset minute");
                    }
                    if range.is_none() && sign != b'+' && sign != b'-' {
                        return Err(Bad);
                    }
                }
            }
            Ok(())
        })();
        if let Some(what) = range {
            return Err(out_of_range(what));
        }
        if result.is_err() {
            return Err(cannot_parse(hold, text));
        }
    }
    if !value.is_empty() {
        return Err(format!(
            "parsing time {}: extra text: {}",
            time_quote(whole),
            time_quote(value)
        ));
    }
    if month < 0 {
        month = 1;
    }
    if day < 0 {
        day = 1;
    }
    if day < 1 || day > days_in(month, year) {
        return Err(out_of_range("day"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_go_accepts() {
        for ok in [
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123456789Z",
            "2024-01-02T03:04:05,5+01:00",
            "2024-02-29T23:59:59-07:00",
            "2024-01-02T3:04:05Z",
            "0000-01-01T00:00:00+24:60",
        ] {
            assert_eq!(check_time(ok), Ok(()), "{ok}");
        }
        assert_eq!(check_micro_time("2024-01-02T03:04:05.123456Z"), Ok(()));
    }

    #[test]
    fn explains_like_go() {
        let layout = "\"2006-01-02T15:04:05Z07:00\"";
        let cases = [
            (
                "abc",
                format!("parsing time \"abc\" as {layout}: cannot parse \"abc\" as \"2006\""),
            ),
            (
                "2024-01-02",
                format!("parsing time \"2024-01-02\" as {layout}: cannot parse \"\" as \"T\""),
            ),
            (
                "2024/01/02T00:00:00Z",
                format!(
                    "parsing time \"2024/01/02T00:00:00Z\" as {layout}: cannot parse \"/01/02T00:00:00Z\" as \"-\""
                ),
            ),
            (
                "2024-1-02T00:00:00Z",
                format!("parsing time \"2024-1-02T00:00:00Z\" as {layout}: cannot parse \"1-02T00:00:00Z\" as \"01\""),
            ),
            (
                "2024-01-02T00:00:00",
                format!("parsing time \"2024-01-02T00:00:00\" as {layout}: cannot parse \"\" as \"Z07:00\""),
            ),
            (
                "2024-01-02T00:00:00+0100",
                format!("parsing time \"2024-01-02T00:00:00+0100\" as {layout}: cannot parse \"+0100\" as \"Z07:00\""),
            ),
            (
                "2024-13-02T00:00:00Z",
                "parsing time \"2024-13-02T00:00:00Z\": month out of range".to_string(),
            ),
            (
                "2023-02-29T00:00:00Z",
                "parsing time \"2023-02-29T00:00:00Z\": day out of range".to_string(),
            ),
            (
                "2024-01-02T24:00:00Z",
                "parsing time \"2024-01-02T24:00:00Z\": hour out of range".to_string(),
            ),
            (
                "2024-01-02T00:00:00Zjunk",
                "parsing time \"2024-01-02T00:00:00Zjunk\": extra text: \"junk\"".to_string(),
            ),
            (
                "2024-01-02T00:00:00+25:00",
                "parsing time \"2024-01-02T00:00:00+25:00\": time zone offset hour out of range".to_string(),
            ),
            (
                "é",
                format!("parsing time \"\\xc3\\xa9\" as {layout}: cannot parse \"\\xc3\\xa9\" as \"2006\""),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(check_time(input), Err(want), "{input}");
        }
        assert_eq!(
            check_micro_time("2024-01-02T03:04:05Z"),
            Err("parsing time \"2024-01-02T03:04:05Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \"Z\" as \".000000\"".into())
        );
        assert_eq!(
            check_micro_time("2024-01-02T03:04:05.123Z"),
            Err("parsing time \"2024-01-02T03:04:05.123Z\" as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse \".123Z\" as \".000000\"".into())
        );
    }
}
