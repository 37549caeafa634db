//! CSI v1.12 conformance: what the spec requires of every RPC the driver advertises, checked
//! over the real gRPC socket of `cinder-evs-csi sandbox` (emulator, controller, node and group
//! controller on one socket). Each test starts its own sandbox (about 0.1 s) and ends by
//! checking that nothing it made is left in the cloud and that SIGTERM shuts down cleanly.
//!
//! Test names state the rule checked. Node tests that mount need root: they fail under CI and
//! print `SKIPPED` otherwise.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::csi::pb::group_controller_client::GroupControllerClient;
use cinder_evs_csi::csi::pb::identity_client::IdentityClient;
use cinder_evs_csi::csi::pb::node_client::NodeClient;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use cinder_evs_csi::csi::pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
use common::{Driver, unix_channel, wait_for_path};
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

const GIB: i64 = 1 << 30;
const UNKNOWN_VOLUME: &str = "00000000-0000-4000-8000-000000000000";
const UNKNOWN_SNAPSHOT: &str = "00000000-0000-4000-8000-00000000beef";

/// One running sandbox and clients of its four services.
struct Sandbox {
    driver: Driver,
    _dir: tempfile::TempDir,
    state: PathBuf,
    controller: ControllerClient<Channel>,
    node: NodeClient<Channel>,
    identity: IdentityClient<Channel>,
    group: GroupControllerClient<Channel>,
    node_id: String,
}

impl Sandbox {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sandbox");
        let driver = Driver::start(&["sandbox", "--latency", "20ms", "--state-dir", state.to_str().unwrap()]);
        wait_for_path(&state.join("csi.sock"), &driver);
        // The socket file appears at bind(), a moment before listen(): wait until it accepts.
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::UnixStream::connect(state.join("csi.sock")).await.is_err() {
            assert!(Instant::now() < deadline, "socket never accepted; log:\n{}", driver.log().join("\n"));
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let channel = unix_channel(state.join("csi.sock")).await;
        let mut identity = IdentityClient::new(channel.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        while identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner().ready != Some(true) {
            assert!(Instant::now() < deadline, "never ready; log:\n{}", driver.log().join("\n"));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut node = NodeClient::new(channel.clone());
        let node_id = node.node_get_info(pb::NodeGetInfoRequest {}).await.unwrap().into_inner().node_id;
        Self {
            driver,
            _dir: dir,
            state,
            controller: ControllerClient::new(channel.clone()),
            node,
            identity,
            group: GroupControllerClient::new(channel),
            node_id,
        }
    }

    async fn create_volume(&mut self, name: &str) -> pb::Volume {
        self.controller.create_volume(create_request(name)).await.unwrap().into_inner().volume.unwrap()
    }

    /// Deletes a volume, retrying as the CO does while its snapshots are still being deleted.
    async fn delete_volume(&mut self, volume_id: &str) {
        let request = pb::DeleteVolumeRequest { volume_id: volume_id.into(), ..Default::default() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.controller.delete_volume(request.clone()).await {
                Ok(_) => return,
                Err(s) if s.code() == Code::FailedPrecondition && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(s) => panic!("DeleteVolume {volume_id}: {s:?}"),
            }
        }
    }

    async fn create_snapshot(&mut self, name: &str, volume_id: &str) -> pb::Snapshot {
        self.controller
            .create_snapshot(snapshot_request(name, volume_id))
            .await
            .unwrap()
            .into_inner()
            .snapshot
            .unwrap()
    }

    /// Deletes a snapshot, retrying as the CO does while it is still being taken.
    async fn delete_snapshot(&mut self, snapshot_id: &str) {
        let request = pb::DeleteSnapshotRequest { snapshot_id: snapshot_id.into(), ..Default::default() };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.controller.delete_snapshot(request.clone()).await {
                Ok(_) => return,
                Err(s) if s.code() == Code::FailedPrecondition && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(s) => panic!("DeleteSnapshot {snapshot_id}: {s:?}"),
            }
        }
    }

    async fn wait_snapshot_ready(&mut self, snapshot_id: &str) -> pb::Snapshot {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let snapshot = self
                .controller
                .get_snapshot(pb::GetSnapshotRequest {
                    snapshot_id: snapshot_id.into(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .snapshot
                .unwrap();
            if snapshot.ready_to_use {
                return snapshot;
            }
            assert!(Instant::now() < deadline, "snapshot {snapshot_id} never became ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn volume_ids(&mut self) -> Vec<String> {
        let page =
            self.controller.list_volumes(pb::ListVolumesRequest::default()).await.unwrap().into_inner();
        page.entries.into_iter().map(|e| e.volume.unwrap().volume_id).collect()
    }

    async fn snapshot_ids(&mut self) -> Vec<String> {
        let page =
            self.controller.list_snapshots(pb::ListSnapshotsRequest::default()).await.unwrap().into_inner();
        page.entries.into_iter().map(|e| e.snapshot.unwrap().snapshot_id).collect()
    }

    /// Checks that the test removed what it made, then stops the sandbox with SIGTERM.
    /// Deletes answer before the cloud finishes, so this waits (with a guard against hangs).
    async fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (snapshots, volumes) = (self.snapshot_ids().await, self.volume_ids().await);
            if snapshots.is_empty() && volumes.is_empty() {
                break;
            }
            assert!(Instant::now() < deadline, "left behind: snapshots {snapshots:?}, volumes {volumes:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop().await;
    }

    /// SIGTERM: the sandbox must exit successfully and remove its cloud objects and mounts.
    async fn stop(self) {
        let Self { mut driver, state, _dir, .. } = self;
        driver.signal(nix::sys::signal::Signal::SIGTERM);
        let status = tokio::task::spawn_blocking(move || {
            let status = driver.wait(Duration::from_secs(60));
            (status, driver.log())
        })
        .await
        .unwrap();
        assert!(status.0.success(), "sandbox exit {:?}; log:\n{}", status.0, status.1.join("\n"));
        for kind in ["volumes", "snapshots"] {
            let left = std::fs::read_dir(state.join("cloud").join(kind)).map(|d| d.count()).unwrap_or(0);
            assert_eq!(left, 0, "{kind} left in the emulator after SIGTERM");
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&state.display().to_string()), "mounts left under the sandbox:\n{mounts}");
    }
}

fn mount_capability() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

fn block_capability() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

fn create_request(name: &str) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_capability()],
        ..Default::default()
    }
}

fn snapshot_request(name: &str, volume_id: &str) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest { name: name.into(), source_volume_id: volume_id.into(), ..Default::default() }
}

