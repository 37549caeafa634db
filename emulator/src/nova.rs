//! Nova under `/compute/v2.1`: servers (read) and volume attachments, with device names
//! assigned as a KVM hypervisor would (`/dev/vdb`, `/dev/vdc`, ...).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::COMPUTE_PREFIX;
use super::bootstrap::resource_id;
use super::clock::{iso_seconds_z, now_ms};
use super::errors::{ApiError, ApiResult, Family};
use super::keystone::{self, Auth};
use super::microversion::{Microversion, Range};
use super::model::{Attachment, Op, Pending, Server, Volume};
use super::store::{Cloud, World};

const F: Family = Family::Compute;

/// The microversions this Nova speaks.
pub const RANGE: Range = Range {
    service: "compute",
    legacy_header: Some("x-openstack-nova-api-version"),
    min: Microversion::new(2, 1),
    max: Microversion::new(2, 96),
    family: Family::Compute,
};

#[derive(Clone, Debug)]
struct Ctx {
    auth: Auth,
    version: Microversion,
}

/// The Nova routes.
pub fn router(cloud: Cloud) -> Router<Cloud> {
    let guarded = Router::new()
        .route("/compute/v2.1/servers", get(list_servers))
        .route("/compute/v2.1/servers/detail", get(list_servers_detail))
        .route("/compute/v2.1/servers/{server_id}", get(show_server))
        .route("/compute/v2.1/servers/{server_id}/os-volume_attachments", get(list_attachments).post(attach))
        .route(
            "/compute/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}",
            get(show_attachment).delete(detach),
        )
        .route_layer(axum::middleware::from_fn_with_state(cloud, guard));
    Router::new()
        .route("/compute", get(versions))
        .route("/compute/", get(versions))
        .route("/compute/v2.1", get(version))
        .route("/compute/v2.1/", get(version))
        .merge(guarded)
}

async fn guard(State(cloud): State<Cloud>, mut request: Request, next: Next) -> Response {
    let auth = match keystone::authenticate(&cloud, request.headers()) {
        Ok(auth) if auth.project_id.is_empty() => {
            return ApiError::forbidden(F, "Compute needs a project-scoped token.").into_response();
        }
        Ok(auth) => auth,
        Err(e) => return e.into_response(),
    };
    let version = match RANGE.negotiate(request.headers()) {
        Ok(version) => version,
        Err(e) => return e.into_response(),
    };
    request.extensions_mut().insert(Ctx { auth, version });
    let mut response = next.run(request).await;
    RANGE.echo(response.headers_mut(), version);
    response
}

fn version_doc(cloud: &Cloud) -> Value {
    json!({
        "id": "v2.1", "status": "CURRENT", "version": RANGE.max.text(), "min_version": RANGE.min.text(),
        "updated": "2013-07-23T11:33:21Z",
        "links": [{"rel": "self", "href": format!("{}{COMPUTE_PREFIX}/v2.1/", cloud.base_url())}],
    })
}

async fn versions(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"versions": [version_doc(&cloud)]}))
}

async fn version(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"version": version_doc(&cloud)}))
}

fn find_server<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Server> {
    w.servers
        .get(id)
        .filter(|s| s.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| ApiError::not_found(F, format!("Instance {id} could not be found.")))
}

fn attachments_of<'a>(
    w: &'a World,
    server_id: &'a str,
) -> impl Iterator<Item = (&'a Volume, &'a Attachment)> + 'a {
    w.stores.values().flat_map(|s| s.volumes.values()).flat_map(move |v| {
        v.attachments.iter().filter(move |a| a.server_id.as_deref() == Some(server_id)).map(move |a| (v, a))
    })
}

/// The flavor every emulated server has: the embedded form from 2.47, a reference before.
fn flavor_view(cloud: &Cloud, ctx: &Ctx) -> Value {
    if ctx.version.at_least(2, 47) {
        json!({"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0,
               "original_name": "m1.emulated", "extra_specs": {}})
    } else {
        json!({"id": "1", "links": [
            {"rel": "bookmark", "href": format!("{}{COMPUTE_PREFIX}/flavors/1", cloud.base_url())},
        ]})
    }
}

