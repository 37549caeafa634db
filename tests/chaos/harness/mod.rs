//! The chaos soak: a seeded workload of concurrent lanes drives the real driver processes
//! against the emulator while the emulator injects faults into a fifth of the API requests and
//! a killer SIGKILLs and restarts the driver at random moments; then the invariants are
//! checked (see `invariants`).

pub mod data;
pub mod fleet;
pub mod invariants;
pub mod workload;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cinder_evs_emulator::EmulatorConfig;
use reqwest::Method;
use serde_json::json;

use fleet::{Fleet, Topology};
use testkit::cloud::{Auth, HuaweiAuth, TestCloud, clouds_yaml, huawei_yaml};
use workload::{Flavor, Lane};

/// splitmix64: the one source of the run's randomness.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, on stream `stream` (lanes and the killer each get their own).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut state = seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F);
        splitmix(&mut state);
        Self(state)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        splitmix(&mut self.0)
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A duration in `[low, high)`.
    pub fn duration(&mut self, low: Duration, high: Duration) -> Duration {
        let span = (high - low).as_millis() as u64;
        low + Duration::from_millis(self.below(span.max(1)))
    }
}

/// What a run is asked to do; every field comes from a `CHAOS_*` variable when set.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `CHAOS_SEED` (default: random, printed).
    pub seed: u64,
    /// `CHAOS_OPS`: operations in all lanes together (default 600).
    pub ops: usize,
    /// `CHAOS_LANES`: concurrent lanes, each owning its volumes (default 4).
    pub lanes: usize,
    /// `CHAOS_TOPOLOGY`: `split` or `all` (default: by the seed's parity).
    pub topology: Topology,
    /// `CHAOS_KILL_EVERY_MS`: SIGKILLs come every `[n/2, 3n/2)` ms (default 2500).
    pub kill_every: Duration,
    /// Which cloud side the driver is configured for (set by the test, not the environment).
    pub flavor: Flavor,
}

impl Settings {
    /// The settings from the environment.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let number = |name: &str, default: u64| {
            var(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")))
        };
        let seed = number("CHAOS_SEED", uuid::Uuid::new_v4().as_u64_pair().0 >> 16);
        let topology = match var("CHAOS_TOPOLOGY").as_deref() {
            Some("split") => Topology::Split,
            Some("all") => Topology::All,
            None if seed % 2 == 0 => Topology::Split,
            None => Topology::All,
            Some(other) => panic!("CHAOS_TOPOLOGY={other}: use split or all"),
        };
        Self {
            seed,
            ops: number("CHAOS_OPS", 600) as usize,
            lanes: number("CHAOS_LANES", 4).max(1) as usize,
            topology,
            kill_every: Duration::from_millis(number("CHAOS_KILL_EVERY_MS", 2500).max(2)),
            flavor: Flavor::OpenStack,
        }
    }
}

/// The fault mix: about 20 % of API requests (Keystone, Cinder, Nova, EVS, ECS) fail in one of
/// these ways.
fn fault_rules() -> serde_json::Value {
    json!({"faults": [
        {"action": {"kind": "error", "status": 503}, "rate": 0.06},
        {"action": {"kind": "error", "status": 500}, "rate": 0.03},
        {"action": {"kind": "error", "status": 429, "retry_after": 1}, "rate": 0.03},
        {"action": {"kind": "slow", "delay_ms": 400}, "rate": 0.05},
        {"action": {"kind": "drop"}, "rate": 0.02},
        {"action": {"kind": "drop_response"}, "rate": 0.03},
    ]})
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    pub kills: u64,
    pub retries: u64,
    pub tally: workload::Tally,
    pub elapsed: Duration,
}