fn code<T: std::fmt::Debug>(result: Result<Response<T>, Status>) -> Code {
    match result {
        Ok(r) => panic!("expected an error, got {:?}", r.into_inner()),
        Err(status) => status.code(),
    }
}

fn ok<T>(result: Result<Response<T>, Status>) -> T {
    match result {
        Ok(r) => r.into_inner(),
        Err(status) => panic!("expected success, got {status:?}"),
    }
}

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

// ---------------------------------------------------------------------------------------------
// CreateVolume / DeleteVolume

#[tokio::test]
async fn create_volume_without_name_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    assert_eq!(code(s.controller.create_volume(create_request("")).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_without_capabilities_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest { volume_capabilities: vec![], ..create_request("no-caps") };
    assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_capability_missing_access_type_or_mode_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let no_type = pb::VolumeCapability { access_type: None, ..mount_capability() };
    let no_mode = pb::VolumeCapability { access_mode: None, ..mount_capability() };
    let unknown_mode =
        pb::VolumeCapability { access_mode: Some(AccessMode { mode: 0 }), ..mount_capability() };
    for capability in [no_type, no_mode, unknown_mode] {
        let request = pb::CreateVolumeRequest {
            volume_capabilities: vec![capability.clone()],
            ..create_request("bad-capability")
        };
        assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument, "{capability:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_unknown_parameters_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        parameters: HashMap::from([("no-such-parameter".to_string(), "x".to_string())]),
        ..create_request("bad-parameters")
    };
    assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_returns_an_id_and_at_least_the_required_capacity() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: 3 * GIB }),
        ..create_request("sized")
    };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    assert!(!volume.volume_id.is_empty());
    assert!((GIB + 1..=3 * GIB).contains(&volume.capacity_bytes), "{volume:?}");
    assert!(!volume.accessible_topology.is_empty(), "topology is advertised, so volumes carry it");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_without_capacity_range_gets_a_default_size() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest { capacity_range: None, ..create_request("default-size") };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    assert!(volume.capacity_bytes > 0, "{volume:?}");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_range_no_whole_size_fits_is_out_of_range() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: GIB + 2 }),
        ..create_request("impossible")
    };
    assert_eq!(code(s.controller.create_volume(request).await), Code::OutOfRange);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_maximum_length_name_succeeds() {
    let mut s = Sandbox::start().await;
    // csi-sanity's maximum: 128 characters.
    let name = "n".repeat(128);
    let volume = s.create_volume(&name).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_twice_with_the_same_name_returns_the_same_volume() {
    let mut s = Sandbox::start().await;
    let first = s.create_volume("twice").await;
    let second = s.create_volume("twice").await;
    assert_eq!(first.volume_id, second.volume_id);
    assert_eq!(first.capacity_bytes, second.capacity_bytes);
    assert_eq!(s.volume_ids().await.len(), 1);
    s.delete_volume(&first.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_the_same_name_and_an_incompatible_size_is_already_exists() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("conflict").await;
    let bigger = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 2 * GIB }),
        ..create_request("conflict")
    };
    assert_eq!(code(s.controller.create_volume(bigger).await), Code::AlreadyExists);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_from_an_unknown_snapshot_or_volume_is_not_found() {
    use pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
    let mut s = Sandbox::start().await;
    for source in [
        Type::Snapshot(SnapshotSource { snapshot_id: UNKNOWN_SNAPSHOT.into() }),
        Type::Volume(VolumeSource { volume_id: UNKNOWN_VOLUME.into() }),
    ] {
        let request = pb::CreateVolumeRequest {
            volume_content_source: Some(pb::VolumeContentSource { r#type: Some(source.clone()) }),
            ..create_request("from-nothing")
        };
        assert_eq!(code(s.controller.create_volume(request).await), Code::NotFound, "{source:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn create_volume_from_a_snapshot_and_from_a_volume_reports_the_source() {
    use pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
    let mut s = Sandbox::start().await;
    let origin = s.create_volume("origin").await;
    let snapshot = s.create_snapshot("origin-snap", &origin.volume_id).await;
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    let mut made = Vec::new();
    for (name, source) in [
        ("restored", Type::Snapshot(SnapshotSource { snapshot_id: snapshot.snapshot_id.clone() })),
        ("cloned", Type::Volume(VolumeSource { volume_id: origin.volume_id.clone() })),
    ] {
        let content = pb::VolumeContentSource { r#type: Some(source) };
        let request =
            pb::CreateVolumeRequest { volume_content_source: Some(content.clone()), ..create_request(name) };
        let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
        assert_eq!(volume.content_source, Some(content), "{name}");
        made.push(volume.volume_id);
    }
    for id in made {
        s.delete_volume(&id).await;
    }
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&origin.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_without_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::DeleteVolumeRequest::default();
    assert_eq!(code(s.controller.delete_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_of_an_unknown_id_succeeds() {
    let mut s = Sandbox::start().await;
    s.delete_volume(UNKNOWN_VOLUME).await;
    s.delete_volume("not-even-a-uuid").await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("delete-twice").await;
    s.delete_volume(&volume.volume_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ValidateVolumeCapabilities / ControllerGetVolume

#[tokio::test]
async fn validate_volume_capabilities_without_id_or_capabilities_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("validate").await;
    let no_id = pb::ValidateVolumeCapabilitiesRequest {
        volume_capabilities: vec![mount_capability()],
        ..Default::default()
    };
    assert_eq!(code(s.controller.validate_volume_capabilities(no_id).await), Code::InvalidArgument);
    let no_caps =
        pb::ValidateVolumeCapabilitiesRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.validate_volume_capabilities(no_caps).await), Code::InvalidArgument);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn validate_volume_capabilities_of_an_unknown_volume_is_not_found() {
    let mut s = Sandbox::start().await;
    let request = pb::ValidateVolumeCapabilitiesRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        volume_capabilities: vec![mount_capability()],
        ..Default::default()
    };
    assert_eq!(code(s.controller.validate_volume_capabilities(request).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn validate_volume_capabilities_confirms_supported_and_refuses_unsupported_ones() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("validate-ok").await;
    let request = |capability| pb::ValidateVolumeCapabilitiesRequest {
        volume_id: volume.volume_id.clone(),
        volume_capabilities: vec![capability],
        ..Default::default()
    };
    let confirmed = ok(s.controller.validate_volume_capabilities(request(mount_capability())).await);
    assert_eq!(confirmed.confirmed.unwrap().volume_capabilities, vec![mount_capability()]);
    let multi = pb::VolumeCapability {
        access_mode: Some(AccessMode { mode: Mode::MultiNodeMultiWriter as i32 }),
        ..mount_capability()
    };
    let refused = ok(s.controller.validate_volume_capabilities(request(multi)).await);
    assert!(refused.confirmed.is_none());
    assert!(!refused.message.is_empty(), "an unconfirmed answer says why");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_get_volume_without_id_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let get = |id: &str| pb::ControllerGetVolumeRequest { volume_id: id.into() };
    assert_eq!(code(s.controller.controller_get_volume(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.controller.controller_get_volume(get(UNKNOWN_VOLUME)).await), Code::NotFound);
    let volume = s.create_volume("get").await;
    let got = ok(s.controller.controller_get_volume(get(&volume.volume_id)).await);
    assert_eq!(got.volume.unwrap().volume_id, volume.volume_id);
    assert!(got.status.unwrap().volume_condition.is_some(), "VOLUME_CONDITION is advertised");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ControllerPublishVolume / ControllerUnpublishVolume

fn publish_request(volume_id: &str, node_id: &str) -> pb::ControllerPublishVolumeRequest {
    pb::ControllerPublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    }
}

fn unpublish_request(volume_id: &str, node_id: &str) -> pb::ControllerUnpublishVolumeRequest {
    pb::ControllerUnpublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn controller_publish_without_volume_node_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-args").await;
    let node = s.node_id.clone();
    let requests = [
        publish_request("", &node),
        publish_request(&volume.volume_id, ""),
        pb::ControllerPublishVolumeRequest {
            volume_capability: None,
            ..publish_request(&volume.volume_id, &node)
        },
    ];
    for request in requests {
        assert_eq!(
            code(s.controller.controller_publish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_of_an_unknown_volume_or_node_is_not_found() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    let unknown_volume = publish_request(UNKNOWN_VOLUME, &node);
    assert_eq!(code(s.controller.controller_publish_volume(unknown_volume).await), Code::NotFound);
    let volume = s.create_volume("publish-nowhere").await;
    let unknown_node = publish_request(&volume.volume_id, "00000000-0000-4000-8000-0000000000aa");
    assert_eq!(code(s.controller.controller_publish_volume(unknown_node).await), Code::NotFound);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_twice_returns_the_same_context_and_unpublish_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-twice").await;
    let node = s.node_id.clone();
    let first = ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    let second = ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    assert_eq!(first.publish_context, second.publish_context);
    let get = pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() };
    let published =
        ok(s.controller.controller_get_volume(get.clone()).await).status.unwrap().published_node_ids;
    assert_eq!(published, vec![node.clone()]);
    // Deleting a published volume is refused.
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.delete_volume(delete).await), Code::FailedPrecondition);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    let published = ok(s.controller.controller_get_volume(get).await).status.unwrap().published_node_ids;
    assert!(published.is_empty(), "{published:?}");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_readonly_is_honoured_in_the_publish_context() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-ro").await;
    let node = s.node_id.clone();
    let request =
        pb::ControllerPublishVolumeRequest { readonly: true, ..publish_request(&volume.volume_id, &node) };
    let context = ok(s.controller.controller_publish_volume(request).await).publish_context;
    assert_eq!(context.get("readonly").map(String::as_str), Some("true"), "{context:?}");
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_unpublish_without_volume_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    assert_eq!(
        code(s.controller.controller_unpublish_volume(unpublish_request("", &node)).await),
        Code::InvalidArgument
    );
    s.finish().await;
}

#[tokio::test]
async fn controller_unpublish_of_an_unknown_volume_succeeds() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    ok(s.controller.controller_unpublish_volume(unpublish_request(UNKNOWN_VOLUME, &node)).await);
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ListVolumes

#[tokio::test]
async fn list_volumes_with_negative_max_entries_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::ListVolumesRequest { max_entries: -1, ..Default::default() };
    assert_eq!(code(s.controller.list_volumes(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn list_volumes_with_an_invalid_starting_token_is_aborted() {
    let mut s = Sandbox::start().await;
    for token in ["not a token!", UNKNOWN_VOLUME] {
        let request = pb::ListVolumesRequest { starting_token: token.into(), ..Default::default() };
        assert_eq!(code(s.controller.list_volumes(request).await), Code::Aborted, "{token}");
    }
    s.finish().await;
}

#[tokio::test]
async fn list_volumes_pages_honour_max_entries_and_cover_every_volume_once() {
    let mut s = Sandbox::start().await;
    let mut made = HashSet::new();
    for i in 0..5 {
        made.insert(s.create_volume(&format!("page-{i}")).await.volume_id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request = pb::ListVolumesRequest { max_entries: 2, starting_token: token.clone() };
        let page = ok(s.controller.list_volumes(request).await);
        assert!(page.entries.len() <= 2, "max_entries 2, got {}", page.entries.len());
        for entry in page.entries {
            let status = entry.status.expect("LIST_VOLUMES_PUBLISHED_NODES is advertised");
            assert!(status.volume_condition.is_some(), "VOLUME_CONDITION is advertised");
            seen.push(entry.volume.unwrap().volume_id);
        }
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen.len(), made.len(), "each volume exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), made);
    assert!(pages >= 3, "5 volumes in pages of 2 take 3 pages, took {pages}");
    for id in &made {
        s.delete_volume(id).await;
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// GetCapacity / ControllerExpandVolume / ControllerModifyVolume

#[tokio::test]
async fn get_capacity_reports_a_non_negative_capacity() {
    let mut s = Sandbox::start().await;
    let capacity = ok(s.controller.get_capacity(pb::GetCapacityRequest::default()).await);
    assert!(capacity.available_capacity >= 0, "{capacity:?}");
    s.finish().await;
}

#[tokio::test]
async fn controller_expand_without_id_or_capacity_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let range = Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 });
    let requests = [
        (
            pb::ControllerExpandVolumeRequest { capacity_range: range, ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerExpandVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerExpandVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                capacity_range: range,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(
            code(s.controller.controller_expand_volume(request.clone()).await),
            expected,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn controller_expand_twice_grows_once_and_reports_the_new_capacity() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("expand").await;
    let request = pb::ControllerExpandVolumeRequest {
        volume_id: volume.volume_id.clone(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    };
    let first = ok(s.controller.controller_expand_volume(request.clone()).await);
    let second = ok(s.controller.controller_expand_volume(request).await);
    assert_eq!(first.capacity_bytes, 2 * GIB);
    assert_eq!(second.capacity_bytes, 2 * GIB);
    assert!(first.node_expansion_required, "a filesystem volume needs NodeExpandVolume");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_modify_without_id_or_parameters_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let parameters = HashMap::from([("type".to_string(), "fast".to_string())]);
    let requests = [
        (
            pb::ControllerModifyVolumeRequest {
                mutable_parameters: parameters.clone(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerModifyVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerModifyVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                mutable_parameters: HashMap::from([("colour".to_string(), "red".to_string())]),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerModifyVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                mutable_parameters: parameters,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(
            code(s.controller.controller_modify_volume(request.clone()).await),
            expected,
            "{request:?}"
        );
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Snapshots

#[tokio::test]
async fn create_snapshot_without_name_or_source_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-args").await;
    for request in [snapshot_request("", &volume.volume_id), snapshot_request("no-source", "")] {
        assert_eq!(
            code(s.controller.create_snapshot(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_of_an_unknown_volume_is_not_found() {
    let mut s = Sandbox::start().await;
    let request = snapshot_request("orphan", UNKNOWN_VOLUME);
    assert_eq!(code(s.controller.create_snapshot(request).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_twice_returns_the_same_snapshot_which_becomes_ready_with_a_creation_time() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-source").await;
    let first = s.create_snapshot("snap", &volume.volume_id).await;
    let second = s.create_snapshot("snap", &volume.volume_id).await;
    assert_eq!(first.snapshot_id, second.snapshot_id);
    assert_eq!(first.source_volume_id, volume.volume_id);
    assert!(first.creation_time.is_some(), "creation_time is required: {first:?}");
    let ready = s.wait_snapshot_ready(&first.snapshot_id).await;
    assert!(ready.creation_time.is_some());
    assert_eq!(ready.size_bytes, volume.capacity_bytes);
    assert_eq!(s.snapshot_ids().await, vec![first.snapshot_id.clone()]);
    s.delete_snapshot(&first.snapshot_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_with_a_name_taken_by_another_volume_is_already_exists() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("snap-a").await;
    let b = s.create_volume("snap-b").await;
    let snapshot = s.create_snapshot("shared-name", &a.volume_id).await;
    let request = snapshot_request("shared-name", &b.volume_id);
    assert_eq!(code(s.controller.create_snapshot(request).await), Code::AlreadyExists);
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&a.volume_id).await;
    s.delete_volume(&b.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_snapshot_without_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::DeleteSnapshotRequest::default();
    assert_eq!(code(s.controller.delete_snapshot(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn delete_snapshot_twice_and_of_an_unknown_id_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-delete").await;
    let snapshot = s.create_snapshot("snap-delete", &volume.volume_id).await;
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    let delete =
        pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    ok(s.controller.delete_snapshot(delete.clone()).await);
    // At once, while the cloud is still deleting it: the repeat must succeed too.
    ok(s.controller.delete_snapshot(delete).await);
    let unknown = pb::DeleteSnapshotRequest { snapshot_id: UNKNOWN_SNAPSHOT.into(), ..Default::default() };
    ok(s.controller.delete_snapshot(unknown).await);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn get_snapshot_without_id_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let get = |id: &str| pb::GetSnapshotRequest { snapshot_id: id.into(), ..Default::default() };
    assert_eq!(code(s.controller.get_snapshot(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.controller.get_snapshot(get(UNKNOWN_SNAPSHOT)).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_with_negative_max_entries_is_invalid_argument_and_a_bad_token_aborted() {
    let mut s = Sandbox::start().await;
    let negative = pb::ListSnapshotsRequest { max_entries: -1, ..Default::default() };
    assert_eq!(code(s.controller.list_snapshots(negative).await), Code::InvalidArgument);
    let bad = pb::ListSnapshotsRequest { starting_token: "not a token!".into(), ..Default::default() };
    assert_eq!(code(s.controller.list_snapshots(bad).await), Code::Aborted);
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_filters_by_id_and_source_and_an_unknown_filter_gives_an_empty_list() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("list-a").await;
    let b = s.create_volume("list-b").await;
    let sa = s.create_snapshot("list-sa", &a.volume_id).await;
    let sb = s.create_snapshot("list-sb", &b.volume_id).await;
    let ids = |r: pb::ListSnapshotsResponse| -> Vec<String> {
        r.entries.into_iter().map(|e| e.snapshot.unwrap().snapshot_id).collect()
    };
    let by_id = pb::ListSnapshotsRequest { snapshot_id: sa.snapshot_id.clone(), ..Default::default() };
    assert_eq!(ids(ok(s.controller.list_snapshots(by_id).await)), vec![sa.snapshot_id.clone()]);
    let by_source = pb::ListSnapshotsRequest { source_volume_id: b.volume_id.clone(), ..Default::default() };
    assert_eq!(ids(ok(s.controller.list_snapshots(by_source).await)), vec![sb.snapshot_id.clone()]);
    let unknown_id = pb::ListSnapshotsRequest { snapshot_id: UNKNOWN_SNAPSHOT.into(), ..Default::default() };
    assert!(ids(ok(s.controller.list_snapshots(unknown_id).await)).is_empty());
    let unknown_source =
        pb::ListSnapshotsRequest { source_volume_id: UNKNOWN_VOLUME.into(), ..Default::default() };
    assert!(ids(ok(s.controller.list_snapshots(unknown_source).await)).is_empty());
    for id in [&sa.snapshot_id, &sb.snapshot_id] {
        s.delete_snapshot(id).await;
    }
    for id in [&a.volume_id, &b.volume_id] {
        s.delete_volume(id).await;
    }
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_pages_honour_max_entries_and_cover_every_snapshot_once() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("list-pages").await;
    let mut made = HashSet::new();
    for i in 0..5 {
        made.insert(s.create_snapshot(&format!("page-{i}"), &volume.volume_id).await.snapshot_id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request =
            pb::ListSnapshotsRequest { max_entries: 2, starting_token: token.clone(), ..Default::default() };
        let page = ok(s.controller.list_snapshots(request).await);
        assert!(page.entries.len() <= 2, "max_entries 2, got {}", page.entries.len());
        seen.extend(page.entries.into_iter().map(|e| e.snapshot.unwrap().snapshot_id));
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen.len(), made.len(), "each snapshot exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), made);
    assert!(pages >= 3, "5 snapshots in pages of 2 take 3 pages, took {pages}");
    for id in &made {
        s.delete_snapshot(id).await;
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_with_snapshots_is_failed_precondition_and_names_them() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("has-snapshots").await;
    let snapshot = s.create_snapshot("pinning", &volume.volume_id).await;
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    let status = s.controller.delete_volume(delete).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains(&snapshot.snapshot_id), "{}", status.message());
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Group snapshots

#[tokio::test]
async fn group_snapshot_rpcs_validate_ids_and_unknown_group_is_not_found() {
    let mut s = Sandbox::start().await;
    let no_name = pb::CreateVolumeGroupSnapshotRequest {
        source_volume_ids: vec![UNKNOWN_VOLUME.into()],
        ..Default::default()
    };
    assert_eq!(code(s.group.create_volume_group_snapshot(no_name).await), Code::InvalidArgument);
    let no_sources = pb::CreateVolumeGroupSnapshotRequest { name: "g".into(), ..Default::default() };
    assert_eq!(code(s.group.create_volume_group_snapshot(no_sources).await), Code::InvalidArgument);
    let unknown_source = pb::CreateVolumeGroupSnapshotRequest {
        name: "g".into(),
        source_volume_ids: vec![UNKNOWN_VOLUME.into()],
        ..Default::default()
    };
    assert_eq!(code(s.group.create_volume_group_snapshot(unknown_source).await), Code::NotFound);
    let get =
        |id: &str| pb::GetVolumeGroupSnapshotRequest { group_snapshot_id: id.into(), ..Default::default() };
    assert_eq!(code(s.group.get_volume_group_snapshot(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.group.get_volume_group_snapshot(get(UNKNOWN_SNAPSHOT)).await), Code::NotFound);
    let delete = pb::DeleteVolumeGroupSnapshotRequest::default();
    assert_eq!(code(s.group.delete_volume_group_snapshot(delete).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn group_snapshot_twice_returns_the_same_group_and_delete_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("group-a").await;
    let b = s.create_volume("group-b").await;
    let request = pb::CreateVolumeGroupSnapshotRequest {
        name: "group".into(),
        source_volume_ids: vec![a.volume_id.clone(), b.volume_id.clone()],
        ..Default::default()
    };
    let first = ok(s.group.create_volume_group_snapshot(request.clone()).await).group_snapshot.unwrap();
    let second = ok(s.group.create_volume_group_snapshot(request).await).group_snapshot.unwrap();
    assert_eq!(first.group_snapshot_id, second.group_snapshot_id);
    assert_eq!(first.snapshots.len(), 2);
    assert!(first.creation_time.is_some());
    for snapshot in &first.snapshots {
        assert_eq!(snapshot.group_snapshot_id, first.group_snapshot_id);
        assert!(snapshot.creation_time.is_some());
    }
    let delete = pb::DeleteVolumeGroupSnapshotRequest {
        group_snapshot_id: first.group_snapshot_id.clone(),
        snapshot_ids: first.snapshots.iter().map(|s| s.snapshot_id.clone()).collect(),
        ..Default::default()
    };
    ok(s.group.delete_volume_group_snapshot(delete.clone()).await);
    ok(s.group.delete_volume_group_snapshot(delete).await);
    for id in [&a.volume_id, &b.volume_id] {
        s.delete_volume(id).await;
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Node: argument validation (no root needed: requests are refused before any host work)

#[tokio::test]
async fn node_get_info_names_the_node_its_limit_and_its_topology() {
    let mut s = Sandbox::start().await;
    let info = ok(s.node.node_get_info(pb::NodeGetInfoRequest {}).await);
    assert!(!info.node_id.is_empty());
    assert!(info.max_volumes_per_node > 0);
    let topology = info.accessible_topology.expect("VOLUME_ACCESSIBILITY_CONSTRAINTS is advertised");
    assert!(!topology.segments.is_empty());
    s.finish().await;
}

#[tokio::test]
async fn node_stage_without_volume_id_staging_path_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeStageVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    };
    let requests = [
        pb::NodeStageVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeStageVolumeRequest { staging_target_path: String::new(), ..full.clone() },
        pb::NodeStageVolumeRequest { staging_target_path: "relative/path".into(), ..full.clone() },
        pb::NodeStageVolumeRequest { volume_capability: None, ..full.clone() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_stage_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_unstage_without_volume_id_or_staging_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeUnstageVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
    };
    let requests = [
        pb::NodeUnstageVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeUnstageVolumeRequest { staging_target_path: String::new(), ..full },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_unstage_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_publish_without_volume_id_paths_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodePublishVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
        target_path: s.state.join("target").display().to_string(),
        volume_capability: Some(mount_capability()),
        ..Default::default()
    };
    let requests = [
        pb::NodePublishVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodePublishVolumeRequest { target_path: String::new(), ..full.clone() },
        // STAGE_UNSTAGE_VOLUME is advertised, so a mount publish needs the staging path.
        pb::NodePublishVolumeRequest { staging_target_path: String::new(), ..full.clone() },
        pb::NodePublishVolumeRequest { volume_capability: None, ..full.clone() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_publish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_unpublish_without_volume_id_or_target_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeUnpublishVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        target_path: s.state.join("target").display().to_string(),
    };
    let requests = [
        pb::NodeUnpublishVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeUnpublishVolumeRequest { target_path: String::new(), ..full },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_unpublish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_get_volume_stats_without_arguments_is_invalid_argument_and_a_missing_path_not_found() {
    let mut s = Sandbox::start().await;
    let missing = s.state.join("no-such-path").display().to_string();
    let requests = [
        (
            pb::NodeGetVolumeStatsRequest { volume_path: missing.clone(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::NodeGetVolumeStatsRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::NodeGetVolumeStatsRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                volume_path: missing,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(code(s.node.node_get_volume_stats(request.clone()).await), expected, "{request:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn node_expand_without_volume_id_or_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let requests = [
        pb::NodeExpandVolumeRequest { volume_path: "/tmp".into(), ..Default::default() },
        pb::NodeExpandVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_expand_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Node: the volume lifecycle (root: loop devices and mounts)

/// Needs root for loop devices and mounts: fails under CI, says it skipped otherwise.
fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root, and CI runs as root");
    eprintln!("SKIPPED {test}: needs root (loop devices and mounts)");
    false
}

/// Stages and publishes twice, checks the target, then unpublishes and unstages twice.
async fn node_lifecycle_twice(s: &mut Sandbox, capability: pb::VolumeCapability, check: impl Fn(&Path)) {
    let name = if capability::is_block(&capability) { "node-block" } else { "node-mount" };
    let request =
        pb::CreateVolumeRequest { volume_capabilities: vec![capability.clone()], ..create_request(name) };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    let node = s.node_id.clone();
    let publish = pb::ControllerPublishVolumeRequest {
        volume_capability: Some(capability.clone()),
        ..publish_request(&volume.volume_id, &node)
    };
    let context = ok(s.controller.controller_publish_volume(publish).await).publish_context;
    let pods = s.state.join("kubelet");
    let staging = pods.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // The CO creates the target's parent; the plugin creates the target itself.
    let target = pods.join("pod").join("volume");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let stage = pb::NodeStageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context.clone(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(capability.clone()),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    };
    ok(s.node.node_stage_volume(stage.clone()).await);
    ok(s.node.node_stage_volume(stage).await);
    let publish = pb::NodePublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context,
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(capability),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    };
    ok(s.node.node_publish_volume(publish.clone()).await);
    ok(s.node.node_publish_volume(publish).await);
    check(&target);
    let stats = pb::NodeGetVolumeStatsRequest {
        volume_id: volume.volume_id.clone(),
        volume_path: target.display().to_string(),
        ..Default::default()
    };
    let stats = ok(s.node.node_get_volume_stats(stats).await);
    assert!(!stats.usage.is_empty(), "GET_VOLUME_STATS is advertised: {stats:?}");
    assert!(!stats.volume_condition.expect("VOLUME_CONDITION is advertised").abnormal);
    let unpublish = pb::NodeUnpublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        target_path: target.display().to_string(),
    };
    ok(s.node.node_unpublish_volume(unpublish.clone()).await);
    ok(s.node.node_unpublish_volume(unpublish).await);
    assert!(!target.exists(), "NodeUnpublishVolume removes the target it created");
    let unstage = pb::NodeUnstageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        staging_target_path: staging.display().to_string(),
    };
    ok(s.node.node_unstage_volume(unstage.clone()).await);
    ok(s.node.node_unstage_volume(unstage).await);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    s.delete_volume(&volume.volume_id).await;
}

mod capability {
    use super::{AccessType, pb};

    pub fn is_block(capability: &pb::VolumeCapability) -> bool {
        matches!(capability.access_type, Some(AccessType::Block(_)))
    }
}

#[tokio::test]
async fn node_stage_and_publish_twice_of_a_mount_volume_place_a_mounted_directory_at_the_target() {
    if !root_or_skip("node_stage_and_publish_twice_of_a_mount_volume_place_a_mounted_directory_at_the_target")
    {
        return;
    }
    let mut s = Sandbox::start().await;
    node_lifecycle_twice(&mut s, mount_capability(), |target| {
        assert!(target.is_dir(), "a mount volume's target is a directory");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(&*target.display().to_string()))
            .unwrap_or_else(|| panic!("{} is not a mount point:\n{mounts}", target.display()));
        assert!(line.contains(" - ext4 "), "{line}");
    })
    .await;
    s.finish().await;
}

#[tokio::test]
async fn node_stage_and_publish_twice_of_a_block_volume_place_the_device_at_a_file_target() {
    if !root_or_skip("node_stage_and_publish_twice_of_a_block_volume_place_the_device_at_a_file_target") {
        return;
    }
    let mut s = Sandbox::start().await;
    node_lifecycle_twice(&mut s, block_capability(), |target| {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(target).unwrap().file_type();
        assert!(kind.is_block_device(), "a raw block target is the device itself, got {kind:?}");
    })
    .await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Clean-up

#[tokio::test]
async fn sigterm_removes_published_volumes_and_snapshots_the_sandbox_made() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("left-attached").await;
    let node = s.node_id.clone();
    ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    s.create_snapshot("left-snapshot", &volume.volume_id).await;
    s.create_volume("left-alone").await;
    assert_eq!(s.volume_ids().await.len(), 2);
    // stop() checks that the emulator's volume and snapshot stores are empty afterwards.
    s.stop().await;
}
