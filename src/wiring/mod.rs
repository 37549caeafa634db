//! The one composition root: from plain options (the command line's, or the sandbox's) it
//! builds the gRPC services of `controller`, `node`, `all` and `sandbox` alike, with the
//! background work each needs (readiness probe, tag repair) and the configuration watch.
//!
//! Nothing here parses flags: `cli` turns flags into these options, so this room sits below
//! both `cli` and `sandbox`.

mod controller;
mod node;
mod tasks;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tonic::service::RoutesBuilder;

pub use controller::{Controller, controller};
pub use node::NodeOptions;
pub use tasks::{AbortOnDrop, open_when_cloud_answers, repair_tags_every};

use crate::cloud::Backend;
use crate::config::watch::ConfigWatch;
use crate::csi::identity::{IdentityService, service_capability};
use crate::csi::node::NodeService;
use crate::csi::observe::Observer;
use crate::csi::pb::controller_server::ControllerServer;
use crate::csi::pb::group_controller_server::GroupControllerServer;
use crate::csi::pb::identity_server::IdentityServer;
use crate::csi::pb::node_server::NodeServer;
use crate::csi::pb::plugin_capability::service::Type as ServiceType;
use crate::csi::readiness::Readiness;
use crate::telemetry::metrics::Metrics;

/// What the controller side is built from.
#[derive(Clone, Debug)]
pub struct ControllerOptions {
    /// Cloud configuration file (clouds.yaml or cloud.conf); the `OS_*` environment when unset.
    pub cloud_config: Option<PathBuf>,
    /// Default cloud of the configuration.
    pub cloud: Option<String>,
    /// Cluster id written into every volume's metadata.
    pub cluster_id: String,
    /// How long CreateVolume waits for the cloud to finish a volume.
    pub create_timeout: Duration,
    /// How long ControllerPublish/Unpublish wait for an attach or detach.
    pub attach_timeout: Duration,
    /// How long a delete, expand or publish waits for a transition to settle.
    pub settle_timeout: Duration,
    /// Make DeleteVolume wait until the cloud has finished deleting.
    pub wait_for_delete: bool,
    /// How often the cloud configuration file is checked for changes.
    pub config_reload_interval: Duration,
    /// How often the cluster's disks are checked for missing tags; zero: never.
    pub tag_repair_interval: Duration,
}

/// Why the services could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    /// The cloud configuration does not load.
    #[error("cloud configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    /// A cloud's transport could not be built.
    #[error(transparent)]
    Cloud(#[from] crate::cloud::CloudError),
    /// This node's identity could not be determined.
    #[error(transparent)]
    Node(#[from] crate::node_identity::Error),
}

/// The services of one mode and what must live as long as they are served.
#[derive(Debug)]
pub struct Services {
    /// The gRPC routes: Identity always, Controller (and GroupController) and Node as asked.
    pub routes: tonic::service::Routes,
    /// The default cloud's backend, when the controller side was built.
    pub backend: Option<Arc<dyn Backend>>,
    /// The configuration watch (dropping it stops reloads).
    _config: Option<ConfigWatch>,
    /// The readiness probe and the tag repair, aborted on drop.
    _tasks: Vec<AbortOnDrop>,
}

/// Builds the services of a mode: the controller side when its options are given, the node
/// side when its are, and the Identity service that advertises what was built.
pub async fn services(
    driver_name: &str,
    controller: Option<&ControllerOptions>,
    node: Option<&NodeOptions>,
    metrics: Arc<Metrics>,
) -> Result<Services, WiringError> {
    let observer = Observer::new(metrics.clone());
    let readiness = Readiness::new();
    let mut routes = RoutesBuilder::default();
    let mut capabilities = Vec::new();
    let mut services =
        Services { routes: Default::default(), backend: None, _config: None, _tasks: Vec::new() };
    if let Some(options) = controller {
        let built = self::controller(options, driver_name, metrics.clone(), observer.clone())?;
        let gate = readiness.gate("cloud backend");
        services._tasks.push(AbortOnDrop(open_when_cloud_answers(built.default_backend.clone(), gate)));
        let repair = repair_tags_every(built.backends, options.tag_repair_interval, metrics);
        services._tasks.extend(repair.map(AbortOnDrop));
        services._config = Some(built.config);
        services.backend = Some(built.default_backend);
        // Offered only when a configured cloud takes group snapshots (EVS does not).
        let groups = built.service.group_snapshots_supported();
        routes.add_service(ControllerServer::from_arc(built.service.clone()));
        capabilities.push(service_capability(ServiceType::ControllerService));
        capabilities.push(service_capability(ServiceType::VolumeAccessibilityConstraints));
        if groups {
            routes.add_service(GroupControllerServer::from_arc(built.service));
            capabilities.push(service_capability(ServiceType::GroupControllerService));
        }
    }
    if let Some(options) = node {
        let config = node::config(driver_name, options).await?;
        tracing::info!(
            node_id = %config.identity.node_id,
            zone = ?config.identity.zone,
            max_volumes = config.max_volumes_per_node,
            "node identity"
        );
        routes.add_service(NodeServer::new(NodeService::new(config, observer.clone())));
    }
    let identity = IdentityService::new(driver_name.to_string(), capabilities, readiness, observer);
    routes.add_service(IdentityServer::new(identity));
    services.routes = routes.routes();
    Ok(services)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::device::DeviceFinder;
    use crate::node_identity::IdentityConfig;

    fn node(identity: IdentityConfig) -> NodeOptions {
        NodeOptions { identity, max_volumes_per_node: Some(3), finder: DeviceFinder::default() }
    }

    #[tokio::test]
    async fn the_node_side_alone_builds_without_a_cloud() {
        let options = node(IdentityConfig { node_id: Some("server-1".into()), ..IdentityConfig::default() });
        let services = services("csi.example.com", None, Some(&options), Metrics::new()).await.unwrap();
        assert!(services.backend.is_none(), "no controller side was asked for");
    }

    #[tokio::test]
    async fn a_node_that_cannot_tell_its_id_fails_naming_the_flag() {
        let options = node(IdentityConfig { sources: Vec::new(), ..IdentityConfig::default() });
        let error = services("csi.example.com", None, Some(&options), Metrics::new()).await.unwrap_err();
        assert!(matches!(error, WiringError::Node(_)), "{error:?}");
        assert!(error.to_string().contains("--node-id"), "{error}");
    }
}
