//! Which mounts belong to the sandbox: everything under its directory, and every mount, wherever
//! it is, of a loop device backed by one of its volumes (a client may stage or publish outside
//! the sandbox directory; Ctrl-C must still leave no mount and no loop device behind).

use std::path::{Path, PathBuf};

use crate::host::mount::MountEntry;

/// The loop device a mount entry shows, as `/dev/loopN`: the source of a filesystem mount, or
/// the devtmpfs root of a bind-mounted block device (block-mode publish).
fn loop_device(entry: &MountEntry) -> Option<String> {
    let name = match entry.source.strip_prefix("/dev/") {
        Some(name) => name,
        None if entry.fs_type == "devtmpfs" => entry.root.strip_prefix('/')?,
        None => return None,
    };
    let number = name.strip_prefix("loop")?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| format!("/dev/{name}"))
}

/// The mount points to take down, deepest first so that binds come off before the staging
/// mounts under them. `backing_file` answers which file a loop device is backed by.
pub fn ours(
    entries: &[MountEntry],
    state_dir: &Path,
    backing_file: impl Fn(&str) -> Option<PathBuf>,
) -> Vec<PathBuf> {
    let mut points: Vec<PathBuf> = entries
        .iter()
        .filter(|entry| {
            entry.mount_point.starts_with(state_dir)
                || loop_device(entry)
                    .and_then(|device| backing_file(&device))
                    .is_some_and(|file| file.starts_with(state_dir))
        })
        .map(|entry| entry.mount_point.clone())
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::mount::parse_mountinfo;

    const STATE: &str = "/tmp/cinder-evs-csi-sandbox-7";

    fn backing(device: &str) -> Option<PathBuf> {
        match device {
            "/dev/loop3" => Some(format!("{STATE}/cloud/volumes/v1.img").into()),
            "/dev/loop4" => Some("/var/lib/other/disk.img".into()),
            _ => None,
        }
    }

    fn table() -> Vec<MountEntry> {
        parse_mountinfo(&format!(
            "20 1 8:1 / / rw - ext4 /dev/sda1 rw\n\
             30 20 7:3 / {STATE}/kubelet/staging rw - xfs /dev/loop3 rw\n\
             31 20 7:3 / /mnt/elsewhere/staging rw - xfs /dev/loop3 rw\n\
             32 20 7:3 / /var/lib/kubelet/pods/p/volumes/v/mount rw - xfs /dev/loop3 rw\n\
             33 20 0:5 /loop3 /var/lib/kubelet/plugins/block/pv rw - devtmpfs udev rw\n\
             34 20 7:4 / /srv/not-ours rw - ext4 /dev/loop4 rw\n\
             35 20 0:5 /loop4 /srv/not-ours-block rw - devtmpfs udev rw\n\
             36 20 0:40 / /srv/loop3-lookalike rw - tmpfs /dev/loop3x rw\n"
        ))
    }

    #[test]
    fn mounts_of_sandbox_volumes_are_ours_wherever_they_are() {
        let found = ours(&table(), Path::new(STATE), backing);
        for point in [
            format!("{STATE}/kubelet/staging"),
            "/mnt/elsewhere/staging".into(),
            "/var/lib/kubelet/pods/p/volumes/v/mount".into(),
            "/var/lib/kubelet/plugins/block/pv".into(),
        ] {
            assert!(found.contains(&PathBuf::from(&point)), "{point} missing from {found:?}");
        }
    }

    #[test]
    fn mounts_of_other_devices_and_lookalike_names_are_left_alone() {
        let found = ours(&table(), Path::new(STATE), backing);
        for point in ["/", "/srv/not-ours", "/srv/not-ours-block", "/srv/loop3-lookalike"] {
            assert!(!found.contains(&PathBuf::from(point)), "{point} would be unmounted");
        }
    }

    #[test]
    fn a_volume_file_in_a_directory_that_merely_shares_a_prefix_is_not_ours() {
        let lookalike = |_: &str| Some(PathBuf::from(format!("{STATE}-other/cloud/v.img")));
        let found = ours(&table(), Path::new(STATE), lookalike);
        assert_eq!(found, vec![PathBuf::from(format!("{STATE}/kubelet/staging"))]);
    }

    #[test]
    fn deeper_mounts_come_off_first() {
        let found = ours(&table(), Path::new(STATE), backing);
        let depths: Vec<usize> = found.iter().map(|p| p.components().count()).collect();
        assert!(depths.windows(2).all(|w| w[0] >= w[1]), "{found:?}");
    }
}
