//! Paths a request names, reached without following symlinks.
//!
//! A staging or target path comes from the CO and the directories on it may be writable by
//! others (a pod's hostPath, a script). Each is parsed once ([`request_path`]: absolute, no NUL,
//! no `..`, within the kernel's limits), then opened with `openat2(RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`, so a symlink anywhere on it is refused instead of followed.
//! Mounts go onto `/proc/self/fd/N` of the descriptor opened that way, directories are made
//! with `mkdirat` under an already-opened parent, and unmounts and removals go through the
//! parent's descriptor: a symlink swapped in after the check cannot redirect the operation.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use super::{Error, Result};

/// The longest path the kernel accepts (PATH_MAX, with its terminating NUL).
pub const MAX_PATH: usize = 4095;
/// The longest name of one path component (NAME_MAX).
pub const MAX_NAME: usize = 255;

/// Parses a path field of a request: non-empty, absolute, no NUL byte, no `..`, within the
/// kernel's limits. `.` and repeated or trailing slashes are dropped, so the result names the
/// directory entry the kernel will resolve, and compares equal to the mount table's spelling.
pub fn request_path(field: &str, text: &str) -> Result<PathBuf> {
    let invalid = |why: &str| Error::InvalidArgument(format!("{field} {}: {why}", quote(text)));
    if text.is_empty() {
        return Err(Error::InvalidArgument(format!("{field} is required")));
    }
    if text.contains('\0') {
        return Err(invalid("contains a NUL byte"));
    }
    if text.len() > MAX_PATH {
        return Err(invalid(&format!("is {} bytes long; at most {MAX_PATH} are allowed", text.len())));
    }
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(invalid("must be an absolute path"));
    }
    let mut normal = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err(invalid("must not contain `..`")),
            Component::Normal(name) if name.len() > MAX_NAME => {
                return Err(invalid(&format!("has a component longer than {MAX_NAME} bytes")));
            }
            Component::Normal(name) => normal.push(name),
            Component::Prefix(_) => return Err(invalid("is not a Unix path")),
        }
    }
    if normal == Path::new("/") {
        return Err(invalid("must not be the root directory"));
    }
    Ok(normal)
}

fn quote(text: &str) -> String {
    crate::contract::ids::quote(text)
}

fn how(flags: OFlag) -> OpenHow {
    OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS)
}

fn refused(path: &Path, errno: Errno) -> Error {
    match errno {
        Errno::ELOOP => Error::InvalidArgument(format!(
            "{} has a symlink among its components; the driver does not follow symlinks",
            path.display()
        )),
        Errno::ENOTDIR => {
            Error::InvalidArgument(format!("{} has a component that is not a directory", path.display()))
        }
        errno => Error::Io { action: "opening", path: path.to_path_buf(), source: errno.into() },
    }
}

/// Opens `path` (already parsed by [`request_path`]) as an `O_PATH` descriptor without
/// following any symlink; `None` when it does not exist.
pub fn open(path: &Path) -> Result<Option<OwnedFd>> {
    match openat2(AT_FDCWD, path, how(OFlag::O_PATH)) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT) => Ok(None),
        Err(errno) => Err(refused(path, errno)),
    }
}

/// Refuses `path` when any component of it is a symlink (or a non-directory); a missing
/// path passes, as long as what exists of it is plain directories.
pub fn check(path: &Path) -> Result<()> {
    let mut prefix = PathBuf::from("/");
    for component in path.components().skip(1) {
        prefix.push(component);
        match openat2(AT_FDCWD, prefix.as_path(), how(OFlag::O_PATH)) {
            Ok(_) => {}
            Err(Errno::ENOENT) => return Ok(()),
            // A dead mount (FUSE daemon gone, stale NFS) is still a plain mount point.
            Err(Errno::ENOTCONN | Errno::ESTALE | Errno::EIO) => {}
            Err(errno) => return Err(refused(path, errno)),
        }
    }
    Ok(())
}

/// `fstat` of a descriptor.
pub fn stat(fd: &OwnedFd, path: &Path) -> Result<FileStat> {
    fstat(fd.as_fd()).map_err(super::errno_error("inspecting", path))
}

/// True when `stat` describes a block device node.
pub fn is_block(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFBLK
}

/// True when `stat` describes a directory.
pub fn is_dir(stat: &FileStat) -> bool {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR
}

/// The path through which the kernel reaches the object `fd` refers to (for mount(2)).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Creates `path` and any missing parents, one `mkdirat` at a time under a descriptor opened
/// without following symlinks, and returns the directory's descriptor.
pub fn create_dir_all(path: &Path) -> Result<OwnedFd> {
    let mut dir = openat2(AT_FDCWD, "/", how(OFlag::O_PATH | OFlag::O_DIRECTORY))
        .map_err(|errno| refused(path, errno))?;
    for component in path.components().skip(1) {
        let name = component.as_os_str();
        dir = match open_dir_at(&dir, name) {
            Ok(next) => next,
            Err(Errno::ENOENT) => {
                match nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o750)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(errno) => return Err(super::errno_error("creating", path)(errno)),
                }
                open_dir_at(&dir, name).map_err(|errno| refused(path, errno))?
            }
            Err(errno) => return Err(refused(path, errno)),
        };
    }
    Ok(dir)
}

fn open_dir_at(dir: &OwnedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    openat2(dir.as_fd(), name, how(OFlag::O_PATH | OFlag::O_DIRECTORY))
}

