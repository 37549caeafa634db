//! The OpenStack implementation of [`Backend`]: Cinder for volumes and snapshots, Nova for
//! attachments, the wait engine for every transition.

use crate::contract::CloudId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::cinder::{Cinder, IN_USE_EXTEND};
use super::group_json::{GroupJson, GroupSnapshotJson};
use super::keystone::Session;
use super::nova::Nova;
use crate::cloud::backend::Backend;
use crate::cloud::conditions::{self, Condition};
use crate::cloud::error::CloudError;
use crate::cloud::lookup::{NameLookups, NameSource};
use crate::cloud::recent::Recent;
use crate::cloud::types::{
    Attached, Backup, Capacity, GroupSnapshot, Owner, Page, Snapshot, SnapshotSpec, SnapshotStatus, Volume,
    VolumeSpec, VolumeStatus,
};
use crate::cloud::wait::{StatusSource, WaitKind, WaitSettings, Waiter};

/// How long a volume the cloud just returned may stand in for a first poll.
const SEED_TTL: Duration = Duration::from_secs(2);
/// How long a read stands in for the next one of the same RPC (its checks, then the action).
const READ_TTL: Duration = Duration::from_millis(500);

/// Polls Cinder volumes for the wait engine.
#[derive(Debug)]
struct VolumeStates(Arc<Cinder>);

#[async_trait::async_trait]
impl StatusSource for VolumeStates {
    type Item = Volume;
    async fn fetch(
        &self,
        ids: &[String],
        individually: &[String],
        since: SystemTime,
    ) -> Result<HashMap<String, Option<Volume>>, CloudError> {
        self.0.observe_volumes(ids, individually, since).await
    }
}

/// Polls Cinder snapshots for the wait engine.
#[derive(Debug)]
struct SnapshotStates(Arc<Cinder>);

#[async_trait::async_trait]
impl StatusSource for SnapshotStates {
    type Item = Snapshot;
    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Snapshot>>, CloudError> {
        crate::cloud::waits::fetch_each(ids, |id| self.0.get_snapshot(id)).await
    }
}

/// Looks volume names up in Cinder: one `?name=` query each, or one listing of the volumes
/// carrying the owner's metadata for a burst of names.
#[derive(Debug)]
struct VolumeNames {
    cinder: Arc<Cinder>,
    owner: Option<Owner>,
}

#[async_trait::async_trait]
impl NameSource for VolumeNames {
    async fn by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        let page = self.cinder.list_volumes(&[("name", name.to_string())]).await?;
        // The name filter may match loosely on some clouds; only exact names count.
        Ok(page.items.into_iter().filter(|v| v.name == name).collect())
    }

    async fn owned_page(
        &self,
        marker: Option<&str>,
    ) -> Option<Result<(Vec<Volume>, Option<String>), CloudError>> {
        let owner = self.owner.as_ref()?;
        let mut query = vec![("metadata", serde_json::json!({ &owner.key: &owner.value }).to_string())];
        if let Some(marker) = marker {
            query.push(("marker", marker.to_string()));
        }
        Some(self.cinder.list_volumes(&query).await.map(|page| (page.items, page.next)))
    }
}

/// An OpenStack cloud.
#[derive(Debug)]
pub struct OpenStackBackend {
    /// Volumes just returned by the cloud, handed to the next wait as its first look.
    seeds: std::sync::Mutex<HashMap<String, (std::time::Instant, Volume)>>,
    /// What an RPC has just read, so that its attach or detach need not read it again.
    reads: Recent<Volume>,
    /// The kind of transition each new volume's create started, for its wait.
    kinds: Recent<WaitKind>,
    session: Arc<Session>,
    cinder: Arc<Cinder>,
    nova: Nova,
    volumes: Waiter<VolumeStates>,
    snapshots: Waiter<SnapshotStates>,
    names: NameLookups,
}

impl OpenStackBackend {
    /// A backend on a Keystone session; must be created inside the runtime (it starts pollers).
    /// Volumes tagged with `owner` are the ones a burst of name lookups may find by listing.
    pub fn new(session: Arc<Session>, waits: WaitSettings, owner: Option<Owner>) -> Self {
        let cinder = Arc::new(Cinder::new(session.clone()));
        Self {
            names: NameLookups::new(VolumeNames { cinder: cinder.clone(), owner }),
            seeds: std::sync::Mutex::new(HashMap::new()),
            reads: Recent::new(READ_TTL),
            kinds: Recent::new(Duration::from_secs(600)),
            nova: Nova::new(session.clone()),
            volumes: Waiter::new(VolumeStates(cinder.clone()), waits.clone()),
            snapshots: Waiter::new(SnapshotStates(cinder.clone()), waits),
            cinder,
            session,
        }
    }

