//! The cloud room's error: what went wrong with a cloud call, in cloud-neutral terms, with the
//! cloud's own message kept (never a credential).

/// A failed cloud operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The resource does not exist (HTTP 404, or gone while waiting).
    #[error("{kind} {id} not found")]
    NotFound {
        /// Resource kind, e.g. "volume".
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The request conflicts with the resource's state (HTTP 409, or a documented
    /// precondition such as "volume has snapshots").
    #[error("conflict: {0}")]
    Conflict(String),
    /// The cloud refused the request as malformed (HTTP 400).
    #[error("rejected by the cloud: {0}")]
    InvalidInput(String),
    /// A quota or limit would be exceeded (HTTP 413 overLimit without Retry-After, quota codes).
    #[error("quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Authentication failed even after re-authenticating, or the action is forbidden.
    #[error("not authorized: {0}")]
    Unauthorized(String),
    /// The cloud is unreachable or overloaded, after retries.
    #[error("cloud unavailable: {0}")]
    Unavailable(String),
    /// Waiting for the cloud took longer than allowed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The resource went to an error state.
    #[error("{kind} {id} is in state {status}{}", reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    ErrorState {
        /// Resource kind.
        kind: &'static str,
        /// Its id.
        id: String,
        /// The error status, e.g. `error_extending`.
        status: String,
        /// The cloud's reason, when it gives one.
        reason: Option<String>,
    },
    /// The feature is not available on this cloud (microversion, extension).
    #[error("not supported by this cloud: {0}")]
    Unsupported(String),
    /// The cloud answered something we cannot understand.
    #[error("unexpected response from the cloud: {0}")]
    Protocol(String),
    /// Configuration prevents the call (missing endpoint, bad TLS files).
    #[error("cloud configuration: {0}")]
    Config(String),
}

impl CloudError {
    /// True when trying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Timeout(_))
    }
}

impl From<crate::contract::IdError> for CloudError {
    /// An id that cannot be one URL segment (empty, `.` or `..`) never reaches the cloud.
    fn from(error: crate::contract::IdError) -> Self {
        Self::InvalidInput(error.to_string())
    }
}
