//! Volume transfers: the legacy `os-volume-transfer` and the 3.55 `volume-transfers` routes.
//! A transfer puts an available volume in `awaiting-transfer`; whoever holds its id and
//! auth key (shown once, at create) may accept it into their own project, which moves the
//! volume (and, unless `no_snapshots`, its snapshots) with their quota usage. Only a salted
//! hash of the key is kept, and it is compared in constant time.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Map, Value, json};

use super::{Ctx, body_object, views};
use crate::bootstrap::resource_id;
use crate::clock::{iso, now_ms};
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The collection the links name, as Cinder's transfer views do on both routes.
const COLLECTION: &str = "os-volume-transfer";

pub use crate::model::Transfer;

/// Which route family a request came in on.
#[derive(Clone, Copy)]
enum Api {
    /// `os-volume-transfer`, every microversion.
    Legacy,
    /// `volume-transfers`, 3.55 and later.
    V355,
}

impl Api {
    fn gate(self, ctx: &Ctx) -> ApiResult<()> {
        match self {
            Api::V355 if !ctx.version.at_least(3, 55) => {
                Err(ApiError::not_found(F, "The resource could not be found."))
            }
            _ => Ok(()),
        }
    }
}

/// The routes.
pub fn routes() -> Router<Cloud> {
    let mut router = Router::new();
    for (collection, api) in [("os-volume-transfer", Api::Legacy), ("volume-transfers", Api::V355)] {
        let base = format!("/volume/v3/{{project_id}}/{collection}");
        router = router
            .route(
                &base,
                get(move |s, e, q| list(s, e, q, api, false)).post(move |s, e, b| create(s, e, b, api)),
            )
            .route(&format!("{base}/detail"), get(move |s, e, q| list(s, e, q, api, true)))
            .route(
                &format!("{base}/{{id}}"),
                get(move |s, e, p| show(s, e, p, api)).delete(move |s, e, p| delete(s, e, p, api)),
            )
            .route(&format!("{base}/{{id}}/accept"), post(move |s, e, p, b| accept(s, e, p, b, api)));
    }
    router
}

fn random_hex(bytes: usize) -> ApiResult<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ApiError::internal(F, "The emulator could not draw random bytes."))?;
    Ok(hex(&buf))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_hash(salt: &str, key: &str) -> String {
    hex(digest(&SHA256, format!("{salt}{key}").as_bytes()).as_ref())
}

/// Equality whose time does not depend on where the inputs differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn not_found(id: &str) -> ApiError {
    ApiError::not_found(F, format!("Transfer {id} could not be found."))
}

/// A transfer the caller may see: its volume's project's, or any for an admin.
fn find<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Transfer> {
    w.transfers
        .get(id)
        .filter(|t| t.source_project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found(id))
}

fn summary(cloud: &Cloud, ctx: &Ctx, t: &Transfer) -> Value {
    json!({"id": t.id, "name": t.name, "volume_id": t.volume_id,
           "links": views::links(cloud, &ctx.auth.project_id, COLLECTION, &t.id)})
}

fn detail(cloud: &Cloud, ctx: &Ctx, t: &Transfer) -> Value {
    let mut view = summary(cloud, ctx, t);
    view["created_at"] = json!(iso(t.created_at_ms));
    if ctx.version.at_least(3, 55) {
        view["no_snapshots"] = json!(t.no_snapshots);
    }
    if ctx.version.at_least(3, 57) {
        // Accepted transfers are gone from every list, so what is shown is still open.
        view["source_project_id"] = json!(t.source_project_id);
        view["destination_project_id"] = Value::Null;
        view["accepted"] = json!(false);
    }
    view
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
    api: Api,
    with_detail: bool,
) -> ApiResult<Json<Value>> {
    api.gate(&ctx)?;
    let all = ctx.auth.is_admin()
        && query.iter().any(|(k, v)| k == "all_tenants" && super::parse_bool(&json!(v)).unwrap_or(true));
    let list = cloud.read(|w| {
        w.transfers
            .values()
            .filter(|t| all || t.source_project_id == ctx.auth.project_id)
            .map(|t| if with_detail { detail(&cloud, &ctx, t) } else { summary(&cloud, &ctx, t) })
            .collect::<Vec<_>>()
    });
    Ok(Json(json!({ "transfers": list })))
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    api: Api,
) -> ApiResult<Json<Value>> {
    api.gate(&ctx)?;
    cloud.read(|w| Ok(Json(json!({ "transfer": detail(&cloud, &ctx, find(w, &ctx, &id)?) }))))
}

