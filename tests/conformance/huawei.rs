//! The cloud-dependent rules on the emulator's Huawei side (EVS and ECS with AK/SK), through a
//! controller configured with only that cloud: deletes at once, what a delete hides, mutable
//! parameters, and capabilities that match what EVS can do (no clones, no group snapshots).

use cinder_evs_csi::csi::pb::controller_service_capability::rpc::Type as Rpc;
use testkit::cloud::{HuaweiAuth, emulator, huawei_yaml};

use super::*;

/// A controller whose only cloud is the emulator's Huawei side.
struct Evs {
    driver: Option<Driver>,
    cloud: testkit::emulator::TestCloud,
    controller: ControllerClient<Channel>,
    identity: IdentityClient<Channel>,
    group: GroupControllerClient<Channel>,
}

impl Evs {
    async fn start(latency: Duration) -> Self {
        let cloud = emulator(|config| config.latency = latency).await;
        let config = cloud.dir.path().join("clouds.yaml");
        std::fs::write(&config, huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), "")).unwrap();
        let (driver, channel) =
            testkit::start_controller(cloud.dir.path(), &config, &[], Duration::from_secs(20)).await;
        Self {
            driver: Some(driver),
            cloud,
            controller: ControllerClient::new(channel.clone()),
            identity: IdentityClient::new(channel.clone()),
            group: GroupControllerClient::new(channel),
        }
    }

    /// Kills the controller and starts a new one on the same cloud: all it knew is gone.
    async fn restart_controller(&mut self) {
        drop(self.driver.take());
        let dir = self.cloud.dir.path();
        let _ = std::fs::remove_file(dir.join("csi.sock"));
        let (driver, channel) =
            testkit::start_controller(dir, &dir.join("clouds.yaml"), &[], Duration::from_secs(20)).await;
        self.driver = Some(driver);
        self.controller = ControllerClient::new(channel.clone());
        self.identity = IdentityClient::new(channel.clone());
        self.group = GroupControllerClient::new(channel);
    }

    async fn create_volume(&mut self, name: &str) -> pb::Volume {
        ok(self.controller.create_volume(evs_request(name)).await).volume.unwrap()
    }

    async fn volume_ids(&mut self) -> Vec<String> {
        listed_volume_ids(&mut self.controller).await
    }

    async fn snapshot_ids(&mut self) -> Vec<String> {
        listed_snapshot_ids(&mut self.controller).await
    }

    /// Checks that the test removed what it made.
    async fn finish(mut self) {
        nothing_left_behind(&mut self.controller).await;
    }
}

/// An EVS disk: 10 GiB of SSD in the emulator's zone.
fn evs_request(name: &str) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        parameters: HashMap::from([
            ("type".to_string(), "SSD".to_string()),
            ("availability".to_string(), "nova".to_string()),
        ]),
        ..create_request(name, 1)
    }
}

