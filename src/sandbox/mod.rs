//! `cinder-evs-csi sandbox`: the emulator, the controller and the node in one process on one
//! socket, with this host as the emulator's server, so the whole driver runs on one machine.
//! On exit it removes every mount, attachment, snapshot, volume and loop device it made.

pub mod demo;
pub mod mounts;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tonic::service::RoutesBuilder;

use crate::cloud::Backend;
use crate::csi::identity::{IdentityService, service_capability};
use crate::csi::node::{NodeConfig, NodeService};
use crate::csi::observe::Observer;
use crate::csi::pb::controller_server::ControllerServer;
use crate::csi::pb::group_controller_server::GroupControllerServer;
use crate::csi::pb::identity_server::IdentityServer;
use crate::csi::pb::node_server::NodeServer;
use crate::csi::pb::plugin_capability::service::Type as ServiceType;
use crate::csi::readiness::Readiness;
use crate::emulator::{EmulatorConfig, EmulatorHandle};
use crate::host::device::DeviceFinder;
use crate::host::identity::NodeIdentity;
use crate::server::{self, Endpoint};
use crate::telemetry::metrics::Metrics;
use crate::wiring::ControllerArgs;

/// Flags of the `sandbox` mode.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct SandboxArgs {
    /// Where the emulator keeps its volumes and the node its mounts; a fresh directory that is
    /// removed at exit when unset.
    #[arg(long, env = "SANDBOX_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long each cloud state transition takes (creating, attaching, ...).
    #[arg(long, env = "SANDBOX_LATENCY", default_value = "200ms", value_parser = crate::cli::parse_duration)]
    pub latency: Duration,

    /// Walk one volume through the life of a PVC, print each step, clean up and exit.
    #[arg(long)]
    pub demo: bool,

    /// Quota limits of the sandbox's project, as NAME=LIMIT (-1: unlimited), comma separated.
    /// Generous by default, so that a conformance run that leaks a few volumes keeps going;
    /// names left out keep these defaults (the plain `emulator` keeps Cinder's own).
    #[arg(
        long,
        env = "SANDBOX_QUOTA",
        value_delimiter = ',',
        value_parser = parse_quota,
        default_value = "volumes=1000,snapshots=1000,gigabytes=100000,backups=1000,backup_gigabytes=100000,groups=1000"
    )]
    pub quota: Vec<(String, i64)>,
}

/// The quota resources the emulator knows.
const QUOTA_NAMES: &[&str] =
    &["volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups", "per_volume_gigabytes"];

fn parse_quota(text: &str) -> Result<(String, i64), String> {
    let (name, limit) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=LIMIT"))?;
    let name = name.trim();
    if !QUOTA_NAMES.contains(&name) {
        return Err(format!("unknown quota {name:?}; one of {}", QUOTA_NAMES.join(", ")));
    }
    let limit: i64 = limit.trim().parse().map_err(|_| format!("quota {name}: {limit:?} is not a number"))?;
    if limit < -1 {
        return Err(format!("quota {name}: {limit} is below -1 (unlimited)"));
    }
    Ok((name.to_string(), limit))
}

