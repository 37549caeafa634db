//! Cloud-neutral descriptions of volumes, snapshots and attachments: what the CSI layer sees
//! of any backend.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::contract::CloudId;

/// Where a volume is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeStatus {
    /// Being created.
    Creating,
    /// Ready and not attached.
    Available,
    /// Reserved for an attachment.
    Reserved,
    /// Being attached.
    Attaching,
    /// Attached.
    InUse,
    /// Being detached.
    Detaching,
    /// Being extended.
    Extending,
    /// Being deleted.
    Deleting,
    /// Changing type.
    Retyping,
    /// Any `error*` status, kept verbatim.
    Error(String),
    /// Any other status, kept verbatim.
    Other(String),
}

impl VolumeStatus {
    /// Parses a Cinder/EVS status string.
    pub fn parse(status: &str) -> Self {
        match status {
            "creating" | "downloading" => Self::Creating,
            "available" => Self::Available,
            "reserved" => Self::Reserved,
            "attaching" => Self::Attaching,
            "in-use" => Self::InUse,
            "detaching" => Self::Detaching,
            "extending" => Self::Extending,
            "deleting" => Self::Deleting,
            "retyping" => Self::Retyping,
            s if s.starts_with("error") => Self::Error(s.to_string()),
            s => Self::Other(s.to_string()),
        }
    }

    /// The cloud's spelling.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Creating => "creating",
            Self::Available => "available",
            Self::Reserved => "reserved",
            Self::Attaching => "attaching",
            Self::InUse => "in-use",
            Self::Detaching => "detaching",
            Self::Extending => "extending",
            Self::Deleting => "deleting",
            Self::Retyping => "retyping",
            Self::Error(s) | Self::Other(s) => s,
        }
    }
}

/// An attachment of a volume to a server, as the volume reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeAttachment {
    /// The server.
    pub server_id: String,
    /// The device name the hypervisor reported (a hint only).
    pub device: Option<String>,
}

/// The metadata pair that marks the volumes one cluster's driver created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Metadata key.
    pub key: String,
    /// Metadata value.
    pub value: String,
}

/// What one pass of [`crate::cloud::Backend::repair_tags`] found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagRepair {
    /// The cluster's settled volumes looked at.
    pub checked: usize,
    /// Volumes whose missing tags were added.
    pub repaired: usize,
    /// Volumes whose tags could not be added (the cloud refused; retried next pass).
    pub failed: usize,
}

/// A volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volume {
    /// Cloud id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Status.
    pub status: VolumeStatus,
    /// Availability zone.
    pub zone: String,
    /// Volume type.
    pub volume_type: Option<String>,
    /// Whether several servers may attach it.
    pub multiattach: bool,
    /// Current attachments.
    pub attachments: Vec<VolumeAttachment>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Snapshot it was created from.
    pub source_snapshot_id: Option<String>,
    /// Volume it was cloned from.
    pub source_volume_id: Option<String>,
    /// The SCSI WWN exactly as the cloud reports it, unchecked (EVS disks carry one; Cinder's
    /// view has no such field): the controller parses it before it writes it anywhere.
    pub wwn: Option<String>,
}

/// Where a new volume's data comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeSource {
    /// A snapshot.
    Snapshot(CloudId),
    /// Another volume (clone).
    Volume(CloudId),
    /// A backup.
    Backup(CloudId),
}

/// Encryption of a new volume's data at rest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encryption {
    /// The KMS key; the cloud's default key when `None`.
    pub kms_key_id: Option<String>,
}

/// What to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Name (the CSI volume name, for idempotency).
    pub name: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Volume type.
    pub volume_type: Option<String>,
    /// Availability zone.
    pub zone: Option<String>,
    /// Data source.
    pub source: Option<VolumeSource>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Description.
    pub description: Option<String>,
    /// Ask for a volume several servers may attach.
    pub multiattach: bool,
    /// Provisioned IOPS, for clouds that set it per volume.
    pub iops: Option<u64>,
    /// Provisioned throughput in MiB/s, for clouds that set it per volume.
    pub throughput: Option<u64>,
    /// Encrypt the volume's data.
    pub encryption: Option<Encryption>,
    /// Present the volume as a SCSI device (passthrough) instead of virtio-blk.
    pub scsi: bool,
}

/// Where a snapshot is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Being taken.
    Creating,
    /// Ready.
    Available,
    /// Being deleted.
    Deleting,
    /// Any `error*` status.
    Error(String),
    /// Anything else.
    Other(String),
}

impl SnapshotStatus {
    /// Parses a Cinder/EVS snapshot status.
    pub fn parse(status: &str) -> Self {
        match status {
            "creating" => Self::Creating,
            "available" => Self::Available,
            "deleting" => Self::Deleting,
            s if s.starts_with("error") => Self::Error(s.to_string()),
            s => Self::Other(s.to_string()),
        }
    }
}

/// A snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Cloud id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Source volume.
    pub volume_id: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Status.
    pub status: SnapshotStatus,
    /// When it was taken.
    pub created_at: Option<SystemTime>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// What snapshot to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotSpec {
    /// Name (the CSI snapshot name, for idempotency).
    pub name: String,
    /// Source volume.
    pub volume_id: CloudId,
    /// Allow snapshots of attached volumes.
    pub force: bool,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Marker for the next page, when there is one.
    pub next: Option<String>,
}

/// Quota-derived capacity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// GiB that may still be allocated; `None` when unlimited.
    pub available_gib: Option<u64>,
}

/// The result of attaching a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The device the cloud reported, as a hint for the node.
    pub device_hint: Option<String>,
}

/// A consistent snapshot of several volumes, taken at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Cloud id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Status (`creating`, `available`, `error`, ...).
    pub status: SnapshotStatus,
    /// When it was taken.
    pub created_at: Option<SystemTime>,
    /// The member snapshots, one per volume.
    pub snapshots: Vec<Snapshot>,
}

/// A backup of a volume (kept apart from the volume's storage).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// Cloud id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Source volume.
    pub volume_id: String,
    /// Size in GiB.
    pub size_gib: u64,
    /// Status (`creating`, `available`, `error`, ...).
    pub status: SnapshotStatus,
    /// When it was taken.
    pub created_at: Option<SystemTime>,
    /// Why it failed, in the cloud's words (cleaned of tracebacks and credentials).
    pub fail_reason: Option<String>,
}

/// Existing backend storage to bring under the cloud's management (Cinder `os-volume-manage`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManageSpec {
    /// The storage backend host (`host@backend#pool`).
    pub host: String,
    /// The backend's name of the storage (`source-name`), or its id (`source-id`).
    pub reference: ManageRef,
    /// Name of the new volume.
    pub name: String,
    /// Volume type.
    pub volume_type: Option<String>,
    /// Availability zone.
    pub zone: Option<String>,
}

/// How the backend names the storage to manage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManageRef {
    /// `source-name`.
    Name(String),
    /// `source-id`.
    Id(String),
}
