//! Volumes: create (blank, from snapshot, from volume, from backup), show, list, detail,
//! update, delete, metadata.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::metadata::{self, WithMetadata};
use super::{
    Ctx, body_object, check_quota, invalid_volume, not_found, opt_bool, opt_metadata, opt_size, opt_str,
    views,
};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Metadata, Op, Pending, Volume};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// Volume filters Cinder accepts (resource_filters.json).
pub const FILTERS: &[&str] =
    &["name", "status", "metadata", "bootable", "migration_status", "availability_zone", "group_id", "size"];
/// Volume sort keys.
pub const SORT_KEYS: &[&str] = &[
    "id",
    "name",
    "status",
    "size",
    "created_at",
    "updated_at",
    "availability_zone",
    "bootable",
    "volume_type",
];
/// Statuses a volume may be deleted in.
const DELETABLE: &[&str] = &["available", "error", "error_restoring", "error_extending", "error_managing"];

/// The volume routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/volumes", get(list).post(create))
        .route("/volume/v3/{project_id}/volumes/detail", get(detail))
        .route("/volume/v3/{project_id}/volumes/{volume_id}", get(show).put(update).delete(delete))
        .merge(metadata::routes::<Volumes>("/volume/v3/{project_id}/volumes/{volume_id}"))
}

/// Volumes, for their metadata routes.
struct Volumes;

impl WithMetadata for Volumes {
    fn metadata<'w>(w: &'w World, ctx: &Ctx, id: &str) -> ApiResult<&'w Metadata> {
        find(w, ctx, id).map(|v| &v.metadata)
    }
    fn metadata_mut<'w>(w: &'w mut World, ctx: &Ctx, id: &str) -> ApiResult<&'w mut Metadata> {
        find_mut(w, ctx, id).map(|v| &mut v.metadata)
    }
}

/// A volume the caller may see, or 404.
pub fn find<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Volume> {
    w.volume(id)
        .filter(|v| v.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Volume", id))
}

/// A volume the caller may change, or 404.
pub fn find_mut<'a>(w: &'a mut World, ctx: &Ctx, id: &str) -> ApiResult<&'a mut Volume> {
    w.volume_mut(id)
        .filter(|v| v.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Volume", id))
}

fn views_of(cloud: &Cloud, w: &World, ctx: &Ctx, params: &super::list::ListParams) -> Vec<Value> {
    // Cinder reads `project_id` only with `all_tenants`; without it an admin sees its own project.
    let wanted = |p: &String| match (&params.project_id, params.all_tenants) {
        (Some(only), true) => p == only,
        (_, true) => true,
        (_, false) => *p == ctx.auth.project_id,
    };
    w.stores
        .iter()
        .filter(|(p, _)| wanted(p))
        .flat_map(|(_, s)| s.volumes.values())
        .map(|v| {
            let mut view = views::volume(cloud, w, ctx, v);
            view["volume_type"] = json!(w.volume_types.get(&v.volume_type_id).map(|t| t.name.clone()));
            view
        })
        .collect()
}

async fn listing(
    cloud: Cloud,
    ctx: Ctx,
    query: Vec<(String, String)>,
    path: &str,
    detailed: bool,
) -> ApiResult<Json<Value>> {
    let params = super::list::parse(&ctx, &query, FILTERS, SORT_KEYS)?;
    let items = cloud.read(|w| views_of(&cloud, w, &ctx, &params));
    let page = super::list::apply(items, &params, "volume")?;
    let url = views::collection_url(&cloud, &ctx.auth.project_id, path);
    let summary = |v: &Value| if detailed { v.clone() } else { views::summary(v) };
    Ok(Json(super::list::respond("volumes", &url, &query, &params, page, summary)))
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "volumes", false).await
}

async fn detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    listing(cloud, ctx, query, "volumes/detail", true).await
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let volume = find(w, &ctx, &id)?;
        Ok(Json(json!({"volume": views::volume(&cloud, w, &ctx, volume)})))
    })
}

