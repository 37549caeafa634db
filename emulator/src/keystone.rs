//! Keystone v3: token issue (password by names or ids, application credential, token; project,
//! domain and trust scope), trusts (OS-TRUST), validation and revocation, version discovery,
//! and the token check every other API uses.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::Path;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::bootstrap::keystone_id;
use super::clock::{iso_z, now_ms};
use super::errors::{ApiError, ApiResult, Family};
use super::model::{Token, Trust};
use super::store::{Cloud, World};
use super::{COMPUTE_PREFIX, IDENTITY_PREFIX, VOLUME_PREFIX};

const UNAUTHORIZED: &str = "The request you have made requires authentication.";

/// Who a request acts as, from a valid project- or domain-scoped token.
#[derive(Clone, Debug)]
pub struct Auth {
    /// The user id.
    pub user_id: String,
    /// The scoped project id; empty for a domain-scoped token, which no project URL matches
    /// (Cinder then answers "Malformed request url", as the real one does).
    pub project_id: String,
    /// Role names in that project.
    pub roles: Vec<String>,
}

impl Auth {
    /// Whether the token carries the admin role.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
}

/// Validates `X-Auth-Token`: 401 (Keystone-shaped) when missing, unknown, expired or unscoped.
pub fn authenticate(cloud: &Cloud, headers: &HeaderMap) -> ApiResult<Auth> {
    cloud.read(|w| {
        let record = caller(w, headers)?;
        // Deleting a trust revokes the tokens issued through it.
        if record.trust_id.as_ref().is_some_and(|t| !w.trusts.contains_key(t)) {
            return Err(ApiError::unauthorized(UNAUTHORIZED));
        }
        let project_id = match (&record.project_id, &record.domain_id) {
            (Some(project), _) => project.clone(),
            (None, Some(_)) => String::new(),
            (None, None) => return Err(ApiError::unauthorized(UNAUTHORIZED)),
        };
        Ok(Auth { user_id: record.user_id.clone(), project_id, roles: record.roles.clone() })
    })
}

/// The Keystone routes.
pub fn router() -> Router<Cloud> {
    Router::new()
        .route("/identity", get(versions))
        .route("/identity/", get(versions))
        .route("/identity/v3", get(version))
        .route("/identity/v3/", get(version))
        .route("/identity/v3/auth/tokens", get(validate).head(check).post(issue).delete(revoke))
        .route("/identity/v3/OS-TRUST/trusts", post(create_trust))
        .route("/identity/v3/OS-TRUST/trusts/{trust_id}", delete(delete_trust))
}

fn version_doc(cloud: &Cloud) -> Value {
    json!({
        "id": "v3.14", "status": "stable", "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": format!("{}{IDENTITY_PREFIX}/v3/", cloud.base_url())}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}],
    })
}

async fn versions(State(cloud): State<Cloud>) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(json!({"versions": {"values": [version_doc(&cloud)]}})))
        .into_response()
}

async fn version(State(cloud): State<Cloud>) -> Json<Value> {
    Json(json!({"version": version_doc(&cloud)}))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(Family::Identity, message)
}

fn field<'a>(value: &'a Value, name: &str, path: &str) -> ApiResult<&'a Value> {
    value.get(name).ok_or_else(|| bad_request(format!("Expecting to find {name} in {path}. The server could not comply with the request since it is either malformed or otherwise incorrect. The client is assumed to be in error.")))
}

fn text<'a>(value: &'a Value, name: &str) -> Option<&'a str> {
    value.get(name).and_then(Value::as_str)
}

/// Resolves `{"id"}` or `{"name", "domain": {"id"|"name"}}` of a user.
fn find_user(w: &World, user: &Value) -> Option<String> {
    if let Some(id) = text(user, "id") {
        return w.users.contains_key(id).then(|| id.to_string());
    }
    let name = text(user, "name")?;
    let domain_id = find_domain(w, user.get("domain")?)?;
    w.users.values().find(|u| u.name == name && u.domain_id == domain_id).map(|u| u.id.clone())
}

fn find_domain(w: &World, domain: &Value) -> Option<String> {
    if let Some(id) = text(domain, "id") {
        return w.domains.contains_key(id).then(|| id.to_string());
    }
    let name = text(domain, "name")?;
    w.domains.values().find(|d| d.name == name).map(|d| d.id.clone())
}

