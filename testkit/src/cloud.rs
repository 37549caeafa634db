//! The emulator started in-process, and the driver's OpenStack backend pointed at it through
//! a real clouds.yaml, exactly as an operator would configure it.

use std::sync::Arc;
use std::time::Duration;

use cinder_evs_csi::cloud::http::{HttpClient, HttpSettings};
use cinder_evs_csi::cloud::huawei::HuaweiBackend;
use cinder_evs_csi::cloud::huawei::auth::Client as HuaweiClient;
use cinder_evs_csi::cloud::openstack::OpenStackBackend;
use cinder_evs_csi::cloud::openstack::keystone::Session;
use cinder_evs_csi::cloud::retry::Backoff;
use cinder_evs_csi::cloud::types::Owner;
use cinder_evs_csi::cloud::wait::WaitSettings;
use cinder_evs_csi::config::ConfigSource;
use cinder_evs_csi::config::watch::ConfigWatch;
use cinder_evs_csi::telemetry::metrics::Metrics;
use cinder_evs_emulator::{Credentials, EmulatorConfig, EmulatorHandle};

pub use super::emulator::TestCloud;

/// Starts an emulator for driver tests: no loop devices, no metadata service, a short
/// latency on every transition, then `tweak`.
pub async fn emulator(tweak: impl FnOnce(&mut EmulatorConfig)) -> TestCloud {
    TestCloud::start_with(|config| {
        config.metadata_listen = None;
        config.loop_devices = false;
        config.latency = Duration::from_millis(30);
        tweak(config);
    })
    .await
}

/// How a test authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth {
    /// User and project by name.
    PasswordByName,
    /// User and project by id.
    PasswordById,
    /// The user's application credential.
    ApplicationCredential,
}

/// A clouds.yaml for the demo user.
pub fn clouds_yaml(creds: &Credentials, auth: Auth, extra: &str) -> String {
    let auth_block = match auth {
        Auth::PasswordByName => format!(
            "      username: {}\n      password: {}\n      user_domain_name: {}\n      project_name: {}\n      project_domain_name: {}\n",
            creds.username,
            creds.password,
            creds.user_domain_name,
            creds.project_name,
            creds.project_domain_name
        ),
        Auth::PasswordById => format!(
            "      user_id: {}\n      password: {}\n      project_id: {}\n",
            creds.user_id, creds.password, creds.project_id
        ),
        Auth::ApplicationCredential => {
            let (id, _, secret) =
                creds.application_credential.clone().expect("demo has an application credential");
            format!("      application_credential_id: {id}\n      application_credential_secret: {secret}\n")
        }
    };
    let auth_type = match auth {
        Auth::ApplicationCredential => "    auth_type: v3applicationcredential\n",
        _ => "",
    };
    format!(
        "clouds:\n  test:\n{auth_type}    auth:\n      auth_url: {}\n{auth_block}    region_name: {}\n{extra}",
        creds.auth_url, creds.region
    )
}

/// A backend built from clouds.yaml text, with fast retries.
pub struct TestBackend {
    /// The backend.
    pub backend: Arc<OpenStackBackend>,
    /// Keeps the configuration alive.
    pub config: ConfigWatch,
    /// Metrics the transport records into.
    pub metrics: Arc<Metrics>,
    /// Holds the config file.
    pub dir: tempfile::TempDir,
}

/// Builds the OpenStack backend from clouds.yaml text.
pub fn backend(yaml: &str) -> TestBackend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clouds.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = ConfigWatch::start(
        ConfigSource { path: Some(path), ..Default::default() },
        Duration::from_millis(50),
    )
    .expect("config loads");
    let metrics = Metrics::new();
    let settings = HttpSettings {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            factor: 2.0,
            max: Duration::from_millis(500),
            max_attempts: 6,
        },
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let cloud = config.current().default_cloud().clone();
    let http = Arc::new(HttpClient::new(&cloud.tls, settings, Some(metrics.clone())).unwrap());
    let session = Arc::new(Session::new(http, config.subscribe(), None).unwrap());
    let backend = Arc::new(OpenStackBackend::new(session, WaitSettings::default(), None));
    TestBackend { backend, config, metrics, dir }
}

