//! The wait engine's instruments: per cloud, operation and volume type, the transition time it
//! expects (its learned mean), the times it observed, and waits far slower than expected.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a learned transition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WaitLabels {
    cloud: String,
    operation: String,
    volume_type: String,
}

fn transition_histogram() -> Histogram {
    // 10 ms .. ~20 min: from an instant attach to a slow restore.
    Histogram::new(exponential_buckets(0.01, 2.0, 17))
}

/// The wait engine's instruments, registered once with the driver's registry.
#[derive(Clone)]
pub struct WaitMetrics {
    expected: Family<WaitLabels, Gauge<f64, AtomicU64>>,
    observed: Family<WaitLabels, Histogram, fn() -> Histogram>,
    slow: Family<WaitLabels, Counter>,
}

impl WaitMetrics {
    /// Creates the instruments and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let waits = Self {
            expected: Family::default(),
            observed: Family::new_with_constructor(transition_histogram),
            slow: Family::default(),
        };
        registry.register(
            "wait_expected_seconds",
            "Transition time the wait engine expects (its learned mean), by cloud, operation and volume type",
            waits.expected.clone(),
        );
        registry.register(
            "wait_observed_seconds",
            "Transition times the wait engine observed, by cloud, operation and volume type",
            waits.observed.clone(),
        );
        registry.register(
            "wait_slow",
            "Waits that ran far past the learned transition time, by cloud, operation and volume type",
            waits.slow.clone(),
        );
        waits
    }

    /// Records a completed transition and the estimate it leaves behind.
    pub fn record(
        &self,
        cloud: &str,
        operation: &str,
        volume_type: &str,
        expected: Duration,
        observed: Duration,
    ) {
        let labels = labels(cloud, operation, volume_type);
        self.expected.get_or_create(&labels).set(expected.as_secs_f64());
        self.observed.get_or_create(&labels).observe(observed.as_secs_f64());
    }

    /// Counts a wait that ran far past its estimate.
    pub fn record_slow(&self, cloud: &str, operation: &str, volume_type: &str) {
        self.slow.get_or_create(&labels(cloud, operation, volume_type)).inc();
    }
}

fn labels(cloud: &str, operation: &str, volume_type: &str) -> WaitLabels {
    WaitLabels { cloud: cloud.into(), operation: operation.into(), volume_type: volume_type.into() }
}
