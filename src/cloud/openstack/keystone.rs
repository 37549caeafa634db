//! Keystone v3: authenticate with any configured method, share one token among all requests,
//! refresh it before it expires (one auth request at a time, however many callers wait), and
//! re-authenticate once when the cloud says 401. Also the service catalog lookup.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Mutex, watch};

use super::fault;
use crate::cloud::error::CloudError;
use crate::cloud::http::{Call, HttpClient, Reply};
use crate::config::model::{AuthMethod, Cloud, CloudsConfig, Domain, Named, Scope};
use crate::config::secret::Secret;

/// Catalog service types that name block storage, newest first.
pub const BLOCK_STORAGE_TYPES: &[&str] = &["block-storage", "volumev3", "volume"];
/// Catalog service types that name compute.
pub const COMPUTE_TYPES: &[&str] = &["compute"];

/// An issued token with what came with it.
#[derive(Debug)]
pub struct Token {
    /// The token (`X-Subject-Token`).
    pub id: Secret,
    /// When it stops working.
    pub expires_at: SystemTime,
    /// When to fetch a new one.
    pub refresh_at: SystemTime,
    /// The scoped project, if any.
    pub project_id: Option<String>,
    /// The service catalog.
    pub catalog: Vec<CatalogEntry>,
}

/// One service of the catalog.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogEntry {
    /// Service type.
    #[serde(rename = "type")]
    pub service_type: String,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<CatalogEndpoint>,
}

/// One endpoint of a catalog service.
#[derive(Clone, Debug, Deserialize)]
pub struct CatalogEndpoint {
    /// public, internal or admin.
    pub interface: String,
    /// Region name (older clouds).
    #[serde(default)]
    pub region: Option<String>,
    /// Region id.
    #[serde(default)]
    pub region_id: Option<String>,
    /// The URL.
    pub url: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: TokenFields,
}

#[derive(Deserialize)]
struct TokenFields {
    expires_at: String,
    #[serde(default)]
    issued_at: Option<String>,
    #[serde(default)]
    project: Option<IdOnly>,
    #[serde(default)]
    catalog: Vec<CatalogEntry>,
}

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// A Keystone session for one named cloud of a (possibly reloading) configuration.
#[derive(Debug)]
pub struct Session {
    http: Arc<HttpClient>,
    config: Mutex<watch::Receiver<Arc<CloudsConfig>>>,
    cloud_name: String,
    cloud: RwLock<Arc<Cloud>>,
    token: RwLock<Option<Arc<Token>>>,
    auth_lock: Mutex<()>,
    auth_requests: AtomicU64,
}

fn time_of(text: &str) -> Result<SystemTime, CloudError> {
    let ts: prost_types::Timestamp =
        text.parse().map_err(|_| CloudError::Protocol(format!("bad timestamp {text:?} from Keystone")))?;
    let since_epoch =
        Duration::new(u64::try_from(ts.seconds).unwrap_or(0), u32::try_from(ts.nanos).unwrap_or(0));
    Ok(SystemTime::UNIX_EPOCH + since_epoch)
}

impl Session {
    /// A session for `cloud_name` (`None`: the default cloud) of the watched configuration.
    pub fn new(
        http: Arc<HttpClient>,
        config: watch::Receiver<Arc<CloudsConfig>>,
        cloud_name: Option<&str>,
    ) -> Result<Self, CloudError> {
        let current = config.borrow().clone();
        let cloud = current.get(cloud_name).cloned().ok_or_else(|| {
            CloudError::Config(format!("no cloud named {:?}", cloud_name.unwrap_or(&current.default)))
        })?;
        Ok(Self {
            http,
            config: Mutex::new(config),
            cloud_name: cloud.name.clone(),
            cloud: RwLock::new(Arc::new(cloud)),
            token: RwLock::new(None),
            auth_lock: Mutex::new(()),
            auth_requests: AtomicU64::new(0),
        })
    }

