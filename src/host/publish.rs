//! Publishing a staged volume to a pod: a bind mount of the staging path (filesystem) or of
//! the device node onto a file (raw block), read-only when asked; and the reverse.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::device::{DeviceFinder, Hints};
use super::mount;
use super::stage::{self, Access, Device};
use super::{Error, Result, blockdev, io_error};

/// What NodePublishVolume asks for, in host terms.
#[derive(Clone, Debug)]
pub struct PublishRequest<'a> {
    /// The volume.
    pub volume_id: &'a str,
    /// Where the volume was staged (filesystem access).
    pub staging_path: &'a Path,
    /// Where the pod sees it.
    pub target: &'a Path,
    /// Where the device may be.
    pub hints: Hints,
    /// Block or filesystem.
    pub access: Access,
    /// Read-only publish.
    pub readonly: bool,
}

/// Publishes the volume; repeating a completed publish succeeds.
pub async fn publish(finder: &DeviceFinder, request: &PublishRequest<'_>) -> Result<()> {
    let device = Device::at(finder.find(request.volume_id, &request.hints).await?)?;
    let target = request.target;
    match &request.access {
        Access::Block => {
            if let Some(existing) = mount::mount_at(target)? {
                let same = std::fs::metadata(target)
                    .is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == device.rdev);
                return already_published(
                    target,
                    same && existing.is_readonly() == request.readonly,
                    &existing,
                );
            }
            if !request.readonly && blockdev::is_readonly(&device.path)? {
                return Err(Error::Conflict(format!(
                    "device {} is read-only on this node (published read-only elsewhere); a writable \
                     publish has to wait until that publish is gone",
                    device.path.display()
                )));
            }
            create_file(target)?;
            mount::bind(&device.path, target, request.readonly, &[])?;
            if request.readonly {
                // A read-only bind does not stop writes through a device node; the device's
                // own flag does.
                blockdev::set_readonly(&device.path, true)?;
            }
            Ok(())
        }
        Access::Filesystem { mount_options, .. } => {
            let staging = request.staging_path;
            let [staged, published] = mount::mounts_at([staging, target])?;
            let staged = staged.filter(|m| m.is_of_device(device.rdev)).ok_or_else(|| {
                Error::Conflict(format!(
                    "volume {} is not staged at {}; stage it first",
                    request.volume_id,
                    staging.display()
                ))
            })?;
            if let Some(existing) = published {
                let same = existing.is_of_device(device.rdev) && existing.is_readonly() == request.readonly;
                return already_published(target, same, &existing);
            }
            std::fs::create_dir_all(target).map_err(io_error("creating", target))?;
            tracing::debug!(staging = %staged.mount_point.display(), "publishing staged filesystem");
            mount::bind(staging, target, request.readonly, mount_options)
        }
    }
}

fn already_published(target: &Path, same: bool, existing: &mount::MountEntry) -> Result<()> {
    if same {
        tracing::info!(target = %target.display(), "already published");
        Ok(())
    } else {
        let mode = if existing.is_readonly() { "read-only" } else { "read-write" };
        Err(Error::InUse {
            path: target.to_path_buf(),
            found: format!("a {mode} mount of {}", existing.source),
        })
    }
}

/// Creates the empty file a raw block device is bound onto.
fn create_file(target: &Path) -> Result<()> {
    match std::fs::OpenOptions::new().write(true).create_new(true).open(target) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error("creating", target)(e)),
    }
}

/// Unpublishes the volume from `target` and removes the target; succeeds when already done.
pub fn unpublish(finder: &DeviceFinder, volume_id: &str, target: &Path) -> Result<()> {
    let device = stage::current_device(finder, volume_id);
    let was_block = std::fs::metadata(target).is_ok_and(|m| m.file_type().is_block_device());
    stage::unmount_all(volume_id, target, device.as_ref())?;
    mount::remove_mount_point(target)?;
    if let Some(device) = device.filter(|_| was_block) {
        release_readonly(&device)?;
    }
    Ok(())
}

/// Clears the read-only flag a read-only block publish set, once no publish of the device
/// remains. (A read-only attach by the hypervisor is a disk-level flag this does not touch.)
fn release_readonly(device: &Device) -> Result<()> {
    if !blockdev::is_readonly(&device.path)? {
        return Ok(());
    }
    let still_bound = mount::mounts()?.iter().any(|m| {
        m.root != "/"
            && std::fs::metadata(&m.mount_point)
                .is_ok_and(|meta| meta.file_type().is_block_device() && meta.rdev() == device.rdev)
    });
    if still_bound { Ok(()) } else { blockdev::set_readonly(&device.path, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpublishing_a_missing_target_succeeds() {
        let finder = DeviceFinder { search_dirs: Vec::new(), ..DeviceFinder::default() };
        unpublish(&finder, "no-such-volume", Path::new("/nonexistent/target")).unwrap();
    }
}
