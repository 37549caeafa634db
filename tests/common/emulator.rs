//! A harness for the cloud emulator: starts it in-process on a loopback port with its state
//! in a temporary directory, and talks to it with a plain HTTP client.

use std::time::{Duration, Instant};

use cinder_evs_csi::emulator::{self, EmulatorConfig, EmulatorHandle};
use reqwest::Method;
use serde_json::{Value, json};

/// A running emulator and its state directory.
pub struct TestCloud {
    /// The emulator.
    pub handle: EmulatorHandle,
    /// Its state directory (removed on drop).
    pub dir: tempfile::TempDir,
    /// A plain HTTP client.
    pub http: reqwest::Client,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The JSON body (Null when empty or not JSON).
    pub body: Value,
}

impl Reply {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }
}

impl TestCloud {
    /// Starts an emulator with the default config in a fresh directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts an emulator after `tweak` adjusts the config.
    pub async fn start_with(tweak: impl FnOnce(&mut EmulatorConfig)) -> Self {
        // Every reqwest client in this crate needs the TLS provider the driver installs.
        cinder_evs_csi::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = EmulatorConfig::in_dir(dir.path());
        config.release_loops_on_shutdown = true;
        tweak(&mut config);
        let handle = emulator::start(config).await.expect("start emulator");
        Self { handle, dir, http: reqwest::Client::new() }
    }

    /// Restarts on the same state directory (a new port), returning the new emulator.
    pub async fn restart(self) -> Self {
        let TestCloud { handle, dir, http } = self;
        handle.shutdown().await;
        let mut config = EmulatorConfig::in_dir(dir.path());
        config.release_loops_on_shutdown = true;
        let handle = emulator::start(config).await.expect("restart emulator");
        Self { handle, dir, http }
    }

    /// A full URL for a path on the API listener.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.base_url())
    }

    /// Sends a request with optional token, body and extra headers.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self.http.request(method, url);
        if let Some(token) = token {
            request = request.header("X-Auth-Token", token);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// Password login for a configured user, scoped to their project.
    pub async fn login(&self, user: &str) -> Session {
        let c = self.handle.credentials(user).expect("known user");
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": c.username, "domain": {"name": c.user_domain_name}, "password": c.password}}},
            "scope": {"project": {"name": c.project_name, "domain": {"name": c.project_domain_name}}}}});
        let reply =
            self.send(Method::POST, &self.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
        assert_eq!(reply.status, 201, "login failed: {:?}", reply.body);
        let token = reply.header("x-subject-token").expect("X-Subject-Token");
        let catalog = reply.body["token"]["catalog"].as_array().expect("catalog").clone();
        let url_of = |kind: &str| {
            catalog
                .iter()
                .find(|s| s["type"] == kind)
                .and_then(|s| s["endpoints"].as_array()?.iter().find(|e| e["interface"] == "public"))
                .and_then(|e| e["url"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| panic!("no {kind} endpoint"))
        };
        Session {
            token,
            project_id: c.project_id.clone(),
            volume: url_of("block-storage"),
            compute: url_of("compute"),
        }
    }

    /// Calls the Cinder API of a session at a microversion.
    pub async fn cinder(
        &self,
        s: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
        version: &str,
    ) -> Reply {
        let header = format!("volume {version}");
        self.send(
            method,
            &format!("{}{path}", s.volume),
            Some(&s.token),
            body,
            &[("OpenStack-API-Version", &header)],
        )
        .await
    }

    /// Calls the Nova API of a session at a microversion.
    pub async fn nova(
        &self,
        s: &Session,
        method: Method,
        path: &str,
        body: Option<Value>,
        version: &str,
    ) -> Reply {
        let header = format!("compute {version}");
        self.send(
            method,
            &format!("{}{path}", s.compute),
            Some(&s.token),
            body,
            &[("OpenStack-API-Version", &header)],
        )
        .await
    }

    /// Calls the admin API.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.send(method, &self.url(&format!("/_emulator{path}")), None, body, &[]).await
    }

    /// Creates a volume and returns its id (202 expected).
    pub async fn create_volume(&self, s: &Session, volume: Value) -> String {
        let reply = self.cinder(s, Method::POST, "/volumes", Some(json!({ "volume": volume })), "3.0").await;
        assert_eq!(reply.status, 202, "create volume: {:?}", reply.body);
        reply.body["volume"]["id"].as_str().expect("volume id").to_string()
    }

    /// Waits (guarding against hangs only) until `path`'s `key.status` is `status`.
    pub async fn wait_status(&self, s: &Session, path: &str, key: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.cinder(s, Method::GET, path, None, "3.70").await;
            if reply.body[key]["status"] == status {
                return reply.body[key].clone();
            }
            assert!(Instant::now() < deadline, "{path} never reached {status}: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a volume is gone (404).
    pub async fn wait_gone(&self, s: &Session, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.cinder(s, Method::GET, path, None, "3.70").await;
            if reply.status == 404 {
                return;
            }
            assert!(Instant::now() < deadline, "{path} never went away: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Creates a volume and waits until it is available.
    pub async fn available_volume(&self, s: &Session, size: u64) -> String {
        let id = self.create_volume(s, json!({"size": size})).await;
        self.wait_status(s, &format!("/volumes/{id}"), "volume", "available").await;
        id
    }

    /// Adds a server that is not this host and returns its id.
    pub async fn add_server(&self, name: &str, project: &str) -> String {
        let reply =
            self.admin(Method::POST, "/servers", Some(json!({"name": name, "project": project}))).await;
        assert_eq!(reply.status, 201, "{:?}", reply.body);
        reply.body["server"]["id"].as_str().unwrap().to_string()
    }
}

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct Session {
    /// The token.
    pub token: String,
    /// The scoped project id.
    pub project_id: String,
    /// The block-storage endpoint from the catalog.
    pub volume: String,
    /// The compute endpoint from the catalog.
    pub compute: String,
}
