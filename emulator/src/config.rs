//! What an emulator is started with: addresses, state directory, latency, seed, identities,
//! servers, quotas and faults.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::faults::{FaultRule, RateLimit};

/// How an emulator is set up; `Default` gives a loopback emulator with devstack-like users.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The API listener (Keystone, Cinder, Nova and `/_emulator`); port 0 picks a free port.
    pub listen: SocketAddr,
    /// The instance metadata service listener; `None` serves no metadata.
    pub metadata_listen: Option<SocketAddr>,
    /// Where EVS, ECS and IAM each get a listener serving their API at the root (as an SDK
    /// pointed at `http://host:port` expects): port 0 picks free ports, port P gives P, P+1
    /// and P+2. `None` (the default) serves them only under `/evs`, `/ecs` and `/identity`.
    pub huawei_listen: Option<SocketAddr>,
    /// Where volumes (sparse files) and `state.json` live.
    pub state_dir: PathBuf,
    /// Where `virtio-<id>` links of this host's attachments go; default `<state_dir>/by-id`.
    pub by_id_dir: Option<PathBuf>,
    /// Host name used in catalog URLs instead of the listen address (e.g. when listening on
    /// 0.0.0.0).
    pub public_host: Option<String>,
    /// Default time each state transition takes.
    pub latency: Duration,
    /// Per-transition latency, keyed `<resource>.<status>`, e.g. `volume.attaching`.
    pub transition_latency: BTreeMap<String, Duration>,
    /// Seed of the fault-injection randomness.
    pub seed: u64,
    /// The region in the catalog.
    pub region: String,
    /// The availability zones; the first is the default.
    pub availability_zones: Vec<String>,
    /// Keystone users (projects are made from their project names).
    pub users: Vec<UserConfig>,
    /// Compute servers volumes can attach to.
    pub servers: Vec<ServerConfig>,
    /// Default quota limits by resource name (`-1` unlimited); unnamed ones use Cinder's defaults.
    pub default_quotas: BTreeMap<String, i64>,
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Fault rules active from the start.
    pub faults: Vec<FaultRule>,
    /// A request rate limit active from the start.
    pub rate_limit: Option<RateLimit>,
    /// Set up loop devices for attachments to this host's server (only as root).
    pub loop_devices: bool,
    /// Detach loop devices and remove links when the emulator shuts down (tests); otherwise
    /// they stay for the next start to adopt.
    pub release_loops_on_shutdown: bool,
    /// Save the world to `state.json` (default). Off, the state lives only in memory, as for
    /// the benchmark, where saving would charge the emulator's own work to the driver.
    pub persist: bool,
    /// Answer EVS v2.1 creates with the job id alone, the job's entities naming the disk only
    /// once it is created: EVS documents `volume_ids` as not always present, and a client must
    /// then read the id from the finished job.
    pub evs_ids_from_jobs_only: bool,
    /// Huawei AK/SK pairs; each belongs to a configured user.
    pub access_keys: Vec<AccessKeyConfig>,
    /// Serve the API listener over HTTPS with this certificate and key (the metadata
    /// service stays plain HTTP, as on a real cloud).
    pub tls: Option<super::https::TlsFiles>,
}

/// A Huawei AK/SK pair of a configured user.
#[derive(Clone, Debug)]
pub struct AccessKeyConfig {
    /// The user name (its domain's first match).
    pub user: String,
    /// The access key (AK).
    pub access_key: String,
    /// The secret key (SK).
    pub secret_key: String,
}

/// A Keystone user and the project it has roles in.
#[derive(Clone, Debug)]
pub struct UserConfig {
    /// User name.
    pub name: String,
    /// Password.
    pub password: String,
    /// Project name (created on first use).
    pub project: String,
    /// Domain name of user and project (created on first use; `Default` has id `default`).
    pub domain: String,
    /// Role names in the project (`admin` grants admin APIs).
    pub roles: Vec<String>,
    /// An application credential `(name, secret)` to create for the user in that project.
    pub app_credential: Option<(String, String)>,
}

/// A compute server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Its id; a random UUID (kept across restarts) when `None`.
    pub id: Option<String>,
    /// Its name.
    pub name: String,
    /// Owning project name.
    pub project: String,
    /// Availability zone; the first configured one when `None`.
    pub availability_zone: Option<String>,
    /// Whether it is this host (attachments become loop devices; the metadata service
    /// describes it).
    pub this_host: bool,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            metadata_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            huawei_listen: None,
            state_dir: std::env::temp_dir().join("cinder-evs-csi-emulator"),
            by_id_dir: None,
            public_host: None,
            latency: Duration::ZERO,
            transition_latency: BTreeMap::new(),
            seed: 0,
            region: "RegionOne".into(),
            availability_zones: vec!["nova".into()],
            users: vec![
                UserConfig {
                    name: "admin".into(),
                    password: "admin-secret".into(),
                    project: "admin".into(),
                    domain: "Default".into(),
                    roles: vec!["admin".into(), "member".into(), "reader".into()],
                    app_credential: None,
                },
                UserConfig {
                    name: "demo".into(),
                    password: "demo-secret".into(),
                    project: "demo".into(),
                    domain: "Default".into(),
                    roles: vec!["member".into(), "reader".into()],
                    app_credential: Some(("demo-csi".into(), "demo-appcred-secret".into())),
                },
            ],
            servers: vec![ServerConfig {
                id: None,
                name: "emulator-node".into(),
                project: "demo".into(),
                availability_zone: None,
                this_host: true,
            }],
            default_quotas: BTreeMap::new(),
            token_ttl: Duration::from_secs(3600),
            faults: Vec::new(),
            rate_limit: None,
            loop_devices: true,
            release_loops_on_shutdown: false,
            persist: true,
            evs_ids_from_jobs_only: false,
            access_keys: vec![AccessKeyConfig {
                user: "demo".into(),
                access_key: "DEMOACCESSKEY0000001".into(),
                secret_key: "demo-secret-key-for-the-emulator-0001".into(),
            }],
            tls: None,
        }
    }
}

impl EmulatorConfig {
    /// The default config with its state in `state_dir`.
    pub fn in_dir(state_dir: impl Into<PathBuf>) -> Self {
        Self { state_dir: state_dir.into(), ..Self::default() }
    }

    /// The by-id link directory in effect.
    pub fn by_id_dir(&self) -> PathBuf {
        self.by_id_dir.clone().unwrap_or_else(|| self.state_dir.join("by-id"))
    }
}

/// Cinder's default quota limits.
pub fn cinder_default_quotas() -> BTreeMap<String, i64> {
    [
        ("volumes", 10),
        ("snapshots", 10),
        ("gigabytes", 1000),
        ("backups", 10),
        ("backup_gigabytes", 1000),
        ("groups", 10),
        ("per_volume_gigabytes", -1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
