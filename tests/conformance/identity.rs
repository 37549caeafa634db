//! Identity: plugin info, probe, and capabilities (every RPC is served exactly when advertised).

use super::*;

// ---------------------------------------------------------------------------------------------
// Identity

#[tokio::test]
async fn get_plugin_info_returns_a_valid_name_and_a_vendor_version() {
    let mut s = Sandbox::start().await;
    let info = ok(s.identity.get_plugin_info(pb::GetPluginInfoRequest {}).await);
    assert_eq!(cinder_evs_csi::csi::validate::driver_name(&info.name), Ok(()));
    assert!(!info.vendor_version.is_empty());
    s.finish().await;
}

#[tokio::test]
async fn probe_reports_ready_once_the_cloud_answers() {
    let mut s = Sandbox::start().await;
    assert_eq!(ok(s.identity.probe(pb::ProbeRequest {}).await).ready, Some(true));
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Capabilities: every RPC is either advertised and served, or not advertised and Unimplemented.

async fn plugin_services(s: &mut Sandbox) -> HashSet<pb::plugin_capability::service::Type> {
    use pb::plugin_capability::{Type, service};
    ok(s.identity.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}).await)
        .capabilities
        .into_iter()
        .filter_map(|c| match c.r#type {
            Some(Type::Service(svc)) => service::Type::try_from(svc.r#type).ok(),
            _ => None,
        })
        .collect()
}

async fn controller_capabilities(s: &mut Sandbox) -> HashSet<pb::controller_service_capability::rpc::Type> {
    use pb::controller_service_capability::{Type, rpc};
    ok(s.controller.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {}).await)
        .capabilities
        .into_iter()
        .map(|c| match c.r#type {
            Some(Type::Rpc(r)) => rpc::Type::try_from(r.r#type).expect("a capability the spec defines"),
            None => panic!("a capability without a type"),
        })
        .collect()
}

async fn node_capabilities(s: &mut Sandbox) -> HashSet<pb::node_service_capability::rpc::Type> {
    use pb::node_service_capability::{Type, rpc};
    ok(s.node.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}).await)
        .capabilities
        .into_iter()
        .map(|c| match c.r#type {
            Some(Type::Rpc(r)) => rpc::Type::try_from(r.r#type).expect("a capability the spec defines"),
            None => panic!("a capability without a type"),
        })
        .collect()
}

/// Asserts `code` is Unimplemented exactly when the RPC is not advertised.
fn served_as_advertised(rpc: &str, advertised: bool, code: Code) {
    if advertised {
        assert_ne!(code, Code::Unimplemented, "{rpc} is advertised but Unimplemented");
    } else {
        assert_eq!(code, Code::Unimplemented, "{rpc} is not advertised but is served");
    }
}

fn code_of<T>(result: Result<Response<T>, Status>) -> Code {
    result.map_or_else(|s| s.code(), |_| Code::Ok)
}

#[tokio::test]
async fn get_plugin_capabilities_advertise_controller_group_controller_and_topology() {
    use pb::plugin_capability::service::Type;
    let mut s = Sandbox::start().await;
    let services = plugin_services(&mut s).await;
    assert_eq!(
        services,
        HashSet::from([
            Type::ControllerService,
            Type::GroupControllerService,
            Type::VolumeAccessibilityConstraints
        ])
    );
    s.finish().await;
}

