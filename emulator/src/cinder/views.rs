//! The JSON views of Cinder resources, per microversion and role.

use serde_json::{Value, json};

use super::Ctx;
use crate::VOLUME_PREFIX;
use crate::clock::iso;
use crate::model::*;
use crate::store::{Cloud, World};

/// `self` and `bookmark` links of a resource.
pub fn links(cloud: &Cloud, project_id: &str, collection: &str, id: &str) -> Value {
    let base = cloud.base_url();
    json!([
        {"rel": "self", "href": format!("{base}{VOLUME_PREFIX}/v3/{project_id}/{collection}/{id}")},
        {"rel": "bookmark", "href": format!("{base}{VOLUME_PREFIX}/{project_id}/{collection}/{id}")},
    ])
}

/// The collection URL of the caller's project.
pub fn collection_url(cloud: &Cloud, project_id: &str, path: &str) -> String {
    format!("{}{VOLUME_PREFIX}/v3/{project_id}/{path}", cloud.base_url())
}

fn time(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |ms| json!(iso(ms)))
}

/// A volume's detailed view.
pub fn volume(cloud: &Cloud, w: &World, ctx: &Ctx, v: &Volume) -> Value {
    let type_name = w.volume_types.get(&v.volume_type_id).map(|t| t.name.clone());
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        // Cinder's view lists only attachments that are attached (views/volumes.py); one that
        // is still attaching or already detaching is not there yet or any more.
        .filter(|a| a.status == "attached")
        .map(|a| {
            json!({
                "id": v.id, "attachment_id": a.id, "volume_id": v.id, "server_id": a.server_id,
                "host_name": null, "device": a.device, "attached_at": time(Some(a.attached_at_ms)),
            })
        })
        .collect();
    let mut metadata = serde_json::Map::new();
    for (k, val) in &v.metadata {
        metadata.insert(k.clone(), json!(val));
    }
    if v.readonly {
        metadata.insert("readonly".into(), json!("True"));
    }
    let mut body = json!({
        "id": v.id,
        "name": v.name,
        "description": v.description,
        "size": v.size,
        "status": v.status,
        "availability_zone": v.availability_zone,
        "bootable": if v.bootable { "true" } else { "false" },
        "encrypted": false,
        "multiattach": v.multiattach,
        "created_at": iso(v.created_at_ms),
        "updated_at": time(v.updated_at_ms),
        "volume_type": type_name,
        "snapshot_id": v.snapshot_id,
        "source_volid": v.source_volid,
        "metadata": metadata,
        "attachments": attachments,
        "replication_status": null,
        "consistencygroup_id": null,
        "user_id": v.user_id,
        "links": links(cloud, &v.project_id, "volumes", &v.id),
        "os-vol-tenant-attr:tenant_id": v.project_id,
    });
    if ctx.auth.is_admin() {
        body["os-vol-host-attr:host"] = json!("emulator@lvmdriver-1#lvmdriver-1");
        body["os-vol-mig-status-attr:migstat"] = json!(v.migration_status);
        body["os-vol-mig-status-attr:name_id"] = Value::Null;
        body["migration_status"] = json!(v.migration_status);
    }
    if ctx.version.at_least(3, 13) {
        body["group_id"] = json!(v.group_id);
    }
    if ctx.version.at_least(3, 21) && ctx.auth.is_admin() {
        body["provider_id"] = Value::Null;
    }
    if ctx.version.at_least(3, 48) {
        body["service_uuid"] = json!("00000000-0000-4000-8000-000000000001");
        body["shared_targets"] = json!(false);
    }
    if ctx.version.at_least(3, 61) && ctx.auth.is_admin() {
        body["cluster_name"] = Value::Null;
    }
    if ctx.version.at_least(3, 63) {
        body["volume_type_id"] = json!(v.volume_type_id);
    }
    if ctx.version.at_least(3, 65) {
        body["consumes_quota"] = json!(true);
    }
    body
}

/// Keys of the volume view that Cinder adds only on show and detail (its extensions), never
/// on the create or update answer (3.47 only lets a create name a backup: no view shows
/// `backup_id`).
const VOLUME_SHOW_ONLY: &[&str] = &[
    "os-vol-tenant-attr:tenant_id",
    "os-vol-host-attr:host",
    "os-vol-mig-status-attr:migstat",
    "os-vol-mig-status-attr:name_id",
];

/// The volume view as the create and update answers carry it.
pub fn volume_answer(mut view: Value) -> Value {
    strip(&mut view, VOLUME_SHOW_ONLY);
    view
}

/// Keys of the snapshot view that only show and detail carry (the extended attributes).
pub const SNAPSHOT_SHOW_ONLY: &[&str] =
    &["os-extended-snapshot-attributes:progress", "os-extended-snapshot-attributes:project_id"];

/// The snapshot view as the create and update answers (and the plain list) carry it.
pub fn snapshot_answer(mut view: Value) -> Value {
    strip(&mut view, SNAPSHOT_SHOW_ONLY);
    view
}

/// The volume type as the create answer carries it: the access flag, no QoS id.
pub fn volume_type_created(mut view: Value) -> Value {
    strip(&mut view, &["qos_specs_id"]);
    view
}

