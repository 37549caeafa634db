//! What the scheduler knows of the backend: `scheduler-stats/get_pools` and
//! `capabilities/{host}`, reporting the one LVM-like pool with the numbers an LVM driver
//! reports (capacity from the volumes the emulator holds).

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::Ctx;
use super::services::{BACKEND, POOL, VOLUME_HOST, host_matches};
use crate::clock::{iso, now_ms};
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

use super::scheduler::{DRIVER_VERSION, PROTOCOL, VENDOR};

const F: Family = Family::Volume;

/// The capacity the pool reports, in GiB.
const TOTAL_GB: u64 = 10_240;

/// The routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/scheduler-stats/get_pools", get(get_pools))
        .route("/volume/v3/{project_id}/capabilities/{host}", get(capabilities))
}

fn pool_capabilities(w: &World) -> Value {
    let allocated: u64 = w.stores.values().flat_map(|s| s.volumes.values()).map(|v| v.size).sum();
    let count = w.stores.values().map(|s| s.volumes.len()).sum::<usize>();
    let now = iso(now_ms());
    json!({
        "pool_name": BACKEND, "volume_backend_name": BACKEND,
        "vendor_name": VENDOR, "driver_version": DRIVER_VERSION, "storage_protocol": PROTOCOL,
        "total_capacity_gb": TOTAL_GB as f64, "free_capacity_gb": TOTAL_GB.saturating_sub(allocated) as f64,
        "allocated_capacity_gb": allocated, "provisioned_capacity_gb": allocated, "total_volumes": count,
        "reserved_percentage": 0, "max_over_subscription_ratio": "20.0",
        "thin_provisioning_support": true, "thick_provisioning_support": false,
        "QoS_support": false, "multiattach": true, "backend_state": "up",
        "location_info": format!("LVMVolumeDriver:{}:{BACKEND}:thin:0", super::services::HOST),
        "filter_function": null, "goodness_function": null,
        "updated": now, "timestamp": now,
    })
}

/// `GET /scheduler-stats/get_pools[?detail=True]`.
async fn get_pools(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("scheduler_extension:scheduler_stats:get_pools")?;
    let detail = query
        .iter()
        .rev()
        .find(|(k, _)| k == "detail")
        .is_some_and(|(_, v)| super::parse_bool(&json!(v)).unwrap_or(false));
    // From 3.28 the other parameters filter; a `name` other than the pool's leaves none.
    let name_mismatch = ctx.version.at_least(3, 28) && query.iter().any(|(k, v)| k == "name" && v != POOL);
    let pools = if name_mismatch {
        Vec::new()
    } else if detail {
        vec![json!({"name": POOL, "capabilities": cloud.read(pool_capabilities)})]
    } else {
        vec![json!({ "name": POOL })]
    };
    Ok(Json(json!({ "pools": pools })))
}

/// `GET /capabilities/{host}`: the volume backend's capabilities, for its host at host,
/// backend or pool level.
async fn capabilities(
    Extension(ctx): Extension<Ctx>,
    Path((_, host)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:capabilities")?;
    if !host_matches(VOLUME_HOST, &host) {
        return Err(ApiError::not_found(F, format!("Can't find service: {host}")));
    }
    let property = |title: &str, description: &str| json!({"title": title, "description": description, "type": "boolean"});
    Ok(Json(json!({
        "namespace": format!("OS::Storage::Capabilities::{BACKEND}"),
        "vendor_name": VENDOR, "volume_backend_name": BACKEND, "pool_name": null,
        "driver_version": DRIVER_VERSION, "storage_protocol": PROTOCOL,
        "display_name": null, "description": null, "visibility": null, "replication_targets": [],
        "properties": {
            "thin_provisioning": property("Thin Provisioning", "Sets thin provisioning."),
            "compression": property("Compression", "Enables compression."),
            "qos": property("QoS", "Enables QoS."),
            "replication_enabled": property("Replication", "Enables replication."),
        },
    })))
}
