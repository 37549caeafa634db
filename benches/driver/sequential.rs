//! Sequential rows (issue 19): CreateVolume, ControllerPublish and ControllerUnpublish one at a
//! time on Cinder and on EVS, at transition latencies L = 200 ms, 1 s and 5 s, steady and with
//! ±30 % jitter: cloud API calls per operation after a warm-up, and wall time against L. Each
//! (cloud, L, jitter) runs in a fresh controller, so the warm-up is the only learning it has.
//! Beside them, the same operations by a modelled Go poller (a fixed backoff, as the peers use).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::emulator::EmulatorHandle;
use cinder_evs_csi::emulator::store::Latency;
use tonic::transport::Channel;

use crate::process::Driver;
use crate::report::{Row, Verdict, median, percentile, time};

/// Operations (create, publish, unpublish cycles) before the measured ones.
const WARM_UP: usize = 5;
/// The calls the issue allows per operation after the warm-up.
const CALL_TARGET: f64 = 4.0;
/// Jitter on L: each transition takes L × (1 ± up to this share).
const JITTER: f64 = 0.3;

/// Which cloud face a controller drives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Cinder,
    Evs,
}

impl Face {
    fn name(self) -> &'static str {
        match self {
            Face::Cinder => "Cinder",
            Face::Evs => "EVS",
        }
    }

    /// The Go peers' wait: first sleep and growth factor (wait.Backoff{Duration, Factor}).
    fn go_backoff(self) -> (f64, f64) {
        match self {
            Face::Cinder => (1.0, 1.2),
            Face::Evs => (2.0, 1.02),
        }
    }

    /// Calls the modelled Go poller makes besides its polls: name lookup + POST (+ the tag
    /// call on EVS) for a create, a GET + the action for a publish or an unpublish.
    fn go_fixed_calls(self, op: Op) -> usize {
        match (self, op) {
            (Face::Evs, Op::Create) => 3,
            _ => 2,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Op {
    Create,
    Publish,
    Unpublish,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Create => "CreateVolume",
            Op::Publish => "ControllerPublish",
            Op::Unpublish => "ControllerUnpublish",
        }
    }
}

/// One measured operation.
struct Sample {
    calls: u64,
    wall: Duration,
    /// The transition time the cloud was set to for it.
    latency: Duration,
}

/// A small deterministic generator, so runs draw the same jitter.
struct SplitMix(u64);

