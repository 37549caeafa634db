//! The embedded cloud emulator: Keystone v3, Cinder v3, Nova (volume attachments) and the
//! instance metadata service over real HTTP, with state machines, sparse-file volumes, loop
//! devices for this host, fault injection and write-through persistence.
//!
//! One listener serves every API under devstack-style prefixes ([`IDENTITY_PREFIX`],
//! [`VOLUME_PREFIX`], [`COMPUTE_PREFIX`]) plus the admin API under [`ADMIN_PREFIX`]; the
//! metadata service has its own listener. Each API family is a router over the shared
//! [`store::Cloud`], merged in [`api_router`], the one place a new family (e.g. Huawei EVS)
//! is added.
//!
//! Imports run one way: [`world`] (the data, with [`bootstrap`] and [`persistence`] beside it)
//! → [`store`] (the lock, the transitions and what they leave behind, [`transitions`]) → the API
//! faces ([`keystone`], [`cinder`], [`nova`], [`huawei`], [`admin`], ...). The store never calls
//! a face. The driver links this crate only through its `emulator` feature.

#![warn(missing_docs, unreachable_pub)]

pub mod admin;
pub mod bootstrap;
pub mod cinder;
pub mod clock;
pub mod config;
pub mod counters;
pub mod errors;
pub mod faults;
pub mod https;
pub mod huawei;
pub mod iam;
pub mod keystone;
pub mod keystone_projects;
pub mod loopdev;
pub mod metadata;
pub mod microversion;
pub mod model;
pub mod nova;
pub mod observe;
pub mod persistence;
pub mod services;
pub mod sparse;
pub mod store;
pub mod transitions;
pub mod world;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{AccessKeyConfig, EmulatorConfig, ServerConfig, UserConfig};
pub use errors::EmulatorError;
pub use store::Cloud;

/// Path prefix of Keystone.
pub const IDENTITY_PREFIX: &str = "/identity";
/// Path prefix of Cinder.
pub const VOLUME_PREFIX: &str = "/volume";
/// Path prefix of Nova.
pub const COMPUTE_PREFIX: &str = "/compute";
/// Path prefix of Huawei EVS (`/v2`, `/v2.1` and `/v1/{project_id}/jobs` below it).
pub const EVS_PREFIX: &str = "/evs";
/// Path prefix of Huawei ECS (`/v1` below it).
pub const ECS_PREFIX: &str = "/ecs";
/// Path prefix of the emulator's admin API.
pub const ADMIN_PREFIX: &str = "/_emulator";

/// How often due transitions are completed when nobody reads.
const TICK: Duration = Duration::from_millis(100);

/// Every API family on one router: the composition point for new families.
pub fn api_router(cloud: Cloud) -> Router {
    Router::new()
        .merge(keystone::router())
        .merge(keystone_projects::router())
        .merge(iam::router())
        .merge(cinder::router(cloud.clone()))
        .merge(nova::router(cloud.clone()))
        .merge(huawei::router(cloud.clone()))
        .merge(admin::router())
        .route_layer(axum::middleware::from_fn_with_state(cloud.clone(), observe::observe))
        .fallback(observe::not_found)
        .with_state(cloud)
}

