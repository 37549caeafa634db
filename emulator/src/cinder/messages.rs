//! User messages (`/messages`, 3.3+): Cinder's account of why an asynchronous operation
//! failed, `"<action>:<detail>"` with an event id `VOLUME_<resource>_<action>_<detail>`, and a
//! backup's `fail_reason`. Recorded as the store settles the world
//! ([`crate::transitions::messages`]).

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, not_found, views};
use crate::clock::iso;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::Message;
use crate::store::Cloud;

const F: Family = Family::Volume;

/// How long Cinder keeps a message (its default `message_ttl`, 30 days).
const TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// The message routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/messages", get(list))
        .route("/volume/v3/{project_id}/messages/{message_id}", get(show).delete(delete))
}

fn view(cloud: &Cloud, pid: &str, m: &Message) -> Value {
    json!({
        "id": m.id,
        "event_id": m.event_id,
        "user_message": m.user_message,
        "message_level": "ERROR",
        "resource_type": m.resource_type,
        "resource_uuid": m.resource_uuid,
        "request_id": format!("req-{}", m.id),
        "created_at": iso(m.created_at_ms),
        "guaranteed_until": iso(m.created_at_ms + TTL_MS),
        "links": views::links(cloud, pid, "messages", &m.id),
    })
}

fn require_3_3(ctx: &Ctx) -> ApiResult<()> {
    if ctx.version.at_least(3, 3) {
        Ok(())
    } else {
        Err(ApiError::not_found(F, "The resource could not be found."))
    }
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path(_): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    require_3_3(&ctx)?;
    let pid = ctx.auth.project_id.clone();
    for (key, _) in &query {
        if !["resource_uuid", "resource_type", "event_id", "message_level"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid filters {key} are found in query options."),
            ));
        }
    }
    let wanted = |m: &Message| {
        query.iter().all(|(key, value)| match key.as_str() {
            "resource_uuid" => &m.resource_uuid == value,
            "resource_type" => &m.resource_type == value,
            "event_id" => &m.event_id == value,
            _ => value == "ERROR",
        })
    };
    cloud.read(|w| {
        let mut messages: Vec<&Message> = w
            .stores
            .get(&pid)
            .map(|s| s.messages.values().filter(|m| wanted(m)).collect())
            .unwrap_or_default();
        messages.sort_by(|a, b| b.created_at_ms.cmp(&a.created_at_ms).then_with(|| a.id.cmp(&b.id)));
        let items: Vec<Value> = messages.iter().map(|m| view(&cloud, &pid, m)).collect();
        Ok(Json(json!({ "messages": items })))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    require_3_3(&ctx)?;
    let pid = ctx.auth.project_id.clone();
    cloud.read(|w| {
        let message =
            w.stores.get(&pid).and_then(|s| s.messages.get(&id)).ok_or_else(|| not_found("Message", &id))?;
        Ok(Json(json!({ "message": view(&cloud, &pid, message) })))
    })
}

/// `DELETE /messages/{id}`: the caller's own messages only.
async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<axum::http::StatusCode> {
    require_3_3(&ctx)?;
    let pid = ctx.auth.project_id.clone();
    cloud.write(F, |w| {
        w.store_mut(&pid).messages.remove(&id).ok_or_else(|| not_found("Message", &id))?;
        Ok(axum::http::StatusCode::NO_CONTENT)
    })
}
