//! CSI requests the controller test binaries send alike.

use std::collections::HashMap;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use cinder_evs_csi::csi::pb::volume_capability::{AccessMode, AccessType, MountVolume};

/// One GiB in bytes.
pub const GIB: i64 = 1 << 30;

/// A single-node-writer ext4 mount.
pub fn mount_cap() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

/// A CreateVolume of `gib` GiB carrying a PVC name and a secret that must never be logged.
pub fn create(name: &str, gib: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([("csi.storage.k8s.io/pvc/name".to_string(), "data".to_string())]),
        secrets: HashMap::from([("password".to_string(), "never-logged-secret".to_string())]),
        ..Default::default()
    }
}
