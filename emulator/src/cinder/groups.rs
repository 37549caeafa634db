//! Generic volume groups (3.13), group types (3.11) and group snapshots (3.14, seed
//! cinder-v3-group-snapshots.rst).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Ctx, body_object, check_quota, not_found, opt_str, views};
use crate::bootstrap::{DEFAULT_GROUP_TYPE, resource_id};
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Group, GroupSnapshot, GroupType, Op, Pending};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;
const SORT_KEYS: &[&str] = &["id", "name", "status", "created_at"];

/// The group routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/group_types", get(group_types).post(create_group_type))
        .route("/volume/v3/{project_id}/group_types/{group_type_id}", get(group_type))
        .route("/volume/v3/{project_id}/groups", get(list_groups).post(create_group))
        .route("/volume/v3/{project_id}/groups/detail", get(list_groups_detail))
        .route("/volume/v3/{project_id}/groups/{group_id}", get(show_group).put(update_group))
        .route("/volume/v3/{project_id}/groups/{group_id}/action", post(group_action))
        .route("/volume/v3/{project_id}/group_snapshots", get(list_snapshots).post(create_snapshot))
        .route("/volume/v3/{project_id}/group_snapshots/detail", get(list_snapshots_detail))
        .route(
            "/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}",
            get(show_snapshot).delete(delete_snapshot),
        )
        .route("/volume/v3/{project_id}/group_snapshots/{group_snapshot_id}/action", post(snapshot_action))
}

/// A group or group snapshot as Cinder shows it: no `links`, and its `project_id` only from
/// 3.58 on.
fn shaped(mut view: Value, ctx: &Ctx) -> Value {
    if let Some(object) = view.as_object_mut() {
        object.remove("links");
        if !ctx.version.at_least(3, 58) {
            object.remove("project_id");
        }
    }
    view
}

fn gate(ctx: &Ctx, minor: u32) -> ApiResult<()> {
    if ctx.version.at_least(3, minor) {
        Ok(())
    } else {
        Err(ApiError::not_found(F, "The resource could not be found."))
    }
}

use super::group_types::view as group_type_view;

async fn group_types(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 11)?;
    let wanted = super::type_filters::is_public(&query, ctx.auth.is_admin())?;
    let mut views: Vec<Value> = cloud.read(|w| {
        w.group_types
            .values()
            .filter(|t| wanted.is_none_or(|p| t.is_public == p))
            .map(group_type_view)
            .collect()
    });
    super::type_filters::sort(&mut views, &query)?;
    Ok(Json(json!({"group_types": views})))
}

async fn group_type(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 11)?;
    cloud.read(|w| {
        // As in Cinder, `default` is the group type named by the default_group_type option
        // (here the bootstrapped one), not a type called "default".
        let t = if id == "default" {
            find_group_type(w, DEFAULT_GROUP_TYPE)
                .ok_or_else(|| ApiError::not_found(F, "Default group type can not be found."))?
        } else {
            find_group_type(w, &id).ok_or_else(|| not_found("Group type", &id))?
        };
        Ok(Json(json!({"group_type": group_type_view(t)})))
    })
}

fn find_group_type<'a>(w: &'a World, name_or_id: &str) -> Option<&'a GroupType> {
    w.group_types.get(name_or_id).or_else(|| w.group_types.values().find(|t| t.name == name_or_id))
}

async fn create_group_type(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    gate(&ctx, 11)?;
    ctx.require_admin("group:group_types_manage")?;
    let map = body_object(&body, "group_type")?;
    let name = opt_str(&map, "name")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute name."))?;
    let description = opt_str(&map, "description")?;
    let specs = super::opt_metadata(&map, "group_specs")?.unwrap_or_default();
    let is_public = super::opt_bool(&map, "is_public")?.unwrap_or(true);
    cloud.write(F, |w| {
        if w.group_types.values().any(|t| t.name == name) {
            return Err(ApiError::conflict(F, format!("Group Type {name} already exists.")));
        }
        let t = GroupType {
            id: resource_id(),
            name: name.clone(),
            description: description.clone(),
            is_public,
            group_specs: specs.clone(),
        };
        w.group_types.insert(t.id.clone(), t.clone());
        // Cinder answers a group type create with 202, unlike a volume type create.
        Ok((StatusCode::ACCEPTED, Json(json!({"group_type": group_type_view(&t)}))).into_response())
    })
}

fn find_group<'a>(w: &'a mut World, ctx: &Ctx, id: &str) -> ApiResult<&'a mut Group> {
    w.stores
        .get_mut(&ctx.auth.project_id)
        .and_then(|s| s.groups.get_mut(id))
        .ok_or_else(|| not_found("Group", id))
}

