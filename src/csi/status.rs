//! The one place where errors of every layer become gRPC statuses.
//!
//! Each room keeps its own error enum; this module owns the mapping so that the same failure
//! always reaches the CO with the same code.

use tonic::{Code, Status};

use crate::cloud::CloudError;
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
    /// A size request cannot be met.
    #[error("{0}")]
    OutOfRange(String),
    /// The operation did not finish in time; a retry continues it.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A failure the caller cannot fix.
    #[error("{0}")]
    Internal(String),
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
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::DeadlineExceeded(_) => Code::DeadlineExceeded,
            Self::Internal(_) => Code::Internal,
        }
    }
}

impl From<CloudError> for CsiError {
    fn from(error: CloudError) -> Self {
        let message = error.to_string();
        match error {
            CloudError::NotFound { .. } => Self::NotFound(message),
            CloudError::Conflict(_) => Self::FailedPrecondition(message),
            CloudError::InvalidInput(_) => Self::InvalidArgument(message),
            CloudError::QuotaExceeded(_) => Self::ResourceExhausted(message),
            // Credentials are the operator's to fix; the CO retries meanwhile.
            CloudError::Unauthorized(_) | CloudError::Unavailable(_) => Self::Unavailable(message),
            CloudError::Timeout(_) => Self::DeadlineExceeded(message),
            CloudError::Unsupported(_) | CloudError::Config(_) => Self::FailedPrecondition(message),
            CloudError::ErrorState { .. } | CloudError::Protocol(_) => Self::Internal(message),
        }
    }
}

impl From<CloudError> for Status {
    fn from(error: CloudError) -> Self {
        CsiError::from(error).into()
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

    #[test]
    fn cloud_errors_map_to_the_codes_the_csi_spec_expects() {
        let cases = [
            (CloudError::NotFound { kind: "volume", id: "v".into() }, Code::NotFound),
            (CloudError::Conflict("has snapshots".into()), Code::FailedPrecondition),
            (CloudError::InvalidInput("bad".into()), Code::InvalidArgument),
            (CloudError::QuotaExceeded("gigabytes".into()), Code::ResourceExhausted),
            (CloudError::Unauthorized("no".into()), Code::Unavailable),
            (CloudError::Unavailable("503".into()), Code::Unavailable),
            (CloudError::Timeout("slow".into()), Code::DeadlineExceeded),
            (CloudError::Unsupported("3.42".into()), Code::FailedPrecondition),
            (CloudError::Protocol("junk".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error.clone()).code(), code, "{error}");
        }
    }
}
