//! The metadata keys by which the driver marks what it owns. The controller writes them, the
//! backends filter by the cluster id, and the garbage collector judges by it: one definition.

/// Volume and snapshot metadata key holding the CSI name they were created for.
pub const META_VOLUME_NAME: &str = "cinder-evs-csi/volume-name";
/// Volume and snapshot metadata key holding the owning cluster's id (`--cluster-id`).
pub const META_CLUSTER_ID: &str = "cinder-evs-csi/cluster-id";
/// Volume metadata key holding the PVC name.
pub const META_PVC_NAME: &str = "cinder-evs-csi/pvc-name";
/// Volume metadata key holding the PVC namespace.
pub const META_PVC_NAMESPACE: &str = "cinder-evs-csi/pvc-namespace";
/// Volume metadata key holding the PV name.
pub const META_PV_NAME: &str = "cinder-evs-csi/pv-name";
/// Prefix of the volume metadata key holding a node's publish record; the node id completes it.
pub const META_PUBLISHED_PREFIX: &str = "cinder-evs-csi/published-";

/// The publish-record key of `node`.
pub fn published_key(node: &str) -> String {
    format!("{META_PUBLISHED_PREFIX}{node}")
}

/// True when `metadata` names no owner or names `cluster_id`: what this cluster may act on.
pub fn owned_by(metadata: &std::collections::BTreeMap<String, String>, cluster_id: &str) -> bool {
    metadata.get(META_CLUSTER_ID).is_none_or(|owner| owner == cluster_id)
}