/// Where a new volume's data comes from.
enum Source {
    Blank,
    File(std::path::PathBuf),
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    let map = body_object(&body, "volume")?;
    let size = opt_size(&map, "size")?;
    let name = opt_str(&map, "name")?.unwrap_or_default();
    if name.len() > 255 {
        return Err(ApiError::bad_request(
            F,
            "Invalid input for field/attribute name. Value is too long (maximum 255).",
        ));
    }
    let description = opt_str(&map, "description")?;
    let type_asked = opt_str(&map, "volume_type")?;
    let zone_asked = opt_str(&map, "availability_zone")?;
    let snapshot_id = opt_str(&map, "snapshot_id")?;
    let source_volid = opt_str(&map, "source_volid")?;
    let backup_id = if ctx.version.at_least(3, 47) { opt_str(&map, "backup_id")? } else { None };
    let group_id = if ctx.version.at_least(3, 13) { opt_str(&map, "group_id")? } else { None };
    let metadata = opt_metadata(&map, "metadata")?.unwrap_or_default();
    let multiattach_flag = opt_bool(&map, "multiattach")?.unwrap_or(false);
    let image = opt_str(&map, "imageRef")?;
    let sources = [&snapshot_id, &source_volid, &backup_id, &image].iter().filter(|s| s.is_some()).count();
    if sources > 1 {
        return Err(ApiError::bad_request(
            F,
            "Invalid input received: Only one of snapshot_id, source_volid, backup_id and imageRef may be given.",
        ));
    }
    let view = cloud.write(F, |w| {
        let project_id = ctx.auth.project_id.clone();
        let mut type_id = None;
        let mut zone = None;
        let mut minimum = 0;
        let mut source = Source::Blank;
        if let Some(sid) = &snapshot_id {
            let snapshot = w
                .stores
                .values()
                .find_map(|s| s.snapshots.get(sid))
                .filter(|s| s.project_id == project_id || ctx.auth.is_admin())
                .ok_or_else(|| not_found("Snapshot", sid))?;
            if snapshot.status != "available" {
                return Err(ApiError::bad_request(F, "Invalid snapshot: Originating snapshot status must be one of 'available' values"));
            }
            let parent = w.volume(&snapshot.volume_id);
            type_id = parent.map(|v| v.volume_type_id.clone());
            zone = parent.map(|v| v.availability_zone.clone());
            minimum = snapshot.size;
            if size.is_some_and(|s| s < snapshot.size) {
                return Err(ApiError::bad_request(F, format!(
                    "Invalid input received: Volume size '{}'GB cannot be smaller than the snapshot size {}GB. They must be >= original snapshot size.",
                    size.unwrap_or_default(), snapshot.size)));
            }
            source = Source::File(cloud.snapshot_file(sid));
        }
        if let Some(vid) = &source_volid {
            let parent = super::volumes::find(w, &ctx, vid)?;
            if !["available", "in-use"].contains(&parent.status.as_str()) {
                return Err(invalid_volume(format!("Volume {vid} status must be available or in-use, but current status is: {}.", parent.status)));
            }
            type_id = Some(parent.volume_type_id.clone());
            zone = Some(parent.availability_zone.clone());
            minimum = parent.size;
            if size.is_some_and(|s| s < parent.size) {
                return Err(ApiError::bad_request(F, format!(
                    "Invalid input received: Volume size '{}'GB cannot be smaller than original volume size {}GB. They must be >= original volume size.",
                    size.unwrap_or_default(), parent.size)));
            }
            source = Source::File(cloud.volume_file(vid));
        }
        if let Some(bid) = &backup_id {
            let backup = w
                .stores
                .get(&project_id)
                .and_then(|s| s.backups.get(bid))
                .ok_or_else(|| not_found("Backup", bid))?;
            if backup.status != "available" {
                return Err(ApiError::bad_request(F, format!("Invalid backup: Backup status must be available but is {}.", backup.status)));
            }
            minimum = backup.size;
            source = Source::File(cloud.backup_file(bid));
        }
        let size = match size.or((minimum > 0).then_some(minimum)) {
            Some(size) => size,
            None => return Err(ApiError::bad_request(F, "Invalid input for field/attribute size. Value: None. None is not of type 'integer'")),
        };
        if let Some(asked) = &type_asked {
            let found = super::type_access::visible(w, &ctx, asked).ok_or_else(|| {
                ApiError::not_found(F, format!("Volume type with name {asked} could not be found."))
            })?;
            type_id = Some(found.id.clone());
        }
        let type_id = type_id.unwrap_or_else(|| super::default_types::for_project(w, &project_id));
        let volume_type = w.volume_types.get(&type_id).cloned().ok_or_else(|| not_found("Volume type", &type_id))?;
        if let Some(asked) = &zone_asked {
            if !w.availability_zones.contains(asked) {
                return Err(ApiError::bad_request(F, format!("Invalid input received: Availability zone '{asked}' is invalid.")));
            }
            if snapshot_id.is_some() && zone.as_ref().is_some_and(|z| z != asked) {
                return Err(ApiError::bad_request(F, "Invalid input received: Volume must be in the same availability zone as the snapshot"));
            }
            zone = Some(asked.clone());
        }
        let zone = zone.unwrap_or_else(|| w.availability_zones[0].clone());
        if let Some(gid) = &group_id {
            let group = w.stores.get(&project_id).and_then(|s| s.groups.get(gid)).ok_or_else(|| not_found("Group", gid))?;
            if group.status != "available" {
                return Err(ApiError::bad_request(F, format!("Invalid group: Group {gid} status must be available.")));
            }
        }
        let per_volume = w.quota_limit(&project_id, "per_volume_gigabytes");
        if per_volume >= 0 && size as i64 > per_volume {
            return Err(ApiError::over_limit(F, format!("VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum allowed limit {per_volume}G.")));
        }
        check_quota(w, &project_id, &[
            ("volumes".into(), 1),
            ("gigabytes".into(), size as i64),
            (format!("volumes_{}", volume_type.name), 1),
            (format!("gigabytes_{}", volume_type.name), size as i64),
        ])?;
        let id = resource_id();
        let file = cloud.volume_file(&id);
        let made = match &source {
            Source::Blank => sparse::create(&file, size),
            Source::File(from) => sparse::copy(from, &file, size),
        };
        made.map_err(|e| {
            tracing::error!(volume = %id, error = %e, "emulator: creating the volume file failed");
            ApiError::internal(F, "The volume's storage could not be created.")
        })?;
        let now = now_ms();
        let volume = Volume {
            id: id.clone(),
            project_id: project_id.clone(),
            user_id: ctx.auth.user_id.clone(),
            name: name.clone(),
            description: description.clone(),
            size,
            status: "creating".into(),
            volume_type_id: type_id,
            availability_zone: zone,
            bootable: image.is_some(),
            readonly: false,
            multiattach: multiattach_flag || volume_type.multiattach(),
            metadata: metadata.clone(),
            snapshot_id: snapshot_id.clone(),
            source_volid: source_volid.clone(),
            backup_id: backup_id.clone(),
            group_id: group_id.clone(),
            migration_status: None,
            attachments: Vec::new(),
            created_at_ms: now,
            updated_at_ms: None,
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("volume.creating") }),
            extra: Default::default(),
        };
        let view = views::volume_answer(views::volume(&cloud, w, &ctx, &volume));
        // The API accepts it; the scheduler then finds no pool and leaves it in error.
        let unplaceable = super::scheduler::unplaceable(&volume_type);
        let mut volume = volume;
        if unplaceable {
            volume.status = "error".into();
            volume.pending = None;
        }
        w.store_mut(&project_id).volumes.insert(id.clone(), volume);
        if unplaceable {
            super::scheduler::no_valid_backend(w, &project_id, &id, now);
        }
        Ok(view)
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"volume": view}))).into_response())
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let map = body_object(&body, "volume")?;
    if map.is_empty() {
        return Err(ApiError::bad_request(
            F,
            "Invalid input for field/attribute volume. Value: {}. {} does not have enough properties",
        ));
    }
    let name = opt_str(&map, "name")?.or(opt_str(&map, "display_name")?);
    let description = opt_str(&map, "description")?.or(opt_str(&map, "display_description")?);
    let metadata = opt_metadata(&map, "metadata")?;
    cloud.write(F, |w| {
        let volume = find_mut(w, &ctx, &id)?;
        if let Some(name) = name {
            volume.name = name;
        }
        if map.contains_key("description") || map.contains_key("display_description") {
            volume.description = description;
        }
        if let Some(metadata) = metadata {
            volume.metadata = metadata;
        }
        volume.updated_at_ms = Some(now_ms());
        let volume = volume.clone();
        Ok(Json(json!({"volume": views::volume_answer(views::volume(&cloud, w, &ctx, &volume))})))
    })
}

