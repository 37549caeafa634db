//! Volume types and their extra specs (admin to change), and the default type.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, body_object, not_found, opt_bool, opt_metadata, opt_str, views};
use crate::bootstrap::resource_id;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::VolumeType;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The volume type routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/types", get(list).post(create))
        .route("/volume/v3/{project_id}/types/default", get(default_type))
        .route("/volume/v3/{project_id}/types/{type_id}", get(show).put(update).delete(delete))
        .route("/volume/v3/{project_id}/types/{type_id}/extra_specs", get(specs).post(add_specs))
        .route(
            "/volume/v3/{project_id}/types/{type_id}/extra_specs/{key}",
            get(spec).put(set_spec).delete(delete_spec),
        )
}

fn find<'a>(w: &'a World, id: &str) -> ApiResult<&'a VolumeType> {
    w.volume_type(id).ok_or_else(|| not_found("Volume type", id))
}

/// A type the caller may see: another project's private type is not found.
fn find_visible<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a VolumeType> {
    super::type_access::visible(w, ctx, id).ok_or_else(|| not_found("Volume type", id))
}

fn find_mut<'a>(w: &'a mut World, id: &str) -> ApiResult<&'a mut VolumeType> {
    let id = find(w, id)?.id.clone();
    Ok(w.volume_types.get_mut(&id).expect("found above"))
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let admin = ctx.auth.is_admin();
    // Cinder: public types plus those shared with the caller's project; an admin may ask for
    // only private ones (`is_public=false`) or all (`is_public=None`).
    let wanted = super::type_filters::is_public(&query, admin)?;
    let project = &ctx.auth.project_id;
    let mut types: Vec<Value> = cloud.read(|w| {
        w.volume_types
            .values()
            .filter(|t| match wanted {
                None => true,
                Some(true) => t.is_public || t.projects.contains(project),
                Some(false) => !t.is_public,
            })
            .map(|t| views::volume_type_shown(w, t, admin))
            .collect()
    });
    super::type_filters::sort(&mut types, &query)?;
    Ok(Json(json!({"volume_types": types})))
}

async fn default_type(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let t = find(w, &super::default_types::for_project(w, &ctx.auth.project_id))?;
        Ok(Json(json!({"volume_type": views::volume_type_shown(w, t, ctx.auth.is_admin())})))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let t = find_visible(w, &ctx, &id)?;
        Ok(Json(json!({"volume_type": views::volume_type_shown(w, t, ctx.auth.is_admin())})))
    })
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:types_manage")?;
    let map = body_object(&body, "volume_type")?;
    let name = opt_str(&map, "name")?.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request(
            F,
            "Invalid input for field/attribute name. Value: None. None is not of type 'string'",
        )
    })?;
    let description = opt_str(&map, "description")?;
    let is_public = opt_bool(&map, "os-volume-type-access:is_public")?.unwrap_or(true);
    let extra_specs = opt_metadata(&map, "extra_specs")?.unwrap_or_default();
    cloud.write(F, |w| {
        if w.volume_types.values().any(|t| t.name == name) {
            return Err(ApiError::conflict(F, format!("Volume Type {name} already exists.")));
        }
        let t = VolumeType {
            id: resource_id(),
            name: name.clone(),
            description: description.clone(),
            is_public,
            extra_specs: extra_specs.clone(),
            projects: Default::default(),
            encryption: None,
        };
        w.volume_types.insert(t.id.clone(), t.clone());
        Ok(Json(json!({"volume_type": views::volume_type_created(views::volume_type(&t, true))})))
    })
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:types_manage")?;
    let map = body_object(&body, "volume_type")?;
    let name = opt_str(&map, "name")?;
    let description = opt_str(&map, "description")?;
    let is_public = opt_bool(&map, "is_public")?;
    cloud.write(F, |w| {
        if let Some(n) = &name
            && w.volume_types.values().any(|t| &t.name == n && t.id != id)
        {
            return Err(ApiError::conflict(F, format!("Volume Type {n} already exists.")));
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
        Ok(Json(json!({"volume_type": views::volume_type_updated(views::volume_type(t, true))})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:types_manage")?;
    cloud.write(F, |w| {
        let t = find(w, &id)?.clone();
        if t.id == w.default_volume_type_id {
            return Err(ApiError::bad_request(
                F,
                "Invalid volume type: Default volume type can not be deleted.",
            ));
        }
        if w.stores.values().any(|s| s.volumes.values().any(|v| v.volume_type_id == t.id)) {
            return Err(ApiError::bad_request(F, "Target volume type is still in use."));
        }
        w.volume_types.remove(&t.id);
        Ok(StatusCode::ACCEPTED)
    })
}

async fn specs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"extra_specs": find_visible(w, &ctx, &id)?.extra_specs}))))
}

async fn add_specs(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:types_extra_specs:create")?;
    let new = super::metadata::parse_metadata(&body).or_else(|_| {
        let value = super::body_value(&body)?;
        opt_metadata(value.as_object().unwrap_or(&Default::default()), "extra_specs")?.ok_or_else(|| {
            ApiError::bad_request(F, "Missing required element 'extra_specs' in request body.")
        })
    })?;
    cloud.write(F, |w| {
        let t = find_mut(w, &id)?;
        t.extra_specs.extend(new.clone());
        Ok(Json(json!({"extra_specs": new})))
    })
}

async fn spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let value = find_visible(w, &ctx, &id)?.extra_specs.get(&key).cloned().ok_or_else(|| {
            ApiError::not_found(F, format!("Volume Type {id} has no extra specs with key {key}."))
        })?;
        Ok(Json(json!({ key: value })))
    })
}

async fn set_spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:types_extra_specs:update")?;
    let value = super::body_value(&body)?;
    let map = value.as_object().cloned().unwrap_or_default();
    if map.len() != 1 || !map.contains_key(&key) {
        return Err(ApiError::bad_request(F, "Request body and URI mismatch"));
    }
    let spec = opt_str(&map, &key)?.unwrap_or_default();
    cloud.write(F, |w| {
        find_mut(w, &id)?.extra_specs.insert(key.clone(), spec.clone());
        Ok(Json(json!({ key: spec })))
    })
}

async fn delete_spec(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:types_extra_specs:delete")?;
    cloud.write(F, |w| {
        find_mut(w, &id)?.extra_specs.remove(&key).ok_or_else(|| {
            ApiError::not_found(F, format!("Volume Type {id} has no extra specs with key {key}."))
        })?;
        Ok(StatusCode::ACCEPTED)
    })
}
