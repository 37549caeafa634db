//! `cinder-evs-csi sandbox`: the emulator, the controller and the node in one process on one
//! socket, with this host as the emulator's server, so the whole driver runs on one machine.
//! On exit it removes every mount, attachment, snapshot, volume and loop device it made.

pub mod demo;
pub mod mounts;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cloud::Backend;
use crate::emulator::{EmulatorConfig, EmulatorHandle};
use crate::host::device::DeviceFinder;
use crate::node_identity::IdentityConfig;
use crate::server::{self, Endpoint};
use crate::telemetry::metrics::Metrics;
use crate::wiring::{ControllerOptions, NodeOptions};

/// What the sandbox is built from.
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    /// Where the emulator keeps its volumes and the node its mounts; a fresh directory that is
    /// removed at exit when unset.
    pub state_dir: Option<PathBuf>,
    /// How long each cloud state transition takes.
    pub latency: Duration,
    /// Walk one volume through the life of a PVC, print each step, clean up and exit.
    pub demo: bool,
    /// Quota limits of the sandbox's project.
    pub quotas: BTreeMap<String, i64>,
    /// The CSI endpoint; a socket in the state directory when unset.
    pub endpoint: Option<Endpoint>,
    /// The controller's settings (the cloud configuration is the sandbox's own clouds.yaml).
    pub controller: ControllerOptions,
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

/// The volume limit the sandbox's node reports, whatever bus this host boots from.
const SANDBOX_MAX_VOLUMES: i64 = 25;

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
    args: &SandboxOptions,
    driver_name: &str,
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
    emulator_config.default_quotas = args.quotas.clone();
    let by_id_dir = emulator_config.by_id_dir();
    let emulator = crate::emulator::start(emulator_config).await?;

    let result = serve(&emulator, &state_dir, &by_id_dir, driver_name, args, metrics).await;

    emulator.shutdown().await;
    if temporary && let Err(e) = std::fs::remove_dir_all(&state_dir) {
        tracing::warn!(dir = %state_dir.display(), error = %e, "could not remove the sandbox directory");
    }
    result
}

async fn serve(
    emulator: &EmulatorHandle,
    state_dir: &Path,
    by_id_dir: &Path,
    driver_name: &str,
    args: &SandboxOptions,
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

    // The emulator is the cloud and this host its server: the node's identity is the
    // emulator's answer, its devices the emulator's links; the rest is the root's as for `all`.
    let node_id = emulator.this_host_server_id().unwrap_or_else(|| "sandbox-node".into());
    let node = NodeOptions {
        identity: IdentityConfig {
            node_id: Some(node_id.clone()),
            zone: emulator.cloud().config().availability_zones.first().cloned(),
            ..IdentityConfig::default()
        },
        max_volumes_per_node: Some(SANDBOX_MAX_VOLUMES),
        finder: DeviceFinder {
            search_dirs: vec![by_id_dir.to_path_buf()],
            sys_root: "/sys".into(),
            wait: Duration::from_secs(30),
        },
    };
    let controller = ControllerOptions { cloud_config: Some(clouds_yaml.clone()), ..args.controller.clone() };
    let services = crate::wiring::services(driver_name, Some(&controller), Some(&node), metrics).await?;
    let backend = services.backend.clone().expect("the controller side was asked for");

    let endpoint = args.endpoint.clone().unwrap_or_else(|| Endpoint::Unix(state_dir.join("csi.sock")));
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
        let serving = server::serve(&endpoint, services.routes.clone(), shutdown, Duration::from_secs(10));
        let work = state_dir.join("kubelet");
        let demo = async {
            let result = demo::run(&endpoint, &node_id, &work).await;
            let _ = stop.send(());
            result
        };
        let (served, demo) = tokio::join!(serving, demo);
        served.map_err(SandboxError::from).and(demo)
    } else {
        server::serve(
            &endpoint,
            services.routes.clone(),
            server::termination_signal(),
            Duration::from_secs(10),
        )
        .await
        .map_err(SandboxError::from)
    };
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
