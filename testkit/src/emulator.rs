//! A harness for the cloud emulator: starts it in-process on a loopback port with its state
//! in a temporary directory, and talks to it with a plain HTTP client.

use std::time::{Duration, Instant};

use cinder_evs_emulator::{self as emulator, EmulatorConfig, EmulatorHandle};
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
        super::secrets::register_config(&config);
        let handle = emulator::start(config).await.expect("start emulator");
        super::secrets::watch_tokens(handle.cloud());
        Self { handle, dir, http: reqwest::Client::new() }
    }

    /// Restarts on the same state directory (a new port), returning the new emulator.
    pub async fn restart(self) -> Self {
        let TestCloud { handle, dir, http } = self;
        handle.shutdown().await;
        let mut config = EmulatorConfig::in_dir(dir.path());
        config.release_loops_on_shutdown = true;
        let handle = emulator::start(config).await.expect("restart emulator");
        super::secrets::watch_tokens(handle.cloud());
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
        self.versioned(s, &s.volume, "volume", method, path, body, version).await
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
        self.versioned(s, &s.compute, "compute", method, path, body, version).await
    }

    /// Calls `base` + `path` with the session's token at `service`'s microversion `version`.
    #[allow(clippy::too_many_arguments)]
    async fn versioned(
        &self,
        s: &Session,
        base: &str,
        service: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
        version: &str,
    ) -> Reply {
        let header = format!("{service} {version}");
        self.send(
            method,
            &format!("{base}{path}"),
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

    /// Attaches volume `id` to `server` through Nova (2.1) and waits until it is in-use.
    pub async fn attach_through_nova(&self, s: &Session, server: &str, id: &str) {
        let path = format!("/servers/{server}/os-volume_attachments");
        let body = json!({"volumeAttachment": {"volumeId": id}});
        self.nova(s, Method::POST, &path, Some(body), "2.1").await;
        self.wait_status(s, &format!("/volumes/{id}"), "volume", "in-use").await;
    }

    /// Writes `data` at `offset` into the backing file of volume `id`.
    pub fn write_volume(&self, id: &str, offset: u64, data: &[u8]) {
        use std::os::unix::fs::FileExt;
        let path = self.dir.path().join("volumes").join(format!("{id}.img"));
        std::fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(data, offset).unwrap();
    }

    /// Reads `len` bytes at `offset` from the backing file of volume `id`.
    pub fn read_volume(&self, id: &str, offset: u64, len: usize) -> Vec<u8> {
        use std::os::unix::fs::FileExt;
        let path = self.dir.path().join("volumes").join(format!("{id}.img"));
        let mut buf = vec![0u8; len];
        std::fs::File::open(path).unwrap().read_exact_at(&mut buf, offset).unwrap();
        buf
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

/// A Huawei AK/SK pair.
#[derive(Clone, Debug)]
pub struct AkSk {
    /// The access key.
    pub ak: String,
    /// The secret key.
    pub sk: String,
}

/// How a test bends a signed request to check that the emulator refuses it.
#[derive(Clone, Debug, Default)]
pub struct Signing {
    /// Seconds to add to the current time in `X-Sdk-Date`.
    pub skew_seconds: i64,
    /// Send this body instead of the signed one.
    pub tampered_body: Option<Vec<u8>>,
    /// Sign only these headers (default `host;x-sdk-date`).
    pub signed_headers: Option<Vec<&'static str>>,
    /// Leave out the `X-Sdk-Date` header.
    pub omit_date: bool,
}

/// `YYYYMMDDTHHMMSSZ` of a Unix time.
pub fn sdk_date(unix_seconds: i64) -> String {
    let days = unix_seconds.div_euclid(86_400);
    let rem = unix_seconds.rem_euclid(86_400);
    // Days to civil date (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

fn pct(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The SDK-HMAC-SHA256 `Authorization` value of a request (a test-only signer, written from
/// the published algorithm).
pub fn sdk_authorization(
    key: &AkSk,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, String)],
    body: &[u8],
    date: &str,
) -> String {
    let mut uri: String = path.split('/').map(pct).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    let mut pairs: Vec<String> = query.iter().map(|(k, v)| format!("{}={}", pct(k), pct(v))).collect();
    pairs.sort();
    let mut signed: Vec<(String, String)> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string())).collect();
    signed.sort();
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let names = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let body_hash = hex_of(ring::digest::digest(&ring::digest::SHA256, body).as_ref());
    let canonical =
        format!("{method}\n{uri}\n{}\n{canonical_headers}\n{names}\n{body_hash}", pairs.join("&"));
    let canonical_hash = hex_of(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()).as_ref());
    let to_sign = format!("SDK-HMAC-SHA256\n{date}\n{canonical_hash}");
    let hmac_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.sk.as_bytes());
    let signature = hex_of(ring::hmac::sign(&hmac_key, to_sign.as_bytes()).as_ref());
    format!("SDK-HMAC-SHA256 Access={}, SignedHeaders={names}, Signature={signature}", key.ak)
}

impl TestCloud {
    /// The configured AK/SK pair of the demo user.
    pub fn demo_key(&self) -> AkSk {
        let (ak, sk) = self.handle.access_keys("demo").into_iter().next().expect("demo has an AK/SK pair");
        AkSk { ak, sk }
    }

    /// A Huawei request signed with `key` (`path` includes `/evs` or `/ecs`).
    pub async fn huawei(
        &self,
        key: &AkSk,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        self.huawei_with(key, method, path, query, body, Signing::default()).await
    }

    /// A Huawei request signed with `key`, bent as `signing` says.
    pub async fn huawei_with(
        &self,
        key: &AkSk,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
        signing: Signing,
    ) -> Reply {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap()).unwrap_or_default();
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let date = sdk_date(now + signing.skew_seconds);
        let host = self.handle.base_url().split_once("://").map_or("", |(_, h)| h).to_string();
        let names = signing.signed_headers.clone().unwrap_or(vec!["host", "x-sdk-date"]);
        let headers: Vec<(&str, String)> = names
            .iter()
            .map(|n| match *n {
                "host" => ("host", host.clone()),
                "x-sdk-date" => ("x-sdk-date", date.clone()),
                "content-type" => ("content-type", "application/json".to_string()),
                other => panic!("the test signer does not know header {other}"),
            })
            .collect();
        let authorization = sdk_authorization(key, method.as_str(), path, query, &headers, &body, &date);
        let mut url = reqwest::Url::parse(&self.url(path)).unwrap();
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter());
        }
        let mut request = self
            .http
            .request(method, url)
            .header("Host", host)
            .header("Content-Type", "application/json")
            .header("Authorization", authorization);
        if !signing.omit_date {
            request = request.header("X-Sdk-Date", date);
        }
        let sent = signing.tampered_body.unwrap_or(body);
        if !sent.is_empty() {
            request = request.body(sent);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// Waits (guarding against hangs only) until a Huawei job leaves INIT/RUNNING; returns it.
    pub async fn wait_job(&self, key: &AkSk, service: &str, project_id: &str, job_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let path = format!("/{service}/v1/{project_id}/jobs/{job_id}");
        loop {
            let reply = self.huawei(key, Method::GET, &path, &[], None).await;
            assert_eq!(reply.status, 200, "job {job_id}: {:?}", reply.body);
            let status = reply.body["status"].as_str().unwrap_or_default().to_string();
            if status == "SUCCESS" || status == "FAIL" {
                return reply.body;
            }
            assert!(Instant::now() < deadline, "job {job_id} never finished: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
