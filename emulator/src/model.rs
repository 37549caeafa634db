//! The emulated cloud's resources, independent of any one API's JSON view, so that the Cinder
//! view and a Huawei EVS view can read and write the same volume store.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Free-form string metadata, as both Cinder and EVS keep it.
pub type Metadata = BTreeMap<String, String>;

/// An operation in flight: the resource reaches its next state at `due_ms` unless a stuck or
/// fail rule holds it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    /// What completes.
    pub op: Op,
    /// When it completes (milliseconds since the epoch).
    pub due_ms: u64,
}

/// The operations whose completion is deferred by the configured latency.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// creating → available.
    Create,
    /// deleting → gone.
    Delete,
    /// extending → the previous status, at the new size.
    Extend {
        /// The size in GiB once done.
        new_size: u64,
        /// The status to return to.
        back_to: String,
    },
    /// attaching → in-use.
    Attach {
        /// The attachment that completes.
        attachment_id: String,
    },
    /// detaching → available (or in-use while other attachments remain).
    Detach {
        /// The attachment that goes away.
        attachment_id: String,
    },
    /// retyping → the previous status, with the new type when allowed.
    Retype {
        /// The type id once done.
        new_type_id: String,
        /// Whether the change may happen (false when it needs a migration that is not allowed).
        allowed: bool,
        /// The status to return to.
        back_to: String,
    },
    /// A volume busy with a backup (backing-up) or a restore (restoring-backup) returns to
    /// `back_to`.
    Return {
        /// The status to return to.
        back_to: String,
    },
}

/// One attachment of a volume to a server (Nova or the attachments API).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Attachment {
    /// The attachment id.
    pub id: String,
    /// The server (instance) id, if any.
    pub server_id: Option<String>,
    /// The guest device name, e.g. `/dev/vdb`.
    pub device: Option<String>,
    /// reserved, attaching, attached, detaching.
    pub status: String,
    /// `rw` or `ro`.
    pub mode: String,
    /// The connector the caller gave, if any.
    pub connector: Option<Value>,
    /// When the attachment was made.
    pub attached_at_ms: u64,
    /// The loop device backing it on this host, when one was set up.
    pub host_device: Option<String>,
    /// The by-id symlink made for it, when one was made.
    pub by_id_link: Option<String>,
}

/// A block volume (Cinder volume, EVS disk).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Volume {
    /// The id (UUID).
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The creating user.
    pub user_id: String,
    /// The name ("" when none).
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// Size in GiB.
    pub size: u64,
    /// The status, spelled as Cinder spells it.
    pub status: String,
    /// The volume type id.
    pub volume_type_id: String,
    /// The availability zone.
    pub availability_zone: String,
    /// Bootable flag.
    pub bootable: bool,
    /// Read-only flag (admin metadata in Cinder).
    pub readonly: bool,
    /// Whether more than one server may attach it.
    pub multiattach: bool,
    /// User metadata.
    pub metadata: Metadata,
    /// The snapshot it was made from.
    pub snapshot_id: Option<String>,
    /// The volume it was cloned from.
    pub source_volid: Option<String>,
    /// The backup it was restored from.
    pub backup_id: Option<String>,
    /// The group it belongs to.
    pub group_id: Option<String>,
    /// migrating, success, error, ...
    pub migration_status: Option<String>,
    /// Current attachments.
    pub attachments: Vec<Attachment>,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// Last update time (ms).
    pub updated_at_ms: Option<u64>,
    /// The operation in flight.
    pub pending: Option<Pending>,
    /// Fields only one API family knows (e.g. EVS tags), kept opaque by the core.
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
}

/// A volume snapshot.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Snapshot {
    /// The id.
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The creating user.
    pub user_id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The source volume.
    pub volume_id: String,
    /// Size in GiB (the volume's size at the time).
    pub size: u64,
    /// creating, available, deleting, error, ...
    pub status: String,
    /// User metadata.
    pub metadata: Metadata,
    /// The group snapshot it belongs to.
    pub group_snapshot_id: Option<String>,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// Last update time (ms).
    pub updated_at_ms: Option<u64>,
    /// The operation in flight.
    pub pending: Option<Pending>,
    /// Family-specific fields.
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
}

/// A volume backup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Backup {
    /// The id.
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The source volume.
    pub volume_id: String,
    /// The snapshot it was taken from, if any.
    pub snapshot_id: Option<String>,
    /// Size in GiB.
    pub size: u64,
    /// creating, available, deleting, restoring, error.
    pub status: String,
    /// Why it failed, as the backup driver said (with its traceback, as Cinder stores it).
    #[serde(default)]
    pub fail_reason: Option<String>,
    /// Whether it is incremental.
    pub is_incremental: bool,
    /// The container name.
    pub container: Option<String>,
    /// User metadata.
    pub metadata: Metadata,
    /// The source volume's metadata when it was backed up; a restore puts it back.
    #[serde(default)]
    pub volume_metadata: Metadata,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// Last update time (ms).
    pub updated_at_ms: Option<u64>,
    /// The operation in flight.
    pub pending: Option<Pending>,
}

