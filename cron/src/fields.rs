//! The five fields of a standard schedule: bounds, names, and robfig's
//! `getRange` (one comma-separated element to a bitset) with its error
//! messages.

/// Bounds and names of one field.
pub(crate) struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// What `names[0]` stands for.
    name_base: u32,
}

pub(crate) const MINUTE: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
    name_base: 0,
};
pub(crate) const HOUR: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
    name_base: 0,
};
pub(crate) const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
    name_base: 0,
};
pub(crate) const MONTH: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
    name_base: 1,
};
pub(crate) const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
    name_base: 0,
};

/// Go's `strconv.Atoi`, with its error text.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing \"{s}\": invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing \"{s}\": value out of range"))
}

/// robfig's `mustParseInt`: a non-negative decimal.
fn must_parse_int(expr: &str) -> Result<u32, String> {
    let n = atoi(expr).map_err(|e| format!("failed to parse int from {expr}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// A name of the field (any case) or a number.
fn parse_int_or_name(expr: &str, b: &Bounds) -> Result<u32, String> {
    let lower = expr.to_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return Ok(b.name_base + u32::try_from(i).unwrap_or(0));
    }
    must_parse_int(expr)
}

/// One comma-separated element (`*`, `?`, `N`, `N-M`, each optionally
/// `/step`); returns its bits and whether it counts as a bare `*`/`?`
/// (a step above 1 clears that, as robfig does).
fn range_bits(expr: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut star) = if low_high[0] == "*" || low_high[0] == "?" {
        (b.min, b.max, true)
    } else {
        let start = parse_int_or_name(low_high[0], b)?;
        let end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], b)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        (start, end, false)
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_and_step[1])?;
            // "N/step" means "N-max/step".
            if single {
                end = b.max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
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
    let step = usize::try_from(step).unwrap_or(usize::MAX);
    let bits = (start..=end).step_by(step).fold(0u64, |bits, v| bits | 1 << v);
    Ok((bits, star))
}

/// A whole field: the union of its comma-separated elements, and whether
/// any of them was a bare `*`/`?`.
pub(crate) fn field(s: &str, b: &Bounds) -> Result<(u64, bool), String> {
    let mut bits = 0;
    let mut star = false;
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (b2, s2) = range_bits(part, b)?;
        bits |= b2;
        star |= s2;
    }
    Ok((bits, star))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expr: &str, b: &Bounds, want: Result<(Vec<u32>, bool), &str>) {
        let got =
            field(expr, b).map(|(bits, star)| ((0..64).filter(|v| bits & (1 << v) != 0).collect::<Vec<u32>>(), star));
        assert_eq!(got, want.map_err(str::to_string), "{expr}");
    }

    #[test]
    fn elements_to_bits() {
        check("*", &DOW, Ok(((0..=6).collect(), true)));
        check("?", &DOM, Ok(((1..=31).collect(), true)));
        check("*/1", &DOW, Ok(((0..=6).collect(), true)));
        check("*/2", &DOW, Ok((vec![0, 2, 4, 6], false)));
        check("50/4", &MINUTE, Ok((vec![50, 54, 58], false)));
        check("1-10/3", &MINUTE, Ok((vec![1, 4, 7, 10], false)));
        check("jan,JUL", &MONTH, Ok((vec![1, 7], false)));
        check("mon-Fri", &DOW, Ok(((1..=5).collect(), false)));
        check("1,,2", &HOUR, Ok((vec![1, 2], false)));
        check("0/4294967295", &MINUTE, Ok((vec![0], false)));
    }

    #[test]
    fn errors_read_like_robfig() {
        check("1/2/3", &MINUTE, Err("too many slashes: 1/2/3"));
        check(
            "-1",
            &MINUTE,
            Err("failed to parse int from : strconv.Atoi: parsing \"\": invalid syntax"),
        );
        check("*/-1", &MINUTE, Err("negative number (-1) not allowed: -1"));
        check(
            "99999999999999999999",
            &MINUTE,
            Err(
                "failed to parse int from 99999999999999999999: strconv.Atoi: parsing \"99999999999999999999\": value out of range",
            ),
        );
        check("13", &MONTH, Err("end of range (13) above maximum (12): 13"));
        check(
            "x",
            &MONTH,
            Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
        );
    }
}
