//! EVS tags: the batch tag action on a disk, a disk's tags, every tag of the project, and the
//! `resource_instances/action` query of disks by tag.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::tag_rules::{MAX_TAGS, bad_key, bad_value, valid_key, valid_value};
use super::{Ctx, evs_bad, json_object, opt_int, views};
use crate::errors::{ApiResult, Family};
use crate::store::Cloud;

const F: Family = Family::Evs;
/// The tag routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/evs/v2/{project_id}/cloudvolumes/tags", get(project_tags))
        .route("/evs/v2/{project_id}/cloudvolumes/{volume_id}/tags", get(disk_tags))
        .route("/evs/v2/{project_id}/cloudvolumes/{volume_id}/tags/action", post(tag_action))
        .route("/evs/v2/{project_id}/cloudvolumes/resource_instances/action", post(by_tags))
}

async fn tag_action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<StatusCode> {
    let top = json_object(&body, F)?;
    let action = top.get("action").and_then(Value::as_str).unwrap_or_default().to_string();
    let tags = top.get("tags").and_then(Value::as_array).cloned();
    let tags = tags.ok_or_else(|| evs_bad("EVS.5400", "Malformed request body: tags is missing."))?;
    let mut pairs = Vec::new();
    for tag in &tags {
        let key = tag.get("key").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
        let value = tag.get("value").and_then(Value::as_str).map(str::trim).unwrap_or_default().to_string();
        if !valid_key(&key) {
            return Err(bad_key(&key));
        }
        if action == "create" && !valid_value(&value) {
            return Err(bad_value(&key));
        }
        pairs.push((key, value));
    }
    cloud.write(F, |w| {
        super::disks::find(w, &ctx, &id)?;
        let volume = w.store_mut(&ctx.auth.project_id).volumes.get_mut(&id).expect("found above");
        let mut current = views::tags_of(volume);
        match action.as_str() {
            "create" => {
                for (key, value) in &pairs {
                    current.insert(key.clone(), json!(value));
                }
                if current.len() > MAX_TAGS {
                    return Err(evs_bad("EVS.5400", format!("A disk carries at most {MAX_TAGS} tags.")));
                }
            }
            "delete" => {
                for (key, _) in &pairs {
                    current.remove(key);
                }
            }
            other => return Err(evs_bad("EVS.5400", format!("Invalid action {other:?}: create or delete."))),
        }
        volume.extra.insert("tags".into(), Value::Object(current));
        Ok(StatusCode::NO_CONTENT)
    })
}

fn tag_list(tags: &Map<String, Value>) -> Vec<Value> {
    tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect()
}

async fn disk_tags(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"tags": tag_list(&views::tags_of(super::disks::find(w, &ctx, &id)?))}))))
}

async fn project_tags(State(cloud): State<Cloud>, Extension(ctx): Extension<Ctx>) -> Json<Value> {
    cloud.read(|w| {
        let mut all: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for v in w.stores.get(&ctx.auth.project_id).map(|s| s.volumes.values()).into_iter().flatten() {
            for (key, value) in views::tags_of(v) {
                let values = all.entry(key).or_default();
                let value = value.as_str().unwrap_or_default().to_string();
                if !values.contains(&value) {
                    values.push(value);
                }
            }
        }
        Json(json!({"tags": all}))
    })
}

async fn by_tags(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let top = json_object(&body, F)?;
    let action = top.get("action").and_then(Value::as_str).unwrap_or_default().to_string();
    if action != "filter" && action != "count" {
        return Err(evs_bad("EVS.5400", format!("Invalid action {action:?}: filter or count.")));
    }
    let limit = opt_int(&top, "limit")?.unwrap_or(1000);
    if limit < 1 {
        return Err(evs_bad("EVS.1023", "invalid filter limit!"));
    }
    if limit > 1000 {
        return Err(evs_bad("EVS.2142", "invalid filter limit, can not greater than 1000."));
    }
    let offset = opt_int(&top, "offset")?.unwrap_or(0).max(0) as usize;
    let Some(Value::Array(tags)) = top.get("tags") else {
        return Err(evs_bad("EVS.5400", "Malformed request body: tags is missing."));
    };
    let wanted: Vec<(String, Vec<String>)> = tags
        .iter()
        .map(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
            let values = t
                .get("values")
                .and_then(Value::as_array)
                .map(|vs| vs.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            (key, values)
        })
        .collect();
    let matches: Vec<(String, String)> = top
        .get("matches")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    let field = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                    (field("key"), field("value"))
                })
                .collect()
        })
        .unwrap_or_default();
    cloud.read(|w| {
        let mut found: Vec<_> = w
            .stores
            .get(&ctx.auth.project_id)
            .map(|s| s.volumes.values().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|v| {
                let tags = views::tags_of(v);
                let tagged = wanted.iter().all(|(key, values)| {
                    tags.get(key)
                        .and_then(Value::as_str)
                        .is_some_and(|have| values.is_empty() || values.iter().any(|want| want == have))
                });
                let matched = matches.iter().all(|(key, value)| match key.as_str() {
                    "resource_name" => v.name.contains(value.as_str()),
                    "service_type" => value == "EVS",
                    _ => true,
                });
                tagged && matched
            })
            .collect();
        found.sort_by(|a, b| a.created_at_ms.cmp(&b.created_at_ms).then_with(|| a.id.cmp(&b.id)));
        let total = found.len();
        if action == "count" {
            return Ok(Json(json!({"total_count": total})));
        }
        let resources: Vec<Value> = found
            .iter()
            .skip(offset)
            .take(limit as usize)
            .map(|v| {
                json!({
                    "resource_id": v.id, "resource_name": v.name,
                    "resource_detail": views::disk(&cloud, w, v), "tags": tag_list(&views::tags_of(v)),
                })
            })
            .collect();
        Ok(Json(json!({"total_count": total, "resources": resources})))
    })
}
