//! The one place where errors of every layer become gRPC statuses.
//!
//! Each room keeps its own error enum; this module owns the mapping so that the same failure
//! always reaches the CO with the same code.

use tonic::{Code, Status};

use crate::host;

/// Failures of the CSI service layer itself (request validation, concurrency, capability).
#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    /// A required field is missing or a value is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The object named by the request does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The object exists but the request conflicts with it.
    #[error("{0}")]
    AlreadyExists(String),
    /// The object is not in a state that allows the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// Another operation on the same object is in flight; the CO should retry.
    #[error("{0}")]
    Aborted(String),
    /// A quota or per-node limit would be exceeded.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The RPC is not provided by this driver (or not in this mode).
    #[error("{0} is not implemented by this driver")]
    Unimplemented(&'static str),
    /// A dependency (cloud API, kernel) is temporarily unavailable.
    #[error("{0}")]
    Unavailable(String),
}

impl CsiError {
    /// The gRPC code the CSI spec prescribes for this failure.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::Aborted(_) => Code::Aborted,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Unavailable(_) => Code::Unavailable,
        }
    }
}

impl From<CsiError> for Status {
    fn from(error: CsiError) -> Self {
        Status::new(error.code(), error.to_string())
    }
}

/// The gRPC code of each host failure: what the CO should do about it.
pub fn host_code(error: &host::Error) -> Code {
    use host::Error as E;
    match error {
        E::InvalidArgument(_) => Code::InvalidArgument,
        E::DeviceNotFound { .. } | E::PathNotFound(_) => Code::NotFound,
        // The device or path holds something this request must not touch: retrying as is
        // cannot succeed until an operator or the CO changes the state.
        E::NotThisVolume { .. } | E::ForeignSignature { .. } | E::Conflict(_) | E::NotOurMount { .. } => {
            Code::FailedPrecondition
        }
        E::InUse { .. } => Code::AlreadyExists,
        E::Busy(_) => Code::Aborted,
        E::Identity(_) => Code::Unavailable,
        E::Command { .. } | E::Io { .. } => Code::Internal,
    }
}

impl From<host::Error> for Status {
    fn from(error: host::Error) -> Self {
        Status::new(host_code(&error), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_errors_map_to_the_codes_the_csi_spec_prescribes() {
        use std::path::PathBuf;
        let cases = [
            (host::Error::InvalidArgument("bad".into()), Code::InvalidArgument),
            (host::Error::DeviceNotFound { volume_id: "v".into(), searched: "x".into() }, Code::NotFound),
            (host::Error::PathNotFound(PathBuf::from("/t")), Code::NotFound),
            (
                host::Error::ForeignSignature {
                    device: "/dev/vdb".into(),
                    found: "ntfs".into(),
                    wanted: "ext4".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                host::Error::NotThisVolume {
                    device: "/dev/vdb".into(),
                    volume_id: "v".into(),
                    reason: "r".into(),
                },
                Code::FailedPrecondition,
            ),
            (
                host::Error::NotOurMount { path: "/t".into(), found: "tmpfs".into(), volume_id: "v".into() },
                Code::FailedPrecondition,
            ),
            (host::Error::InUse { path: "/t".into(), found: "x".into() }, Code::AlreadyExists),
            (host::Error::Busy("v".into()), Code::Aborted),
            (
                host::Error::Io { action: "mounting", path: "/t".into(), source: std::io::Error::other("x") },
                Code::Internal,
            ),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code, "{message}");
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn each_error_maps_to_its_grpc_code_and_keeps_its_message() {
        let cases = [
            (CsiError::InvalidArgument("volume_id is required".into()), Code::InvalidArgument),
            (CsiError::NotFound("volume v1 not found".into()), Code::NotFound),
            (CsiError::AlreadyExists("name taken".into()), Code::AlreadyExists),
            (CsiError::FailedPrecondition("attached".into()), Code::FailedPrecondition),
            (CsiError::Aborted("busy".into()), Code::Aborted),
            (CsiError::ResourceExhausted("quota".into()), Code::ResourceExhausted),
            (CsiError::Unavailable("cloud down".into()), Code::Unavailable),
        ];
        for (error, code) in cases {
            let message = error.to_string();
            let status = Status::from(error);
            assert_eq!(status.code(), code);
            assert_eq!(status.message(), message);
        }
        let status = Status::from(CsiError::Unimplemented("NodeStageVolume"));
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(status.message(), "NodeStageVolume is not implemented by this driver");
    }
}
