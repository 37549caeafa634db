//! The emulated world ([`World`]) behind one lock, with lazily evaluated state transitions and
//! write-through persistence: the handle every API face works on.
//!
//! Saves are group commits: a change is on disk before its answer goes out, but changes made
//! while a save is running share the next one, so a burst of N writes costs a few saves of
//! the whole world rather than N (which made 1000 concurrent creates quadratic).
//!
//! Transitions are lazy: an operation records when it is due, and every access first
//! "settles" the world, completing what is due (unless a stuck or fail rule says otherwise).
//! A background ticker settles too, so side effects (loop devices, file growth) happen without
//! a reader.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::clock::now_ms;
use super::config::EmulatorConfig;
use super::counters::Counters;
use super::errors::{ApiError, ApiResult, EmulatorError, Family};
use super::faults::{Faults, TransitionEffect};
use super::model::*;
use super::{loopdev, persistence, sparse, transitions};

pub use super::world::{ProjectStore, World};

/// Latency of transitions, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    /// The default for every transition.
    pub default_ms: u64,
    /// Overrides keyed `<resource>.<status>`, e.g. `volume.attaching`.
    #[serde(default)]
    pub transitions: BTreeMap<String, u64>,
}

/// The shared, cloneable handle on the emulated cloud that every API view works on.
#[derive(Clone)]
pub struct Cloud {
    shared: Arc<Shared>,
}

/// A handle on the cloud that does not keep it alive, for observers that may outlive it.
#[derive(Clone)]
pub struct WeakCloud(std::sync::Weak<Shared>);

impl WeakCloud {
    /// The cloud, while anything else still holds it.
    pub fn upgrade(&self) -> Option<Cloud> {
        self.0.upgrade().map(|shared| Cloud { shared })
    }
}

struct Shared {
    world: Mutex<World>,
    config: EmulatorConfig,
    faults: Faults,
    counters: Counters,
    latency: Mutex<Latency>,
    base_url: Mutex<String>,
    /// Number of changes made to the world; bumped only under the world lock.
    changes: AtomicU64,
    /// The change count the file on disk covers; holding it serialises savers.
    saved: Mutex<u64>,
}

impl Cloud {
    /// Opens the state directory, loads or creates the world and applies the config to it.
    pub fn open(config: EmulatorConfig) -> Result<Self, EmulatorError> {
        for dir in
            [config.state_dir.clone(), config.state_dir.join("volumes"), config.state_dir.join("snapshots")]
                .into_iter()
                .chain([config.state_dir.join("backups")])
        {
            std::fs::create_dir_all(&dir)
                .map_err(|e| EmulatorError::io(format!("creating {}", dir.display()), e))?;
        }
        let mut world = persistence::load(&config.state_dir)?.unwrap_or_default();
        super::bootstrap::apply(&mut world, &config)?;
        let latency = Latency {
            default_ms: config.latency.as_millis() as u64,
            transitions: config
                .transition_latency
                .iter()
                .map(|(k, v)| (k.clone(), v.as_millis() as u64))
                .collect(),
        };
        let faults = Faults::new(config.faults.clone(), config.rate_limit.clone(), config.seed);
        let cloud = Self {
            shared: Arc::new(Shared {
                world: Mutex::new(world),
                config,
                faults,
                counters: Counters::default(),
                latency: Mutex::new(latency),
                base_url: Mutex::new(String::new()),
                changes: AtomicU64::new(0),
                saved: Mutex::new(0),
            }),
        };
        let change = {
            let mut world = cloud.lock();
            cloud.adopt_loops(&mut world);
            cloud.changed()
        };
        cloud.flush(change).map_err(|e| EmulatorError::io("saving state", e))?;
        Ok(cloud)
    }

    /// A handle that does not keep the cloud alive.
    pub fn downgrade(&self) -> WeakCloud {
        WeakCloud(Arc::downgrade(&self.shared))
    }

