//! Small read-only routes clients and tempest expect: `volumes/summary` (3.12) and the
//! extension list.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::Ctx;
use crate::errors::ApiResult;
use crate::store::Cloud;

/// The extensions whose behaviour the emulator has (alias, name).
const EXTENSIONS: &[(&str, &str)] = &[
    ("os-admin-actions", "AdminActions"),
    ("os-availability-zone", "AvailabilityZones"),
    ("backups", "Backups"),
    ("capabilities", "Capabilities"),
    ("os-extended-snapshot-attributes", "ExtendedSnapshotAttributes"),
    ("os-hosts", "Hosts"),
    ("qos-specs", "Qos_specs_manage"),
    ("os-quota-class-sets", "QuotaClasses"),
    ("os-quota-sets", "Quotas"),
    ("scheduler-stats", "Scheduler_stats"),
    ("os-services", "Services"),
    ("os-types-extra-specs", "TypesExtraSpecs"),
    ("os-types-manage", "TypesManage"),
    ("os-vol-host-attr", "VolumeHostAttribute"),
    ("os-vol-mig-status-attr", "VolumeMigStatusAttribute"),
    ("os-vol-tenant-attr", "VolumeTenantAttribute"),
    ("os-volume-actions", "VolumeActions"),
    ("os-volume-manage", "VolumeManage"),
    ("os-volume-transfer", "VolumeTransfer"),
];

/// The routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/volumes/summary", get(summary))
        .route("/volume/v3/{project_id}/extensions", get(extensions))
}

/// `GET /volumes/summary`: count and total size of the caller's volumes (every project's for
/// an admin with `all_tenants`), and from 3.36 their merged metadata.
async fn summary(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    if !ctx.version.at_least(3, 12) {
        return Err(crate::errors::ApiError::not_found(
            crate::errors::Family::Volume,
            "The resource could not be found.",
        ));
    }
    let all = ctx.auth.is_admin()
        && query.iter().any(|(k, v)| k == "all_tenants" && super::parse_bool(&json!(v)).unwrap_or(true));
    let body = cloud.read(|w| {
        let volumes: Vec<_> = w
            .stores
            .iter()
            .filter(|(p, _)| all || **p == ctx.auth.project_id)
            .flat_map(|(_, s)| s.volumes.values())
            .collect();
        let mut summary = json!({
            "total_count": volumes.len(),
            "total_size": volumes.iter().map(|v| v.size).sum::<u64>(),
        });
        if ctx.version.at_least(3, 36) {
            let mut metadata: serde_json::Map<String, Value> = serde_json::Map::new();
            for v in &volumes {
                for (k, val) in &v.metadata {
                    let entry = metadata.entry(k.clone()).or_insert_with(|| json!([]));
                    if let Some(list) = entry.as_array_mut()
                        && !list.contains(&json!(val))
                    {
                        list.push(json!(val));
                    }
                }
            }
            summary["metadata"] = Value::Object(metadata);
        }
        json!({ "volume-summary": summary })
    });
    Ok(Json(body))
}

async fn extensions() -> Json<Value> {
    let list: Vec<Value> = EXTENSIONS
        .iter()
        .map(|(alias, name)| {
            json!({"alias": alias, "name": name, "description": format!("{name} support."),
                   "links": [], "updated": "2012-08-13T00:00:00+00:00"})
        })
        .collect();
    Json(json!({ "extensions": list }))
}
