//! Authenticated requests to Huawei Cloud services: signed with AK/SK, or carrying an IAM
//! token from a Keystone-compatible session. Follows configuration reloads, so rotated keys
//! take effect without a restart.

use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::watch;

use super::endpoints::{self, Service};
use super::fault;
use super::sign::Signer;
use crate::cloud::error::CloudError;
use crate::cloud::http::{Call, HttpClient, Reply};
use crate::cloud::openstack::keystone::Session;
use crate::config::model::{AuthMethod, Cloud, CloudsConfig};
use crate::contract::UrlPath;

/// The placeholder for the project id in request paths.
pub const PROJECT: &str = "{project_id}";

/// One request, before endpoint, project and credentials are known.
#[derive(Clone, Debug)]
pub struct Request {
    /// Metrics and log label, e.g. `evs.volume.create`.
    pub operation: &'static str,
    /// Which service.
    pub service: Service,
    /// HTTP method.
    pub method: Method,
    /// Path below the service root; its project placeholder becomes the project id.
    pub path: UrlPath,
    /// Query pairs.
    pub query: Vec<(String, String)>,
    /// JSON body.
    pub body: Option<Value>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// A POST that is safe to send twice (a query, an overwrite): retried like a GET.
    pub repeatable: bool,
}

impl Request {
    /// A request without query, body or headers.
    pub fn new(operation: &'static str, service: Service, method: Method, path: UrlPath) -> Self {
        Self {
            operation,
            service,
            method,
            path,
            query: Vec::new(),
            body: None,
            headers: Vec::new(),
            repeatable: false,
        }
    }

    /// Marks a POST that is safe to send twice.
    pub fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }

    /// Adds a query pair.
    pub fn query(mut self, key: &str, value: impl Into<String>) -> Self {
        self.query.push((key.to_string(), value.into()));
        self
    }

    /// Adds a JSON body.
    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The transport call for this request against `cloud`'s endpoints in `project`.
    pub fn to_call(&self, cloud: &Cloud, project: &str) -> Result<Call, CloudError> {
        let base = endpoints::base_url(cloud, self.service)?;
        let url = endpoints::join(&base, &self.path, project, &self.query)?;
        let mut call = Call::new(self.operation, self.method.clone(), url);
        if let Some(body) = &self.body {
            call = call.json(body);
        }
        for (name, value) in &self.headers {
            call = call.header(name, value);
        }
        if self.repeatable {
            call = call.repeatable();
        }
        Ok(call)
    }
}

/// Sends requests for one named cloud of a (possibly reloading) configuration.
#[derive(Debug)]
pub struct Client {
    http: Arc<HttpClient>,
    config: Mutex<watch::Receiver<Arc<CloudsConfig>>>,
    cloud_name: String,
    cloud: RwLock<Arc<Cloud>>,
    iam: Session,
}

impl Client {
    /// A client for `cloud_name` (`None`: the default cloud).
    pub fn new(
        http: Arc<HttpClient>,
        config: watch::Receiver<Arc<CloudsConfig>>,
        cloud_name: Option<&str>,
    ) -> Result<Self, CloudError> {
        let current = config.borrow().clone();
        let cloud = current.get(cloud_name).cloned().ok_or_else(|| {
            CloudError::Config(format!("no cloud named {:?}", cloud_name.unwrap_or(&current.default)))
        })?;
        let iam = Session::new(http.clone(), config.clone(), Some(&cloud.name))?;
        Ok(Self {
            http,
            config: Mutex::new(config),
            cloud_name: cloud.name.clone(),
            cloud: RwLock::new(Arc::new(cloud)),
            iam,
        })
    }

    /// The cloud's current settings.
    pub fn cloud(&self) -> Arc<Cloud> {
        let mut receiver = self.config.lock().unwrap_or_else(|e| e.into_inner());
        if receiver.has_changed().unwrap_or(false) {
            let config = receiver.borrow_and_update().clone();
            match config.clouds.get(&self.cloud_name) {
                Some(cloud) => {
                    *self.cloud.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(cloud.clone())
                }
                None => {
                    tracing::error!(cloud = %self.cloud_name, "cloud vanished from the configuration; keeping its last settings")
                }
            }
        }
        self.cloud.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Checks that the credentials work far enough to build a request (IAM: gets a token).
    pub async fn authenticate(&self) -> Result<(), CloudError> {
        let cloud = self.cloud();
        if !matches!(cloud.auth, AuthMethod::AkSk { .. }) {
            self.iam.token().await?;
        }
        Ok(())
    }

    /// Sends `request`; a reply with any status is returned, except that a 401 becomes
    /// [`CloudError::Unauthorized`] (after one re-authentication for IAM tokens).
    pub async fn send(&self, request: &Request) -> Result<Reply, CloudError> {
        let cloud = self.cloud();
        let reply = match &cloud.auth {
            AuthMethod::AkSk { access_key, secret_key, security_token } => {
                let project = cloud.scope.project_id().ok_or_else(|| {
                    CloudError::Config(format!("cloud {:?} needs project_id for AK/SK signing", cloud.name))
                })?;
                let mut call = request.to_call(&cloud, project)?;
                let signer = Signer {
                    access_key,
                    secret_key: secret_key.expose(),
                    security_token: security_token.as_ref().map(|t| t.expose()),
                    project_id: Some(project),
                };
                signer.sign(&mut call, SystemTime::now())?;
                self.http.send(&call).await?
            }
            _ => {
                self.iam
                    .send(|token| {
                        let project =
                            cloud.scope.project_id().or(token.project_id.as_deref()).ok_or_else(|| {
                                CloudError::Config("IAM auth needs a project-scoped token".into())
                            })?;
                        request.to_call(&cloud, project)
                    })
                    .await?
            }
        };
        if reply.status == StatusCode::UNAUTHORIZED {
            return Err(CloudError::Unauthorized(format!(
                "{} refused by the cloud: {}",
                request.operation,
                fault::parse(&reply).describe()
            )));
        }
        Ok(reply)
    }
}
