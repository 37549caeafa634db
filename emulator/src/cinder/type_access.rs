//! Private volume types: who may see and use them (os-volume-type-access), and the admin verbs
//! that share a type with a project (`addProjectAccess` / `removeProjectAccess`).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Ctx, not_found};
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::VolumeType;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The type-access routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/types/{type_id}/os-volume-type-access", get(list))
        .route("/volume/v3/{project_id}/types/{type_id}/action", post(action))
}

/// A type by id or name, as the caller may see it: another project's private type is not there
/// (Cinder's type queries add the access filter for non-admins).
pub fn visible<'a>(w: &'a World, ctx: &Ctx, name_or_id: &str) -> Option<&'a VolumeType> {
    w.volume_type(name_or_id).filter(|t| t.visible_to(&ctx.auth.project_id, ctx.auth.is_admin()))
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:volume_type_access")?;
    cloud.read(|w| {
        let t = w.volume_types.get(&id).ok_or_else(|| not_found("Volume type", &id))?;
        if t.is_public {
            return Err(ApiError::not_found(F, "Access list not available for public volume types."));
        }
        let access: Vec<Value> =
            t.projects.iter().map(|p| json!({"volume_type_id": t.id, "project_id": p})).collect();
        Ok(Json(json!({"volume_type_access": access})))
    })
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let value = super::body_value(&body)?;
    let (add, args) = match (value.get("addProjectAccess"), value.get("removeProjectAccess")) {
        (Some(args), None) => (true, args),
        (None, Some(args)) => (false, args),
        _ => return Err(ApiError::bad_request(F, "There is no such action")),
    };
    ctx.require_admin(if add {
        "volume_extension:volume_type_access:addProjectAccess"
    } else {
        "volume_extension:volume_type_access:removeProjectAccess"
    })?;
    let project = args
        .get("project")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && p.len() <= 255)
        .ok_or_else(|| ApiError::bad_request(F, "Missing required element 'project' in request body."))?
        .to_string();
    cloud.write(F, |w| {
        if add && !w.projects.contains_key(&project) {
            // Cinder asks Keystone whether the project exists before sharing a type with it; by
            // id only, so a project name never ends up in the access list.
            return Err(ApiError::not_found(F, format!("Project ID {project} was not found.")));
        }
        let t = w.volume_types.get_mut(&id).ok_or_else(|| not_found("Volume type", &id))?;
        if t.is_public {
            return Err(ApiError::bad_request(
                F,
                "Invalid volume type: Type access modification is not applicable to public volume type.",
            ));
        }
        let pair = format!("{id} / {project}");
        if add {
            if !t.projects.insert(project.clone()) {
                return Err(ApiError::conflict(
                    F,
                    format!("Volume type access for {pair} combination already exists."),
                ));
            }
        } else if !t.projects.remove(&project) {
            return Err(ApiError::not_found(
                F,
                format!("Volume type access not found for {pair} combination."),
            ));
        }
        Ok(StatusCode::ACCEPTED)
    })
}
