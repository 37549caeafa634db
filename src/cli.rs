//! The command line: flags (each also read from an environment variable) and the modes. The
//! services of each mode are built by [`crate::wiring`], from the options the flags give.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::csi::observe::Observer;
use crate::host::device::{self, DeviceFinder};
use crate::node_identity::{self, IdentityConfig, metadata};
use crate::server::{self, Endpoint, ServeError};
use crate::telemetry::logging::{self, LogFormat, LoggingError};
use crate::telemetry::metrics::{self, Metrics};
use crate::wiring::{AbortOnDrop, ControllerOptions, NodeOptions};

mod duration;
#[cfg(feature = "emulator")]
mod sandbox;

#[cfg(feature = "emulator")]
pub use sandbox::SandboxArgs;

/// The socket served when `--endpoint` is not given (the sandbox puts its own in its directory).
pub const DEFAULT_SOCKET: &str = "/csi/csi.sock";

/// The driver name used when `--driver-name` is not given.
pub const DEFAULT_DRIVER_NAME: &str = "csi.cinder-evs.io";

const LONG_VERSION: &str =
    concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CINDER_EVS_CSI_GIT_COMMIT"), ")");

/// Kubernetes CSI driver for block volumes on OpenStack Cinder and Huawei Cloud EVS.
#[derive(Debug, Parser)]
#[command(name = "cinder-evs-csi", version = LONG_VERSION, about, long_about = None)]
pub struct Cli {
    /// The mode to run, with its own flags.
    #[command(subcommand)]
    pub command: Command,
}

/// Log flags, taken by every mode.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "CSI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter directives, e.g. `info` or `info,cinder_evs_csi=debug`.
    #[arg(long, env = "CSI_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// The CSI driver name, for every mode that serves or names the driver.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct DriverNameArg {
    /// CSI driver name, as the CSIDriver object and every PersistentVolume spell it (domain
    /// notation, at most 63 characters).
    #[arg(long, env = "CSI_DRIVER_NAME", default_value = DEFAULT_DRIVER_NAME, value_parser = parse_driver_name)]
    pub driver_name: String,
}

/// Flags of the modes that serve the CSI socket.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct ServeArgs {
    /// gRPC endpoint to serve: unix:///path/to.sock or tcp://host:port.
    #[arg(long, env = "CSI_ENDPOINT", default_value = concat!("unix://", "/csi/csi.sock"))]
    pub endpoint: Endpoint,

    /// Driver name.
    #[command(flatten)]
    pub driver: DriverNameArg,

    /// Address for Prometheus `/metrics` and `/healthz`, e.g. 0.0.0.0:9808; off when unset.
    #[arg(long, env = "CSI_METRICS_ADDRESS")]
    pub metrics_address: Option<SocketAddr>,

    /// How long in-flight RPCs may run after SIGTERM/SIGINT before the process exits
    /// (e.g. 30s, 500ms, 1m30s).
    #[arg(long, env = "CSI_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// The cloud configuration file of the modes that talk to the cloud.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct CloudConfigArg {
    /// Cloud configuration file (clouds.yaml or cloud.conf); the `OS_*` environment when unset.
    #[arg(long, env = "CSI_CLOUD_CONFIG")]
    pub cloud_config: Option<PathBuf>,
}

/// Flags of the node service; each may also come from the environment variable shown.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct NodeArgs {
    /// This node's id, the cloud server id of this host; skips --node-id-sources.
    #[arg(long, env = "CSI_NODE_ID")]
    pub node_id: Option<String>,

    /// Where to look up this node's id when --node-id is not given, in order (comma separated:
    /// config-drive, metadata, kubernetes).
    #[arg(long, env = "CSI_NODE_ID_SOURCES", value_delimiter = ',', default_value = "config-drive,metadata")]
    pub node_id_sources: Vec<node_identity::Source>,

    /// URL of the OpenStack metadata document (meta_data.json).
    #[arg(long, env = "CSI_METADATA_URL", default_value = metadata::DEFAULT_METADATA_URL)]
    pub metadata_url: String,

    /// This host's Kubernetes Node name, for the `kubernetes` id source (set it from the
    /// downward API: spec.nodeName).
    #[arg(long, env = "CSI_KUBE_NODE_NAME")]
    pub kube_node_name: Option<String>,

    /// Kubeconfig for the `kubernetes` id source; the in-cluster service account when unset.
    #[arg(long, env = "CSI_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// This node's availability zone; overrides the zone the metadata reports.
    #[arg(long, env = "CSI_ZONE")]
    pub zone: Option<String>,

    /// Volumes this node can take, reported to the scheduler (default: 25 on virtio-blk
    /// servers, 59 on SCSI servers).
    #[arg(long, env = "CSI_MAX_VOLUMES_PER_NODE", value_parser = clap::value_parser!(i64).range(1..))]
    pub max_volumes_per_node: Option<i64>,

    /// Directories of by-id device links to search for a volume's device (comma separated).
    #[arg(long, env = "CSI_DEVICE_SEARCH_DIRS", value_delimiter = ',', default_value = device::DEFAULT_SEARCH_DIR)]
    pub device_search_dirs: Vec<PathBuf>,

    /// How long staging waits for an attached volume's device to appear (e.g. 30s).
    #[arg(long, env = "CSI_DEVICE_WAIT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub device_wait_timeout: Duration,
}