/// Starts an emulator: binds its listeners, serves until [`EmulatorHandle::shutdown`].
pub async fn start(config: EmulatorConfig) -> Result<EmulatorHandle, EmulatorError> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| EmulatorError::Bind { address: config.listen, source })?;
    let local = listener.local_addr().map_err(|e| EmulatorError::io("reading the bound address", e))?;
    let base_url = url_for(config.tls.is_some(), local, config.public_host.as_deref());
    let acceptor = config.tls.as_ref().map(https::acceptor).transpose()?;
    let metadata_listener = match config.metadata_listen {
        Some(address) => {
            Some(TcpListener::bind(address).await.map_err(|source| EmulatorError::Bind { address, source })?)
        }
        None => None,
    };
    let metadata_url = match &metadata_listener {
        Some(l) => Some(url_for(
            false,
            l.local_addr().map_err(|e| EmulatorError::io("reading the bound address", e))?,
            config.public_host.as_deref(),
        )),
        None => None,
    };
    let huawei_listeners = match config.huawei_listen {
        Some(address) => services::bind(address).await?,
        None => Vec::new(),
    };
    let mut service_urls = Vec::new();
    for (service, listener) in &huawei_listeners {
        let address = listener.local_addr().map_err(|e| EmulatorError::io("reading the bound address", e))?;
        service_urls.push((*service, url_for(false, address, config.public_host.as_deref())));
    }
    let release = config.release_loops_on_shutdown;
    let state_dir = config.state_dir.clone();
    let cloud = tokio::task::spawn_blocking(move || Cloud::open(config))
        .await
        .map_err(|e| EmulatorError::Config(format!("opening the state panicked: {e}")))??;
    cloud.set_base_url(base_url.clone());

    let (stop, stopped) = watch::channel(false);
    let mut tasks = Vec::new();
    let app = api_router(cloud.clone());
    match acceptor {
        Some(acceptor) => {
            let listener = https::TlsListener::new(listener, acceptor)
                .map_err(|e| EmulatorError::io("reading the bound address", e))?;
            tasks.push(tokio::spawn(serve(listener, app.clone(), stopped.clone())));
        }
        None => tasks.push(tokio::spawn(serve(listener, app.clone(), stopped.clone()))),
    }
    for (service, listener) in huawei_listeners {
        tasks.push(tokio::spawn(serve(listener, services::router(service, app.clone()), stopped.clone())));
    }
    if let Some(listener) = metadata_listener {
        tasks.push(tokio::spawn(serve(listener, metadata::router(cloud.clone()), stopped.clone())));
    }
    tasks.push(tokio::spawn(ticker(cloud.clone(), stopped)));
    tracing::info!(url = %base_url, state_dir = %state_dir.display(), "emulator: serving");
    Ok(EmulatorHandle { base_url, metadata_url, service_urls, cloud, stop, tasks, release })
}

fn url_for(https: bool, address: SocketAddr, host: Option<&str>) -> String {
    let host = match host {
        Some(host) => host.to_string(),
        None if address.ip().is_unspecified() => "127.0.0.1".to_string(),
        None if address.is_ipv6() => format!("[{}]", address.ip()),
        None => address.ip().to_string(),
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{host}:{}", address.port())
}

async fn serve<L>(listener: L, app: Router, mut stopped: watch::Receiver<bool>)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let shutdown = async move {
        while !*stopped.borrow_and_update() {
            if stopped.changed().await.is_err() {
                return;
            }
        }
    };
    if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(error = %e, "emulator: listener stopped");
    }
}

async fn ticker(cloud: Cloud, mut stopped: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let cloud = cloud.clone();
                let _ = tokio::task::spawn_blocking(move || cloud.tick()).await;
            }
            changed = stopped.changed() => {
                if changed.is_err() || *stopped.borrow() {
                    return;
                }
            }
        }
    }
}

/// A running emulator.
pub struct EmulatorHandle {
    base_url: String,
    metadata_url: Option<String>,
    service_urls: Vec<(services::Service, String)>,
    cloud: Cloud,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    release: bool,
}

impl EmulatorHandle {
    /// `http://host:port` (`https://` when serving TLS) of the API listener.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The Keystone v3 URL clients authenticate against.
    pub fn auth_url(&self) -> String {
        format!("{}{IDENTITY_PREFIX}/v3", self.base_url)
    }

    /// `http://host:port` of the metadata service, if it runs.
    pub fn metadata_url(&self) -> Option<&str> {
        self.metadata_url.as_deref()
    }

    /// `http://host:port` of `service`'s own listener, which serves its API at the root, if
    /// [`EmulatorConfig::huawei_listen`] asked for one.
    pub fn service_url(&self, service: services::Service) -> Option<&str> {
        self.service_urls.iter().find(|(s, _)| *s == service).map(|(_, url)| url.as_str())
    }