async fn evs_create_snapshot_then_delete_both_at_once(latency: Duration) {
    let mut s = Evs::start(latency).await;
    let volume = s.create_volume("evs-sequence-source").await;
    let snapshot =
        ok(s.controller.create_snapshot(snapshot_request("evs-sequence-snapshot", &volume.volume_id)).await)
            .snapshot
            .unwrap();
    assert!(!snapshot.ready_to_use, "the snapshot is still being taken: the race this test is about");
    let delete =
        pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    ok(s.controller.delete_snapshot(delete).await);
    assert!(!s.snapshot_ids().await.contains(&snapshot.snapshot_id), "a deleted snapshot is not listed");
    let get = pb::GetSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.get_snapshot(get).await), Code::NotFound);
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    assert!(!s.volume_ids().await.contains(&volume.volume_id), "a deleted disk is not listed");
    let get = pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() };
    assert_eq!(code(s.controller.controller_get_volume(get).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn evs_create_snapshot_then_delete_it_and_its_source_at_once_each_succeed_in_one_call() {
    evs_create_snapshot_then_delete_both_at_once(LATENCY).await;
}

#[tokio::test]
async fn evs_create_snapshot_then_delete_it_and_its_source_at_once_each_succeed_in_one_call_at_2s() {
    evs_create_snapshot_then_delete_both_at_once(SLOW).await;
}

#[tokio::test]
async fn evs_controller_capabilities_omit_clone_volume_and_a_clone_is_invalid_argument() {
    let mut s = Evs::start(LATENCY).await;
    let caps: HashSet<Rpc> =
        ok(s.controller.controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {}).await)
            .capabilities
            .into_iter()
            .filter_map(|c| match c.r#type {
                Some(pb::controller_service_capability::Type::Rpc(r)) => Rpc::try_from(r.r#type).ok(),
                None => None,
            })
            .collect();
    assert!(!caps.contains(&Rpc::CloneVolume), "EVS cannot clone a disk: {caps:?}");
    assert!(caps.contains(&Rpc::CreateDeleteSnapshot) && caps.contains(&Rpc::ExpandVolume), "{caps:?}");
    let source = s.create_volume("evs-clone-source").await;
    let clone = pb::CreateVolumeRequest {
        volume_content_source: Some(pb::VolumeContentSource {
            r#type: Some(pb::volume_content_source::Type::Volume(pb::volume_content_source::VolumeSource {
                volume_id: source.volume_id.clone(),
            })),
        }),
        ..evs_request("evs-clone")
    };
    assert_eq!(code(s.controller.create_volume(clone).await), Code::InvalidArgument);
    let delete = pb::DeleteVolumeRequest { volume_id: source.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    s.finish().await;
}

#[tokio::test]
async fn evs_plugin_capabilities_omit_the_group_controller_whose_rpcs_are_unimplemented() {
    use pb::plugin_capability::service::Type;
    let mut s = Evs::start(LATENCY).await;
    let services: HashSet<Type> =
        ok(s.identity.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}).await)
            .capabilities
            .into_iter()
            .filter_map(|c| match c.r#type {
                Some(pb::plugin_capability::Type::Service(svc)) => Type::try_from(svc.r#type).ok(),
                _ => None,
            })
            .collect();
    assert!(services.contains(&Type::ControllerService));
    assert!(!services.contains(&Type::GroupControllerService), "EVS has no group snapshots: {services:?}");
    let get = pb::GetVolumeGroupSnapshotRequest {
        group_snapshot_id: UNKNOWN_SNAPSHOT.into(),
        ..Default::default()
    };
    assert_eq!(code(s.group.get_volume_group_snapshot(get).await), Code::Unimplemented);
    s.finish().await;
}

#[tokio::test]
async fn evs_create_volume_with_invalid_mutable_parameters_is_invalid_argument_and_an_empty_modify_succeeds()
{
    let mut s = Evs::start(LATENCY).await;
    let bad = pb::CreateVolumeRequest {
        mutable_parameters: HashMap::from([("iops".to_string(), "lots".to_string())]),
        ..evs_request("evs-bad-mutable")
    };
    assert_eq!(code(s.controller.create_volume(bad).await), Code::InvalidArgument);
    assert!(s.volume_ids().await.is_empty(), "a refused create leaves nothing behind");
    let volume = s.create_volume("evs-modified-with-nothing").await;
    let modify =
        pb::ControllerModifyVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.controller_modify_volume(modify).await);
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    s.finish().await;
}

#[tokio::test]
async fn evs_controller_publish_with_another_readonly_flag_is_already_exists_even_after_a_controller_restart()
{
    let mut s = Evs::start(LATENCY).await;
    let volume = s.create_volume("evs-published-twice").await;
    let node = s.cloud.handle.this_host_server_id().expect("the emulator runs this host as a server");
    let first = pb::ControllerPublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        node_id: node.clone(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    ok(s.controller.controller_publish_volume(first.clone()).await);
    s.restart_controller().await;
    let readonly = pb::ControllerPublishVolumeRequest { readonly: true, ..first.clone() };
    assert_eq!(code(s.controller.controller_publish_volume(readonly).await), Code::AlreadyExists);
    ok(s.controller.controller_publish_volume(first).await);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    s.finish().await;
}
