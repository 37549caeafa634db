//! The command line: flags (each also read from an environment variable), the modes, and the
//! wiring of services for each mode.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tonic::service::RoutesBuilder;

use std::sync::Arc;

use crate::csi::identity::{IdentityService, service_capability};
use crate::csi::node::{NodeConfig, NodeService};
use crate::csi::observe::Observer;
use crate::csi::pb::controller_server::ControllerServer;
use crate::csi::pb::group_controller_server::GroupControllerServer;
use crate::csi::pb::identity_server::IdentityServer;
use crate::csi::pb::node_server::NodeServer;
use crate::csi::pb::plugin_capability::service::Type as ServiceType;
use crate::csi::readiness::Readiness;
use crate::host::device::{self, DeviceFinder};
use crate::host::identity::{self, IdentityConfig};
use crate::host::metadata;
use crate::server::{self, Endpoint, ServeError};
use crate::telemetry::logging::{self, LogFormat, LoggingError};
use crate::telemetry::metrics::{self, Metrics};

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
    /// Settings every mode shares.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Settings of the node service.
    #[command(flatten)]
    pub node: NodeArgs,
    /// The mode to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every mode; each may also come from the environment variable shown.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// gRPC endpoint to serve: unix:///path/to.sock or tcp://host:port.
    #[arg(long, global = true, env = "CSI_ENDPOINT", default_value = concat!("unix://", "/csi/csi.sock"))]
    pub endpoint: Endpoint,

    /// CSI driver name reported to Kubernetes (domain notation, at most 63 characters).
    #[arg(long, global = true, env = "CSI_DRIVER_NAME", default_value = DEFAULT_DRIVER_NAME, value_parser = parse_driver_name)]
    pub driver_name: String,

    /// Cloud configuration file (clouds.yaml or cloud.conf); read by the controller only.
    #[arg(long, global = true, env = "CSI_CLOUD_CONFIG")]
    pub cloud_config: Option<PathBuf>,

    /// This node's id, the cloud server id of this host (node mode).
    #[arg(long, global = true, env = "CSI_NODE_ID")]
    pub node_id: Option<String>,

    /// Log line format.
    #[arg(long, global = true, env = "CSI_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log level or filter directives, e.g. `info` or `info,cinder_evs_csi=debug`.
    #[arg(long, global = true, env = "CSI_LOG_LEVEL", default_value = "info")]
    pub log_level: String,

    /// Address for Prometheus `/metrics` and `/healthz`, e.g. 0.0.0.0:9808; off when unset.
    #[arg(long, global = true, env = "CSI_METRICS_ADDRESS")]
    pub metrics_address: Option<SocketAddr>,

    /// Controller settings.
    #[command(flatten)]
    pub controller: crate::wiring::ControllerArgs,

    /// How long in-flight RPCs may run after SIGTERM/SIGINT before the process exits
    /// (e.g. 30s, 500ms, 2m).
    #[arg(long, global = true, env = "CSI_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

/// Flags of the node service; each may also come from the environment variable shown.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Where to look up this node's id when --node-id is not given, in order (comma separated:
    /// config-drive, metadata, kubernetes).
    #[arg(
        long,
        global = true,
        env = "CSI_NODE_ID_SOURCES",
        value_delimiter = ',',
        default_value = "config-drive,metadata"
    )]
    pub node_id_sources: Vec<identity::Source>,

    /// URL of the OpenStack metadata document (meta_data.json).
    #[arg(long, global = true, env = "CSI_METADATA_URL", default_value = metadata::DEFAULT_METADATA_URL)]
    pub metadata_url: String,

    /// This host's Kubernetes Node name, for the `kubernetes` id source (set it from the
    /// downward API: spec.nodeName).
    #[arg(long, global = true, env = "CSI_KUBE_NODE_NAME")]
    pub kube_node_name: Option<String>,

    /// Kubeconfig for the `kubernetes` id source; the in-cluster service account when unset.
    #[arg(long, global = true, env = "CSI_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// This node's availability zone; overrides the zone the metadata reports.
    #[arg(long, global = true, env = "CSI_ZONE")]
    pub zone: Option<String>,

    /// Volumes this node can take, reported to the scheduler (default: 25 on virtio-blk
    /// servers, 59 on SCSI servers).
    #[arg(long, global = true, env = "CSI_MAX_VOLUMES_PER_NODE", value_parser = clap::value_parser!(i64).range(1..))]
    pub max_volumes_per_node: Option<i64>,

    /// Directories of by-id device links to search for a volume's device (comma separated).
    #[arg(long, global = true, env = "CSI_DEVICE_SEARCH_DIRS", value_delimiter = ',', default_value = device::DEFAULT_SEARCH_DIR)]
    pub device_search_dirs: Vec<PathBuf>,

    /// How long staging waits for an attached volume's device to appear (e.g. 30s).
    #[arg(long, global = true, env = "CSI_DEVICE_WAIT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub device_wait_timeout: Duration,
}