impl SplitMix {
    /// Uniform in [-1, 1].
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

/// Transition latencies and the operations measured at each after the warm-up. The 5 s rows
/// keep eight: fewer, and one early look moves a mean by a third of a call.
const LATENCIES: [(u64, usize); 3] = [(200, 10), (1000, 10), (5000, 8)];

/// One independent sequence: a cloud face, steady or jittered, run through every L on an
/// emulator of its own.
#[derive(Clone, Copy)]
struct Sequence {
    face: Face,
    jitter: f64,
}

/// Which sequences and latencies to run, from the environment (docs/benchmarks.md):
/// `BENCH_SEQ_FACES=cinder,evs`, `BENCH_SEQ_JITTER=steady,jitter`, `BENCH_SEQ_MAX_MS=1000`.
fn selected() -> (Vec<Sequence>, Vec<(u64, usize)>) {
    let list = |key: &str| std::env::var(key).ok().map(|v| v.to_ascii_lowercase());
    let faces = list("BENCH_SEQ_FACES");
    let jitters = list("BENCH_SEQ_JITTER");
    let max_ms: u64 = std::env::var("BENCH_SEQ_MAX_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let wants = |filter: &Option<String>, name: &str| {
        filter.as_ref().is_none_or(|f| f.split(',').any(|x| x.trim() == name))
    };
    let mut sequences = Vec::new();
    for jitter in [0.0, JITTER] {
        for face in [Face::Cinder, Face::Evs] {
            let jitter_name = if jitter > 0.0 { "jitter" } else { "steady" };
            if wants(&faces, &face.name().to_ascii_lowercase()) && wants(&jitters, jitter_name) {
                sequences.push(Sequence { face, jitter });
            }
        }
    }
    let latencies = LATENCIES.into_iter().filter(|(ms, _)| *ms <= max_ms).collect();
    (sequences, latencies)
}

/// Every sequential row, appending to `rows`. The sequences run at once, each on its own
/// emulator and controller: they are bound by the cloud's transition time, not by the CPU, so
/// they do not slow each other (the notes of docs/benchmarks.md give the load they ran under),
/// and the bench takes the time of one sequence instead of four.
pub async fn run(dir: &Path, rows: &mut Vec<Row>) {
    let (sequences, latencies) = selected();
    let mut runs = tokio::task::JoinSet::new();
    for (index, sequence) in sequences.iter().enumerate() {
        let (dir, sequence, latencies) = (dir.to_path_buf(), *sequence, latencies.clone());
        runs.spawn(async move { (index, run_sequence(&dir, sequence, &latencies).await) });
    }
    let mut results: Vec<_> = runs.join_all().await;
    results.sort_by_key(|(index, _)| *index);
    let results: Vec<_> = results.into_iter().map(|(_, by_latency)| by_latency).collect();
    let mut go_rows = Vec::new();
    for &(latency_ms, _) in &latencies {
        for (sequence, by_latency) in sequences.iter().zip(&results) {
            let samples = &by_latency[&latency_ms];
            let latency = Duration::from_millis(latency_ms);
            for op in [Op::Create, Op::Publish, Op::Unpublish] {
                rows.push(ours(sequence.face, op, latency, sequence.jitter, &samples[&op]));
            }
            go_rows.push(go_model(sequence.face, latency, sequence.jitter, samples));
        }
    }
    rows.extend(go_rows);
}

/// One sequence through every latency, on a fresh emulator.
async fn run_sequence(
    dir: &Path,
    sequence: Sequence,
    latencies: &[(u64, usize)],
) -> BTreeMap<u64, BTreeMap<Op, Vec<Sample>>> {
    let name = format!("seq-{}-{}", sequence.face.name(), (sequence.jitter * 100.0) as u32);
    let state = crate::cloud::named_state_dir(dir, &name);
    let cloud = cinder_evs_csi::emulator::start(crate::cloud::emulator_config(state))
        .await
        .expect("start the emulator");
    let server_id = cloud.this_host_server_id().expect("the emulator has this host's server");
    let mut out = BTreeMap::new();
    for &(latency_ms, measured) in latencies {
        let samples =
            measure(dir, &cloud, &server_id, sequence.face, latency_ms, sequence.jitter, measured).await;
        out.insert(latency_ms, samples);
    }
    cloud.shutdown().await;
    out
}

async fn measure(
    dir: &Path,
    cloud: &EmulatorHandle,
    server_id: &str,
    face: Face,
    latency_ms: u64,
    jitter: f64,
    measured: usize,
) -> BTreeMap<Op, Vec<Sample>> {
    let tag = format!("{}-{}", face.name(), (jitter * 100.0) as u32);
    let config = dir.join(format!("sequential-{tag}.yaml"));
    std::fs::write(&config, crate::cloud::clouds_yaml(cloud, face == Face::Evs)).expect("write clouds.yaml");
    let args = ["controller", "--cloud-config", config.to_str().unwrap(), "--cluster-id", "bench-seq"];
    let driver = Driver::spawn(dir, &format!("sequential-{tag}"), &args);
    let mut client = ControllerClient::new(driver.ready().await);
    let mut random = SplitMix(latency_ms ^ ((jitter * 100.0) as u64) << 20);
    let mut samples: BTreeMap<Op, Vec<Sample>> = BTreeMap::new();
    for round in 0..WARM_UP + measured {
        let mut draw = || {
            let ms = latency_ms as f64 * (1.0 + jitter * random.unit());
            set_latency(cloud, ms.round() as u64);
            Duration::from_millis(ms.round() as u64)
        };
        let name = format!("seq-{}-{latency_ms}-{}-{round}", face.name(), (jitter * 100.0) as u32);
        let latency = draw();
        let (volume_id, sample) = timed(cloud, latency, create(&mut client, face, name)).await;
        let record = round >= WARM_UP;
        if record {
            samples.entry(Op::Create).or_default().push(sample);
        }
        let latency = draw();
        let (_, sample) = timed(cloud, latency, publish(&mut client, &volume_id, server_id)).await;
        if record {
            samples.entry(Op::Publish).or_default().push(sample);
        }
        let latency = draw();
        let (_, sample) = timed(cloud, latency, unpublish(&mut client, &volume_id, server_id)).await;
        if record {
            samples.entry(Op::Unpublish).or_default().push(sample);
        }
    }
    drop(driver);
    set_latency(cloud, 0);
    samples
}

async fn timed<T>(
    cloud: &EmulatorHandle,
    latency: Duration,
    operation: impl std::future::Future<Output = T>,
) -> (T, Sample) {
    let before = calls(cloud);
    let started = Instant::now();
    let out = operation.await;
    let wall = started.elapsed();
    (out, Sample { calls: calls(cloud) - before, wall, latency })
}

fn calls(cloud: &EmulatorHandle) -> u64 {
    cloud.cloud().counters().snapshot().values().sum()
}

fn set_latency(cloud: &EmulatorHandle, ms: u64) {
    cloud.cloud().set_latency(Latency { default_ms: ms, transitions: BTreeMap::new() });
}

async fn create(client: &mut ControllerClient<Channel>, face: Face, name: String) -> String {
    let mut parameters = HashMap::new();
    // EVS data disks start at 10 GiB.
    let mut gib = 1;
    if face == Face::Evs {
        parameters.insert("availability".to_string(), "nova".to_string());
        gib = 10;
    }
    let request = pb::CreateVolumeRequest {
        name,
        capacity_range: Some(pb::CapacityRange { required_bytes: gib << 30, limit_bytes: 0 }),
        volume_capabilities: vec![crate::requests::mount_capability()],
        parameters,
        ..Default::default()
    };
    let response = client.create_volume(request).await.expect("CreateVolume");
    response.into_inner().volume.expect("a volume").volume_id
}

async fn publish(client: &mut ControllerClient<Channel>, volume_id: &str, node_id: &str) {
    let request = pb::ControllerPublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        volume_capability: Some(crate::requests::mount_capability()),
        ..Default::default()
    };
    client.controller_publish_volume(request).await.expect("ControllerPublishVolume");
}

