//! QoS specs (`qos-specs`, admin only): create, list, show, set and unset keys, delete
//! (refused while associated unless forced), and association with volume types, answering
//! with the codes of Cinder's qos_specs_manage (200 for create, 202 for delete, unset and the
//! association verbs).

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Ctx, body_object, body_value, views};
use crate::bootstrap::resource_id;
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// Who applies the limits.
const CONSUMERS: &[&str] = &["front-end", "back-end", "both"];

pub use crate::model::QosSpec;

/// The routes.
pub fn routes() -> Router<Cloud> {
    let base = "/volume/v3/{project_id}/qos-specs";
    Router::new()
        .route(base, get(list).post(create))
        .route(&format!("{base}/{{id}}"), get(show).put(set_keys).delete(delete))
        .route(&format!("{base}/{{id}}/delete_keys"), put(unset_keys))
        .route(&format!("{base}/{{id}}/associations"), get(associations))
        .route(&format!("{base}/{{id}}/associate"), get(associate))
        .route(&format!("{base}/{{id}}/disassociate"), get(disassociate))
        .route(&format!("{base}/{{id}}/disassociate_all"), get(disassociate_all))
}

fn item(q: &QosSpec) -> Value {
    json!({"id": q.id, "name": q.name, "consumer": q.consumer, "specs": q.specs})
}

fn detail(cloud: &Cloud, ctx: &Ctx, q: &QosSpec) -> Value {
    json!({"qos_specs": item(q), "links": views::links(cloud, &ctx.auth.project_id, "qos-specs", &q.id)})
}

fn find<'a>(w: &'a World, id: &str) -> ApiResult<&'a QosSpec> {
    w.qos_specs.get(id).ok_or_else(|| spec_not_found(id))
}

fn find_mut<'a>(w: &'a mut World, id: &str) -> ApiResult<&'a mut QosSpec> {
    w.qos_specs.get_mut(id).ok_or_else(|| spec_not_found(id))
}

fn spec_not_found(id: &str) -> ApiError {
    ApiError::not_found(F, format!("No such QoS spec {id}."))
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(F, message)
}

/// Spec keys and values: strings of 1..255 (keys) and 0..255 (values) characters.
fn parse_specs(map: &Map<String, Value>) -> ApiResult<BTreeMap<String, String>> {
    let mut specs = BTreeMap::new();
    for (key, value) in map {
        if key.is_empty() || key.chars().count() > 255 {
            return Err(bad(format!("Invalid input received: The key '{key}' must be 1 to 255 characters.")));
        }
        let Value::String(text) = value else {
            return Err(bad(format!(
                "Invalid input for field/attribute {key}. Value: {value}. {value} is not of type 'string'"
            )));
        };
        if text.chars().count() > 255 {
            return Err(bad(format!(
                "Invalid input received: The value of '{key}' must be at most 255 characters."
            )));
        }
        specs.insert(key.clone(), text.clone());
    }
    Ok(specs)
}

fn check_consumer(consumer: &str) -> ApiResult<()> {
    if CONSUMERS.contains(&consumer) {
        Ok(())
    } else {
        Err(bad(format!(
            "Invalid input received: Valid consumer of QoS specs are: ['front-end', 'back-end', 'both'], not {consumer}"
        )))
    }
}

async fn list(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:qos_specs_manage:get_all")?;
    Ok(Json(cloud.read(|w| json!({"qos_specs": w.qos_specs.values().map(item).collect::<Vec<_>>()}))))
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:qos_specs_manage:get")?;
    cloud.read(|w| Ok(Json(detail(&cloud, &ctx, find(w, &id)?))))
}

/// `POST /qos-specs`: `name` and `consumer` (default `back-end`) are fields; every other key
/// is a spec.
async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:qos_specs_manage:create")?;
    let mut map = body_object(&body, "qos_specs")?;
    let name = match map.remove("name") {
        Some(Value::String(name)) => name.trim().to_string(),
        Some(other) => {
            return Err(bad(format!(
                "Invalid input for field/attribute name. Value: {other}. {other} is not of type 'string'"
            )));
        }
        None => return Err(bad("Please specify a name for QoS specs.")),
    };
    if name.is_empty() || name.chars().count() > 255 || name.contains('\0') {
        return Err(bad("Invalid input received: name has to be 1 to 255 characters long, without NUL."));
    }
    let consumer = match map.remove("consumer") {
        None => "back-end".to_string(),
        Some(Value::String(c)) => c,
        Some(other) => other.to_string(),
    };
    check_consumer(&consumer)?;
    let specs = parse_specs(&map)?;
    cloud.write(F, |w| {
        if w.qos_specs.values().any(|q| q.name == name) {
            return Err(ApiError::conflict(F, format!("QoS Specs {name} already exists.")));
        }
        let spec = QosSpec { id: resource_id(), name, consumer, specs, volume_type_ids: Vec::new() };
        let view = detail(&cloud, &ctx, &spec);
        w.qos_specs.insert(spec.id.clone(), spec);
        Ok(Json(view))
    })
}