    fn lock(&self) -> MutexGuard<'_, World> {
        self.shared.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The config the emulator was started with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// The fault state.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The request counters.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The base URL of the API listener (set once bound).
    pub fn base_url(&self) -> String {
        self.shared.base_url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the base URL of the API listener.
    pub fn set_base_url(&self, url: String) {
        *self.shared.base_url.lock().unwrap_or_else(|e| e.into_inner()) = url;
    }

    /// The latency settings.
    pub fn latency(&self) -> Latency {
        self.shared.latency.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the latency settings.
    pub fn set_latency(&self, latency: Latency) {
        *self.shared.latency.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// When a transition started now, keyed `<resource>.<status>`, is due.
    pub fn due(&self, key: &str) -> u64 {
        let latency = self.shared.latency.lock().unwrap_or_else(|e| e.into_inner());
        now_ms() + latency.transitions.get(key).copied().unwrap_or(latency.default_ms)
    }

    /// The file backing a volume.
    pub fn volume_file(&self, id: &str) -> PathBuf {
        self.shared.config.state_dir.join("volumes").join(format!("{id}.img"))
    }

    /// The file holding a snapshot's data.
    pub fn snapshot_file(&self, id: &str) -> PathBuf {
        self.shared.config.state_dir.join("snapshots").join(format!("{id}.img"))
    }

    /// The file holding a backup's data.
    pub fn backup_file(&self, id: &str) -> PathBuf {
        self.shared.config.state_dir.join("backups").join(format!("{id}.img"))
    }

    /// Reads the settled world.
    pub fn read<R>(&self, f: impl FnOnce(&World) -> R) -> R {
        let mut world = self.lock();
        let change = self.settle(&mut world).then(|| self.changed());
        let value = f(&world);
        drop(world);
        if let Some(change) = change {
            self.persist(change);
        }
        value
    }

    /// Changes the settled world; a successful change is saved before the answer goes out.
    pub fn write<R>(&self, family: Family, f: impl FnOnce(&mut World) -> ApiResult<R>) -> ApiResult<R> {
        let mut world = self.lock();
        let settled = self.settle(&mut world);
        let result = f(&mut world);
        let change = (settled || result.is_ok()).then(|| self.changed());
        drop(world);
        match (result, change) {
            (Ok(value), Some(change)) => {
                self.flush(change).map_err(|e| {
                    tracing::error!(error = %e, "emulator: saving state failed");
                    ApiError::internal(family, "The emulator could not save its state.")
                })?;
                Ok(value)
            }
            (result, change) => {
                if let Some(change) = change {
                    self.persist(change);
                }
                result
            }
        }
    }

    /// Completes whatever is due (called by the ticker).
    pub fn tick(&self) {
        let mut world = self.lock();
        let change = self.settle(&mut world).then(|| self.changed());
        drop(world);
        if let Some(change) = change {
            self.persist(change);
        }
    }

    /// Counts one change; call with the world lock held, so a save that serialises the world
    /// knows exactly which changes it covers.
    fn changed(&self) -> u64 {
        self.shared.changes.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Makes sure change number `change` is on disk: returns at once when a save that started
    /// after it already finished, otherwise saves the world as it is now (covering every change
    /// so far). Never call it with the world lock held.
    fn flush(&self, change: u64) -> std::io::Result<()> {
        if !self.shared.config.persist {
            return Ok(());
        }
        let mut saved = self.shared.saved.lock().unwrap_or_else(|e| e.into_inner());
        if *saved >= change {
            return Ok(());
        }
        let (bytes, covers) = {
            let world = self.lock();
            (persistence::encode(&world)?, self.shared.changes.load(Ordering::SeqCst))
        };
        persistence::write(&self.shared.config.state_dir, &bytes)?;
        *saved = covers;
        Ok(())
    }

    /// Like `flush`, for callers with no one to report a failed save to.
    fn persist(&self, change: u64) {
        if let Err(e) = self.flush(change) {
            tracing::error!(error = %e, "emulator: saving state failed");
        }
    }

    /// Completes every due transition; true when anything changed.
    fn settle(&self, w: &mut World) -> bool {
        let now = now_ms();
        let mut changed = false;
        let before = w.tokens.len();
        w.tokens.retain(|_, t| t.expires_at_ms > now);
        changed |= before != w.tokens.len();
        let projects: Vec<String> = w.stores.keys().cloned().collect();
        for pid in projects {
            let store = &w.stores[&pid];
            let due = |p: &Option<Pending>| p.as_ref().is_some_and(|p| p.due_ms <= now);
            let volumes: Vec<_> =
                store.volumes.values().filter(|v| due(&v.pending)).map(|v| v.id.clone()).collect();
            let snapshots: Vec<_> =
                store.snapshots.values().filter(|s| due(&s.pending)).map(|s| s.id.clone()).collect();
            let backups: Vec<_> =
                store.backups.values().filter(|b| due(&b.pending)).map(|b| b.id.clone()).collect();
            let groups: Vec<_> =
                store.groups.values().filter(|g| due(&g.pending)).map(|g| g.id.clone()).collect();
            let group_snapshots: Vec<_> =
                store.group_snapshots.values().filter(|g| due(&g.pending)).map(|g| g.id.clone()).collect();
            use super::transitions::messages::after_transition;
            for id in volumes {
                let Some(before) = w.stores[&pid].volumes.get(&id).map(|v| v.status.clone()) else {
                    continue;
                };
                changed |= self.complete_volume(w, &pid, &id, now);
                let after = w.stores[&pid].volumes.get(&id).map(|v| v.status.clone());
                after_transition(w, &pid, "volume", &id, &before, after.as_deref(), now);
            }
            for id in snapshots {
                let Some(before) = w.stores[&pid].snapshots.get(&id).map(|s| s.status.clone()) else {
                    continue;
                };
                changed |= self.complete_snapshot(w, &pid, &id, now);
                let after = w.stores[&pid].snapshots.get(&id).map(|s| s.status.clone());
                after_transition(w, &pid, "snapshot", &id, &before, after.as_deref(), now);
            }
            for id in backups {
                let Some(before) = w.stores[&pid].backups.get(&id).map(|b| b.status.clone()) else {
                    continue;
                };
                changed |= self.complete_backup(w, &pid, &id, now);
                let after = w.stores[&pid].backups.get(&id).map(|b| b.status.clone());
                after_transition(w, &pid, "backup", &id, &before, after.as_deref(), now);
            }
            for id in groups {
                changed |= self.complete_group(w, &pid, &id);
            }
            for id in group_snapshots {
                changed |= self.complete_group_snapshot(w, &pid, &id);
            }
        }
        changed |= transitions::jobs::settle(w, now);
        changed
    }

    fn verdict(&self, resource: &str, id: &str, status: &str) -> Option<TransitionEffect> {
        self.shared.faults.transition(resource, id, status)
    }

    fn complete_volume(&self, w: &mut World, pid: &str, id: &str, now: u64) -> bool {
        let status = w.stores[pid].volumes[id].status.clone();
        let verdict = self.verdict("volume", id, &status);
        if verdict == Some(TransitionEffect::Stuck) {
            return false;
        }
        let failed = verdict == Some(TransitionEffect::Fail);
        let this_host: Vec<String> =
            w.servers.values().filter(|s| s.this_host).map(|s| s.id.clone()).collect();
        let types = w.volume_types.clone();
        let store = w.store_mut(pid);
        let Some(volume) = store.volumes.get_mut(id) else { return false };
        let Some(pending) = volume.pending.take() else { return false };
        volume.updated_at_ms = Some(now);
        match (pending.op, failed) {
            (Op::Create, false) => volume.status = "available".into(),
            (Op::Create, true) => volume.status = "error".into(),
            (Op::Delete, false) => {
                store.volumes.remove(id);
                let _ = std::fs::remove_file(self.volume_file(id));
            }
            (Op::Delete, true) => volume.status = "error_deleting".into(),
            (Op::Extend { new_size, back_to }, false) => {
                if let Err(e) = sparse::grow(&self.volume_file(id), new_size) {
                    tracing::warn!(volume = id, error = %e, "emulator: growing the volume file failed");
                }
                volume.size = new_size;
                volume.status = back_to;
                for device in volume.attachments.iter().filter_map(|a| a.host_device.as_deref()) {
                    if let Err(e) = loopdev::refresh(device) {
                        tracing::warn!(volume = id, device, error = %e, "emulator: refreshing the loop device failed");
                    }
                }
            }
            (Op::Extend { .. }, true) => volume.status = "error_extending".into(),
            (Op::Attach { attachment_id }, false) => {
                let file = self.volume_file(id);
                let name = loopdev::link_name_for(id, &volume.metadata);
                if let Some(attachment) = volume.attachments.iter_mut().find(|a| a.id == attachment_id) {
                    attachment.status = "attached".into();
                    if attachment.server_id.as_ref().is_some_and(|s| this_host.contains(s)) {
                        let (device, link) = self.host_attach(id, &file, &name);
                        attachment.host_device = device;
                        attachment.by_id_link = link;
                    }
                }
                volume.status = "in-use".into();
            }
            (Op::Attach { attachment_id }, true) => {
                // The attach failed: roll back as Nova does, leaving the volume as it was.
                volume.attachments.retain(|a| a.id != attachment_id);
                volume.status = if volume.attachments.is_empty() { "available" } else { "in-use" }.into();
            }
            (Op::Detach { attachment_id }, false) => {
                if let Some(attachment) = volume.attachments.iter().find(|a| a.id == attachment_id) {
                    self.host_detach(attachment);
                }
                volume.attachments.retain(|a| a.id != attachment_id);
                volume.status = if volume.attachments.is_empty() { "available" } else { "in-use" }.into();
            }
            (Op::Detach { .. }, true) => volume.status = "error_detaching".into(),
            (Op::Retype { new_type_id, allowed, back_to }, false) => {
                if allowed {
                    volume.multiattach = types.get(&new_type_id).is_some_and(VolumeType::multiattach);
                    volume.volume_type_id = new_type_id;
                } else {
                    tracing::info!(
                        volume = id,
                        "emulator: retype needs a migration the policy forbids; type kept"
                    );
                }
                volume.status = back_to;
            }
            (Op::Retype { back_to, .. }, true) => volume.status = back_to,
            (Op::Return { back_to }, _) => volume.status = back_to,
        }
        true
    }

    fn complete_snapshot(&self, w: &mut World, pid: &str, id: &str, now: u64) -> bool {
        let status = w.stores[pid].snapshots[id].status.clone();
        let verdict = self.verdict("snapshot", id, &status);
        if verdict == Some(TransitionEffect::Stuck) {
            return false;
        }
        let failed = verdict == Some(TransitionEffect::Fail);
        let store = w.store_mut(pid);
        let Some(snapshot) = store.snapshots.get_mut(id) else { return false };
        let Some(pending) = snapshot.pending.take() else { return false };
        snapshot.updated_at_ms = Some(now);
        match (pending.op, failed) {
            (Op::Create, false) => snapshot.status = "available".into(),
            (Op::Create, true) => snapshot.status = "error".into(),
            (Op::Delete, false) => {
                store.snapshots.remove(id);
                let _ = std::fs::remove_file(self.snapshot_file(id));
            }
            (Op::Delete, true) => snapshot.status = "error_deleting".into(),
            (_, _) => snapshot.status = "available".into(),
        }
        true
    }

    fn complete_backup(&self, w: &mut World, pid: &str, id: &str, now: u64) -> bool {
        let status = w.stores[pid].backups[id].status.clone();
        let verdict = self.verdict("backup", id, &status);
        if verdict == Some(TransitionEffect::Stuck) {
            return false;
        }
        let failed = verdict == Some(TransitionEffect::Fail);
        let store = w.store_mut(pid);
        let Some(backup) = store.backups.get_mut(id) else { return false };
        let Some(pending) = backup.pending.take() else { return false };
        backup.updated_at_ms = Some(now);
        match (pending.op, failed) {
            (Op::Create, false) => backup.status = "available".into(),
            (Op::Create, true) => backup.status = "error".into(),
            (Op::Delete, false) => {
                store.backups.remove(id);
                let _ = std::fs::remove_file(self.backup_file(id));
            }
            (Op::Delete, true) => backup.status = "error_deleting".into(),
            (_, _) => backup.status = "available".into(),
        }
        true
    }

    fn complete_group(&self, w: &mut World, pid: &str, id: &str) -> bool {
        let status = w.stores[pid].groups[id].status.clone();
        let verdict = self.verdict("group", id, &status);
        if verdict == Some(TransitionEffect::Stuck) {
            return false;
        }
        let store = w.store_mut(pid);
        let Some(group) = store.groups.get_mut(id) else { return false };
        let Some(pending) = group.pending.take() else { return false };
        match (pending.op, verdict == Some(TransitionEffect::Fail)) {
            (Op::Delete, false) => {
                store.groups.remove(id);
            }
            (Op::Delete, true) => group.status = "error_deleting".into(),
            (_, true) => group.status = "error".into(),
            (_, false) => group.status = "available".into(),
        }
        true
    }

    fn complete_group_snapshot(&self, w: &mut World, pid: &str, id: &str) -> bool {
        let status = w.stores[pid].group_snapshots[id].status.clone();
        let verdict = self.verdict("group_snapshot", id, &status);
        if verdict == Some(TransitionEffect::Stuck) {
            return false;
        }
        let store = w.store_mut(pid);
        let Some(group_snapshot) = store.group_snapshots.get_mut(id) else { return false };
        let Some(pending) = group_snapshot.pending.take() else { return false };
        match (pending.op, verdict == Some(TransitionEffect::Fail)) {
            (Op::Delete, false) => {
                store.group_snapshots.remove(id);
            }
            (Op::Delete, true) => group_snapshot.status = "error_deleting".into(),
            (_, true) => group_snapshot.status = "error".into(),
            (_, false) => group_snapshot.status = "available".into(),
        }
        true
    }

    /// Sets up a loop device and the by-id link `link_name` for a volume attached to this host;
    /// returns the device and the link, or nothing when loop devices are off or we are not root.
    pub fn host_attach(
        &self,
        volume_id: &str,
        file: &std::path::Path,
        link_name: &str,
    ) -> (Option<String>, Option<String>) {
        if !self.shared.config.loop_devices {
            return (None, None);
        }
        if !loopdev::is_root() {
            tracing::warn!(
                volume = volume_id,
                "emulator: not root, so the attachment to this host is recorded in state only (no loop device)"
            );
            return (None, None);
        }
        let device = match loopdev::attach(file) {
            Ok(device) => device,
            Err(e) => {
                tracing::warn!(volume = volume_id, error = %e, "emulator: setting up a loop device failed");
                return (None, None);
            }
        };
        match loopdev::link(&self.shared.config.by_id_dir(), link_name, &device) {
            Ok(link) => {
                tracing::info!(volume = volume_id, device, link = %link.display(), "emulator: attached to this host");
                (Some(device), Some(link.display().to_string()))
            }
            Err(e) => {
                tracing::warn!(volume = volume_id, error = %e, "emulator: making the by-id link failed");
                (Some(device), None)
            }
        }
    }

    /// Removes the by-id link and loop device of an attachment, if it has them.
    pub fn host_detach(&self, attachment: &Attachment) {
        if let Some(link) = &attachment.by_id_link
            && let Err(e) = loopdev::unlink(std::path::Path::new(link))
        {
            tracing::warn!(link, error = %e, "emulator: removing the by-id link failed");
        }
        if let Some(device) = &attachment.host_device
            && let Err(e) = loopdev::detach(device)
        {
            tracing::warn!(device, error = %e, "emulator: detaching the loop device failed");
        }
    }

    /// On start: keeps loop devices that still back the right file, sets up again those that
    /// went away (e.g. after a reboot), and relinks.
    fn adopt_loops(&self, w: &mut World) {
        let this_host: Vec<String> =
            w.servers.values().filter(|s| s.this_host).map(|s| s.id.clone()).collect();
        let volume_ids: Vec<String> = w.stores.values().flat_map(|s| s.volumes.keys().cloned()).collect();
        for id in volume_ids {
            let file = self.volume_file(&id);
            let Some(volume) = w.volume_mut(&id) else { continue };
            let name = loopdev::link_name_for(&id, &volume.metadata);
            for attachment in &mut volume.attachments {
                let on_this_host = attachment.server_id.as_ref().is_some_and(|s| this_host.contains(s));
                if !on_this_host || attachment.status != "attached" {
                    continue;
                }
                let still_there = attachment
                    .host_device
                    .as_deref()
                    .and_then(loopdev::backing_file)
                    .is_some_and(|backing| backing == file);
                if still_there {
                    if let Some(device) = &attachment.host_device
                        && let Ok(link) = loopdev::link(&self.shared.config.by_id_dir(), &name, device)
                    {
                        attachment.by_id_link = Some(link.display().to_string());
                    }
                    continue;
                }
                let (device, link) = self.host_attach(&id, &file, &name);
                attachment.host_device = device;
                attachment.by_id_link = link;
            }
        }
    }

    /// Detaches every loop device of this host and removes the links (shutdown of a test
    /// emulator); the attachments stay in the state and are set up again on the next start.
    pub fn release_loops(&self) {
        let mut world = self.lock();
        for store in world.stores.values_mut() {
            for volume in store.volumes.values_mut() {
                for attachment in &mut volume.attachments {
                    if attachment.host_device.is_some() || attachment.by_id_link.is_some() {
                        self.host_detach(attachment);
                        attachment.host_device = None;
                        attachment.by_id_link = None;
                    }
                }
            }
        }
        let change = self.changed();
        drop(world);
        self.persist(change);
    }
}
