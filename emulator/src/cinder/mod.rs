//! Cinder v3 under `/volume`: version discovery, then every project route behind one guard
//! (token, project in the URL, microversion).

pub mod actions;
pub mod attachments;
pub mod backups;
pub mod extras;
pub mod group_types;
pub mod groups;
pub mod list;
pub mod manage;
pub mod messages;
pub mod metadata;
pub mod pools;
pub mod pyliteral;
pub mod qos;
pub mod quota_classes;
pub mod quotas;
pub mod services;
pub mod snapshots;
pub mod transfers;
pub mod types;
pub mod views;
pub mod volumes;

// The verbs and semantics of issue 22 (emuverbs): each in its own module, routed by `verbs()`.
pub mod backup_records;
pub mod default_types;
pub mod encryption;
pub mod force_delete;
pub mod group_from_src;
pub mod scheduler;
pub mod snapshot_status;
pub mod type_access;
pub mod type_filters;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::VOLUME_PREFIX;
use super::errors::{ApiError, ApiResult, Family};
use super::keystone::{self, Auth};
use super::microversion::{Microversion, Range};
use super::store::Cloud;

/// The microversions this Cinder speaks.
pub const RANGE: Range = Range {
    service: "volume",
    legacy_header: None,
    min: Microversion::new(3, 0),
    max: Microversion::new(3, 70),
    family: Family::Volume,
};

const F: Family = Family::Volume;

/// Who is asking, at which microversion.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The token's identity.
    pub auth: Auth,
    /// The negotiated microversion.
    pub version: Microversion,
}

impl Ctx {
    /// 403 unless the caller is an admin.
    pub fn require_admin(&self, action: &str) -> ApiResult<()> {
        if self.auth.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(F, format!("Policy doesn't allow {action} to be performed.")))
        }
    }
}

/// The Cinder routes.
pub fn router(cloud: Cloud) -> Router<Cloud> {
    let project = Router::new()
        .merge(volumes::routes())
        .merge(actions::routes())
        .merge(snapshots::routes())
        .merge(types::routes())
        .merge(quotas::routes())
        .merge(attachments::routes())
        .merge(backups::routes())
        .merge(groups::routes())
        .merge(group_types::routes())
        .merge(manage::routes())
        .merge(messages::routes())
        .merge(extras::routes())
        // Admin routes (issue 22): services, hosts, pools, capabilities, QoS specs, quota
        // classes; and volume transfers.
        .merge(services::routes())
        .merge(pools::routes())
        .merge(qos::routes())
        .merge(quota_classes::routes())
        .merge(transfers::routes())
        .merge(verbs())
        .route_layer(axum::middleware::from_fn_with_state(cloud, guard));
    Router::new()
        .route("/volume", get(versions))
        .route("/volume/", get(versions))
        .route("/volume/v3", get(version))
        .route("/volume/v3/", get(version))
        .merge(project)
}

/// The routes of the issue-22 verbs (type access and encryption, default types, backup records).
fn verbs() -> Router<Cloud> {
    Router::new()
        .merge(backup_records::routes())
        .merge(type_access::routes())
        .merge(encryption::routes())
        .merge(default_types::routes())
        .merge(group_from_src::routes())
}

/// Token, project and microversion checks; the microversion is echoed on every answer.
async fn guard(State(cloud): State<Cloud>, mut request: Request, next: Next) -> Response {
    let auth = match keystone::authenticate(&cloud, request.headers()) {
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let url_project = request.uri().path().split('/').nth(3).unwrap_or_default().to_string();
    if url_project != auth.project_id {
        return ApiError::bad_request(F, "Malformed request url").into_response();
    }
    let version = match RANGE.negotiate(request.headers()) {
        Ok(version) => version,
        Err(e) => return e.into_response(),
    };
    request.extensions_mut().insert(Ctx { auth, version });
    let mut response = next.run(request).await;
    RANGE.echo(response.headers_mut(), version);
    response
}

fn version_doc(cloud: &Cloud) -> Value {
    json!({
        "id": "v3.0", "status": "CURRENT", "version": RANGE.max.text(), "min_version": RANGE.min.text(),
        "updated": "2022-08-31T00:00:00Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            {"rel": "self", "href": format!("{}{VOLUME_PREFIX}/v3/", cloud.base_url())},
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.volume+json;version=3"}],
    })
}

async fn versions(State(cloud): State<Cloud>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({"versions": [version_doc(&cloud)]}))).into_response()
}

