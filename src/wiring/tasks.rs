//! The background work that lives as long as the server: the readiness probe of the cloud and
//! the periodic repair of tags the cluster's disks lost.

use std::sync::Arc;
use std::time::Duration;

use crate::cloud::Backend;
use crate::cloud::retry::Backoff;
use crate::csi::readiness::Gate;
use crate::telemetry::metrics::Metrics;

/// Repairs the backends' tags every `interval`, the first time one interval after the start;
/// `None` when the interval is zero.
pub fn repair_tags_every(
    backends: Vec<Arc<dyn Backend>>,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for backend in &backends {
                let outcome = backend.repair_tags().await;
                if let Ok(report) = &outcome {
                    metrics.record_tag_repair(report.repaired, report.failed);
                }
                match outcome {
                    Ok(report) if report.repaired > 0 || report.failed > 0 => tracing::info!(
                        checked = report.checked,
                        repaired = report.repaired,
                        failed = report.failed,
                        "tag repair"
                    ),
                    Ok(report) => tracing::debug!(checked = report.checked, "tag repair: nothing missing"),
                    Err(e) => {
                        tracing::warn!(error = %e, "tag repair could not list the disks; next pass retries")
                    }
                }
            }
        }
    }))
}

/// Probes the backend until it answers, then opens the readiness gate.
pub fn open_when_cloud_answers(backend: Arc<dyn Backend>, gate: Gate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            factor: 2.0,
            max: Duration::from_secs(30),
            max_attempts: u32::MAX,
        };
        let mut attempt = 0;
        loop {
            match backend.probe().await {
                Ok(()) => {
                    tracing::info!("cloud backend answered; ready");
                    gate.open();
                    return;
                }
                Err(e) => {
                    attempt += 1;
                    let delay = backoff.delay(attempt, crate::cloud::retry::jitter());
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cloud backend not reachable yet");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}

/// Aborts a background task when the owner goes away.
#[derive(Debug)]
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
