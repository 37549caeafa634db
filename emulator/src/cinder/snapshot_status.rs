//! `os-update_snapshot_status`: the snapshot action a volume driver outside Cinder (Nova's
//! assisted snapshots) uses to report progress; Cinder allows only the moves of its status map.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::{Ctx, not_found};
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::Cloud;

const F: Family = Family::Volume;

/// Where a snapshot may go from each status it may be updated in (Cinder's snapshot_actions).
fn allowed(current: &str) -> Option<&'static [&'static str]> {
    match current {
        "creating" => Some(&["creating", "available", "error"]),
        "deleting" => Some(&["deleting", "error_deleting"]),
        _ => None,
    }
}

/// Applies `{"status": ..., "progress": ...}` to the caller's snapshot.
pub fn update(cloud: &Cloud, ctx: &Ctx, id: &str, args: &Value) -> ApiResult<Response> {
    let status = args
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request(F, "'status' must be specified."))?
        .to_string();
    let progress = match args.get("progress") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) if p.len() <= 255 => Some(p.clone()),
        Some(_) => return Err(ApiError::bad_request(F, "Invalid input for field/attribute progress.")),
    };
    cloud.write(F, |w| {
        // Owner only (an admin too): another project's snapshot is not there.
        let snapshot = w
            .stores
            .values_mut()
            .find_map(|s| s.snapshots.get_mut(id))
            .filter(|s| s.project_id == ctx.auth.project_id || ctx.auth.is_admin())
            .ok_or_else(|| not_found("Snapshot", id))?;
        let Some(moves) = allowed(&snapshot.status) else {
            return Err(ApiError::bad_request(
                F,
                format!("Snapshot status {} not allowed for update_snapshot_status", snapshot.status),
            ));
        };
        if !moves.contains(&status.as_str()) {
            return Err(ApiError::bad_request(
                F,
                format!(
                    "Provided snapshot status {status} not allowed for snapshot with status {}.",
                    snapshot.status
                ),
            ));
        }
        snapshot.status = status.clone();
        snapshot.pending = None;
        snapshot.updated_at_ms = Some(now_ms());
        if let Some(p) = &progress {
            snapshot.extra.insert(PROGRESS.into(), Value::String(p.clone()));
        }
        Ok(StatusCode::ACCEPTED.into_response())
    })
}

/// The key under which a reported progress is kept in the snapshot's family fields.
pub const PROGRESS: &str = "cinder_progress";

/// The progress a snapshot view shows: the reported one, else 100 % once available.
pub fn progress(snapshot: &crate::model::Snapshot) -> String {
    match snapshot.extra.get(PROGRESS).and_then(Value::as_str) {
        Some(p) => p.to_string(),
        None if snapshot.status == "available" => "100%".into(),
        None => "0%".into(),
    }
}