async fn version(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"versions": [version_doc(&cloud)]}))
}

/// Parses a JSON body whose top level must hold object `key`.
pub fn body_object(body: &Bytes, key: &str) -> ApiResult<Map<String, Value>> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request(F, "Malformed request body"))?;
    match value.get(key) {
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(_) => Err(ApiError::bad_request(
            F,
            format!("Invalid input for field/attribute {key}. Value must be an object."),
        )),
        None => Err(ApiError::bad_request(F, format!("Missing required element '{key}' in request body."))),
    }
}

/// Parses any JSON body.
pub fn body_value(body: &Bytes) -> ApiResult<Value> {
    serde_json::from_slice(body).map_err(|_| ApiError::bad_request(F, "Malformed request body"))
}

/// An optional string field (null allowed).
pub fn opt_str(map: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(key, other, "is not of type 'string'")),
    }
}

/// A positive integer field given as a number or a digit string.
pub fn opt_size(map: &Map<String, Value>, key: &str) -> ApiResult<Option<u64>> {
    let value = match map.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let parsed = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match parsed {
        Some(n) if n >= 1 => Ok(Some(n as u64)),
        Some(_) => Err(invalid(key, value, "is less than the minimum of 1")),
        None => Err(invalid(key, value, "is not of type 'integer'")),
    }
}

/// A boolean field, accepting Cinder's string spellings.
pub fn opt_bool(map: &Map<String, Value>, key: &str) -> ApiResult<Option<bool>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_bool(v).map(Some).ok_or_else(|| invalid(key, v, "is not a valid boolean")),
    }
}

/// `true`, `"True"`, `"1"`, `"yes"`, `"on"` and their negatives.
pub fn parse_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Some(true),
            "false" | "0" | "no" | "n" | "off" | "f" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// A string-to-string metadata object.
pub fn opt_metadata(map: &Map<String, Value>, key: &str) -> ApiResult<Option<super::model::Metadata>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(entries)) => {
            let mut metadata = super::model::Metadata::new();
            for (k, v) in entries {
                if k.is_empty() || k.len() > 255 {
                    return Err(ApiError::bad_request(
                        F,
                        "Invalid input for field/attribute metadata. Metadata keys must be 1 to 255 characters.",
                    ));
                }
                let value = match v {
                    Value::String(s) => s.clone(),
                    other => return Err(invalid(k, other, "is not of type 'string'")),
                };
                metadata.insert(k.clone(), value);
            }
            Ok(Some(metadata))
        }
        Some(other) => Err(invalid(key, other, "is not of type 'object'")),
    }
}

fn invalid(key: &str, value: &Value, why: &str) -> ApiError {
    ApiError::bad_request(
        F,
        format!("Invalid input for field/attribute {key}. Value: {value}. {value} {why}"),
    )
}

/// 404 for a missing resource of `kind` (e.g. "Volume").
pub fn not_found(kind: &str, id: &str) -> ApiError {
    ApiError::not_found(F, format!("{kind} {id} could not be found."))
}

/// 400 with Cinder's `Invalid volume:` prefix.
pub fn invalid_volume(reason: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(F, format!("Invalid volume: {reason}"))
}

/// 413 for a quota the request would exceed.
pub fn check_quota(w: &super::store::World, project_id: &str, wants: &[(String, i64)]) -> ApiResult<()> {
    let usage = w.usage(project_id);
    for (resource, amount) in wants {
        let limit = w.quota_limit(project_id, resource);
        let used = usage.get(resource).copied().unwrap_or(0);
        if limit >= 0 && used + amount > limit {
            let message = if resource.starts_with("gigabytes") || resource.ends_with("gigabytes") {
                format!(
                    "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed {resource} quota. Requested {amount}G, quota is {limit}G and {used}G has been consumed."
                )
            } else {
                format!("Maximum number of {resource} allowed ({limit}) exceeded for quota '{resource}'.")
            };
            return Err(ApiError::over_limit(F, message));
        }
    }
    Ok(())
}

/// The project an id-addressed resource is read from: the caller's, or any for an admin.
pub fn visible(ctx: &Ctx, owner: Option<String>) -> Option<String> {
    owner.filter(|p| *p == ctx.auth.project_id || ctx.auth.is_admin())
}
