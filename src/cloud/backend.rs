//! The one interface the CSI controller uses to reach a cloud; one implementation per cloud.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::CloudError;
use super::types::{
    Attached, Backup, Capacity, GroupSnapshot, ManageSpec, Page, Snapshot, SnapshotSpec, TagRepair, Volume,
    VolumeSpec,
};
use crate::contract::CloudId;

/// Volume, snapshot, attachment and capacity operations of one cloud.
///
/// `create_*`, `delete_*`, `attach` and `detach` return once the cloud has accepted the
/// request; the `wait_*` methods return once it has finished (or failed, or timed out).
#[async_trait::async_trait]
pub trait Backend: Send + Sync + std::fmt::Debug {
    /// Checks that the cloud answers with our credentials.
    async fn probe(&self) -> Result<(), CloudError>;

    /// The optional features this cloud offers.
    fn features(&self) -> super::features::Features {
        super::features::Features::ALL
    }

    /// Starts creating a volume.
    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CloudError>;
    /// A volume by id; `None` when it does not exist.
    async fn get_volume(&self, id: &CloudId) -> Result<Option<Volume>, CloudError>;
    /// Volumes with exactly this name.
    async fn find_volumes_by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError>;
    /// One page of volumes, oldest first.
    async fn list_volumes(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError>;
    /// Starts deleting a volume; a missing volume is success.
    async fn delete_volume(&self, id: &CloudId) -> Result<(), CloudError>;
    /// Starts growing a volume to `size_gib` (in-use volumes where the cloud allows it).
    async fn extend_volume(&self, id: &CloudId, size_gib: u64) -> Result<(), CloudError>;
    /// Starts changing the volume's type, migrating the data when the cloud must.
    async fn retype_volume(&self, id: &CloudId, volume_type: &str) -> Result<(), CloudError>;
    /// Waits until a retype has finished; fails when the cloud kept the old type.
    async fn wait_volume_retyped(
        &self,
        id: &CloudId,
        volume_type: &str,
        timeout: Duration,
    ) -> Result<Volume, CloudError>;
    /// Waits until the volume is available or in use (not in a transition).
    async fn wait_volume_ready(&self, id: &CloudId, timeout: Duration) -> Result<Volume, CloudError>;
    /// Waits until the volume has at least `size_gib` and is no longer extending.
    async fn wait_volume_extended(
        &self,
        id: &CloudId,
        size_gib: u64,
        timeout: Duration,
    ) -> Result<Volume, CloudError>;
    /// Waits until the volume is gone.
    async fn wait_volume_deleted(&self, id: &CloudId, timeout: Duration) -> Result<(), CloudError>;

    /// Starts taking a snapshot.
    async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError>;
    /// A snapshot by id; `None` when it does not exist.
    async fn get_snapshot(&self, id: &CloudId) -> Result<Option<Snapshot>, CloudError>;
    /// Snapshots with exactly this name.
    async fn find_snapshots_by_name(&self, name: &str) -> Result<Vec<Snapshot>, CloudError>;
    /// One page of snapshots, optionally of one volume.
    async fn list_snapshots(
        &self,
        volume_id: Option<&CloudId>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Snapshot>, CloudError>;
    /// Starts deleting a snapshot; a missing snapshot is success.
    async fn delete_snapshot(&self, id: &CloudId) -> Result<(), CloudError>;
    /// Waits until the snapshot is available.
    async fn wait_snapshot_ready(&self, id: &CloudId, timeout: Duration) -> Result<Snapshot, CloudError>;

    /// Takes a group snapshot of `volume_ids` named `name` (idempotent by name) and waits
    /// until it and its member snapshots are available.
    async fn create_group_snapshot(
        &self,
        name: &str,
        volume_ids: &[CloudId],
        timeout: Duration,
    ) -> Result<GroupSnapshot, CloudError> {
        let _ = (name, volume_ids, timeout);
        Err(CloudError::Unsupported("group snapshots".into()))
    }
    /// A group snapshot with its members; `None` when it does not exist.
    async fn get_group_snapshot(&self, id: &CloudId) -> Result<Option<GroupSnapshot>, CloudError> {
        let _ = id;
        Err(CloudError::Unsupported("group snapshots".into()))
    }
    /// Deletes a group snapshot and the helper group it needed; a missing one is success.
    async fn delete_group_snapshot(&self, id: &CloudId, timeout: Duration) -> Result<(), CloudError> {
        let _ = (id, timeout);
        Err(CloudError::Unsupported("group snapshots".into()))
    }

    /// Starts a backup of a volume named `name` (idempotent by name).
    async fn create_backup(&self, name: &str, volume_id: &CloudId) -> Result<Backup, CloudError> {
        let _ = (name, volume_id);
        Err(CloudError::Unsupported("backups".into()))
    }
    /// Why a `kind` resource (`volume`, `snapshot`) ended in an error state, in the cloud's
    /// words (cleaned); `None` when the cloud does not say.
    async fn failure_reason(&self, kind: &'static str, id: &str) -> Option<String> {
        let _ = (kind, id);
        None
    }
    /// A backup; `None` when it does not exist.
    async fn get_backup(&self, id: &CloudId) -> Result<Option<Backup>, CloudError> {
        let _ = id;
        Err(CloudError::Unsupported("backups".into()))
    }
    /// Starts deleting a backup; a missing one is success.
    async fn delete_backup(&self, id: &CloudId) -> Result<(), CloudError> {
        let _ = id;
        Err(CloudError::Unsupported("backups".into()))
    }

    /// Sets one metadata key of a volume, keeping the others; an empty `value` clears it
    /// (EVS cannot delete a key through its update, so readers treat "" as absent).
    /// `current` is the metadata the caller read under the volume's lock, so that a cloud
    /// that can only replace the whole map needs no read of its own.
    async fn set_volume_metadata(
        &self,
        id: &CloudId,
        current: &BTreeMap<String, String>,
        key: &str,
        value: &str,
    ) -> Result<(), CloudError> {
        let _ = (id, current, key, value);
        Err(CloudError::Unsupported("volume metadata updates".into()))
    }

    /// Changes a volume's provisioned IOPS and/or throughput (MiB/s) and waits for it.
    async fn modify_performance(
        &self,
        id: &CloudId,
        iops: Option<u64>,
        throughput: Option<u64>,
        timeout: Duration,
    ) -> Result<(), CloudError> {
        let _ = (id, iops, throughput, timeout);
        Err(CloudError::Unsupported(
            "changing IOPS or throughput per volume; change the volume type instead".into(),
        ))
    }

    /// Brings existing backend storage under the cloud's management as a new volume.
    async fn manage_volume(&self, spec: &ManageSpec) -> Result<Volume, CloudError> {
        let _ = spec;
        Err(CloudError::Unsupported("managing existing storage".into()))
    }

    /// Attaches the volume to the server and waits until it is in use there; attaching to a
    /// server it is already attached to is success.
    async fn attach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<Attached, CloudError>;
    /// Detaches the volume from the server and waits until it is detached; a missing volume,
    /// missing server or absent attachment is success.
    async fn detach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<(), CloudError>;

    /// Number of volumes attached to a server (for per-node limits).
    async fn attached_count(&self, server_id: &CloudId) -> Result<usize, CloudError>;

    /// GiB that may still be allocated (optionally for one volume type).
    async fn capacity(&self, volume_type: Option<&str>) -> Result<Capacity, CloudError>;

    /// Adds the labels that a cloud takes only after the create, and that failed then, to the
    /// cluster's volumes (EVS tags). Clouds that take everything in the create have none.
    async fn repair_tags(&self) -> Result<TagRepair, CloudError> {
        Ok(TagRepair::default())
    }
}

/// An id from a cloud's answer (a listing, a create) as the typed id the backend methods
/// take. Clouds issue UUIDs; anything else is an answer the driver cannot act on safely.
pub fn issued_id(text: &str) -> Result<CloudId, CloudError> {
    CloudId::parse("id", text)
        .map_err(|e| CloudError::Protocol(format!("the cloud issued an id that is not a UUID: {e}")))
}