impl NodeArgs {
    /// The composition root's options.
    pub fn options(&self) -> NodeOptions {
        NodeOptions {
            identity: IdentityConfig {
                node_id: self.node_id.clone(),
                zone: self.zone.clone(),
                sources: self.node_id_sources.clone(),
                metadata_url: self.metadata_url.clone(),
                kube_node_name: self.kube_node_name.clone(),
                kubeconfig: self.kubeconfig.clone(),
                ..IdentityConfig::default()
            },
            max_volumes_per_node: self.max_volumes_per_node,
            finder: DeviceFinder {
                search_dirs: self.device_search_dirs.clone(),
                sys_root: PathBuf::from("/sys"),
                wait: self.device_wait_timeout,
            },
        }
    }
}

/// Controller flags; each may also come from the environment variable shown.
#[derive(Clone, Debug, Args)]
pub struct ControllerArgs {
    /// Default cloud of the configuration (also `OS_CLOUD`); needed when it holds several.
    #[arg(long, global = true, env = "CSI_CLOUD")]
    pub cloud: Option<String>,

    /// Cluster id written into every volume's metadata, to tell clusters sharing a project apart.
    #[arg(long, global = true, env = "CSI_CLUSTER_ID", default_value = "kubernetes")]
    pub cluster_id: String,

    /// How long CreateVolume waits for the cloud to finish a volume.
    #[arg(long, global = true, env = "CSI_CREATE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub create_timeout: Duration,

    /// How long ControllerPublish/Unpublish wait for an attach or detach.
    #[arg(long, global = true, env = "CSI_ATTACH_TIMEOUT", default_value = "3m", value_parser = parse_duration)]
    pub attach_timeout: Duration,

    /// How long a delete, expand or publish waits for a transition it cannot act in (a
    /// snapshot still creating, a volume still extending) to settle; the caller's gRPC
    /// deadline cuts it shorter.
    #[arg(long, global = true, env = "CSI_SETTLE_TIMEOUT", default_value = "2m", value_parser = parse_duration)]
    pub settle_timeout: Duration,

    /// Make DeleteVolume wait until the cloud has finished deleting.
    #[arg(long, global = true, env = "CSI_WAIT_FOR_DELETE")]
    pub wait_for_delete: bool,

    /// How often the cloud configuration file is checked for changes.
    #[arg(long, global = true, env = "CSI_CONFIG_RELOAD_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    pub config_reload_interval: Duration,

    /// How often the cluster's disks are checked for tags they lost (EVS); 0: never.
    #[arg(long, global = true, env = "CSI_TAG_REPAIR_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub tag_repair_interval: Duration,
}

impl ControllerArgs {
    /// The composition root's options, with the cloud configuration file the mode takes.
    pub fn options(&self, cloud_config: Option<PathBuf>) -> ControllerOptions {
        ControllerOptions {
            cloud_config,
            cloud: self.cloud.clone(),
            cluster_id: self.cluster_id.clone(),
            create_timeout: self.create_timeout,
            attach_timeout: self.attach_timeout,
            settle_timeout: self.settle_timeout,
            wait_for_delete: self.wait_for_delete,
            config_reload_interval: self.config_reload_interval,
            tag_repair_interval: self.tag_repair_interval,
        }
    }
}

/// `controller`: Identity and Controller.
#[derive(Clone, Debug, Args)]
pub struct ControllerMode {
    /// Socket, name, metrics.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Cloud configuration.
    #[command(flatten)]
    pub cloud: CloudConfigArg,
    /// Controller settings.
    #[command(flatten)]
    pub controller: ControllerArgs,
}