    /// The Keystone session (tests count auth requests through it).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    fn remember(&self, volume: &Volume) {
        let mut seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        // Seeds are only worth their freshness; old ones are dropped, never used.
        seeds.retain(|_, (at, _)| now.duration_since(*at) < SEED_TTL);
        seeds.insert(volume.id.clone(), (now, volume.clone()));
    }

    fn seed(&self, id: &str) -> Option<Volume> {
        let mut seeds = self.seeds.lock().unwrap_or_else(|e| e.into_inner());
        seeds.remove(id).filter(|(at, _)| at.elapsed() < SEED_TTL).map(|(_, v)| v)
    }

    async fn wait_volume(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Volume) -> bool + Send,
    ) -> Result<Volume, CloudError> {
        self.wait_volume_as(None, id, timeout, what, accept).await
    }

    async fn wait_volume_as(
        &self,
        kind: Option<&WaitKind>,
        id: &str,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Volume) -> bool + Send,
    ) -> Result<Volume, CloudError> {
        let seed = self.seed(id);
        let waited =
            crate::cloud::waits::volume_until_as(&self.volumes, kind, id, seed, timeout, what, accept).await;
        // The settled read replaces any older one: an attach right after must act on it.
        self.reads.remember(id, waited.as_ref().ok());
        self.explained(waited).await
    }

    /// A failed wait's error with Cinder's reason for an error state added.
    async fn explained<T>(&self, result: Result<T, CloudError>) -> Result<T, CloudError> {
        match result {
            Err(e @ CloudError::ErrorState { .. }) => Err(super::reasons::explain(&self.cinder, e).await),
            other => other,
        }
    }

    /// The volume as this RPC has just read it, or as the cloud says now.
    async fn current(&self, id: &str) -> Result<Option<Volume>, CloudError> {
        match self.reads.take(id) {
            Some(volume) => Ok(Some(volume)),
            None => self.cinder.get_volume(id).await,
        }
    }
}

fn time_of(value: &serde_json::Value) -> Option<SystemTime> {
    let text = value.as_str()?;
    let with_zone =
        if text.ends_with('Z') || text.contains('+') { text.to_string() } else { format!("{text}Z") };
    let ts: prost_types::Timestamp = with_zone.parse().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(u64::try_from(ts.seconds).ok()?, ts.nanos.max(0) as u32))
}

fn backup_of(value: &serde_json::Value) -> Backup {
    Backup {
        id: value["id"].as_str().unwrap_or_default().to_string(),
        name: value["name"].as_str().unwrap_or_default().to_string(),
        volume_id: value["volume_id"].as_str().unwrap_or_default().to_string(),
        size_gib: value["size"].as_u64().unwrap_or(0),
        status: SnapshotStatus::parse(value["status"].as_str().unwrap_or_default()),
        created_at: time_of(&value["created_at"]),
        fail_reason: value["fail_reason"].as_str().and_then(crate::telemetry::reason::cloud_reason),
    }
}

impl OpenStackBackend {
    /// Polls the group until it is `available`.
    async fn group_available(&self, id: &str, timeout: Duration) -> Result<GroupJson, CloudError> {
        poll_available("group", id, timeout, || self.cinder.get_group(id), |g| &g.status).await
    }

    /// Polls the group snapshot until it is `available`.
    async fn group_snapshot_available(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<GroupSnapshotJson, CloudError> {
        poll_available("group snapshot", id, timeout, || self.cinder.get_group_snapshot(id), |g| &g.status)
            .await
    }
}

/// Polls a rare resource (group, group snapshot: no coalescing poller of their own) until it is
/// `available`; error states, its disappearance and the deadline end the wait.
async fn poll_available<T, Fut>(
    kind: &'static str,
    id: &str,
    timeout: Duration,
    fetch: impl Fn() -> Fut,
    status_of: impl Fn(&T) -> &str,
) -> Result<T, CloudError>
where
    Fut: std::future::Future<Output = Result<Option<T>, CloudError>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut interval = Duration::from_millis(25);
    loop {
        let current = fetch().await?.ok_or_else(|| CloudError::NotFound { kind, id: id.to_string() })?;
        let status = status_of(&current).to_string();
        if status == "available" {
            return Ok(current);
        }
        if status.starts_with("error") {
            return Err(CloudError::ErrorState { kind, id: id.to_string(), status, reason: None });
        }
        if tokio::time::Instant::now() + interval > deadline {
            return Err(CloudError::Timeout(format!("{kind} {id} to become available")));
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(Duration::from_secs(1));
    }
}

/// The name of the helper group of a group snapshot.
fn helper_group_name(group_snapshot_name: &str) -> String {
    format!("csi-group-{group_snapshot_name}")
}

fn is_attached_to(volume: &Volume, server_id: &str) -> bool {
    volume.attachments.iter().any(|a| a.server_id == server_id)
}

#[async_trait::async_trait]
impl Backend for OpenStackBackend {
    async fn probe(&self) -> Result<(), CloudError> {
        self.session.token().await?;
        self.cinder.microversion().await?;
        Ok(())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CloudError> {
        let volume = self.cinder.create_volume(spec).await?;
        self.remember(&volume);
        self.kinds.put(&volume.id, crate::cloud::waits::create_kind(spec));
        Ok(volume)
    }

    async fn get_volume(&self, id: &CloudId) -> Result<Option<Volume>, CloudError> {
        let volume = self.cinder.get_volume(id).await?;
        self.reads.remember(id, volume.as_ref());
        Ok(volume)
    }

    async fn find_volumes_by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        let found = self.names.find(name).await?;
        found.iter().for_each(|v| self.remember(v));
        Ok(found)
    }

