//! The metadata sub-resource volumes and snapshots share: `.../metadata` (show, merge with
//! POST, replace with PUT) and `.../metadata/{key}` (show, set, delete).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use super::{Ctx, body_value, opt_metadata};
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::Metadata;
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// A Cinder resource with a metadata map.
pub trait WithMetadata: 'static {
    /// The metadata of resource `id`, or 404 when the caller may not see it.
    fn metadata<'w>(w: &'w World, ctx: &Ctx, id: &str) -> ApiResult<&'w Metadata>;
    /// The same, to change.
    fn metadata_mut<'w>(w: &'w mut World, ctx: &Ctx, id: &str) -> ApiResult<&'w mut Metadata>;
}

/// The metadata routes below `resource`, e.g. `/volume/v3/{project_id}/volumes/{volume_id}`.
pub fn routes<R: WithMetadata>(resource: &str) -> Router<Cloud> {
    Router::new()
        .route(&format!("{resource}/metadata"), get(show::<R>).post(merge::<R>).put(replace::<R>))
        .route(
            &format!("{resource}/metadata/{{key}}"),
            get(show_item::<R>).put(set_item::<R>).delete(delete_item::<R>),
        )
}

/// `{"metadata": {...}}` from a body, string values only.
pub fn parse_metadata(body: &Bytes) -> ApiResult<Metadata> {
    let value = body_value(body)?;
    let map = value.as_object().cloned().unwrap_or_default();
    opt_metadata(&map, "metadata")?
        .ok_or_else(|| ApiError::bad_request(F, "Malformed request body: metadata is missing."))
}

/// `{"meta": {key: value}}` whose single key must equal the URL's.
fn parse_item(body: &Bytes, key: &str) -> ApiResult<(String, String)> {
    let value = body_value(body)?;
    let map = value.as_object().cloned().unwrap_or_default();
    let meta = opt_metadata(&map, "meta")?
        .ok_or_else(|| ApiError::bad_request(F, "Malformed request body: meta is missing."))?;
    if meta.len() != 1 {
        return Err(ApiError::bad_request(F, "Request body contains too many items."));
    }
    let (k, v) = meta.into_iter().next().expect("one item");
    if k != key {
        return Err(ApiError::bad_request(F, "Request body and URI mismatch"));
    }
    Ok((k, v))
}

fn item_not_found() -> ApiError {
    ApiError::not_found(F, "Metadata item was not found")
}

async fn show<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"metadata": R::metadata(w, &ctx, &id)?}))))
}

async fn merge<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let new = parse_metadata(&body)?;
    cloud.write(F, |w| {
        let metadata = R::metadata_mut(w, &ctx, &id)?;
        metadata.extend(new);
        Ok(Json(json!({ "metadata": metadata })))
    })
}

async fn replace<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let new = parse_metadata(&body)?;
    cloud.write(F, |w| {
        let metadata = R::metadata_mut(w, &ctx, &id)?;
        *metadata = new;
        Ok(Json(json!({ "metadata": metadata })))
    })
}

async fn show_item<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let value = R::metadata(w, &ctx, &id)?.get(&key).cloned().ok_or_else(item_not_found)?;
        Ok(Json(json!({"meta": {key: value}})))
    })
}

async fn set_item<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (k, v) = parse_item(&body, &key)?;
    cloud.write(F, |w| {
        R::metadata_mut(w, &ctx, &id)?.insert(k.clone(), v.clone());
        Ok(Json(json!({"meta": {k: v}})))
    })
}

async fn delete_item<R: WithMetadata>(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id, key)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    cloud.write(F, |w| {
        R::metadata_mut(w, &ctx, &id)?.remove(&key).ok_or_else(item_not_found)?;
        Ok(StatusCode::OK)
    })
}