/// The user a server belongs to: the first user (by id) with a role in its project, as
/// servers carry no creator of their own.
fn owner_of(w: &World, s: &Server) -> Value {
    w.users
        .values()
        .find(|u| u.roles.get(&s.project_id).is_some_and(|r| !r.is_empty()))
        .map_or(Value::Null, |u| json!(u.id))
}

fn server_view(cloud: &Cloud, w: &World, ctx: &Ctx, s: &Server, detailed: bool) -> Value {
    let links = json!([
        {"rel": "self", "href": format!("{}{COMPUTE_PREFIX}/v2.1/servers/{}", cloud.base_url(), s.id)},
        {"rel": "bookmark", "href": format!("{}{COMPUTE_PREFIX}/servers/{}", cloud.base_url(), s.id)},
    ]);
    if !detailed {
        return json!({"id": s.id, "name": s.name, "links": links});
    }
    let volumes: Vec<Value> =
        attachments_of(w, &s.id).map(|(v, _)| json!({"id": v.id, "delete_on_termination": false})).collect();
    json!({
        "id": s.id, "name": s.name, "status": "ACTIVE", "tenant_id": s.project_id, "user_id": owner_of(w, s),
        // Booted from volume, as Nova shows it: an empty image, so clients look up no Glance.
        "image": "", "flavor": flavor_view(cloud, ctx),
        "OS-EXT-AZ:availability_zone": s.availability_zone, "OS-EXT-STS:vm_state": "active",
        "OS-EXT-STS:task_state": null, "OS-EXT-STS:power_state": 1,
        "os-extended-volumes:volumes_attached": volumes, "metadata": {}, "addresses": {},
        "created": iso_seconds_z(s.created_at_ms), "updated": iso_seconds_z(s.created_at_ms),
        "hostId": "", "links": links,
    })
}

async fn list_servers(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> Json<Value> {
    servers(&cloud, &ctx, false)
}

async fn list_servers_detail(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> Json<Value> {
    servers(&cloud, &ctx, true)
}

fn servers(cloud: &Cloud, ctx: &Ctx, detailed: bool) -> Json<Value> {
    cloud.read(|w| {
        let list: Vec<Value> = w
            .servers
            .values()
            .filter(|s| s.project_id == ctx.auth.project_id)
            .map(|s| server_view(cloud, w, ctx, s, detailed))
            .collect();
        Json(json!({"servers": list}))
    })
}

async fn show_server(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    cloud
        .read(|w| Ok(Json(json!({"server": server_view(&cloud, w, &ctx, find_server(w, &ctx, &id)?, true)}))))
}

fn attachment_view(ctx: &Ctx, server_id: &str, v: &Volume, a: &Attachment) -> Value {
    let mut body = json!({"device": a.device, "serverId": server_id, "volumeId": v.id});
    if !ctx.version.at_least(2, 89) {
        body["id"] = json!(v.id);
    }
    if ctx.version.at_least(2, 70) {
        body["tag"] = Value::Null;
    }
    if ctx.version.at_least(2, 79) {
        body["delete_on_termination"] = json!(false);
    }
    if ctx.version.at_least(2, 89) {
        body["attachment_id"] = json!(a.id);
        body["bdm_uuid"] = json!(a.id);
    }
    body
}

async fn list_attachments(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path(server_id): Path<String>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        find_server(w, &ctx, &server_id)?;
        let list: Vec<Value> =
            attachments_of(w, &server_id).map(|(v, a)| attachment_view(&ctx, &server_id, v, a)).collect();
        Ok(Json(json!({"volumeAttachments": list})))
    })
}

async fn show_attachment(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((server_id, volume_id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        find_server(w, &ctx, &server_id)?;
        let (v, a) = attachments_of(w, &server_id).find(|(v, _)| v.id == volume_id).ok_or_else(|| {
            ApiError::not_found(F, format!("Volume {volume_id} is not attached to {server_id}"))
        })?;
        Ok(Json(json!({"volumeAttachment": attachment_view(&ctx, &server_id, v, a)})))
    })
}

/// The next free disk name with `prefix` (`/dev/vd`, `/dev/sd`); index 0 is the root disk.
pub fn next_device(w: &World, server_id: &str, prefix: &str) -> String {
    let used: Vec<String> = attachments_of(w, server_id).filter_map(|(_, a)| a.device.clone()).collect();
    let mut index = 1usize;
    loop {
        let name = format!("{prefix}{}", disk_letters(index));
        if !used.contains(&name) {
            return name;
        }
        index += 1;
    }
}

