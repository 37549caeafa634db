//! Everything that touches this machine's kernel: finding and verifying a volume's block
//! device, probing and formatting it, mounting, resizing, and statistics (the node's identity is
//! [`crate::node_identity`]'s).
//!
//! The CSI node service talks only to this room; it reports failures as [`Error`], which
//! `csi::status` maps to gRPC codes.

pub mod blockdev;
pub mod command;
pub mod device;
pub mod format;
pub mod fs_size;
pub mod limits;
pub mod lock;
pub mod mount;
pub mod probe;
pub mod publish;
pub mod resize;
pub mod safe_path;
pub mod stage;
pub mod stats;
#[cfg(test)]
pub(crate) mod testing;
pub mod uevent;

use std::path::PathBuf;

/// Why a host operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A value from the request (an option, a filesystem type) is unusable.
    #[error("{0}")]
    InvalidArgument(String),
    /// No block device for the volume appeared on this host.
    #[error("no block device found for volume {volume_id} (searched {searched})")]
    DeviceNotFound {
        /// The volume looked for.
        volume_id: String,
        /// Where it was looked for, for the operator.
        searched: String,
    },
    /// A path the request names does not exist.
    #[error("{0} does not exist")]
    PathNotFound(PathBuf),
    /// The device found is not provably the volume asked for; it is left untouched.
    #[error("device {device} is not volume {volume_id}: {reason}")]
    NotThisVolume {
        /// The device inspected.
        device: PathBuf,
        /// The volume asked for.
        volume_id: String,
        /// What the device says about itself instead.
        reason: String,
    },
    /// The device carries data this driver will not format or mount.
    #[error("device {device} holds {found}; refusing to format or mount it as {wanted}")]
    ForeignSignature {
        /// The device inspected.
        device: PathBuf,
        /// The signature found (filesystem, partition table, ...).
        found: String,
        /// The filesystem the request asked for.
        wanted: String,
    },
    /// A path is already used in a way that conflicts with the request.
    #[error("{0}")]
    Conflict(String),
    /// Something mounted at a path is not this volume's; it is left mounted.
    #[error("{path} is a mount of {found}, not of volume {volume_id}; leaving it alone")]
    NotOurMount {
        /// The mount point.
        path: PathBuf,
        /// What is mounted there.
        found: String,
        /// The volume the request is about.
        volume_id: String,
    },
    /// The path already holds a mount that differs from what the request asks for.
    #[error("{path} already holds {found}, which differs from this request")]
    InUse {
        /// The mount point.
        path: PathBuf,
        /// What is there.
        found: String,
    },
    /// Another operation on the same volume is in flight.
    #[error("an operation on volume {0} is already in progress")]
    Busy(String),
    /// An external tool failed.
    #[error("{program} {args} failed ({status}): {stderr}")]
    Command {
        /// The tool run.
        program: String,
        /// Its arguments, space separated.
        args: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A system call or file operation failed.
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

/// The host room's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An [`Error::Io`] builder for `map_err`.
pub(crate) fn io_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { action, path, source }
}

/// An [`Error::Io`] builder for errors that arrive as an errno.
pub(crate) fn errno_error(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(nix::Error) -> Error {
    let path = path.into();
    move |errno| Error::Io { action, path, source: std::io::Error::from(errno) }
}