    /// The cloud's current settings.
    pub fn cloud(&self) -> Arc<Cloud> {
        self.cloud.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The shared transport.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// Auth requests sent so far (for tests and benchmarks).
    pub fn auth_requests(&self) -> u64 {
        self.auth_requests.load(Ordering::Relaxed)
    }

    fn cached(&self) -> Option<Arc<Token>> {
        let token = self.token.read().unwrap_or_else(|e| e.into_inner()).clone()?;
        (SystemTime::now() < token.refresh_at).then_some(token)
    }

    /// A valid token: the shared one, or a fresh one when it is near expiry or the
    /// configuration changed. Concurrent callers share a single auth request.
    pub async fn token(&self) -> Result<Arc<Token>, CloudError> {
        self.pick_up_config_changes().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let _single_flight = self.auth_lock.lock().await;
        if let Some(token) = self.cached() {
            return Ok(token);
        }
        let token = Arc::new(self.authenticate().await?);
        *self.token.write().unwrap_or_else(|e| e.into_inner()) = Some(token.clone());
        Ok(token)
    }

    /// Forgets `stale` after the cloud rejected it; a newer token is kept.
    pub fn invalidate(&self, stale: &Arc<Token>) {
        let mut slot = self.token.write().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_some_and(|t| Arc::ptr_eq(t, stale)) {
            *slot = None;
        }
    }

    async fn pick_up_config_changes(&self) {
        let mut receiver = self.config.lock().await;
        if !receiver.has_changed().unwrap_or(false) {
            return;
        }
        let config = receiver.borrow_and_update().clone();
        match config.clouds.get(&self.cloud_name) {
            Some(cloud) if **self.cloud.read().unwrap_or_else(|e| e.into_inner()) != *cloud => {
                tracing::info!(cloud = %self.cloud_name, "cloud settings changed; re-authenticating");
                *self.cloud.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cloud.clone());
                *self.token.write().unwrap_or_else(|e| e.into_inner()) = None;
            }
            Some(_) => {}
            None => {
                tracing::error!(cloud = %self.cloud_name, "cloud vanished from the configuration; keeping its last settings")
            }
        }
    }

    async fn authenticate(&self) -> Result<Token, CloudError> {
        let cloud = self.cloud();
        let url = Url::parse(&format!("{}/auth/tokens", cloud.auth_url.trim_end_matches('/')))
            .map_err(|e| CloudError::Config(format!("auth_url {:?}: {e}", cloud.auth_url)))?;
        let body = auth_body(&cloud)?;
        self.auth_requests.fetch_add(1, Ordering::Relaxed);
        let reply = self.http.send(&Call::new("keystone.token.issue", Method::POST, url).json(&body)).await?;
        if reply.status != StatusCode::CREATED && reply.status != StatusCode::OK {
            return Err(match reply.status {
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CloudError::Unauthorized(format!(
                    "Keystone refused the credentials of cloud {:?}: {}",
                    cloud.name,
                    fault::message(&reply)
                )),
                _ => fault::to_error(&reply, "token", ""),
            });
        }
        let id = reply
            .header("x-subject-token")
            .ok_or_else(|| CloudError::Protocol("Keystone sent no X-Subject-Token".into()))?
            .to_string();
        let fields = reply.json::<TokenBody>()?.token;
        let expires_at = time_of(&fields.expires_at)?;
        let issued_at = fields.issued_at.as_deref().map(time_of).transpose()?.unwrap_or_else(SystemTime::now);
        let lifetime = expires_at.duration_since(issued_at).unwrap_or_default();
        // Refresh well before expiry: a quarter of the lifetime, at most five minutes early.
        let margin = (lifetime / 4).min(Duration::from_secs(300));
        Ok(Token {
            id: Secret::new(id),
            expires_at,
            refresh_at: expires_at - margin,
            project_id: fields.project.map(|p| p.id),
            catalog: fields.catalog,
        })
    }