/// The sandbox's quota limits: its generous defaults, overridden by what `--quota` names.
pub fn quotas(args: &SandboxArgs) -> std::collections::BTreeMap<String, i64> {
    let mut out: std::collections::BTreeMap<String, i64> = [
        ("volumes", 1000),
        ("snapshots", 1000),
        ("gigabytes", 100_000),
        ("backups", 1000),
        ("backup_gigabytes", 100_000),
        ("groups", 1000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    out.extend(args.quota.iter().cloned());
    out
}

/// Why the sandbox failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The emulator did not start.
    #[error(transparent)]
    Emulator(#[from] crate::emulator::EmulatorError),
    /// The controller could not be built.
    #[error(transparent)]
    Wiring(#[from] crate::wiring::WiringError),
    /// The gRPC server failed.
    #[error(transparent)]
    Serve(#[from] server::ServeError),
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The demo found something wrong.
    #[error("demo failed: {0}")]
    Demo(String),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SandboxError {
    let path = path.to_path_buf();
    move |source| SandboxError::Io { action, path, source }
}

/// True when this process may set up loop devices and mount.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs the sandbox until SIGTERM/SIGINT (or to the end of the demo), then cleans up.
pub async fn run(
    endpoint: &Endpoint,
    driver_name: &str,
    controller_args: &ControllerArgs,
    args: &SandboxArgs,
    metrics: Arc<Metrics>,
) -> Result<(), SandboxError> {
    let (state_dir, temporary) = match &args.state_dir {
        Some(dir) => (dir.clone(), false),
        None => (std::env::temp_dir().join(format!("cinder-evs-csi-sandbox-{}", std::process::id())), true),
    };
    std::fs::create_dir_all(&state_dir).map_err(io("creating", &state_dir))?;
    let root = is_root();
    let mut emulator_config = EmulatorConfig::in_dir(state_dir.join("cloud"));
    emulator_config.metadata_listen = None;
    emulator_config.latency = args.latency;
    emulator_config.loop_devices = root;
    emulator_config.release_loops_on_shutdown = true;
    emulator_config.default_quotas = quotas(args);
    let by_id_dir = emulator_config.by_id_dir();
    let emulator = crate::emulator::start(emulator_config).await?;

    let result =
        serve(&emulator, &state_dir, &by_id_dir, endpoint, driver_name, controller_args, args, metrics).await;

    emulator.shutdown().await;
    if temporary && let Err(e) = std::fs::remove_dir_all(&state_dir) {
        tracing::warn!(dir = %state_dir.display(), error = %e, "could not remove the sandbox directory");
    }
    result
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    emulator: &EmulatorHandle,
    state_dir: &Path,
    by_id_dir: &Path,
    endpoint: &Endpoint,
    driver_name: &str,
    controller_args: &ControllerArgs,
    args: &SandboxArgs,
    metrics: Arc<Metrics>,
) -> Result<(), SandboxError> {
    let creds = emulator.demo();
    let clouds_yaml = state_dir.join("clouds.yaml");
    let yaml = format!(
        "clouds:\n  sandbox:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      user_domain_name: {}\n      project_name: {}\n      project_domain_name: {}\n    region_name: {}\n",
        creds.auth_url,
        creds.username,
        creds.password,
        creds.user_domain_name,
        creds.project_name,
        creds.project_domain_name,
        creds.region
    );
    write_private(&clouds_yaml, &yaml)?;

    let observer = Observer::new(metrics.clone());
    let controller = crate::wiring::controller(
        controller_args,
        Some(clouds_yaml.clone()),
        driver_name,
        metrics,
        observer.clone(),
    )?;
    let backend = controller.default_backend.clone();
    let readiness = Readiness::new();
    let probe = crate::wiring::open_when_cloud_answers(backend.clone(), readiness.gate("cloud backend"));

    let node_id = emulator.this_host_server_id().unwrap_or_else(|| "sandbox-node".into());
    let zone = emulator.cloud().config().availability_zones.first().cloned();
    let node = NodeConfig {
        driver_name: driver_name.to_string(),
        identity: NodeIdentity { node_id: node_id.clone(), zone },
        max_volumes_per_node: 25,
        finder: DeviceFinder {
            search_dirs: vec![by_id_dir.to_path_buf()],
            sys_root: "/sys".into(),
            wait: Duration::from_secs(30),
        },
    };
    let capabilities = vec![
        service_capability(ServiceType::ControllerService),
        service_capability(ServiceType::VolumeAccessibilityConstraints),
        service_capability(ServiceType::GroupControllerService),
    ];
    let mut routes = RoutesBuilder::default();
    routes.add_service(ControllerServer::from_arc(controller.service.clone()));
    routes.add_service(GroupControllerServer::from_arc(controller.service));
    routes.add_service(NodeServer::new(NodeService::new(node, observer.clone())));
    routes.add_service(IdentityServer::new(IdentityService::new(
        driver_name.to_string(),
        capabilities,
        readiness,
        observer,
    )));

    let endpoint = match endpoint {
        Endpoint::Unix(path) if path == Path::new(crate::cli::DEFAULT_SOCKET) => {
            Endpoint::Unix(state_dir.join("csi.sock"))
        }
        other => other.clone(),
    };
    let client = write_client_files(state_dir)?;
    println!("{}", banner(&endpoint, &creds.auth_url, &clouds_yaml, &client, &node_id, state_dir));
    if !is_root() {
        println!("  note           not root: volumes attach in the cloud only; no loop devices, no mounts");
    }

    let outcome = if args.demo {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            tokio::select! {
                () = server::termination_signal() => {}
                _ = stopped => {}
            }
        };
        let serving = server::serve(&endpoint, routes.routes(), shutdown, Duration::from_secs(10));
        let work = state_dir.join("kubelet");
        let demo = async {
            let result = demo::run(&endpoint, &node_id, &work).await;
            let _ = stop.send(());
            result
        };
        let (served, demo) = tokio::join!(serving, demo);
        served.map_err(SandboxError::from).and(demo)
    } else {
        server::serve(&endpoint, routes.routes(), server::termination_signal(), Duration::from_secs(10))
            .await
            .map_err(SandboxError::from)
    };
    probe.abort();
    println!("cleaning up");
    clean_up(backend.as_ref(), state_dir).await;
    outcome
}

/// The CSI proto and a small Python client, written next to the socket so that the banner's
/// example call works from any directory.
const CSI_PROTO: &str = include_str!("../../proto/csi.proto");
const CSI_CALL_PY: &str = include_str!("csi_call.py");

/// Writes csi.proto and csi_call.py into the state directory; returns the script's path.
fn write_client_files(state_dir: &Path) -> Result<PathBuf, SandboxError> {
    let proto = state_dir.join("csi.proto");
    std::fs::write(&proto, CSI_PROTO).map_err(io("writing", &proto))?;
    let script = state_dir.join("csi_call.py");
    std::fs::write(&script, CSI_CALL_PY).map_err(io("writing", &script))?;
    Ok(script)
}

/// What the sandbox prints at start: where everything is and two calls that work as printed.
/// The password stays in clouds.yaml (mode 0600); the banner names the file, not the secret.
pub fn banner(
    endpoint: &Endpoint,
    auth_url: &str,
    clouds_yaml: &Path,
    client: &Path,
    node_id: &str,
    state_dir: &Path,
) -> String {
    let grpcurl_target = match endpoint {
        Endpoint::Unix(path) => format!("-unix {}", path.display()),
        other => other.to_string().trim_start_matches("tcp://").to_string(),
    };
    [
        "cinder-evs-csi sandbox".to_string(),
        format!("  CSI endpoint   {endpoint}   (Identity, Controller, Node)"),
        format!("  cloud          {auth_url}"),
        format!("  clouds.yaml    {}   (cloud \"sandbox\"; user, project and password are in it, mode 0600)", clouds_yaml.display()),
        format!("  this node      {node_id}"),
        format!("  state          {}", state_dir.display()),
        "  call the driver (pip install grpcio grpcio-tools):".to_string(),
        format!("    python3 {} {endpoint} Identity GetPluginInfo", client.display()),
        format!(
            "    python3 {} {endpoint} Controller CreateVolume '{{\"name\": \"pvc-1\", \"capacityRange\": {{\"requiredBytes\": 1073741824}}, \"volumeCapabilities\": [{{\"mount\": {{}}, \"accessMode\": {{\"mode\": \"SINGLE_NODE_WRITER\"}}}}]}}'",
            client.display()
        ),
        "  or with grpcurl:".to_string(),
        format!(
            "    grpcurl -plaintext -authority localhost -import-path {} -proto csi.proto {grpcurl_target} csi.v1.Identity/GetPluginInfo",
            state_dir.display()
        ),
        "  call the cloud (pip install python-openstackclient):".to_string(),
        format!("    OS_CLIENT_CONFIG_FILE={} openstack --os-cloud sandbox volume list", clouds_yaml.display()),
    ]
    .join("\n")
}

fn write_private(path: &Path, text: &str) -> Result<(), SandboxError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io("writing", path))?;
    file.write_all(text.as_bytes()).map_err(io("writing", path))
}

/// Removes what the sandbox made: mounts under its directory and every mount of its volumes
/// elsewhere, then attachments, snapshots and volumes in the cloud (the emulator's shutdown then releases the loop devices).
pub async fn clean_up(backend: &dyn Backend, state_dir: &Path) {
    if let Ok(mounts) = crate::host::mount::mounts() {
        // The kernel reports backing files by their real path.
        let state_dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        for point in mounts::ours(&mounts, &state_dir, crate::emulator::loopdev::backing_file) {
            if let Err(e) = crate::host::mount::unmount(&point) {
                tracing::warn!(path = %point.display(), error = %e, "could not unmount");
            }
        }
    }
    let wait = Duration::from_secs(60);
    let mut volumes = Vec::new();
    let mut marker = None;
    loop {
        match backend.list_volumes(Some(500), marker.as_deref()).await {
            Ok(page) => {
                volumes.extend(page.items);
                match page.next {
                    Some(next) => marker = Some(next),
                    None => break,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not list volumes to clean up");
                break;
            }
        }
    }
    use crate::cloud::backend::issued_id;
    // The emulator issues UUIDs; anything else is not one of its volumes to clean.
    let volumes: Vec<(crate::contract::CloudId, _)> =
        volumes.into_iter().filter_map(|v| issued_id(&v.id).ok().map(|id| (id, v))).collect();
    for (id, volume) in &volumes {
        for attachment in &volume.attachments {
            let Ok(server) = issued_id(&attachment.server_id) else { continue };
            if let Err(e) = backend.detach(id, &server, wait).await {
                tracing::warn!(volume = %volume.id, error = %e, "could not detach");
            }
        }
    }
    if let Ok(page) = backend.list_snapshots(None, None, None).await {
        for snapshot in page.items.iter().filter_map(|s| issued_id(&s.id).ok()) {
            for _ in 0..100 {
                match backend.delete_snapshot(&snapshot).await {
                    Ok(()) => break,
                    // A snapshot still being taken cannot be deleted yet.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        }
    }
    for (id, _) in &volumes {
        for _ in 0..100 {
            match backend.delete_volume(id).await {
                Ok(()) => break,
                // Snapshots are still being deleted.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let _ = backend.wait_volume_deleted(id, wait).await;
    }
}