#[tokio::test]
async fn every_controller_rpc_is_unimplemented_exactly_when_not_advertised() {
    use pb::controller_service_capability::rpc::Type as C;
    let mut s = Sandbox::start().await;
    let caps = controller_capabilities(&mut s).await;
    // The spec defines no capability this build cannot honour.
    assert!(!caps.contains(&C::Unknown));
    let c = &mut s.controller;
    let has = |t| caps.contains(&t);
    let create_delete = has(C::CreateDeleteVolume);
    served_as_advertised(
        "CreateVolume",
        create_delete,
        code_of(c.create_volume(pb::CreateVolumeRequest::default()).await),
    );
    served_as_advertised(
        "DeleteVolume",
        create_delete,
        code_of(c.delete_volume(pb::DeleteVolumeRequest::default()).await),
    );
    let publish = has(C::PublishUnpublishVolume);
    served_as_advertised(
        "ControllerPublishVolume",
        publish,
        code_of(c.controller_publish_volume(pb::ControllerPublishVolumeRequest::default()).await),
    );
    served_as_advertised(
        "ControllerUnpublishVolume",
        publish,
        code_of(c.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest::default()).await),
    );
    // ValidateVolumeCapabilities is required of every controller.
    served_as_advertised(
        "ValidateVolumeCapabilities",
        true,
        code_of(c.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest::default()).await),
    );
    served_as_advertised(
        "ListVolumes",
        has(C::ListVolumes),
        code_of(c.list_volumes(pb::ListVolumesRequest::default()).await),
    );
    served_as_advertised(
        "GetCapacity",
        has(C::GetCapacity),
        code_of(c.get_capacity(pb::GetCapacityRequest::default()).await),
    );
    let snapshots = has(C::CreateDeleteSnapshot);
    served_as_advertised(
        "CreateSnapshot",
        snapshots,
        code_of(c.create_snapshot(pb::CreateSnapshotRequest::default()).await),
    );
    served_as_advertised(
        "DeleteSnapshot",
        snapshots,
        code_of(c.delete_snapshot(pb::DeleteSnapshotRequest::default()).await),
    );
    served_as_advertised(
        "ListSnapshots",
        has(C::ListSnapshots),
        code_of(c.list_snapshots(pb::ListSnapshotsRequest::default()).await),
    );
    served_as_advertised(
        "GetSnapshot",
        has(C::GetSnapshot),
        code_of(c.get_snapshot(pb::GetSnapshotRequest::default()).await),
    );
    served_as_advertised(
        "ControllerExpandVolume",
        has(C::ExpandVolume),
        code_of(c.controller_expand_volume(pb::ControllerExpandVolumeRequest::default()).await),
    );
    served_as_advertised(
        "ControllerGetVolume",
        has(C::GetVolume),
        code_of(c.controller_get_volume(pb::ControllerGetVolumeRequest::default()).await),
    );
    served_as_advertised(
        "ControllerModifyVolume",
        has(C::ModifyVolume),
        code_of(c.controller_modify_volume(pb::ControllerModifyVolumeRequest::default()).await),
    );
    // Sub-capabilities need their base RPC.
    for (sub, base) in [
        (C::ListVolumesPublishedNodes, C::ListVolumes),
        (C::VolumeCondition, C::ListVolumes),
        (C::CloneVolume, C::CreateDeleteVolume),
        (C::PublishReadonly, C::PublishUnpublishVolume),
    ] {
        assert!(!has(sub) || has(base), "{sub:?} is advertised without {base:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn every_node_rpc_is_unimplemented_exactly_when_not_advertised() {
    use pb::node_service_capability::rpc::Type as N;
    let mut s = Sandbox::start().await;
    let caps = node_capabilities(&mut s).await;
    assert!(!caps.contains(&N::Unknown));
    let n = &mut s.node;
    let stage = caps.contains(&N::StageUnstageVolume);
    served_as_advertised(
        "NodeStageVolume",
        stage,
        code_of(n.node_stage_volume(pb::NodeStageVolumeRequest::default()).await),
    );
    served_as_advertised(
        "NodeUnstageVolume",
        stage,
        code_of(n.node_unstage_volume(pb::NodeUnstageVolumeRequest::default()).await),
    );
    served_as_advertised(
        "NodePublishVolume",
        true,
        code_of(n.node_publish_volume(pb::NodePublishVolumeRequest::default()).await),
    );
    served_as_advertised(
        "NodeUnpublishVolume",
        true,
        code_of(n.node_unpublish_volume(pb::NodeUnpublishVolumeRequest::default()).await),
    );
    served_as_advertised(
        "NodeGetVolumeStats",
        caps.contains(&N::GetVolumeStats),
        code_of(n.node_get_volume_stats(pb::NodeGetVolumeStatsRequest::default()).await),
    );
    served_as_advertised(
        "NodeExpandVolume",
        caps.contains(&N::ExpandVolume),
        code_of(n.node_expand_volume(pb::NodeExpandVolumeRequest::default()).await),
    );
    assert!(!caps.contains(&N::VolumeCondition) || caps.contains(&N::GetVolumeStats));
    s.finish().await;
}

#[tokio::test]
async fn every_group_controller_rpc_is_unimplemented_exactly_when_not_advertised() {
    use pb::group_controller_service_capability::{Type, rpc};
    let mut s = Sandbox::start().await;
    assert!(
        plugin_services(&mut s).await.contains(&pb::plugin_capability::service::Type::GroupControllerService)
    );
    let caps: HashSet<rpc::Type> =
        ok(s.group.group_controller_get_capabilities(pb::GroupControllerGetCapabilitiesRequest {}).await)
            .capabilities
            .into_iter()
            .map(|c| match c.r#type {
                Some(Type::Rpc(r)) => rpc::Type::try_from(r.r#type).unwrap(),
                None => panic!("a capability without a type"),
            })
            .collect();
    let advertised = caps.contains(&rpc::Type::CreateDeleteGetVolumeGroupSnapshot);
    let g = &mut s.group;
    served_as_advertised(
        "CreateVolumeGroupSnapshot",
        advertised,
        code_of(g.create_volume_group_snapshot(pb::CreateVolumeGroupSnapshotRequest::default()).await),
    );
    served_as_advertised(
        "DeleteVolumeGroupSnapshot",
        advertised,
        code_of(g.delete_volume_group_snapshot(pb::DeleteVolumeGroupSnapshotRequest::default()).await),
    );
    served_as_advertised(
        "GetVolumeGroupSnapshot",
        advertised,
        code_of(g.get_volume_group_snapshot(pb::GetVolumeGroupSnapshotRequest::default()).await),
    );
    s.finish().await;
}
