//! Growing a volume in place: make the kernel see the device's new size, then grow the
//! filesystem on it while it stays mounted.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::device::{DeviceFinder, Hints};
use super::format::FsType;
use super::{Error, Result, blockdev, command, io_error, mount, safe_path};
use crate::contract::CloudId;

/// Makes the kernel re-read the size of `device`: `losetup -c` for loop devices, a SCSI
/// rescan for SCSI disks; virtio-blk learns its size without being asked.
pub async fn rescan_device(device: &Path, sys_root: &Path) -> Result<()> {
    let name = device.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let class = sys_root.join("class/block").join(&name);
    if class.join("loop").exists() {
        let path = device.to_string_lossy();
        command::run("losetup", &["-c", path.as_ref()]).await?;
        return Ok(());
    }
    let rescan = class.join("device/rescan");
    if rescan.exists() {
        std::fs::write(&rescan, "1").map_err(io_error("rescanning", &rescan))?;
    }
    Ok(())
}

/// Grows the `fs` filesystem on `device`, mounted at `mount_point`, to fill the device.
pub async fn grow_filesystem(fs: FsType, device: &Path, mount_point: &Path) -> Result<()> {
    let device = device.to_string_lossy();
    let mount_point = mount_point.to_string_lossy();
    tracing::info!(%fs, device = %device, mount_point = %mount_point, "growing filesystem");
    let (program, args): (&str, Vec<&str>) = match fs {
        FsType::Ext4 | FsType::Ext3 => ("resize2fs", vec![device.as_ref()]),
        FsType::Xfs => ("xfs_growfs", vec![mount_point.as_ref()]),
        FsType::Btrfs => ("btrfs", vec!["filesystem", "resize", "max", mount_point.as_ref()]),
    };
    command::run(program, &args).await.map(drop)
}

/// Grows an unmounted ext3/ext4 filesystem to fill its device, after the full check
/// resize2fs insists on.
pub async fn grow_unmounted_ext(device: &Path) -> Result<()> {
    let path = device.to_string_lossy();
    let check = ["-f", "-p", path.as_ref()];
    let out = command::output("e2fsck", &check).await?;
    if !matches!(out.status.code(), Some(0..=2)) {
        return Err(command::failure("e2fsck", &check, &out));
    }
    tracing::info!(device = %path, "growing unmounted ext filesystem");
    command::run("resize2fs", &[path.as_ref()]).await.map(drop)
}

/// Grows `volume`, published or staged at `volume_path` (parsed by
/// [`safe_path::request_path`]), to its device's current size and returns that size in bytes.
/// Raw block volumes only need the rescan.
pub async fn expand(finder: &DeviceFinder, volume: &CloudId, volume_path: &Path) -> Result<u64> {
    let fd = safe_path::open(volume_path)?.ok_or_else(|| Error::PathNotFound(volume_path.to_path_buf()))?;
    let is_block = safe_path::is_block(&safe_path::stat(&fd, volume_path)?);
    let device = finder.find_now(volume, &Hints::default())?.ok_or_else(|| Error::DeviceNotFound {
        volume_id: volume.to_string(),
        searched: "this node".into(),
    })?;
    rescan_device(&device, &finder.sys_root).await?;
    if !is_block {
        let rdev = std::fs::metadata(&device).map_err(io_error("inspecting", &device))?.rdev();
        let mounted = mount::mount_at(volume_path)?.filter(|m| m.is_of_device(rdev)).ok_or_else(|| {
            Error::Conflict(format!("{} is not a mount of volume {volume}", volume_path.display()))
        })?;
        let fs: FsType = mounted.fs_type.parse()?;
        grow_filesystem(fs, &device, volume_path).await?;
    }
    blockdev::size(&device)
}