fn find_project(w: &World, project: &Value) -> Option<String> {
    if let Some(id) = text(project, "id") {
        return w.projects.contains_key(id).then(|| id.to_string());
    }
    let name = text(project, "name")?;
    let domain_id = find_domain(w, project.get("domain")?)?;
    w.projects.values().find(|p| p.name == name && p.domain_id == domain_id).map(|p| p.id.clone())
}

#[derive(serde::Deserialize)]
struct IssueQuery {
    #[serde(default)]
    nocatalog: Option<String>,
}

async fn issue(
    State(cloud): State<Cloud>,
    Query(query): Query<IssueQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("Malformed JSON in request body."))?;
    let auth = field(&body, "auth", "request")?;
    let identity = field(auth, "identity", "auth")?;
    let methods: Vec<String> = field(identity, "methods", "identity")?
        .as_array()
        .ok_or_else(|| bad_request("Invalid input for field 'identity/methods': not an array"))?
        .iter()
        .filter_map(|m| m.as_str().map(str::to_string))
        .collect();
    let method =
        methods.first().cloned().ok_or_else(|| bad_request("Invalid input for field 'identity/methods'"))?;
    let scope = auth.get("scope");
    let ttl = cloud.config().token_ttl.as_millis() as u64;
    let now = now_ms();
    let (token_id, token) = cloud.write(Family::Identity, |w| {
        let (user_id, scoped, app_credential_id, expires_cap) = match method.as_str() {
            "password" => {
                let user = field(field(identity, "password", "identity")?, "user", "password")?;
                let user_id = find_user(w, user).ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))?;
                let password = text(user, "password").unwrap_or_default();
                if w.users[&user_id].password != password {
                    return Err(ApiError::unauthorized(UNAUTHORIZED));
                }
                let scoped = resolve_scope(w, scope, &user_id, now)?;
                (user_id, scoped, None, None)
            }
            "application_credential" => {
                let credential = field(identity, "application_credential", "identity")?;
                if scope.is_some() {
                    return Err(ApiError::unauthorized("Application credentials cannot request a scope."));
                }
                let found = match text(credential, "id") {
                    Some(id) => w.app_credentials.get(id),
                    None => {
                        let name = text(credential, "name").unwrap_or_default();
                        let user_id = credential.get("user").and_then(|u| find_user(w, u));
                        w.app_credentials
                            .values()
                            .find(|c| c.name == name && Some(&c.user_id) == user_id.as_ref())
                    }
                };
                let found = found
                    .filter(|c| Some(c.secret.as_str()) == text(credential, "secret"))
                    .filter(|c| c.expires_at_ms.is_none_or(|e| e > now))
                    .ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))?;
                let scoped = Scoped { project_id: Some(found.project_id.clone()), ..Scoped::default() };
                (found.user_id.clone(), scoped, Some(found.id.clone()), found.expires_at_ms)
            }
            "token" => {
                let id = text(field(identity, "token", "identity")?, "id").unwrap_or_default();
                let old = w
                    .tokens
                    .get(id)
                    .filter(|t| t.expires_at_ms > now)
                    .cloned()
                    .ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))?;
                let scoped = match scope {
                    Some(_) => resolve_scope(w, scope, &old.user_id, now)?,
                    None => Scoped {
                        project_id: old.project_id.clone(),
                        domain_id: old.domain_id.clone(),
                        trust: old.trust_id.as_ref().and_then(|t| w.trusts.get(t)).cloned(),
                    },
                };
                // A token made from a token never outlives the original.
                (old.user_id, scoped, old.app_credential_id, Some(old.expires_at_ms))
            }
            other => {
                return Err(ApiError::unauthorized(format!(
                    "Attempted to authenticate with an unsupported method: {other}"
                )));
            }
        };
        let user = &w.users[&user_id];
        let roles = match (&scoped.trust, &scoped.project_id, &scoped.domain_id) {
            (Some(trust), _, _) => trust.roles.clone(),
            (None, Some(p), _) => user.roles.get(p).cloned().unwrap_or_default(),
            (None, None, Some(d)) => user.domain_roles.get(d).cloned().unwrap_or_default(),
            (None, None, None) => Vec::new(),
        };
        // An impersonating trust's tokens act as the trustor.
        let user_id = match &scoped.trust {
            Some(trust) if trust.impersonation => trust.trustor_user_id.clone(),
            _ => user_id,
        };
        let expires_cap = match scoped.trust.as_ref().and_then(|t| t.expires_at_ms) {
            Some(trust_end) => Some(expires_cap.map_or(trust_end, |cap| cap.min(trust_end))),
            None => expires_cap,
        };
        let token = Token {
            user_id,
            project_id: scoped.project_id,
            domain_id: scoped.domain_id,
            trust_id: scoped.trust.map(|t| t.id),
            roles,
            methods: methods.clone(),
            issued_at_ms: now,
            expires_at_ms: expires_cap.map_or(now + ttl, |cap| cap.min(now + ttl)),
            app_credential_id,
            audit_id: keystone_id()[..22].to_string(),
        };
        let id = format!("gAAAAA{}{}", keystone_id(), keystone_id());
        w.tokens.insert(id.clone(), token.clone());
        Ok((id, token))
    })?;
    let with_catalog = query.nocatalog.is_none();
    let body = cloud.read(|w| token_body(&cloud, w, &token, with_catalog));
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&token_id) {
        response.headers_mut().insert("x-subject-token", value);
    }
    Ok(response)
}

