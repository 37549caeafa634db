//! What must hold after a chaos run, checked on the emulator's state (in process) and on this
//! machine, plus the guard that clears a failed run's leftovers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::cloud::TestCloud;

use super::workload::Lane;

/// One cloud object as the invariants see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Object {
    id: String,
    status: String,
}

struct CloudView {
    volumes: BTreeMap<String, Vec<Object>>,
    snapshots: BTreeMap<String, Vec<Object>>,
    /// Volume id -> server ids of its attachments.
    attachments: BTreeMap<String, Vec<String>>,
}

fn view(cloud: &TestCloud) -> CloudView {
    cloud.handle.cloud().read(|w| {
        let mut view =
            CloudView { volumes: BTreeMap::new(), snapshots: BTreeMap::new(), attachments: BTreeMap::new() };
        for store in w.stores.values() {
            for v in store.volumes.values() {
                view.volumes
                    .entry(v.name.clone())
                    .or_default()
                    .push(Object { id: v.id.clone(), status: v.status.clone() });
                if !v.attachments.is_empty() {
                    view.attachments.insert(
                        v.id.clone(),
                        v.attachments.iter().map(|a| a.server_id.clone().unwrap_or_default()).collect(),
                    );
                }
            }
            for s in store.snapshots.values() {
                view.snapshots
                    .entry(s.name.clone())
                    .or_default()
                    .push(Object { id: s.id.clone(), status: s.status.clone() });
            }
        }
        view
    })
}

/// Waits (a hang guard only) until no volume or snapshot is still being deleted.
async fn settled(cloud: &TestCloud) -> CloudView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = view(cloud);
        let busy =
            view.volumes.values().chain(view.snapshots.values()).flatten().any(|o| o.status == "deleting");
        if !busy {
            return view;
        }
        assert!(Instant::now() < deadline, "deletions never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every volume and snapshot the workload believes exists is in the cloud exactly once by
/// name, with the id the driver returned; nothing else is; and the cloud's attachments are
/// exactly the workload's.
pub async fn cloud_matches_model(cloud: &TestCloud, lanes: &[Lane]) {
    let view = settled(cloud).await;
    let mut problems = Vec::new();
    let mut expected_volumes = BTreeMap::new();
    let mut expected_snapshots = BTreeMap::new();
    let mut expected_attachments = BTreeMap::new();
    for lane in lanes {
        for v in &lane.volumes {
            expected_volumes.insert(v.name.clone(), v.id.clone());
            if v.publish_context.is_some() {
                expected_attachments.insert(v.id.clone(), 1usize);
            }
        }
        for s in &lane.snapshots {
            expected_snapshots.insert(s.name.clone(), s.id.clone());
        }
    }
    for (kind, expected, actual) in
        [("volume", &expected_volumes, &view.volumes), ("snapshot", &expected_snapshots, &view.snapshots)]
    {
        for (name, id) in expected {
            match actual.get(name).map(Vec::as_slice) {
                Some([one]) if one.id == *id => {}
                Some([one]) => {
                    problems.push(format!("{kind} {name} is {} in the cloud, {id} to the workload", one.id))
                }
                Some(many) => problems.push(format!("{kind} {name} exists {} times: {many:?}", many.len())),
                None => problems.push(format!("{kind} {name} ({id}) is missing from the cloud")),
            }
        }
        for (name, objects) in actual {
            if !expected.contains_key(name) {
                problems.push(format!("{kind} {name} has no owner in the workload: {objects:?}"));
            }
        }
    }
    for (volume, servers) in &view.attachments {
        if expected_attachments.get(volume) != Some(&servers.len()) {
            problems
                .push(format!("volume {volume} is attached to {servers:?}; the workload has it detached"));
        }
    }
    for volume in expected_attachments.keys() {
        if !view.attachments.contains_key(volume) {
            problems.push(format!("volume {volume} is not attached; the workload has it attached"));
        }
    }
    assert!(problems.is_empty(), "the cloud does not match the workload:\n{}", problems.join("\n"));
}

/// After clean-up no volume, snapshot or attachment is left in the cloud.
pub async fn cloud_is_empty(cloud: &TestCloud) {
    let view = settled(cloud).await;
    assert!(view.volumes.is_empty(), "volumes left in the cloud: {:?}", view.volumes);
    assert!(view.snapshots.is_empty(), "snapshots left in the cloud: {:?}", view.snapshots);
    assert!(view.attachments.is_empty(), "attachments left in the cloud: {:?}", view.attachments);
}

/// Loop devices whose backing file lies under `dir`.
pub fn loop_devices_under(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let backing = std::fs::read_to_string(e.path().join("loop/backing_file")).ok()?;
            let backing = backing.trim().to_string();
            backing
                .starts_with(&dir.display().to_string())
                .then(|| (format!("/dev/{}", e.file_name().to_string_lossy()), backing))
        })
        .collect()
}

/// Mount points under `dir`, deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = cinder_evs_csi::host::mount::mounts()
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points
}

/// After clean-up: no mount under the workload's directory, no loop device of the cloud's,
/// no by-id link, and no staging directory or publish target the workload ever used.
pub fn node_is_clean(work: &Path, cloud: &TestCloud, lanes: &[Lane]) {
    assert_eq!(mounts_under(work), Vec::<PathBuf>::new(), "mounts left on the node");
    let state = cloud.handle.cloud().config().state_dir.clone();
    assert_eq!(loop_devices_under(&state), Vec::new(), "loop devices left on the node");
    let by_id = cloud.handle.cloud().config().by_id_dir();
    let links: Vec<_> =
        std::fs::read_dir(&by_id).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert_eq!(links, Vec::<PathBuf>::new(), "by-id links left on the node");
    let left: Vec<&PathBuf> = lanes.iter().flat_map(|l| &l.paths).filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "staging directories or targets left on the node: {left:?}");
}

/// Clears what a failed run left on this machine (mounts under `work`, loop devices of the
/// cloud under `state`), so one failure does not leak into the next test.
pub struct Leftovers {
    pub work: PathBuf,
    pub state: PathBuf,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for point in mounts_under(&self.work) {
            let _ = nix::mount::umount2(&point, nix::mount::MntFlags::MNT_DETACH);
        }
        for (device, _) in loop_devices_under(&self.state) {
            let _ = std::process::Command::new("losetup").args(["-d", &device]).status();
        }
    }
}
