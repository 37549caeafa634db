//! Quota classes (`os-quota-class-sets`, admin only). The `default` class is the defaults
//! every project without its own limits gets, so changing it changes them; other classes are
//! kept (and shown with the defaults filling what they do not set) but apply to no project,
//! as in Cinder, where projects have no quota class.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{Ctx, body_object};
use crate::bootstrap::DEFAULT_QUOTA_CLASS;
use crate::errors::{ApiError, ApiResult, Family};
use crate::store::{Cloud, World};

const F: Family = Family::Volume;

/// The largest limit Cinder's database holds.
const MAX_INT: i64 = 0x7FFF_FFFF;

/// The routes.
pub fn routes() -> Router<Cloud> {
    Router::new().route("/volume/v3/{project_id}/os-quota-class-sets/{class}", get(show).put(update))
}

fn class_set(w: &World, class: &str) -> Map<String, Value> {
    let own = w.quota_classes.get(class);
    super::quotas::resources(w)
        .into_iter()
        .map(|name| {
            let limit =
                own.and_then(|o| o.get(&name)).or_else(|| w.default_quotas.get(&name)).copied().unwrap_or(-1);
            (name, json!(limit))
        })
        .collect()
}

fn check_name(class: &str) -> ApiResult<()> {
    if class.chars().count() > 255 {
        return Err(ApiError::bad_request(
            F,
            "Invalid input received: quota_class_name has more than 255 characters.",
        ));
    }
    Ok(())
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, class)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:quota_classes")?;
    check_name(&class)?;
    Ok(Json(cloud.read(|w| {
        let mut set = class_set(w, &class);
        set.insert("id".into(), json!(class));
        json!({ "quota_class_set": set })
    })))
}

/// `PUT /os-quota-class-sets/{class}`: keys that are no quota resource are ignored, as
/// Cinder ignores them; a value must be an integer from -1 up.
async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, class)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    ctx.require_admin("volume_extension:quota_classes")?;
    check_name(&class)?;
    let map = body_object(&body, "quota_class_set")?;
    cloud.write(F, |w| {
        let known = super::quotas::resources(w);
        let mut changes = BTreeMap::new();
        for (key, value) in map.iter().filter(|(k, _)| known.contains(k)) {
            let limit = match value {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or_else(|| {
                ApiError::bad_request(F, format!("Invalid input received: {key} must be an integer."))
            })?;
            if limit < -1 {
                return Err(ApiError::bad_request(F, format!("Invalid input received: {key} must be >= -1")));
            }
            if limit > MAX_INT {
                return Err(ApiError::bad_request(
                    F,
                    format!("Invalid input received: {key} must be <= {MAX_INT}"),
                ));
            }
            changes.insert(key.clone(), limit);
        }
        if class == DEFAULT_QUOTA_CLASS {
            w.default_quotas.extend(changes.clone());
        }
        w.quota_classes.entry(class.clone()).or_default().extend(changes);
        Ok(Json(json!({ "quota_class_set": class_set(w, &class) })))
    })
}