/// Creates `path` as an empty regular file (the mount point of a raw block publish) if it
/// does not exist, with its parents, and returns its descriptor.
pub fn create_file(path: &Path) -> Result<OwnedFd> {
    let (parent, name) = split(path)?;
    let dir = create_dir_all(parent)?;
    let create = OpenHow::new()
        .flags(OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC)
        .mode(Mode::from_bits_truncate(0o640))
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(dir.as_fd(), name, create) {
        Ok(_) | Err(Errno::EEXIST) => {}
        Err(errno) => return Err(refused(path, errno)),
    }
    openat2(dir.as_fd(), name, how(OFlag::O_PATH)).map_err(|errno| refused(path, errno))
}

/// The parent directory and the last name of `path`.
fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => Ok((parent, name)),
        _ => Err(Error::InvalidArgument(format!("{} names no directory entry", path.display()))),
    }
}

/// `path`'s parent, opened without following symlinks and checked to still be where the
/// request says (a directory renamed away and replaced after the open is detected), and the
/// last name; `None` when the parent does not exist.
pub fn open_parent(path: &Path) -> Result<Option<(OwnedFd, OsString)>> {
    let (parent, name) = split(path)?;
    let Some(dir) = open(parent)? else { return Ok(None) };
    let actual = std::fs::read_link(fd_path(&dir)).map_err(super::io_error("resolving", parent))?;
    if actual != parent {
        return Err(Error::Conflict(format!(
            "{} moved to {} while it was being used; nothing was changed",
            parent.display(),
            actual.display()
        )));
    }
    Ok(Some((dir, name.to_os_string())))
}

/// The path of entry `name` under the directory `dir`, for syscalls without an `*at` form
/// (umount2). Only the last name is looked up, and it is never followed if a symlink.
pub fn entry_path(dir: &OwnedFd, name: &OsStr) -> PathBuf {
    let mut path = fd_path(dir).into_os_string();
    path.push("/");
    path.push(name);
    PathBuf::from(path)
}

/// Removes `path` if it is an empty directory or an empty regular file (what the driver
/// creates); anything else, a symlink included, is left and reported.
pub fn remove(path: &Path) -> Result<()> {
    let Some((dir, name)) = open_parent(path)? else { return Ok(()) };
    let stat = match nix::sys::stat::fstatat(
        dir.as_fd(),
        name.as_os_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(stat) => stat,
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(super::errno_error("inspecting", path)(errno)),
    };
    let kind = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let flag = if kind == SFlag::S_IFDIR {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else if kind == SFlag::S_IFREG && stat.st_size == 0 {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    } else {
        return Err(Error::Conflict(format!(
            "{} is not an empty directory or file; not removing it",
            path.display()
        )));
    };
    match nix::unistd::unlinkat(dir.as_fd(), name.as_os_str(), flag) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(errno) => Err(super::errno_error("removing", path)(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_path_is_normalized() {
        assert_eq!(request_path("p", "/var//lib/./x/").unwrap(), PathBuf::from("/var/lib/x"));
    }

    #[test]
    fn hostile_request_paths_are_invalid_arguments() {
        let long_name = format!("/tmp/{}", "n".repeat(MAX_NAME + 1));
        let long_path = format!("/{}", "d/".repeat(MAX_PATH / 2 + 1));
        for hostile in ["", "relative/path", "/tmp/a\0b", "/tmp/../etc", "/", "//", &long_name, &long_path] {
            let error = request_path("target_path", hostile).unwrap_err();
            assert!(matches!(error, Error::InvalidArgument(_)), "{hostile:?}: {error}");
            assert!(error.to_string().len() < 400, "the message quotes the path cut short");
        }
    }

    #[test]
    fn a_symlink_anywhere_on_the_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        for path in [dir.path().join("link"), dir.path().join("link/sub")] {
            assert!(matches!(open(&path), Err(Error::InvalidArgument(_))), "{path:?}");
            assert!(matches!(check(&path), Err(Error::InvalidArgument(_))), "{path:?}");
            assert!(matches!(create_dir_all(&path), Err(Error::InvalidArgument(_))), "{path:?}");
            assert!(matches!(create_file(&path.join("f")), Err(Error::InvalidArgument(_))), "{path:?}");
        }
        assert!(std::fs::read_dir(&real).unwrap().next().is_none(), "nothing was created through the link");
    }

    #[test]
    fn directories_and_files_are_created_under_plain_directories() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        let fd = create_dir_all(&deep).unwrap();
        assert!(is_dir(&stat(&fd, &deep).unwrap()));
        create_file(&deep.join("block")).unwrap();
        assert!(deep.join("block").is_file());
        assert!(open(&dir.path().join("a/missing")).unwrap().is_none());
    }

    #[test]
    fn remove_takes_empty_entries_and_spares_links_and_content() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, data, link) =
            (dir.path().join("empty"), dir.path().join("data"), dir.path().join("link"));
        std::fs::create_dir(&empty).unwrap();
        std::fs::write(&data, b"x").unwrap();
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        remove(&empty).unwrap();
        assert!(!empty.exists());
        assert!(matches!(remove(&data), Err(Error::Conflict(_))));
        assert!(matches!(remove(&link), Err(Error::Conflict(_))));
        assert!(link.symlink_metadata().is_ok(), "the link itself is left");
        remove(&dir.path().join("never")).unwrap();
    }
}
