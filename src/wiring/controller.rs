//! The controller side: configuration watch, one backend per cloud, and the Controller
//! service over them.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cloud::Backend;
use crate::cloud::http::{HttpClient, HttpSettings};
use crate::cloud::huawei::HuaweiBackend;
use crate::cloud::huawei::auth::Client as HuaweiClient;
use crate::cloud::openstack::OpenStackBackend;
use crate::cloud::openstack::keystone::Session;
use crate::cloud::types::Owner;
use crate::cloud::wait::{Estimates, WaitSettings};
use crate::config::watch::ConfigWatch;
use crate::config::{CloudKind, ConfigSource};
use crate::contract::ownership::META_CLUSTER_ID;
use crate::csi::controller::{Clouds, ControllerService, ControllerSettings};
use crate::csi::observe::Observer;
use crate::telemetry::metrics::Metrics;

use super::{ControllerOptions, WiringError};

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
    args: &ControllerOptions,
    driver_name: &str,
    metrics: Arc<Metrics>,
    observer: Observer,
) -> Result<Controller, WiringError> {
    let source = ConfigSource::from_process(args.cloud_config.clone(), args.cloud.clone());
    let config = ConfigWatch::start(source, args.config_reload_interval)?;
    let current = config.current();
    let mut backends: BTreeMap<String, Arc<dyn Backend>> = BTreeMap::new();
    for (name, cloud) in &current.clouds {
        let http = Arc::new(HttpClient::new(&cloud.tls, HttpSettings::default(), Some(metrics.clone()))?);
        let owner = Some(Owner { key: META_CLUSTER_ID.to_string(), value: args.cluster_id.clone() });
        let backend: Arc<dyn Backend> = match cloud.kind {
            CloudKind::OpenStack => {
                let session = Arc::new(Session::new(http, config.subscribe(), Some(name))?);
                Arc::new(OpenStackBackend::new(session, waits_for(name, &metrics), owner))
            }
            CloudKind::Huawei => {
                let client = Arc::new(HuaweiClient::new(http, config.subscribe(), Some(name))?);
                Arc::new(HuaweiBackend::new(client, waits_for(name, &metrics), owner))
            }
        };
        backends.insert(name.clone(), backend);
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