/// The modes of the binary.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve Identity and Controller (one or more replicas per cluster, with the sidecars).
    Controller,
    /// Serve Identity and Node (one per host, with node-driver-registrar).
    Node,
    /// Serve Identity, Controller and Node in one process.
    All,
    /// Run the embedded cloud emulator (Keystone, Cinder, Nova, metadata) on this machine.
    Emulator(EmulatorArgs),
    /// Run the emulator, the controller and the node in one process on one socket, with this
    /// host as the cloud's server (`--demo`: walk one volume through its life and exit).
    Sandbox(crate::sandbox::SandboxArgs),
    /// Adopt an existing cloud volume (or backend storage, with --source-name/--host) as a
    /// static PersistentVolume and print its manifest.
    Import(crate::import::ImportArgs),
    /// The node plugin's preStop hook: while this Node is cordoned, wait until no
    /// VolumeAttachment of this driver names it (needs --kube-node-name).
    DrainWait(DrainWaitArgs),
    /// List the cloud volumes, snapshots and attachments of this --cluster-id that no
    /// Kubernetes object references any more; remove them with --delete.
    Gc(GcArgs),
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
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct EmulatorArgs {
    /// Address of the API listener (Keystone, Cinder, Nova, /_emulator).
    #[arg(long, env = "EMULATOR_LISTEN", default_value = "127.0.0.1:8780")]
    pub listen: SocketAddr,
    /// Address of the instance metadata service; `off` to serve none.
    #[arg(long, env = "EMULATOR_METADATA_ADDRESS", default_value = "127.0.0.1:8781", value_parser = parse_optional_address)]
    pub metadata_address: OptionalAddress,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptionalAddress(pub Option<SocketAddr>);

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
    /// The controller could not be set up.
    #[error(transparent)]
    Controller(#[from] crate::wiring::WiringError),
    /// The emulator could not start.
    #[error(transparent)]
    Emulator(#[from] crate::emulator::EmulatorError),
    /// The sandbox failed.
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

/// Parses `30s`, `500ms`, `2m`, `1h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 30s or 500ms"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?} has unknown unit {unit:?}; use ms, s, m or h")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
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
    let common = &cli.common;
    logging::init(common.log_format, &common.log_level)?;
    tracing::info!(
        version = crate::VERSION,
        commit = crate::GIT_COMMIT,
        mode = ?cli.command,
        driver = %common.driver_name,
        "starting cinder-evs-csi"
    );

    match &cli.command {
        Command::Emulator(args) => return run_emulator(args).await,
        Command::DrainWait(args) => return run_drain_wait(&cli, args).await,
        Command::Gc(args) => return run_gc(&cli, args).await,
        _ => {}
    }

    let metrics = Metrics::new();
    let _metrics_task = match common.metrics_address {
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

    if let Command::Import(args) = &cli.command {
        let controller = crate::wiring::controller(
            &common.controller,
            common.cloud_config.clone(),
            &common.driver_name,
            metrics.clone(),
            Observer::new(metrics),
        )?;
        let manifest = crate::import::run(controller.service.clouds(), &common.driver_name, args)
            .await
            .map_err(|e| CliError::Config(format!("import: {e}")))?;
        print!("{manifest}");
        return Ok(());
    }

    if let Command::Sandbox(args) = &cli.command {
        return crate::sandbox::run(&common.endpoint, &common.driver_name, &common.controller, args, metrics)
            .await
            .map_err(CliError::from);
    }

    let (routes, _keep_alive) = routes(&cli, metrics).await?;
    server::serve(&common.endpoint, routes, server::termination_signal(), common.shutdown_timeout).await?;
    tracing::info!("stopped");
    Ok(())
}

/// What must live as long as the server: the config watch and the background tasks (readiness
/// probe, tag repair).
type KeepAlive = (Option<crate::config::watch::ConfigWatch>, Vec<AbortOnDrop>);

/// How long one Kubernetes API request may take in `drain-wait` and `gc`.
const KUBE_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs the preStop wait for this node's attachments.
async fn run_drain_wait(cli: &Cli, args: &DrainWaitArgs) -> Result<(), CliError> {
    let node_name =
        cli.node.kube_node_name.clone().filter(|n| !n.is_empty()).ok_or_else(|| {
            CliError::Config("drain-wait needs --kube-node-name (CSI_KUBE_NODE_NAME)".into())
        })?;
    let client = crate::k8s::client(cli.node.kubeconfig.as_deref(), KUBE_REQUEST_TIMEOUT)
        .await
        .map_err(crate::k8s::drain::DrainError::from)?;
    let settings = crate::k8s::drain::DrainSettings {
        node_name,
        driver_name: cli.common.driver_name.clone(),
        timeout: args.timeout,
        interval: args.interval,
    };
    let outcome = crate::k8s::drain::wait(&client, &settings).await?;
    tracing::info!(?outcome, "drain-wait done");
    Ok(())
}

/// Runs the garbage collector against the default cloud and prints its table on stdout.
async fn run_gc(cli: &Cli, args: &GcArgs) -> Result<(), CliError> {
    let common = &cli.common;
    let metrics = Metrics::new();
    let controller = crate::wiring::controller(
        &common.controller,
        common.cloud_config.clone(),
        &common.driver_name,
        metrics.clone(),
        Observer::new(metrics),
    )?;
    let client = crate::k8s::client(cli.node.kubeconfig.as_deref(), KUBE_REQUEST_TIMEOUT)
        .await
        .map_err(crate::k8s::gc::GcError::from)?;
    let settings = crate::k8s::gc::GcSettings {
        cluster_id: common.controller.cluster_id.clone(),
        driver_name: common.driver_name.clone(),
        delete: args.delete,
        detach_timeout: common.controller.attach_timeout,
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
async fn run_emulator(args: &EmulatorArgs) -> Result<(), CliError> {
    use crate::emulator::{EmulatorConfig, start};
    let mut config = EmulatorConfig {
        listen: args.listen,
        metadata_listen: args.metadata_address.0,
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

/// The gRPC services of the chosen mode.
async fn routes(cli: &Cli, metrics: Arc<Metrics>) -> Result<(tonic::service::Routes, KeepAlive), CliError> {
    let common = &cli.common;
    let observer = Observer::new(metrics.clone());
    let readiness = Readiness::new();
    let mut routes = RoutesBuilder::default();
    let mut capabilities = Vec::new();
    let mut keep_alive: KeepAlive = (None, Vec::new());
    if matches!(cli.command, Command::Controller | Command::All) {
        let controller = crate::wiring::controller(
            &common.controller,
            common.cloud_config.clone(),
            &common.driver_name,
            metrics.clone(),
            observer.clone(),
        )?;
        let gate = readiness.gate("cloud backend");
        keep_alive.1.push(AbortOnDrop(crate::wiring::open_when_cloud_answers(
            controller.default_backend.clone(),
            gate,
        )));
        let repair = crate::wiring::repair_tags_every(
            controller.backends,
            common.controller.tag_repair_interval,
            metrics,
        );
        keep_alive.1.extend(repair.map(AbortOnDrop));
        keep_alive.0 = Some(controller.config);
        routes.add_service(ControllerServer::from_arc(controller.service.clone()));
        routes.add_service(GroupControllerServer::from_arc(controller.service));
        capabilities.push(service_capability(ServiceType::ControllerService));
        capabilities.push(service_capability(ServiceType::VolumeAccessibilityConstraints));
        capabilities.push(service_capability(ServiceType::GroupControllerService));
    }
    if matches!(cli.command, Command::Node | Command::All) {
        let config = node_config(cli).await?;
        tracing::info!(
            node_id = %config.identity.node_id,
            zone = ?config.identity.zone,
            max_volumes = config.max_volumes_per_node,
            "node identity"
        );
        routes.add_service(NodeServer::new(NodeService::new(config, observer.clone())));
    }
    let identity = IdentityService::new(common.driver_name.clone(), capabilities, readiness, observer);
    routes.add_service(IdentityServer::new(identity));
    Ok((routes.routes(), keep_alive))
}

/// The node service's configuration: its identity (from --node-id or the configured sources)
/// and how it finds devices. Never reads the cloud config.
async fn node_config(cli: &Cli) -> Result<NodeConfig, CliError> {
    let node = &cli.node;
    let sys_root = PathBuf::from("/sys");
    let identity_config = IdentityConfig {
        node_id: cli.common.node_id.clone(),
        zone: node.zone.clone(),
        sources: node.node_id_sources.clone(),
        metadata_url: node.metadata_url.clone(),
        kube_node_name: node.kube_node_name.clone(),
        kubeconfig: node.kubeconfig.clone(),
        ..IdentityConfig::default()
    };
    let identity = identity::resolve(&identity_config).await.map_err(|e| CliError::Config(e.to_string()))?;
    Ok(NodeConfig {
        driver_name: cli.common.driver_name.clone(),
        identity,
        max_volumes_per_node: node
            .max_volumes_per_node
            .unwrap_or_else(|| identity::default_max_volumes(&sys_root)),
        finder: DeviceFinder {
            search_dirs: node.device_search_dirs.clone(),
            sys_root,
            wait: node.device_wait_timeout,
        },
    })
}

/// Aborts a background task when the owner goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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

    #[test]
    fn flags_default_and_parse() {
        let cli = Cli::try_parse_from(["cinder-evs-csi", "node", "--node-id", "srv-1"]).unwrap();
        assert_eq!(cli.command, Command::Node);
        assert_eq!(cli.common.endpoint, Endpoint::Unix("/csi/csi.sock".into()));
        assert_eq!(cli.common.driver_name, DEFAULT_DRIVER_NAME);
        assert_eq!(cli.common.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(cli.common.node_id.as_deref(), Some("srv-1"));
    }

    #[test]
    fn tag_repair_runs_every_ten_minutes_unless_turned_off() {
        let cli = Cli::try_parse_from(["cinder-evs-csi", "controller"]).unwrap();
        assert_eq!(cli.common.controller.tag_repair_interval, Duration::from_secs(600));
        let cli =
            Cli::try_parse_from(["cinder-evs-csi", "controller", "--tag-repair-interval", "0"]).unwrap();
        assert_eq!(cli.common.controller.tag_repair_interval, Duration::ZERO);
    }

    #[test]
    fn emulator_flags_default_and_parse() {
        let cli =
            Cli::try_parse_from(["cinder-evs-csi", "emulator", "--metadata-address", "off", "--seed", "9"])
                .unwrap();
        let Command::Emulator(args) = cli.command else { panic!("not the emulator mode") };
        assert_eq!(args.metadata_address, OptionalAddress(None));
        assert_eq!(args.seed, 9);
        assert_eq!(args.listen, "127.0.0.1:8780".parse().unwrap());
        assert_eq!(args.latency, Duration::from_millis(500));
    }

    #[test]
    fn drain_wait_and_gc_parse_with_safe_defaults() {
        let cli = Cli::try_parse_from(["cinder-evs-csi", "drain-wait", "--kube-node-name", "w1"]).unwrap();
        let Command::DrainWait(args) = cli.command else { panic!("not drain-wait") };
        assert_eq!(args.timeout, Duration::from_secs(300));
        assert_eq!(cli.node.kube_node_name.as_deref(), Some("w1"));
        let cli = Cli::try_parse_from(["cinder-evs-csi", "gc", "--cluster-id", "c1"]).unwrap();
        assert_eq!(cli.command, Command::Gc(GcArgs { delete: false }));
        assert_eq!(cli.common.controller.cluster_id, "c1");
    }

    #[test]
    fn invalid_driver_name_is_refused_at_parse_time() {
        let err = Cli::try_parse_from(["cinder-evs-csi", "--driver-name", "bad_name", "all"]).unwrap_err();
        assert!(err.to_string().contains("bad_name"), "{err}");
    }

    #[test]
    fn the_default_driver_name_differs_from_the_other_drivers() {
        assert_ne!(DEFAULT_DRIVER_NAME, "cinder.csi.openstack.org");
        assert_ne!(DEFAULT_DRIVER_NAME, "evs.csi.huaweicloud.com");
        assert_eq!(crate::csi::validate::driver_name(DEFAULT_DRIVER_NAME), Ok(()));
    }
}
