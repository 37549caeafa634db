//! Mounting, bind mounting and unmounting through the kernel (nix), and reading the mount table
//! from `/proc/self/mountinfo`, which is the only record of what this driver has mounted.

use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};

use super::{Error, Result, errno_error, io_error, safe_path};

/// Where the kernel publishes this process's mount table.
pub const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of `/proc/self/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// Unique id of the mount.
    pub id: u32,
    /// Id of the parent mount.
    pub parent: u32,
    /// Device number (major) of the mounted filesystem.
    pub major: u32,
    /// Device number (minor) of the mounted filesystem.
    pub minor: u32,
    /// The directory of the filesystem that forms the root of this mount (not `/` for binds).
    pub root: String,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Per-mount options (`rw`, `nosuid`, ...).
    pub options: Vec<String>,
    /// Filesystem type.
    pub fs_type: String,
    /// Mount source as given to mount(2), e.g. `/dev/vdb`.
    pub source: String,
    /// Per-superblock options.
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// True when this mount is read-only for its users.
    pub fn is_readonly(&self) -> bool {
        self.options.iter().any(|o| o == "ro")
    }

    /// True when the filesystem itself went read-only while this mount asked for read-write:
    /// the kernel's reaction to filesystem errors (`errors=remount-ro`; recent kernels say
    /// `emergency_ro` instead of flipping the superblock to `ro`).
    pub fn went_readonly(&self) -> bool {
        !self.is_readonly() && self.super_options.iter().any(|o| o == "ro" || o == "emergency_ro")
    }

    /// True when this mount shows the block device whose device number is `rdev`, either as
    /// its filesystem's device number or through its source path (btrfs reports an anonymous
    /// device number).
    pub fn is_of_device(&self, rdev: u64) -> bool {
        let (major, minor) = (nix::sys::stat::major(rdev) as u32, nix::sys::stat::minor(rdev) as u32);
        if (self.major, self.minor) == (major, minor) {
            return true;
        }
        std::fs::metadata(&self.source).is_ok_and(|m| m.file_type().is_block_device() && m.rdev() == rdev)
    }
}

/// Parses the text of a mountinfo file; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<MountEntry> {
    // Fields are positional up to the options; the optional fields then run to a lone "-".
    // (Splitting at the first " - " would cut a line whose root is itself "-".)
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let parent = fields.next()?.parse().ok()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape(fields.next()?);
    let mount_point = PathBuf::from(unescape(fields.next()?));
    let options = fields.next()?.split(',').map(str::to_string).collect();
    let mut tail = fields.skip_while(|f| *f != "-").skip(1);
    let fs_type = unescape(tail.next()?);
    let source = unescape(tail.next()?);
    let super_options = tail.next().unwrap_or("").split(',').map(str::to_string).collect();
    Some(MountEntry {
        id,
        parent,
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        root,
        mount_point,
        options,
        fs_type,
        source,
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` for space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let value = bytes[i + 1..i + 4].iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
            out.push(value as u8);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The current mount table of this process.
pub fn mounts() -> Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(io_error("reading", MOUNTINFO))?;
    Ok(parse_mountinfo(&text))
}

/// The topmost mount at `path`, if `path` is a mount point.
pub fn mount_at(path: &Path) -> Result<Option<MountEntry>> {
    let [found] = mounts_at([path])?;
    Ok(found)
}

/// The topmost mount at each of `paths`, from one read of the mount table (which the kernel
/// renders anew on every read, at a cost that grows with the number of mounts on the node).
pub fn mounts_at<const N: usize>(paths: [&Path; N]) -> Result<[Option<MountEntry>; N]> {
    let table = mounts()?;
    Ok(paths.map(|path| {
        // A corrupted mount cannot be canonicalized; the path as given is then the best key.
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        table.iter().rev().find(|m| m.mount_point == canonical || m.mount_point == path).cloned()
    }))
}

/// What a path looks like before it is used or cleaned up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathState {
    /// Nothing at the path.
    Missing,
    /// A mount whose filesystem no longer answers (ENOTCONN, ESTALE, EIO).
    Corrupted,
    /// Something usable is there.
    Present,
}

