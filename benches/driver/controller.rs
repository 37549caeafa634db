//! Controller rows: CreateVolume and ControllerPublish against set emulator latencies, the
//! concurrency bursts with their cloud API cost, Keystone auth reuse, start-up and memory.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::emulator::EmulatorHandle;
use cinder_evs_csi::emulator::store::Latency;
use tonic::transport::Channel;

use crate::process::{Driver, unix_channel};
use crate::report::{Row, Verdict, median, memory_row, time};
use crate::requests::mount_capability;

const GIB: i64 = 1 << 30;
const MIB: u64 = 1 << 20;

/// The emulator and the controller under test.
struct Bench {
    cloud: EmulatorHandle,
    driver: Driver,
    client: ControllerClient<Channel>,
    server_id: String,
    /// CSI operations issued since the controller started.
    operations: u64,
    /// Volume names are unique across the run.
    next_name: u64,
}

/// Runs every controller row, appending to `rows`.
pub async fn run(dir: &Path, rows: &mut Vec<Row>) {
    let config = crate::cloud::emulator_config(state_dir(dir));
    let cloud = cinder_evs_csi::emulator::start(config).await.expect("start the emulator");
    let clouds_yaml = dir.join("clouds.yaml");
    std::fs::write(&clouds_yaml, crate::cloud::clouds_yaml(&cloud, false)).expect("write clouds.yaml");
    let args = ["controller", "--cloud-config", clouds_yaml.to_str().unwrap(), "--cluster-id", "bench"];

    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "scale") {
        crate::scale::run(dir, &cloud, rows).await;
        cloud.shutdown().await;
        return;
    }
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o == "sequential") {
        crate::sequential::run(dir, rows).await;
        cloud.shutdown().await;
        return;
    }
    rows.push(startup(dir, "Start-up: controller, exec to ready Probe (median of 10)", &args).await);

    let before = counters(&cloud);
    let driver = Driver::spawn(dir, "controller", &args);
    let channel = driver.ready().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = driver.rss();
    rows.push(memory_row("Controller RSS, idle", idle, 20 * MIB));
    let server_id = cloud.this_host_server_id().expect("the emulator has this host's server");
    let mut bench = Bench {
        cloud,
        driver,
        client: ControllerClient::new(channel),
        server_id,
        operations: 0,
        next_name: 0,
    };

    for (latency_ms, samples) in [(200, 10), (1000, 6), (5000, 3)] {
        rows.push(bench.create_latency(latency_ms, samples).await);
    }
    for (latency_ms, samples) in [(200, 8), (1000, 5)] {
        rows.push(bench.publish_latency(latency_ms, samples).await);
    }
    for count in [200, 1000] {
        rows.extend(bench.burst(count, 1000).await);
    }
    rows.push(memory_row(
        "Controller RSS, peak (VmHWM) with 1000 operations in flight",
        bench.driver.peak_rss(),
        64 * MIB,
    ));
    rows.push(bench.keystone_row(&before));
    // After the Keystone row: these rows start controllers of their own.
    if std::env::var("BENCH_SKIP_SEQUENTIAL").is_err() {
        crate::sequential::run(dir, rows).await;
    }
    if std::env::var("BENCH_SKIP_SCALE").is_err() {
        crate::scale::run(dir, &bench.cloud, rows).await;
    }
    let Bench { cloud, driver, .. } = bench;
    drop(driver);
    cloud.shutdown().await;
}

/// Exec to the first ready Probe, median over ten starts.
pub async fn startup(dir: &Path, name: &str, args: &[&str]) -> Row {
    let mut samples = Vec::new();
    for _ in 0..10 {
        let started = Instant::now();
        let driver = Driver::spawn(dir, "startup", args);
        driver.ready().await;
        samples.push(started.elapsed());
        drop(driver);
    }
    let took = median(&mut samples);
    let limit = Duration::from_millis(50);
    Row {
        name: name.into(),
        measured: time(took),
        compared_to: time(limit),
        ratio: format!("{:.2}", took.as_secs_f64() / limit.as_secs_f64()),
        target: "≤ 1.00".into(),
        verdict: Verdict::of(took <= limit),
        note: format!("min {}, max {}", time(samples[0]), time(samples[samples.len() - 1])),
    }
}

