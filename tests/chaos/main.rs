//! The chaos soak (issue #10): a seeded random workload over dozens of volumes (create, delete,
//! attach, stage, publish, write, snapshot, restore, expand, modify and their reverses) against
//! the real driver processes, while the emulator fails about 20 % of API requests (503, 500,
//! 429 with Retry-After, slow answers, dropped connections, lost responses) and the driver is
//! SIGKILLed and restarted at random moments. Every RPC is retried until it succeeds, as the
//! CSI sidecars do. Afterwards: the cloud holds exactly what the workload believes, once each
//! by name; every byte written reads back unchanged (after restarts, expansions, restores and
//! at the end); clean-up leaves no volume, snapshot, attachment, mount, loop device, link or
//! directory behind; and no driver log holds a secret. It runs once with the driver configured
//! for the OpenStack side and once for the Huawei side (EVS/ECS), one run at a time.
//!
//! `CHAOS_SEED`, `CHAOS_OPS`, `CHAOS_LANES`, `CHAOS_TOPOLOGY` (split|all) and
//! `CHAOS_KILL_EVERY_MS` set the run; the seed is printed at the start. Needs root (loop
//! devices, mounts): fails under CI without it, says SKIPPED otherwise. Its paths are its own
//! (temporary directories, `losetup --find`), so it runs beside the other node tests.

mod harness;

use harness::workload::Flavor;
use harness::{Settings, run};

/// The soaks take the machine's loop devices and cores; one runs at a time.
static ONE_SOAK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn soak(test: &str, flavor: Flavor) {
    if !testkit::root_or_skip(test) {
        return;
    }
    let _turn = ONE_SOAK_AT_A_TIME.lock().await;
    let settings = Settings { flavor, ..Settings::from_env() };
    if !harness::workload::can_grow_filesystems() {
        eprintln!("chaos: no CAP_SYS_RESOURCE here, so only raw block volumes are expanded");
    }
    eprintln!(
        "chaos: {flavor:?}, seed {} ({} ops, {} lanes, {:?}); repeat with CHAOS_SEED={} CHAOS_OPS={}",
        settings.seed, settings.ops, settings.lanes, settings.topology, settings.seed, settings.ops
    );
    let summary = run(settings).await;
    eprintln!("chaos: done in {:?}: {summary:?}", summary.elapsed);
    assert!(summary.tally.ops.values().sum::<u64>() > 0, "the workload did nothing");
    assert!(summary.kills > 0 && summary.retries > 0, "the run saw no chaos: {summary:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_seeded_workload_under_faults_and_killed_drivers_keeps_every_invariant() {
    soak("a_seeded_workload_under_faults_and_killed_drivers_keeps_every_invariant", Flavor::OpenStack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_workload_on_the_huawei_side_keeps_every_invariant() {
    soak("the_same_workload_on_the_huawei_side_keeps_every_invariant", Flavor::Huawei).await;
}