/// `node`: Identity and Node.
#[derive(Clone, Debug, Args)]
pub struct NodeMode {
    /// Socket, name, metrics.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Node settings.
    #[command(flatten)]
    pub node: NodeArgs,
    /// Accepted so that one environment can serve both sides, and ignored: the node never reads
    /// the cloud configuration.
    #[arg(long, env = "CSI_CLOUD_CONFIG")]
    pub cloud_config: Option<PathBuf>,
}

/// `all`: Identity, Controller and Node in one process.
#[derive(Clone, Debug, Args)]
pub struct AllMode {
    /// Socket, name, metrics.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Cloud configuration.
    #[command(flatten)]
    pub cloud: CloudConfigArg,
    /// Controller settings.
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// Node settings.
    #[command(flatten)]
    pub node: NodeArgs,
}

/// `emulator`.
#[cfg(feature = "emulator")]
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct EmulatorMode {
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Emulator settings.
    #[command(flatten)]
    pub emulator: EmulatorArgs,
}

/// `sandbox`.
#[cfg(feature = "emulator")]
#[derive(Clone, Debug, Args)]
pub struct SandboxMode {
    /// Socket, name, metrics.
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Controller settings.
    #[command(flatten)]
    pub controller: ControllerArgs,
    /// Sandbox settings.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// `import`.
#[derive(Clone, Debug, Args)]
pub struct ImportMode {
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Cloud configuration.
    #[command(flatten)]
    pub cloud_config: CloudConfigArg,
    /// Driver name written into the PersistentVolume.
    #[command(flatten)]
    pub driver: DriverNameArg,
    /// Which configured cloud holds the volume (the configuration's default when unset).
    #[arg(long, env = "CSI_CLOUD")]
    pub cloud: Option<String>,
    /// How long bringing backend storage under Cinder may take (--source-name/--source-id).
    #[arg(long, env = "CSI_CREATE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub create_timeout: Duration,
    /// What to import.
    #[command(flatten)]
    pub import: crate::import::ImportArgs,
}

/// `drain-wait`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct DrainWaitMode {
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Driver whose VolumeAttachments are waited for.
    #[command(flatten)]
    pub driver: DriverNameArg,
    /// This host's Kubernetes Node name (downward API: spec.nodeName).
    #[arg(long, env = "CSI_KUBE_NODE_NAME")]
    pub kube_node_name: Option<String>,
    /// Kubeconfig; the in-cluster service account when unset.
    #[arg(long, env = "CSI_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Timing.
    #[command(flatten)]
    pub wait: DrainWaitArgs,
}

/// `gc`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct GcMode {
    /// Logs.
    #[command(flatten)]
    pub log: LogArgs,
    /// Cloud configuration.
    #[command(flatten)]
    pub cloud_config: CloudConfigArg,
    /// Driver whose PersistentVolumes and VolumeSnapshotContents count as references.
    #[command(flatten)]
    pub driver: DriverNameArg,
    /// Which configured cloud to collect in (the configuration's default when unset).
    #[arg(long, env = "CSI_CLOUD")]
    pub cloud: Option<String>,
    /// The cluster id whose volumes and snapshots are judged (as the controller writes it).
    #[arg(long, env = "CSI_CLUSTER_ID", default_value = "kubernetes")]
    pub cluster_id: String,
    /// Kubeconfig to list PersistentVolumes, snapshots and Nodes; in-cluster when unset.
    #[arg(long, env = "CSI_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// How long a detach of a stale attachment may take (with --delete).
    #[arg(long, env = "CSI_ATTACH_TIMEOUT", default_value = "3m", value_parser = parse_duration)]
    pub attach_timeout: Duration,
    /// What to do.
    #[command(flatten)]
    pub gc: GcArgs,
}

/// The modes of the binary, each with only its own flags.
#[derive(Clone, Debug, Subcommand)]
pub enum Command {
    /// Serve Identity and Controller (one or more replicas per cluster, with the sidecars).
    Controller(ControllerMode),
    /// Serve Identity and Node (one per host, with node-driver-registrar).
    Node(NodeMode),
    /// Serve Identity, Controller and Node in one process.
    All(AllMode),
    /// Run the embedded cloud emulator (Keystone, Cinder, Nova, metadata) on this machine.
    #[cfg(feature = "emulator")]
    Emulator(EmulatorMode),
    /// Run the emulator, the controller and the node in one process on one socket, with this
    /// host as the cloud's server (`--demo`: walk one volume through its life and exit).
    #[cfg(feature = "emulator")]
    Sandbox(SandboxMode),
    /// Adopt an existing cloud volume (or backend storage, with --source-name/--host) as a
    /// static PersistentVolume and print its manifest.
    Import(ImportMode),
    /// The node plugin's preStop hook: while this Node is cordoned, wait until no
    /// VolumeAttachment of this driver names it (needs --kube-node-name).
    DrainWait(DrainWaitMode),
    /// List the cloud volumes, snapshots and attachments of this --cluster-id that no
    /// Kubernetes object references any more; remove them with --delete.
    Gc(GcMode),
}

