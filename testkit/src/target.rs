//! Where the controller suite runs: on the emulator by default, or on a real OpenStack when
//! `CSI_REAL_OPENSTACK` names a clouds.yaml holding an `admin` cloud (tests/real-openstack/up.sh
//! writes one). On the real cloud every test gets a project and a member user of its own, so
//! tests running side by side never see each other's volumes. Assertions go through the cloud's
//! API ([`Api`]), never through emulator internals, so they mean the same on both.

use std::path::Path;

use cinder_evs_emulator::Credentials;
use reqwest::Method;
use serde_json::{Value, json};

use super::emulator::{Reply, TestCloud};

/// The variable that selects the real cloud: the path of its clouds.yaml.
pub const REAL_OPENSTACK: &str = "CSI_REAL_OPENSTACK";

/// The microversion the tests' own requests use (groups need 3.13, backups' restore 3.47).
const MICROVERSION: &str = "volume 3.50";

/// Volume types of the target, by the role they play in the suite.
#[derive(Clone, Copy, Debug)]
pub struct VolumeTypes {
    /// A type volumes can be created with and retyped from.
    pub initial: &'static str,
    /// A type a volume of `initial` without snapshots can be retyped to.
    pub retype_to: &'static str,
    /// A type on another backend than `retype_to`: the retype needs a migration, which the
    /// cloud refuses while the volume has snapshots.
    pub elsewhere: &'static str,
    /// A type whose volumes the backup service can read.
    pub backup: &'static str,
    /// A type on the same backend as `initial`: a retype to it needs no migration.
    pub same_backend: &'static str,
}

/// The cloud behind a [`Target`].
pub enum Cloud {
    /// The in-process emulator, one per test.
    Emulator(TestCloud),
    /// A real OpenStack; the directory holds the test's own files (driver config, socket).
    Real(tempfile::TempDir),
}

/// A cloud for one test, with a user for the driver and API clients for the assertions.
pub struct Target {
    /// The cloud.
    pub cloud: Cloud,
    /// The test's user: the driver's clouds.yaml is made from it.
    pub user: Credentials,
    /// The Cinder API as the test's user.
    pub api: Api,
    /// The Cinder API as the cloud's admin (quotas).
    pub admin: Api,
    /// The target's volume types.
    pub types: VolumeTypes,
}

impl Target {
    /// The emulator, or the real cloud when [`REAL_OPENSTACK`] is set. A real cloud that
    /// cannot be reached fails the test: asking for it and silently testing nothing would lie.
    pub async fn new() -> Self {
        cinder_evs_csi::tls::install_crypto_provider();
        match std::env::var_os(REAL_OPENSTACK) {
            Some(path) => Self::real(Path::new(&path)).await,
            None => Self::emulated().await,
        }
    }

    /// True on a real OpenStack.
    pub fn is_real(&self) -> bool {
        matches!(self.cloud, Cloud::Real(_))
    }

    /// The emulator, for the checks only it can make (request counts, volume bytes).
    pub fn emulator(&self) -> Option<&TestCloud> {
        match &self.cloud {
            Cloud::Emulator(cloud) => Some(cloud),
            Cloud::Real(_) => None,
        }
    }

    /// A directory for the test's files, removed with the target.
    pub fn dir(&self) -> &Path {
        match &self.cloud {
            Cloud::Emulator(cloud) => cloud.dir.path(),
            Cloud::Real(dir) => dir.path(),
        }
    }

    async fn emulated() -> Self {
        let cloud = super::cloud::emulator(|c| {
            c.default_quotas.insert("volumes".into(), -1);
            c.default_quotas.insert("gigabytes".into(), -1);
        })
        .await;
        let user = cloud.handle.demo();
        let api = Api::login(&user).await;
        let admin = Api::login(&cloud.handle.admin()).await;
        let types = VolumeTypes {
            initial: "lvmdriver-1",
            retype_to: "fast",
            elsewhere: "lvmdriver-1",
            backup: "lvmdriver-1",
            same_backend: "__DEFAULT__",
        };
        Self { cloud: Cloud::Emulator(cloud), user, api, admin, types }
    }

    async fn real(path: &Path) -> Self {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{REAL_OPENSTACK}={}: cannot read it: {e}", path.display()));
        let yaml: Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("{REAL_OPENSTACK}={}: not YAML: {e}", path.display()));
        let cloud = &yaml["clouds"]["admin"];
        assert!(cloud.is_object(), "{REAL_OPENSTACK}={}: no `admin` cloud in it", path.display());
        let field = |key: &str| cloud["auth"][key].as_str().unwrap_or_default().to_string();
        let admin_user = Credentials {
            auth_url: field("auth_url"),
            region: cloud["region_name"].as_str().unwrap_or("RegionOne").to_string(),
            username: field("username"),
            user_id: String::new(),
            password: field("password"),
            user_domain_name: field("user_domain_name"),
            project_name: field("project_name"),
            project_id: String::new(),
            project_domain_name: field("project_domain_name"),
            application_credential: None,
        };
        let admin = Api::login(&admin_user).await;
        let user = admin.make_project_member(&admin_user).await;
        let api = Api::login(&user).await;
        let types = VolumeTypes {
            initial: "fake",
            retype_to: "fake-gold",
            elsewhere: "nfs",
            backup: "nfs",
            same_backend: "fake-gold",
        };
        Self { cloud: Cloud::Real(tempfile::tempdir().unwrap()), user, api, admin, types }
    }
}

