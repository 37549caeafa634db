//! Publishing a staged volume to a pod: a bind mount of the staging path (filesystem) or of
//! the device node onto a file (raw block), read-only when asked; and the reverse.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::device::{DeviceFinder, Hints};
use super::mount;
use super::stage::{self, Access, Device};
use super::{Error, Result, blockdev, safe_path};
use crate::contract::CloudId;

/// What NodePublishVolume asks for, in host terms.
#[derive(Clone, Debug)]
pub struct PublishRequest<'a> {
    /// The volume.
    pub volume: &'a CloudId,
    /// Where the volume was staged (filesystem access), parsed by
    /// [`safe_path::request_path`].
    pub staging_path: &'a Path,
    /// Where the pod sees it, parsed by [`safe_path::request_path`].
    pub target: &'a Path,
    /// Where the device may be.
    pub hints: Hints,
    /// Block or filesystem.
    pub access: Access,
    /// Read-only publish.
    pub readonly: bool,
    /// SINGLE_NODE_SINGLE_WRITER: no other publish of the volume may exist on this node.
    pub single_publish: bool,
}

/// Publishes the volume; repeating a completed publish succeeds.
pub async fn publish(finder: &DeviceFinder, request: &PublishRequest<'_>) -> Result<()> {
    let target = request.target;
    if let Access::Filesystem { .. } = request.access
        && target == request.staging_path
    {
        return Err(Error::InvalidArgument(format!(
            "target_path {} is the staging path; a volume is published at a path of its own",
            target.display()
        )));
    }
    safe_path::check(target)?;
    let device = Device::at(finder.find(request.volume, &request.hints).await?)?;
    match &request.access {
        Access::Block => {
            if let Some(existing) = mount::mount_at(target)? {
                let same = block_node_rdev(target) == Some(device.rdev);
                return already_published(
                    target,
                    same && existing.is_readonly() == request.readonly,
                    &existing,
                );
            }
            if request.single_publish {
                ensure_no_other_publish(request, &device, None)?;
            }
            if !request.readonly && blockdev::is_readonly(&device.path)? {
                return Err(Error::Conflict(format!(
                    "device {} is read-only on this node (published read-only elsewhere); a writable \
                     publish has to wait until that publish is gone",
                    device.path.display()
                )));
            }
            let target_fd = safe_path::create_file(target)?;
            mount::bind(&device.path, target, &target_fd, request.readonly, &[])?;
            if request.readonly {
                // A read-only bind does not stop writes through a device node; the device's
                // own flag does.
                blockdev::set_readonly(&device.path, true)?;
            }
            Ok(())
        }
        Access::Filesystem { mount_options, .. } => {
            let staging = request.staging_path;
            // The staging mount is reached without following symlinks, and bound through the
            // descriptor: a symlink swapped in since NodeStage is refused, not followed.
            let staging_fd = safe_path::open(staging)?;
            let [staged, published] = mount::mounts_at([staging, target])?;
            let (staged, staging_fd) =
                staged.filter(|m| m.is_of_device(device.rdev)).zip(staging_fd).ok_or_else(|| {
                    Error::Conflict(format!(
                        "volume {} is not staged at {}; stage it first",
                        request.volume,
                        staging.display()
                    ))
                })?;
            if let Some(existing) = published {
                let same = existing.is_of_device(device.rdev) && existing.is_readonly() == request.readonly;
                return already_published(target, same, &existing);
            }
            if request.single_publish {
                ensure_no_other_publish(request, &device, Some(staging))?;
            }
            let target_fd = safe_path::create_dir_all(target)?;
            tracing::debug!(staging = %staged.mount_point.display(), "publishing staged filesystem");
            mount::bind(&safe_path::fd_path(&staging_fd), target, &target_fd, request.readonly, mount_options)
        }
    }
}

/// The device number of the block device node at `path`, reached without following symlinks.
fn block_node_rdev(path: &Path) -> Option<u64> {
    let fd = safe_path::open(path).ok()??;
    let stat = safe_path::stat(&fd, path).ok()?;
    safe_path::is_block(&stat).then_some(stat.st_rdev)
}

/// Refuses a SINGLE_NODE_SINGLE_WRITER publish while the volume is published at another path
/// on this node (the mount table holds the device, or a bind of its node, elsewhere).
fn ensure_no_other_publish(
    request: &PublishRequest<'_>,
    device: &Device,
    staging: Option<&Path>,
) -> Result<()> {
    let elsewhere = mount::mounts()?.into_iter().find(|m| {
        let path = m.mount_point.as_path();
        path != request.target
            && Some(path) != staging
            && (m.is_of_device(device.rdev)
                || std::fs::metadata(path)
                    .is_ok_and(|meta| meta.file_type().is_block_device() && meta.rdev() == device.rdev))
    });
    match elsewhere {
        None => Ok(()),
        Some(other) => Err(Error::Conflict(format!(
            "volume {} is SINGLE_NODE_SINGLE_WRITER and already published at {}",
            request.volume,
            other.mount_point.display()
        ))),
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

/// Unpublishes the volume from `target` and removes the target; succeeds when already done.
pub fn unpublish(finder: &DeviceFinder, volume: &CloudId, target: &Path) -> Result<()> {
    safe_path::check(target)?;
    let device = stage::current_device(finder, volume);
    let was_block = block_node_rdev(target).is_some();
    stage::unmount_all(finder, volume, target, device.as_ref())?;
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
        let volume = CloudId::random();
        unpublish(&finder, &volume, Path::new("/nonexistent/target")).unwrap();
    }
}
