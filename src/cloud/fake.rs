//! An in-memory backend for unit tests of the CSI layer: instant transitions, call counting,
//! and switches for the failures the controller must handle.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::backend::Backend;
use super::conditions::{self, Condition};
use super::error::CloudError;
use super::types::{
    Attached, Capacity, Page, Snapshot, SnapshotSpec, SnapshotStatus, Volume, VolumeAttachment, VolumeSource,
    VolumeSpec, VolumeStatus,
};
use super::wait::Check;
use crate::contract::CloudId;

/// The fake cloud.
#[derive(Debug, Default)]
pub struct FakeBackend {
    /// Volumes by id.
    pub volumes: Mutex<BTreeMap<String, Volume>>,
    /// Snapshots by id.
    pub snapshots: Mutex<BTreeMap<String, Snapshot>>,
    /// Servers that exist.
    pub servers: Mutex<Vec<String>>,
    /// New volumes end in this status instead of `available`.
    pub create_ends_in: Mutex<Option<VolumeStatus>>,
    /// Volume creations requested.
    pub creates: AtomicUsize,
    /// Delay of each create, to widen race windows.
    pub create_delay: Mutex<Duration>,
    /// Every create request, in order.
    pub specs: Mutex<Vec<VolumeSpec>>,
    /// Refuse per-volume performance, encryption and SCSI, as Cinder does.
    pub refuse_per_volume_options: bool,
    /// Optional features to report instead of all of them.
    pub features: Option<super::features::Features>,
    next: AtomicUsize,
}

impl FakeBackend {
    /// The volume when `done` holds for it now (transitions are instant here); its error
    /// state, or a timeout naming `what`, otherwise.
    async fn settled(
        &self,
        id: &CloudId,
        done: impl Condition<Volume>,
        what: &str,
    ) -> Result<Volume, CloudError> {
        let volume = self.get_volume(id).await?;
        match conditions::verdict(id.as_str(), volume.as_ref(), &done, &|_: Option<&Volume>| true) {
            Check::Done => volume.ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() }),
            Check::Fail(e) => Err(e),
            Check::Continue if volume.is_none() => {
                Err(CloudError::NotFound { kind: "volume", id: id.to_string() })
            }
            Check::Continue => Err(CloudError::Timeout(what.to_string())),
        }
    }

    /// A cloud with the given servers.
    pub fn with_servers(servers: &[&str]) -> Self {
        let fake = Self::default();
        *fake.servers.lock().unwrap() = servers.iter().map(|s| s.to_string()).collect();
        fake
    }

    /// A fresh UUID, as a cloud issues; counting up, so that listings keep creation order.
    fn id(&self, kind: u32) -> String {
        format!("{kind:08x}-0000-4000-8000-{:012x}", self.next.fetch_add(1, Ordering::SeqCst))
    }

    /// Adds a volume directly.
    pub fn insert_volume(&self, volume: Volume) {
        self.volumes.lock().unwrap().insert(volume.id.clone(), volume);
    }
}

/// A plain available volume.
pub fn volume(id: &str, name: &str, size_gib: u64) -> Volume {
    Volume {
        id: id.to_string(),
        name: name.into(),
        size_gib,
        status: VolumeStatus::Available,
        zone: "nova".into(),
        volume_type: None,
        multiattach: false,
        attachments: Vec::new(),
        metadata: BTreeMap::new(),
        source_snapshot_id: None,
        source_volume_id: None,
        wwn: None,
    }
}

#[async_trait::async_trait]
impl Backend for FakeBackend {
    fn features(&self) -> super::features::Features {
        self.features.unwrap_or(super::features::Features::ALL)
    }

    async fn probe(&self) -> Result<(), CloudError> {
        Ok(())
    }

