//! Capacity and health of a published volume: statvfs for filesystems, the BLKGETSIZE64 ioctl
//! for raw block, and whether the mount is still the healthy mount we made.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::device::{DeviceFinder, Hints};
use super::mount::{self, PathState};
use super::{Error, Result, blockdev, errno_error, io_error};
use crate::contract::CloudId;

/// Byte and inode counts of a mounted filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// Size of the filesystem in bytes.
    pub bytes_total: u64,
    /// Bytes available to unprivileged users.
    pub bytes_available: u64,
    /// Bytes in use.
    pub bytes_used: u64,
    /// Number of inodes.
    pub inodes_total: u64,
    /// Inodes free for unprivileged users.
    pub inodes_available: u64,
    /// Inodes in use.
    pub inodes_used: u64,
}

/// The usage a volume reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A mounted filesystem.
    Filesystem(FsUsage),
    /// A raw block device of this many bytes.
    Block(u64),
    /// Nothing can be measured (the mount is corrupted).
    Unknown,
}

/// Whether a volume is healthy, and why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// True when something is wrong.
    pub abnormal: bool,
    /// What is wrong, or "healthy".
    pub message: String,
}

impl Condition {
    fn healthy() -> Self {
        Self { abnormal: false, message: "healthy".into() }
    }

    fn abnormal(message: String) -> Self {
        Self { abnormal: true, message }
    }
}

/// statvfs of the filesystem holding `path`.
pub fn filesystem_usage(path: &Path) -> Result<FsUsage> {
    let vfs = nix::sys::statvfs::statvfs(path).map_err(errno_error("measuring", path))?;
    let fragment = vfs.fragment_size();
    let total = vfs.blocks() * fragment;
    let free = vfs.blocks_free() * fragment;
    let files = vfs.files();
    Ok(FsUsage {
        bytes_total: total,
        bytes_available: vfs.blocks_available() * fragment,
        bytes_used: total.saturating_sub(free),
        inodes_total: files,
        inodes_available: vfs.files_available(),
        inodes_used: files.saturating_sub(vfs.files_free()),
    })
}

/// Usage and condition of `volume` published at `volume_path` (parsed by
/// [`super::safe_path::request_path`]; a symlink on it is refused, not followed).
pub fn volume_stats(
    finder: &DeviceFinder,
    volume: &CloudId,
    volume_path: &Path,
) -> Result<(Usage, Condition)> {
    super::safe_path::check(volume_path)?;
    let volume_id = volume.as_str();
    match mount::path_state(volume_path)? {
        PathState::Missing => return Err(Error::PathNotFound(volume_path.to_path_buf())),
        PathState::Corrupted => {
            let message =
                format!("{} is a corrupted mount (its filesystem no longer answers)", volume_path.display());
            return Ok((Usage::Unknown, Condition::abnormal(message)));
        }
        PathState::Present => {}
    }
    let meta = std::fs::metadata(volume_path).map_err(io_error("inspecting", volume_path))?;
    let is_block = meta.file_type().is_block_device();
    let usage = if is_block {
        Usage::Block(blockdev::size(volume_path)?)
    } else {
        Usage::Filesystem(filesystem_usage(volume_path)?)
    };
    let device = finder.find_now(volume, &Hints::default()).ok().flatten();
    let mount = mount::mount_at(volume_path)?;
    let condition = match (device, mount) {
        (None, _) => {
            Condition::abnormal(format!("the block device of volume {volume_id} is gone from this node"))
        }
        (Some(_), None) => Condition::abnormal(format!("{} is not mounted", volume_path.display())),
        (Some(device), Some(mount)) => {
            let rdev = std::fs::metadata(&device).map_err(io_error("inspecting", &device))?.rdev();
            let ours = if is_block { meta.rdev() == rdev } else { mount.is_of_device(rdev) };
            if !ours {
                Condition::abnormal(format!(
                    "{} is a mount of {}, not of the volume's device {}",
                    volume_path.display(),
                    mount.source,
                    device.display()
                ))
            } else if mount.went_readonly() {
                Condition::abnormal(format!(
                    "the {} filesystem on {} went read-only after errors",
                    mount.fs_type,
                    device.display()
                ))
            } else {
                Condition::healthy()
            }
        }
    };
    Ok((usage, condition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_of_a_directory_is_consistent() {
        let dir = tempfile::tempdir().unwrap();
        let usage = filesystem_usage(dir.path()).unwrap();
        assert!(usage.bytes_total > 0);
        assert!(usage.bytes_used <= usage.bytes_total);
        assert!(usage.bytes_available <= usage.bytes_total);
    }

    #[test]
    fn a_missing_volume_path_is_not_found() {
        let finder = DeviceFinder::default();
        let volume = CloudId::random();
        let error = volume_stats(&finder, &volume, Path::new("/nonexistent/volume/path")).unwrap_err();
        assert!(matches!(error, Error::PathNotFound(_)));
    }
}
