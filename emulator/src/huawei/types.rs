//! EVS disk types (SAS, SSD, GPSSD, ESSD, GPSSD2, ESSD2) with the zones that offer them.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};

use super::evs_not_found;
use crate::bootstrap::HUAWEI_TYPES;
use crate::errors::ApiResult;
use crate::model::VolumeType;
use crate::store::Cloud;

/// The type routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/evs/v2/{project_id}/types", get(list))
        .route("/evs/v2/{project_id}/types/{type_id}", get(show))
}

fn view(t: &VolumeType) -> Value {
    json!({
        "id": t.id, "name": t.name, "description": t.description, "is_public": t.is_public,
        "extra_specs": t.extra_specs, "qos_specs_id": null,
    })
}

/// Whether a volume type is one of the EVS disk types.
pub fn is_huawei(t: &VolumeType) -> bool {
    HUAWEI_TYPES.iter().any(|(name, _)| *name == t.name)
}

async fn list(State(cloud): State<Cloud>) -> Json<Value> {
    cloud.read(|w| {
        let types: Vec<Value> = w.volume_types.values().filter(|t| is_huawei(t)).map(view).collect();
        Json(json!({"volume_types": types}))
    })
}

async fn show(State(cloud): State<Cloud>, Path((_, id)): Path<(String, String)>) -> ApiResult<Json<Value>> {
    cloud.read(|w| {
        let found =
            w.volume_type(&id).filter(|t| is_huawei(t)).ok_or_else(|| evs_not_found("Volume type", &id))?;
        Ok(Json(json!({"volume_type": view(found)})))
    })
}