/// What a token is scoped to.
#[derive(Default)]
struct Scoped {
    project_id: Option<String>,
    domain_id: Option<String>,
    trust: Option<Trust>,
}

/// The scope a password or token auth asks for; the user must hold a role there, or be the
/// trustee of a live trust.
fn resolve_scope(w: &World, scope: Option<&Value>, user_id: &str, now: u64) -> ApiResult<Scoped> {
    let Some(scope) = scope else {
        return Ok(Scoped::default());
    };
    if let Some(project) = scope.get("project") {
        let project_id = find_project(w, project).ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))?;
        let has_role = w.users[user_id].roles.get(&project_id).is_some_and(|r| !r.is_empty());
        if !has_role {
            return Err(ApiError::unauthorized(format!(
                "User {user_id} has no access to project {project_id}"
            )));
        }
        return Ok(Scoped { project_id: Some(project_id), ..Scoped::default() });
    }
    if let Some(domain) = scope.get("domain") {
        let domain_id = find_domain(w, domain).ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))?;
        let has_role = w.users[user_id].domain_roles.get(&domain_id).is_some_and(|r| !r.is_empty());
        if !has_role {
            return Err(ApiError::unauthorized(format!(
                "User {user_id} has no access to domain {domain_id}"
            )));
        }
        return Ok(Scoped { domain_id: Some(domain_id), ..Scoped::default() });
    }
    if let Some(trust) = scope.get("OS-TRUST:trust") {
        let id = text(trust, "id").unwrap_or_default();
        let trust =
            w.trusts.get(id).filter(|t| t.expires_at_ms.is_none_or(|e| e > now)).ok_or_else(|| {
                ApiError::not_found(Family::Identity, format!("Could not find trust: {id}."))
            })?;
        if trust.trustee_user_id != user_id {
            return Err(ApiError::forbidden(Family::Identity, "User is not a trustee."));
        }
        return Ok(Scoped {
            project_id: Some(trust.project_id.clone()),
            trust: Some(trust.clone()),
            ..Scoped::default()
        });
    }
    Err(bad_request("Invalid input for field 'scope': a project, domain or OS-TRUST:trust is required."))
}

/// The caller's token (`X-Auth-Token`), if it is known and unexpired.
fn caller<'w>(w: &'w World, headers: &HeaderMap) -> ApiResult<&'w Token> {
    let token = headers.get("x-auth-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    live_token(w, token).ok_or_else(|| ApiError::unauthorized(UNAUTHORIZED))
}

/// The token with this id, unless it has expired or its trust is gone.
pub fn live_token<'w>(w: &'w World, id: &str) -> Option<&'w Token> {
    w.tokens
        .get(id)
        .filter(|t| t.expires_at_ms > now_ms())
        .filter(|t| t.trust_id.as_ref().is_none_or(|trust| w.trusts.contains_key(trust)))
}

