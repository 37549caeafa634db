//! EVS quotas: `GET /v2/{project_id}/os-quota-sets/{target_project_id}?usage=True`, with the
//! per-type entries of the Huawei disk types.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, evs};
use crate::errors::ApiResult;
use crate::store::Cloud;

/// The quota routes.
pub fn routes() -> Router<Cloud> {
    Router::new().route("/evs/v2/{project_id}/os-quota-sets/{target_project_id}", get(show))
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    if target != ctx.auth.project_id {
        return Err(evs(StatusCode::FORBIDDEN, "EVS.5403", "Policy check failed."));
    }
    cloud.read(|w| {
        let usage = w.usage(&target);
        let mut set = serde_json::Map::new();
        set.insert("id".into(), json!(target));
        // EVS lists the totals and one entry per EVS disk type (SAS, SSD, ...); the per-type
        // keys of other (Cinder) volume types are not EVS's.
        let evs_types: Vec<&str> =
            w.volume_types.values().filter(|t| super::types::is_huawei(t)).map(|t| t.name.as_str()).collect();
        let mut resources: Vec<String> =
            ["volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes"].map(String::from).to_vec();
        for name in &evs_types {
            for base in ["volumes", "gigabytes", "snapshots"] {
                resources.push(format!("{base}_{name}"));
            }
        }
        for resource in resources {
            let used = usage.get(&resource).copied().unwrap_or(0);
            let limit = w.quota_limit(&target, &resource);
            set.insert(resource, json!({"limit": limit, "in_use": used, "reserved": 0}));
        }
        let per_volume = w.quota_limit(&target, "per_volume_gigabytes");
        set.insert("per_volume_gigabytes".into(), json!({"limit": per_volume, "in_use": 0, "reserved": 0}));
        Ok(Json(json!({"quota_set": set})))
    })
}
