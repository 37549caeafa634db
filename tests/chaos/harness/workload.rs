//! The workload of one lane: a seeded sequence of the operations a CO performs on the volumes
//! the lane owns, each chosen among those valid in the lane's model, each sent until it
//! succeeds, the model updated only then.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::csi::pb::node_client::NodeClient;

use super::Rng;
use super::data::{self, Contents, SLOTS};
use super::fleet::{Fleet, Role};

const GIB: i64 = 1 << 30;
/// Volumes a lane keeps at most.
const MAX_VOLUMES: usize = 6;
/// Volumes a lane keeps attached at most (each attached volume is a loop device).
const MAX_ATTACHED: usize = 3;
/// GiB a volume may grow by.
const MAX_GROWTH_GIB: i64 = 2;
/// Snapshots a lane keeps at most.
const MAX_SNAPSHOTS: usize = 6;

/// The cloud side the soak drives, and what differs between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Keystone, Cinder and Nova.
    OpenStack,
    /// EVS and ECS with AK/SK.
    Huawei,
}

impl Flavor {
    /// The size of a new volume: EVS data disks start at 10 GiB.
    fn base_gib(self) -> i64 {
        match self {
            Self::OpenStack => 1,
            Self::Huawei => 10,
        }
    }

    /// The types a create picks from: two Cinder types of one backend (a retype moves nothing,
    /// even in use), or an EVS type without and one with provisioned performance.
    fn types(self) -> [&'static str; 2] {
        match self {
            Self::OpenStack => ["__DEFAULT__", "lvmdriver-1"],
            Self::Huawei => ["SSD", "GPSSD2"],
        }
    }

    /// StorageClass parameters every create carries: EVS needs a zone, which the workload's
    /// requests (without topology) leave to the `availability` parameter.
    fn class_parameters(self) -> HashMap<String, String> {
        match self {
            Self::OpenStack => HashMap::new(),
            Self::Huawei => HashMap::from([("availability".to_string(), "nova".to_string())]),
        }
    }

    /// Whether a volume of `volume_type` can be modified: any Cinder volume can be retyped;
    /// EVS cannot change a disk's type, only a GPSSD2 disk's IOPS and throughput.
    fn can_modify(self, volume_type: Option<&str>) -> bool {
        self == Self::OpenStack || volume_type == Some("GPSSD2")
    }

    /// The mutable parameters of a modify of a volume [`Self::can_modify`] allows.
    fn modification(self, rng: &mut Rng) -> HashMap<String, String> {
        match self {
            Self::OpenStack => {
                HashMap::from([("type".to_string(), self.types()[rng.below(2) as usize].to_string())])
            }
            Self::Huawei => HashMap::from([
                ("iops".to_string(), (3000 + 1000 * rng.below(3)).to_string()),
                ("throughput".to_string(), (125 + 25 * rng.below(3)).to_string()),
            ]),
        }
    }
}

/// A volume as the workload believes it is.
#[derive(Clone, Debug)]
pub struct Volume {
    pub name: String,
    pub id: String,
    pub gib: i64,
    pub block: bool,
    /// The type asked for (or inherited from the snapshot's source); `None`: the default.
    pub volume_type: Option<String>,
    pub context: HashMap<String, String>,
    pub publish_context: Option<HashMap<String, String>>,
    pub staged: bool,
    pub published: bool,
    /// The cloud grew the volume but the filesystem has not been grown yet.
    pub node_expansion_pending: bool,
    pub contents: Contents,
}

/// A snapshot as the workload believes it is.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub name: String,
    pub id: String,
    /// The source volume's id.
    pub source: String,
    pub gib: i64,
    pub block: bool,
    pub volume_type: Option<String>,
    pub contents: Contents,
}

/// What a lane did, for the summary line.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub ops: BTreeMap<&'static str, u64>,
    pub verified_slots: u64,
    pub restores_verified: u64,
    /// Slots read back from volumes restored from snapshots.
    pub restored_slots: u64,
}

