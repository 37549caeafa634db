//! Backups (seed cinder-v2-api-ref.rst): create, list, detail, show, delete, restore, and the
//! admin actions. A backup is a sparse copy of the volume in `<state_dir>/backups`.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{
    Ctx, body_object, check_quota, invalid_volume, not_found, opt_bool, opt_metadata, opt_str, views,
};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Backup, Op, Pending};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;
const FILTERS: &[&str] = &["name", "status", "volume_id"];
const SORT_KEYS: &[&str] = &["id", "name", "status", "size", "created_at", "volume_id"];

/// The backup routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/backups", get(list).post(create))
        .route("/volume/v3/{project_id}/backups/detail", get(detail))
        .route(
            "/volume/v3/{project_id}/backups/{backup_id}",
            get(show).put(super::backup_records::update).delete(delete),
        )
        .route("/volume/v3/{project_id}/backups/{backup_id}/restore", post(restore))
        .route("/volume/v3/{project_id}/backups/{backup_id}/action", post(action))
}

fn find<'a>(w: &'a mut World, ctx: &Ctx, id: &str) -> ApiResult<&'a mut Backup> {
    w.stores
        .values_mut()
        .find_map(|s| s.backups.get_mut(id))
        .filter(|b| b.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Backup", id))
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    let map = body_object(&body, "backup")?;
    let volume_id = opt_str(&map, "volume_id")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute volume_id."))?;
    let name = opt_str(&map, "name")?.unwrap_or_default();
    let description = opt_str(&map, "description")?;
    let container = opt_str(&map, "container")?;
    let incremental = opt_bool(&map, "incremental")?.unwrap_or(false);
    let force = opt_bool(&map, "force")?.unwrap_or(false);
    let snapshot_id = opt_str(&map, "snapshot_id")?;
    let metadata = if ctx.version.at_least(3, 43) {
        opt_metadata(&map, "metadata")?.unwrap_or_default()
    } else {
        Default::default()
    };
    let view = cloud.write(F, |w| {
        let volume = super::volumes::find(w, &ctx, &volume_id)?.clone();
        if volume.status != "available" && !(force && volume.status == "in-use") {
            return Err(invalid_volume(format!(
                "Volume to be backed up must be available or in-use, but the current status is \"{}\".",
                volume.status
            )));
        }
        if incremental
            && !w.stores[&volume.project_id]
                .backups
                .values()
                .any(|b| b.volume_id == volume_id && b.status == "available")
        {
            return Err(ApiError::bad_request(
                F,
                "Invalid backup: No backups available to do an incremental backup.",
            ));
        }
        check_quota(
            w,
            &volume.project_id,
            &[("backups".into(), 1), ("backup_gigabytes".into(), volume.size as i64)],
        )?;
        let source = match &snapshot_id {
            Some(sid) => cloud.snapshot_file(sid),
            None => cloud.volume_file(&volume_id),
        };
        let id = resource_id();
        sparse::copy(&source, &cloud.backup_file(&id), volume.size)
            .map_err(|e| ApiError::internal(F, format!("Backing up failed: {e}")))?;
        let due = cloud.due("backup.creating");
        let backup = Backup {
            id: id.clone(),
            project_id: volume.project_id.clone(),
            name: name.clone(),
            description: description.clone(),
            volume_id: volume_id.clone(),
            snapshot_id: snapshot_id.clone(),
            size: volume.size,
            status: "creating".into(),
            fail_reason: None,
            is_incremental: incremental,
            container: container.clone(),
            metadata: metadata.clone(),
            volume_metadata: volume.metadata.clone(),
            created_at_ms: now_ms(),
            updated_at_ms: None,
            pending: Some(Pending { op: Op::Create, due_ms: due }),
        };
        let store = w.store_mut(&volume.project_id);
        store.backups.insert(id.clone(), backup);
        let v = store.volumes.get_mut(&volume_id).expect("found above");
        if v.pending.is_none() {
            v.pending = Some(Pending { op: Op::Return { back_to: v.status.clone() }, due_ms: due });
            v.status = "backing-up".into();
        }
        Ok(json!({"id": id, "name": name, "links": views::links(&cloud, &volume.project_id, "backups", &id)}))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"backup": view}))).into_response())
}

async fn listing(
    cloud: Cloud,
    ctx: Ctx,
    query: Vec<(String, String)>,
    path: &str,
    detailed: bool,
) -> ApiResult<Json<Value>> {
    let params = super::list::parse(&ctx, &query, FILTERS, SORT_KEYS)?;
    let items = cloud.read(|w| {
        w.stores
            .iter()
            .filter(|(p, _)| params.all_tenants || **p == ctx.auth.project_id)
            .flat_map(|(_, s)| s.backups.values())
            .map(|b| views::backup(&cloud, b))
            .collect::<Vec<_>>()
    });
    let page = super::list::apply(items, &params, "backup")?;
    let url = views::collection_url(&cloud, &ctx.auth.project_id, path);
    Ok(Json(super::list::respond("backups", &url, &query, &params, page, |v| {
        if detailed { v.clone() } else { views::summary(v) }
    })))
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "backups", false).await
}