/// Runs the soak and checks every invariant; panics on the first violation.
pub async fn run(settings: Settings) -> Summary {
    let started = Instant::now();
    let cloud = TestCloud::start_with(|c: &mut EmulatorConfig| {
        c.metadata_listen = None;
        c.loop_devices = true;
        c.latency = Duration::from_millis(20);
        c.seed = settings.seed;
        for quota in ["volumes", "snapshots", "gigabytes"] {
            c.default_quotas.insert(quota.into(), -1);
        }
    })
    .await;
    let work = tempfile::tempdir().unwrap();
    let _leftovers = invariants::Leftovers {
        work: work.path().to_path_buf(),
        state: cloud.handle.cloud().config().state_dir.clone(),
    };
    let config = work.path().join("clouds.yaml");
    let yaml = match settings.flavor {
        Flavor::OpenStack => clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""),
        Flavor::Huawei => huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), ""),
    };
    std::fs::write(&config, yaml).unwrap();
    let node_id = cloud.handle.this_host_server_id().expect("the emulator has this host as a server");
    let by_id = cloud.handle.cloud().config().by_id_dir();
    std::fs::create_dir_all(&by_id).unwrap();
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let controller = strings(&[
        "--cloud-config",
        config.to_str().unwrap(),
        "--cluster-id",
        "chaos",
        "--create-timeout",
        "60s",
        "--attach-timeout",
        "60s",
        "--log-level",
        "debug",
    ]);
    let node = strings(&[
        "--node-id",
        &node_id,
        "--device-search-dirs",
        by_id.to_str().unwrap(),
        "--device-wait-timeout",
        "30s",
    ]);
    let fleet = Arc::new(Fleet::start(settings.topology, work.path(), &controller, &node));
    let reply = cloud.admin(Method::PUT, "/faults", Some(fault_rules())).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);

    // The workload, under faults and kills.
    let kill_window = (settings.kill_every / 2, settings.kill_every * 3 / 2);
    let stop = Arc::new(AtomicBool::new(false));
    let killer = spawn_killer(&fleet, Rng::new(settings.seed, 0), kill_window, &stop);
    let per_lane = settings.ops.div_ceil(settings.lanes);
    let mut handles = Vec::new();
    for index in 0..settings.lanes {
        let mut lane = Lane::new(
            index,
            settings.flavor,
            fleet.clone(),
            Rng::new(settings.seed, index as u64 + 1),
            node_id.clone(),
            work.path(),
            settings.seed,
        );
        handles.push(tokio::spawn(async move {
            lane.run(per_lane).await;
            lane
        }));
    }
    let mut lanes = join(handles).await;
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();

    // Invariant: the cloud holds exactly what the workload believes, once each.
    invariants::cloud_matches_model(&cloud, &lanes).await;

    // Clean-up through the driver, still under faults and kills; every byte is read once more.
    stop.store(false, Ordering::Relaxed);
    let killer = spawn_killer(&fleet, Rng::new(settings.seed, 1 << 32), kill_window, &stop);
    let handles: Vec<_> = lanes
        .drain(..)
        .map(|mut lane| {
            tokio::spawn(async move {
                lane.clean_up().await;
                lane
            })
        })
        .collect();
    let lanes = join(handles).await;
    stop.store(true, Ordering::Relaxed);
    killer.await.unwrap();
    cloud.admin(Method::DELETE, "/faults", None).await;

    // Invariants: nothing left in the cloud or on the node.
    invariants::cloud_is_empty(&cloud).await;
    invariants::node_is_clean(work.path(), &cloud, &lanes);

    fleet.stop();
    let mut tally = workload::Tally::default();
    for lane in &lanes {
        for (op, n) in &lane.tally.ops {
            *tally.ops.entry(op).or_default() += n;
        }
        tally.verified_slots += lane.tally.verified_slots;
        tally.restores_verified += lane.tally.restores_verified;
        tally.restored_slots += lane.tally.restored_slots;
    }
    let summary = Summary {
        kills: fleet.kills.load(Ordering::Relaxed),
        retries: fleet.retries.load(Ordering::Relaxed),
        tally,
        elapsed: started.elapsed(),
    };
    // The last processes' output goes through the secret scan as their Drivers drop.
    drop(lanes);
    drop(fleet);
    cloud.handle.shutdown().await;
    summary
}

fn spawn_killer(
    fleet: &Arc<Fleet>,
    rng: Rng,
    window: (Duration, Duration),
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    let (fleet, stop) = (fleet.clone(), stop.clone());
    tokio::spawn(async move { fleet::killer(fleet, rng, window, &stop).await })
}

/// Waits for every lane; a lane's panic fails the run with its own message.
async fn join(handles: Vec<tokio::task::JoinHandle<Lane>>) -> Vec<Lane> {
    let mut lanes = Vec::new();
    for handle in handles {
        match handle.await {
            Ok(lane) => lanes.push(lane),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("lane cancelled: {e}"),
        }
    }
    lanes
}
