//! ECS under `/ecs/v1/{project_id}/cloudservers`: server details and job-based disk attach and
//! detach, completing through the same attachment state machine (and loop devices) as Nova.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::jobs::new_job;
use super::{Ctx, ecs, json_object, views};
use crate::bootstrap::resource_id;
use crate::clock::{iso_seconds_z, now_ms};
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Attachment, JobTarget, Op, Pending, Server};
use crate::nova::next_device;
use crate::store::{Cloud, World};

const F: Family = Family::Ecs;

/// The ECS routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/ecs/v1/{project_id}/cloudservers/{server_id}", get(show_server))
        // ECS's OpenStack-native (Nova v2.1) server detail, which Huawei's CSI driver reads.
        .route("/ecs/v2.1/{project_id}/servers/{server_id}", get(show_server))
        .route("/ecs/v1/{project_id}/cloudservers/{server_id}/block_device", get(block_devices))
        .route("/ecs/v1/{project_id}/cloudservers/{server_id}/attachvolume", post(attach))
        .route("/ecs/v1/{project_id}/cloudservers/{server_id}/detachvolume/{volume_id}", delete(detach))
}

fn find_server<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Server> {
    w.servers
        .get(id)
        .filter(|s| s.project_id == ctx.auth.project_id)
        .ok_or_else(|| ecs(StatusCode::NOT_FOUND, "Ecs.0114", format!("ECS [{id}] could not be found.")))
}

fn volume_missing(id: &str) -> ApiError {
    // The ECS error table has no code of its own for a missing disk; the generic request error.
    ecs(StatusCode::BAD_REQUEST, "Ecs.0000", format!("Volume[{id}] could not be found."))
}

async fn show_server(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, server_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let s = find_server(w, &ctx, &server_id)?;
        let volumes: Vec<Value> = w
            .stores
            .values()
            .flat_map(|st| st.volumes.values())
            .filter(|v| v.attachments.iter().any(|a| a.server_id.as_deref() == Some(server_id.as_str())))
            .map(|v| json!({"id": v.id, "delete_on_termination": "false", "device": v.attachments.iter().find(|a| a.server_id.as_deref() == Some(server_id.as_str())).and_then(|a| a.device.clone())}))
            .collect();
        Ok(Json(json!({"server": {
            "id": s.id, "name": s.name, "status": "ACTIVE", "tenant_id": s.project_id,
            "OS-EXT-AZ:availability_zone": s.availability_zone, "OS-EXT-STS:vm_state": "active",
            "os-extended-volumes:volumes_attached": volumes, "metadata": {},
            "created": iso_seconds_z(s.created_at_ms), "updated": iso_seconds_z(s.created_at_ms),
        }})))
    })
}

/// The most disks one server takes, and how many more it may (`attachableQuantity`).
const MAX_DISKS_PER_SERVER: usize = 60;

async fn block_devices(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, server_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        find_server(w, &ctx, &server_id)?;
        let attachments: Vec<Value> = w
            .stores
            .values()
            .flat_map(|st| st.volumes.values())
            .filter_map(|v| {
                let a = v.attachments.iter().find(|a| a.server_id.as_deref() == Some(server_id.as_str()))?;
                Some(json!({
                    "serverId": server_id, "volumeId": v.id, "id": v.id, "device": a.device, "size": v.size,
                    "bootIndex": null, "bus": if views::is_scsi(v) { "scsi" } else { "virtio" },
                    "pciAddress": null,
                }))
            })
            .collect();
        let free = MAX_DISKS_PER_SERVER.saturating_sub(attachments.len());
        Ok(Json(json!({
            "attachableQuantity": {"free_scsi": free, "free_blk": free, "free_disk": free},
            "volumeAttachments": attachments,
        })))
    })
}