/// A generic volume group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Group {
    /// The id.
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The group type id.
    pub group_type_id: String,
    /// The volume type ids allowed in it.
    pub volume_type_ids: Vec<String>,
    /// The availability zone.
    pub availability_zone: String,
    /// creating, available, deleting, error.
    pub status: String,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// The operation in flight.
    pub pending: Option<Pending>,
    /// The group it was created from (create-from-src), if any.
    #[serde(default)]
    pub source_group_id: Option<String>,
    /// The group snapshot it was created from (create-from-src), if any.
    #[serde(default)]
    pub group_snapshot_id: Option<String>,
}

/// A snapshot of every volume of a group.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupSnapshot {
    /// The id.
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// The group.
    pub group_id: String,
    /// The group type id.
    pub group_type_id: String,
    /// creating, available, deleting, error.
    pub status: String,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// The operation in flight.
    pub pending: Option<Pending>,
}

/// A group type.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroupType {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// Whether every project sees it.
    pub is_public: bool,
    /// Group specs.
    pub group_specs: Metadata,
}

/// A volume type.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct VolumeType {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: Option<String>,
    /// Whether every project sees it.
    pub is_public: bool,
    /// Extra specs (`multiattach`, `volume_backend_name`, ...).
    pub extra_specs: Metadata,
    /// The projects a private type is shared with (os-volume-type-access).
    #[serde(default)]
    pub projects: std::collections::BTreeSet<String>,
    /// Its encryption specs, when it is an encrypted type.
    #[serde(default)]
    pub encryption: Option<Encryption>,
}

/// A volume type's encryption specs (Cinder's volume_type_encryption row).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Encryption {
    /// The encryption id.
    pub id: String,
    /// The encryptor class (`luks`, `LuksEncryptor`, ...).
    pub provider: String,
    /// The cipher, if given.
    pub cipher: Option<String>,
    /// The key size in bits, if given.
    pub key_size: Option<i64>,
    /// `front-end` or `back-end`.
    pub control_location: String,
    /// Creation time (ms).
    pub created_at_ms: u64,
    /// Last update time (ms).
    pub updated_at_ms: Option<u64>,
}

impl VolumeType {
    /// Whether a project may see and use the type: public, shared with it, or an admin.
    pub fn visible_to(&self, project_id: &str, admin: bool) -> bool {
        admin || self.is_public || self.projects.contains(project_id)
    }

    /// Whether the type's extra specs make its volumes multi-attachable.
    pub fn multiattach(&self) -> bool {
        self.extra_specs.get("multiattach").is_some_and(|v| v.trim().eq_ignore_ascii_case("<is> True"))
    }

    /// The backend a type's volumes live on (a retype across backends needs a migration).
    pub fn backend(&self) -> Option<&str> {
        self.extra_specs.get("volume_backend_name").map(String::as_str)
    }
}

/// A compute server volumes attach to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Server {
    /// The id.
    pub id: String,
    /// The name (also the metadata service's hostname).
    pub name: String,
    /// The owning project.
    pub project_id: String,
    /// The availability zone.
    pub availability_zone: String,
    /// Whether this server is the machine the emulator runs on: attaching to it makes a loop
    /// device and a by-id link.
    pub this_host: bool,
    /// Creation time (ms).
    pub created_at_ms: u64,
}

/// Per-project limits; `-1` means unlimited.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Quotas {
    /// Limits by resource name (`volumes`, `gigabytes`, `snapshots`, `volumes_<type>`, ...).
    pub limits: BTreeMap<String, i64>,
}

/// A Keystone project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Project {
    /// The id (32 hex digits, like Keystone's).
    pub id: String,
    /// The name.
    pub name: String,
    /// The domain id.
    pub domain_id: String,
}

/// A Keystone domain.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Domain {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
}

/// A Keystone user with one role list per project.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct User {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The domain id.
    pub domain_id: String,
    /// The password.
    pub password: String,
    /// The default project.
    pub default_project_id: Option<String>,
    /// Role names by project id.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Role names by domain id (domain-scoped tokens).
    #[serde(default)]
    pub domain_roles: BTreeMap<String, Vec<String>>,
}

/// A Keystone trust (OS-TRUST): the trustee may act in the trustor's project with these roles.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trust {
    /// The id.
    pub id: String,
    /// Who delegates.
    pub trustor_user_id: String,
    /// Who may act.
    pub trustee_user_id: String,
    /// The project the trust is for.
    pub project_id: String,
    /// The delegated role names.
    pub roles: Vec<String>,
    /// Whether tokens act as the trustor (true) or the trustee.
    pub impersonation: bool,
    /// When it expires (ms), if ever.
    pub expires_at_ms: Option<u64>,
}

/// A Keystone application credential (bound to one user and project).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AppCredential {
    /// The id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The secret.
    pub secret: String,
    /// The owning user.
    pub user_id: String,
    /// The project it is bound to.
    pub project_id: String,
    /// When it expires (ms), if ever.
    pub expires_at_ms: Option<u64>,
}

