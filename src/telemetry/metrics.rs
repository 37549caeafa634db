//! Prometheus metrics: per-RPC counters and latency histograms, process RSS, served with
//! `/healthz` on the metrics address.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

use super::wait_metrics::WaitMetrics;

/// Labels of a finished RPC.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
}

/// Labels of an RPC latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// Labels of a finished cloud API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CloudCallLabels {
    operation: String,
    outcome: String,
}

/// Labels of a cloud API latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

type CloudHistogramFamily = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// Labels of a disk a tag repair pass acted on.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

/// The driver's metrics registry and the instruments every layer records into.
pub struct Metrics {
    registry: Mutex<Registry>,
    rpc_total: Family<RpcLabels, Counter>,
    rpc_seconds: HistogramFamily,
    rss_bytes: Gauge,
    cloud_total: Family<CloudCallLabels, Counter>,
    cloud_seconds: CloudHistogramFamily,
    tag_repairs: Family<OutcomeLabels, Counter>,
    waits: WaitMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn rpc_histogram() -> Histogram {
    // 1 ms .. ~65 s: from a cached NodeGetInfo to a slow cloud attach.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Metrics {
    /// A registry with every instrument registered under the `cinder_evs_csi` prefix.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("cinder_evs_csi");
        let rpc_total = Family::<RpcLabels, Counter>::default();
        let rpc_seconds: HistogramFamily = Family::new_with_constructor(rpc_histogram);
        let rss_bytes = Gauge::default();
        registry.register("csi_rpc", "CSI RPCs finished, by method and gRPC code", rpc_total.clone());
        registry.register(
            "csi_rpc_duration_seconds",
            "Wall time of CSI RPCs, by method",
            rpc_seconds.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident set size of the driver process",
            rss_bytes.clone(),
        );
        let cloud_total = Family::<CloudCallLabels, Counter>::default();
        let cloud_seconds: CloudHistogramFamily = Family::new_with_constructor(rpc_histogram);
        registry.register(
            "cloud_api_requests",
            "Cloud API requests (each attempt), by operation and HTTP status or `error`",
            cloud_total.clone(),
        );
        registry.register(
            "cloud_api_request_duration_seconds",
            "Wall time of cloud API requests, by operation",
            cloud_seconds.clone(),
        );
        let tag_repairs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "tag_repairs",
            "Disks whose missing tags a repair pass added (`repaired`) or could not add (`failed`)",
            tag_repairs.clone(),
        );
        let waits = WaitMetrics::register(&mut registry);
        Arc::new(Self {
            waits,
            registry: Mutex::new(registry),
            tag_repairs,
            rpc_total,
            rpc_seconds,
            rss_bytes,
            cloud_total,
            cloud_seconds,
        })
    }

    /// Records one finished RPC.
    pub fn record_rpc(&self, method: &str, code: tonic::Code, elapsed: Duration) {
        let code = format!("{code:?}");
        self.rpc_total.get_or_create(&RpcLabels { method: method.to_string(), code }).inc();
        self.rpc_seconds
            .get_or_create(&MethodLabels { method: method.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one cloud API request attempt.
    pub fn record_cloud_call(&self, operation: &str, outcome: &str, elapsed: Duration) {
        let labels = CloudCallLabels { operation: operation.to_string(), outcome: outcome.to_string() };
        self.cloud_total.get_or_create(&labels).inc();
        self.cloud_seconds
            .get_or_create(&OperationLabels { operation: operation.to_string() })
            .observe(elapsed.as_secs_f64());
    }

    /// Records what one tag repair pass did.
    pub fn record_tag_repair(&self, repaired: usize, failed: usize) {
        for (outcome, n) in [("repaired", repaired), ("failed", failed)] {
            self.tag_repairs.get_or_create(&OutcomeLabels { outcome: outcome.into() }).inc_by(n as u64);
        }
    }

    /// Records a transition the wait engine saw complete and the estimate it now holds.
    pub fn record_wait(
        &self,
        cloud: &str,
        operation: &str,
        volume_type: &str,
        expected: Duration,
        observed: Duration,
    ) {
        self.waits.record(cloud, operation, volume_type, expected, observed);
    }

    /// Counts a wait that ran far past the learned transition time.
    pub fn record_slow_wait(&self, cloud: &str, operation: &str, volume_type: &str) {
        self.waits.record_slow(cloud, operation, volume_type);
    }

    /// The registry in Prometheus text format, with gauges sampled now.
    pub fn render(&self) -> String {
        if let Some(rss) = resident_set_bytes() {
            self.rss_bytes.set(rss);
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Resident set size from `/proc/self/status`, in bytes.
pub fn resident_set_bytes() -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Binds the metrics address; the returned listener is served by [`serve`].
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves `/metrics` and `/healthz` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render_metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(metrics);
    axum::serve(listener, app).await
}

async fn render_metrics(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_counts_rpcs_by_method_and_code() {
        let metrics = Metrics::new();
        metrics.record_rpc("Probe", tonic::Code::Ok, Duration::from_millis(2));
        metrics.record_rpc("Probe", tonic::Code::Ok, Duration::from_millis(3));
        metrics.record_rpc("NodeStageVolume", tonic::Code::Unimplemented, Duration::ZERO);
        let text = metrics.render();
        assert!(text.contains(r#"cinder_evs_csi_csi_rpc_total{method="Probe",code="Ok"} 2"#), "{text}");
        assert!(
            text.contains(r#"cinder_evs_csi_csi_rpc_total{method="NodeStageVolume",code="Unimplemented"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"cinder_evs_csi_csi_rpc_duration_seconds_count{method="Probe"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn tag_repairs_add_up_by_outcome() {
        let metrics = Metrics::new();
        metrics.record_tag_repair(2, 0);
        metrics.record_tag_repair(1, 1);
        let text = metrics.render();
        assert!(text.contains(r#"cinder_evs_csi_tag_repairs_total{outcome="repaired"} 3"#), "{text}");
        assert!(text.contains(r#"cinder_evs_csi_tag_repairs_total{outcome="failed"} 1"#), "{text}");
    }

    #[test]
    fn learned_transition_times_are_exposed_per_cloud_operation_and_type() {
        let metrics = Metrics::new();
        metrics.record_wait(
            "east",
            "volume.create",
            "SSD",
            Duration::from_millis(950),
            Duration::from_millis(1000),
        );
        metrics.record_slow_wait("east", "volume.create", "SSD");
        let text = metrics.render();
        let labels = r#"{cloud="east",operation="volume.create",volume_type="SSD"}"#;
        assert!(text.contains(&format!("cinder_evs_csi_wait_expected_seconds{labels} 0.95")), "{text}");
        assert!(text.contains(&format!("cinder_evs_csi_wait_observed_seconds_sum{labels} 1.0")), "{text}");
        assert!(text.contains(&format!("cinder_evs_csi_wait_slow_total{labels} 1")), "{text}");
    }

    #[test]
    fn render_reports_a_nonzero_resident_set_size() {
        let text = Metrics::new().render();
        let line = text
            .lines()
            .find(|l| l.starts_with("cinder_evs_csi_process_resident_memory_bytes "))
            .expect("rss gauge present");
        let value: i64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(value > 1024 * 1024, "{line}");
    }
}
