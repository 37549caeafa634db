//! The error bodies and status codes of each API family, and the emulator's own error type.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Which API family answers, which decides the shape of an error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Keystone: `{"error": {"code", "title", "message"}}`.
    Identity,
    /// Cinder: `{"badRequest": {"message", "code"}}` and friends.
    Volume,
    /// Nova: the same typed keys as Cinder.
    Compute,
    /// Huawei EVS: `{"error": {"code": "EVS.xxxx", "message"}}`; gateway errors (401, 429,
    /// unknown routes) as `{"error_code": "APIGW.xxxx", "error_msg"}`.
    Evs,
    /// Huawei ECS: `{"error": {"code": "Ecs.xxxx", "message"}}`, gateway errors as for EVS.
    Ecs,
    /// The emulator's own admin API and the metadata service.
    Admin,
}

impl Family {
    /// The family that serves a request path (devstack-style prefixes).
    pub fn of_path(path: &str) -> Self {
        if path.starts_with(super::IDENTITY_PREFIX) {
            Family::Identity
        } else if path.starts_with(super::VOLUME_PREFIX) {
            Family::Volume
        } else if path.starts_with(super::COMPUTE_PREFIX) {
            Family::Compute
        } else if path.starts_with(super::EVS_PREFIX) {
            Family::Evs
        } else if path.starts_with(super::ECS_PREFIX) {
            Family::Ecs
        } else {
            Family::Admin
        }
    }
}

/// An error answered to an API caller.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The family whose body shape is used.
    pub family: Family,
    /// The HTTP status.
    pub status: StatusCode,
    /// The human-readable message.
    pub message: String,
    /// Seconds for a `Retry-After` header (413/429/503).
    pub retry_after: Option<u64>,
    /// The service's own error code (`EVS.1046`, `Ecs.0114`, `APIGW.0301`); a default by
    /// status when absent.
    pub code: Option<String>,
}

/// The result type of every API handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with the given status and message.
    pub fn new(family: Family, status: StatusCode, message: impl Into<String>) -> Self {
        Self { family, status, message: message.into(), retry_after: None, code: None }
    }

    /// An error carrying a Huawei error code.
    pub fn coded(family: Family, status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self { code: Some(code.to_string()), ..Self::new(family, status, message) }
    }

    /// Sets the service error code.
    pub fn with_code(mut self, code: &str) -> Self {
        self.code = Some(code.to_string());
        self
    }

    /// 400.
    pub fn bad_request(family: Family, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::BAD_REQUEST, message)
    }

    /// 401 (always Keystone-shaped: keystonemiddleware answers it for every service).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(Family::Identity, StatusCode::UNAUTHORIZED, message)
    }

    /// 403.
    pub fn forbidden(family: Family, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::FORBIDDEN, message)
    }

    /// 404.
    pub fn not_found(family: Family, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::NOT_FOUND, message)
    }

    /// 409.
    pub fn conflict(family: Family, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::CONFLICT, message)
    }

    /// 413 with `Retry-After: 0`, as Cinder answers quota excess.
    pub fn over_limit(family: Family, message: impl Into<String>) -> Self {
        Self { retry_after: Some(0), ..Self::new(family, StatusCode::PAYLOAD_TOO_LARGE, message) }
    }

    /// 500.
    pub fn internal(family: Family, message: impl Into<String>) -> Self {
        Self::new(family, StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// Sets the `Retry-After` seconds.
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// The JSON body this error is answered with.
    pub fn body(&self) -> serde_json::Value {
        if matches!(self.family, Family::Evs | Family::Ecs) {
            let code = self.code.clone().unwrap_or_else(|| huawei_code(self.family, self.status).to_string());
            if code.starts_with("APIGW") {
                return json!({"error_code": code, "error_msg": self.message, "request_id": uuid::Uuid::new_v4().simple().to_string()});
            }
            return json!({"error": {"code": code, "message": self.message}});
        }
        let code = self.status.as_u16();
        if self.family == Family::Identity || self.status == StatusCode::UNAUTHORIZED {
            let title = self.status.canonical_reason().unwrap_or("Error");
            return json!({"error": {"code": code, "title": title, "message": self.message}});
        }
        if self.family == Family::Admin {
            return json!({"error": {"code": code, "message": self.message}});
        }
        let key = typed_key(self.status);
        let mut inner = json!({"message": self.message, "code": code});
        if let Some(seconds) = self.retry_after {
            inner["retryAfter"] = json!(seconds.to_string());
        }
        json!({ key: inner })
    }
}

/// The code a Huawei service answers a status with when no specific one applies.
fn huawei_code(family: Family, status: StatusCode) -> &'static str {
    let evs = family == Family::Evs;
    match status.as_u16() {
        401 => "APIGW.0301",
        429 => "APIGW.0308",
        400 if evs => "EVS.5400",
        403 if evs => "EVS.5403",
        404 if evs => "EVS.5404",
        413 if evs => "EVS.5413",
        503 if evs => "EVS.5503",
        _ if evs => "EVS.5500",
        400 | 413 => "Ecs.0005",
        403 => "Ecs.0003",
        404 => "APIGW.0101",
        _ => "Ecs.0002",
    }
}

/// The typed fault key OpenStack's WSGI fault wrapper uses for a status.
fn typed_key(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        406 => "notAcceptable",
        409 => "conflictingRequest",
        413 | 429 => "overLimit",
        415 => "badMediaType",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED && !matches!(self.family, Family::Evs | Family::Ecs) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Keystone uri=\"/identity\""));
        }
        response
    }
}

/// Why the emulator could not start or keep its state.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// A file or directory operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A listen address could not be bound.
    #[error("binding {address}: {source}")]
    Bind {
        /// The address asked for.
        address: std::net::SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The persisted state could not be read or written.
    #[error("state file {path}: {message}")]
    State {
        /// The state file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The configuration is inconsistent.
    #[error("emulator config: {0}")]
    Config(String),
}

impl EmulatorError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io { context: context.into(), source }
    }
}
