//! The node side: this node's identity and how it finds devices. Never reads the cloud
//! configuration.

use crate::csi::node::NodeConfig;
use crate::host::device::DeviceFinder;
use crate::node_identity::{self, IdentityConfig};

use super::WiringError;

/// What the node side is built from.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// Where this node's id and zone come from.
    pub identity: IdentityConfig,
    /// Volumes this node can take; derived from the system disk's bus when unset.
    pub max_volumes_per_node: Option<i64>,
    /// Where and how long to look for a volume's device.
    pub finder: DeviceFinder,
}

/// The node service's configuration: its identity (from the explicit id or the configured
/// sources) and how it finds devices.
pub(super) async fn config(driver_name: &str, options: &NodeOptions) -> Result<NodeConfig, WiringError> {
    let identity = node_identity::resolve(&options.identity).await?;
    let max_volumes_per_node = options
        .max_volumes_per_node
        .unwrap_or_else(|| crate::host::limits::default_max_volumes(&options.finder.sys_root));
    Ok(NodeConfig {
        driver_name: driver_name.to_string(),
        identity,
        max_volumes_per_node,
        finder: options.finder.clone(),
    })
}