/// The volume type as the update answer carries it: neither the access flag nor the QoS id.
pub fn volume_type_updated(mut view: Value) -> Value {
    strip(&mut view, &["qos_specs_id", "os-volume-type-access:is_public"]);
    view
}

fn strip(view: &mut Value, keys: &[&str]) {
    if let Some(object) = view.as_object_mut() {
        for key in keys {
            object.remove(*key);
        }
    }
}

/// The summary view of a listed resource (`id`, `name`, `links`).
pub fn summary(item: &Value) -> Value {
    json!({"id": item["id"], "name": item["name"], "links": item["links"]})
}

/// A snapshot's detailed view.
pub fn snapshot(ctx: &Ctx, s: &Snapshot) -> Value {
    let mut body = json!({
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "volume_id": s.volume_id,
        "size": s.size,
        "status": s.status,
        "metadata": s.metadata,
        "created_at": iso(s.created_at_ms),
        "updated_at": time(s.updated_at_ms),
        "os-extended-snapshot-attributes:progress": super::snapshot_status::progress(s),
        "os-extended-snapshot-attributes:project_id": s.project_id,
    });
    if ctx.version.at_least(3, 14) {
        body["group_snapshot_id"] = json!(s.group_snapshot_id);
    }
    if ctx.version.at_least(3, 41) {
        body["user_id"] = json!(s.user_id);
    }
    if ctx.version.at_least(3, 65) {
        body["consumes_quota"] = json!(true);
    }
    body
}

/// A volume type's view.
pub fn volume_type(t: &VolumeType, is_admin: bool) -> Value {
    let mut body = json!({
        "id": t.id,
        "name": t.name,
        "description": t.description,
        "is_public": t.is_public,
        "os-volume-type-access:is_public": t.is_public,
        "extra_specs": t.extra_specs,
    });
    if is_admin {
        body["qos_specs_id"] = Value::Null;
    }
    body
}

/// A volume type's view as show and list carry it: to an admin, with the id of the QoS specs
/// associated with it (Cinder keeps that id on the type itself).
pub fn volume_type_shown(w: &World, t: &VolumeType, is_admin: bool) -> Value {
    let mut body = volume_type(t, is_admin);
    if is_admin {
        let qos = w.qos_specs.values().find(|q| q.volume_type_ids.contains(&t.id)).map(|q| q.id.clone());
        body["qos_specs_id"] = json!(qos);
    }
    body
}

/// An attachment's view (attachments API).
pub fn attachment(v: &Volume, a: &Attachment) -> Value {
    let connection_info = a.connector.as_ref().map(|_| {
        json!({
            "driver_volume_type": "emulator", "serial": v.id, "volume_id": v.id,
            "device_path": a.host_device, "access_mode": a.mode, "attachment_id": a.id,
        })
    });
    json!({
        "id": a.id,
        "status": a.status,
        "instance": a.server_id,
        "volume_id": v.id,
        "attached_at": if a.status == "attached" { json!(iso(a.attached_at_ms)) } else { Value::Null },
        "detached_at": null,
        "attach_mode": a.mode,
        "connection_info": connection_info.unwrap_or(Value::Null),
    })
}

/// A backup's view.
pub fn backup(cloud: &Cloud, b: &Backup) -> Value {
    json!({
        "id": b.id,
        "name": b.name,
        "description": b.description,
        "volume_id": b.volume_id,
        "snapshot_id": b.snapshot_id,
        "size": b.size,
        "status": b.status,
        "availability_zone": null,
        "container": b.container,
        "object_count": 0,
        "fail_reason": b.fail_reason,
        "has_dependent_backups": false,
        "is_incremental": b.is_incremental,
        "metadata": b.metadata,
        "created_at": iso(b.created_at_ms),
        "updated_at": time(b.updated_at_ms),
        "data_timestamp": iso(b.created_at_ms),
        "links": links(cloud, &b.project_id, "backups", &b.id),
    })
}

/// A group's view.
/// A group's view; its volume ids only when asked for (`list_volume=True`, 3.25), as in Cinder.
pub fn group(cloud: &Cloud, w: &World, g: &Group, list_volume: bool) -> Value {
    let volumes: Vec<&String> = w
        .stores
        .get(&g.project_id)
        .map(|s| s.volumes.values().filter(|v| v.group_id.as_deref() == Some(&g.id)).map(|v| &v.id).collect())
        .unwrap_or_default();
    let mut view = json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "status": g.status,
        "availability_zone": g.availability_zone,
        "group_type": g.group_type_id,
        "volume_types": g.volume_type_ids,
        "group_snapshot_id": g.group_snapshot_id,
        "source_group_id": g.source_group_id,
        "created_at": iso(g.created_at_ms),
        "project_id": g.project_id,
        "links": links(cloud, &g.project_id, "groups", &g.id),
    });
    if list_volume {
        view["volumes"] = json!(volumes);
    }
    view
}

/// A group snapshot's view.
pub fn group_snapshot(cloud: &Cloud, g: &GroupSnapshot) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "status": g.status,
        "group_id": g.group_id,
        "group_type_id": g.group_type_id,
        "created_at": iso(g.created_at_ms),
        "project_id": g.project_id,
        "links": links(cloud, &g.project_id, "group_snapshots", &g.id),
    })
}
