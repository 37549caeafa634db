//! EVS snapshots under `/v2/{project_id}/snapshots` (the path the EVS API reference documents)
//! and `/v2/{project_id}/cloudsnapshots`: create, list with filters and marker pagination,
//! show, update, delete.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, evs, evs_bad, evs_not_found, json_object, opt_string, views};
use crate::EVS_PREFIX;
use crate::bootstrap::resource_id;
use crate::clock::now_ms;
use crate::errors::{ApiResult, Family};
use crate::model::{Metadata, Op, Pending, Snapshot};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Evs;

/// The snapshot routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/evs/v2/{project_id}/cloudsnapshots", get(detail).post(create))
        .route("/evs/v2/{project_id}/cloudsnapshots/detail", get(detail))
        .route("/evs/v2/{project_id}/cloudsnapshots/{snapshot_id}", get(show).put(update).delete(delete))
        .route("/evs/v2/{project_id}/snapshots", get(detail).post(create))
        .route("/evs/v2/{project_id}/snapshots/detail", get(detail))
        .route("/evs/v2/{project_id}/snapshots/{snapshot_id}", get(show).put(update).delete(delete))
}

fn find<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Snapshot> {
    w.stores
        .get(&ctx.auth.project_id)
        .and_then(|s| s.snapshots.get(id))
        .ok_or_else(|| evs_not_found("Snapshot", id))
}

async fn create(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let top = json_object(&body, F)?;
    let map = top.get("snapshot").and_then(Value::as_object).cloned();
    let map = map.ok_or_else(|| evs_bad("EVS.5400", "Malformed request body."))?;
    let volume_id =
        opt_string(&map, "volume_id")?.ok_or_else(|| evs_bad("EVS.1002", "invalid volume id!"))?;
    let name = opt_string(&map, "name")?.unwrap_or_default();
    let description = opt_string(&map, "description")?;
    let force = map.get("force").and_then(Value::as_bool).unwrap_or(false);
    // Reference 7.3.1: `metadata` is an object of the snapshot's own key/value pairs.
    let metadata: Metadata = match map.get("metadata") {
        None | Some(Value::Null) => Metadata::default(),
        Some(Value::Object(pairs)) => pairs
            .iter()
            .map(|(k, v)| match v {
                Value::String(text) => Ok((k.clone(), text.clone())),
                _ => Err(evs_bad("EVS.5400", "Invalid metadata: values must be strings.")),
            })
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(evs_bad("EVS.5400", "Invalid metadata: expected an object.")),
    };
    if name.starts_with("autobk_snapshot_") {
        return Err(evs_bad("EVS.5400", "Snapshot names starting with autobk_snapshot_ are reserved."));
    }
    cloud.write(F, |w| {
        let volume = super::disks::find(w, &ctx, &volume_id)?.clone();
        let ok = volume.status == "available" || (volume.status == "in-use" && force);
        if !ok {
            return Err(evs_bad(
                "EVS.5400",
                format!(
                    "Invalid volume: Volume {volume_id} status must be available, but current status is: {}.",
                    volume.status
                ),
            ));
        }
        let usage = w.usage(&volume.project_id);
        for (resource, amount) in [("snapshots", 1), ("gigabytes", volume.size as i64)] {
            let limit = w.quota_limit(&volume.project_id, resource);
            if limit >= 0 && usage.get(resource).copied().unwrap_or(0) + amount > limit {
                return Err(evs(StatusCode::PAYLOAD_TOO_LARGE, "EVS.5413", "Insufficient volume quota."));
            }
        }
        let id = resource_id();
        sparse::copy(&cloud.volume_file(&volume_id), &cloud.snapshot_file(&id), volume.size).map_err(
            |e| {
                tracing::error!(snapshot = %id, error = %e, "emulator: copying the snapshot data failed");
                evs(StatusCode::INTERNAL_SERVER_ERROR, "EVS.2002", "internal error!")
            },
        )?;
        let snapshot = Snapshot {
            id: id.clone(),
            project_id: volume.project_id.clone(),
            user_id: ctx.auth.user_id.clone(),
            name: name.clone(),
            description: description.clone(),
            volume_id: volume_id.clone(),
            size: volume.size,
            status: "creating".into(),
            metadata,
            group_snapshot_id: None,
            created_at_ms: now_ms(),
            updated_at_ms: None,
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("snapshot.creating") }),
            extra: Default::default(),
        };
        let view = views::snapshot(&snapshot);
        w.store_mut(&volume.project_id).snapshots.insert(id, snapshot);
        // Reference 7.3.1: a snapshot create answers 202.
        Ok((StatusCode::ACCEPTED, Json(json!({"snapshot": view}))))
    })
}

