//! The service inventory an admin sees: `os-services` (list, enable, disable, freeze, thaw)
//! and the Hosts extension (`os-hosts`). The emulator is one all-in-one Cinder: a scheduler,
//! one LVM-like volume backend and a backup service, always up, on the host the volume views
//! name. What an admin changes (disabled, its reason, frozen) is kept with the world; it is
//! reported, not acted on (a disabled backend still takes volumes).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use serde_json::{Value, json};

use super::{Ctx, body_value};
use crate::clock::{iso, now_ms};
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The host every service runs on.
pub const HOST: &str = "emulator";
/// The volume service's `host@backend`.
pub const VOLUME_HOST: &str = "emulator@lvmdriver-1";
/// The backend (and pool) name.
pub const BACKEND: &str = "lvmdriver-1";
/// The one pool, `host@backend#pool`, as volumes' `os-vol-host-attr:host` names it.
pub const POOL: &str = "emulator@lvmdriver-1#lvmdriver-1";

/// The services, as (binary, host).
const SERVICES: &[(&str, &str)] =
    &[("cinder-scheduler", HOST), ("cinder-volume", VOLUME_HOST), ("cinder-backup", HOST)];

pub use crate::model::ServiceState;

fn state_key(binary: &str, host: &str) -> String {
    format!("{binary}@{host}")
}

fn state(w: &World, binary: &str, host: &str) -> ServiceState {
    w.service_states.get(&state_key(binary, host)).cloned().unwrap_or_default()
}

/// The routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/os-services", get(list_services))
        .route("/volume/v3/{project_id}/os-services/{action}", put(update_service))
        .route("/volume/v3/{project_id}/os-hosts", get(list_hosts))
        .route("/volume/v3/{project_id}/os-hosts/{host}", get(show_host))
}

/// Whether a service on `service_host` is on `wanted`, matching at host, backend or pool level
/// as Cinder's host filters do (a pool suffix on `wanted` is ignored).
pub fn host_matches(service_host: &str, wanted: &str) -> bool {
    let wanted = wanted.split('#').next().unwrap_or_default();
    !wanted.is_empty()
        && (service_host == wanted
            || service_host
                .strip_prefix(wanted)
                .is_some_and(|rest| rest.starts_with('@') || rest.starts_with('#')))
}

fn zone(w: &World) -> String {
    w.availability_zones.first().cloned().unwrap_or_else(|| "nova".into())
}

/// `GET /os-services`: filtered by `host` (at host level) and `binary`.
async fn list_services(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:services:index")?;
    let param = |name: &str| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let host = param("host").filter(|h| !h.is_empty());
    // `service` is the pre-Kilo spelling of `binary`, still honoured by Cinder.
    let binary = param("binary").or_else(|| param("service")).filter(|b| !b.is_empty());
    let (zone, states) =
        cloud.read(|w| (zone(w), SERVICES.iter().map(|(b, h)| state(w, b, h)).collect::<Vec<_>>()));
    let updated = iso(now_ms());
    let services: Vec<Value> = SERVICES
        .iter()
        .zip(states)
        .filter(|((b, h), _)| {
            host.is_none_or(|want| host_matches(h, want)) && binary.is_none_or(|want| want == *b)
        })
        .map(|((b, h), st)| {
            let status = if st.disabled { "disabled" } else { "enabled" };
            let mut view = json!({
                "binary": b, "host": h, "zone": zone, "status": status, "state": "up",
                "updated_at": updated, "disabled_reason": st.disabled_reason,
            });
            if ctx.version.at_least(3, 7) {
                view["cluster"] = Value::Null;
            }
            if *b == "cinder-volume" {
                view["replication_status"] = json!("disabled");
                view["active_backend_id"] = Value::Null;
                view["frozen"] = json!(st.frozen);
                if ctx.version.at_least(3, 49) {
                    view["backend_state"] = json!("up");
                }
            }
            view
        })
        .collect();
    Ok(Json(json!({ "services": services })))
}

/// `GET /os-hosts`: every service as a host entry.
async fn list_hosts(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:hosts")?;
    let (zone, states) =
        cloud.read(|w| (zone(w), SERVICES.iter().map(|(b, h)| state(w, b, h)).collect::<Vec<_>>()));
    let wanted_zone = query.iter().rev().find(|(k, _)| k == "zone").map(|(_, v)| v.as_str());
    let updated = iso(now_ms());
    let hosts: Vec<Value> = SERVICES
        .iter()
        .zip(states)
        .filter(|_| wanted_zone.is_none_or(|z| z.is_empty() || z == zone))
        .map(|((b, h), st)| {
            let state = if st.disabled { "disabled" } else { "enabled" };
            json!({"service-status": "available", "service": b, "zone": zone,
                   "service-state": state, "host_name": h, "last-update": updated})
        })
        .collect();
    Ok(Json(json!({ "hosts": hosts })))
}

