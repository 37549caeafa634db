//! Snapshots: create (with `force` for in-use volumes before 3.66), show, list, detail,
//! update, delete, metadata, and the admin actions.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::metadata::{self, WithMetadata};
use super::{
    Ctx, body_object, check_quota, invalid_volume, not_found, opt_bool, opt_metadata, opt_str, views,
};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Metadata, Op, Pending, Snapshot};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;
/// Filters anyone may use: Cinder's default resource_filters.json for snapshots.
const FILTERS: &[&str] = &["name", "status", "volume_id", "metadata", "availability_zone", "consumes_quota"];
/// Cinder lets admins filter by any field; these are the ones the emulator can apply.
const ADMIN_FILTERS: &[&str] = &[
    "name",
    "status",
    "volume_id",
    "metadata",
    "availability_zone",
    "consumes_quota",
    "project_id",
    "group_snapshot_id",
];
const SORT_KEYS: &[&str] = &["id", "name", "status", "size", "created_at", "updated_at", "volume_id"];

/// The snapshot routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/snapshots", get(list).post(create))
        .route("/volume/v3/{project_id}/snapshots/detail", get(detail))
        .route("/volume/v3/{project_id}/snapshots/{snapshot_id}", get(show).put(update).delete(delete))
        .route("/volume/v3/{project_id}/snapshots/{snapshot_id}/action", post(action))
        .merge(metadata::routes::<Snapshots>("/volume/v3/{project_id}/snapshots/{snapshot_id}"))
}

/// Snapshots, for their metadata routes.
struct Snapshots;

impl WithMetadata for Snapshots {
    fn metadata<'w>(w: &'w World, ctx: &Ctx, id: &str) -> ApiResult<&'w Metadata> {
        find(w, ctx, id).map(|s| &s.metadata)
    }
    fn metadata_mut<'w>(w: &'w mut World, ctx: &Ctx, id: &str) -> ApiResult<&'w mut Metadata> {
        find_mut(w, ctx, id).map(|s| &mut s.metadata)
    }
}

fn find<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Snapshot> {
    w.stores
        .values()
        .find_map(|s| s.snapshots.get(id))
        .filter(|s| s.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Snapshot", id))
}

fn find_mut<'a>(w: &'a mut World, ctx: &Ctx, id: &str) -> ApiResult<&'a mut Snapshot> {
    w.stores
        .values_mut()
        .find_map(|s| s.snapshots.get_mut(id))
        .filter(|s| s.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Snapshot", id))
}

/// Takes a snapshot of a volume's data now and records it as `creating`.
#[allow(clippy::too_many_arguments)] // One call per field of the snapshot; a struct would only rename them.
pub fn take(
    cloud: &Cloud,
    w: &mut World,
    ctx: &Ctx,
    volume_id: &str,
    name: String,
    description: Option<String>,
    metadata: crate::model::Metadata,
    group_snapshot_id: Option<String>,
) -> ApiResult<Snapshot> {
    let volume = w.volume(volume_id).cloned().ok_or_else(|| not_found("Volume", volume_id))?;
    let type_name = w.volume_types.get(&volume.volume_type_id).map(|t| t.name.clone()).unwrap_or_default();
    check_quota(
        w,
        &volume.project_id,
        &[
            ("snapshots".into(), 1),
            ("gigabytes".into(), volume.size as i64),
            (format!("snapshots_{type_name}"), 1),
            (format!("gigabytes_{type_name}"), volume.size as i64),
        ],
    )?;
    let id = resource_id();
    sparse::copy(&cloud.volume_file(volume_id), &cloud.snapshot_file(&id), volume.size).map_err(|e| {
        tracing::error!(snapshot = %id, error = %e, "emulator: copying the snapshot data failed");
        ApiError::internal(F, "The snapshot's data could not be stored.")
    })?;
    let snapshot = Snapshot {
        id: id.clone(),
        project_id: volume.project_id.clone(),
        user_id: ctx.auth.user_id.clone(),
        name,
        description,
        volume_id: volume_id.to_string(),
        size: volume.size,
        status: "creating".into(),
        metadata,
        group_snapshot_id,
        created_at_ms: now_ms(),
        updated_at_ms: None,
        pending: Some(Pending { op: Op::Create, due_ms: cloud.due("snapshot.creating") }),
        extra: Default::default(),
    };
    w.store_mut(&volume.project_id).snapshots.insert(id, snapshot.clone());
    Ok(snapshot)
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    let map = body_object(&body, "snapshot")?;
    // An explicit null passes Cinder's schema (uuid or null) and then names no volume: 404.
    let volume_id = match map.get("volume_id") {
        Some(Value::Null) => return Err(not_found("Volume", "None")),
        _ => opt_str(&map, "volume_id")?.ok_or_else(|| {
            ApiError::bad_request(
                F,
                "Invalid input for field/attribute snapshot. 'volume_id' is a required property",
            )
        })?,
    };
    let force = opt_bool(&map, "force")?.unwrap_or(false);
    let name = opt_str(&map, "name")?.or(opt_str(&map, "display_name")?).unwrap_or_default();
    let description = opt_str(&map, "description")?.or(opt_str(&map, "display_description")?);
    let metadata = opt_metadata(&map, "metadata")?.unwrap_or_default();
    let view = cloud.write(F, |w| {
        let volume = super::volumes::find(w, &ctx, &volume_id)?.clone();
        let in_use_ok = force || ctx.version.at_least(3, 66);
        let ok = volume.status == "available" || (volume.status == "in-use" && in_use_ok);
        if !ok {
            return Err(invalid_volume(format!(
                "Volume {volume_id} status must be available, but current status is: {}.",
                volume.status
            )));
        }
        let snapshot =
            take(&cloud, w, &ctx, &volume_id, name.clone(), description.clone(), metadata.clone(), None)?;
        Ok(views::snapshot_answer(views::snapshot(&ctx, &snapshot)))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"snapshot": view}))).into_response())
}