/// The create body: `volume_id` (required), `name` (string or null, at most 255 characters
/// once trimmed) and, on the 3.55 route, `no_snapshots`; anything else is refused.
fn parse_create(map: &Map<String, Value>, api: Api, ctx: &Ctx) -> ApiResult<(String, Option<String>, bool)> {
    let allowed: &[&str] = match api {
        Api::V355 if ctx.version.at_least(3, 55) => &["volume_id", "name", "no_snapshots"],
        _ => &["volume_id", "name"],
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            F,
            format!(
                "Invalid input for field/attribute transfer. Value: {}. Additional properties are not allowed ('{extra}' was unexpected)",
                Value::Object(map.clone())
            ),
        ));
    }
    let volume_id = match map.get("volume_id") {
        Some(Value::String(id)) if uuid::Uuid::parse_str(id).is_ok() => id.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Invalid input for field/attribute volume_id. Value: {other}. {other} is not a 'uuid'"
                ),
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                F,
                "Invalid input for field/attribute transfer. 'volume_id' is a required property",
            ));
        }
    };
    let name = match map.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => {
            let trimmed = name.trim();
            if trimmed.chars().count() > 255 {
                return Err(ApiError::bad_request(
                    F,
                    "Invalid input for field/attribute name. Value is too long (maximum 255).",
                ));
            }
            if trimmed.contains('\0') {
                return Err(ApiError::bad_request(
                    F,
                    "Invalid input for field/attribute name. Value contains a NUL character.",
                ));
            }
            Some(trimmed.to_string())
        }
        Some(other) => {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string', 'null'"
                ),
            ));
        }
    };
    let no_snapshots = match map.get("no_snapshots") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => super::parse_bool(other).ok_or_else(|| {
            ApiError::bad_request(F, format!("Invalid input for field/attribute no_snapshots. Value: {other}. {other} is not a valid boolean"))
        })?,
    };
    Ok((volume_id, name, no_snapshots))
}

/// `POST`: 202 with the transfer and its auth key, which is never shown again.
async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
    api: Api,
) -> ApiResult<Response> {
    api.gate(&ctx)?;
    let map = body_object(&body, "transfer")?;
    let (volume_id, name, no_snapshots) = parse_create(&map, api, &ctx)?;
    let auth_key = random_hex(8)?;
    let salt = random_hex(8)?;
    cloud.write(F, |w| {
        let volume = super::volumes::find(w, &ctx, &volume_id)?.clone();
        if volume.status != "available" {
            return Err(super::invalid_volume("status must be available"));
        }
        let snapshots_busy = w.stores.get(&volume.project_id).is_some_and(|s| {
            s.snapshots.values().any(|s| s.volume_id == volume_id && s.status != "available")
        });
        if !no_snapshots && snapshots_busy {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid snapshot: One or more snapshots of volume {volume_id} are not available."),
            ));
        }
        let transfer = Transfer {
            id: resource_id(),
            volume_id: volume_id.clone(),
            name,
            source_project_id: volume.project_id.clone(),
            no_snapshots,
            key_hash: key_hash(&salt, &auth_key),
            salt,
            created_at_ms: now_ms(),
        };
        if let Some(v) = w.volume_mut(&volume_id) {
            v.status = "awaiting-transfer".into();
            v.updated_at_ms = Some(now_ms());
        }
        let mut view = detail(&cloud, &ctx, &transfer);
        view["auth_key"] = json!(auth_key);
        w.transfers.insert(transfer.id.clone(), transfer);
        Ok((StatusCode::ACCEPTED, Json(json!({ "transfer": view }))).into_response())
    })
}

/// `DELETE`: the offer is withdrawn and the volume is available again.
async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    api: Api,
) -> ApiResult<StatusCode> {
    api.gate(&ctx)?;
    cloud.write(F, |w| {
        let volume_id = find(w, &ctx, &id)?.volume_id.clone();
        w.transfers.remove(&id);
        if let Some(v) = w.volume_mut(&volume_id).filter(|v| v.status == "awaiting-transfer") {
            v.status = "available".into();
            v.updated_at_ms = Some(now_ms());
        }
        Ok(StatusCode::ACCEPTED)
    })
}