/// `POST /v3/OS-TRUST/trusts`: the caller (the trustor) delegates roles it holds in a project.
async fn create_trust(State(cloud): State<Cloud>, headers: HeaderMap, body: Bytes) -> ApiResult<Response> {
    let body: Value =
        serde_json::from_slice(&body).map_err(|_| bad_request("Malformed JSON in request body."))?;
    let trust = field(&body, "trust", "request")?;
    let required = |name: &str| {
        text(trust, name)
            .map(str::to_string)
            .ok_or_else(|| bad_request(format!("Invalid input for field '{name}': a string is required.")))
    };
    let (trustor, trustee, project_id) =
        (required("trustor_user_id")?, required("trustee_user_id")?, required("project_id")?);
    let roles: Vec<String> = trust
        .get("roles")
        .and_then(Value::as_array)
        .map(|roles| roles.iter().filter_map(|r| text(r, "name").map(str::to_string)).collect())
        .unwrap_or_default();
    let impersonation = trust.get("impersonation").and_then(Value::as_bool).unwrap_or(false);
    let expires_at_ms = match text(trust, "expires_at") {
        Some(at) => Some(super::clock::parse_iso_ms(at).ok_or_else(|| bad_request("Invalid expires_at."))?),
        None => None,
    };
    let trust = cloud.write(Family::Identity, |w| {
        let caller = caller(w, &headers)?;
        if caller.user_id != trustor {
            return Err(ApiError::forbidden(
                Family::Identity,
                "The authenticated user should match the trustor.",
            ));
        }
        if !w.users.contains_key(&trustee) {
            return Err(ApiError::not_found(Family::Identity, format!("Could not find user: {trustee}.")));
        }
        let held = w.users[&trustor].roles.get(&project_id).cloned().unwrap_or_default();
        if let Some(missing) = roles.iter().find(|r| !held.contains(r)) {
            return Err(ApiError::forbidden(
                Family::Identity,
                format!("The trustor does not hold the role {missing} in project {project_id}."),
            ));
        }
        let trust = Trust {
            id: keystone_id(),
            trustor_user_id: trustor.clone(),
            trustee_user_id: trustee.clone(),
            project_id: project_id.clone(),
            roles: roles.clone(),
            impersonation,
            expires_at_ms,
        };
        w.trusts.insert(trust.id.clone(), trust.clone());
        Ok(trust)
    })?;
    let body = json!({"trust": {
        "id": trust.id, "trustor_user_id": trust.trustor_user_id, "trustee_user_id": trust.trustee_user_id,
        "project_id": trust.project_id, "impersonation": trust.impersonation,
        "roles": trust.roles.iter().map(|r| json!({"id": stable_id(r), "name": r})).collect::<Vec<_>>(),
        "expires_at": trust.expires_at_ms.map(iso_z),
    }});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// `DELETE /v3/OS-TRUST/trusts/{id}`: the trustor ends the trust; its tokens stop working.
async fn delete_trust(
    State(cloud): State<Cloud>,
    Path(trust_id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    cloud.write(Family::Identity, |w| {
        let caller = caller(w, &headers)?;
        let trust = w.trusts.get(&trust_id).ok_or_else(|| {
            ApiError::not_found(Family::Identity, format!("Could not find trust: {trust_id}."))
        })?;
        if trust.trustor_user_id != caller.user_id {
            return Err(ApiError::forbidden(Family::Identity, "Only the trustor may delete a trust."));
        }
        w.trusts.remove(&trust_id);
        Ok(StatusCode::NO_CONTENT)
    })
}

fn stable_id(seed: &str) -> String {
    // FNV-1a, twice, for stable role and endpoint ids.
    let hash = |salt: u64| {
        seed.bytes()
            .fold(0xcbf2_9ce4_8422_2325u64 ^ salt, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
    };
    format!("{:016x}{:016x}", hash(0), hash(1))
}

fn token_body(cloud: &Cloud, w: &World, token: &Token, with_catalog: bool) -> Value {
    let user = &w.users[&token.user_id];
    let domain = |id: &str| json!({"id": id, "name": w.domains.get(id).map(|d| d.name.clone())});
    let mut body = json!({
        "methods": token.methods,
        "user": {"id": user.id, "name": user.name, "domain": domain(&user.domain_id), "password_expires_at": null},
        "audit_ids": [token.audit_id],
        "issued_at": iso_z(token.issued_at_ms),
        "expires_at": iso_z(token.expires_at_ms),
    });
    if let Some(project) = token.project_id.as_ref().and_then(|p| w.projects.get(p)) {
        body["project"] =
            json!({"id": project.id, "name": project.name, "domain": domain(&project.domain_id)});
        body["is_domain"] = json!(false);
        body["roles"] = token.roles.iter().map(|r| json!({"id": stable_id(r), "name": r})).collect();
        if with_catalog {
            body["catalog"] = catalog(cloud, &project.id);
        }
    } else if let Some(domain_id) = &token.domain_id {
        body["domain"] = domain(domain_id);
        body["roles"] = token.roles.iter().map(|r| json!({"id": stable_id(r), "name": r})).collect();
        if with_catalog {
            body["catalog"] = catalog(cloud, "");
        }
    }
    if let Some(trust) = token.trust_id.as_ref().and_then(|t| w.trusts.get(t)) {
        body["OS-TRUST:trust"] = json!({
            "id": trust.id, "impersonation": trust.impersonation,
            "trustee_user": {"id": trust.trustee_user_id}, "trustor_user": {"id": trust.trustor_user_id},
        });
    }
    if let Some(credential) = token.app_credential_id.as_ref().and_then(|c| w.app_credentials.get(c)) {
        body["application_credential"] =
            json!({"id": credential.id, "name": credential.name, "restricted": true});
    }
    json!({ "token": body })
}

/// The service catalog for a project: identity, block storage (as `block-storage` and
/// `volumev3`), compute, and the Huawei EVS/ECS placeholders, each with three interfaces.
/// Without a project (domain scope) the services whose URL needs one are left out, as
/// Keystone does.
pub fn catalog(cloud: &Cloud, project_id: &str) -> Value {
    let base = cloud.base_url();
    let region = cloud.config().region.clone();
    let services = [
        ("identity", "keystone", format!("{base}{IDENTITY_PREFIX}"), false),
        ("block-storage", "cinder", format!("{base}{VOLUME_PREFIX}/v3/{project_id}"), true),
        ("volumev3", "cinderv3", format!("{base}{VOLUME_PREFIX}/v3/{project_id}"), true),
        ("compute", "nova", format!("{base}{COMPUTE_PREFIX}/v2.1"), false),
        ("evs", "evs", format!("{base}/evs/v2/{project_id}"), true),
        ("ecs", "ecs", format!("{base}/ecs/v1/{project_id}"), true),
    ];
    services
        .iter()
        .filter(|(_, _, _, needs_project)| !(*needs_project && project_id.is_empty()))
        .map(|(kind, name, url, _)| {
            let endpoints: Vec<Value> = ["public", "internal", "admin"]
                .iter()
                .map(|interface| {
                    json!({
                        "id": stable_id(&format!("{kind}/{interface}")), "interface": interface,
                        "region": region, "region_id": region, "url": url,
                    })
                })
                .collect();
            json!({"id": stable_id(kind), "type": kind, "name": name, "endpoints": endpoints})
        })
        .collect()
}

fn subject(cloud: &Cloud, headers: &HeaderMap) -> ApiResult<(String, Token)> {
    let subject =
        headers.get("x-subject-token").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    cloud.read(|w| {
        caller(w, headers)?;
        let token = w.tokens.get(&subject).filter(|t| t.expires_at_ms > now_ms()).cloned();
        let token = token.ok_or_else(|| {
            ApiError::not_found(
                Family::Identity,
                format!("Could not find token: {}", &subject.chars().take(8).collect::<String>()),
            )
        })?;
        Ok((subject, token))
    })
}

async fn validate(State(cloud): State<Cloud>, headers: HeaderMap) -> ApiResult<Response> {
    let (subject, token) = subject(&cloud, &headers)?;
    let body = cloud.read(|w| token_body(&cloud, w, &token, true));
    let mut response = Json(body).into_response();
    if let Ok(value) = HeaderValue::from_str(&subject) {
        response.headers_mut().insert("x-subject-token", value);
    }
    Ok(response)
}

async fn check(State(cloud): State<Cloud>, headers: HeaderMap) -> ApiResult<StatusCode> {
    subject(&cloud, &headers).map(|_| StatusCode::OK)
}

async fn revoke(State(cloud): State<Cloud>, headers: HeaderMap) -> ApiResult<StatusCode> {
    let (subject, _) = subject(&cloud, &headers)?;
    cloud.write(Family::Identity, |w| {
        w.tokens.remove(&subject);
        Ok(StatusCode::NO_CONTENT)
    })
}