async fn unpublish(client: &mut ControllerClient<Channel>, volume_id: &str, node_id: &str) {
    let request = pb::ControllerUnpublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        ..Default::default()
    };
    client.controller_unpublish_volume(request).await.expect("ControllerUnpublishVolume");
}

fn jitter_text(jitter: f64) -> String {
    if jitter > 0.0 { format!(" ± {:.0} %", jitter * 100.0) } else { String::new() }
}

/// Our row: mean calls per operation against 4, wall time against L.
fn ours(face: Face, op: Op, latency: Duration, jitter: f64, samples: &[Sample]) -> Row {
    let n = samples.len();
    let mean_calls = samples.iter().map(|s| s.calls as f64).sum::<f64>() / n as f64;
    let max_calls = samples.iter().map(|s| s.calls).max().unwrap_or(0);
    let mut walls: Vec<Duration> = samples.iter().map(|s| s.wall).collect();
    let wall_median = median(&mut walls);
    let wall_p95 = percentile(&mut walls, 95.0);
    let median_limit = latency.mul_f64(1.05) + Duration::from_millis(50);
    let p95_limit = latency.mul_f64(1.10) + Duration::from_millis(100);
    // How late the driver saw each transition, against the time it actually took.
    let mut late: Vec<Duration> = samples.iter().map(|s| s.wall.saturating_sub(s.latency)).collect();
    let late_median = median(&mut late);
    let late_p95 = percentile(&mut late, 95.0);
    // The cloud's own p95: under jitter the target can sit below it, and no poller beats it.
    let mut transitions: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    let cloud_p95 = percentile(&mut transitions, 95.0);
    let calls_ok = mean_calls <= CALL_TARGET;
    let median_ok = wall_median <= median_limit;
    let p95_ok = wall_p95 <= p95_limit;
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    Row {
        name: format!(
            "{} {}, sequential, L = {}{}: cloud API calls per operation (mean of {n}, after {WARM_UP} warm-up)",
            face.name(),
            op.name(),
            time(latency),
            jitter_text(jitter)
        ),
        measured: format!("{mean_calls:.2}"),
        compared_to: format!("{CALL_TARGET:.0}"),
        ratio: format!("{:.3}", mean_calls / CALL_TARGET),
        target: "≤ 1.00; wall median ≤ 1.05 L + 50 ms, p95 ≤ 1.10 L + 100 ms".into(),
        verdict: Verdict::of(calls_ok && median_ok && p95_ok),
        note: format!(
            "calls {} (max {max_calls}); wall median {} ({}, ≤ {}), p95 {} ({}, ≤ {}){}; seen after the transition: median {}, p95 {}",
            verdict(calls_ok),
            time(wall_median),
            verdict(median_ok),
            time(median_limit),
            time(wall_p95),
            verdict(p95_ok),
            time(p95_limit),
            if jitter > 0.0 {
                let flaw =
                    if cloud_p95 > p95_limit { ", above the p95 target: no poller can meet it" } else { "" };
                format!(" [the cloud's own transition p95: {}{flaw}]", time(cloud_p95))
            } else {
                String::new()
            },
            time(late_median),
            time(late_p95),
        ),
    }
}

