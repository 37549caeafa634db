//! The one place where errors of every layer become gRPC statuses.
//!
//! Each room keeps its own error enum; this module owns the mapping so that the same failure
//! always reaches the CO with the same code.

use tonic::{Code, Status};

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

#[cfg(test)]
mod tests {
    use super::*;

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