async fn create_group(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    gate(&ctx, 13)?;
    let map = body_object(&body, "group")?;
    let group_type = opt_str(&map, "group_type")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute group_type."))?;
    let volume_types: Vec<String> = map
        .get("volume_types")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .filter(|v: &Vec<String>| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute volume_types."))?;
    let name = opt_str(&map, "name")?.unwrap_or_default();
    let description = opt_str(&map, "description")?;
    let zone = opt_str(&map, "availability_zone")?;
    let view = cloud.write(F, |w| {
        let group_type_id = find_group_type(w, &group_type)
            .map(|t| t.id.clone())
            .ok_or_else(|| not_found("Group type", &group_type))?;
        let mut type_ids = Vec::new();
        for t in &volume_types {
            type_ids.push(
                super::type_access::visible(w, &ctx, t)
                    .map(|t| t.id.clone())
                    .ok_or_else(|| not_found("Volume type", t))?,
            );
        }
        let zone = zone.clone().unwrap_or_else(|| w.availability_zones[0].clone());
        if !w.availability_zones.contains(&zone) {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid input received: Availability zone '{zone}' is invalid."),
            ));
        }
        check_quota(w, &ctx.auth.project_id, &[("groups".into(), 1)])?;
        let id = resource_id();
        let group = Group {
            id: id.clone(),
            project_id: ctx.auth.project_id.clone(),
            name: name.clone(),
            description: description.clone(),
            group_type_id,
            volume_type_ids: type_ids,
            availability_zone: zone,
            status: "creating".into(),
            created_at_ms: now_ms(),
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("group.creating") }),
            source_group_id: None,
            group_snapshot_id: None,
        };
        w.store_mut(&ctx.auth.project_id).groups.insert(id.clone(), group);
        Ok(json!({"id": id, "name": name}))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"group": view}))).into_response())
}

async fn groups_listing(
    cloud: Cloud,
    ctx: Ctx,
    query: Vec<(String, String)>,
    path: &str,
    detailed: bool,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 13)?;
    let list_volume = list_volume(&ctx, &query);
    // `list_volume` shapes the view; it is no filter.
    let filters: Vec<_> = query.iter().filter(|(k, _)| k != "list_volume").cloned().collect();
    let params = super::list::parse(&ctx, &filters, &["name", "status"], SORT_KEYS)?;
    let items = cloud.read(|w| {
        w.stores
            .get(&ctx.auth.project_id)
            .map(|s| {
                s.groups.values().map(|g| shaped(views::group(&cloud, w, g, list_volume), &ctx)).collect()
            })
            .unwrap_or_default()
    });
    let page = super::list::apply(items, &params, "group")?;
    let url = views::collection_url(&cloud, &ctx.auth.project_id, path);
    Ok(Json(super::list::respond("groups", &url, &query, &params, page, |v| {
        if detailed { v.clone() } else { json!({"id": v["id"], "name": v["name"]}) }
    })))
}

async fn list_groups(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    groups_listing(cloud, ctx, query, "groups", false).await
}

async fn list_groups_detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    groups_listing(cloud, ctx, query, "groups/detail", true).await
}

/// Whether a group view lists its volumes: `list_volume=True` from 3.25 on.
fn list_volume(ctx: &Ctx, query: &[(String, String)]) -> bool {
    ctx.version.at_least(3, 25)
        && query.iter().any(|(k, v)| k == "list_volume" && super::parse_bool(&json!(v)) == Some(true))
}

async fn show_group(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 13)?;
    let list_volume = list_volume(&ctx, &query);
    cloud.read(|w| {
        let group = w
            .stores
            .get(&ctx.auth.project_id)
            .and_then(|s| s.groups.get(&id))
            .ok_or_else(|| not_found("Group", &id))?;
        Ok(Json(json!({"group": shaped(views::group(&cloud, w, group, list_volume), &ctx)})))
    })
}