    /// The shared cloud (for in-process inspection).
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    /// The region in the catalog.
    pub fn region(&self) -> String {
        self.cloud.config().region.clone()
    }

    /// Credentials of the configured user `name`.
    pub fn credentials(&self, name: &str) -> Option<Credentials> {
        let auth_url = self.auth_url();
        let region = self.region();
        self.cloud.read(|w| {
            let user = w.users.values().find(|u| u.name == name)?;
            let project = w.projects.get(user.default_project_id.as_ref()?)?;
            let domain = |id: &str| w.domains.get(id).map(|d| d.name.clone()).unwrap_or_default();
            let app = w.app_credentials.values().find(|c| c.user_id == user.id);
            Some(Credentials {
                auth_url,
                region,
                username: user.name.clone(),
                user_id: user.id.clone(),
                password: user.password.clone(),
                user_domain_name: domain(&user.domain_id),
                project_name: project.name.clone(),
                project_id: project.id.clone(),
                project_domain_name: domain(&project.domain_id),
                application_credential: app.map(|c| (c.id.clone(), c.name.clone(), c.secret.clone())),
            })
        })
    }

    /// The default admin's credentials.
    pub fn admin(&self) -> Credentials {
        self.credentials("admin").expect("the default config has an admin user")
    }

    /// The default demo user's credentials.
    pub fn demo(&self) -> Credentials {
        self.credentials("demo").expect("the default config has a demo user")
    }

    /// The Huawei AK/SK pairs of the configured user `name`, as `(access key, secret key)`.
    pub fn access_keys(&self, name: &str) -> Vec<(String, String)> {
        self.cloud.read(|w| {
            let ids: Vec<&String> = w.users.values().filter(|u| u.name == name).map(|u| &u.id).collect();
            w.access_keys
                .iter()
                .filter(|(_, k)| ids.contains(&&k.user_id))
                .map(|(ak, k)| (ak.clone(), k.secret.clone()))
                .collect()
        })
    }

    /// The Huawei EVS endpoint root (`/v2`, `/v2.1` and `/v1` below it).
    pub fn evs_url(&self) -> String {
        format!("{}{EVS_PREFIX}", self.base_url)
    }

    /// The Huawei ECS endpoint root (`/v1` below it).
    pub fn ecs_url(&self) -> String {
        format!("{}{ECS_PREFIX}", self.base_url)
    }

    /// The id of the server that is this host (the first one), if any.
    pub fn this_host_server_id(&self) -> Option<String> {
        self.cloud.read(|w| w.servers.values().find(|s| s.this_host).map(|s| s.id.clone()))
    }

    /// Stops the listeners and the ticker; releases loop devices if so configured.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        if self.release {
            let cloud = self.cloud.clone();
            let _ = tokio::task::spawn_blocking(move || cloud.release_loops()).await;
        }
    }
}

/// What a client needs to log in as one user.
#[derive(Clone)]
pub struct Credentials {
    /// Keystone v3 URL.
    pub auth_url: String,
    /// Region name.
    pub region: String,
    /// User name.
    pub username: String,
    /// User id.
    pub user_id: String,
    /// Password.
    pub password: String,
    /// The user's domain name.
    pub user_domain_name: String,
    /// Project name.
    pub project_name: String,
    /// Project id.
    pub project_id: String,
    /// The project's domain name.
    pub project_domain_name: String,
    /// Application credential `(id, name, secret)`, if the user has one.
    pub application_credential: Option<(String, String, String)>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("auth_url", &self.auth_url)
            .field("region", &self.region)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("user_domain_name", &self.user_domain_name)
            .field("project_name", &self.project_name)
            .field("project_id", &self.project_id)
            .field(
                "application_credential",
                &self.application_credential.as_ref().map(|(id, name, _)| (id, name, "<redacted>")),
            )
            .finish()
    }
}