/// `PUT /qos-specs/{id}`: adds or replaces keys (`consumer` changes the consumer) and answers
/// with the keys given.
async fn set_keys(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let mut map = body_object(&body, "qos_specs")?;
    let given = map.clone();
    let consumer = match map.remove("consumer") {
        None => None,
        Some(Value::String(c)) => Some(c),
        Some(other) => Some(other.to_string()),
    };
    if let Some(consumer) = &consumer {
        check_consumer(consumer)?;
    }
    let specs = parse_specs(&map)?;
    cloud.write(F, |w| {
        let spec = find_mut(w, &id)?;
        if let Some(consumer) = consumer {
            spec.consumer = consumer;
        }
        spec.specs.extend(specs);
        Ok(Json(json!({ "qos_specs": given })))
    })
}

/// `PUT /qos-specs/{id}/delete_keys` with `{"keys": [...]}`; a key the specs lack is a 404.
async fn unset_keys(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:qos_specs_manage:delete_keys")?;
    let value = body_value(&body)?;
    let Some(keys) = value.get("keys").and_then(Value::as_array) else {
        return Err(bad("Missing required element 'keys' in request body."));
    };
    let keys: Vec<String> = keys
        .iter()
        .map(|k| {
            k.as_str().map(str::to_string).ok_or_else(|| {
                bad(format!(
                    "Invalid input for field/attribute keys. Value: {k}. {k} is not of type 'string'"
                ))
            })
        })
        .collect::<ApiResult<_>>()?;
    cloud.write(F, |w| {
        let spec = find_mut(w, &id)?;
        if let Some(missing) = keys.iter().find(|k| !spec.specs.contains_key(*k)) {
            return Err(ApiError::not_found(F, format!("QoS spec {missing} not found in {id}.")));
        }
        for key in &keys {
            spec.specs.remove(key);
        }
        Ok(StatusCode::ACCEPTED)
    })
}

#[derive(Deserialize)]
struct ForceQuery {
    #[serde(default)]
    force: Option<String>,
}

/// `DELETE /qos-specs/{id}[?force=True]`: refused with 400 while associated, unless forced.
async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<ForceQuery>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:qos_specs_manage:delete")?;
    let force = query.force.as_deref().and_then(|f| super::parse_bool(&json!(f))).unwrap_or(false);
    cloud.write(F, |w| {
        let in_use = live_types(w, find(w, &id)?).next().is_some();
        if in_use && !force {
            return Err(bad(format!("QoS Specs {id} is still associated with entities.")));
        }
        w.qos_specs.remove(&id);
        Ok(StatusCode::ACCEPTED)
    })
}

/// The associated types that still exist (a deleted type drops out of the association).
fn live_types<'a>(w: &'a World, spec: &'a QosSpec) -> impl Iterator<Item = &'a crate::model::VolumeType> {
    spec.volume_type_ids.iter().filter_map(|t| w.volume_types.get(t))
}

async fn associations(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:qos_specs_manage:get")?;
    cloud.read(|w| {
        let list: Vec<Value> = live_types(w, find(w, &id)?)
            .map(|t| json!({"association_type": "volume_type", "name": t.name, "id": t.id}))
            .collect();
        Ok(Json(json!({ "qos_associations": list })))
    })
}

#[derive(Deserialize)]
struct TypeQuery {
    #[serde(default)]
    vol_type_id: Option<String>,
}

fn type_id(query: TypeQuery) -> ApiResult<String> {
    query.vol_type_id.filter(|t| !t.is_empty()).ok_or_else(|| bad("Volume Type id must not be None."))
}

/// `GET /qos-specs/{id}/associate?vol_type_id=`: a type carries at most one set of specs.
async fn associate(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<TypeQuery>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let type_id = type_id(query)?;
    cloud.write(F, |w| {
        find(w, &id)?;
        if !w.volume_types.contains_key(&type_id) {
            return Err(super::not_found("Volume type", &type_id));
        }
        if let Some(other) = w.qos_specs.values().find(|q| q.id != id && q.volume_type_ids.contains(&type_id))
        {
            return Err(bad(format!(
                "Invalid volume type: Type {type_id} is already associated with another qos specs: {}",
                other.id
            )));
        }
        let spec = find_mut(w, &id)?;
        if !spec.volume_type_ids.contains(&type_id) {
            spec.volume_type_ids.push(type_id);
        }
        Ok(StatusCode::ACCEPTED)
    })
}

async fn disassociate(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<TypeQuery>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    let type_id = type_id(query)?;
    cloud.write(F, |w| {
        if !w.volume_types.contains_key(&type_id) {
            return Err(super::not_found("Volume type", &type_id));
        }
        find_mut(w, &id)?.volume_type_ids.retain(|t| *t != type_id);
        Ok(StatusCode::ACCEPTED)
    })
}

async fn disassociate_all(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:qos_specs_manage:update")?;
    cloud.write(F, |w| {
        find_mut(w, &id)?.volume_type_ids.clear();
        Ok(StatusCode::ACCEPTED)
    })
}