/// The emulator's volume files: on tmpfs when there is one, since the disk under them is not
/// what is being measured (nor is the state file, which this emulator does not write).
fn state_dir(dir: &Path) -> std::path::PathBuf {
    crate::cloud::named_state_dir(dir, "cloud")
}

fn counters(cloud: &EmulatorHandle) -> BTreeMap<String, u64> {
    cloud.cloud().counters().snapshot()
}

/// Requests per route made between two counter snapshots.
fn delta(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn set_latency(cloud: &EmulatorHandle, default_ms: u64, transitions: &[(&str, u64)]) {
    cloud.cloud().set_latency(Latency {
        default_ms,
        transitions: transitions.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    });
}

fn create_request(name: String) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name,
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_capability()],
        parameters: HashMap::new(),
        ..Default::default()
    }
}

/// Sum of the sleeps of a poller that waits 1 s, then 1.2 times longer each time, until the
/// total reaches `latency` (the Go drivers' `wait.Backoff{Duration: 1s, Factor: 1.2}`).
fn go_poller(latency: Duration) -> Duration {
    let (mut total, mut step) = (0.0, 1.0);
    while total < latency.as_secs_f64() {
        total += step;
        step *= 1.2;
    }
    Duration::from_secs_f64(total)
}

/// A latency-bound row: median wall time against `latency`, ratio target 1.05 (+50 ms).
fn latency_row(name: String, samples: &mut [Duration], latency: Duration) -> Row {
    let took = median(samples);
    let limit = latency.mul_f64(1.05) + Duration::from_millis(50);
    Row {
        name,
        measured: time(took),
        compared_to: time(latency),
        ratio: format!("{:.3}", took.as_secs_f64() / latency.as_secs_f64()),
        target: format!("≤ 1.05 (+50 ms), i.e. ≤ {}", time(limit)),
        verdict: Verdict::of(took <= limit),
        note: format!(
            "min {}, max {}; Go 1 s × 1.2 poller: {}",
            time(samples[0]),
            time(samples[samples.len() - 1]),
            time(go_poller(latency))
        ),
    }
}

impl Bench {
    fn name(&mut self, what: &str) -> String {
        self.next_name += 1;
        format!("bench-{what}-{}", self.next_name)
    }

    async fn create(&mut self, what: &str) -> String {
        let name = self.name(what);
        self.operations += 1;
        let response = self.client.create_volume(create_request(name)).await.expect("CreateVolume");
        response.into_inner().volume.expect("a volume").volume_id
    }

    async fn create_latency(&mut self, latency_ms: u64, samples: usize) -> Row {
        set_latency(&self.cloud, latency_ms, &[]);
        let mut took = Vec::new();
        for _ in 0..samples {
            let started = Instant::now();
            self.create("create").await;
            took.push(started.elapsed());
        }
        let latency = Duration::from_millis(latency_ms);
        latency_row(format!("CreateVolume, L = {} (median of {samples})", time(latency)), &mut took, latency)
    }

    async fn publish_latency(&mut self, latency_ms: u64, samples: usize) -> Row {
        set_latency(&self.cloud, 0, &[]);
        let mut volumes = Vec::new();
        for _ in 0..samples {
            volumes.push(self.create("publish").await);
        }
        set_latency(&self.cloud, 0, &[("volume.attaching", latency_ms)]);
        let mut took = Vec::new();
        for volume_id in volumes {
            let publish = pb::ControllerPublishVolumeRequest {
                volume_id: volume_id.clone(),
                node_id: self.server_id.clone(),
                volume_capability: Some(mount_capability()),
                ..Default::default()
            };
            let started = Instant::now();
            self.client.controller_publish_volume(publish).await.expect("ControllerPublishVolume");
            took.push(started.elapsed());
            let unpublish = pb::ControllerUnpublishVolumeRequest {
                volume_id,
                node_id: self.server_id.clone(),
                ..Default::default()
            };
            self.client.controller_unpublish_volume(unpublish).await.expect("ControllerUnpublishVolume");
            self.operations += 2;
        }
        let latency = Duration::from_millis(latency_ms);
        latency_row(
            format!("ControllerPublish, attach L = {} (median of {samples})", time(latency)),
            &mut took,
            latency,
        )
    }