    /// The endpoint of a service: the configured override, else the catalog entry matching
    /// the types (in order), interface and region.
    pub fn endpoint(&self, token: &Token, types: &[&str]) -> Result<Url, CloudError> {
        let cloud = self.cloud();
        let project = token.project_id.as_deref().unwrap_or("");
        let url = match types.iter().find_map(|t| cloud.endpoint_overrides.get(*t)) {
            Some(template) => template.replace("$(project_id)s", project).replace("%(project_id)s", project),
            None => catalog_url(&token.catalog, types, cloud.interface.as_str(), cloud.region.as_deref())?,
        };
        Url::parse(&url).map_err(|e| CloudError::Config(format!("endpoint {url:?}: {e}")))
    }

    /// Sends a call built for the current token; on 401 re-authenticates once and resends.
    pub async fn send(
        &self,
        build: impl Fn(&Token) -> Result<Call, CloudError>,
    ) -> Result<Reply, CloudError> {
        let mut token = self.token().await?;
        for attempt in 0..2 {
            let mut call = build(&token)?;
            let value = reqwest::header::HeaderValue::from_str(token.id.expose())
                .map_err(|_| CloudError::Protocol("token is not valid header text".into()))?;
            call.headers.insert("x-auth-token", value);
            let reply = self.http.send(&call).await?;
            if reply.status != StatusCode::UNAUTHORIZED || attempt == 1 {
                if reply.status == StatusCode::UNAUTHORIZED {
                    return Err(CloudError::Unauthorized(format!(
                        "{} after re-authentication: {}",
                        call.operation,
                        fault::message(&reply)
                    )));
                }
                return Ok(reply);
            }
            tracing::info!(operation = call.operation, "token rejected; re-authenticating once");
            self.invalidate(&token);
            token = self.token().await?;
        }
        unreachable!("the loop returns on its second pass")
    }
}

fn catalog_url(
    catalog: &[CatalogEntry],
    types: &[&str],
    interface: &str,
    region: Option<&str>,
) -> Result<String, CloudError> {
    for service_type in types {
        let Some(entry) = catalog.iter().find(|e| e.service_type == *service_type) else { continue };
        let endpoint = entry.endpoints.iter().find(|ep| {
            ep.interface == interface
                && region
                    .is_none_or(|r| ep.region_id.as_deref() == Some(r) || ep.region.as_deref() == Some(r))
        });
        if let Some(endpoint) = endpoint {
            return Ok(endpoint.url.clone());
        }
    }
    Err(CloudError::Config(format!(
        "the catalog has no {interface} endpoint of type {}{}",
        types.join(" or "),
        region.map(|r| format!(" in region {r}")).unwrap_or_default()
    )))
}

fn domain_json(domain: &Domain) -> Value {
    match domain {
        Domain::Id(id) => json!({ "id": id }),
        Domain::Name(name) => json!({ "name": name }),
    }
}

fn named_json(named: &Named) -> Value {
    match named {
        Named::Id(id) => json!({ "id": id }),
        Named::Name { name, domain } => json!({ "name": name, "domain": domain_json(domain) }),
    }
}