impl Command {
    /// The mode's log flags.
    fn log(&self) -> &LogArgs {
        match self {
            Self::Controller(m) => &m.log,
            Self::Node(m) => &m.log,
            Self::All(m) => &m.log,
            #[cfg(feature = "emulator")]
            Self::Emulator(m) => &m.log,
            #[cfg(feature = "emulator")]
            Self::Sandbox(m) => &m.log,
            Self::Import(m) => &m.log,
            Self::DrainWait(m) => &m.log,
            Self::Gc(m) => &m.log,
        }
    }

    /// The mode's name, for the start-up line.
    fn name(&self) -> &'static str {
        match self {
            Self::Controller(_) => "controller",
            Self::Node(_) => "node",
            Self::All(_) => "all",
            #[cfg(feature = "emulator")]
            Self::Emulator(_) => "emulator",
            #[cfg(feature = "emulator")]
            Self::Sandbox(_) => "sandbox",
            Self::Import(_) => "import",
            Self::DrainWait(_) => "drain-wait",
            Self::Gc(_) => "gc",
        }
    }
}

/// Controller settings at their defaults (and environment), for the modes that build a
/// controller but take only a few of its flags (`gc`, `import`).
fn controller_defaults() -> ControllerArgs {
    use clap::FromArgMatches;
    let command = ControllerArgs::augment_args(clap::Command::new("defaults"));
    command
        .try_get_matches_from(["defaults"])
        .and_then(|m| ControllerArgs::from_arg_matches(&m))
        .expect("the controller flags all have defaults")
}

/// Flags of `drain-wait`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct DrainWaitArgs {
    /// Give up after this long (keep it below the pod's terminationGracePeriodSeconds).
    #[arg(long, env = "CSI_DRAIN_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Pause between two listings of VolumeAttachments.
    #[arg(long, env = "CSI_DRAIN_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub interval: Duration,
}

/// Flags of `gc`.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct GcArgs {
    /// Remove what is found; without it, only print the table (dry run).
    #[arg(long)]
    pub delete: bool,
}

/// Flags of the `emulator` mode.
#[cfg(feature = "emulator")]
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct EmulatorArgs {
    /// Address of the API listener (Keystone, Cinder, Nova, /_emulator).
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:8780")]
    pub listen: SocketAddr,
    /// Address of the instance metadata service; `off` to serve none.
    #[arg(long, env = "EMULATOR_METADATA_ADDRESS", default_value = "127.0.0.1:8781", value_parser = parse_optional_address)]
    pub metadata_address: OptionalAddress,
    /// Serve EVS, ECS and IAM each on its own listener at the root, for Huawei's SDKs: port P
    /// gives EVS P, ECS P+1, IAM P+2 (port 0: free ports); `off` to serve none.
    #[arg(long, env = "EMULATOR_HUAWEI_ADDRESS", default_value = "off", value_parser = parse_optional_address)]
    pub huawei_address: OptionalAddress,
    /// Directory holding volumes (sparse files) and state.json; state survives restarts.
    #[arg(long, env = "EMULATOR_STATE_DIR", default_value = "/var/tmp/cinder-evs-csi-emulator")]
    pub state_dir: PathBuf,
    /// Directory for the virtio-<id> links of volumes attached to this host
    /// (default <state-dir>/by-id).
    #[arg(long, env = "EMULATOR_BY_ID_DIR")]
    pub by_id_dir: Option<PathBuf>,
    /// Time each state transition takes (creating, attaching, extending, ...).
    #[arg(long, env = "EMULATOR_LATENCY", default_value = "500ms", value_parser = parse_duration)]
    pub latency: Duration,
    /// Seed of the fault-injection randomness.
    #[arg(long, env = "EMULATOR_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Server id of this host (what the metadata service reports); random and kept otherwise.
    #[arg(long, env = "EMULATOR_SERVER_ID")]
    pub server_id: Option<String>,
    /// Host name to put in catalog URLs (default: the listen address).
    #[arg(long, env = "EMULATOR_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// PEM certificate chain to serve the API listener over HTTPS with (with --tls-key).
    #[arg(long, env = "EMULATOR_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "EMULATOR_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// A listen address, or none (`off`).
#[cfg(feature = "emulator")]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalAddress(pub Option<SocketAddr>);

#[cfg(feature = "emulator")]
fn parse_optional_address(text: &str) -> Result<OptionalAddress, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(OptionalAddress(None));
    }
    text.parse().map(|a| OptionalAddress(Some(a))).map_err(|e| format!("{text:?}: {e}"))
}