/// An issued token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Token {
    /// The user.
    pub user_id: String,
    /// The scoped project (None: unscoped).
    pub project_id: Option<String>,
    /// The roles in that project.
    pub roles: Vec<String>,
    /// The auth methods used.
    pub methods: Vec<String>,
    /// When it was issued (ms).
    pub issued_at_ms: u64,
    /// When it expires (ms).
    pub expires_at_ms: u64,
    /// The application credential used, if any.
    pub app_credential_id: Option<String>,
    /// The audit id.
    pub audit_id: String,
    /// The scoped domain (domain-scoped tokens).
    #[serde(default)]
    pub domain_id: Option<String>,
    /// The trust the token was issued through.
    #[serde(default)]
    pub trust_id: Option<String>,
}

/// A Huawei AK/SK pair: requests signed with it act as its user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccessKey {
    /// The secret key.
    pub secret: String,
    /// The owning user.
    pub user_id: String,
    /// A temporary key's security token, which every request must carry.
    #[serde(default)]
    pub security_token: Option<String>,
    /// When a temporary key stops working (ms).
    #[serde(default)]
    pub expires_at_ms: Option<u64>,
}

/// What a Huawei job waits for; its status follows the resource's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobTarget {
    /// createVolume: the disk becomes available.
    CreateVolume {
        /// The disk.
        volume_id: String,
    },
    /// deleteVolume: the disk goes away.
    DeleteVolume {
        /// The disk.
        volume_id: String,
    },
    /// extendVolume: the disk reaches the new size.
    ExtendVolume {
        /// The disk.
        volume_id: String,
        /// The size asked for.
        new_size: u64,
    },
    /// modifyVolumeQos: the disk's new IOPS and throughput are in force.
    ModifyQos {
        /// The disk.
        volume_id: String,
    },
    /// attachVolume: the disk is attached to the server.
    AttachVolume {
        /// The disk.
        volume_id: String,
        /// The server.
        server_id: String,
    },
    /// detachVolume: the disk is no longer attached to the server.
    DetachVolume {
        /// The disk.
        volume_id: String,
        /// The server.
        server_id: String,
    },
    /// batchCreateVolume: every sub-job succeeds.
    Batch,
}

/// An asynchronous Huawei job (EVS or ECS), as `GET /v1/{project_id}/jobs/{job_id}` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Job {
    /// The id (32 hex digits).
    pub id: String,
    /// The owning project.
    pub project_id: String,
    /// `evs` or `ecs`: the service whose job endpoint shows it.
    pub service: String,
    /// createVolume, batchCreateVolume, deleteVolume, extendVolume, attachVolume, detachVolume.
    pub job_type: String,
    /// INIT, RUNNING, SUCCESS or FAIL.
    pub status: String,
    /// What completes it.
    pub target: JobTarget,
    /// The `entities` answered (without `sub_jobs`).
    pub entities: Value,
    /// Sub-jobs of a batch.
    #[serde(default)]
    pub sub_jobs: Vec<Job>,
    /// When it began (ms).
    pub begin_ms: u64,
    /// When it finished (ms).
    pub end_ms: Option<u64>,
    /// The error code of a failed job.
    pub error_code: Option<String>,
    /// Why it failed.
    pub fail_reason: Option<String>,
}

/// One user message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// The id.
    pub id: String,
    /// `VOLUME_<resource>_<action>_<detail>`.
    pub event_id: String,
    /// `"<action>:<detail>"`.
    pub user_message: String,
    /// `VOLUME`, `VOLUME_SNAPSHOT` or `VOLUME_BACKUP`.
    pub resource_type: String,
    /// The resource it is about.
    pub resource_uuid: String,
    /// When it was recorded (ms).
    pub created_at_ms: u64,
}

/// One set of QoS specs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct QosSpec {
    /// The id.
    pub id: String,
    /// The unique name.
    pub name: String,
    /// `front-end`, `back-end` or `both`.
    pub consumer: String,
    /// The key/value limits.
    pub specs: BTreeMap<String, String>,
    /// The volume types it is associated with.
    #[serde(default)]
    pub volume_type_ids: Vec<String>,
}

/// One transfer offered and not yet accepted or deleted.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Transfer {
    /// The id.
    pub id: String,
    /// The volume offered.
    pub volume_id: String,
    /// The name, if any.
    pub name: Option<String>,
    /// The project giving the volume away.
    pub source_project_id: String,
    /// Whether the volume's snapshots stay behind.
    pub no_snapshots: bool,
    /// Random salt of the key hash (hex).
    pub salt: String,
    /// SHA-256 of salt and auth key (hex); the key itself is never kept.
    pub key_hash: String,
    /// Creation time (ms).
    pub created_at_ms: u64,
}

/// What an admin set on one service.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ServiceState {
    /// Whether it is disabled.
    pub disabled: bool,
    /// Why, when disabled with a reason.
    pub disabled_reason: Option<String>,
    /// Whether its host is frozen (volume services only).
    pub frozen: bool,
}
