//! The EVS JSON views of disks and snapshots.

use serde_json::{Value, json};

use crate::EVS_PREFIX;
use crate::clock::iso;
use crate::loopdev::wwn;
use crate::model::{Snapshot, Volume};
use crate::store::{Cloud, World};

/// The EVS tags of a disk (`extra.tags`).
pub fn tags_of(volume: &Volume) -> serde_json::Map<String, Value> {
    volume.extra.get("tags").and_then(Value::as_object).cloned().unwrap_or_default()
}

/// The disk type name of a volume.
pub fn type_name(w: &World, volume: &Volume) -> String {
    w.volume_types.get(&volume.volume_type_id).map(|t| t.name.clone()).unwrap_or_default()
}

/// Whether a disk is a SCSI (`hw:passthrough`) disk.
pub fn is_scsi(volume: &Volume) -> bool {
    volume.metadata.get("hw:passthrough").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The detailed view of a disk.
pub fn disk(cloud: &Cloud, w: &World, v: &Volume) -> Value {
    let base = cloud.base_url();
    let type_name = type_name(w, v);
    let attachments: Vec<Value> = v
        .attachments
        .iter()
        .filter(|a| a.status == "attached")
        .map(|a| {
            json!({
                "server_id": a.server_id, "attachment_id": a.id, "attached_at": iso(a.attached_at_ms),
                "host_name": null, "volume_id": v.id, "device": a.device, "id": v.id,
            })
        })
        .collect();
    let encrypted = v.metadata.get("__system__encrypted").is_some_and(|e| e == "1");
    let mut view = json!({
        "id": v.id,
        "links": [
            {"href": format!("{base}{EVS_PREFIX}/v2/{}/cloudvolumes/{}", v.project_id, v.id), "rel": "self"},
            {"href": format!("{base}{EVS_PREFIX}/{}/cloudvolumes/{}", v.project_id, v.id), "rel": "bookmark"},
        ],
        "name": v.name, "status": v.status, "attachments": attachments,
        "availability_zone": v.availability_zone,
        "os-vol-host-attr:host": format!("pod01.{}#{type_name}", v.availability_zone),
        "source_volid": v.source_volid, "snapshot_id": v.snapshot_id, "description": v.description,
        "os-vol-tenant-attr:tenant_id": v.project_id, "volume_image_metadata": {},
        "created_at": iso(v.created_at_ms), "updated_at": v.updated_at_ms.map(iso),
        "volume_type": type_name, "size": v.size, "consistencygroup_id": null,
        "bootable": v.bootable.to_string(), "metadata": v.metadata, "encrypted": encrypted,
        "replication_status": "disabled", "os-vol-mig-status-attr:migstat": null,
        "os-vol-mig-status-attr:name_id": null, "os-volume-replication:extended_status": null,
        "shareable": v.multiattach.to_string(), "multiattach": v.multiattach, "user_id": v.user_id,
        "service_type": "EVS", "dedicated_storage_id": null, "dedicated_storage_name": null,
        "tags": tags_of(v), "wwn": wwn(&v.id), "enterprise_project_id": enterprise_project(v),
    });
    if is_scsi(v) {
        view["serial_number"] = json!(wwn(&v.id));
    }
    for key in ["iops", "throughput"] {
        if let Some(total) = v.extra.get(key) {
            view[key] = json!({"id": format!("{key}-{}", &v.id), "frozened": false, "total_val": total});
        }
    }
    view
}

/// The enterprise project a disk was created in (`"0"`: the default one).
pub fn enterprise_project(v: &Volume) -> &str {
    v.extra.get("enterprise_project_id").and_then(Value::as_str).unwrap_or("0")
}

/// The view of a snapshot.
pub fn snapshot(s: &Snapshot) -> Value {
    json!({
        "id": s.id, "name": s.name, "description": s.description, "status": s.status, "size": s.size,
        "volume_id": s.volume_id, "metadata": s.metadata, "created_at": iso(s.created_at_ms),
        "updated_at": s.updated_at_ms.map(iso), "os-extended-snapshot-attributes:progress":
            if s.status == "available" { "100%" } else { "0%" },
        "os-extended-snapshot-attributes:project_id": s.project_id, "service_type": "EVS",
    })
}
