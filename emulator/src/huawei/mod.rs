//! Huawei Cloud under `/evs` (EVS disks, snapshots, tags, types, quotas, jobs) and `/ecs` (disk
//! attach and detach, jobs), over the same per-project store as Cinder: an EVS disk is a
//! Cinder volume. Every request is authenticated by an AK/SK signature or an IAM (Keystone)
//! token, and must name a project the caller may act in.

pub mod disks;
pub mod ecs;
pub mod jobs;
pub mod quotas;
pub mod sign;
pub mod snapshots;
pub mod tag_rules;
pub mod tags;
pub mod types;
pub mod views;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use super::clock::now_ms;
use super::errors::{ApiError, ApiResult, Family};
use super::keystone::{self, Auth};
use super::services::SignedPath;
use super::store::Cloud;

/// The largest body the API gateway accepts (12 MB).
const MAX_BODY: usize = 12 * 1024 * 1024;

/// Who is asking, for the project in the URL.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The caller's identity in the URL's project.
    pub auth: Auth,
}

/// The EVS and ECS routes.
pub fn router(cloud: Cloud) -> Router<Cloud> {
    Router::new()
        .merge(disks::routes())
        .merge(snapshots::routes())
        .merge(tags::routes())
        .merge(types::routes())
        .merge(quotas::routes())
        .merge(jobs::routes())
        .merge(ecs::routes())
        .route_layer(axum::middleware::from_fn_with_state(cloud, guard))
}

fn gateway(message: impl Into<String>) -> ApiError {
    ApiError::unauthorized(message)
}

/// AK/SK signature or token, then the project in the URL; the body is read once for the
/// signature and handed on unchanged.
async fn guard(State(cloud): State<Cloud>, request: Request, next: Next) -> Response {
    let family = Family::of_path(request.uri().path());
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return ApiError::new(family, StatusCode::PAYLOAD_TOO_LARGE, "The request body is too large.")
                .into_response();
        }
    };
    let project_id = parts.uri.path().split('/').nth(3).unwrap_or_default().to_string();
    let auth = if sign::is_signed(&parts.headers) {
        let sent = parts.extensions.get::<SignedPath>().cloned();
        let access = match verify_signed(&cloud, &parts, sent.as_ref(), &bytes) {
            Ok(access) => access,
            Err(message) => return gateway(message).with_family(family).into_response(),
        };
        let found = cloud.read(|w| {
            let key = w.access_keys.get(&access)?;
            let roles = w.users.get(&key.user_id)?.roles.get(&project_id).cloned().unwrap_or_default();
            Some((key.user_id.clone(), roles))
        });
        match found {
            Some((user_id, roles)) if !roles.is_empty() => {
                Auth { user_id, project_id: project_id.clone(), roles }
            }
            _ => {
                return ApiError::new(
                    family,
                    StatusCode::FORBIDDEN,
                    "The access key has no role in this project.",
                )
                .into_response();
            }
        }
    } else if parts.headers.contains_key("x-auth-token") {
        match keystone::authenticate(&cloud, &parts.headers) {
            Ok(auth) if auth.project_id == project_id => auth,
            Ok(_) => {
                return ApiError::coded(
                    family,
                    StatusCode::BAD_REQUEST,
                    "Common.0018",
                    "Invalid token in the header",
                )
                .into_response();
            }
            Err(_) => {
                return gateway("Incorrect IAM authentication information: the token is invalid or expired")
                    .with_family(family)
                    .into_response();
            }
        }
    } else {
        return gateway("Incorrect IAM authentication information: no Authorization or X-Auth-Token header")
            .with_family(family)
            .into_response();
    };
    let mut request = Request::from_parts(parts, axum::body::Body::from(bytes));
    request.extensions_mut().insert(Ctx { auth });
    next.run(request).await
}

/// Verifies an AK/SK-signed request over the path the client sent (`sent`, when a service
/// listener added a routing prefix) and checks a temporary key's security token; the access
/// key, or the gateway's message.
pub fn verify_signed(
    cloud: &Cloud,
    parts: &axum::http::request::Parts,
    sent: Option<&SignedPath>,
    body: &[u8],
) -> Result<String, String> {
    let received = sign::Received {
        method: parts.method.as_str(),
        path: sent.map_or(parts.uri.path(), |s| s.path.as_str()),
        query: sent.map_or(parts.uri.query(), |s| s.query.as_deref()),
        headers: &parts.headers,
        body,
    };
    let verified = sign::verify(&received, now_ms(), |access| {
        cloud.read(|w| w.access_keys.get(access).map(|k| k.secret.clone()))
    });
    let access = verified.map_err(|e| {
        tracing::debug!(reason = %e, "emulator: AK/SK signature refused");
        format!("Incorrect IAM authentication information: verify aksk signature fail: {e}")
    })?;
    check_temporary(cloud, &access, &parts.headers).map_err(|e| {
        tracing::debug!(reason = e, "emulator: temporary access key refused");
        format!("Incorrect IAM authentication information: {e}")
    })?;
    Ok(access)
}

/// A temporary access key works only with its security token and until it expires.
fn check_temporary(cloud: &Cloud, access: &str, headers: &axum::http::HeaderMap) -> Result<(), &'static str> {
    let key = cloud.read(|w| w.access_keys.get(access).map(|k| (k.security_token.clone(), k.expires_at_ms)));
    let Some((Some(expected), expires_at_ms)) = key else { return Ok(()) };
    let sent = headers.get("x-security-token").and_then(|v| v.to_str().ok());
    if sent != Some(expected.as_str()) {
        return Err("the security token of the temporary access key is missing or wrong");
    }
    if expires_at_ms.is_some_and(|at| at <= now_ms()) {
        return Err("the temporary access key has expired");
    }
    Ok(())
}

trait WithFamily {
    fn with_family(self, family: Family) -> Self;
}

impl WithFamily for ApiError {
    fn with_family(mut self, family: Family) -> Self {
        self.family = family;
        self
    }
}

/// An EVS error with its code.
pub fn evs(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::coded(Family::Evs, status, code, message)
}

/// A 400 EVS error with its code.
pub fn evs_bad(code: &str, message: impl Into<String>) -> ApiError {
    evs(StatusCode::BAD_REQUEST, code, message)
}

/// 404 EVS.5404 for a missing resource of `kind`.
pub fn evs_not_found(kind: &str, id: &str) -> ApiError {
    evs(StatusCode::NOT_FOUND, "EVS.5404", format!("{kind} {id} could not be found."))
}

/// An ECS error with its code.
pub fn ecs(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
    ApiError::coded(Family::Ecs, status, code, message)
}

/// Parses a JSON body whose top level is an object.
pub fn json_object(body: &Bytes, family: Family) -> ApiResult<Map<String, Value>> {
    let malformed = || {
        let code = if family == Family::Evs { "EVS.5400" } else { "Ecs.0005" };
        ApiError::coded(family, StatusCode::BAD_REQUEST, code, "Malformed request body.")
    };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

/// An optional string field; another type is EVS.1018.
pub fn opt_string(map: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => {
            Err(evs_bad("EVS.1018", format!("Type conversion error , parameter type is unexpected: {key}")))
        }
    }
}

/// An optional integer field (numbers, decimals truncated, or digit strings).
pub fn opt_int(map: &Map<String, Value>, key: &str) -> ApiResult<Option<i64>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_i64().or_else(|| n.as_f64().map(|f| f.trunc() as i64))),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Ok(s.trim().parse().ok()),
        Some(_) => {
            Err(evs_bad("EVS.1018", format!("Type conversion error , parameter type is unexpected: {key}")))
        }
    }
}
