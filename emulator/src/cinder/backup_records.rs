//! Backup update (3.9), and export_record / import_record: Cinder's way to carry a backup's
//! database row to another cloud (or back after a database loss) as an opaque base64 record.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::{Ctx, body_object, not_found, opt_metadata, opt_str, views};
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{Backup, Op, Pending};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;
/// The backup service the emulator names in its records (its backups are files, as posix's).
pub const SERVICE: &str = "cinder.backup.drivers.posix.PosixBackupDriver";
/// A record is one backup's row: anything longer is not one of ours.
const MAX_RECORD: usize = 64 * 1024;

/// The routes that are new paths; `PUT /backups/{id}` is registered by backups.rs on its path.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/volume/v3/{project_id}/backups/import_record", post(import_record))
        .route("/volume/v3/{project_id}/backups/{backup_id}/export_record", get(export_record))
}

fn owned<'a>(w: &'a mut World, ctx: &Ctx, id: &str) -> ApiResult<&'a mut Backup> {
    w.stores
        .values_mut()
        .find_map(|s| s.backups.get_mut(id))
        .filter(|b| b.project_id == ctx.auth.project_id || ctx.auth.is_admin())
        .ok_or_else(|| not_found("Backup", id))
}

/// `PUT /backups/{id}` (3.9): name, description and (3.43) metadata; answers the summary view.
pub async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    if !ctx.version.at_least(3, 9) {
        return Err(ApiError::not_found(F, "The resource could not be found."));
    }
    let map = body_object(&body, "backup")?;
    let allowed: &[&str] = if ctx.version.at_least(3, 43) {
        &["name", "description", "metadata"]
    } else {
        &["name", "description"]
    };
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::bad_request(
            F,
            format!("Additional properties are not allowed ('{key}' was unexpected)"),
        ));
    }
    let name = opt_str(&map, "name")?;
    let description = opt_str(&map, "description")?;
    let metadata = opt_metadata(&map, "metadata")?;
    let view = cloud.write(F, |w| {
        let b = owned(w, &ctx, &id)?;
        if map.contains_key("name") {
            b.name = name.unwrap_or_default();
        }
        if map.contains_key("description") {
            b.description = description;
        }
        if let Some(m) = metadata {
            b.metadata = m;
        }
        b.updated_at_ms = Some(now_ms());
        Ok(json!({"id": b.id, "name": b.name, "links": views::links(&cloud, &b.project_id, "backups", &b.id)}))
    })?;
    Ok(Json(json!({"backup": view})).into_response())
}

async fn export_record(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("backup:export-record")?;
    cloud.write(F, |w| {
        let b = owned(w, &ctx, &id)?;
        if b.status != "available" {
            return Err(ApiError::bad_request(
                F,
                format!("Invalid backup: Backup status must be available and not {}.", b.status),
            ));
        }
        let record = json!({
            "id": b.id,
            "display_name": b.name,
            "display_description": b.description,
            "volume_id": b.volume_id,
            "snapshot_id": b.snapshot_id,
            "size": b.size,
            "container": b.container,
            "metadata": b.metadata,
            "volume_metadata": b.volume_metadata,
            "project_id": b.project_id,
            "service": SERVICE,
            "service_metadata": b.id,
        });
        let url = STANDARD.encode(record.to_string().as_bytes());
        Ok(Json(json!({"backup-record": {"backup_service": SERVICE, "backup_url": url}})))
    })
}

fn unparsable() -> ApiError {
    ApiError::bad_request(F, "Invalid input received: Can't parse backup record.")
}

/// Decodes a record and keeps only what an import may take from it.
fn decode(url: &str) -> ApiResult<Map<String, Value>> {
    if url.len() > MAX_RECORD {
        return Err(unparsable());
    }
    let bytes = STANDARD.decode(url.trim()).map_err(|_| unparsable())?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(unparsable()),
    }
}

/// A uuid in its canonical spelling: the only thing a record may use to name data on disk.
fn uuid_field(map: &Map<String, Value>, key: &str) -> ApiResult<String> {
    map.get(key)
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::parse_str(s).ok())
        .map(|u| u.to_string())
        .ok_or_else(unparsable)
}

async fn import_record(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Response> {
    ctx.require_admin("backup:backup-import")?;
    let map = body_object(&body, "backup-record")?;
    let service = opt_str(&map, "backup_service")?
        .ok_or_else(|| ApiError::bad_request(F, "Incorrect request body format."))?;
    let url = opt_str(&map, "backup_url")?
        .ok_or_else(|| ApiError::bad_request(F, "Incorrect request body format."))?;
    if service != SERVICE {
        return Err(ApiError::not_found(F, format!("Service {service} could not be found.")));
    }
    let record = decode(&url)?;
    let id = uuid_field(&record, "id")?;
    // The data the record points at: a backup this cloud still holds. Its size, not the
    // record's, decides how much is copied, so a record cannot ask for a huge file.
    let source_id = uuid_field(&record, "service_metadata")?;
    let text =
        |key: &str| record.get(key).and_then(Value::as_str).map(|s| s.chars().take(255).collect::<String>());
    let metadata = opt_metadata(&record, "metadata").unwrap_or_default().unwrap_or_default();
    let volume_metadata = opt_metadata(&record, "volume_metadata").unwrap_or_default().unwrap_or_default();
    let view = cloud.write(F, |w| {
        if w.stores.values().any(|s| s.backups.contains_key(&id)) {
            return Err(ApiError::bad_request(F, "Invalid backup: Backup already exists in database."));
        }
        let source = w
            .stores
            .values()
            .find_map(|s| s.backups.get(&source_id))
            .cloned()
            .ok_or_else(|| ApiError::bad_request(F, "Invalid backup: the record's backup data is not in this cloud."))?;
        sparse::copy(&cloud.backup_file(&source.id), &cloud.backup_file(&id), source.size)
            .map_err(|e| ApiError::internal(F, format!("Importing failed: {e}")))?;
        let backup = Backup {
            id: id.clone(),
            project_id: ctx.auth.project_id.clone(),
            name: text("display_name").unwrap_or_default(),
            description: text("display_description"),
            // Recorded facts only: no volume of any project is read or changed through them.
            volume_id: uuid_field(&record, "volume_id").unwrap_or_else(|_| source.volume_id.clone()),
            snapshot_id: None,
            size: source.size,
            status: "creating".into(),
            fail_reason: None,
            is_incremental: false,
            container: text("container"),
            metadata: metadata.clone(),
            volume_metadata: volume_metadata.clone(),
            created_at_ms: now_ms(),
            updated_at_ms: None,
            pending: Some(Pending { op: Op::Create, due_ms: cloud.due("backup.creating") }),
        };
        w.store_mut(&ctx.auth.project_id).backups.insert(id.clone(), backup);
        Ok(json!({"id": id, "name": text("display_name"), "links": views::links(&cloud, &ctx.auth.project_id, "backups", &id)}))
    })?;
    Ok((StatusCode::CREATED, Json(json!({"backup": view}))).into_response())
}
