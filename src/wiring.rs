//! Builds the controller side from its settings: configuration watch, one backend per cloud,
//! the Controller service, and the readiness gate that opens once the cloud has answered.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use crate::cloud::Backend;
use crate::cloud::http::{HttpClient, HttpSettings};
use crate::cloud::huawei::HuaweiBackend;
use crate::cloud::huawei::auth::Client as HuaweiClient;
use crate::cloud::openstack::OpenStackBackend;
use crate::cloud::openstack::keystone::Session;
use crate::cloud::retry::Backoff;
use crate::cloud::types::Owner;
use crate::cloud::wait::{Estimates, WaitSettings};
use crate::config::watch::ConfigWatch;
use crate::config::{CloudKind, ConfigSource};
use crate::csi::controller::{Clouds, ControllerService, ControllerSettings, META_CLUSTER_ID};
use crate::csi::observe::Observer;
use crate::csi::readiness::Gate;
use crate::telemetry::metrics::Metrics;

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
    #[arg(long, global = true, env = "CSI_CREATE_TIMEOUT", default_value = "5m", value_parser = crate::cli::parse_duration)]
    pub create_timeout: Duration,

    /// How long ControllerPublish/Unpublish wait for an attach or detach.
    #[arg(long, global = true, env = "CSI_ATTACH_TIMEOUT", default_value = "3m", value_parser = crate::cli::parse_duration)]
    pub attach_timeout: Duration,

    /// How long a delete, expand or publish waits for a transition it cannot act in (a
    /// snapshot still creating, a volume still extending) to settle; the caller's gRPC
    /// deadline cuts it shorter.
    #[arg(long, global = true, env = "CSI_SETTLE_TIMEOUT", default_value = "2m", value_parser = crate::cli::parse_duration)]
    pub settle_timeout: Duration,

    /// Make DeleteVolume wait until the cloud has finished deleting.
    #[arg(long, global = true, env = "CSI_WAIT_FOR_DELETE")]
    pub wait_for_delete: bool,

    /// How often the cloud configuration file is checked for changes.
    #[arg(long, global = true, env = "CSI_CONFIG_RELOAD_INTERVAL", default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub config_reload_interval: Duration,

    /// How often the cluster's disks are checked for tags a failed call left off (EVS); 0: never.
    #[arg(long, global = true, env = "CSI_TAG_REPAIR_INTERVAL", default_value = "10m", value_parser = crate::cli::parse_duration)]
    pub tag_repair_interval: Duration,
}

/// Why the controller could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The cloud configuration does not load.
    #[error("cloud configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A cloud's transport could not be built.
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
}

/// The running controller: its service and what must stay alive with it.
#[derive(Debug)]
pub struct Controller {
    /// The Controller and GroupController services' shared state.
    pub service: Arc<ControllerService>,
    /// The configuration watch (dropping it stops reloads).
    pub config: ConfigWatch,
    /// The default cloud's backend.
    pub default_backend: Arc<dyn Backend>,
    /// Every cloud's backend, the default among them.
    pub backends: Vec<Arc<dyn Backend>>,
}

/// The wait settings of the cloud `name`: its own learned transition times, in `/metrics`.
fn waits_for(name: &str, metrics: &Arc<Metrics>) -> WaitSettings {
    WaitSettings { estimates: Estimates::new(name, Some(metrics.clone())), ..WaitSettings::default() }
}

/// Loads the configuration and builds a backend for every cloud.
pub fn controller(
    args: &ControllerArgs,
    cloud_config: Option<std::path::PathBuf>,
    driver_name: &str,
    metrics: Arc<Metrics>,
    observer: Observer,
) -> Result<Controller, WiringError> {
    let source = ConfigSource::from_process(cloud_config, args.cloud.clone());
    let config = ConfigWatch::start(source, args.config_reload_interval)?;
    let current = config.current();
    let mut backends: BTreeMap<String, Arc<dyn Backend>> = BTreeMap::new();
    for (name, cloud) in &current.clouds {
        match cloud.kind {
            CloudKind::OpenStack => {
                let http =
                    Arc::new(HttpClient::new(&cloud.tls, HttpSettings::default(), Some(metrics.clone()))?);
                let session = Arc::new(Session::new(http, config.subscribe(), Some(name))?);
                let owner = Owner { key: META_CLUSTER_ID.to_string(), value: args.cluster_id.clone() };
                let backend = OpenStackBackend::new(session, waits_for(name, &metrics), Some(owner));
                backends.insert(name.clone(), Arc::new(backend));
            }
            CloudKind::Huawei => {
                let http =
                    Arc::new(HttpClient::new(&cloud.tls, HttpSettings::default(), Some(metrics.clone()))?);
                let client = Arc::new(HuaweiClient::new(http, config.subscribe(), Some(name))?);
                let owner = Owner { key: META_CLUSTER_ID.to_string(), value: args.cluster_id.clone() };
                let backend = HuaweiBackend::new(client, waits_for(name, &metrics), Some(owner));
                backends.insert(name.clone(), Arc::new(backend));
            }
        }
    }
    let default_cloud = current.default_cloud();
    let mut settings = ControllerSettings::new(driver_name.to_string(), args.cluster_id.clone());
    settings.create_timeout = args.create_timeout;
    settings.attach_timeout = args.attach_timeout;
    settings.settle_timeout = args.settle_timeout;
    settings.delete_timeout = args.wait_for_delete.then_some(args.create_timeout);
    settings.ignore_volume_az = default_cloud.block_storage.ignore_volume_az;
    if let Some(limit) = default_cloud.block_storage.node_volume_attach_limit {
        settings.max_volumes_per_node = limit;
    }
    let default_backend = backends[&current.default].clone();
    let all = backends.values().cloned().collect();
    let clouds = Clouds::new(current.default.clone(), backends);
    Ok(Controller {
        service: Arc::new(ControllerService::new(clouds, settings, observer)),
        config,
        default_backend,
        backends: all,
    })
}

/// Repairs the backends' tags every `interval`, the first time one interval after the start;
/// `None` when the interval is zero.
pub fn repair_tags_every(
    backends: Vec<Arc<dyn Backend>>,
    interval: Duration,
    metrics: Arc<Metrics>,
) -> Option<tokio::task::JoinHandle<()>> {
    if interval.is_zero() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            for backend in &backends {
                let outcome = backend.repair_tags().await;
                if let Ok(report) = &outcome {
                    metrics.record_tag_repair(report.repaired, report.failed);
                }
                match outcome {
                    Ok(report) if report.repaired > 0 || report.failed > 0 => tracing::info!(
                        checked = report.checked,
                        repaired = report.repaired,
                        failed = report.failed,
                        "tag repair"
                    ),
                    Ok(report) => tracing::debug!(checked = report.checked, "tag repair: nothing missing"),
                    Err(e) => {
                        tracing::warn!(error = %e, "tag repair could not list the disks; next pass retries")
                    }
                }
            }
        }
    }))
}

/// Probes the backend until it answers, then opens the readiness gate.
pub fn open_when_cloud_answers(backend: Arc<dyn Backend>, gate: Gate) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let backoff = Backoff {
            initial: Duration::from_millis(200),
            factor: 2.0,
            max: Duration::from_secs(30),
            max_attempts: u32::MAX,
        };
        let mut attempt = 0;
        loop {
            match backend.probe().await {
                Ok(()) => {
                    tracing::info!("cloud backend answered; ready");
                    gate.open();
                    return;
                }
                Err(e) => {
                    attempt += 1;
                    let delay = backoff.delay(attempt, crate::cloud::retry::jitter());
                    tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cloud backend not reachable yet");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    })
}
