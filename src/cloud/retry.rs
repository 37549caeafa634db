//! When and how long to wait before trying a cloud request again.

use std::time::Duration;

use reqwest::{Method, StatusCode};

/// Jittered exponential backoff.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter).
    pub initial: Duration,
    /// Growth per attempt.
    pub factor: f64,
    /// Largest delay.
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            factor: 2.0,
            max: Duration::from_secs(10),
            max_attempts: 6,
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempt` (1 = the first retry): "equal jitter", half fixed and half
    /// random, so retries of many callers spread out but never collapse to zero.
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exp = self.initial.as_secs_f64() * self.factor.powi(attempt.saturating_sub(1) as i32);
        let capped = exp.min(self.max.as_secs_f64());
        Duration::from_secs_f64(capped / 2.0 + capped / 2.0 * random.clamp(0.0, 1.0))
    }
}

/// A uniform number in [0, 1) for jitter, without a dependency on a random crate.
pub fn jitter() -> f64 {
    (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64
}

/// What to do with a response status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Done: hand the response to the caller.
    Accept,
    /// Try again after the backoff (or the server's `Retry-After`).
    Retry,
}

/// Whether a method may be repeated without changing the outcome.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS)
}

/// Statuses that say the request was not processed, so even a POST may be repeated:
/// rate limiting (429, and 413 when the server gives `Retry-After`) and 503. Other server
/// errors are retried only for `repeatable` requests.
pub fn verdict(repeatable: bool, status: StatusCode, has_retry_after: bool) -> Verdict {
    let not_processed = status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE
        || (status == StatusCode::PAYLOAD_TOO_LARGE && has_retry_after);
    let maybe_processed = matches!(status.as_u16(), 500 | 502 | 504);
    if not_processed || (maybe_processed && repeatable) { Verdict::Retry } else { Verdict::Accept }
}

/// `Retry-After` as seconds (the form OpenStack services send); HTTP dates fall back to backoff.
pub fn retry_after(value: Option<&str>) -> Option<Duration> {
    let seconds: f64 = value?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(300.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_exponentially_within_its_jitter_band_and_caps() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(b.delay(30, 1.0), Duration::from_secs(10));
        assert_eq!(b.delay(30, 0.0), Duration::from_secs(5));
    }

    #[test]
    fn jitter_stays_in_the_unit_interval() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn rate_limits_and_503_are_retried_even_when_not_repeatable() {
        for repeatable in [true, false] {
            assert_eq!(verdict(repeatable, StatusCode::TOO_MANY_REQUESTS, false), Verdict::Retry);
            assert_eq!(verdict(repeatable, StatusCode::SERVICE_UNAVAILABLE, false), Verdict::Retry);
            assert_eq!(verdict(repeatable, StatusCode::PAYLOAD_TOO_LARGE, true), Verdict::Retry);
        }
    }

    #[test]
    fn a_500_is_retried_only_for_repeatable_requests() {
        assert_eq!(verdict(true, StatusCode::INTERNAL_SERVER_ERROR, false), Verdict::Retry);
        assert_eq!(verdict(true, StatusCode::BAD_GATEWAY, false), Verdict::Retry);
        assert_eq!(verdict(false, StatusCode::INTERNAL_SERVER_ERROR, false), Verdict::Accept);
    }

    #[test]
    fn only_reading_and_replacing_methods_are_repeatable_by_default() {
        for method in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert!(is_idempotent(&method), "{method}");
        }
        assert!(!is_idempotent(&Method::POST));
        assert!(!is_idempotent(&Method::PATCH));
    }

    #[test]
    fn quota_413_without_retry_after_and_client_errors_are_final() {
        assert_eq!(verdict(false, StatusCode::PAYLOAD_TOO_LARGE, false), Verdict::Accept);
        assert_eq!(verdict(true, StatusCode::NOT_FOUND, false), Verdict::Accept);
        assert_eq!(verdict(true, StatusCode::CONFLICT, false), Verdict::Accept);
    }

    #[test]
    fn retry_after_reads_seconds_and_ignores_garbage() {
        assert_eq!(retry_after(Some("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(Some("-1")), None);
        assert_eq!(retry_after(Some("100000")), Some(Duration::from_secs(300)));
        assert_eq!(retry_after(None), None);
    }
}