/// One lane of the workload and its model.
pub struct Lane {
    flavor: Flavor,
    fleet: Arc<Fleet>,
    rng: Rng,
    node_id: String,
    work: PathBuf,
    prefix: String,
    created: u64,
    pub volumes: Vec<Volume>,
    pub snapshots: Vec<Snapshot>,
    /// Every staging and target path the lane ever used, checked after clean-up.
    pub paths: Vec<PathBuf>,
    pub tally: Tally,
    /// Online ext4 growth needs CAP_SYS_RESOURCE, which some container sandboxes deny even
    /// to root; without it only raw block volumes are expanded.
    grow_filesystems: bool,
}

/// True when this process holds CAP_SYS_RESOURCE (the driver it starts inherits it).
pub fn can_grow_filesystems() -> bool {
    testkit::has_capability(testkit::CAP_SYS_RESOURCE)
}

fn capability(block: bool) -> pb::VolumeCapability {
    if block { testkit::requests::block_cap() } else { testkit::requests::mount_cap() }
}

fn range(gib: i64) -> Option<pb::CapacityRange> {
    Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 })
}

impl Lane {
    /// A lane with an empty model.
    pub fn new(
        index: usize,
        flavor: Flavor,
        fleet: Arc<Fleet>,
        rng: Rng,
        node_id: String,
        work: &Path,
        seed: u64,
    ) -> Self {
        Self {
            flavor,
            fleet,
            rng,
            node_id,
            work: work.join(format!("lane-{index}")),
            prefix: format!("chaos-{seed:x}-{index}"),
            created: 0,
            volumes: Vec::new(),
            snapshots: Vec::new(),
            paths: Vec::new(),
            tally: Tally::default(),
            grow_filesystems: can_grow_filesystems(),
        }
    }

    fn staging(&self, v: &Volume) -> PathBuf {
        self.work.join("staging").join(&v.name)
    }

    fn target(&self, v: &Volume) -> PathBuf {
        self.work.join("pods").join(&v.name).join("volume")
    }

    fn count(&mut self, op: &'static str) {
        *self.tally.ops.entry(op).or_default() += 1;
    }

    /// Runs `ops` operations chosen at random among those the model allows.
    pub async fn run(&mut self, ops: usize) {
        for _ in 0..ops {
            self.step().await;
        }
    }