/// Requests the emulator counted for routes containing `fragment` and using `method`.
pub fn count(handle: &EmulatorHandle, method: &str, fragment: &str) -> u64 {
    handle
        .cloud()
        .counters()
        .snapshot()
        .into_iter()
        .filter(|(k, _)| k.starts_with(&format!("{method} ")) && k.contains(fragment))
        .map(|(_, v)| v)
        .sum()
}

/// How a Huawei test cloud authenticates.
#[derive(Clone, Debug)]
pub enum HuaweiAuth {
    /// The demo user's AK/SK pair, with this secret key instead when given.
    AkSk(Option<String>),
    /// An IAM token from the Keystone password of the demo user.
    Password,
    /// A temporary AK/SK of the demo user, with its security token when given.
    Temporary {
        /// The temporary access key.
        access_key: String,
        /// Its secret key.
        secret_key: String,
        /// The security token to send.
        security_token: Option<String>,
    },
}

/// A clouds.yaml for the demo user of the emulator's Huawei side, its endpoints overridden to
/// the emulator's `/evs` and `/ecs`.
pub fn huawei_yaml(handle: &EmulatorHandle, auth: HuaweiAuth, extra: &str) -> String {
    let creds = handle.demo();
    let auth_block = match auth {
        HuaweiAuth::AkSk(secret) => {
            let (ak, sk) = handle.access_keys("demo").into_iter().next().expect("demo has an AK/SK pair");
            format!(
                "    auth_type: aksk\n    auth:\n      access_key: {ak}\n      secret_key: {}\n      project_id: {}\n",
                secret.unwrap_or(sk),
                creds.project_id
            )
        }
        HuaweiAuth::Temporary { access_key, secret_key, security_token } => format!(
            "    auth_type: aksk\n    auth:\n      access_key: {access_key}\n      secret_key: {secret_key}\n{}      project_id: {}\n",
            security_token.map(|t| format!("      security_token: {t}\n")).unwrap_or_default(),
            creds.project_id
        ),
        HuaweiAuth::Password => format!(
            "    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      user_domain_name: {}\n      project_id: {}\n",
            creds.auth_url, creds.username, creds.password, creds.user_domain_name, creds.project_id
        ),
    };
    format!(
        "clouds:\n  hw:\n    cloud_type: huawei\n{auth_block}    region_name: {}\n    evs_endpoint_override: {}\n    ecs_endpoint_override: {}\n{extra}",
        creds.region,
        handle.evs_url(),
        handle.ecs_url()
    )
}

/// A Huawei backend built from clouds.yaml text, with fast retries.
pub struct TestHuawei {
    /// The backend.
    pub backend: Arc<HuaweiBackend>,
    /// The signed-request client under it.
    pub client: Arc<HuaweiClient>,
    /// Keeps the configuration alive.
    pub config: ConfigWatch,
    /// Holds the config file.
    pub dir: tempfile::TempDir,
}

/// Builds the Huawei backend from clouds.yaml text, the way the controller's wiring does.
pub fn huawei_backend(yaml: &str) -> TestHuawei {
    owned_huawei_backend(yaml, None)
}

/// [`huawei_backend`] for a cluster: disks with `owner` in their metadata are its own.
pub fn owned_huawei_backend(yaml: &str, owner: Option<Owner>) -> TestHuawei {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clouds.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = ConfigWatch::start(
        ConfigSource { path: Some(path), ..Default::default() },
        Duration::from_millis(50),
    )
    .expect("config loads");
    let settings = HttpSettings {
        backoff: Backoff {
            initial: Duration::from_millis(20),
            factor: 2.0,
            max: Duration::from_millis(500),
            max_attempts: 6,
        },
        request_timeout: Duration::from_secs(5),
        ..Default::default()
    };
    let cloud = config.current().default_cloud().clone();
    let http = Arc::new(HttpClient::new(&cloud.tls, settings, None).unwrap());
    let client = Arc::new(HuaweiClient::new(http, config.subscribe(), None).unwrap());
    let backend = Arc::new(HuaweiBackend::new(client.clone(), WaitSettings::default(), owner));
    TestHuawei { backend, client, config, dir }
}