/// `GET /os-hosts/{host}`: volume and snapshot usage on a volume host, in total and per
/// project with volumes there (the per-project rows count the whole project, as Cinder's do);
/// every number is a string.
async fn show_host(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, host)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:hosts")?;
    if host != VOLUME_HOST {
        return Err(ApiError::not_found(F, "Host not found"));
    }
    let body = cloud.read(|w| {
        let row = |project: &str, volumes: (usize, u64), snapshots: (usize, u64)| {
            json!({"resource": {
                "host": host, "project": project,
                "volume_count": volumes.0.to_string(), "total_volume_gb": volumes.1.to_string(),
                "snapshot_count": snapshots.0.to_string(), "total_snapshot_gb": snapshots.1.to_string(),
            }})
        };
        let all_volumes = w.stores.values().flat_map(|s| s.volumes.values());
        let total_volumes = (all_volumes.clone().count(), all_volumes.map(|v| v.size).sum());
        let mut rows = Vec::new();
        let mut snapshot_total = (0, 0);
        for (project, store) in w.stores.iter().filter(|(_, s)| !s.volumes.is_empty()) {
            let volumes = (store.volumes.len(), store.volumes.values().map(|v| v.size).sum());
            let snapshots = (store.snapshots.len(), store.snapshots.values().map(|s| s.size).sum::<u64>());
            snapshot_total = (snapshot_total.0 + snapshots.0, snapshot_total.1 + snapshots.1);
            rows.push(row(project, volumes, snapshots));
        }
        rows.insert(0, row("(total)", total_volumes, snapshot_total));
        json!({ "host": rows })
    });
    Ok(Json(body))
}

fn text_field<'a>(body: &'a Value, key: &str) -> Option<&'a str> {
    body.get(key).and_then(Value::as_str)
}

/// `PUT /os-services/{enable|disable|disable-log-reason|freeze|thaw}`.
async fn update_service(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, action)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.require_admin("volume_extension:services:update")?;
    let body = body_value(&body)?;
    let host = || {
        text_field(&body, "host")
            .map(str::to_string)
            .ok_or_else(|| ApiError::bad_request(F, "Missing required element 'host' in request body."))
    };
    let (disabled, status) = match action.as_str() {
        "enable" => (false, "enabled"),
        "disable" | "disable-log-reason" => (true, "disabled"),
        "freeze" | "thaw" => return freeze(&cloud, &host()?, action == "freeze"),
        _ => return Err(ApiError::bad_request(F, "Invalid input received: Unknown action")),
    };
    let host = host()?;
    let reason = if action == "disable-log-reason" {
        let reason = text_field(&body, "disabled_reason").map(str::trim).unwrap_or_default();
        if reason.is_empty() || reason.chars().count() > 255 {
            return Err(ApiError::bad_request(
                F,
                "Disabled reason contains invalid characters or is too long",
            ));
        }
        Some(reason.to_string())
    } else {
        None
    };
    let service = text_field(&body, "service").unwrap_or_default().to_string();
    let binary = text_field(&body, "binary").unwrap_or_default().to_string();
    let wanted = if binary.is_empty() { service.clone() } else { binary.clone() };
    if wanted.is_empty() {
        return Err(ApiError::bad_request(F, "Missing required element 'binary' in request body."));
    }
    if !SERVICES.iter().any(|(b, h)| *b == wanted && *h == host) {
        return Err(ApiError::not_found(F, format!("Service {wanted} could not be found on host {host}.")));
    }
    cloud.write(F, |w| {
        let st = w.service_states.entry(state_key(&wanted, &host)).or_default();
        st.disabled = disabled;
        if action != "disable" {
            st.disabled_reason = reason.clone();
        }
        let mut answer = json!({"disabled": disabled, "status": status, "host": host, "service": service, "binary": binary});
        if action != "disable" {
            answer["disabled_reason"] = json!(reason);
        }
        Ok(Json(answer).into_response())
    })
}

/// Freezing or thawing a backend host: 400 when no volume service is there.
fn freeze(cloud: &Cloud, host: &str, frozen: bool) -> ApiResult<Response> {
    let matching: Vec<&(&str, &str)> =
        SERVICES.iter().filter(|(b, h)| *b == "cinder-volume" && host_matches(h, host)).collect();
    if matching.is_empty() {
        return Err(ApiError::bad_request(
            F,
            format!("Invalid input received: No service found with host {host}"),
        ));
    }
    cloud.write(F, |w| {
        for (b, h) in &matching {
            w.service_states.entry(state_key(b, h)).or_default().frozen = frozen;
        }
        Ok(StatusCode::OK.into_response())
    })
}
