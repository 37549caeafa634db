//! Quota sets (with `usage=true`), defaults, absolute limits and availability zones.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, body_object};
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The quota, limits and zone routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/os-quota-sets/{target}", get(show).put(update).delete(reset))
        .route("/volume/v3/{project_id}/os-quota-sets/{target}/defaults", get(defaults))
        .route("/volume/v3/{project_id}/limits", get(limits))
        .route("/volume/v3/{project_id}/os-availability-zone", get(zones))
}

/// Every quota resource name: the global ones and the per-type ones.
pub fn resources(w: &World) -> Vec<String> {
    let mut names: Vec<String> = w.default_quotas.keys().cloned().collect();
    for t in w.volume_types.values() {
        for key in ["volumes", "gigabytes", "snapshots"] {
            names.push(format!("{key}_{}", t.name));
        }
    }
    names
}

/// Callers see their own project's quotas; only an admin sees (or changes) another's.
fn target_project(w: &World, ctx: &Ctx, target: &str) -> ApiResult<String> {
    if target != ctx.auth.project_id && !ctx.auth.is_admin() {
        return Err(ApiError::forbidden(
            F,
            "Policy doesn't allow volume_extension:quotas:show to be performed.",
        ));
    }
    Ok(w.project(target).map_or_else(|| target.to_string(), |p| p.id.clone()))
}

#[derive(serde::Deserialize)]
struct ShowQuery {
    #[serde(default)]
    usage: Option<String>,
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
    Query(query): Query<ShowQuery>,
) -> ApiResult<Json<Value>> {
    let usage = query.usage.as_deref().and_then(|u| super::parse_bool(&json!(u))).unwrap_or(false);
    cloud.read(|w| {
        let project = target_project(w, &ctx, &target)?;
        let used = w.usage(&project);
        let mut set = serde_json::Map::new();
        set.insert("id".into(), json!(project));
        for name in resources(w) {
            let limit = w.quota_limit(&project, &name);
            let value = if usage {
                json!({"limit": limit, "in_use": used.get(&name).copied().unwrap_or(0), "reserved": 0, "allocated": 0})
            } else {
                json!(limit)
            };
            set.insert(name, value);
        }
        Ok(Json(json!({"quota_set": set})))
    })
}

async fn defaults(State(cloud): State<Cloud>, Path((_, target)): Path<(String, String)>) -> Json<Value> {
    cloud.read(|w| {
        let mut set = serde_json::Map::new();
        set.insert("id".into(), json!(target));
        for name in resources(w) {
            set.insert(name.clone(), json!(w.default_quotas.get(&name).copied().unwrap_or(-1)));
        }
        Json(json!({"quota_set": set}))
    })
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:quotas:update")?;
    let map = body_object(&body, "quota_set")?;
    cloud.write(F, |w| {
        let project = target_project(w, &ctx, &target)?;
        let known = resources(w);
        let mut changes = Vec::new();
        for (key, value) in &map {
            if key == "id" || key == "tenant_id" {
                continue;
            }
            if !known.contains(key) {
                return Err(ApiError::bad_request(F, format!("Bad key(s) in quota set: {key}")));
            }
            let limit = value.as_i64().or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                .filter(|l| *l >= -1)
                .ok_or_else(|| ApiError::bad_request(F, format!("Invalid input received: Quota limit {value} for {key} must be an integer of -1 or more.")))?;
            let used = w.usage(&project).get(key).copied().unwrap_or(0);
            if limit >= 0 && limit < used {
                return Err(ApiError::bad_request(F, format!("Invalid input received: Quota limit {limit} for {key} must be greater than or equal to already used and reserved {used}.")));
            }
            changes.push((key.clone(), limit));
        }
        let store = w.store_mut(&project);
        for (key, limit) in changes {
            store.quotas.insert(key, limit);
        }
        let mut set = serde_json::Map::new();
        for name in known {
            set.insert(name.clone(), json!(w.quota_limit(&project, &name)));
        }
        Ok(Json(json!({"quota_set": set})))
    })
}

async fn reset(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, target)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    ctx.require_admin("volume_extension:quotas:delete")?;
    cloud.write(F, |w| {
        let project = target_project(w, &ctx, &target)?;
        w.store_mut(&project).quotas.clear();
        Ok(StatusCode::OK)
    })
}

async fn limits(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> Json<Value> {
    cloud.read(|w| {
        let p = &ctx.auth.project_id;
        let used = w.usage(p);
        Json(json!({"limits": {"rate": [], "absolute": {
            "totalSnapshotsUsed": used["snapshots"], "maxTotalBackups": w.quota_limit(p, "backups"),
            "maxTotalVolumeGigabytes": w.quota_limit(p, "gigabytes"), "maxTotalSnapshots": w.quota_limit(p, "snapshots"),
            "maxTotalBackupGigabytes": w.quota_limit(p, "backup_gigabytes"), "totalBackupGigabytesUsed": used["backup_gigabytes"],
            "maxTotalVolumes": w.quota_limit(p, "volumes"), "totalVolumesUsed": used["volumes"],
            "totalBackupsUsed": used["backups"], "totalGigabytesUsed": used["gigabytes"],
        }}}))
    })
}

async fn zones(State(cloud): State<Cloud>) -> Json<Value> {
    cloud.read(|w| {
        let zones: Vec<Value> = w
            .availability_zones
            .iter()
            .map(|z| json!({"zoneName": z, "zoneState": {"available": true}}))
            .collect();
        Json(json!({"availabilityZoneInfo": zones}))
    })
}
