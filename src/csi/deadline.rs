//! The caller's gRPC deadline (`grpc-timeout`), carried through a handler so that waits inside
//! it end before the caller gives up and answer something the caller can act on.
//!
//! tonic already drops a handler whose deadline passed (the caller sees DEADLINE_EXCEEDED and
//! learns nothing); a wait that knows the deadline stops a little earlier and says why.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tonic::metadata::MetadataMap;

/// Header holding the caller's timeout (gRPC over HTTP/2).
const GRPC_TIMEOUT: &str = "grpc-timeout";

tokio::task_local! {
    static DEADLINE: Option<Instant>;
}

/// Parses a `grpc-timeout` value: 1 to 8 ASCII digits and one unit letter (H M S m u n).
/// Anything else is no deadline: a malformed header must not shorten or stretch a wait.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let unit = value.chars().last()?;
    let digits = &value[..value.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline a request's metadata names, counted from now.
pub fn from_metadata(metadata: &MetadataMap) -> Option<Instant> {
    let value = metadata.get(GRPC_TIMEOUT)?.to_str().ok()?;
    Instant::now().checked_add(parse_grpc_timeout(value)?)
}

/// Runs `future` with `deadline` as the current request's deadline.
pub async fn scope<F: Future>(deadline: Option<Instant>, future: F) -> F::Output {
    DEADLINE.scope(deadline, future).await
}

/// Time left before the current request's deadline; `None` outside a request or without one.
pub fn remaining() -> Option<Duration> {
    let deadline = DEADLINE.try_with(|d| *d).ok().flatten()?;
    Some(deadline.saturating_duration_since(Instant::now()))
}

/// How long a wait may take: `configured`, cut so that it ends before the request's deadline
/// with time left to answer and for the answer to travel (a fifth of what remains, at most
/// two seconds).
pub fn budget(configured: Duration) -> Duration {
    match remaining() {
        Some(left) => configured.min(left.saturating_sub((left / 5).min(Duration::from_secs(2)))),
        None => configured,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_timeout_unit_parses() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("10S"), Some(Duration::from_secs(10)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn malformed_grpc_timeouts_are_no_deadline() {
        for bad in ["", "S", "123456789S", "-1S", "1s", "1.5S", "1 S", "١S", "10Sx", "1é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn budget_ends_before_the_deadline_and_never_exceeds_the_configured_time() {
        let configured = Duration::from_secs(60);
        assert_eq!(budget(configured), configured, "no request: the configured time");
        let deadline = Instant::now() + Duration::from_secs(5);
        let inside = scope(Some(deadline), async { budget(configured) }).await;
        assert!(inside <= Duration::from_secs(4) && inside >= Duration::from_millis(3900), "{inside:?}");
        let short =
            scope(Some(Instant::now() + Duration::from_secs(600)), async { budget(Duration::from_secs(3)) })
                .await;
        assert_eq!(short, Duration::from_secs(3));
    }

    #[tokio::test]
    async fn a_passed_deadline_leaves_no_time() {
        let passed = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(scope(Some(passed), async { budget(Duration::from_secs(9)) }).await, Duration::ZERO);
    }

    #[test]
    fn the_deadline_is_read_from_the_grpc_timeout_header() {
        let mut metadata = MetadataMap::new();
        assert!(from_metadata(&metadata).is_none());
        metadata.insert(GRPC_TIMEOUT, "5S".parse().unwrap());
        let deadline = from_metadata(&metadata).unwrap();
        let left = deadline - Instant::now();
        assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5), "{left:?}");
    }
}
