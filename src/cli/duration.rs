//! Durations as Go's `time.ParseDuration` reads them (`1m30s`, `1h2m3.5s`, `300ms`, `1.5h`),
//! the syntax the CSI sidecars and Kubernetes tools take, plus a bare number of seconds.

use std::time::Duration;

/// Units in the order Go accepts them, longest spelling first where one prefixes another.
const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("μs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
];

/// Parses a non-negative Go duration or a bare number of seconds.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let invalid = || format!("{text:?} is not a duration like 30s, 1m30s, 1h2m3.5s or 500ms");
    if text.is_empty() {
        return Err(invalid());
    }
    if text.starts_with('-') {
        return Err(format!("{text:?}: a duration cannot be negative"));
    }
    let body = text.strip_prefix('+').unwrap_or(text);
    if body.chars().all(|c| c.is_ascii_digit() || c == '.') {
        let seconds: f64 = body.parse().map_err(|_| invalid())?;
        return Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"));
    }
    let mut rest = body;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let (unit, scale) =
            UNITS.iter().filter(|(u, _)| after.starts_with(u)).max_by_key(|(u, _)| u.len()).ok_or_else(
                || format!("{text:?} has a number without a known unit; use ns, us, ms, s, m or h"),
            )?;
        let part = Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))?;
        total = total.checked_add(part).ok_or_else(|| format!("{text:?} is too long"))?;
        rest = &after[unit.len()..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn go_compound_durations_add_up() {
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h2m3.5s").unwrap(), Duration::from_millis(3_723_500));
        assert_eq!(parse("300ms").unwrap(), Duration::from_millis(300));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("2h45m").unwrap(), Duration::from_secs(9900));
        assert_eq!(parse("10us").unwrap(), Duration::from_micros(10));
        assert_eq!(parse("10µs").unwrap(), Duration::from_micros(10));
        assert_eq!(parse("7ns").unwrap(), Duration::from_nanos(7));
        assert_eq!(parse("+5s").unwrap(), Duration::from_secs(5));
    }

    #[test]
    fn a_bare_number_is_seconds_as_before() {
        assert_eq!(parse("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn malformed_negative_and_unitless_parts_are_refused() {
        for bad in ["", "s", "1x", "1m30", "-1s", "1..5s", ".s", "1 m", "m1", "1e3s", "1h-2m", "NaNs", "infs"]
        {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn an_overflowing_duration_is_refused_not_wrapped() {
        assert!(parse("99999999999999999999h").is_err());
        assert!(parse("5000000000000000h5000000000000000h").is_err());
    }

    proptest! {
        #[test]
        fn hours_minutes_seconds_and_millis_round_trip(h in 0u64..1000, m in 0u64..60, s in 0u64..60, ms in 0u64..1000) {
            let text = format!("{h}h{m}m{s}s{ms}ms");
            let expected = Duration::from_millis(((h * 60 + m) * 60 + s) * 1000 + ms);
            prop_assert_eq!(parse(&text).unwrap(), expected);
        }

        #[test]
        fn any_text_parses_or_errs_without_panicking(text in "\\PC{0,24}") {
            let _ = parse(&text);
        }
    }
}