async fn detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let mut limit = 1000usize;
    let mut limited = false;
    let mut offset = 0usize;
    let mut marker = None;
    let mut filters = Vec::new();
    for (key, value) in &query {
        match key.as_str() {
            "limit" => {
                let n: i64 =
                    value.parse().map_err(|_| evs_bad("EVS.5400", "limit param must be an integer."))?;
                if n < 1 {
                    return Err(evs_bad("EVS.1023", "invalid filter limit!"));
                }
                if n > 1000 {
                    return Err(evs_bad("EVS.2142", "invalid filter limit, can not greater than 1000."));
                }
                limit = n as usize;
                limited = true;
            }
            "marker" => marker = Some(value.clone()),
            "offset" => {
                offset = value.parse().map_err(|_| evs_bad("EVS.5400", "offset param must be an integer."))?
            }
            _ => filters.push((key.clone(), value.clone())),
        }
    }
    cloud.read(|w| {
        let mut all: Vec<&Snapshot> =
            w.stores.get(&ctx.auth.project_id).map(|s| s.snapshots.values().collect()).unwrap_or_default();
        all.retain(|s| {
            filters.iter().all(|(k, v)| match k.as_str() {
                "name" => s.name.contains(v.as_str()),
                "status" => s.status == *v,
                "volume_id" => s.volume_id == *v,
                "id" => s.id == *v,
                _ => true,
            })
        });
        all.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.id.cmp(&b.id)));
        let count = all.len();
        let start = match &marker {
            Some(marker) => {
                all.iter()
                    .position(|s| s.id == *marker)
                    .ok_or_else(|| evs_bad("EVS.1024", "invalid filter marker!"))?
                    + 1
            }
            None => 0,
        } + offset;
        let page: Vec<&Snapshot> = all.iter().skip(start).take(limit).copied().collect();
        let more = all.len() > start + page.len();
        let snapshots: Vec<Value> = page.iter().map(|s| views::snapshot(s)).collect();
        // The reference returns the next-page link only when a limit was given and more remain.
        let links = match page.last() {
            Some(last) if limited && more => json!([{
                "href": format!("{}{EVS_PREFIX}/v2/{}/snapshots/detail?limit={limit}&marker={}", cloud.base_url(), ctx.auth.project_id, last.id),
                "rel": "next",
            }]),
            _ => Value::Null,
        };
        Ok(Json(json!({"snapshots": snapshots, "count": count, "snapshots_links": links})))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"snapshot": views::snapshot(find(w, &ctx, &id)?)}))))
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let top = json_object(&body, F)?;
    let map = top.get("snapshot").and_then(Value::as_object).cloned();
    let map = map.ok_or_else(|| evs_bad("EVS.5400", "Malformed request body."))?;
    let name = opt_string(&map, "name")?;
    let description = opt_string(&map, "description")?;
    cloud.write(F, |w| {
        find(w, &ctx, &id)?;
        let snapshot = w.store_mut(&ctx.auth.project_id).snapshots.get_mut(&id).expect("found above");
        if let Some(name) = name {
            snapshot.name = name;
        }
        if description.is_some() {
            snapshot.description = description;
        }
        snapshot.updated_at_ms = Some(now_ms());
        Ok(Json(json!({"snapshot": views::snapshot(snapshot)})))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    cloud.write(F, |w| {
        let status = find(w, &ctx, &id)?.status.clone();
        if status != "available" && status != "error" {
            return Err(evs_bad(
                "EVS.1047",
                "snapshot status must be available or error when delete snapshot!",
            ));
        }
        let snapshot = w.store_mut(&ctx.auth.project_id).snapshots.get_mut(&id).expect("found above");
        snapshot.status = "deleting".into();
        snapshot.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
        Ok(StatusCode::NO_CONTENT)
    })
}
