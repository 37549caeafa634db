//! The Kubernetes Node object as an identity source, for clusters whose nodes cannot reach the
//! metadata service: the server id is the last segment of `spec.providerID`
//! (`openstack:///<id>`, `openstack://<region>/<id>`, or a bare id) and the zone is the Node's
//! `topology.kubernetes.io/zone` label.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use super::{Error, Result};

/// The well-known zone label on Node objects.
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// The server id inside a Node's `spec.providerID`.
pub fn parse_provider_id(provider_id: &str) -> Result<String> {
    crate::contract::provider_id::server_id(provider_id)
        .map(str::to_string)
        .ok_or_else(|| Error::Identity(format!("providerID {:?} names no server id", provider_id.trim())))
}

/// Reads the server id and zone from the Node object `node_name`, using `kubeconfig` when
/// given, else the in-cluster service account (or `KUBECONFIG`).
pub async fn node_identity(
    node_name: &str,
    kubeconfig: Option<&Path>,
    timeout: Duration,
) -> Result<(String, Option<String>)> {
    let failed = |what: &str, e: &dyn std::fmt::Display| Error::Identity(format!("kubernetes {what}: {e}"));
    let client = crate::k8s::client(kubeconfig, timeout).await.map_err(|e| Error::Identity(e.to_string()))?;
    let nodes: kube::Api<Node> = kube::Api::all(client);
    let node = tokio::time::timeout(timeout, nodes.get(node_name))
        .await
        .map_err(|e| failed(&format!("node {node_name}"), &e))?
        .map_err(|e| failed(&format!("node {node_name}"), &e))?;
    let provider_id = node
        .spec
        .and_then(|spec| spec.provider_id)
        .ok_or_else(|| Error::Identity(format!("kubernetes node {node_name} has no spec.providerID")))?;
    let zone =
        node.metadata.labels.and_then(|labels| labels.get(ZONE_LABEL).cloned()).filter(|z| !z.is_empty());
    Ok((parse_provider_id(&provider_id)?, zone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_of_openstack_and_bare_forms_give_the_server_id() {
        let id = "d8e02d56-2648-49a3-bf97-6be8f1204f38";
        assert_eq!(parse_provider_id(&format!("openstack:///{id}")).unwrap(), id);
        assert_eq!(parse_provider_id(&format!("openstack://RegionOne/{id}")).unwrap(), id);
        assert_eq!(parse_provider_id(id).unwrap(), id);
    }

    #[test]
    fn provider_ids_without_a_server_id_are_refused() {
        for bad in ["", "openstack:///", "openstack://region/", "two words"] {
            assert!(parse_provider_id(bad).is_err(), "{bad:?}");
        }
    }
}
