//! How many data volumes this server can take, judged from the bus of its system disk in sysfs.

use std::path::Path;

/// Data disks a virtio-blk server takes: `vdb` to `vdz` (the root disk is `vda`).
pub const VIRTIO_BLK_MAX_VOLUMES: i64 = 25;
/// Data disks a SCSI server (EVS SCSI, virtio-scsi) takes: EVS allows 60 disks per server,
/// one of them the system disk.
pub const SCSI_MAX_VOLUMES: i64 = 59;

/// The default volume limit, derived from the bus of the system disk: SCSI when the server
/// boots from `sda`, virtio-blk otherwise.
pub fn default_max_volumes(sys_root: &Path) -> i64 {
    let boots_from_scsi = sys_root.join("block/sda").exists() && !sys_root.join("block/vda").exists();
    if boots_from_scsi { SCSI_MAX_VOLUMES } else { VIRTIO_BLK_MAX_VOLUMES }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_volume_limit_follows_the_system_disk_bus() {
        let sys = tempfile::tempdir().unwrap();
        assert_eq!(default_max_volumes(sys.path()), VIRTIO_BLK_MAX_VOLUMES);
        std::fs::create_dir_all(sys.path().join("block/sda")).unwrap();
        assert_eq!(default_max_volumes(sys.path()), SCSI_MAX_VOLUMES);
        std::fs::create_dir_all(sys.path().join("block/vda")).unwrap();
        assert_eq!(default_max_volumes(sys.path()), VIRTIO_BLK_MAX_VOLUMES);
    }
}