    async fn set_volume_metadata(
        &self,
        id: &CloudId,
        _current: &BTreeMap<String, String>,
        key: &str,
        value: &str,
    ) -> Result<(), CloudError> {
        let mut volumes = self.volumes.lock().unwrap();
        let v = volumes
            .get_mut(id.as_str())
            .ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() })?;
        if value.is_empty() {
            v.metadata.remove(key);
        } else {
            v.metadata.insert(key.into(), value.into());
        }
        Ok(())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CloudError> {
        let delay = *self.create_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.creates.fetch_add(1, Ordering::SeqCst);
        self.specs.lock().unwrap().push(spec.clone());
        if self.refuse_per_volume_options {
            crate::cloud::openstack::cinder::refuse_per_volume_options(spec)?;
        }
        let mut v = volume(&self.id(0), &spec.name, spec.size_gib);
        v.zone = spec.zone.clone().unwrap_or_else(|| "nova".into());
        v.volume_type = spec.volume_type.clone();
        v.metadata = spec.metadata.clone();
        v.multiattach = spec.multiattach;
        match &spec.source {
            Some(VolumeSource::Snapshot(s)) => v.source_snapshot_id = Some(s.to_string()),
            Some(VolumeSource::Volume(s)) => v.source_volume_id = Some(s.to_string()),
            _ => {}
        }
        if let Some(status) = self.create_ends_in.lock().unwrap().clone() {
            v.status = status;
        }
        self.insert_volume(v.clone());
        Ok(v)
    }

    async fn get_volume(&self, id: &CloudId) -> Result<Option<Volume>, CloudError> {
        Ok(self.volumes.lock().unwrap().get(id.as_str()).cloned())
    }

    async fn find_volumes_by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        Ok(self.volumes.lock().unwrap().values().filter(|v| v.name == name).cloned().collect())
    }

    async fn list_volumes(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError> {
        let volumes = self.volumes.lock().unwrap();
        if let Some(m) = marker
            && !volumes.contains_key(m)
        {
            return Err(CloudError::InvalidInput(format!("marker {m} not found")));
        }
        let after: Vec<Volume> =
            volumes.values().filter(|v| marker.is_none_or(|m| v.id.as_str() > m)).cloned().collect();
        let take = limit.map_or(after.len(), |l| l as usize).min(after.len());
        let next = (take < after.len()).then(|| after[take - 1].id.clone());
        Ok(Page { items: after[..take].to_vec(), next })
    }

    async fn delete_volume(&self, id: &CloudId) -> Result<(), CloudError> {
        self.volumes.lock().unwrap().remove(id.as_str());
        Ok(())
    }

    async fn extend_volume(&self, id: &CloudId, size_gib: u64) -> Result<(), CloudError> {
        let mut volumes = self.volumes.lock().unwrap();
        let v = volumes
            .get_mut(id.as_str())
            .ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() })?;
        v.size_gib = size_gib;
        Ok(())
    }

    async fn wait_volume_ready(&self, id: &CloudId, _timeout: Duration) -> Result<Volume, CloudError> {
        self.settled(id, conditions::is_ready(), &format!("volume {id} to become ready")).await
    }

    async fn retype_volume(&self, id: &CloudId, volume_type: &str) -> Result<(), CloudError> {
        let mut volumes = self.volumes.lock().unwrap();
        let v = volumes
            .get_mut(id.as_str())
            .ok_or(CloudError::NotFound { kind: "volume", id: id.to_string() })?;
        v.volume_type = Some(volume_type.to_string());
        Ok(())
    }

    async fn wait_volume_retyped(
        &self,
        id: &CloudId,
        volume_type: &str,
        _timeout: Duration,
    ) -> Result<Volume, CloudError> {
        let retyped = conditions::is_ready().and(conditions::has_type(volume_type));
        self.settled(id, retyped, &format!("volume {id} to become type {volume_type}")).await
    }

    async fn wait_volume_extended(
        &self,
        id: &CloudId,
        size_gib: u64,
        _timeout: Duration,
    ) -> Result<Volume, CloudError> {
        let extended = conditions::is_ready().and(conditions::has_size(size_gib));
        self.settled(id, extended, &format!("volume {id} to reach {size_gib} GiB")).await
    }

    async fn wait_volume_deleted(&self, id: &CloudId, _timeout: Duration) -> Result<(), CloudError> {
        let volume = self.get_volume(id).await?;
        match conditions::verdict(
            id.as_str(),
            volume.as_ref(),
            &conditions::is_gone(),
            &conditions::has_error("error_deleting"),
        ) {
            Check::Done => Ok(()),
            Check::Fail(e) => Err(e),
            Check::Continue => Err(CloudError::Timeout(format!("volume {id} to be deleted"))),
        }
    }

    async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError> {
        let size_gib = self
            .get_volume(&spec.volume_id)
            .await?
            .ok_or(CloudError::NotFound { kind: "volume", id: spec.volume_id.to_string() })?
            .size_gib;
        let s = Snapshot {
            id: self.id(1),
            name: spec.name.clone(),
            volume_id: spec.volume_id.to_string(),
            size_gib,
            status: SnapshotStatus::Available,
            created_at: Some(std::time::SystemTime::now()),
            metadata: spec.metadata.clone(),
        };
        self.snapshots.lock().unwrap().insert(s.id.clone(), s.clone());
        Ok(s)
    }

    async fn get_snapshot(&self, id: &CloudId) -> Result<Option<Snapshot>, CloudError> {
        Ok(self.snapshots.lock().unwrap().get(id.as_str()).cloned())
    }

    async fn find_snapshots_by_name(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        Ok(self.snapshots.lock().unwrap().values().filter(|s| s.name == name).cloned().collect())
    }

    async fn list_snapshots(
        &self,
        volume_id: Option<&CloudId>,
        _limit: Option<u32>,
        _marker: Option<&str>,
    ) -> Result<Page<Snapshot>, CloudError> {
        let items = self
            .snapshots
            .lock()
            .unwrap()
            .values()
            .filter(|s| volume_id.is_none_or(|v| s.volume_id == v.as_str()))
            .cloned()
            .collect();
        Ok(Page { items, next: None })
    }

    async fn delete_snapshot(&self, id: &CloudId) -> Result<(), CloudError> {
        self.snapshots.lock().unwrap().remove(id.as_str());
        Ok(())
    }

    async fn wait_snapshot_ready(&self, id: &CloudId, _timeout: Duration) -> Result<Snapshot, CloudError> {
        self.get_snapshot(id).await?.ok_or(CloudError::NotFound { kind: "snapshot", id: id.to_string() })
    }

    async fn attach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        _timeout: Duration,
    ) -> Result<Attached, CloudError> {
        if !self.servers.lock().unwrap().iter().any(|s| s == server_id.as_str()) {
            return Err(CloudError::NotFound { kind: "server", id: server_id.to_string() });
        }
        let mut volumes = self.volumes.lock().unwrap();
        let v = volumes
            .get_mut(volume_id.as_str())
            .ok_or(CloudError::NotFound { kind: "volume", id: volume_id.to_string() })?;
        if !v.attachments.iter().any(|a| a.server_id == server_id.as_str()) {
            v.attachments
                .push(VolumeAttachment { server_id: server_id.to_string(), device: Some("/dev/vdb".into()) });
        }
        v.status = VolumeStatus::InUse;
        Ok(Attached { device_hint: Some("/dev/vdb".into()) })
    }

    async fn detach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        _timeout: Duration,
    ) -> Result<(), CloudError> {
        let mut volumes = self.volumes.lock().unwrap();
        if let Some(v) = volumes.get_mut(volume_id.as_str()) {
            v.attachments.retain(|a| a.server_id != server_id.as_str());
            if v.attachments.is_empty() {
                v.status = VolumeStatus::Available;
            }
        }
        Ok(())
    }

    async fn attached_count(&self, server_id: &CloudId) -> Result<usize, CloudError> {
        if !self.servers.lock().unwrap().iter().any(|s| s == server_id.as_str()) {
            return Err(CloudError::NotFound { kind: "server", id: server_id.to_string() });
        }
        Ok(self
            .volumes
            .lock()
            .unwrap()
            .values()
            .filter(|v| v.attachments.iter().any(|a| a.server_id == server_id.as_str()))
            .count())
    }

    async fn capacity(&self, _volume_type: Option<&str>) -> Result<Capacity, CloudError> {
        Ok(Capacity { available_gib: Some(1000) })
    }
}