/// Why the binary stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Logging could not be set up.
    #[error(transparent)]
    Logging(#[from] LoggingError),
    /// A required setting is missing or wrong.
    #[error("{0}")]
    Config(String),
    /// The metrics address could not be bound.
    #[error("binding metrics address {address}: {source}")]
    Metrics {
        /// The address asked for.
        address: SocketAddr,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The services could not be set up.
    #[error(transparent)]
    Wiring(#[from] crate::wiring::WiringError),
    /// The emulator could not start.
    #[cfg(feature = "emulator")]
    #[error(transparent)]
    Emulator(#[from] crate::emulator::EmulatorError),
    /// The sandbox failed.
    #[cfg(feature = "emulator")]
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    /// `drain-wait` failed or timed out.
    #[error(transparent)]
    Drain(#[from] crate::k8s::drain::DrainError),
    /// `gc` could not finish.
    #[error(transparent)]
    Gc(#[from] crate::k8s::gc::GcError),
}

fn parse_driver_name(name: &str) -> Result<String, String> {
    crate::csi::validate::driver_name(name).map(|()| name.to_string())
}

/// Parses a Go-style duration (`30s`, `1m30s`, `1h2m3.5s`, `500ms`) or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

/// Parses the command line, runs the chosen mode and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cinder-evs-csi: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "exiting");
            eprintln!("cinder-evs-csi: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one mode until SIGTERM/SIGINT.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let log = cli.command.log();
    logging::init(log.log_format, &log.log_level)?;
    tracing::info!(
        version = crate::VERSION,
        commit = crate::GIT_COMMIT,
        mode = cli.command.name(),
        "starting cinder-evs-csi"
    );

    let serve = match &cli.command {
        #[cfg(feature = "emulator")]
        Command::Emulator(mode) => return run_emulator(&mode.emulator).await,
        Command::DrainWait(mode) => return run_drain_wait(mode).await,
        Command::Gc(mode) => return run_gc(mode).await,
        Command::Import(mode) => return run_import(mode).await,
        Command::Controller(mode) => &mode.serve,
        Command::Node(mode) => &mode.serve,
        Command::All(mode) => &mode.serve,
        #[cfg(feature = "emulator")]
        Command::Sandbox(mode) => &mode.serve,
    };
    tracing::info!(driver = %serve.driver.driver_name, "serving");

    let metrics = Metrics::new();
    let _metrics_task = match serve.metrics_address {
        Some(address) => {
            let listener =
                metrics::bind(address).await.map_err(|source| CliError::Metrics { address, source })?;
            let local = listener.local_addr().map_or(address, |a| a);
            tracing::info!(address = %local, "serving /metrics and /healthz");
            let metrics = metrics.clone();
            Some(AbortOnDrop(tokio::spawn(async move {
                if let Err(e) = metrics::serve(listener, metrics).await {
                    tracing::error!(error = %e, "metrics server stopped");
                }
            })))
        }
        None => None,
    };

    let (controller, node) = match &cli.command {
        #[cfg(feature = "emulator")]
        Command::Sandbox(mode) => {
            let options = mode.sandbox.options(
                (serve.endpoint != default_endpoint()).then(|| serve.endpoint.clone()),
                mode.controller.options(None),
            );
            return crate::sandbox::run(&options, &serve.driver.driver_name, metrics)
                .await
                .map_err(CliError::from);
        }
        Command::Controller(mode) => (Some(mode.controller.options(mode.cloud.cloud_config.clone())), None),
        Command::Node(mode) => {
            if mode.cloud_config.is_some() {
                tracing::info!(
                    "--cloud-config is ignored by the node, which never reads the cloud configuration"
                );
            }
            (None, Some(mode.node.options()))
        }
        Command::All(mode) => {
            (Some(mode.controller.options(mode.cloud.cloud_config.clone())), Some(mode.node.options()))
        }
        _ => unreachable!("the other modes returned above"),
    };
    let services =
        crate::wiring::services(&serve.driver.driver_name, controller.as_ref(), node.as_ref(), metrics)
            .await?;
    server::serve(
        &serve.endpoint,
        services.routes.clone(),
        server::termination_signal(),
        serve.shutdown_timeout,
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

/// The endpoint served when `--endpoint` is not given.
#[cfg(feature = "emulator")]
fn default_endpoint() -> Endpoint {
    Endpoint::Unix(DEFAULT_SOCKET.into())
}

/// How long one Kubernetes API request may take in `drain-wait` and `gc`.
const KUBE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Prints the static PersistentVolume of an existing cloud volume.
async fn run_import(mode: &ImportMode) -> Result<(), CliError> {
    let metrics = Metrics::new();
    let mut settings = controller_defaults();
    settings.cloud = mode.cloud.clone();
    settings.create_timeout = mode.create_timeout;
    let driver_name = &mode.driver.driver_name;
    let controller = crate::wiring::controller(
        &settings.options(mode.cloud_config.cloud_config.clone()),
        driver_name,
        metrics.clone(),
        Observer::new(metrics),
    )?;
    let manifest = crate::import::run(controller.service.clouds(), driver_name, &mode.import)
        .await
        .map_err(|e| CliError::Config(format!("import: {e}")))?;
    print!("{manifest}");
    Ok(())
}

/// Runs the preStop wait for this node's attachments.
async fn run_drain_wait(mode: &DrainWaitMode) -> Result<(), CliError> {
    let node_name =
        mode.kube_node_name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            CliError::Config("drain-wait needs --kube-node-name (CSI_KUBE_NODE_NAME)".into())
        })?;
    let client = crate::k8s::client(mode.kubeconfig.as_deref(), KUBE_REQUEST_TIMEOUT)
        .await
        .map_err(crate::k8s::drain::DrainError::from)?;
    let settings = crate::k8s::drain::DrainSettings {
        node_name,
        driver_name: mode.driver.driver_name.clone(),
        timeout: mode.wait.timeout,
        interval: mode.wait.interval,
    };
    let outcome = crate::k8s::drain::wait(&client, &settings).await?;
    tracing::info!(?outcome, "drain-wait done");
    Ok(())
}

/// Runs the garbage collector against the chosen cloud and prints its table on stdout.
async fn run_gc(mode: &GcMode) -> Result<(), CliError> {
    let metrics = Metrics::new();
    let mut settings = controller_defaults();
    settings.cloud = mode.cloud.clone();
    settings.cluster_id = mode.cluster_id.clone();
    settings.attach_timeout = mode.attach_timeout;
    let controller = crate::wiring::controller(
        &settings.options(mode.cloud_config.cloud_config.clone()),
        &mode.driver.driver_name,
        metrics.clone(),
        Observer::new(metrics),
    )?;
    let client = crate::k8s::client(mode.kubeconfig.as_deref(), KUBE_REQUEST_TIMEOUT)
        .await
        .map_err(crate::k8s::gc::GcError::from)?;
    let settings = crate::k8s::gc::GcSettings {
        cluster_id: mode.cluster_id.clone(),
        driver_name: mode.driver.driver_name.clone(),
        delete: mode.gc.delete,
        detach_timeout: mode.attach_timeout,
    };
    let findings = crate::k8s::gc::run(&client, controller.default_backend.as_ref(), &settings).await?;
    print!("{}", crate::k8s::gc::table(&findings));
    let failed = findings.iter().filter(|f| matches!(f.action, crate::k8s::gc::Action::Failed(_))).count();
    if failed > 0 {
        return Err(CliError::Config(format!("{failed} removal(s) failed; see the table")));
    }
    Ok(())
}

/// Runs the cloud emulator until SIGTERM/SIGINT, after printing its endpoints and credentials.
#[cfg(feature = "emulator")]
async fn run_emulator(args: &EmulatorArgs) -> Result<(), CliError> {
    use crate::emulator::{EmulatorConfig, start};
    let mut config = EmulatorConfig {
        listen: args.listen,
        metadata_listen: args.metadata_address.0,
        huawei_listen: args.huawei_address.0,
        state_dir: args.state_dir.clone(),
        by_id_dir: args.by_id_dir.clone(),
        public_host: args.public_host.clone(),
        latency: args.latency,
        seed: args.seed,
        tls: args
            .tls_cert
            .clone()
            .zip(args.tls_key.clone())
            .map(|(cert, key)| crate::emulator::https::TlsFiles { cert, key }),
        ..EmulatorConfig::default()
    };
    if let Some(id) = &args.server_id {
        for server in config.servers.iter_mut().filter(|s| s.this_host) {
            server.id = Some(id.clone());
        }
    }
    let handle = start(config).await?;
    println!("{}", emulator_banner(&handle));
    server::termination_signal().await;
    handle.shutdown().await;
    tracing::info!("emulator stopped");
    Ok(())
}

/// What the emulator prints at start: endpoints and the credentials of its users.
#[cfg(feature = "emulator")]
fn emulator_banner(handle: &crate::emulator::EmulatorHandle) -> String {
    let mut lines = vec![
        "cinder-evs-csi emulator".to_string(),
        format!("  OS_AUTH_URL={}", handle.auth_url()),
        format!("  OS_REGION_NAME={}", handle.region()),
        format!("  volume   {}/volume/v3/<project_id>", handle.base_url()),
        format!("  compute  {}/compute/v2.1", handle.base_url()),
        format!("  evs      {}/v2/<project_id>  (also /v2.1, /v1/<project_id>/jobs)", handle.evs_url()),
        format!("  ecs      {}/v1/<project_id>", handle.ecs_url()),
        format!("  admin    {}/_emulator", handle.base_url()),
    ];
    for service in crate::emulator::services::Service::ALL {
        if let Some(url) = handle.service_url(service) {
            lines.push(format!("  {:<8} {url}  (own listener, API at the root)", service.name()));
        }
    }
    if let Some(url) = handle.metadata_url() {
        lines.push(format!("  metadata {url}/openstack/latest/meta_data.json"));
    }
    if let Some(id) = handle.this_host_server_id() {
        lines.push(format!("  this host's server id: {id}"));
    }
    for name in ["admin", "demo"] {
        if let Some(c) = handle.credentials(name) {
            lines.push(format!(
                "  user {} / password {} (domain {}), project {} ({})",
                c.username, c.password, c.user_domain_name, c.project_name, c.project_id
            ));
            if let Some((id, app_name, secret)) = &c.application_credential {
                lines.push(format!("    application credential {app_name}: id {id} secret {secret}"));
            }
            for (ak, sk) in handle.access_keys(name) {
                lines.push(format!("    Huawei AK/SK: HUAWEICLOUD_SDK_AK={ak} HUAWEICLOUD_SDK_SK={sk}"));
            }
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    fn parse(args: &[&str]) -> Command {
        let mut all = vec!["cinder-evs-csi"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
    }

    fn refused(args: &[&str]) -> String {
        let mut all = vec!["cinder-evs-csi"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).err().unwrap_or_else(|| panic!("{args:?} was accepted")).to_string()
    }

    #[test]
    fn flags_default_and_parse() {
        let Command::Node(mode) = parse(&["node", "--node-id", "srv-1"]) else { panic!("not node") };
        assert_eq!(mode.serve.endpoint, Endpoint::Unix("/csi/csi.sock".into()));
        assert_eq!(mode.serve.driver.driver_name, DEFAULT_DRIVER_NAME);
        assert_eq!(mode.serve.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(mode.node.node_id.as_deref(), Some("srv-1"));
    }

    #[test]
    fn tag_repair_runs_every_ten_minutes_unless_turned_off() {
        let Command::Controller(mode) = parse(&["controller"]) else { panic!("not controller") };
        assert_eq!(mode.controller.tag_repair_interval, Duration::from_secs(600));
        let Command::Controller(mode) = parse(&["controller", "--tag-repair-interval", "0"]) else {
            panic!()
        };
        assert_eq!(mode.controller.tag_repair_interval, Duration::ZERO);
    }

    #[test]
    fn every_duration_flag_takes_go_syntax() {
        let Command::Controller(mode) =
            parse(&["controller", "--create-timeout", "1m30s", "--attach-timeout", "1h2m3.5s"])
        else {
            panic!()
        };
        assert_eq!(mode.controller.create_timeout, Duration::from_secs(90));
        assert_eq!(mode.controller.attach_timeout, Duration::from_millis(3_723_500));
        let Command::Node(mode) =
            parse(&["node", "--device-wait-timeout", "300ms", "--shutdown-timeout", "1m5s"])
        else {
            panic!()
        };
        assert_eq!(mode.node.device_wait_timeout, Duration::from_millis(300));
        assert_eq!(mode.serve.shutdown_timeout, Duration::from_secs(65));
        let Command::DrainWait(mode) = parse(&["drain-wait", "--timeout", "4m30s"]) else { panic!() };
        assert_eq!(mode.wait.timeout, Duration::from_secs(270));
        #[cfg(feature = "emulator")]
        {
            let Command::Sandbox(mode) = parse(&["sandbox", "--latency", "1.5s"]) else { panic!() };
            assert_eq!(mode.sandbox.latency, Duration::from_millis(1500));
        }
    }

    #[test]
    #[cfg(feature = "emulator")]
    fn emulator_flags_default_and_parse() {
        let Command::Emulator(mode) = parse(&["emulator", "--metadata-address", "off", "--seed", "9"]) else {
            panic!("not the emulator mode")
        };
        let args = mode.emulator;
        assert_eq!(args.metadata_address, OptionalAddress(None));
        assert_eq!(args.seed, 9);
        assert_eq!(args.listen, "127.0.0.1:8780".parse().unwrap());
        assert_eq!(args.latency, Duration::from_millis(500));
    }

    #[test]
    fn drain_wait_and_gc_parse_with_safe_defaults() {
        let Command::DrainWait(mode) = parse(&["drain-wait", "--kube-node-name", "w1"]) else { panic!() };
        assert_eq!(mode.wait.timeout, Duration::from_secs(300));
        assert_eq!(mode.kube_node_name.as_deref(), Some("w1"));
        let Command::Gc(mode) = parse(&["gc", "--cluster-id", "c1"]) else { panic!() };
        assert_eq!(mode.gc, GcArgs { delete: false });
        assert_eq!(mode.cluster_id, "c1");
        assert_eq!(mode.attach_timeout, Duration::from_secs(180));
    }

    #[test]
    fn each_mode_refuses_the_flags_of_the_others() {
        for (args, flag) in [
            (&["gc", "--node-id", "x"][..], "--node-id"),
            (&["gc", "--endpoint", "unix:///x.sock"][..], "--endpoint"),
            (&["gc", "--tag-repair-interval", "1m"][..], "--tag-repair-interval"),
            (&["import", "--volume-id", "v", "--device-search-dirs", "/x"][..], "--device-search-dirs"),
            (&["drain-wait", "--cloud-config", "/c"][..], "--cloud-config"),
            (&["emulator", "--cluster-id", "c"][..], "--cluster-id"),
            (&["controller", "--node-id", "x"][..], "--node-id"),
            (&["node", "--cluster-id", "c"][..], "--cluster-id"),
        ] {
            let error = refused(args);
            assert!(error.contains(flag), "{args:?}: {error}");
        }
    }

    #[test]
    fn gc_help_is_short_and_names_only_what_gc_uses() {
        let mut command = Cli::command();
        let help = command.find_subcommand_mut("gc").unwrap().render_long_help().to_string();
        for flag in
            ["--cloud-config", "--cloud ", "--cluster-id", "--driver-name", "--kubeconfig", "--delete"]
        {
            assert!(help.contains(flag), "{flag} missing from gc --help:\n{help}");
        }
        for flag in
            ["--endpoint", "--node-id", "--device-search-dirs", "--tag-repair-interval", "--metrics-address"]
        {
            assert!(!help.contains(flag), "{flag} in gc --help:\n{help}");
        }
        let lines = help.lines().count();
        assert!(lines < 60, "gc --help is {lines} lines:\n{help}");
        assert!(!help.contains("read by the controller only"), "{help}");
    }

    #[test]
    fn the_node_accepts_and_ignores_a_cloud_config() {
        let Command::Node(mode) = parse(&["node", "--cloud-config", "/etc/cloud.conf"]) else { panic!() };
        assert_eq!(mode.cloud_config.as_deref(), Some(std::path::Path::new("/etc/cloud.conf")));
    }

    #[test]
    fn invalid_driver_name_is_refused_at_parse_time() {
        let err = refused(&["all", "--driver-name", "bad_name"]);
        assert!(err.contains("bad_name"), "{err}");
    }

    #[test]
    fn the_default_driver_name_differs_from_the_other_drivers() {
        assert_ne!(DEFAULT_DRIVER_NAME, "cinder.csi.openstack.org");
        assert_ne!(DEFAULT_DRIVER_NAME, "evs.csi.huaweicloud.com");
        assert_eq!(crate::csi::validate::driver_name(DEFAULT_DRIVER_NAME), Ok(()));
    }
}