/// 0 → a, 25 → z, 26 → aa, as the kernel names disks.
fn disk_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push((b'a' + (index % 26) as u8) as char);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.iter().rev().collect()
}

async fn attach(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path(server_id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    let value: Value =
        serde_json::from_slice(&body).map_err(|_| ApiError::bad_request(F, "Malformed request body"))?;
    let volume_id = value
        .get("volumeAttachment")
        .and_then(|a| a.get("volumeId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request(F, "Invalid input for field/attribute volumeAttachment. Value: missing volumeId. 'volumeId' is a required property"))?;
    let view = cloud.write(F, |w| {
        find_server(w, &ctx, &server_id)?;
        let volume = w
            .volume(&volume_id)
            .filter(|v| v.project_id == ctx.auth.project_id || ctx.auth.is_admin())
            .cloned()
            .ok_or_else(|| ApiError::not_found(F, format!("Volume {volume_id} could not be found.")))?;
        if volume.attachments.iter().any(|a| a.server_id.as_deref() == Some(server_id.as_str())) {
            return Err(ApiError::bad_request(F, format!("Invalid volume: volume {volume_id} already attached")));
        }
        if volume.multiattach && volume.status == "in-use" && !ctx.version.at_least(2, 60) {
            return Err(ApiError::bad_request(F, "Multiattach volumes are only supported starting with compute API version 2.60."));
        }
        let ok = volume.status == "available" || (volume.multiattach && volume.status == "in-use");
        if !ok {
            return Err(ApiError::bad_request(F, format!(
                "Invalid input received: Invalid volume: Volume {volume_id} status must be available or downloading to reserve, but the current status is {}.",
                volume.status
            )));
        }
        let device = next_device(w, &server_id, "/dev/vd");
        let attachment = Attachment {
            id: resource_id(),
            server_id: Some(server_id.clone()),
            device: Some(device),
            status: "attaching".into(),
            mode: if volume.readonly { "ro" } else { "rw" }.into(),
            connector: Some(json!({"host": server_id, "platform": "x86_64", "os_type": "linux", "multipath": false})),
            attached_at_ms: now_ms(),
            host_device: None,
            by_id_link: None,
        };
        let v = w.volume_mut(&volume_id).expect("found above");
        v.attachments.push(attachment.clone());
        v.status = "attaching".into();
        v.updated_at_ms = Some(now_ms());
        v.pending = Some(Pending { op: Op::Attach { attachment_id: attachment.id.clone() }, due_ms: cloud.due("volume.attaching") });
        Ok(attachment_view(&ctx, &server_id, v, &attachment))
    })?;
    Ok(Json(json!({"volumeAttachment": view})).into_response())
}

async fn detach(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((server_id, volume_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    cloud.write(F, |w| {
        find_server(w, &ctx, &server_id)?;
        let volume = w
            .volume_mut(&volume_id)
            .filter(|v| v.project_id == ctx.auth.project_id || ctx.auth.is_admin())
            .ok_or_else(|| ApiError::not_found(F, format!("Volume {volume_id} could not be found.")))?;
        let attachment = volume
            .attachments
            .iter_mut()
            .find(|a| a.server_id.as_deref() == Some(server_id.as_str()))
            .ok_or_else(|| ApiError::not_found(F, format!("No volume Block Device Mapping with id {volume_id}.")))?;
        if volume.status != "in-use" || attachment.status != "attached" {
            return Err(ApiError::bad_request(F, format!(
                "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and attach_status must be 'attached' to detach. Currently: status '{}'.",
                volume.status
            )));
        }
        attachment.status = "detaching".into();
        let attachment_id = attachment.id.clone();
        volume.status = "detaching".into();
        volume.updated_at_ms = Some(now_ms());
        volume.pending = Some(Pending { op: Op::Detach { attachment_id }, due_ms: cloud.due("volume.detaching") });
        Ok(StatusCode::ACCEPTED)
    })
}

#[cfg(test)]
mod tests {
    use super::disk_letters;

    #[test]
    fn disk_names_follow_the_kernel() {
        assert_eq!(disk_letters(1), "b");
        assert_eq!(disk_letters(25), "z");
        assert_eq!(disk_letters(26), "aa");
        assert_eq!(disk_letters(27), "ab");
    }
}
