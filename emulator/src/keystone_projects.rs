//! The bit of Keystone's admin API that tempest's Cinder tests reach for: listing domains
//! (by name) and creating and deleting projects, admin only, as Keystone's default policy has
//! it. A project made here has no users; it exists so that quotas and defaults can be asked
//! about a fresh project id.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde_json::{Value, json};

use super::IDENTITY_PREFIX;
use super::bootstrap::keystone_id;
use super::errors::{ApiError, ApiResult, Family};
use super::keystone;
use super::model::Project;
use super::store::Cloud;

const F: Family = Family::Identity;

/// The routes.
pub fn router() -> Router<Cloud> {
    Router::new()
        .route("/identity/v3/domains", get(list_domains))
        .route("/identity/v3/projects", axum::routing::post(create_project))
        .route("/identity/v3/projects/{project_id}", delete(delete_project))
}

fn require_admin(cloud: &Cloud, headers: &HeaderMap, action: &str) -> ApiResult<()> {
    let auth = keystone::authenticate(cloud, headers)?;
    if auth.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            F,
            format!("You are not authorized to perform the requested action: {action}."),
        ))
    }
}

fn project_view(cloud: &Cloud, p: &Project, description: &str) -> Value {
    json!({
        "id": p.id, "name": p.name, "domain_id": p.domain_id, "description": description,
        "enabled": true, "parent_id": p.domain_id, "is_domain": false, "tags": [], "options": {},
        "links": {"self": format!("{}{IDENTITY_PREFIX}/v3/projects/{}", cloud.base_url(), p.id)},
    })
}

async fn list_domains(
    State(cloud): State<Cloud>,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    require_admin(&cloud, &headers, "identity:list_domains")?;
    let name = query.iter().rev().find(|(k, _)| k == "name").map(|(_, v)| v.clone());
    let base = cloud.base_url();
    let domains: Vec<Value> = cloud.read(|w| {
        w.domains
            .values()
            .filter(|d| name.as_ref().is_none_or(|n| *n == d.name))
            .map(|d| {
                json!({"id": d.id, "name": d.name, "description": "", "enabled": true, "tags": [], "options": {},
                       "links": {"self": format!("{base}{IDENTITY_PREFIX}/v3/domains/{}", d.id)}})
            })
            .collect()
    });
    Ok(Json(json!({
        "domains": domains,
        "links": {"self": format!("{base}{IDENTITY_PREFIX}/v3/domains"), "previous": null, "next": null},
    })))
}

/// `POST /v3/projects`: 201; a name taken in the domain is a 409.
async fn create_project(State(cloud): State<Cloud>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    require_admin(&cloud, &headers, "identity:create_project")?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request(F, "Malformed request body"))?;
    let project = &body["project"];
    let name = match project.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 64 && !n.contains('\0') => {
            n.clone()
        }
        _ => {
            return Err(ApiError::bad_request(
                F,
                "Invalid input for field 'name': a project name is 1 to 64 characters.",
            ));
        }
    };
    let description = project.get("description").and_then(Value::as_str).unwrap_or_default().to_string();
    let domain_id = project.get("domain_id").and_then(Value::as_str).unwrap_or("default").to_string();
    cloud.write(F, |w| {
        if !w.domains.contains_key(&domain_id) {
            return Err(ApiError::bad_request(F, format!("Could not find domain: {domain_id}.")));
        }
        if w.projects.values().any(|p| p.name == name && p.domain_id == domain_id) {
            return Err(ApiError::conflict(
                F,
                format!("Conflict occurred attempting to store project - it is not permitted to have two projects with the same name in the same domain : {name}."),
            ));
        }
        let p = Project { id: keystone_id(), name, domain_id };
        let view = project_view(&cloud, &p, &description);
        w.projects.insert(p.id.clone(), p);
        Ok((StatusCode::CREATED, Json(json!({ "project": view }))).into_response())
    })
}

/// `DELETE /v3/projects/{id}`: 204; the project's volumes are left alone, as Keystone leaves
/// other services' resources.
async fn delete_project(
    State(cloud): State<Cloud>,
    headers: HeaderMap,
    Path(project_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_admin(&cloud, &headers, "identity:delete_project")?;
    cloud.write(F, |w| {
        if w.users.values().any(|u| {
            u.roles.contains_key(&project_id) || u.default_project_id.as_deref() == Some(&project_id)
        }) {
            return Err(ApiError::forbidden(F, "The emulator keeps the projects its users log in to."));
        }
        w.projects
            .remove(&project_id)
            .map(|_| StatusCode::NO_CONTENT)
            .ok_or_else(|| ApiError::not_found(F, format!("Could not find project: {project_id}.")))
    })
}