#[derive(serde::Deserialize)]
struct DeleteQuery {
    #[serde(default)]
    cascade: Option<String>,
    #[serde(default)]
    force: Option<String>,
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let truthy = |v: &Option<String>| v.as_ref().and_then(|v| super::parse_bool(&json!(v))).unwrap_or(false);
    let cascade = truthy(&query.cascade);
    let force = truthy(&query.force) && ctx.version.at_least(3, 23);
    if force {
        ctx.require_admin("volume:force_delete")?;
    }
    cloud.write(F, |w| {
        let volume = find(w, &ctx, &id)?.clone();
        let refuse = || invalid_volume("Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.");
        if !force && !DELETABLE.contains(&volume.status.as_str()) {
            return Err(refuse());
        }
        if !volume.attachments.is_empty() || volume.status == "deleting" {
            return Err(refuse());
        }
        let store = w.store_mut(&volume.project_id);
        let snapshots: Vec<String> =
            store.snapshots.values().filter(|s| s.volume_id == id).map(|s| s.id.clone()).collect();
        if !snapshots.is_empty() {
            if !cascade {
                return Err(refuse());
            }
            if store.snapshots.values().any(|s| s.volume_id == id && !["available", "error"].contains(&s.status.as_str())) {
                return Err(invalid_volume("Snapshot status must be available or error for a cascade delete."));
            }
        }
        let due = cloud.due("volume.deleting");
        for sid in snapshots {
            if let Some(s) = store.snapshots.get_mut(&sid) {
                s.status = "deleting".into();
                s.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
            }
        }
        let volume = store.volumes.get_mut(&id).expect("found above");
        volume.status = "deleting".into();
        volume.updated_at_ms = Some(now_ms());
        volume.pending = Some(Pending { op: Op::Delete, due_ms: due });
        Ok(StatusCode::ACCEPTED)
    })
}