    async fn list_volumes(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError> {
        let mut query = vec![("sort", "created_at:asc,id:asc".to_string())];
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(marker) = marker {
            query.push(("marker", marker.to_string()));
        }
        self.cinder.list_volumes(&query).await
    }

    async fn delete_volume(&self, id: &CloudId) -> Result<(), CloudError> {
        self.cinder.delete_volume(id).await
    }

    async fn extend_volume(&self, id: &CloudId, size_gib: u64) -> Result<(), CloudError> {
        let volume = self
            .cinder
            .get_volume(id)
            .await?
            .ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() })?;
        if volume.status == VolumeStatus::InUse && !self.cinder.supports(IN_USE_EXTEND).await? {
            return Err(CloudError::Unsupported(
                "extending an attached volume needs Cinder microversion 3.42; detach it first".into(),
            ));
        }
        self.cinder.extend_volume(id, size_gib).await
    }

    async fn wait_volume_ready(&self, id: &CloudId, timeout: Duration) -> Result<Volume, CloudError> {
        let kind = self.kinds.take(id);
        let what = format!("volume {id} to become ready");
        self.wait_volume_as(kind.as_ref(), id, timeout, &what, conditions::is_ready().on_present()).await
    }

    async fn retype_volume(&self, id: &CloudId, volume_type: &str) -> Result<(), CloudError> {
        // Cinder refuses to migrate a volume with snapshots anyway; `never` gets that refusal
        // cleanly (the volume returns to its status at its old type, which the wait reports).
        let snapshots = super::retype_guard::snapshots_of(&self.cinder, id).await?;
        super::retype_guard::check(id, volume_type, &snapshots)?;
        self.cinder.retype_volume(id, volume_type, snapshots.is_empty()).await
    }

    async fn wait_volume_retyped(
        &self,
        id: &CloudId,
        volume_type: &str,
        timeout: Duration,
    ) -> Result<Volume, CloudError> {
        // A refused migration ends ready at the old type: wait for ready, then judge the type.
        let what = format!("volume {id} to become type {volume_type}");
        let volume = self.wait_volume(id, timeout, &what, conditions::is_ready().on_present()).await?;
        if !conditions::has_type(volume_type).matches(Some(&volume)) {
            return Err(CloudError::Conflict(format!(
                "the cloud kept volume {id} at type {:?}: the retype to {volume_type} needs a migration it refused",
                volume.volume_type.as_deref().unwrap_or("default")
            )));
        }
        Ok(volume)
    }

    async fn wait_volume_extended(
        &self,
        id: &CloudId,
        size_gib: u64,
        timeout: Duration,
    ) -> Result<Volume, CloudError> {
        let extended = conditions::is_ready().and(conditions::has_size(size_gib));
        self.wait_volume(id, timeout, &format!("volume {id} to reach {size_gib} GiB"), extended.on_present())
            .await
    }

    async fn wait_volume_deleted(&self, id: &CloudId, timeout: Duration) -> Result<(), CloudError> {
        let outcome = self
            .volumes
            .wait(
                id,
                None,
                |v| {
                    conditions::verdict(
                        id.as_str(),
                        v,
                        &conditions::is_gone(),
                        &conditions::has_error("error_deleting"),
                    )
                },
                timeout,
                &format!("volume {id} to be deleted"),
            )
            .await;
        let outcome = self.explained(outcome).await?;
        debug_assert!(outcome.is_none());
        Ok(())
    }

