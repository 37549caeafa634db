//! An RPC the driver never finishes: the caller's deadline passed (tonic drops the handler when
//! the `grpc-timeout` expires) or the caller went away (the stream is reset). Either way the
//! handler's future is dropped mid-await, so nothing after it runs; this guard, dropped with
//! it, reports the call instead: one log line in the RPC's span (its ids) and the RPC metrics.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::Code;
use tonic::metadata::MetadataMap;
use tracing::{Span, warn};

use crate::telemetry::metrics::Metrics;

/// Timers on both sides of the wire fire a little apart; within this of the deadline a
/// dropped call counts as the deadline's doing.
const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// Armed while the handler runs; reports the RPC as cancelled if dropped armed.
pub struct Unfinished {
    method: &'static str,
    started: Instant,
    deadline: Option<Duration>,
    metrics: Arc<Metrics>,
    span: Span,
    armed: bool,
}

impl Unfinished {
    /// Arms the guard for an RPC that started at `started` with the caller's `deadline`.
    pub fn new(
        method: &'static str,
        started: Instant,
        deadline: Option<Duration>,
        metrics: Arc<Metrics>,
        span: Span,
    ) -> Self {
        Self { method, started, deadline, metrics, span, armed: true }
    }

    /// The handler returned: the normal outcome report takes over.
    pub fn finish(mut self) {
        self.armed = false;
    }
}

/// The code a dropped call gets: `DeadlineExceeded` once the caller's deadline has passed,
/// `Cancelled` when the caller gave up before it.
pub fn code_of(elapsed: Duration, deadline: Option<Duration>) -> Code {
    match deadline {
        Some(deadline) if elapsed + DEADLINE_SLACK >= deadline => Code::DeadlineExceeded,
        _ => Code::Cancelled,
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let elapsed = self.started.elapsed();
        let code = code_of(elapsed, self.deadline);
        self.metrics.record_rpc(self.method, code, elapsed);
        let _entered = self.span.enter();
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        let deadline_ms = self.deadline.map(|d| d.as_secs_f64() * 1000.0);
        warn!(code = ?code, duration_ms, deadline_ms, "rpc cancelled: the caller stopped waiting before the driver finished");
    }
}

/// The caller's timeout from its `grpc-timeout` header; `None` when absent or malformed.
pub fn grpc_timeout(metadata: &MetadataMap) -> Option<Duration> {
    super::deadline::parse_grpc_timeout(metadata.get("grpc-timeout")?.to_str().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_dropped_at_its_deadline_is_deadline_exceeded_and_before_it_cancelled() {
        let deadline = Some(Duration::from_millis(500));
        assert_eq!(code_of(Duration::from_millis(495), deadline), Code::DeadlineExceeded);
        assert_eq!(code_of(Duration::from_millis(800), deadline), Code::DeadlineExceeded);
        assert_eq!(code_of(Duration::from_millis(100), deadline), Code::Cancelled);
        assert_eq!(code_of(Duration::from_secs(100), None), Code::Cancelled);
    }

    #[tokio::test]
    async fn a_dropped_guard_counts_the_call_and_a_finished_one_does_not() {
        let metrics = Metrics::new();
        let guard = Unfinished::new("CreateVolume", Instant::now(), None, metrics.clone(), Span::none());
        drop(guard);
        Unfinished::new("DeleteVolume", Instant::now(), None, metrics.clone(), Span::none()).finish();
        let text = metrics.render();
        assert!(text.contains(r#"csi_rpc_total{method="CreateVolume",code="Cancelled"} 1"#), "{text}");
        assert!(!text.contains(r#"method="DeleteVolume""#), "{text}");
    }
}
