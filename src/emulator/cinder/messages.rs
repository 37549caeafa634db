//! User messages (`/messages`, 3.3+): Cinder's account of why an asynchronous operation
//! failed, `"<action>:<detail>"` with an event id `VOLUME_<resource>_<action>_<detail>`, and a
//! backup's `fail_reason`. Recorded when a transition ends in an error state, with the texts
//! of Cinder's `message_field` for that failure.

use axum::Json;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Ctx, not_found, views};
use crate::emulator::bootstrap::resource_id;
use crate::emulator::clock::iso;
use crate::emulator::errors::{ApiError, ApiResult, Family};
use crate::emulator::store::{Cloud, World};

const F: Family = Family::Volume;

/// How long Cinder keeps a message (its default `message_ttl`, 30 days).
const TTL_MS: u64 = 30 * 24 * 3600 * 1000;

/// One user message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Message {
    /// The id.
    pub id: String,
    /// `VOLUME_<resource>_<action>_<detail>`.
    pub event_id: String,
    /// `"<action>:<detail>"`.
    pub user_message: String,
    /// `VOLUME`, `VOLUME_SNAPSHOT` or `VOLUME_BACKUP`.
    pub resource_type: String,
    /// The resource it is about.
    pub resource_uuid: String,
    /// When it was recorded (ms).
    pub created_at_ms: u64,
}

/// The backup driver's words when a backup fails: what Cinder's posix driver stores, a first
/// line and the traceback after it.
pub const BACKUP_FAIL_REASON: &str = "[Errno 28] No space left on device: '/var/lib/cinder/backup/volume_backup'\n\
Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/cinder/backup/manager.py\", line 417, in create_backup";

/// The message routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/messages", get(list))
        .route("/volume/v3/{project_id}/messages/{message_id}", get(show).delete(delete))
}

/// Records what Cinder would after `kind` `id` of project `pid` moved from `before` to
/// `after`: nothing unless it just entered an error state Cinder reports.
pub fn after_transition(
    w: &mut World,
    pid: &str,
    kind: &str,
    id: &str,
    before: &str,
    after: Option<&str>,
    now: u64,
) {
    let Some(after) = after else { return };
    if before.starts_with("error") || !after.starts_with("error") {
        return;
    }
    // (resource, action code, action, detail code, detail) from Cinder's message_field.
    let event = match (kind, before, after) {
        ("volume", "creating", "error") => (
            "VOLUME",
            "008",
            "create volume from backend storage",
            "012",
            "Driver failed to create the volume.",
        ),
        ("volume", "extending", "error_extending") => {
            ("VOLUME", "007", "extend volume", "010", "Volume Driver failed to extend volume.")
        }
        ("volume", "restoring-backup", _) => {
            ("VOLUME_BACKUP", "015", "restore backup", "026", "Backup driver failed to restore backup.")
        }
        ("snapshot", "creating", "error") => {
            ("VOLUME_SNAPSHOT", "009", "create snapshot", "013", "Snapshot failed to create.")
        }
        ("snapshot", "deleting", "error_deleting") => {
            ("VOLUME_SNAPSHOT", "010", "delete snapshot", "016", "Snapshot failed to delete.")
        }
        ("backup", "creating", "error") => {
            ("VOLUME_BACKUP", "013", "create backup", "020", "Backup driver failed to create backup.")
        }
        ("backup", "deleting", "error_deleting") => {
            ("VOLUME_BACKUP", "014", "delete backup", "025", "Backup driver failed to delete backup.")
        }
        _ => return,
    };
    let (resource, action_code, action, detail_code, detail) = event;
    let store = w.store_mut(pid);
    if kind == "backup"
        && after == "error"
        && let Some(backup) = store.backups.get_mut(id)
    {
        backup.fail_reason = Some(BACKUP_FAIL_REASON.into());
    }
    let message = Message {
        id: resource_id(),
        event_id: format!("VOLUME_{resource}_{action_code}_{detail_code}"),
        user_message: format!("{action}:{detail}"),
        resource_type: resource.into(),
        resource_uuid: id.into(),
        created_at_ms: now,
    };
    store.messages.insert(message.id.clone(), message);
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