/// The v3 `POST /auth/tokens` body for the cloud's method and scope.
pub fn auth_body(cloud: &Cloud) -> Result<Value, CloudError> {
    let identity = match &cloud.auth {
        AuthMethod::Password { user, password } => {
            let mut user = named_json(user);
            user["password"] = json!(password.expose());
            json!({ "methods": ["password"], "password": { "user": user } })
        }
        AuthMethod::ApplicationCredential { id, name, user, secret } => {
            let mut credential = json!({ "secret": secret.expose() });
            match (id, name, user) {
                (Some(id), _, _) => credential["id"] = json!(id),
                (None, Some(name), Some(user)) => {
                    credential["name"] = json!(name);
                    credential["user"] = named_json(user);
                }
                _ => {
                    return Err(CloudError::Config(
                        "application credential needs an id, or a name and a user".into(),
                    ));
                }
            }
            json!({ "methods": ["application_credential"], "application_credential": credential })
        }
        AuthMethod::Token { token } => json!({ "methods": ["token"], "token": { "id": token.expose() } }),
        AuthMethod::AkSk { .. } | AuthMethod::None => {
            return Err(CloudError::Config(format!("cloud {:?} has no Keystone credentials", cloud.name)));
        }
    };
    let mut auth = json!({ "identity": identity });
    // Application credentials carry their own scope; Keystone rejects another.
    if !matches!(cloud.auth, AuthMethod::ApplicationCredential { .. }) {
        match &cloud.scope {
            Scope::None => {}
            Scope::Project(project) => auth["scope"] = json!({ "project": named_json(project) }),
            Scope::Domain(domain) => auth["scope"] = json!({ "domain": domain_json(domain) }),
            Scope::Trust(id) => auth["scope"] = json!({ "OS-TRUST:trust": { "id": id } }),
        }
    }
    Ok(json!({ "auth": auth }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(auth: AuthMethod, scope: Scope) -> Cloud {
        Cloud { name: "c".into(), auth_url: "http://k/v3".into(), auth, scope, ..Default::default() }
    }

    #[test]
    fn password_body_names_user_and_project_with_their_domains() {
        let body = auth_body(&cloud(
            AuthMethod::Password {
                user: Named::Name { name: "csi".into(), domain: Domain::Name("Users".into()) },
                password: Secret::new("pw"),
            },
            Scope::Project(Named::Name { name: "k8s".into(), domain: Domain::Id("default".into()) }),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {"name": "csi", "domain": {"name": "Users"}, "password": "pw"}}},
                "scope": {"project": {"name": "k8s", "domain": {"id": "default"}}}
            }})
        );
    }

    #[test]
    fn application_credential_body_has_no_scope() {
        let body = auth_body(&cloud(
            AuthMethod::ApplicationCredential {
                id: Some("ac".into()),
                name: None,
                user: None,
                secret: Secret::new("s"),
            },
            Scope::Project(Named::Id("p".into())),
        ))
        .unwrap();
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": "ac", "secret": "s"}}}})
        );
    }

    #[test]
    fn token_and_trust_bodies() {
        let body =
            auth_body(&cloud(AuthMethod::Token { token: Secret::new("t") }, Scope::Trust("tr".into())))
                .unwrap();
        assert_eq!(
            body,
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": "t"}}, "scope": {"OS-TRUST:trust": {"id": "tr"}}}})
        );
        let domain = auth_body(&cloud(
            AuthMethod::Token { token: Secret::new("t") },
            Scope::Domain(Domain::Name("D".into())),
        ))
        .unwrap();
        assert_eq!(domain["auth"]["scope"], json!({"domain": {"name": "D"}}));
    }

    #[test]
    fn catalog_lookup_prefers_type_order_then_interface_and_region() {
        let catalog: Vec<CatalogEntry> = serde_json::from_value(json!([
            {"type": "volume", "endpoints": [{"interface": "public", "region_id": "R1", "url": "http://old"}]},
            {"type": "block-storage", "endpoints": [
                {"interface": "public", "region_id": "R2", "url": "http://r2"},
                {"interface": "internal", "region_id": "R1", "url": "http://r1-internal"},
                {"interface": "public", "region_id": "R1", "url": "http://r1-public"}
            ]}
        ]))
        .unwrap();
        assert_eq!(
            catalog_url(&catalog, BLOCK_STORAGE_TYPES, "public", Some("R1")).unwrap(),
            "http://r1-public"
        );
        assert_eq!(
            catalog_url(&catalog, BLOCK_STORAGE_TYPES, "internal", Some("R1")).unwrap(),
            "http://r1-internal"
        );
        assert_eq!(catalog_url(&catalog, &["volume"], "public", None).unwrap(), "http://old");
        let missing = catalog_url(&catalog, COMPUTE_TYPES, "public", Some("R1")).unwrap_err();
        assert!(missing.to_string().contains("compute"), "{missing}");
    }

    #[test]
    fn keystone_timestamps_parse() {
        let t = time_of("2026-11-23T12:00:00.000000Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_795_435_200);
    }
}