    /// `count` concurrent CreateVolume calls, on several connections as a CO's workers would
    /// open them (one HTTP/2 connection caps concurrent streams).
    async fn burst(&mut self, count: usize, latency_ms: u64) -> Vec<Row> {
        set_latency(&self.cloud, latency_ms, &[]);
        let mut clients = Vec::new();
        for _ in 0..count.div_ceil(100) {
            let channel = unix_channel(self.driver.socket.clone()).await.expect("connect");
            clients.push(ControllerClient::new(channel));
        }
        let names: Vec<String> = (0..count).map(|_| self.name(&format!("burst{count}"))).collect();
        let before = counters(&self.cloud);
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, name) in names.into_iter().enumerate() {
            let mut client = clients[i % clients.len()].clone();
            tasks.spawn(async move { client.create_volume(create_request(name)).await });
        }
        let mut failed = 0;
        while let Some(result) = tasks.join_next().await {
            if !matches!(result, Ok(Ok(_))) {
                failed += 1;
            }
        }
        let wall = started.elapsed();
        self.operations += count as u64;
        let calls = delta(&before, &counters(&self.cloud));
        let total: u64 = calls.values().sum();
        let per_volume = total as f64 / count as f64;
        let latency = Duration::from_millis(latency_ms);
        let limit = latency + Duration::from_secs(1);
        let breakdown = calls
            .iter()
            .map(|(route, n)| format!("{route}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
            .replace("/volume/v3/{project_id}", "…");
        let failures = if failed > 0 { format!("; {failed} calls FAILED") } else { String::new() };
        let mut rows = vec![Row {
            name: format!("{count} concurrent CreateVolume, L = {}: total wall time", time(latency)),
            measured: time(wall),
            compared_to: time(limit),
            ratio: format!("{:.3}", wall.as_secs_f64() / limit.as_secs_f64()),
            target: "≤ 1.00 (L + 1 s)".into(),
            verdict: Verdict::of(wall <= limit && failed == 0),
            note: format!("{:.2} × L{failures}", wall.as_secs_f64() / latency.as_secs_f64()),
        }];
        let target_calls = if count == 200 { Some(1.5) } else { None };
        rows.push(Row {
            name: format!("{count} concurrent CreateVolume: cloud API calls per volume"),
            measured: format!("{per_volume:.3}"),
            compared_to: target_calls.map_or("-".into(), |t| format!("{t:.1}")),
            ratio: target_calls.map_or("-".into(), |t| format!("{:.3}", per_volume / t)),
            target: target_calls.map_or("(reported only)".into(), |_| "≤ 1.00".into()),
            verdict: target_calls.map_or(Verdict::Met, |t| Verdict::of(per_volume <= t)),
            note: format!("{total} calls: {breakdown}"),
        });
        rows
    }

    fn keystone_row(&self, before: &BTreeMap<String, u64>) -> Row {
        let calls = delta(before, &counters(&self.cloud));
        let auths: u64 = calls
            .iter()
            .filter(|(k, _)| k.starts_with("POST ") && k.contains("auth/tokens"))
            .map(|(_, v)| v)
            .sum();
        let per_thousand = auths as f64 * 1000.0 / self.operations as f64;
        Row {
            name: "Keystone auth requests per 1000 operations".into(),
            measured: format!("{per_thousand:.2}"),
            compared_to: "1".into(),
            ratio: format!("{per_thousand:.2}"),
            target: "≤ 1.00".into(),
            verdict: Verdict::of(per_thousand <= 1.0),
            note: format!(
                "{auths} auth request(s) over {} CSI operations, start-up included",
                self.operations
            ),
        }
    }
}
