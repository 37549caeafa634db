//! The unix socket's life: refuse a socket another live process serves, clear a stale one,
//! create ours with mode 0660, and remove it on exit only if it is still ours.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Permissions of the socket: the owner and its group (kubelet, sidecars) may connect.
pub const SOCKET_MODE: u32 = 0o660;

/// Why the socket could not be prepared.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A live process accepts connections on the path.
    #[error("{0} is served by another live process; refusing to take it over")]
    InUse(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; refusing to remove it")]
    NotASocket(PathBuf),
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io { action, path, source }
}

/// A bound unix socket that remembers its identity, so that clean-up never removes a socket
/// another process created at the same path later.
#[derive(Debug)]
pub struct BoundSocket {
    path: PathBuf,
    identity: FileIdentity,
}

/// Inode numbers are reused at once on tmpfs, so the change time joins them.
#[derive(Debug, PartialEq, Eq)]
struct FileIdentity {
    dev: u64,
    ino: u64,
    ctime: i64,
    ctime_nsec: i64,
}

impl FileIdentity {
    fn of(meta: &std::fs::Metadata) -> Self {
        Self { dev: meta.dev(), ino: meta.ino(), ctime: meta.ctime(), ctime_nsec: meta.ctime_nsec() }
    }
}

/// Binds `path`, replacing a stale socket file but never a live one.
pub fn bind(path: &Path) -> Result<(UnixListener, BoundSocket), SocketError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(SocketError::NotASocket(path.to_path_buf()));
        }
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => return Err(SocketError::InUse(path.to_path_buf())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused || e.kind() == ErrorKind::NotFound => {
                tracing::info!(path = %path.display(), "removing stale socket");
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => {
                        return Err(io("removing stale socket", path)(e));
                    }
                    _ => {}
                }
            }
            Err(e) => return Err(io("probing existing socket", path)(e)),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("inspecting", path)(e)),
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io("creating directory for", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io("binding", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))
        .map_err(io("setting permissions of", path))?;
    let identity = FileIdentity::of(&std::fs::symlink_metadata(path).map_err(io("inspecting", path))?);
    Ok((listener, BoundSocket { path: path.to_path_buf(), identity }))
}

impl BoundSocket {
    /// Removes the socket file if it is still the one we created.
    pub fn remove(&self) {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if FileIdentity::of(&meta) == self.identity => {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    tracing::warn!(path = %self.path.display(), error = %e, "could not remove socket");
                }
            }
            _ => tracing::debug!(path = %self.path.display(), "socket already gone or replaced"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bind_creates_a_socket_with_mode_0660() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/csi.sock");
        let (_listener, bound) = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        bound.remove();
        assert!(!path.exists());
    }

    #[tokio::test]
    async fn bind_replaces_a_stale_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csi.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists(), "the stale socket file stays behind");
        let (_listener, _bound) = bind(&path).unwrap();
    }

    #[tokio::test]
    async fn bind_refuses_a_live_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csi.sock");
        let _live = std::os::unix::net::UnixListener::bind(&path).unwrap();
        assert!(matches!(bind(&path), Err(SocketError::InUse(_))));
        assert!(path.exists(), "the live socket is left alone");
    }

    #[tokio::test]
    async fn bind_refuses_to_remove_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csi.sock");
        std::fs::write(&path, b"precious").unwrap();
        assert!(matches!(bind(&path), Err(SocketError::NotASocket(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[tokio::test]
    async fn remove_leaves_a_socket_that_replaced_ours() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("csi.sock");
        let (listener, bound) = bind(&path).unwrap();
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
        bound.remove();
        assert!(path.exists());
    }
}
