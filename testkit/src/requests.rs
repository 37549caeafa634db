//! CSI requests the test binaries send alike: capabilities and CreateVolume.

use std::collections::HashMap;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use cinder_evs_csi::csi::pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};

/// One GiB in bytes.
pub const GIB: i64 = 1 << 30;

/// A mount capability for filesystem `fs` with access `mode`.
pub fn mount_capability(fs: &str, mode: Mode) -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: fs.into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

/// A raw block capability with access `mode`.
pub fn block_capability(mode: Mode) -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

/// A single-node-writer ext4 mount.
pub fn mount_cap() -> pb::VolumeCapability {
    mount_capability("ext4", Mode::SingleNodeWriter)
}

/// A single-node-writer raw block volume.
pub fn block_cap() -> pb::VolumeCapability {
    block_capability(Mode::SingleNodeWriter)
}

/// A plain CreateVolume of `gib` GiB for an ext4 mount, nothing else set.
pub fn create_request(name: &str, gib: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    }
}

/// A CreateVolume of `gib` GiB carrying a PVC name and a secret that must never be logged.
pub fn create(name: &str, gib: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        parameters: HashMap::from([("csi.storage.k8s.io/pvc/name".to_string(), "data".to_string())]),
        secrets: HashMap::from([("password".to_string(), "never-logged-secret".to_string())]),
        ..create_request(name, gib)
    }
}

/// A ControllerPublishVolume of `volume_id` to `node_id` for an ext4 mount.
pub fn publish_request(volume_id: &str, node_id: &str) -> pb::ControllerPublishVolumeRequest {
    pb::ControllerPublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    }
}