async fn listing(
    cloud: Cloud,
    ctx: Ctx,
    query: Vec<(String, String)>,
    path: &str,
    detailed: bool,
) -> ApiResult<Json<Value>> {
    let filters = if ctx.auth.is_admin() { ADMIN_FILTERS } else { FILTERS };
    let params = super::list::parse(&ctx, &query, filters, SORT_KEYS)?;
    let items = cloud.read(|w| {
        w.stores
            .iter()
            .filter(|(p, _)| params.all_tenants || **p == ctx.auth.project_id)
            .flat_map(|(_, s)| s.snapshots.values())
            .map(|s| views::snapshot(&ctx, s))
            .collect::<Vec<_>>()
    });
    let page = super::list::apply(items, &params, "snapshot")?;
    let url = views::collection_url(&cloud, &ctx.auth.project_id, path);
    let summary = |v: &Value| {
        if detailed { v.clone() } else { views::snapshot_answer(v.clone()) }
    };
    Ok(Json(super::list::respond("snapshots", &url, &query, &params, page, summary)))
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "snapshots", false).await
}

async fn detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "snapshots/detail", true).await
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"snapshot": views::snapshot(&ctx, find(w, &ctx, &id)?)}))))
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let map = body_object(&body, "snapshot")?;
    let name = opt_str(&map, "name")?.or(opt_str(&map, "display_name")?);
    let description = opt_str(&map, "description")?.or(opt_str(&map, "display_description")?);
    cloud.write(F, |w| {
        let snapshot = find_mut(w, &ctx, &id)?;
        if let Some(name) = name {
            snapshot.name = name;
        }
        if map.contains_key("description") || map.contains_key("display_description") {
            snapshot.description = description;
        }
        snapshot.updated_at_ms = Some(now_ms());
        Ok(Json(json!({"snapshot": views::snapshot_answer(views::snapshot(&ctx, snapshot))})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    cloud.write(F, |w| {
        let snapshot = find_mut(w, &ctx, &id)?;
        if snapshot.status != "available" && snapshot.status != "error" {
            return Err(ApiError::bad_request(F, format!(
                "Invalid snapshot: Snapshot status must be available or error, but current status is: {}.",
                snapshot.status
            )));
        }
        if snapshot.group_snapshot_id.is_some() {
            return Err(ApiError::bad_request(F, "Invalid snapshot: Snapshot belongs to a group snapshot; delete the group snapshot."));
        }
        snapshot.status = "deleting".into();
        snapshot.updated_at_ms = Some(now_ms());
        snapshot.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
        Ok(StatusCode::ACCEPTED)
    })
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let value = super::body_value(&body)?;
    let Some((name, args)) =
        value.as_object().and_then(|m| m.iter().next()).map(|(k, v)| (k.clone(), v.clone()))
    else {
        return Err(ApiError::bad_request(F, "Malformed request body"));
    };
    match name.as_str() {
        "os-reset_status" => {
            ctx.require_admin("volume_extension:snapshot_admin_actions:reset_status")?;
            let status = args
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| ApiError::bad_request(F, "Must specify 'status'"))?;
            if !["creating", "available", "deleting", "error", "error_deleting", "backing-up", "restoring"]
                .contains(&status.as_str())
            {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid input received: Invalid status: {status}"),
                ));
            }
            cloud.write(F, |w| {
                let snapshot = find_mut(w, &ctx, &id)?;
                snapshot.status = status;
                snapshot.pending = None;
                Ok(StatusCode::ACCEPTED.into_response())
            })
        }
        "os-force_delete" => {
            ctx.require_admin("volume_extension:snapshot_admin_actions:force_delete")?;
            cloud.write(F, |w| {
                let snapshot = find_mut(w, &ctx, &id)?;
                snapshot.status = "deleting".into();
                snapshot.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
                Ok(StatusCode::ACCEPTED.into_response())
            })
        }
        "os-update_snapshot_status" => super::snapshot_status::update(&cloud, &ctx, &id, &args),
        other => Err(ApiError::bad_request(F, format!("There is no such action: {other}"))),
    }
}
