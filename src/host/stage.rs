//! Staging a volume on this node: find and verify its device, format it only if it is blank,
//! check and mount it at the staging path; and the reverse, which never unmounts what is not
//! the volume's.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::device::{DeviceFinder, Hints};
use super::format::{self, FsType, MkfsOptions};
use super::mount::{self, MountEntry};
use super::probe::{self, Signature};
use super::{Error, Result, io_error, resize};

/// Volume context key: `"true"` when the volume is larger than the snapshot or volume it was
/// made from, so the filesystem is grown to the device at stage.
pub const GROW_FS_KEY: &str = "growFs";

/// How a volume is consumed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// As a raw block device.
    Block,
    /// As a mounted filesystem.
    Filesystem {
        /// The filesystem type.
        fs: FsType,
        /// Extra mount options from the capability.
        mount_options: Vec<String>,
    },
}

/// What NodeStageVolume asks for, in host terms.
#[derive(Clone, Debug)]
pub struct StageRequest<'a> {
    /// The volume.
    pub volume_id: &'a str,
    /// Where the filesystem is mounted (for filesystem access).
    pub staging_path: &'a Path,
    /// Where the device may be.
    pub hints: Hints,
    /// Block or filesystem.
    pub access: Access,
    /// True for read-only access modes.
    pub readonly: bool,
    /// The volume context (mkfs options, `growFs`).
    pub context: &'a HashMap<String, String>,
}

/// A verified device and its device number.
#[derive(Clone, Debug)]
pub struct Device {
    /// Canonical device node path.
    pub path: PathBuf,
    /// Device number.
    pub rdev: u64,
}

impl Device {
    /// Reads the device number of the verified device at `path`.
    pub fn at(path: PathBuf) -> Result<Self> {
        let rdev = std::fs::metadata(&path).map_err(io_error("inspecting", &path))?.rdev();
        Ok(Self { path, rdev })
    }
}

/// Stages the volume; repeating a completed stage succeeds without touching anything.
pub async fn stage(finder: &DeviceFinder, request: &StageRequest<'_>) -> Result<()> {
    let device = Device::at(finder.find(request.volume_id, &request.hints).await?)?;
    let Access::Filesystem { fs, mount_options } = &request.access else {
        // Raw block needs no staging: publish binds the verified device itself.
        return Ok(());
    };
    let fs = *fs;
    let staging = request.staging_path;
    if let Some(existing) = mount::mount_at(staging)? {
        return already_staged(&existing, &device, fs, staging);
    }
    let mkfs_options = MkfsOptions::from_context(request.context)?;
    std::fs::create_dir_all(staging).map_err(io_error("creating", staging))?;

    let grow =
        !request.readonly && request.context.get(GROW_FS_KEY).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    match probe::probe(&device.path).await? {
        Signature::Blank if request.readonly => {
            return Err(Error::Conflict(format!(
                "device {} is blank and the volume is requested read-only; there is nothing to mount",
                device.path.display()
            )));
        }
        Signature::Blank => format::make_filesystem(&device.path, fs, &mkfs_options).await?,
        Signature::Filesystem(found) if found == fs.name() => {
            if !request.readonly {
                format::check_filesystem(&device.path, fs).await?;
            }
            if grow && fs == FsType::Ext4 {
                // ext4 grows before it is mounted: offline growth needs no CAP_SYS_RESOURCE
                // and cannot race with writers.
                resize::grow_unmounted_ext4(&device.path).await?;
            }
        }
        Signature::Filesystem(found) | Signature::Other(found) => {
            return Err(Error::ForeignSignature { device: device.path, found, wanted: fs.to_string() });
        }
    }

    let mut options: Vec<String> = mount_options.clone();
    options.extend(fs.implied_mount_options().iter().map(|o| o.to_string()));
    if request.readonly {
        options.push("ro".into());
    }
    mount::mount_filesystem(&device.path, staging, fs.name(), &options)?;

    if grow && fs != FsType::Ext4 {
        // xfs and btrfs grow only while mounted.
        resize::grow_filesystem(fs, &device.path, staging).await?;
    }
    Ok(())
}

/// The answer when the staging path is already a mount.
fn already_staged(existing: &MountEntry, device: &Device, fs: FsType, staging: &Path) -> Result<()> {
    if existing.is_of_device(device.rdev) && existing.fs_type == fs.name() {
        tracing::info!(staging = %staging.display(), "already staged");
        Ok(())
    } else {
        Err(Error::InUse {
            path: staging.to_path_buf(),
            found: format!("a {} mount of {}", existing.fs_type, existing.source),
        })
    }
}

/// Unstages the volume: unmounts the staging path if it is this volume's mount, and removes
/// the directory. Succeeds when there is nothing left to do.
pub fn unstage(finder: &DeviceFinder, volume_id: &str, staging: &Path) -> Result<()> {
    let device = current_device(finder, volume_id);
    unmount_all(volume_id, staging, device.as_ref())?;
    mount::remove_mount_point(staging)
}

/// The volume's device if it is still on the node and provably the volume.
pub fn current_device(finder: &DeviceFinder, volume_id: &str) -> Option<Device> {
    match finder.find_now(volume_id, &Hints::default()) {
        Ok(Some(path)) => Device::at(path).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(volume_id, error = %e, "cannot identify the volume's device");
            None
        }
    }
}

/// Unmounts every mount stacked at `path` after checking each is the volume's.
pub fn unmount_all(volume_id: &str, path: &Path, device: Option<&Device>) -> Result<()> {
    for _ in 0..MAX_STACKED_MOUNTS {
        let Some(existing) = mount::mount_at(path)? else { return Ok(()) };
        ensure_ours(volume_id, path, &existing, device)?;
        mount::unmount(path)?;
    }
    Err(Error::Conflict(format!(
        "{} still holds mounts after {MAX_STACKED_MOUNTS} unmounts; something keeps mounting it",
        path.display()
    )))
}

/// How many mounts stacked on one path are taken down before giving up (never loop forever
/// if something re-mounts behind our back).
const MAX_STACKED_MOUNTS: usize = 16;

/// Filesystems this driver mounts; with the device gone, a mount of one of these from a
/// `/dev` node is taken to be the volume's vanished device.
const MANAGED_FILESYSTEMS: [&str; 5] = ["ext4", "ext3", "ext2", "xfs", "btrfs"];

/// Refuses a mount at `path` that is provably not the volume's.
fn ensure_ours(volume_id: &str, path: &Path, existing: &MountEntry, device: Option<&Device>) -> Result<()> {
    // A bind of the device node itself (raw block publish) shows the device as the file.
    let node_rdev =
        std::fs::metadata(path).ok().filter(|m| m.file_type().is_block_device()).map(|m| m.rdev());
    let ours = match device {
        Some(device) => node_rdev == Some(device.rdev) || existing.is_of_device(device.rdev),
        None => {
            node_rdev.is_some()
                || (MANAGED_FILESYSTEMS.contains(&existing.fs_type.as_str())
                    && existing.source.starts_with("/dev/"))
        }
    };
    if ours {
        Ok(())
    } else {
        Err(Error::NotOurMount {
            path: path.to_path_buf(),
            found: format!("{} ({})", existing.source, existing.fs_type),
            volume_id: volume_id.to_string(),
        })
    }
}
