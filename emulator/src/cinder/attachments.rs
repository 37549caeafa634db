//! The attachments API (3.27+): create (reserve), update (connect), complete (3.44), delete,
//! show and list.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::{Ctx, body_object, invalid_volume, opt_str, views};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Attachment, Volume};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The attachment routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/attachments", get(list).post(create))
        .route("/volume/v3/{project_id}/attachments/detail", get(list))
        .route("/volume/v3/{project_id}/attachments/{attachment_id}", get(show).put(update).delete(delete))
        .route("/volume/v3/{project_id}/attachments/{attachment_id}/action", post(action))
}

fn require_version(ctx: &Ctx, minor: u32) -> ApiResult<()> {
    if ctx.version.at_least(3, minor) {
        Ok(())
    } else {
        Err(ApiError::not_found(F, "The resource could not be found."))
    }
}

fn locate(w: &World, ctx: &Ctx, id: &str) -> ApiResult<(Volume, Attachment)> {
    w.stores
        .values()
        .flat_map(|s| s.volumes.values())
        .filter(|v| v.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .find_map(|v| v.attachments.iter().find(|a| a.id == id).map(|a| (v.clone(), a.clone())))
        .ok_or_else(|| {
            ApiError::not_found(
                F,
                format!("Volume attachment could not be found with filter: attachment_id = {id}."),
            )
        })
}

async fn list(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> ApiResult<Json<Value>> {
    require_version(&ctx, 27)?;
    cloud.read(|w| {
        let items: Vec<Value> = w
            .stores
            .get(&ctx.auth.project_id)
            .into_iter()
            .flat_map(|s| s.volumes.values())
            .flat_map(|v| v.attachments.iter().map(move |a| views::attachment(v, a)))
            .collect();
        Ok(Json(json!({"attachments": items})))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_version(&ctx, 27)?;
    cloud.read(|w| {
        let (volume, attachment) = locate(w, &ctx, &id)?;
        Ok(Json(json!({"attachment": views::attachment(&volume, &attachment)})))
    })
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_version(&ctx, 27)?;
    let map = body_object(&body, "attachment")?;
    let volume_id = opt_str(&map, "volume_uuid")?
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute volume_uuid."))?;
    let instance = opt_str(&map, "instance_uuid")?;
    let connector = map.get("connector").filter(|c| c.is_object()).cloned();
    let mode = if ctx.version.at_least(3, 54) {
        opt_str(&map, "mode")?.unwrap_or_else(|| "rw".into())
    } else {
        "rw".into()
    };
    if mode != "rw" && mode != "ro" {
        return Err(ApiError::bad_request(F, "Invalid input received: mode must be 'rw' or 'ro'"));
    }
    cloud.write(F, |w| {
        let volume = super::volumes::find_mut(w, &ctx, &volume_id)?;
        let reusable = volume.multiattach && volume.status == "in-use";
        if !["available", "reserved"].contains(&volume.status.as_str()) && !reusable {
            return Err(invalid_volume(format!(
                "Volume {volume_id} status must be available or downloading to reserve, but the current status is {}.",
                volume.status
            )));
        }
        if volume.status == "reserved" && !volume.multiattach {
            return Err(invalid_volume(format!("Volume {volume_id} is already reserved.")));
        }
        let attachment = Attachment {
            id: resource_id(),
            server_id: instance.clone(),
            device: None,
            status: if connector.is_some() { "attaching" } else { "reserved" }.into(),
            mode: mode.clone(),
            connector: connector.clone(),
            attached_at_ms: now_ms(),
            host_device: None,
            by_id_link: None,
        };
        volume.attachments.push(attachment.clone());
        if volume.status == "available" {
            volume.status = if connector.is_some() { "attaching" } else { "reserved" }.into();
        }
        volume.updated_at_ms = Some(now_ms());
        Ok(Json(json!({"attachment": views::attachment(volume, &attachment)})))
    })
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    require_version(&ctx, 27)?;
    let map = body_object(&body, "attachment")?;
    let connector = map
        .get("connector")
        .filter(|c| c.is_object())
        .cloned()
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute connector."))?;
    cloud.write(F, |w| {
        let (volume, _) = locate(w, &ctx, &id)?;
        let volume = w.volume_mut(&volume.id).expect("located");
        let attachment = volume.attachments.iter_mut().find(|a| a.id == id).expect("located");
        if attachment.status == "attached" {
            return Err(ApiError::bad_request(
                F,
                "Invalid input received: The attachment is already attached; delete it to reconnect.",
            ));
        }
        attachment.connector = Some(connector.clone());
        attachment.status = "attaching".into();
        let attachment = attachment.clone();
        if volume.status == "reserved" {
            volume.status = "attaching".into();
        }
        Ok(Json(json!({"attachment": views::attachment(volume, &attachment)})))
    })
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    require_version(&ctx, 44)?;
    let value = super::body_value(&body)?;
    if value.get("os-complete").is_none() {
        let name = value.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default();
        return Err(ApiError::bad_request(F, format!("There is no such action: {name}")));
    }
    cloud.write(F, |w| {
        let (volume, _) = locate(w, &ctx, &id)?;
        let this_host = w.servers.values().filter(|s| s.this_host).map(|s| s.id.clone()).collect::<Vec<_>>();
        let file = cloud.volume_file(&volume.id);
        let volume = w.volume_mut(&volume.id).expect("located");
        let link_name = crate::loopdev::link_name_for(&volume.id, &volume.metadata);
        let attachment = volume.attachments.iter_mut().find(|a| a.id == id).expect("located");
        if attachment.connector.is_none() {
            return Err(ApiError::bad_request(
                F,
                "Invalid input received: The attachment has no connector; update it first.",
            ));
        }
        if attachment.status != "attached" {
            attachment.status = "attached".into();
            attachment.attached_at_ms = now_ms();
            if attachment.server_id.as_ref().is_some_and(|s| this_host.contains(s)) {
                let (device, link) = cloud.host_attach(&volume.id, &file, &link_name);
                attachment.host_device = device;
                attachment.by_id_link = link;
            }
        }
        volume.status = "in-use".into();
        volume.pending = None;
        Ok(StatusCode::NO_CONTENT.into_response())
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_version(&ctx, 27)?;
    cloud.write(F, |w| {
        let (volume, attachment) = locate(w, &ctx, &id)?;
        cloud.host_detach(&attachment);
        let volume = w.volume_mut(&volume.id).expect("located");
        volume.attachments.retain(|a| a.id != id);
        volume.status = if volume.attachments.iter().any(|a| a.status == "attached") {
            "in-use"
        } else if volume.attachments.is_empty() {
            "available"
        } else {
            "reserved"
        }
        .into();
        volume.updated_at_ms = Some(now_ms());
        let remaining: Vec<Value> = volume.attachments.iter().map(|a| views::attachment(volume, a)).collect();
        Ok(Json(json!({"attachments": remaining})))
    })
}
