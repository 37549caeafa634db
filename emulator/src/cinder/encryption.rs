//! Volume type encryption (admin): create, show, show one spec, update, delete, answered in the
//! shapes Cinder's volume_type_encryption controller gives.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{Ctx, body_object, not_found};
use crate::bootstrap::resource_id;
use crate::clock::iso;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Encryption, VolumeType};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;
const LOCATIONS: &[&str] = &["front-end", "back-end"];

/// The encryption routes.
pub fn routes() -> Router<Cloud> {
    Router::new().route("/volume/v3/{project_id}/types/{type_id}/encryption", get(show).post(create)).route(
        "/volume/v3/{project_id}/types/{type_id}/encryption/{key}",
        get(show_spec).put(update).delete(delete),
    )
}

fn find<'a>(w: &'a mut World, id: &str) -> ApiResult<&'a mut VolumeType> {
    w.volume_types.get_mut(id).ok_or_else(|| not_found("Volume type", id))
}

fn in_use(w: &World, type_id: &str) -> bool {
    w.stores.values().any(|s| s.volumes.values().any(|v| v.volume_type_id == type_id))
}

fn full(t: &VolumeType, e: &Encryption) -> Value {
    json!({
        "volume_type_id": t.id, "encryption_id": e.id, "provider": e.provider, "cipher": e.cipher,
        "key_size": e.key_size, "control_location": e.control_location, "deleted": false,
        "created_at": iso(e.created_at_ms), "updated_at": e.updated_at_ms.map(iso), "deleted_at": null,
    })
}

/// The fields a body may set, checked as Cinder's schema does.
struct Fields {
    provider: Option<String>,
    cipher: Option<Option<String>>,
    key_size: Option<Option<i64>>,
    control_location: Option<String>,
}

fn fields(map: &Map<String, Value>) -> ApiResult<Fields> {
    let bad = |key: &str| ApiError::bad_request(F, format!("Invalid input for field/attribute {key}."));
    if let Some(key) =
        map.keys().find(|k| !["provider", "cipher", "key_size", "control_location"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            F,
            format!("Additional properties are not allowed ('{key}' was unexpected)"),
        ));
    }
    let provider = match map.get("provider") {
        None => None,
        Some(Value::String(p)) if !p.is_empty() && p.len() <= 255 => Some(p.clone()),
        Some(_) => return Err(bad("provider")),
    };
    let cipher = match map.get("cipher") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(c)) if c.len() <= 255 => Some(Some(c.clone())),
        Some(_) => return Err(bad("cipher")),
    };
    let key_size = match map.get("key_size") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
            Some(n) if n >= 0 => Some(Some(n)),
            _ => return Err(bad("key_size")),
        },
    };
    let control_location = match map.get("control_location") {
        None => None,
        Some(Value::String(c)) if LOCATIONS.contains(&c.as_str()) => Some(c.clone()),
        Some(_) => return Err(bad("control_location")),
    };
    Ok(Fields { provider, cipher, key_size, control_location })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:volume_type_encryption:get")?;
    cloud.write(F, |w| {
        let t = find(w, &id)?;
        // An unencrypted type answers an empty object, not 404.
        Ok(Json(t.encryption.as_ref().map(|e| full(t, e)).unwrap_or_else(|| json!({}))))
    })
}

async fn show_spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:volume_type_encryption:get")?;
    cloud.write(F, |w| {
        let t = find(w, &id)?;
        let view = t.encryption.as_ref().map(|e| full(t, e)).unwrap_or_else(|| json!({}));
        match view.get(&key) {
            Some(value) if !value.is_null() => Ok(Json(json!({ key: value }))),
            _ => Err(ApiError::not_found(F, format!("Volume type encryption for type {id} does not exist."))),
        }
    })
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:volume_type_encryption:create")?;
    let map = body_object(&body, "encryption")?;
    let given = fields(&map)?;
    let provider = given
        .provider
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute provider."))?;
    let control_location = given.control_location.unwrap_or_else(|| "front-end".into());
    cloud.write(F, |w| {
        if in_use(w, &id) {
            return Err(ApiError::bad_request(F, "Cannot create encryption specs. Volume type in use."));
        }
        let t = find(w, &id)?;
        if t.encryption.is_some() {
            return Err(ApiError::bad_request(
                F,
                format!("Volume type encryption for type {id} already exists."),
            ));
        }
        let e = Encryption {
            id: resource_id(),
            provider,
            cipher: given.cipher.flatten(),
            key_size: given.key_size.flatten(),
            control_location,
            created_at_ms: now_ms(),
            updated_at_ms: None,
        };
        let view = json!({
            "volume_type_id": t.id, "encryption_id": e.id, "provider": e.provider,
            "cipher": e.cipher, "key_size": e.key_size, "control_location": e.control_location,
        });
        t.encryption = Some(e);
        Ok(Json(json!({"encryption": view})))
    })
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, encryption_id)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:volume_type_encryption:update")?;
    let map = body_object(&body, "encryption")?;
    let given = fields(&map)?;
    cloud.write(F, |w| {
        if in_use(w, &id) {
            return Err(ApiError::bad_request(F, "Cannot update encryption specs. Volume type in use."));
        }
        let t = find(w, &id)?;
        let e = t.encryption.as_mut().filter(|e| e.id == encryption_id).ok_or_else(|| {
            ApiError::not_found(F, format!("Volume type encryption for type {id} does not exist."))
        })?;
        if let Some(p) = given.provider {
            e.provider = p;
        }
        if let Some(c) = given.cipher {
            e.cipher = c;
        }
        if let Some(k) = given.key_size {
            e.key_size = k;
        }
        if let Some(c) = given.control_location {
            e.control_location = c;
        }
        e.updated_at_ms = Some(now_ms());
        // Cinder echoes the fields the request set.
        Ok(Json(json!({"encryption": map})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, encryption_id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:volume_type_encryption:delete")?;
    cloud.write(F, |w| {
        if in_use(w, &id) {
            return Err(ApiError::bad_request(F, "Cannot delete encryption specs. Volume type in use."));
        }
        let t = find(w, &id)?;
        if t.encryption.as_ref().is_none_or(|e| e.id != encryption_id) {
            return Err(ApiError::not_found(
                F,
                format!("Volume type encryption for type {id} does not exist."),
            ));
        }
        t.encryption = None;
        Ok(StatusCode::ACCEPTED)
    })
}