    async fn step(&mut self) {
        let attached = self.volumes.iter().filter(|v| v.publish_context.is_some()).count();
        // (operation, volume, weight): writes are the most common step, so snapshots and
        // restores carry data, while volumes still go through their whole life often.
        let mut choices: Vec<(&'static str, Option<usize>, u64)> = Vec::new();
        if self.volumes.len() < MAX_VOLUMES {
            choices.push(("create", None, 4));
            if !self.snapshots.is_empty() {
                choices.push(("restore", None, 4));
            }
        }
        for (i, v) in self.volumes.iter().enumerate() {
            let has_snapshots = self.snapshots.iter().any(|s| s.source == v.id);
            match (v.publish_context.is_some(), v.staged, v.published) {
                (false, _, _) => {
                    if !has_snapshots {
                        choices.push(("delete", Some(i), 2));
                    }
                    if attached < MAX_ATTACHED {
                        choices.push(("attach", Some(i), 3));
                    }
                }
                (true, false, _) => choices.extend([("stage", Some(i), 4), ("detach", Some(i), 2)]),
                (true, true, false) => choices.extend([("publish", Some(i), 4), ("unstage", Some(i), 2)]),
                (true, true, true) => {
                    choices.extend([
                        ("write", Some(i), 5),
                        ("verify", Some(i), 2),
                        ("unpublish", Some(i), 2),
                    ]);
                }
            }
            let online_or_offline = v.published || v.publish_context.is_none();
            let growable = v.block || self.grow_filesystems;
            if v.gib < self.flavor.base_gib() + MAX_GROWTH_GIB
                && online_or_offline
                && growable
                && !v.node_expansion_pending
            {
                choices.push(("expand", Some(i), 1));
            }
            // Snapshots of volumes holding data are what restores can check.
            let snapshot_weight = match (self.snapshots.len() < MAX_SNAPSHOTS, v.contents.is_empty()) {
                (false, _) => 0,
                (true, true) => 1,
                (true, false) => 3,
            };
            // The driver refuses to retype a volume with snapshots (Cinder 29 would strand it
            // in `retyping`; docs/cloud-limits.md), so the OpenStack lanes do not ask for it.
            let retype_refused =
                self.flavor == Flavor::OpenStack && self.snapshots.iter().any(|s| s.source == v.id);
            let modify_weight =
                u64::from(self.flavor.can_modify(v.volume_type.as_deref()) && !retype_refused);
            choices.extend([("snapshot", Some(i), snapshot_weight), ("modify", Some(i), modify_weight)]);
        }
        if !self.snapshots.is_empty() {
            choices.push(("delete-snapshot", None, 2));
        }
        let total: u64 = choices.iter().map(|c| c.2).sum();
        let mut draw = self.rng.below(total);
        let (op, index, _) = *choices
            .iter()
            .filter(|c| c.2 > 0)
            .find(|c| {
                let hit = draw < c.2;
                draw = draw.saturating_sub(c.2);
                hit
            })
            .expect("a choice");
        self.count(op);
        match (op, index) {
            ("create", _) => self.create(None).await,
            ("restore", _) => {
                // Snapshots that hold data are the ones a restore can check: prefer them.
                let with_data: Vec<usize> =
                    (0..self.snapshots.len()).filter(|s| !self.snapshots[*s].contents.is_empty()).collect();
                let s = if with_data.is_empty() {
                    self.rng.below(self.snapshots.len() as u64) as usize
                } else {
                    with_data[self.rng.below(with_data.len() as u64) as usize]
                };
                self.create(Some(s)).await
            }
            ("delete-snapshot", _) => {
                let s = self.rng.below(self.snapshots.len() as u64) as usize;
                self.delete_snapshot(s).await
            }
            ("delete", Some(i)) => self.delete(i).await,
            ("attach", Some(i)) => self.attach(i).await,
            ("detach", Some(i)) => self.detach(i).await,
            ("stage", Some(i)) => self.stage(i).await,
            ("unstage", Some(i)) => self.unstage(i).await,
            ("publish", Some(i)) => self.publish(i).await,
            ("unpublish", Some(i)) => self.unpublish(i).await,
            ("write", Some(i)) => self.write(i).await,
            ("verify", Some(i)) => self.verify(i, "a verify step").await,
            ("expand", Some(i)) => self.expand(i).await,
            ("snapshot", Some(i)) => self.snapshot(i).await,
            ("modify", Some(i)) => self.modify(i).await,
            other => unreachable!("{other:?}"),
        }
    }

    /// Creates a volume, empty or restored from snapshot `source`.
    pub async fn create(&mut self, source: Option<usize>) {
        self.created += 1;
        let name = format!("{}-v{}", self.prefix, self.created);
        let (gib, block, contents, content_source, inherited) = match source {
            Some(s) => {
                let snap = &self.snapshots[s];
                let source = pb::VolumeContentSource {
                    r#type: Some(pb::volume_content_source::Type::Snapshot(
                        pb::volume_content_source::SnapshotSource { snapshot_id: snap.id.clone() },
                    )),
                };
                (snap.gib, snap.block, snap.contents.clone(), Some(source), Some(snap.volume_type.clone()))
            }
            None => (self.flavor.base_gib(), self.rng.below(10) < 3, Contents::new(), None, None),
        };
        let mut parameters = self.flavor.class_parameters();
        let volume_type = match inherited {
            // An EVS disk restored from a snapshot keeps its source's type.
            Some(inherited) if self.flavor == Flavor::Huawei => inherited,
            _ if self.rng.below(2) == 0 => {
                let chosen = self.flavor.types()[self.rng.below(2) as usize].to_string();
                parameters.insert("type".to_string(), chosen.clone());
                Some(chosen)
            }
            _ => None,
        };
        let request = pb::CreateVolumeRequest {
            name: name.clone(),
            capacity_range: range(gib),
            volume_capabilities: vec![capability(block)],
            parameters,
            volume_content_source: content_source,
            ..Default::default()
        };
        let what = format!("CreateVolume {name}");
        let response = self
            .fleet
            .call(Role::Controller, &what, |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).create_volume(request).await }
            })
            .await;
        let volume = response.volume.expect("a volume");
        self.volumes.push(Volume {
            name,
            id: volume.volume_id,
            gib,
            block,
            volume_type,
            context: volume.volume_context,
            publish_context: None,
            staged: false,
            published: false,
            node_expansion_pending: false,
            contents,
        });
        if source.is_some() {
            // The restored bytes are checked as soon as the volume can be read.
            let i = self.volumes.len() - 1;
            self.bring_up(i).await;
            self.verify(i, "restore from snapshot").await;
            self.tally.restores_verified += 1;
            self.tally.restored_slots += self.volumes[i].contents.len() as u64;
        }
    }

    async fn delete(&mut self, i: usize) {
        let id = self.volumes[i].id.clone();
        let request = pb::DeleteVolumeRequest { volume_id: id.clone(), ..Default::default() };
        self.fleet
            .call(Role::Controller, &format!("DeleteVolume {id}"), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).delete_volume(request).await }
            })
            .await;
        self.volumes.remove(i);
    }

    async fn attach(&mut self, i: usize) {
        let v = &self.volumes[i];
        let request = pb::ControllerPublishVolumeRequest {
            volume_id: v.id.clone(),
            node_id: self.node_id.clone(),
            volume_capability: Some(capability(v.block)),
            ..Default::default()
        };
        let response = self
            .fleet
            .call(Role::Controller, &format!("ControllerPublishVolume {}", v.id), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).controller_publish_volume(request).await }
            })
            .await;
        self.volumes[i].publish_context = Some(response.publish_context);
    }

    async fn detach(&mut self, i: usize) {
        let request = pb::ControllerUnpublishVolumeRequest {
            volume_id: self.volumes[i].id.clone(),
            node_id: self.node_id.clone(),
            ..Default::default()
        };
        self.fleet
            .call(Role::Controller, &format!("ControllerUnpublishVolume {}", request.volume_id), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).controller_unpublish_volume(request).await }
            })
            .await;
        self.volumes[i].publish_context = None;
    }

    async fn stage(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        let staging = self.staging(&v);
        // The CO makes the staging directory; the plugin removes it at unstage.
        std::fs::create_dir_all(&staging).unwrap();
        self.paths.push(staging.clone());
        let request = pb::NodeStageVolumeRequest {
            volume_id: v.id.clone(),
            publish_context: v.publish_context.clone().unwrap_or_default(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(capability(v.block)),
            volume_context: v.context.clone(),
            ..Default::default()
        };
        self.fleet
            .call(Role::Node, &format!("NodeStageVolume {}", v.id), |c| {
                let request = request.clone();
                async move { NodeClient::new(c).node_stage_volume(request).await }
            })
            .await;
        self.volumes[i].staged = true;
    }

    async fn unstage(&mut self, i: usize) {
        let v = &self.volumes[i];
        let request = pb::NodeUnstageVolumeRequest {
            volume_id: v.id.clone(),
            staging_target_path: self.staging(v).display().to_string(),
        };
        self.fleet
            .call(Role::Node, &format!("NodeUnstageVolume {}", v.id), |c| {
                let request = request.clone();
                async move { NodeClient::new(c).node_unstage_volume(request).await }
            })
            .await;
        self.volumes[i].staged = false;
    }

    async fn publish(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        let target = self.target(&v);
        // The CO makes the target's parent; the plugin makes the target and removes it.
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        self.paths.push(target.clone());
        let request = pb::NodePublishVolumeRequest {
            volume_id: v.id.clone(),
            publish_context: v.publish_context.clone().unwrap_or_default(),
            staging_target_path: self.staging(&v).display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(capability(v.block)),
            volume_context: v.context.clone(),
            ..Default::default()
        };
        self.fleet
            .call(Role::Node, &format!("NodePublishVolume {}", v.id), |c| {
                let request = request.clone();
                async move { NodeClient::new(c).node_publish_volume(request).await }
            })
            .await;
        self.volumes[i].published = true;
        if v.node_expansion_pending {
            self.node_expand(i).await;
        }
    }

    async fn unpublish(&mut self, i: usize) {
        let v = &self.volumes[i];
        let request = pb::NodeUnpublishVolumeRequest {
            volume_id: v.id.clone(),
            target_path: self.target(v).display().to_string(),
        };
        self.fleet
            .call(Role::Node, &format!("NodeUnpublishVolume {}", v.id), |c| {
                let request = request.clone();
                async move { NodeClient::new(c).node_unpublish_volume(request).await }
            })
            .await;
        self.volumes[i].published = false;
    }

    /// Attaches, stages and publishes volume `i` as far as it is not yet.
    pub async fn bring_up(&mut self, i: usize) {
        if self.volumes[i].publish_context.is_none() {
            self.attach(i).await;
        }
        if !self.volumes[i].staged {
            self.stage(i).await;
        }
        if !self.volumes[i].published {
            self.publish(i).await;
        }
    }

    /// Unpublishes, unstages and detaches volume `i` as far as it is not yet.
    pub async fn take_down(&mut self, i: usize) {
        if self.volumes[i].published {
            self.unpublish(i).await;
        }
        if self.volumes[i].staged {
            self.unstage(i).await;
        }
        if self.volumes[i].publish_context.is_some() {
            self.detach(i).await;
        }
    }

    async fn write(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        let target = self.target(&v);
        let (slot, seed) = (self.rng.below(SLOTS), self.rng.next());
        let len = 4096 + self.rng.below((1 << 20) - 4096) as usize;
        let chunk = tokio::task::spawn_blocking(move || data::write(&target, v.block, slot, seed, len))
            .await
            .unwrap();
        self.volumes[i].contents.insert(slot, chunk);
    }

    /// Reads every slot back through the published target and fails on any difference.
    pub async fn verify(&mut self, i: usize, when: &str) {
        let v = self.volumes[i].clone();
        let target = self.target(&v);
        let expected = v.contents.clone();
        let wrong = tokio::task::spawn_blocking(move || data::differences(&target, v.block, &expected))
            .await
            .unwrap();
        assert!(
            wrong.is_empty(),
            "volume {} ({}) lost data, checked after {when}:\n{}",
            v.name,
            v.id,
            wrong.join("\n")
        );
        self.tally.verified_slots += v.contents.len() as u64;
    }

    async fn expand(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        let gib = v.gib + 1;
        let request = pb::ControllerExpandVolumeRequest {
            volume_id: v.id.clone(),
            capacity_range: range(gib),
            volume_capability: Some(capability(v.block)),
            ..Default::default()
        };
        let response = self
            .fleet
            .call(Role::Controller, &format!("ControllerExpandVolume {}", v.id), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).controller_expand_volume(request).await }
            })
            .await;
        assert!(response.capacity_bytes >= gib * GIB, "{response:?}");
        self.volumes[i].gib = gib;
        self.volumes[i].node_expansion_pending = response.node_expansion_required;
        if self.volumes[i].published && response.node_expansion_required {
            self.node_expand(i).await;
        }
    }

    async fn node_expand(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        let target = self.target(&v);
        let request = pb::NodeExpandVolumeRequest {
            volume_id: v.id.clone(),
            volume_path: target.display().to_string(),
            staging_target_path: self.staging(&v).display().to_string(),
            capacity_range: range(v.gib),
            volume_capability: Some(capability(v.block)),
            ..Default::default()
        };
        self.fleet
            .call(Role::Node, &format!("NodeExpandVolume {}", v.id), |c| {
                let request = request.clone();
                async move { NodeClient::new(c).node_expand_volume(request).await }
            })
            .await;
        self.volumes[i].node_expansion_pending = false;
        let shown = tokio::task::spawn_blocking(move || data::capacity(&target, v.block)).await.unwrap();
        // A filesystem keeps a few percent for itself; a device shows its size exactly.
        let least = if v.block { v.gib * GIB } else { v.gib * GIB / 100 * 85 };
        assert!(shown as i64 >= least, "volume {} shows {shown} bytes after growing to {} GiB", v.id, v.gib);
        self.verify(i, "an expansion").await;
    }

    async fn snapshot(&mut self, i: usize) {
        let v = self.volumes[i].clone();
        self.created += 1;
        let name = format!("{}-s{}", self.prefix, self.created);
        let request = pb::CreateSnapshotRequest {
            source_volume_id: v.id.clone(),
            name: name.clone(),
            ..Default::default()
        };
        let snapshot = self
            .fleet
            .call(Role::Controller, &format!("CreateSnapshot {name}"), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).create_snapshot(request).await }
            })
            .await
            .snapshot
            .expect("a snapshot");
        // As the snapshot controller does: poll until ready before the volume changes again.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let mut ready = snapshot.ready_to_use;
        while !ready {
            assert!(std::time::Instant::now() < deadline, "snapshot {name} never became ready");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let request =
                pb::ListSnapshotsRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
            let page = self
                .fleet
                .call(Role::Controller, &format!("ListSnapshots {}", snapshot.snapshot_id), |c| {
                    let request = request.clone();
                    async move { ControllerClient::new(c).list_snapshots(request).await }
                })
                .await;
            ready = page.entries.iter().any(|e| e.snapshot.as_ref().is_some_and(|s| s.ready_to_use));
        }
        self.snapshots.push(Snapshot {
            name,
            id: snapshot.snapshot_id,
            source: v.id.clone(),
            gib: v.gib,
            block: v.block,
            volume_type: v.volume_type.clone(),
            contents: v.contents.clone(),
        });
    }

    async fn delete_snapshot(&mut self, s: usize) {
        let request =
            pb::DeleteSnapshotRequest { snapshot_id: self.snapshots[s].id.clone(), ..Default::default() };
        self.fleet
            .call(Role::Controller, &format!("DeleteSnapshot {}", request.snapshot_id), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).delete_snapshot(request).await }
            })
            .await;
        self.snapshots.remove(s);
    }

    async fn modify(&mut self, i: usize) {
        let changes = self.flavor.modification(&mut self.rng);
        let new_type = changes.get("type").cloned();
        let id = self.volumes[i].id.clone();
        let request = pb::ControllerModifyVolumeRequest {
            volume_id: id.clone(),
            mutable_parameters: changes,
            ..Default::default()
        };
        self.fleet
            .call(Role::Controller, &format!("ControllerModifyVolume {id}"), |c| {
                let request = request.clone();
                async move { ControllerClient::new(c).controller_modify_volume(request).await }
            })
            .await;
        if new_type.is_some() {
            self.volumes[i].volume_type = new_type;
        }
    }

    /// Brings every volume up to read all its bytes once more, then removes every snapshot
    /// and volume through the driver.
    pub async fn clean_up(&mut self) {
        for i in 0..self.volumes.len() {
            self.bring_up(i).await;
            self.verify(i, "the whole run (final read)").await;
            self.take_down(i).await;
        }
        while !self.snapshots.is_empty() {
            self.delete_snapshot(0).await;
        }
        while !self.volumes.is_empty() {
            self.delete(0).await;
        }
    }
}