async fn detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "backups/detail", true).await
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let backup = w
            .stores
            .values()
            .find_map(|s| s.backups.get(&id))
            .filter(|b| b.project_id == ctx.auth.project_id || ctx.auth.is_admin())
            .ok_or_else(|| not_found("Backup", &id))?;
        Ok(Json(json!({"backup": views::backup(&cloud, backup)})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    cloud.write(F, |w| {
        let backup = find(w, &ctx, &id)?;
        if backup.status != "available" && backup.status != "error" {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Invalid backup: Backup status must be available or error, but current status is: {}.",
                    backup.status
                ),
            ));
        }
        backup.status = "deleting".into();
        backup.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("backup.deleting") });
        Ok(StatusCode::ACCEPTED)
    })
}

async fn restore(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    let map = body_object(&body, "restore")?;
    let volume_id = opt_str(&map, "volume_id")?;
    let name = opt_str(&map, "name")?;
    let body = cloud.write(F, |w| {
        let backup = find(w, &ctx, &id)?.clone();
        if backup.status != "available" {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid backup: Backup status must be available but is {}.", backup.status),
            ));
        }
        let target = match volume_id {
            Some(vid) => {
                let volume = super::volumes::find(w, &ctx, &vid)?.clone();
                if volume.status != "available" || volume.size < backup.size {
                    return Err(invalid_volume(format!(
                        "Volume to be restored to must be available and at least {}G.",
                        backup.size
                    )));
                }
                vid
            }
            None => {
                let type_id = w.default_volume_type_id.clone();
                let zone = w.availability_zones[0].clone();
                check_quota(
                    w,
                    &backup.project_id,
                    &[("volumes".into(), 1), ("gigabytes".into(), backup.size as i64)],
                )?;
                let vid = resource_id();
                let volume = crate::model::Volume {
                    id: vid.clone(),
                    project_id: backup.project_id.clone(),
                    user_id: ctx.auth.user_id.clone(),
                    name: name.clone().unwrap_or_else(|| format!("restore_backup_{id}")),
                    description: None,
                    size: backup.size,
                    status: "creating".into(),
                    volume_type_id: type_id,
                    availability_zone: zone,
                    bootable: false,
                    readonly: false,
                    multiattach: false,
                    metadata: Default::default(),
                    snapshot_id: None,
                    source_volid: None,
                    backup_id: None,
                    group_id: None,
                    migration_status: None,
                    attachments: Vec::new(),
                    created_at_ms: now_ms(),
                    updated_at_ms: None,
                    pending: None,
                    extra: Default::default(),
                };
                w.store_mut(&backup.project_id).volumes.insert(vid.clone(), volume);
                vid
            }
        };
        sparse::copy(&cloud.backup_file(&id), &cloud.volume_file(&target), backup.size)
            .map_err(|e| ApiError::internal(F, format!("Restoring failed: {e}")))?;
        let due = cloud.due("backup.restoring");
        let volume = w.volume_mut(&target).expect("exists");
        // The backup carries the source volume's metadata; a restore writes it onto the target.
        volume.metadata.extend(backup.volume_metadata.clone());
        volume.status = "restoring-backup".into();
        volume.pending = Some(Pending { op: Op::Return { back_to: "available".into() }, due_ms: due });
        let volume_name = volume.name.clone();
        let b = find(w, &ctx, &id)?;
        b.status = "restoring".into();
        b.pending = Some(Pending { op: Op::Return { back_to: "available".into() }, due_ms: due });
        Ok(json!({"restore": {"backup_id": id, "volume_id": target, "volume_name": volume_name}}))
    })?;
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let value = super::body_value(&body)?;
    if let Some(args) = value.get("os-reset_status") {
        ctx.require_admin("volume_extension:backup_admin_actions:reset_status")?;
        let status = args.get("status").and_then(Value::as_str).unwrap_or_default().to_string();
        if !["available", "error"].contains(&status.as_str()) {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid input received: Invalid status: {status}"),
            ));
        }
        return cloud.write(F, |w| {
            let b = find(w, &ctx, &id)?;
            b.status = status;
            b.pending = None;
            Ok(StatusCode::ACCEPTED)
        });
    }
    if value.get("os-force_delete").is_some() {
        ctx.require_admin("volume_extension:backup_admin_actions:force_delete")?;
        return cloud.write(F, |w| {
            let b = find(w, &ctx, &id)?;
            b.status = "deleting".into();
            b.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("backup.deleting") });
            Ok(StatusCode::ACCEPTED)
        });
    }
    Err(ApiError::bad_request(F, "There is no such action"))
}
