//! `POST /groups/action {"create-from-src": ...}` (3.14): a new group whose volumes are clones
//! of another group's volumes, or made from a group snapshot's snapshots.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{Ctx, check_quota, not_found, opt_str};
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Group, Op, Pending, Volume};
use crate::sparse;
use crate::store::Cloud;

const F: Family = Family::Volume;

/// The route.
pub fn routes() -> Router<Cloud> {
    Router::new().route("/volume/v3/{project_id}/groups/action", post(action))
}

/// A member of the new group: what it is copied from, and the fields it keeps.
struct Member {
    source_file: std::path::PathBuf,
    size: u64,
    type_id: String,
    snapshot_id: Option<String>,
    source_volid: Option<String>,
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    if !ctx.version.at_least(3, 14) {
        return Err(ApiError::not_found(F, "The resource could not be found."));
    }
    let value = super::body_value(&body)?;
    let map = value.get("create-from-src").and_then(Value::as_object).cloned().ok_or_else(|| {
        ApiError::bad_request(F, "Missing required element 'create-from-src' in request body.")
    })?;
    let name = opt_str(&map, "name")?.unwrap_or_default();
    let description = opt_str(&map, "description")?;
    let source_group = opt_str(&map, "source_group_id")?;
    let group_snapshot = opt_str(&map, "group_snapshot_id")?;
    if source_group.is_some() == group_snapshot.is_some() {
        return Err(ApiError::bad_request(
            F,
            "Invalid input received: Either 'group_snapshot_id' or 'source_group_id' must be provided to create group, but not both.",
        ));
    }
    let project = ctx.auth.project_id.clone();
    let view = cloud.write(F, |w| {
        // The caller's own project only, admin or not: the new group lands there.
        let store = w.stores.get(&project).cloned().unwrap_or_default();
        let (from, members): (Group, Vec<Member>) = if let Some(gid) = &source_group {
            let g = store.groups.get(gid).cloned().ok_or_else(|| not_found("Group", gid))?;
            if g.status != "available" {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid group: Source group {gid} status must be available, but current status is: {}.", g.status),
                ));
            }
            let members = store
                .volumes
                .values()
                .filter(|v| v.group_id.as_deref() == Some(gid.as_str()))
                .map(|v| Member {
                    source_file: cloud.volume_file(&v.id),
                    size: v.size,
                    type_id: v.volume_type_id.clone(),
                    snapshot_id: None,
                    source_volid: Some(v.id.clone()),
                })
                .collect();
            (g, members)
        } else {
            let gsid = group_snapshot.as_deref().unwrap_or_default();
            let gs = store.group_snapshots.get(gsid).cloned().ok_or_else(|| not_found("GroupSnapshot", gsid))?;
            if gs.status != "available" {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid group snapshot: Group snapshot {gsid} status must be available, but current status is: {}.", gs.status),
                ));
            }
            let g = store.groups.get(&gs.group_id).cloned().ok_or_else(|| not_found("Group", &gs.group_id))?;
            let members = store
                .snapshots
                .values()
                .filter(|s| s.group_snapshot_id.as_deref() == Some(gsid))
                .map(|s| Member {
                    source_file: cloud.snapshot_file(&s.id),
                    size: s.size,
                    type_id: store.volumes.get(&s.volume_id).map(|v| v.volume_type_id.clone()).unwrap_or_else(|| w.default_volume_type_id.clone()),
                    snapshot_id: Some(s.id.clone()),
                    source_volid: None,
                })
                .collect();
            (g, members)
        };
        let gigabytes: u64 = members.iter().map(|m| m.size).sum();
        check_quota(
            w,
            &project,
            &[("groups".into(), 1), ("volumes".into(), members.len() as i64), ("gigabytes".into(), gigabytes as i64)],
        )?;
        let id = resource_id();
        let now = now_ms();
        let mut volumes = Vec::new();
        for m in members {
            let vid = resource_id();
            sparse::copy(&m.source_file, &cloud.volume_file(&vid), m.size)
                .map_err(|e| ApiError::internal(F, format!("Creating the group's volume failed: {e}")))?;
            let multiattach = w.volume_types.get(&m.type_id).is_some_and(|t| t.multiattach());
            volumes.push(Volume {
                id: vid,
                project_id: project.clone(),
                user_id: ctx.auth.user_id.clone(),
                name: String::new(),
                description: None,
                size: m.size,
                status: "creating".into(),
                volume_type_id: m.type_id,
                availability_zone: from.availability_zone.clone(),
                bootable: false,
                readonly: false,
                multiattach,
                metadata: Default::default(),
                snapshot_id: m.snapshot_id,
                source_volid: m.source_volid,
                backup_id: None,
                group_id: Some(id.clone()),
                migration_status: None,
                attachments: Vec::new(),
                created_at_ms: now,
                updated_at_ms: None,
                pending: Some(Pending { op: Op::Create, due_ms: cloud.due("volume.creating") }),
                extra: Default::default(),
            });
        }
        let group = Group {
            id: id.clone(),
            project_id: project.clone(),
            name: name.clone(),
            description: description.clone(),
            group_type_id: from.group_type_id.clone(),
            volume_type_ids: from.volume_type_ids.clone(),
            availability_zone: from.availability_zone.clone(),
            status: "creating".into(),
            created_at_ms: now,
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("group.creating") }),
            source_group_id: source_group.clone(),
            group_snapshot_id: group_snapshot.clone(),
        };
        let target = w.store_mut(&project);
        target.groups.insert(id.clone(), group);
        for v in volumes {
            target.volumes.insert(v.id.clone(), v);
        }
        Ok(json!({"id": id, "name": name}))
    })?;
    Ok((StatusCode::ACCEPTED, Json(json!({"group": view}))).into_response())
}