fn id_list(text: Option<String>) -> Vec<String> {
    text.map(|t| t.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

async fn update_group(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    gate(&ctx, 13)?;
    let map = body_object(&body, "group")?;
    let name = opt_str(&map, "name")?;
    let description = opt_str(&map, "description")?;
    let add = id_list(opt_str(&map, "add_volumes")?);
    let remove = id_list(opt_str(&map, "remove_volumes")?);
    cloud.write(F, |w| {
        let group = find_group(w, &ctx, &id)?.clone();
        if group.status != "available" {
            return Err(ApiError::bad_request(F, format!("Invalid group: Group {id} status must be available, but current status is: {}.", group.status)));
        }
        for vid in &add {
            let volume = super::volumes::find(w, &ctx, vid)?;
            if !group.volume_type_ids.contains(&volume.volume_type_id) || volume.group_id.is_some() {
                return Err(ApiError::bad_request(F, format!("Invalid volume: Cannot add volume {vid} to group {id}: its type is not supported by the group or it is in another group.")));
            }
        }
        for vid in &add {
            super::volumes::find_mut(w, &ctx, vid)?.group_id = Some(id.clone());
        }
        for vid in &remove {
            let volume = super::volumes::find_mut(w, &ctx, vid)?;
            if volume.group_id.as_deref() == Some(id.as_str()) {
                volume.group_id = None;
            }
        }
        let group = find_group(w, &ctx, &id)?;
        if let Some(n) = name {
            group.name = n;
        }
        if map.contains_key("description") {
            group.description = description;
        }
        Ok(StatusCode::ACCEPTED)
    })
}

async fn group_action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    gate(&ctx, 13)?;
    let value = super::body_value(&body)?;
    if let Some(args) = value.get("delete") {
        let delete_volumes = args.get("delete-volumes").and_then(super::parse_bool).unwrap_or(false);
        return cloud.write(F, |w| {
            let store = w.store_mut(&ctx.auth.project_id);
            let group = store.groups.get(&id).cloned().ok_or_else(|| not_found("Group", &id))?;
            if !["available", "error"].contains(&group.status.as_str()) {
                return Err(ApiError::bad_request(
                    F,
                    format!(
                        "Invalid group: Group status must be available or error, but current status is: {}",
                        group.status
                    ),
                ));
            }
            let members: Vec<String> = store
                .volumes
                .values()
                .filter(|v| v.group_id.as_deref() == Some(id.as_str()))
                .map(|v| v.id.clone())
                .collect();
            if !members.is_empty() && !delete_volumes {
                return Err(ApiError::bad_request(
                    F,
                    "Invalid group: Group still has volumes; use delete-volumes.",
                ));
            }
            if store.group_snapshots.values().any(|g| g.group_id == id) {
                return Err(ApiError::bad_request(F, "Invalid group: Group has existing snapshots."));
            }
            for vid in &members {
                let v = &store.volumes[vid];
                if !v.attachments.is_empty() || store.snapshots.values().any(|s| &s.volume_id == vid) {
                    return Err(ApiError::bad_request(
                        F,
                        format!("Invalid volume: Volume {vid} in the group is attached or has snapshots."),
                    ));
                }
            }
            for vid in members {
                let v = store.volumes.get_mut(&vid).expect("member");
                v.status = "deleting".into();
                v.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("volume.deleting") });
            }
            let group = store.groups.get_mut(&id).expect("found");
            group.status = "deleting".into();
            group.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("group.deleting") });
            Ok(StatusCode::ACCEPTED)
        });
    }
    if let Some(args) = value.get("reset_status") {
        let status = args.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
        ctx.require_admin("group:reset_status")?;
        // Cinder's GroupStatus values; anything else is refused before the lookup.
        if !["available", "creating", "deleting", "error", "error_deleting", "in-use", "updating"]
            .contains(&status.as_str())
        {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid input received: Invalid status: {status}"),
            ));
        }
        return cloud.write(F, |w| {
            // The admin acts on any project's group, as Cinder's admin context reads them all.
            let group = w
                .stores
                .values_mut()
                .find_map(|s| s.groups.get_mut(&id))
                .ok_or_else(|| not_found("Group", &id))?;
            group.status = status;
            group.pending = None;
            Ok(StatusCode::ACCEPTED)
        });
    }
    Err(ApiError::bad_request(F, "There is no such action"))
}

