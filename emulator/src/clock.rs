//! Wall-clock time in milliseconds since the epoch, and the timestamp formats of the APIs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// `2024-05-01T12:00:00.000000` (Cinder and Nova: UTC without a zone suffix).
pub fn iso(ms: u64) -> String {
    let (date, time, micros) = split(ms);
    format!("{date}T{time}.{micros:06}")
}

/// `2024-05-01T12:00:00.000000Z` (Keystone).
pub fn iso_z(ms: u64) -> String {
    format!("{}Z", iso(ms))
}

/// `2024-05-01T12:00:00Z` (Nova's server timestamps).
pub fn iso_seconds_z(ms: u64) -> String {
    let (date, time, _) = split(ms);
    format!("{date}T{time}Z")
}

fn split(ms: u64) -> (String, String, u64) {
    let seconds = ms / 1000;
    let days = (seconds / 86_400) as i64;
    let rem = seconds % 86_400;
    let (y, m, d) = civil_from_days(days);
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!("{:02}:{:02}:{:02}", rem / 3600, (rem % 3600) / 60, rem % 60),
        (ms % 1000) * 1000,
    )
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Milliseconds since the epoch of an ISO 8601 time (`Z` assumed when no zone is given).
pub fn parse_iso_ms(text: &str) -> Option<u64> {
    let zoned = if text.ends_with('Z') || text.contains('+') { text.to_string() } else { format!("{text}Z") };
    let ts: prost_types::Timestamp = zoned.parse().ok()?;
    Some(u64::try_from(ts.seconds).ok()? * 1000 + ts.nanos.max(0) as u64 / 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000000");
        assert_eq!(iso_z(1_709_251_199_123), "2024-02-29T23:59:59.123000Z");
        assert_eq!(iso_seconds_z(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