/// `POST .../accept` with `{"accept": {"auth_key": ...}}`: any project holding the id and key
/// may accept; the volume (and its snapshots unless left behind) moves to the caller's
/// project, which must have the quota for it.
async fn accept(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
    api: Api,
) -> ApiResult<Response> {
    api.gate(&ctx)?;
    let map = body_object(&body, "accept")?;
    let key = match map.get("auth_key") {
        Some(Value::String(key)) => key.clone(),
        Some(other) => {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Invalid input for field/attribute auth_key. Value: {other}. {other} is not of type 'string'"
                ),
            ));
        }
        None => {
            return Err(ApiError::bad_request(
                F,
                "Invalid input for field/attribute accept. 'auth_key' is a required property",
            ));
        }
    };
    cloud.write(F, |w| {
        // Accepting is for other projects, so the transfer is looked up regardless of owner.
        let transfer = w.transfers.get(&id).cloned().ok_or_else(|| not_found(&id))?;
        if !same(&key_hash(&transfer.salt, &key), &transfer.key_hash) {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid auth key: Attempt to transfer {id} with invalid auth key."),
            ));
        }
        let volume_id = transfer.volume_id.clone();
        let donor = transfer.source_project_id.clone();
        let volume = w
            .stores
            .get(&donor)
            .and_then(|s| s.volumes.get(&volume_id))
            .cloned()
            .ok_or_else(|| super::not_found("Volume", &volume_id))?;
        let snapshot_ids: Vec<String> = if transfer.no_snapshots {
            Vec::new()
        } else {
            w.stores[&donor]
                .snapshots
                .values()
                .filter(|s| s.volume_id == volume_id)
                .map(|s| s.id.clone())
                .collect()
        };
        let taker = ctx.auth.project_id.clone();
        if taker != donor {
            check_accept_quota(w, &taker, &volume, &snapshot_ids, &donor)?;
        }
        let store = w.store_mut(&donor);
        let mut volume = store.volumes.remove(&volume_id).expect("read above");
        let snapshots: Vec<_> = snapshot_ids.iter().filter_map(|s| store.snapshots.remove(s)).collect();
        volume.project_id = taker.clone();
        volume.user_id = ctx.auth.user_id.clone();
        volume.status = "available".into();
        volume.updated_at_ms = Some(now_ms());
        let store = w.store_mut(&taker);
        store.volumes.insert(volume_id, volume);
        for mut snapshot in snapshots {
            snapshot.project_id = taker.clone();
            snapshot.user_id = ctx.auth.user_id.clone();
            store.snapshots.insert(snapshot.id.clone(), snapshot);
        }
        w.transfers.remove(&id);
        let view = summary(&cloud, &ctx, &transfer);
        Ok((StatusCode::ACCEPTED, Json(json!({ "transfer": view }))).into_response())
    })
}

/// 413 unless the taker's quotas hold the volume (and the snapshots that come with it).
fn check_accept_quota(
    w: &World,
    taker: &str,
    volume: &crate::model::Volume,
    snapshot_ids: &[String],
    donor: &str,
) -> ApiResult<()> {
    let per_volume = w.quota_limit(taker, "per_volume_gigabytes");
    if per_volume >= 0 && volume.size as i64 > per_volume {
        return Err(ApiError::over_limit(
            F,
            format!(
                "Requested volume size {}G is larger than maximum allowed limit {per_volume}G.",
                volume.size
            ),
        ));
    }
    let snapshot_gb: i64 =
        snapshot_ids.iter().filter_map(|s| w.stores[donor].snapshots.get(s)).map(|s| s.size as i64).sum();
    let mut wants =
        vec![("volumes".to_string(), 1), ("gigabytes".to_string(), volume.size as i64 + snapshot_gb)];
    if !snapshot_ids.is_empty() {
        wants.push(("snapshots".to_string(), snapshot_ids.len() as i64));
    }
    if let Some(t) = w.volume_types.get(&volume.volume_type_id) {
        wants.push((format!("volumes_{}", t.name), 1));
        wants.push((format!("gigabytes_{}", t.name), volume.size as i64 + snapshot_gb));
        if !snapshot_ids.is_empty() {
            wants.push((format!("snapshots_{}", t.name), snapshot_ids.len() as i64));
        }
    }
    super::check_quota(w, taker, &wants)
}
