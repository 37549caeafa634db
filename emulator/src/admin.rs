//! The emulator's own admin API under `/_emulator`: counters, fault rules, rate limit,
//! latency, stuck/failing transitions, the fault seed and servers. It needs no token; it is a
//! test bed control surface, not a cloud API.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::bootstrap::resource_id;
use super::clock::now_ms;
use super::errors::{ApiError, ApiResult, Family};
use super::faults::{FaultRule, RateLimit, TransitionRule};
use super::model::Server;
use super::store::{Cloud, Latency};

/// The admin routes.
pub fn router() -> Router<Cloud> {
    Router::new()
        .route("/_emulator", get(summary))
        .route("/_emulator/counters", get(counters).delete(reset_counters))
        .route("/_emulator/faults", get(faults).put(set_faults).post(add_fault).delete(clear_faults))
        .route("/_emulator/rate-limit", get(rate_limit).put(set_rate_limit).delete(clear_rate_limit))
        .route("/_emulator/latency", get(latency).put(set_latency))
        .route(
            "/_emulator/transitions",
            get(transitions).put(set_transitions).post(add_transition).delete(clear_transitions),
        )
        .route("/_emulator/seed", post(reseed))
        .route("/_emulator/servers", get(servers).post(add_server))
        .route("/_emulator/users", post(add_user))
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(Family::Admin, format!("invalid body: {e}")))
}

async fn summary(State(cloud): State<Cloud>) -> Json<Value> {
    let base = cloud.base_url();
    Json(json!({
        "identity": format!("{base}{}/v3", super::IDENTITY_PREFIX),
        "volume": format!("{base}{}/v3", super::VOLUME_PREFIX),
        "compute": format!("{base}{}/v2.1", super::COMPUTE_PREFIX),
        "state_dir": cloud.config().state_dir.display().to_string(),
        "by_id_dir": cloud.config().by_id_dir().display().to_string(),
    }))
}

async fn counters(State(cloud): State<Cloud>) -> Json<Value> {
    let counts = cloud.counters().snapshot();
    let total: u64 = counts.values().sum();
    Json(json!({"total": total, "routes": counts}))
}

async fn reset_counters(State(cloud): State<Cloud>) -> StatusCode {
    cloud.counters().reset();
    StatusCode::NO_CONTENT
}

async fn faults(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"faults": cloud.faults().rules()}))
}

#[derive(Deserialize)]
struct FaultList {
    faults: Vec<FaultRule>,
}

async fn set_faults(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    let list: FaultList = parse(&body)?;
    cloud.faults().set_rules(list.faults);
    Ok(StatusCode::NO_CONTENT)
}

async fn add_fault(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    let rule: FaultRule = parse(&body)?;
    cloud.faults().add_rule(rule);
    Ok(StatusCode::CREATED)
}

async fn clear_faults(State(cloud): State<Cloud>) -> StatusCode {
    cloud.faults().set_rules(Vec::new());
    StatusCode::NO_CONTENT
}

async fn rate_limit(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"rate_limit": cloud.faults().rate_limit()}))
}

async fn set_rate_limit(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    let limit: RateLimit = parse(&body)?;
    if limit.requests_per_second <= 0.0 {
        return Err(ApiError::bad_request(Family::Admin, "requests_per_second must be positive"));
    }
    cloud.faults().set_rate_limit(Some(limit));
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_rate_limit(State(cloud): State<Cloud>) -> StatusCode {
    cloud.faults().set_rate_limit(None);
    StatusCode::NO_CONTENT
}

async fn latency(State(cloud): State<Cloud>) -> Json<Latency> {
    Json(cloud.latency())
}

async fn set_latency(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    cloud.set_latency(parse(&body)?);
    Ok(StatusCode::NO_CONTENT)
}

async fn transitions(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"transitions": cloud.faults().transitions()}))
}

#[derive(Deserialize)]
struct TransitionList {
    transitions: Vec<TransitionRule>,
}

async fn set_transitions(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    let list: TransitionList = parse(&body)?;
    cloud.faults().set_transitions(list.transitions);
    Ok(StatusCode::NO_CONTENT)
}

async fn add_transition(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    cloud.faults().add_transition(parse(&body)?);
    Ok(StatusCode::CREATED)
}

async fn clear_transitions(State(cloud): State<Cloud>) -> StatusCode {
    cloud.faults().set_transitions(Vec::new());
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Seed {
    seed: u64,
}

async fn reseed(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<StatusCode> {
    let seed: Seed = parse(&body)?;
    cloud.faults().reseed(seed.seed);
    Ok(StatusCode::NO_CONTENT)
}

fn server_json(s: &Server) -> Value {
    json!({
        "id": s.id, "name": s.name, "project_id": s.project_id,
        "availability_zone": s.availability_zone, "this_host": s.this_host,
    })
}

async fn servers(State(cloud): State<Cloud>) -> Json<Value> {
    Json(cloud.read(|w| json!({"servers": w.servers.values().map(server_json).collect::<Vec<_>>()})))
}

/// A Keystone user to add (e.g. the extra accounts tempest's pre-provisioned credentials need).
#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    project: String,
    #[serde(default = "default_domain")]
    domain: String,
    roles: Vec<String>,
}

fn default_domain() -> String {
    "Default".into()
}

async fn add_user(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<Response> {
    let new: NewUser = parse(&body)?;
    if new.name.is_empty() || new.project.is_empty() || new.password.is_empty() || new.roles.is_empty() {
        return Err(ApiError::bad_request(Family::Admin, "name, password, project and roles are required"));
    }
    let config = super::config::UserConfig {
        name: new.name,
        password: new.password,
        project: new.project,
        domain: new.domain,
        roles: new.roles,
        app_credential: None,
    };
    let (user_id, project_id) = cloud.write(Family::Admin, |w| {
        let user_id = super::bootstrap::ensure_user(w, &config);
        let project_id = w.users.get(&user_id).and_then(|u| u.default_project_id.clone()).unwrap_or_default();
        Ok((user_id, project_id))
    })?;
    let body = json!({"user": {"id": user_id, "name": config.name, "project_id": project_id, "roles": config.roles}});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct NewServer {
    #[serde(default)]
    id: Option<String>,
    name: String,
    project: String,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    this_host: bool,
}

async fn add_server(State(cloud): State<Cloud>, body: Bytes) -> ApiResult<Response> {
    let new: NewServer = parse(&body)?;
    let server = cloud.write(Family::Admin, |w| {
        let project_id = w.project(&new.project).map(|p| p.id.clone()).ok_or_else(|| {
            ApiError::bad_request(Family::Admin, format!("unknown project {}", new.project))
        })?;
        let zone = new.availability_zone.clone().unwrap_or_else(|| w.availability_zones[0].clone());
        if !w.availability_zones.contains(&zone) {
            return Err(ApiError::bad_request(Family::Admin, format!("unknown availability zone {zone}")));
        }
        let id = new.id.clone().unwrap_or_else(resource_id);
        if w.servers.contains_key(&id) {
            return Err(ApiError::conflict(Family::Admin, format!("server {id} exists")));
        }
        let server = Server {
            id: id.clone(),
            name: new.name.clone(),
            project_id,
            availability_zone: zone,
            this_host: new.this_host,
            created_at_ms: now_ms(),
        };
        w.servers.insert(id, server.clone());
        Ok(server)
    })?;
    Ok((StatusCode::CREATED, Json(json!({"server": server_json(&server)}))).into_response())
}
