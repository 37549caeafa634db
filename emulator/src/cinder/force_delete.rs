//! `os-force_delete` on a volume (admin): Cinder's delete with `force`, which skips the status
//! check but still refuses a volume that is attached, in a group, migrating or has snapshots.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{Ctx, invalid_volume};
use crate::clock::now_ms;
use crate::errors::ApiResult;
use crate::errors::Family;
use crate::model::{Op, Pending};
use crate::store::Cloud;

/// Sends the volume to `deleting` whatever its status, when nothing else holds it.
pub fn volume(cloud: &Cloud, ctx: &Ctx, id: &str) -> ApiResult<Response> {
    // Policy first: a member learns nothing, not even whether the id exists.
    ctx.require_admin("volume_extension:volume_admin_actions:force_delete")?;
    cloud.write(Family::Volume, |w| {
        let volume = super::volumes::find(w, ctx, id)?.clone();
        let held = !volume.attachments.is_empty()
            || volume.group_id.is_some()
            || volume.migration_status.as_deref() == Some("migrating")
            || volume.status == "deleting"
            || w.stores[&volume.project_id].snapshots.values().any(|s| s.volume_id == id);
        if held {
            return Err(invalid_volume(
                "Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer.",
            ));
        }
        let due = cloud.due("volume.deleting");
        let v = super::volumes::find_mut(w, ctx, id)?;
        v.status = "deleting".into();
        v.updated_at_ms = Some(now_ms());
        v.pending = Some(Pending { op: Op::Delete, due_ms: due });
        Ok(StatusCode::ACCEPTED.into_response())
    })
}