/// Classifies `path` by what stat(2) says about it.
pub fn path_state(path: &Path) -> Result<PathState> {
    match std::fs::metadata(path) {
        Ok(_) => Ok(PathState::Present),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PathState::Missing),
        Err(e) if is_corruption(&e) => Ok(PathState::Corrupted),
        Err(e) => Err(io_error("inspecting", path)(e)),
    }
}

/// True for the errors a mount whose backing store went away returns.
pub fn is_corruption(error: &std::io::Error) -> bool {
    matches!(Errno::from_raw(error.raw_os_error().unwrap_or(0)), Errno::ENOTCONN | Errno::ESTALE | Errno::EIO)
}

/// Splits mount options into kernel flags and the filesystem's data string.
pub fn split_options(options: &[String]) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for option in options.iter().flat_map(|o| o.split(',')).map(str::trim).filter(|o| !o.is_empty()) {
        match option {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" => flags &= !MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "sync" => flags |= MsFlags::MS_SYNCHRONOUS,
            "dirsync" => flags |= MsFlags::MS_DIRSYNC,
            "noatime" => flags |= MsFlags::MS_NOATIME,
            "nodiratime" => flags |= MsFlags::MS_NODIRATIME,
            "relatime" => flags |= MsFlags::MS_RELATIME,
            "strictatime" => flags |= MsFlags::MS_STRICTATIME,
            "lazytime" => flags |= MsFlags::MS_LAZYTIME,
            "defaults" | "suid" | "dev" | "exec" | "async" | "atime" | "diratime" => {}
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

/// Mounts the filesystem of type `fs_type` on `device` onto the directory `target_fd` refers
/// to (opened without following symlinks; `target` is its path, for messages).
pub fn mount_filesystem(
    device: &Path,
    target: &Path,
    target_fd: &OwnedFd,
    fs_type: &str,
    options: &[String],
) -> Result<()> {
    let (flags, data) = split_options(options);
    tracing::info!(device = %device.display(), target = %target.display(), fs_type, ?flags, data, "mounting");
    nix::mount::mount(Some(device), &safe_path::fd_path(target_fd), Some(fs_type), flags, Some(data.as_str()))
        .map_err(errno_error("mounting onto", target))
}

/// Bind mounts `source` onto what `target_fd` refers to (opened without following symlinks;
/// `target` is its path), then makes the bind read-only when asked (a bind cannot be made
/// read-only in the same call).
pub fn bind(
    source: &Path,
    target: &Path,
    target_fd: &OwnedFd,
    readonly: bool,
    options: &[String],
) -> Result<()> {
    tracing::info!(source = %source.display(), target = %target.display(), readonly, "bind mounting");
    let onto = safe_path::fd_path(target_fd);
    nix::mount::mount(Some(source), &onto, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .map_err(errno_error("bind mounting onto", target))?;
    let (mut flags, _) = split_options(options);
    if readonly {
        flags |= MsFlags::MS_RDONLY;
    }
    if !flags.is_empty() {
        // `target_fd` still names the directory under the new bind; a remount must name the
        // bind itself, so the target is opened again (still without following symlinks).
        let remounted = safe_path::open(target).and_then(|top| {
            let top = top.ok_or_else(|| Error::PathNotFound(target.to_path_buf()))?;
            let remount = flags | MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
            nix::mount::mount(None::<&str>, &safe_path::fd_path(&top), None::<&str>, remount, None::<&str>)
                .map_err(errno_error("remounting read-only", target))
        });
        if let Err(error) = remounted {
            // Never leave a writable bind behind a failed read-only request.
            let _ = unmount(target);
            return Err(error);
        }
    }
    Ok(())
}

/// Unmounts the topmost mount at `target`, reached through its parent's descriptor (opened
/// without following symlinks) and never following `target` itself if it is a symlink; a
/// corrupted mount is detached lazily when a plain unmount cannot reach it.
pub fn unmount(target: &Path) -> Result<()> {
    tracing::info!(target = %target.display(), "unmounting");
    let Some((dir, name)) = safe_path::open_parent(target)? else {
        return Err(Error::PathNotFound(target.to_path_buf()));
    };
    let entry = safe_path::entry_path(&dir, &name);
    match nix::mount::umount2(&entry, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(Errno::ENOTCONN | Errno::ESTALE | Errno::EIO) => {
            nix::mount::umount2(&entry, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                .map_err(errno_error("detaching", target))
        }
        Err(errno) => Err(errno_error("unmounting", target)(errno)),
    }
}

/// Removes `path` if it is an empty directory or an empty regular file (what the driver
/// created); anything else is left and reported. No symlink on the way is followed.
pub fn remove_mount_point(path: &Path) -> Result<()> {
    safe_path::remove(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
97 29 7:3 / /var/lib/kubelet/plugins/stage\\040dir rw,relatime shared:50 - ext4 /dev/loop3 rw
98 29 7:3 / /var/lib/kubelet/pods/p/mount ro,relatime shared:50 - ext4 /dev/loop3 rw
99 29 0:5 /loop4 /var/lib/kubelet/pods/p/block rw,nosuid shared:2 - devtmpfs udev rw,size=100k
100 29 7:5 / /mnt/broken rw,relatime - ext4 /dev/loop5 ro,errors=remount-ro
101 29 7:6 / /mnt/emergency rw,relatime - ext4 /dev/loop6 rw,errors=remount-ro,emergency_ro
this line is not mountinfo
";

    #[test]
    fn mountinfo_lines_parse_into_fields() {
        let mounts = parse_mountinfo(SAMPLE);
        assert_eq!(mounts.len(), 6, "the malformed line is skipped");
        let stage = &mounts[1];
        assert_eq!((stage.id, stage.parent, stage.major, stage.minor), (97, 29, 7, 3));
        assert_eq!(stage.mount_point, PathBuf::from("/var/lib/kubelet/plugins/stage dir"));
        assert_eq!(stage.fs_type, "ext4");
        assert_eq!(stage.source, "/dev/loop3");
        assert_eq!(stage.root, "/");
        assert!(!stage.is_readonly());
        assert!(mounts[2].is_readonly());
        assert_eq!(mounts[3].root, "/loop4");
        assert_eq!(mounts[3].super_options, vec!["rw", "size=100k"]);
    }

    #[test]
    fn a_mount_whose_root_is_a_lone_dash_is_not_cut_at_its_root() {
        let mounts = parse_mountinfo("40 29 0:50 - /mnt/odd rw,relatime shared:3 - tmpfs none rw\n");
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].root, "-");
        assert_eq!(mounts[0].mount_point, PathBuf::from("/mnt/odd"));
        assert_eq!((mounts[0].fs_type.as_str(), mounts[0].source.as_str()), ("tmpfs", "none"));
    }

    #[test]
    fn octal_escapes_are_decoded() {
        assert_eq!(unescape(r"a\040b\011c\134d"), "a b\tc\\d");
        assert_eq!(unescape(r"trailing\04"), r"trailing\04");
    }

    #[test]
    fn a_filesystem_that_went_readonly_under_a_rw_mount_is_detected() {
        let mounts = parse_mountinfo(SAMPLE);
        assert!(mounts[4].went_readonly());
        assert!(mounts[5].went_readonly());
        assert!(!mounts[1].went_readonly());
        assert!(!mounts[2].went_readonly(), "a mount asked read-only is not an error");
    }

    #[test]
    fn mount_options_split_into_flags_and_data() {
        let (flags, data) =
            split_options(&["ro,noatime".into(), "discard".into(), "nouuid".into(), "defaults".into()]);
        assert_eq!(flags, MsFlags::MS_RDONLY | MsFlags::MS_NOATIME);
        assert_eq!(data, "discard,nouuid");
    }

    #[test]
    fn stale_handles_and_lost_connections_count_as_corruption() {
        for errno in [Errno::ENOTCONN, Errno::ESTALE, Errno::EIO] {
            assert!(is_corruption(&std::io::Error::from(errno)), "{errno}");
        }
        assert!(!is_corruption(&std::io::Error::from(Errno::EACCES)));
    }

    #[test]
    fn removing_a_mount_point_spares_files_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("data");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(remove_mount_point(&file), Err(Error::Conflict(_))));
        assert!(file.exists());
        let empty = dir.path().join("target");
        std::fs::create_dir(&empty).unwrap();
        remove_mount_point(&empty).unwrap();
        assert!(!empty.exists());
        remove_mount_point(&empty).unwrap();
    }
}
