//! Group type administration (3.11): update, delete and group specs, answering with the codes
//! Cinder's group types API uses (202 for create, delete and specs create, 200 otherwise).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::{Ctx, body_object, body_value, not_found, opt_bool, opt_metadata, opt_str};
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::GroupType;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The group type administration routes (the list, show and create live in `groups`).
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/group_types/{group_type_id}", put(update).delete(delete))
        .route("/volume/v3/{project_id}/group_types/{group_type_id}/group_specs", get(specs).post(add_specs))
        .route(
            "/volume/v3/{project_id}/group_types/{group_type_id}/group_specs/{key}",
            get(spec).put(set_spec).delete(delete_spec),
        )
}

fn gate(ctx: &Ctx) -> ApiResult<()> {
    if ctx.version.at_least(3, 11) {
        Ok(())
    } else {
        Err(ApiError::not_found(F, "The resource could not be found."))
    }
}

/// The group type view, as every group type answer carries it.
pub fn view(t: &GroupType) -> Value {
    json!({"id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public, "group_specs": t.group_specs})
}

fn find_mut<'a>(w: &'a mut World, id: &str) -> ApiResult<&'a mut GroupType> {
    w.group_types.get_mut(id).ok_or_else(|| not_found("Group type", id))
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_manage")?;
    let map = body_object(&body, "group_type")?;
    let name = opt_str(&map, "name")?;
    let description = opt_str(&map, "description")?;
    let is_public = opt_bool(&map, "is_public")?;
    if name.is_none() && !map.contains_key("description") && is_public.is_none() {
        return Err(ApiError::bad_request(
            F,
            "Invalid input received: Specify group type name, description or a combination thereof.",
        ));
    }
    if name.as_deref().is_some_and(|n| n.trim().is_empty() || n.len() > 255) {
        return Err(ApiError::bad_request(F, "Invalid input for field/attribute name."));
    }
    cloud.write(F, |w| {
        if let Some(n) = &name
            && w.group_types.values().any(|t| &t.name == n && t.id != id)
        {
            return Err(ApiError::conflict(F, format!("Group Type {n} already exists.")));
        }
        let t = find_mut(w, &id)?;
        if let Some(n) = name {
            t.name = n;
        }
        if map.contains_key("description") {
            t.description = description;
        }
        if let Some(p) = is_public {
            t.is_public = p;
        }
        Ok(Json(json!({"group_type": view(t)})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_manage")?;
    cloud.write(F, |w| {
        let t = w.group_types.get(&id).cloned().ok_or_else(|| not_found("Group type", &id))?;
        if w.stores.values().any(|s| s.groups.values().any(|g| g.group_type_id == t.id)) {
            return Err(ApiError::bad_request(
                F,
                format!("Group Type {id} deletion is not allowed with groups present with the type."),
            ));
        }
        w.group_types.remove(&t.id);
        Ok(StatusCode::ACCEPTED)
    })
}

async fn specs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_specs")?;
    cloud.read(|w| {
        let t = w.group_types.get(&id).ok_or_else(|| not_found("Group type", &id))?;
        Ok(Json(json!({"group_specs": t.group_specs})))
    })
}

async fn add_specs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_specs")?;
    let value = body_value(&body)?;
    let new = opt_metadata(value.as_object().unwrap_or(&Default::default()), "group_specs")?
        .ok_or_else(|| ApiError::bad_request(F, "Missing required element 'group_specs' in request body."))?;
    cloud.write(F, |w| {
        find_mut(w, &id)?.group_specs.extend(new.clone());
        Ok((StatusCode::ACCEPTED, Json(json!({"group_specs": new}))).into_response())
    })
}

fn no_spec(id: &str, key: &str) -> ApiError {
    ApiError::not_found(F, format!("Group Type {id} has no specs with key {key}."))
}

async fn spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_specs")?;
    cloud.read(|w| {
        let t = w.group_types.get(&id).ok_or_else(|| not_found("Group type", &id))?;
        let value = t.group_specs.get(&key).cloned().ok_or_else(|| no_spec(&id, &key))?;
        Ok(Json(json!({ key: value })))
    })
}

async fn set_spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_specs")?;
    let value = body_value(&body)?;
    let map = value.as_object().cloned().unwrap_or_default();
    if map.len() != 1 || !map.contains_key(&key) {
        return Err(ApiError::bad_request(F, "Request body and URI mismatch"));
    }
    let spec = opt_str(&map, &key)?.unwrap_or_default();
    cloud.write(F, |w| {
        find_mut(w, &id)?.group_specs.insert(key.clone(), spec.clone());
        Ok(Json(json!({ key: spec })))
    })
}

async fn delete_spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    gate(&ctx)?;
    ctx.require_admin("group:group_types_specs")?;
    cloud.write(F, |w| {
        find_mut(w, &id)?.group_specs.remove(&key).ok_or_else(|| no_spec(&id, &key))?;
        Ok(StatusCode::ACCEPTED)
    })
}
