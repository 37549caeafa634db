//! Per-project default volume types (3.62, admin): set, show, list, unset; a volume created
//! without a type in that project gets it, and `GET /types/default` names it.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, body_object, not_found, opt_str};
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The default-types routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/default-types", get(list))
        .route("/volume/v3/{project_id}/default-types/{target}", get(show).put(set).delete(unset))
}

/// The type a volume created in `project_id` without one gets.
pub fn for_project(w: &World, project_id: &str) -> String {
    w.project_default_types
        .get(project_id)
        .filter(|t| w.volume_types.contains_key(*t))
        .cloned()
        .unwrap_or_else(|| w.default_volume_type_id.clone())
}

fn gate(ctx: &Ctx, action: &str) -> ApiResult<()> {
    if !ctx.version.at_least(3, 62) {
        return Err(ApiError::not_found(F, "The resource could not be found."));
    }
    ctx.require_admin(action)
}

fn view(project_id: &str, type_id: &str) -> Value {
    json!({"project_id": project_id, "volume_type_id": type_id})
}

fn known_project(w: &World, project_id: &str) -> ApiResult<()> {
    // Ids only: a project name must not select another project's default.
    if w.projects.contains_key(project_id) {
        Ok(())
    } else {
        Err(ApiError::not_found(F, format!("Project ID {project_id} was not found.")))
    }
}

async fn set(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    gate(&ctx, "volume_extension:default_set_or_update")?;
    let map = body_object(&body, "default_type")?;
    let asked = opt_str(&map, "volume_type")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute volume_type."))?;
    cloud.write(F, |w| {
        known_project(w, &target)?;
        let type_id =
            w.volume_type(&asked).map(|t| t.id.clone()).ok_or_else(|| not_found("Volume type", &asked))?;
        w.project_default_types.insert(target.clone(), type_id.clone());
        Ok(Json(json!({"default_type": view(&target, &type_id)})))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&ctx, "volume_extension:default_get")?;
    cloud.read(|w| {
        let type_id = w.project_default_types.get(&target).ok_or_else(|| {
            ApiError::not_found(F, format!("Default type for project {target} could not be found."))
        })?;
        Ok(Json(json!({"default_type": view(&target, type_id)})))
    })
}

async fn list(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> ApiResult<Json<Value>> {
    gate(&ctx, "volume_extension:default_get_all")?;
    Ok(cloud.read(|w| {
        let all: Vec<Value> = w.project_default_types.iter().map(|(p, t)| view(p, t)).collect();
        Json(json!({"default_types": all}))
    }))
}

async fn unset(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    gate(&ctx, "volume_extension:default_unset")?;
    cloud.write(F, |w| {
        w.project_default_types.remove(&target).ok_or_else(|| {
            ApiError::not_found(F, format!("Default type for project {target} could not be found."))
        })?;
        Ok(StatusCode::NO_CONTENT)
    })
}