    async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError> {
        self.cinder.create_snapshot(spec).await
    }

    async fn get_snapshot(&self, id: &CloudId) -> Result<Option<Snapshot>, CloudError> {
        self.cinder.get_snapshot(id).await
    }

    async fn find_snapshots_by_name(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        let page = self.cinder.list_snapshots(&[("name", name.to_string())]).await?;
        Ok(page.items.into_iter().filter(|s| s.name == name).collect())
    }

    async fn list_snapshots(
        &self,
        volume_id: Option<&CloudId>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Snapshot>, CloudError> {
        let mut query = vec![("sort", "created_at:asc,id:asc".to_string())];
        if let Some(v) = volume_id {
            query.push(("volume_id", v.to_string()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        if let Some(marker) = marker {
            query.push(("marker", marker.to_string()));
        }
        self.cinder.list_snapshots(&query).await
    }

    async fn delete_snapshot(&self, id: &CloudId) -> Result<(), CloudError> {
        self.cinder.delete_snapshot(id).await
    }

    async fn wait_snapshot_ready(&self, id: &CloudId, timeout: Duration) -> Result<Snapshot, CloudError> {
        let waited = crate::cloud::waits::snapshot_ready(&self.snapshots, id, timeout).await;
        self.explained(waited).await
    }

    async fn attach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<Attached, CloudError> {
        let volume = self
            .current(volume_id)
            .await?
            .ok_or(CloudError::NotFound { kind: "volume", id: volume_id.to_string() })?;
        let kind = WaitKind::new("volume.attach", volume.volume_type.as_deref());
        if let Some(existing) = volume.attachments.iter().find(|a| a.server_id == server_id.as_str()) {
            if volume.status == VolumeStatus::InUse {
                return Ok(Attached { device_hint: existing.device.clone() });
            }
        } else if !matches!(volume.status, VolumeStatus::Attaching | VolumeStatus::Reserved) {
            self.nova.attach(server_id, volume_id).await?;
        }
        let server = server_id.to_string();
        let volume = self
            .wait_volume_as(
                Some(&kind),
                volume_id,
                timeout,
                &format!("volume {volume_id} to attach to {server_id}"),
                move |v| v.status == VolumeStatus::InUse && is_attached_to(v, &server),
            )
            .await?;
        let device_hint = volume
            .attachments
            .iter()
            .find(|a| a.server_id == server_id.as_str())
            .and_then(|a| a.device.clone());
        Ok(Attached { device_hint })
    }

    async fn detach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<(), CloudError> {
        let Some(volume) = self.current(volume_id).await? else { return Ok(()) };
        if !is_attached_to(&volume, server_id) {
            return Ok(());
        }
        if volume.status != VolumeStatus::Detaching {
            self.nova.detach(server_id, volume_id).await?;
        }
        let server = server_id.to_string();
        let kind = WaitKind::new("volume.detach", volume.volume_type.as_deref());
        match self
            .wait_volume_as(
                Some(&kind),
                volume_id,
                timeout,
                &format!("volume {volume_id} to detach from {server_id}"),
                move |v| !is_attached_to(v, &server) && v.status != VolumeStatus::Detaching,
            )
            .await
        {
            Err(CloudError::NotFound { .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn create_group_snapshot(
        &self,
        name: &str,
        volume_ids: &[CloudId],
        timeout: Duration,
    ) -> Result<GroupSnapshot, CloudError> {
        let existing = self.cinder.find_group_snapshots(name).await?;
        let id = match existing.first().map(|g| g.id.clone()).filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => {
                let group_name = helper_group_name(name);
                let group_id = match self
                    .cinder
                    .find_groups(&group_name)
                    .await?
                    .first()
                    .map(|g| g.id.clone())
                    .filter(|id| !id.is_empty())
                {
                    Some(id) => id,
                    None => {
                        let mut types = Vec::new();
                        for id in volume_ids {
                            let v = self
                                .cinder
                                .get_volume(id)
                                .await?
                                .ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() })?;
                            let t = v.volume_type.unwrap_or_else(|| "__DEFAULT__".into());
                            if !types.contains(&t) {
                                types.push(t);
                            }
                        }
                        self.cinder.create_group(&group_name, &types).await?
                    }
                };
                let group = self.group_available(&group_id, timeout).await?;
                let missing: Vec<String> =
                    volume_ids.iter().map(|v| v.to_string()).filter(|v| !group.volumes.contains(v)).collect();
                if !missing.is_empty() {
                    self.cinder.update_group(&group_id, &missing, &[]).await?;
                    self.group_available(&group_id, timeout).await?;
                }
                self.cinder.create_group_snapshot(name, &group_id).await?
            }
        };
        let group_snapshot = self.group_snapshot_available(&id, timeout).await?;
        Ok(GroupSnapshot {
            id: id.clone(),
            name: name.to_string(),
            status: SnapshotStatus::Available,
            created_at: group_snapshot.created(),
            snapshots: self.cinder.group_snapshot_members(&id).await?,
        })
    }

    async fn get_group_snapshot(&self, id: &CloudId) -> Result<Option<GroupSnapshot>, CloudError> {
        let Some(g) = self.cinder.get_group_snapshot(id).await? else { return Ok(None) };
        Ok(Some(GroupSnapshot {
            id: id.to_string(),
            name: g.name.clone().unwrap_or_default(),
            status: SnapshotStatus::parse(&g.status),
            created_at: g.created(),
            snapshots: self.cinder.group_snapshot_members(id).await?,
        }))
    }

    async fn delete_group_snapshot(&self, id: &CloudId, timeout: Duration) -> Result<(), CloudError> {
        let Some(g) = self.cinder.get_group_snapshot(id).await? else { return Ok(()) };
        let group_id = g.group_id.unwrap_or_default();
        self.cinder.delete_group_snapshot(id).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        while self.cinder.get_group_snapshot(id).await?.is_some() {
            if tokio::time::Instant::now() > deadline {
                return Err(CloudError::Timeout(format!("group snapshot {id} to be deleted")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The helper group goes with its last group snapshot; its volumes stay.
        if let Some(group) = self.cinder.get_group(&group_id).await? {
            let still_used = group.group_snapshot_id.is_some();
            if !still_used {
                if !group.volumes.is_empty() {
                    self.cinder.update_group(&group_id, &[], &group.volumes).await?;
                    self.group_available(&group_id, timeout).await?;
                }
                self.cinder.delete_group(&group_id).await?;
                while self.cinder.get_group(&group_id).await?.is_some() {
                    if tokio::time::Instant::now() > deadline {
                        return Err(CloudError::Timeout(format!("helper group {group_id} to be deleted")));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Ok(())
    }

    async fn create_backup(&self, name: &str, volume_id: &CloudId) -> Result<Backup, CloudError> {
        if let Some(existing) = self.cinder.find_backups(name).await?.first() {
            return Ok(backup_of(existing));
        }
        let created = self.cinder.create_backup(name, volume_id).await?;
        // The create answer holds only id, name and links; the full view has the rest.
        let id = created["id"].as_str().unwrap_or_default().to_string();
        let mut backup = match self.cinder.get_backup(&id).await? {
            Some(full) => backup_of(&full),
            None => backup_of(&created),
        };
        if backup.volume_id.is_empty() {
            backup.volume_id = volume_id.to_string();
        }
        Ok(backup)
    }

    async fn failure_reason(&self, kind: &'static str, id: &str) -> Option<String> {
        let failed = CloudError::ErrorState { kind, id: id.to_string(), status: String::new(), reason: None };
        match super::reasons::explain(&self.cinder, failed).await {
            CloudError::ErrorState { reason, .. } => reason,
            _ => None,
        }
    }

    async fn get_backup(&self, id: &CloudId) -> Result<Option<Backup>, CloudError> {
        Ok(self.cinder.get_backup(id).await?.as_ref().map(backup_of))
    }

    async fn delete_backup(&self, id: &CloudId) -> Result<(), CloudError> {
        self.cinder.delete_backup(id).await
    }

    async fn manage_volume(&self, spec: &crate::cloud::types::ManageSpec) -> Result<Volume, CloudError> {
        self.cinder.manage_volume(spec).await
    }

    async fn set_volume_metadata(
        &self,
        id: &CloudId,
        current: &std::collections::BTreeMap<String, String>,
        key: &str,
        value: &str,
    ) -> Result<(), CloudError> {
        if !value.is_empty() {
            // One call that merges: no read, and no other key is at stake.
            return self.cinder.merge_metadata(id, key, value).await;
        }
        // Cinder routes cannot name a key holding '/' (ours do) in a DELETE, so a key leaves
        // only through a replace of the whole map: the one the caller read under the lock.
        let mut metadata = current.clone();
        if metadata.remove(key).is_none() {
            return Ok(());
        }
        self.cinder.replace_metadata(id, &metadata).await
    }

    async fn attached_count(&self, server_id: &CloudId) -> Result<usize, CloudError> {
        self.nova.attachment_count(server_id).await
    }

    async fn capacity(&self, volume_type: Option<&str>) -> Result<Capacity, CloudError> {
        self.cinder.capacity(volume_type).await
    }
}