async fn attach(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, server_id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let top = json_object(&body, F)?;
    let volume_id = top
        .get("volumeAttachment")
        .and_then(|a| a.get("volumeId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            ecs(
                StatusCode::BAD_REQUEST,
                "Ecs.0005",
                "request body is illegal: volumeAttachment.volumeId is required.",
            )
        })?;
    let dry_run = top.get("dry_run").and_then(Value::as_bool).unwrap_or(false);
    cloud.write(F, |w| {
        find_server(w, &ctx, &server_id)?;
        let volume = w
            .stores
            .get(&ctx.auth.project_id)
            .and_then(|s| s.volumes.get(&volume_id))
            .cloned()
            .ok_or_else(|| volume_missing(&volume_id))?;
        if volume.attachments.iter().any(|a| a.server_id.as_deref() == Some(server_id.as_str())) {
            return Err(ecs(
                StatusCode::BAD_REQUEST,
                "Ecs.0000",
                format!("Volume[{volume_id}] is already attached to instance[{server_id}]."),
            ));
        }
        let ok = volume.status == "available" || (volume.multiattach && volume.status == "in-use");
        if !ok {
            return Err(ecs(
                StatusCode::BAD_REQUEST,
                "Ecs.0000",
                format!(
                    "Volume[{volume_id}] status must be available to attach, but it is {}.",
                    volume.status
                ),
            ));
        }
        if dry_run {
            return Ok(Json(json!({})));
        }
        let prefix = if views::is_scsi(&volume) { "/dev/sd" } else { "/dev/vd" };
        let device = next_device(w, &server_id, prefix);
        let attachment = Attachment {
            id: resource_id(),
            server_id: Some(server_id.clone()),
            device: Some(device),
            status: "attaching".into(),
            mode: if volume.readonly { "ro" } else { "rw" }.into(),
            connector: Some(
                json!({"host": server_id, "platform": "x86_64", "os_type": "linux", "multipath": false}),
            ),
            attached_at_ms: now_ms(),
            host_device: None,
            by_id_link: None,
        };
        let v = w.volume_mut(&volume_id).expect("found above");
        v.attachments.push(attachment.clone());
        v.status = "attaching".into();
        v.updated_at_ms = Some(now_ms());
        v.pending = Some(Pending {
            op: Op::Attach { attachment_id: attachment.id },
            due_ms: cloud.due("volume.attaching"),
        });
        let target = JobTarget::AttachVolume { volume_id: volume_id.clone(), server_id: server_id.clone() };
        let job = new_job(
            &ctx.auth.project_id,
            "ecs",
            "attachVolume",
            target,
            json!({"server_id": server_id, "volume_id": volume_id}),
        );
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        Ok(Json(json!({"job_id": job_id})))
    })
}

async fn detach(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, server_id, volume_id)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.write(F, |w| {
        find_server(w, &ctx, &server_id)?;
        let owned = w.stores.get(&ctx.auth.project_id).is_some_and(|s| s.volumes.contains_key(&volume_id));
        if !owned {
            return Err(volume_missing(&volume_id));
        }
        let volume = w.volume_mut(&volume_id).expect("checked above");
        let attachment = volume
            .attachments
            .iter_mut()
            .find(|a| a.server_id.as_deref() == Some(server_id.as_str()))
            .ok_or_else(|| {
                ecs(
                    StatusCode::BAD_REQUEST,
                    "Ecs.0111",
                    format!("Disk {volume_id} is not in the attachment list for ECS {server_id}."),
                )
            })?;
        if volume.status != "in-use" || attachment.status != "attached" {
            return Err(ecs(
                StatusCode::BAD_REQUEST,
                "Ecs.0000",
                format!("Volume[{volume_id}] cannot be detached while {}.", volume.status),
            ));
        }
        attachment.status = "detaching".into();
        let attachment_id = attachment.id.clone();
        volume.status = "detaching".into();
        volume.updated_at_ms = Some(now_ms());
        volume.pending =
            Some(Pending { op: Op::Detach { attachment_id }, due_ms: cloud.due("volume.detaching") });
        let target = JobTarget::DetachVolume { volume_id: volume_id.clone(), server_id: server_id.clone() };
        let job = new_job(
            &ctx.auth.project_id,
            "ecs",
            "detachVolume",
            target,
            json!({"server_id": server_id, "volume_id": volume_id}),
        );
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        Ok(Json(json!({"job_id": job_id})))
    })
}
