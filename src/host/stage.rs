//! Staging a volume on this node: find and verify its device, format it only if it is blank,
//! check and mount it at the staging path; and the reverse, which never unmounts what is not
//! the volume's.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::device::{DeviceFinder, Hints, Identity};
use super::format::{self, FsType, MkfsOptions};
use super::mount::{self, MountEntry};
use super::probe::{self, Signature};
use super::{Error, Result, blockdev, fs_size, io_error, resize, safe_path};
use crate::contract::CloudId;
use crate::contract::fs::Growth;

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
    pub volume: &'a CloudId,
    /// Where the filesystem is mounted (for filesystem access), parsed by
    /// [`safe_path::request_path`].
    pub staging_path: &'a Path,
    /// Where the device may be.
    pub hints: Hints,
    /// Block or filesystem.
    pub access: Access,
    /// True for read-only access modes.
    pub readonly: bool,
    /// The volume context (mkfs options).
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
    let staging = request.staging_path;
    // Refused before anything else: nothing is looked up or created through a symlink.
    safe_path::check(staging)?;
    let device = Device::at(finder.find(request.volume, &request.hints).await?)?;
    let Access::Filesystem { fs, mount_options } = &request.access else {
        // Raw block needs no staging: publish binds the verified device itself.
        return Ok(());
    };
    let fs = *fs;
    if let Some(existing) = mount::mount_at(staging)? {
        return already_staged(&existing, &device, fs, staging);
    }
    let mkfs_options = MkfsOptions::from_context(request.context)?;
    let staging_fd = safe_path::create_dir_all(staging)?;

    let mut grow_mounted = false;
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
                grow_mounted = grow_before_mount(&device, fs).await?;
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
    mount::mount_filesystem(&device.path, staging, &staging_fd, fs.name(), &options)?;

    if grow_mounted {
        // xfs and btrfs grow only while mounted, so right after the mount, before any pod.
        resize::grow_filesystem(fs, &device.path, staging).await?;
    }
    Ok(())
}

/// Grows the filesystem on `device` when the device is larger than it (the volume was
/// expanded while no pod used it): ext offline now, which needs no CAP_SYS_RESOURCE and races
/// no writer; the others are reported for growth right after the mount.
async fn grow_before_mount(device: &Device, fs: FsType) -> Result<bool> {
    let Some(size) = fs_size::read(&device.path, fs)? else { return Ok(false) };
    let device_bytes = blockdev::size(&device.path)?;
    if !size.needs_growth(device_bytes) {
        return Ok(false);
    }
    tracing::info!(device = %device.path.display(), %fs, fs_bytes = size.bytes, device_bytes, "the device outgrew its filesystem");
    match fs.growth() {
        Growth::OfflineFirst => resize::grow_unmounted_ext(&device.path).await.map(|()| false),
        Growth::OnlineOnly => Ok(true),
    }
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
pub fn unstage(finder: &DeviceFinder, volume: &CloudId, staging: &Path) -> Result<()> {
    safe_path::check(staging)?;
    let device = current_device(finder, volume);
    unmount_all(finder, volume, staging, device.as_ref())?;
    mount::remove_mount_point(staging)
}

/// The volume's device if it is still on the node and provably the volume.
pub fn current_device(finder: &DeviceFinder, volume: &CloudId) -> Option<Device> {
    match finder.find_now(volume, &Hints::default()) {
        Ok(Some(path)) => Device::at(path).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(volume_id = %volume, error = %e, "cannot identify the volume's device");
            None
        }
    }
}

/// Unmounts every mount stacked at `path` after checking each is the volume's.
pub fn unmount_all(
    finder: &DeviceFinder,
    volume: &CloudId,
    path: &Path,
    device: Option<&Device>,
) -> Result<()> {
    for _ in 0..MAX_STACKED_MOUNTS {
        let Some(existing) = mount::mount_at(path)? else { return Ok(()) };
        ensure_ours(finder, volume, path, &existing, device)?;
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

/// The device number of the block device node at `path` (a raw block publish), reached
/// without following symlinks.
fn block_node_rdev(path: &Path) -> Option<u64> {
    let fd = safe_path::open(path).ok()??;
    let stat = safe_path::stat(&fd, path).ok()?;
    safe_path::is_block(&stat).then_some(stat.st_rdev)
}

/// Refuses a mount at `path` that is not provably the volume's.
///
/// With the device on the node, the mount must be of it (or a bind of its node). With the
/// device gone, the mount's own device must still name the volume exactly (a loop device
/// whose file was deleted), or have vanished from the kernel altogether while mounted with a
/// filesystem this driver makes: a host mount of any device the kernel still knows is never
/// taken for the volume's.
fn ensure_ours(
    finder: &DeviceFinder,
    volume: &CloudId,
    path: &Path,
    existing: &MountEntry,
    device: Option<&Device>,
) -> Result<()> {
    let node_rdev = block_node_rdev(path);
    let ours = match device {
        Some(device) => node_rdev == Some(device.rdev) || existing.is_of_device(device.rdev),
        None => names_vanished_volume(finder, volume, existing, node_rdev),
    };
    if ours {
        Ok(())
    } else {
        Err(Error::NotOurMount {
            path: path.to_path_buf(),
            found: format!("{} ({})", existing.source, existing.fs_type),
            volume_id: volume.to_string(),
        })
    }
}

/// True when a mount whose volume device is no longer found is still provably the volume's.
fn names_vanished_volume(
    finder: &DeviceFinder,
    volume: &CloudId,
    existing: &MountEntry,
    node_rdev: Option<u64>,
) -> bool {
    let mut candidates: Vec<u64> = node_rdev.into_iter().collect();
    if existing.major != 0 {
        candidates.push(nix::sys::stat::makedev(existing.major.into(), existing.minor.into()));
    }
    if existing.source.starts_with("/dev/")
        && let Ok(meta) = std::fs::metadata(&existing.source)
        && meta.file_type().is_block_device()
    {
        candidates.push(meta.rdev());
    }
    let identities: Vec<Option<Identity>> =
        candidates.iter().map(|rdev| finder.identity_of_rdev(*rdev)).collect();
    if identities.iter().flatten().any(|identity| identity.names(volume, &Hints::default())) {
        return true;
    }
    let vanished = !identities.is_empty() && identities.iter().all(Option::is_none);
    let managed = existing.fs_type.parse::<FsType>().is_ok() && existing.source.starts_with("/dev/");
    vanished && (managed || node_rdev.is_some())
}