async fn create_snapshot(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    gate(&ctx, 14)?;
    let map = body_object(&body, "group_snapshot")?;
    let group_id = opt_str(&map, "group_id")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute group_id."))?;
    let name = opt_str(&map, "name")?.unwrap_or_default();
    let description = opt_str(&map, "description")?;
    let view = cloud.write(F, |w| {
        let group = find_group(w, &ctx, &group_id)?.clone();
        if group.status != "available" {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Invalid group: Group {group_id} status must be available, but current status is: {}.",
                    group.status
                ),
            ));
        }
        let members: Vec<String> = w.stores[&ctx.auth.project_id]
            .volumes
            .values()
            .filter(|v| v.group_id.as_deref() == Some(group_id.as_str()))
            .map(|v| v.id.clone())
            .collect();
        for vid in &members {
            let status = &w.stores[&ctx.auth.project_id].volumes[vid].status;
            if status != "available" && status != "in-use" {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid volume: Volume {vid} status must be available or in-use."),
                ));
            }
        }
        let id = resource_id();
        for vid in &members {
            super::snapshots::take(
                &cloud,
                w,
                &ctx,
                vid,
                format!("group-snapshot-{id}"),
                None,
                Default::default(),
                Some(id.clone()),
            )?;
        }
        let gs = GroupSnapshot {
            id: id.clone(),
            project_id: ctx.auth.project_id.clone(),
            name: name.clone(),
            description: description.clone(),
            group_id: group_id.clone(),
            group_type_id: group.group_type_id.clone(),
            status: "creating".into(),
            created_at_ms: now_ms(),
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("group_snapshot.creating") }),
        };
        w.store_mut(&ctx.auth.project_id).group_snapshots.insert(id.clone(), gs);
        Ok(json!({"id": id, "name": name, "group_type_id": group.group_type_id}))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"group_snapshot": view}))).into_response())
}

async fn snapshots_listing(
    cloud: Cloud,
    ctx: Ctx,
    query: Vec<(String, String)>,
    path: &str,
    detailed: bool,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 14)?;
    let params = super::list::parse(&ctx, &query, &["name", "status", "group_id"], SORT_KEYS)?;
    let items = cloud.read(|w| {
        w.stores
            .iter()
            .filter(|(p, _)| params.all_tenants || **p == ctx.auth.project_id)
            .flat_map(|(_, s)| s.group_snapshots.values())
            .map(|g| shaped(views::group_snapshot(&cloud, g), &ctx))
            .collect::<Vec<_>>()
    });
    let page = super::list::apply(items, &params, "group_snapshot")?;
    let url = views::collection_url(&cloud, &ctx.auth.project_id, path);
    Ok(Json(super::list::respond("group_snapshots", &url, &query, &params, page, |v| {
        if detailed { v.clone() } else { json!({"id": v["id"], "name": v["name"]}) }
    })))
}

async fn list_snapshots(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    snapshots_listing(cloud, ctx, query, "group_snapshots", false).await
}

async fn list_snapshots_detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    snapshots_listing(cloud, ctx, query, "group_snapshots/detail", true).await
}

async fn show_snapshot(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&ctx, 14)?;
    cloud.read(|w| {
        let gs = w
            .stores
            .get(&ctx.auth.project_id)
            .and_then(|s| s.group_snapshots.get(&id))
            .ok_or_else(|| not_found("GroupSnapshot", &id))?;
        Ok(Json(json!({"group_snapshot": shaped(views::group_snapshot(&cloud, gs), &ctx)})))
    })
}

async fn delete_snapshot(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    gate(&ctx, 14)?;
    cloud.write(F, |w| {
        let store = w.store_mut(&ctx.auth.project_id);
        let gs = store.group_snapshots.get(&id).cloned().ok_or_else(|| not_found("GroupSnapshot", &id))?;
        if gs.status != "available" && gs.status != "error" {
            return Err(ApiError::bad_request(F, format!("Invalid GroupSnapshot: Group snapshot status must be available or error, and no Group can be currently using it as source for its creation, but current status is: {}.", gs.status)));
        }
        for s in store.snapshots.values_mut().filter(|s| s.group_snapshot_id.as_deref() == Some(id.as_str())) {
            s.status = "deleting".into();
            s.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
        }
        let gs = store.group_snapshots.get_mut(&id).expect("found");
        gs.status = "deleting".into();
        gs.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("group_snapshot.deleting") });
        Ok(StatusCode::ACCEPTED)
    })
}

async fn snapshot_action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    gate(&ctx, 19)?;
    let value = super::body_value(&body)?;
    let Some(args) = value.get("reset_status") else {
        return Err(ApiError::bad_request(F, "There is no such action"));
    };
    ctx.require_admin("group:reset_group_snapshot_status")?;
    let status = args.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
    if !["creating", "available", "deleting", "error", "error_deleting"].contains(&status.as_str()) {
        return Err(ApiError::bad_request(F, format!("Invalid input received: Invalid status: {status}")));
    }
    cloud.write(F, |w| {
        // Admin only (checked above), on any project's group snapshot.
        let gs = w
            .stores
            .values_mut()
            .find_map(|s| s.group_snapshots.get_mut(&id))
            .ok_or_else(|| not_found("GroupSnapshot", &id))?;
        gs.status = status;
        gs.pending = None;
        Ok(StatusCode::ACCEPTED)
    })
}
