//! Huawei IAM's temporary access keys (`CreateTemporaryAccessKeyByToken`): a token buys an
//! AK/SK pair and a security token, valid for 15 minutes to 24 hours. EVS and ECS then refuse
//! a request signed with the pair unless it carries that `X-Security-Token` (see the guard in
//! [`super::huawei`]).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::clock::{iso_z, now_ms};
use super::errors::{ApiError, ApiResult, Family};
use super::keystone::live_token;
use super::model::AccessKey;
use super::store::Cloud;

/// Shortest validity of a temporary key, seconds.
const MIN_DURATION_S: u64 = 900;
/// Longest validity of a temporary key, seconds.
const MAX_DURATION_S: u64 = 86_400;

/// The IAM credential routes, on the identity endpoint.
pub fn router() -> Router<Cloud> {
    Router::new()
        .route("/identity/v3.0/OS-CREDENTIAL/securitytokens", post(issue))
        .route("/identity/v3/auth/catalog", axum::routing::get(catalog))
}

/// `GET /v3/auth/catalog`, signed with AK/SK (as Huawei's Go SDK asks at start) or with a
/// token: the catalog of `X-Project-Id` (or the user's default project), in which the caller
/// must hold a role.
async fn catalog(State(cloud): State<Cloud>, request: axum::extract::Request) -> ApiResult<Response> {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map_err(|_| bad_request("The request body is too large."))?;
    let unauthorized = |m: String| ApiError::unauthorized(m);
    let user_id = if super::huawei::sign::is_signed(&parts.headers) {
        let sent = parts.extensions.get::<super::services::SignedPath>();
        let access = super::huawei::verify_signed(&cloud, &parts, sent, &body).map_err(unauthorized)?;
        cloud.read(|w| w.access_keys.get(&access).map(|k| k.user_id.clone()))
    } else {
        let token = parts.headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        cloud.read(|w| live_token(w, token).map(|t| t.user_id.clone()))
    };
    let user_id =
        user_id.ok_or_else(|| unauthorized("The request you have made requires authentication.".into()))?;
    let asked = parts.headers.get("x-project-id").and_then(|v| v.to_str().ok()).map(str::to_string);
    let project_id = cloud.read(|w| {
        let user = w.users.get(&user_id)?;
        let project = asked.or_else(|| user.default_project_id.clone())?;
        user.roles.get(&project).filter(|r| !r.is_empty()).map(|_| project)
    });
    let project_id = project_id.ok_or_else(|| {
        ApiError::new(
            Family::Identity,
            StatusCode::FORBIDDEN,
            "The user has no role in the project asked for.",
        )
    })?;
    let links = json!({"self": format!("{}{}/v3/auth/catalog", cloud.base_url(), super::IDENTITY_PREFIX)});
    let body = json!({"catalog": super::keystone::catalog(&cloud, &project_id), "links": links});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(Family::Identity, StatusCode::BAD_REQUEST, message)
}

/// `duration_seconds` as a number or numeric string (the documented example sends a string).
fn duration_seconds(token: Option<&Value>) -> ApiResult<u64> {
    let seconds = match token.and_then(|t| t.get("duration_seconds")) {
        None | Some(Value::Null) => return Ok(MIN_DURATION_S),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    seconds.filter(|s| (MIN_DURATION_S..=MAX_DURATION_S).contains(s)).ok_or_else(|| {
        bad_request(format!("duration_seconds must be from {MIN_DURATION_S} to {MAX_DURATION_S}."))
    })
}

fn random_text(len: usize) -> String {
    let mut text = String::new();
    while text.len() < len {
        text.push_str(&uuid::Uuid::new_v4().simple().to_string().to_ascii_uppercase());
    }
    text.truncate(len);
    text
}

/// `POST /v3.0/OS-CREDENTIAL/securitytokens` with the `token` method: the token comes from the
/// body's `token.id` or else the `X-Auth-Token` header.
async fn issue(State(cloud): State<Cloud>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("Malformed JSON in request body."))?;
    let identity = body.pointer("/auth/identity").ok_or_else(|| bad_request("auth.identity is required."))?;
    let methods = identity.get("methods").and_then(Value::as_array).cloned().unwrap_or_default();
    if methods.as_slice() != [json!("token")] {
        return Err(bad_request("Only the token method can issue temporary access keys."));
    }
    let token_field = identity.get("token");
    let seconds = duration_seconds(token_field)?;
    let token_id = token_field
        .and_then(|t| t.get("id"))
        .and_then(Value::as_str)
        .or_else(|| headers.get("x-auth-token").and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_string();
    let expires_at_ms = now_ms() + seconds * 1000;
    let (access, secret, security_token) = cloud.write(Family::Identity, |w| {
        let user_id = live_token(w, &token_id)
            .map(|t| t.user_id.clone())
            .ok_or_else(|| ApiError::unauthorized("The request you have made requires authentication."))?;
        let (access, secret, security_token) = (random_text(20), random_text(40), random_text(96));
        let key = AccessKey {
            secret: secret.clone(),
            user_id,
            security_token: Some(security_token.clone()),
            expires_at_ms: Some(expires_at_ms),
        };
        w.access_keys.insert(access.clone(), key);
        Ok((access, secret, security_token))
    })?;
    let credential = json!({"credential": {
        "access": access, "secret": secret, "securitytoken": security_token, "expires_at": iso_z(expires_at_ms),
    }});
    Ok((StatusCode::CREATED, axum::Json(credential)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_defaults_to_fifteen_minutes_and_stays_within_a_day() {
        assert_eq!(duration_seconds(None).unwrap(), 900);
        assert_eq!(duration_seconds(Some(&json!({"duration_seconds": "3600"}))).unwrap(), 3600);
        assert_eq!(duration_seconds(Some(&json!({"duration_seconds": 86400}))).unwrap(), 86400);
        for bad in [json!(899), json!(86401), json!("soon"), json!(true)] {
            assert!(duration_seconds(Some(&json!({ "duration_seconds": bad }))).is_err(), "{bad}");
        }
    }
}