/// A Keystone-authenticated client of one project's Cinder API.
pub struct Api {
    http: reqwest::Client,
    token: String,
    auth_url: String,
    /// The project's Cinder URL (`.../v3/{project_id}`).
    pub volume_url: String,
}

impl Api {
    /// Password login by names, scoped to the user's project; the Cinder URL from the catalog.
    pub async fn login(user: &Credentials) -> Self {
        let http = reqwest::Client::new();
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user.username, "domain": {"name": user.user_domain_name}, "password": user.password}}},
            "scope": {"project": {"name": user.project_name, "domain": {"name": user.project_domain_name}}}}});
        let url = format!("{}/auth/tokens", user.auth_url.trim_end_matches('/'));
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("Keystone at {url} unreachable: {e}"));
        assert_eq!(response.status().as_u16(), 201, "login of {} refused", user.username);
        let token = response.headers()["x-subject-token"].to_str().unwrap().to_string();
        let reply: Value = response.json().await.unwrap();
        let volume_url = reply["token"]["catalog"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["type"] == "block-storage" || s["type"] == "volumev3")
            .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
            .find(|e| e["interface"] == "public")
            .and_then(|e| e["url"].as_str().map(|u| u.trim_end_matches('/').to_string()))
            .expect("a public block-storage endpoint in the catalog");
        Self { http, token, auth_url: user.auth_url.trim_end_matches('/').to_string(), volume_url }
    }

    /// Sends a request to a path under the project's Cinder URL.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let url = format!("{}/{}", self.volume_url, path.trim_start_matches('/'));
        let mut request = self
            .http
            .request(method, &url)
            .header("X-Auth-Token", &self.token)
            .header("OpenStack-API-Version", MICROVERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Reply { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
    }

    /// A GET that must succeed; its JSON body.
    pub async fn get(&self, path: &str) -> Value {
        let reply = self.call(Method::GET, path, None).await;
        assert!((200..300).contains(&reply.status), "GET {path}: {} {:?}", reply.status, reply.body);
        reply.body
    }

    /// The project's volumes called `name`.
    pub async fn volumes_named(&self, name: &str) -> Vec<Value> {
        let body = self.get("volumes/detail").await;
        body["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v["name"] == name)
            .collect()
    }

    /// One volume as the API shows it.
    pub async fn volume(&self, id: &str) -> Value {
        self.get(&format!("volumes/{id}")).await["volume"].clone()
    }

    /// The project's volume groups.
    pub async fn groups(&self) -> Vec<Value> {
        self.get("groups/detail").await["groups"].as_array().cloned().unwrap_or_default()
    }

    /// Sets one of a project's quotas, e.g. `gigabytes` (admin).
    pub async fn set_quota(&self, project_id: &str, key: &str, limit: i64) {
        let body = json!({"quota_set": {key: limit}});
        let reply = self.call(Method::PUT, &format!("os-quota-sets/{project_id}"), Some(body)).await;
        assert_eq!(reply.status, 200, "quota update: {:?}", reply.body);
    }

    /// Makes a project and a member user of it with a random password (admin, Keystone v3).
    async fn make_project_member(&self, admin: &Credentials) -> Credentials {
        let name = format!("csi-test-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let password = uuid::Uuid::new_v4().simple().to_string();
        let keystone = |method: Method, path: &str, body: Option<Value>| {
            let mut request = self
                .http
                .request(method, format!("{}/{path}", self.auth_url))
                .header("X-Auth-Token", &self.token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let path = path.to_string();
            async move {
                let response = request.send().await.expect("Keystone answers");
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                assert!(status.is_success(), "Keystone {path}: {status} {body}");
                body
            }
        };
        let project = keystone(
            Method::POST,
            "projects",
            Some(json!({"project": {"name": name, "domain_id": "default"}})),
        )
        .await["project"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let user_id = keystone(
            Method::POST,
            "users",
            Some(json!({"user": {"name": name, "password": password, "domain_id": "default",
                "default_project_id": project}})),
        )
        .await["user"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let role = keystone(Method::GET, "roles?name=member", None).await["roles"][0]["id"]
            .as_str()
            .expect("a member role")
            .to_string();
        keystone(Method::PUT, &format!("projects/{project}/users/{user_id}/roles/{role}"), None).await;
        Credentials {
            auth_url: admin.auth_url.clone(),
            region: admin.region.clone(),
            username: name.clone(),
            user_id,
            password,
            user_domain_name: "Default".into(),
            project_name: name,
            project_id: project,
            project_domain_name: "Default".into(),
            application_credential: None,
        }
    }
}
