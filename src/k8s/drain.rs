//! `drain-wait`: the node plugin's preStop hook. While a node is drained, kubelet unmounts the
//! evicted pods' volumes through this plugin and the attacher then detaches them; if the plugin
//! stopped first, unstaging would fail and the attachments would stay behind. So when the Node
//! is cordoned, the hook waits until no VolumeAttachment of this driver names the node (or the
//! timeout passes). On an ordinary restart (a rollout, the node not cordoned) it returns at once.

use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::ListParams;

use super::KubeError;

/// The taint `kubectl cordon` and `kubectl drain` put on a node, beside `spec.unschedulable`.
const UNSCHEDULABLE_TAINT: &str = "node.kubernetes.io/unschedulable";

/// What to wait for.
#[derive(Clone, Debug)]
pub struct DrainSettings {
    /// The Node whose attachments are awaited.
    pub node_name: String,
    /// Only attachments whose attacher is this driver count.
    pub driver_name: String,
    /// Give up (with an error) after this long.
    pub timeout: Duration,
    /// Pause between two listings.
    pub interval: Duration,
}

/// How the wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainOutcome {
    /// The node is not cordoned: this is a restart, not a drain; nothing was awaited.
    NotDraining,
    /// The Node object does not exist (any more).
    NodeGone,
    /// No attachment of this driver names the node any more; `listings` counts the lists made.
    Drained {
        /// How many times the attachments were listed.
        listings: u32,
    },
}

/// Why the wait failed.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// The API could not be asked.
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// Attachments were still there when the timeout passed.
    #[error("{} VolumeAttachment(s) of {driver} still on node {node} after {timeout:?}: {}", remaining.len(), remaining.join(", "))]
    Timeout {
        /// The node.
        node: String,
        /// The driver.
        driver: String,
        /// How long was waited.
        timeout: Duration,
        /// Names of the attachments left.
        remaining: Vec<String>,
    },
}

/// Waits, when the node is being drained, until its attachments of this driver are gone.
pub async fn wait(client: &kube::Client, settings: &DrainSettings) -> Result<DrainOutcome, DrainError> {
    let nodes: kube::Api<Node> = kube::Api::all(client.clone());
    let node = nodes
        .get_opt(&settings.node_name)
        .await
        .map_err(KubeError::api(format!("node {}", settings.node_name)))?;
    let Some(node) = node else {
        tracing::info!(node = %settings.node_name, "node object gone; nothing to wait for");
        return Ok(DrainOutcome::NodeGone);
    };
    if !is_cordoned(&node) {
        tracing::info!(node = %settings.node_name, "node not cordoned; not waiting for attachments");
        return Ok(DrainOutcome::NotDraining);
    }
    let attachments: kube::Api<VolumeAttachment> = kube::Api::all(client.clone());
    let deadline = tokio::time::Instant::now() + settings.timeout;
    let mut listings = 0;
    loop {
        let list = attachments
            .list(&ListParams::default())
            .await
            .map_err(KubeError::api("list volumeattachments"))?;
        listings += 1;
        let remaining = ours_on_node(&list.items, settings);
        if remaining.is_empty() {
            tracing::info!(node = %settings.node_name, listings, "no attachments left; node drained");
            return Ok(DrainOutcome::Drained { listings });
        }
        if tokio::time::Instant::now() + settings.interval > deadline {
            return Err(DrainError::Timeout {
                node: settings.node_name.clone(),
                driver: settings.driver_name.clone(),
                timeout: settings.timeout,
                remaining,
            });
        }
        tracing::info!(node = %settings.node_name, remaining = remaining.len(), "waiting for attachments to drain");
        tokio::time::sleep(settings.interval).await;
    }
}

/// Whether the node is cordoned, by the field or by the taint that goes with it.
pub fn is_cordoned(node: &Node) -> bool {
    let Some(spec) = &node.spec else { return false };
    spec.unschedulable == Some(true)
        || spec.taints.iter().flatten().any(|t| t.key == UNSCHEDULABLE_TAINT && t.effect == "NoSchedule")
}

/// Names of the attachments of this driver on this node.
fn ours_on_node(items: &[VolumeAttachment], settings: &DrainSettings) -> Vec<String> {
    items
        .iter()
        .filter(|a| a.spec.node_name == settings.node_name && a.spec.attacher == settings.driver_name)
        .map(|a| a.metadata.name.clone().unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> Node {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_node_is_cordoned_by_the_unschedulable_field_or_taint() {
        assert!(is_cordoned(&node(
            serde_json::json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}})
        )));
        assert!(is_cordoned(&node(serde_json::json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}}))));
        assert!(!is_cordoned(&node(serde_json::json!({"metadata": {"name": "n"}, "spec": {"taints": [
            {"key": "dedicated", "effect": "NoSchedule"}]}}))));
        assert!(!is_cordoned(&node(serde_json::json!({"metadata": {"name": "n"}}))));
    }
}