/// Polls and wall time of a Go poller that sleeps `first`, then `factor` times longer each
/// time, and polls after each sleep until the transition (`latency`) is over.
fn go_poller(latency: Duration, (first, factor): (f64, f64)) -> (usize, Duration) {
    let (mut total, mut step, mut polls) = (0.0, first, 0);
    while total < latency.as_secs_f64() {
        total += step;
        step *= factor;
        polls += 1;
    }
    (polls, Duration::from_secs_f64(total))
}

/// The modelled Go poller on the same transitions: one row per cloud, L and jitter.
fn go_model(face: Face, latency: Duration, jitter: f64, samples: &BTreeMap<Op, Vec<Sample>>) -> Row {
    let backoff = face.go_backoff();
    let mut parts = Vec::new();
    let mut all_calls = Vec::new();
    for (op, samples) in samples {
        let modelled: Vec<(usize, Duration)> =
            samples.iter().map(|s| go_poller(s.latency, backoff)).collect();
        let calls = modelled.iter().map(|(polls, _)| (polls + face.go_fixed_calls(*op)) as f64).sum::<f64>()
            / modelled.len() as f64;
        let mut walls: Vec<Duration> = modelled.iter().map(|(_, w)| *w).collect();
        all_calls.push(calls);
        parts.push(format!("{}: {calls:.2} calls, wall median {}", op.name(), time(median(&mut walls))));
    }
    let mean = all_calls.iter().sum::<f64>() / all_calls.len().max(1) as f64;
    Row {
        name: format!(
            "Modelled Go poller ({} s × {}), {}, sequential, L = {}{}: cloud API calls per operation",
            backoff.0,
            backoff.1,
            face.name(),
            time(latency),
            jitter_text(jitter)
        ),
        measured: format!("{mean:.2}"),
        compared_to: "-".into(),
        ratio: "-".into(),
        target: "(reference)".into(),
        verdict: Verdict::Met,
        note: parts.join("; "),
    }
}
