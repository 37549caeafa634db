//! Volume manage (seed cinder-v2-volume-manage.rst): adopt storage the backend holds but Cinder
//! does not know, and the backend side of unmanage. Unmanaged storage is a file
//! `<state_dir>/unmanaged/<source-name>.img`; unmanage moves a volume's file there as
//! `volume-<id>`, as the LVM driver names its logical volumes.

use std::path::PathBuf;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Ctx, body_object, check_quota, opt_bool, opt_metadata, opt_str, views};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Op, Pending, Volume};
use crate::sparse::GIB;
use crate::store::Cloud;

const F: Family = Family::Volume;

/// The manage routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/os-volume-manage", post(manage))
        .route("/volume/v3/{project_id}/manageable_volumes", get(manageable).post(manage_v38))
        .route("/volume/v3/{project_id}/manageable_volumes/detail", get(manageable))
}

fn unmanaged_dir(cloud: &Cloud) -> PathBuf {
    cloud.config().state_dir.join("unmanaged")
}

/// Moves an unmanaged volume's file to the unmanaged storage.
pub fn release(cloud: &Cloud, volume: &Volume) -> std::io::Result<()> {
    let dir = unmanaged_dir(cloud);
    std::fs::create_dir_all(&dir)?;
    std::fs::rename(cloud.volume_file(&volume.id), dir.join(format!("volume-{}.img", volume.id)))
}

async fn manageable(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> ApiResult<Json<Value>> {
    // The manageable-volumes listing came with 3.8; before it the path does not exist.
    if !ctx.version.at_least(3, 8) {
        return Err(ApiError::not_found(F, "The resource could not be found."));
    }
    ctx.require_admin("volume_extension:list_manageable")?;
    let mut items = Vec::new();
    if let Ok(entries) = std::fs::read_dir(unmanaged_dir(&cloud)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().trim_end_matches(".img").to_string();
            let size = entry.metadata().map(|m| m.len().div_ceil(GIB)).unwrap_or(0);
            items.push(json!({
                "reference": {"source-name": name}, "size": size, "safe_to_manage": true,
                "reason_not_safe": null, "cinder_id": null, "extra_info": null,
            }));
        }
    }
    Ok(Json(json!({"manageable-volumes": items})))
}

/// 3.8's spelling of the manage POST: the same body and answer as os-volume-manage.
async fn manage_v38(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    if !ctx.version.at_least(3, 8) {
        return Err(ApiError::not_found(F, "The resource could not be found."));
    }
    manage(State(cloud), Extension(ctx), body).await
}

async fn manage(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.require_admin("volume_extension:volume_manage")?;
    let map = body_object(&body, "volume")?;
    let host = opt_str(&map, "host")?;
    let cluster = opt_str(&map, "cluster")?;
    if host.is_none() && cluster.is_none() {
        return Err(ApiError::bad_request(F, "Missing required element 'host' in request body."));
    }
    let reference = map
        .get("ref")
        .and_then(Value::as_object)
        .cloned()
        .ok_or_else(|| ApiError::bad_request(F, "Missing required element 'ref' in request body."))?;
    let source = reference
        .get("source-name")
        .or_else(|| reference.get("source-id"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request(F, "Manage existing volume failed due to invalid backend reference: source-name or source-id is required."))?;
    if source.contains('/') || source.starts_with('.') {
        return Err(ApiError::bad_request(
            F,
            format!("Manage existing volume failed due to invalid backend reference {source}."),
        ));
    }
    let name = opt_str(&map, "name")?.unwrap_or_default();
    let description = opt_str(&map, "description")?;
    let type_asked = opt_str(&map, "volume_type")?;
    let zone_asked = opt_str(&map, "availability_zone")?;
    let bootable = opt_bool(&map, "bootable")?.unwrap_or(false);
    let metadata = opt_metadata(&map, "metadata")?.unwrap_or_default();
    let file = unmanaged_dir(&cloud).join(format!("{source}.img"));
    let bytes = std::fs::metadata(&file).map(|m| m.len()).map_err(|_| {
        ApiError::bad_request(F, format!("Manage existing volume failed due to invalid backend reference {source}: no such volume on the backend."))
    })?;
    // Sizes are whole GiB, rounded up (seed: "size rounded up to whole GiB").
    let size = bytes.div_ceil(GIB).max(1);
    let view = cloud.write(F, |w| {
        let volume_type = match &type_asked {
            Some(t) => super::type_access::visible(w, &ctx, t).cloned().ok_or_else(|| {
                ApiError::not_found(F, format!("Volume type with name {t} could not be found."))
            })?,
            None => w.volume_types[&w.default_volume_type_id].clone(),
        };
        let zone = zone_asked.clone().unwrap_or_else(|| w.availability_zones[0].clone());
        if !w.availability_zones.contains(&zone) {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid input received: Availability zone '{zone}' is invalid."),
            ));
        }
        let project_id = ctx.auth.project_id.clone();
        check_quota(w, &project_id, &[("volumes".into(), 1), ("gigabytes".into(), size as i64)])?;
        let id = resource_id();
        std::fs::rename(&file, cloud.volume_file(&id))
            .map_err(|e| ApiError::internal(F, format!("Adopting {source} failed: {e}")))?;
        crate::sparse::grow(&cloud.volume_file(&id), size)
            .map_err(|e| ApiError::internal(F, e.to_string()))?;
        let volume = Volume {
            id: id.clone(),
            project_id: project_id.clone(),
            user_id: ctx.auth.user_id.clone(),
            name: name.clone(),
            description: description.clone(),
            size,
            status: "managing".into(),
            volume_type_id: volume_type.id.clone(),
            availability_zone: zone,
            bootable,
            readonly: false,
            multiattach: volume_type.multiattach(),
            metadata: metadata.clone(),
            snapshot_id: None,
            source_volid: None,
            backup_id: None,
            group_id: None,
            migration_status: None,
            attachments: Vec::new(),
            created_at_ms: now_ms(),
            updated_at_ms: None,
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("volume.managing") }),
            extra: Default::default(),
        };
        let view = views::volume(&cloud, w, &ctx, &volume);
        w.store_mut(&project_id).volumes.insert(id, volume);
        Ok(view)
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"volume": view}))).into_response())
}
