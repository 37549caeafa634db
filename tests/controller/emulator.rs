//! The controller binary over its unix socket, as the sidecars drive it, against the emulator:
//! what needs Nova (attach, detach), fault injection or several clouds. The rest of the controller
//! suite runs on the emulator or a real OpenStack alike: tests/controller/suite.rs.

use std::collections::HashMap;
use std::time::Duration;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use testkit::Driver;
use testkit::cloud::{Auth, TestCloud, clouds_yaml, count, emulator};
use testkit::requests::{GIB, create, mount_cap, publish_request};
use tonic::Code;
use tonic::transport::Channel;

struct Setup {
    cloud: TestCloud,
    _driver: Driver,
    client: ControllerClient<Channel>,
    server_id: String,
}

async fn setup() -> Setup {
    setup_with(|cloud| clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""), &[], |_| {}).await
}

/// A controller on its own emulator, configured by `make_yaml`, with extra flags and an
/// emulator `tweak`.
async fn setup_with(
    make_yaml: impl FnOnce(&TestCloud) -> String,
    extra_args: &[&str],
    tweak: impl FnOnce(&mut cinder_evs_emulator::EmulatorConfig),
) -> Setup {
    testkit::secrets::register("the CSI secret in CreateVolume", "never-logged-secret");
    let cloud = emulator(|c| {
        c.default_quotas.insert("volumes".into(), -1);
        c.default_quotas.insert("gigabytes".into(), -1);
        tweak(c);
    })
    .await;
    let config = cloud.dir.path().join("clouds.yaml");
    std::fs::write(&config, make_yaml(&cloud)).unwrap();
    let (driver, channel) =
        testkit::start_controller(cloud.dir.path(), &config, extra_args, Duration::from_secs(20)).await;
    let server_id = cloud.handle.this_host_server_id().unwrap();
    Setup { cloud, _driver: driver, client: ControllerClient::new(channel), server_id }
}

fn volumes_named(cloud: &TestCloud, name: &str) -> usize {
    cloud
        .handle
        .cloud()
        .read(|w| w.stores.values().flat_map(|s| s.volumes.values()).filter(|v| v.name == name).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_distinct_creates_shares_its_name_lookups() {
    use cinder_evs_emulator::faults::{FaultAction, FaultRule};
    let s = setup().await;
    // A slow list makes sure the burst arrives while the first lookup is still out.
    s.cloud.handle.cloud().faults().add_rule(FaultRule {
        method: Some("GET".into()),
        route: Some("/volume/v3/{project_id}/volumes/detail".into()),
        action: FaultAction::Slow { delay_ms: 300 },
        rate: 1.0,
        count: None,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let mut client = s.client.clone();
        tasks.spawn(async move { client.create_volume(create(&format!("pvc-burst-{i}"), 1)).await });
    }
    for result in tasks.join_all().await {
        result.expect("every create succeeds");
    }
    for i in 0..40 {
        assert_eq!(volumes_named(&s.cloud, &format!("pvc-burst-{i}")), 1, "pvc-burst-{i}");
    }
    let lists = count(&s.cloud.handle, "GET", "{project_id}/volumes/detail");
    assert!(lists < 20, "40 creates took {lists} volume listings (lookups and polls together)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_lifecycle_create_publish_unpublish_delete() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-life", 2)).await.unwrap().into_inner().volume.unwrap();
    assert_eq!(volume.capacity_bytes, 2 * GIB);
    assert_eq!(volume.accessible_topology[0].segments["topology.kubernetes.io/zone"], "nova");
    assert_eq!(volume.accessible_topology[0].segments["topology.csi.example.io/zone"], "nova");
    let metadata = s.cloud.handle.cloud().read(|w| {
        w.stores.values().find_map(|s| s.volumes.get(&volume.volume_id)).map(|v| v.metadata.clone()).unwrap()
    });
    assert_eq!(metadata["cinder-evs-csi/cluster-id"], "test-cluster");
    assert_eq!(metadata["cinder-evs-csi/pvc-name"], "data");

    let publish = pb::ControllerPublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        node_id: s.server_id.clone(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let context = c.controller_publish_volume(publish.clone()).await.unwrap().into_inner().publish_context;
    assert_eq!(context["volumeId"], volume.volume_id);
    assert!(context["devicePath"].starts_with("/dev/vd"), "{context:?}");
    assert_eq!(c.controller_publish_volume(publish).await.unwrap().into_inner().publish_context, context);

    let got = c
        .controller_get_volume(pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() })
        .await
        .unwrap();
    assert_eq!(got.into_inner().status.unwrap().published_node_ids, vec![s.server_id.clone()]);

    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(c.delete_volume(delete.clone()).await.unwrap_err().code(), Code::FailedPrecondition);

    let unpublish = pb::ControllerUnpublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        node_id: s.server_id.clone(),
        ..Default::default()
    };
    c.controller_unpublish_volume(unpublish.clone()).await.unwrap();
    c.controller_unpublish_volume(unpublish).await.expect("unpublish is idempotent");
    c.delete_volume(delete.clone()).await.unwrap();
    c.delete_volume(delete).await.expect("deleting a deleted volume succeeds");
    let missing = publish_request("00000000-0000-0000-0000-000000000000", &s.server_id);
    assert_eq!(c.controller_publish_volume(missing).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cinder_volume_is_published_without_a_wwn() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-no-wwn", 1)).await.unwrap().into_inner().volume.unwrap();
    let publish = publish_request(&volume.volume_id, &s.server_id);
    let context = c.controller_publish_volume(publish).await.unwrap().into_inner().publish_context;
    assert_eq!(context["volumeId"], volume.volume_id);
    assert!(!context.contains_key("wwn"), "Cinder reports no WWN: {context:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_stuck_attaching_is_detached_so_the_retry_starts_clean() {
    use cinder_evs_emulator::faults::{TransitionEffect, TransitionRule};
    let s = setup_with(
        |c| clouds_yaml(&c.handle.demo(), Auth::PasswordByName, ""),
        &["--attach-timeout", "1s"],
        |_| {},
    )
    .await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-stuck", 1)).await.unwrap().into_inner().volume.unwrap();
    s.cloud.handle.cloud().faults().add_transition(TransitionRule {
        resource: "volume".into(),
        status: "attaching".into(),
        id: None,
        effect: TransitionEffect::Stuck,
        count: None,
    });
    let err =
        c.controller_publish_volume(publish_request(&volume.volume_id, &s.server_id)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{}", err.message());
    s.cloud.handle.cloud().faults().set_transitions(Vec::new());
    let context =
        c.controller_publish_volume(publish_request(&volume.volume_id, &s.server_id)).await.unwrap();
    assert_eq!(context.into_inner().publish_context["volumeId"], volume.volume_id);
    let attachments = s.cloud.handle.cloud().read(|w| w.volume(&volume.volume_id).unwrap().attachments.len());
    assert_eq!(attachments, 1, "one attachment, not a leftover plus a new one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_past_the_node_attach_limit_is_resource_exhausted() {
    let s = setup_with(
        |c| {
            clouds_yaml(
                &c.handle.demo(),
                Auth::PasswordByName,
                "    block_storage:\n      node_volume_attach_limit: 1\n",
            )
        },
        &[],
        |_| {},
    )
    .await;
    let mut c = s.client.clone();
    let first = c.create_volume(create("pvc-limit-1", 1)).await.unwrap().into_inner().volume.unwrap();
    let second = c.create_volume(create("pvc-limit-2", 1)).await.unwrap().into_inner().volume.unwrap();
    c.controller_publish_volume(publish_request(&first.volume_id, &s.server_id)).await.unwrap();
    let err =
        c.controller_publish_volume(publish_request(&second.volume_id, &s.server_id)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_class_can_pick_another_configured_cloud() {
    let s = setup_with(
        |c| {
            let demo = clouds_yaml(&c.handle.demo(), Auth::PasswordByName, "");
            let admin = clouds_yaml(&c.handle.admin(), Auth::PasswordByName, "");
            format!("{demo}{}", admin.replacen("clouds:\n  test:", "  other:", 1))
        },
        &["--cloud", "test"],
        |_| {},
    )
    .await;
    let mut c = s.client.clone();
    let mut request = create("pvc-other", 1);
    request.parameters.insert("cloud".into(), "other".into());
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    let (prefix, id) = volume.volume_id.split_once(':').expect("a non-default cloud's volume id names it");
    assert_eq!(prefix, "other");
    let admin_project = s.cloud.handle.admin().project_id;
    let owner = s.cloud.handle.cloud().read(|w| w.volume(id).unwrap().project_id.clone());
    assert_eq!(owner, admin_project, "created with the other cloud's credentials");
    c.delete_volume(pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() })
        .await
        .unwrap();
    let mut unknown = create("pvc-nowhere", 1);
    unknown.parameters.insert("cloud".into(), "nowhere".into());
    assert_eq!(c.create_volume(unknown).await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignoring_the_volume_zone_reports_the_compute_zone_asked_for() {
    let s = setup_with(
        |c| {
            clouds_yaml(
                &c.handle.demo(),
                Auth::PasswordByName,
                "    block_storage:\n      ignore_volume_az: true\n",
            )
        },
        &[],
        |_| {},
    )
    .await;
    let mut c = s.client.clone();
    let mut request = create("pvc-az", 1);
    request.accessibility_requirements = Some(pb::TopologyRequirement {
        requisite: vec![pb::Topology {
            segments: HashMap::from([(
                "topology.kubernetes.io/zone".to_string(),
                "compute-az-1".to_string(),
            )]),
        }],
        preferred: vec![],
    });
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    assert_eq!(volume.accessible_topology[0].segments["topology.kubernetes.io/zone"], "compute-az-1");
    let zone =
        s.cloud.handle.cloud().read(|w| w.volume(&volume.volume_id).unwrap().availability_zone.clone());
    assert_eq!(zone, "nova", "the cloud chose its own volume zone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_operation_on_a_busy_volume_is_aborted() {
    use cinder_evs_emulator::faults::{TransitionEffect, TransitionRule};
    let s = setup_with(
        |c| clouds_yaml(&c.handle.demo(), Auth::PasswordByName, ""),
        &["--attach-timeout", "2s"],
        |_| {},
    )
    .await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-busy", 1)).await.unwrap().into_inner().volume.unwrap();
    s.cloud.handle.cloud().faults().add_transition(TransitionRule {
        resource: "volume".into(),
        status: "attaching".into(),
        id: None,
        effect: TransitionEffect::Stuck,
        count: None,
    });
    let mut publisher = s.client.clone();
    let request = publish_request(&volume.volume_id, &s.server_id);
    let publish = tokio::spawn(async move { publisher.controller_publish_volume(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    let err = c.delete_volume(delete).await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{}", err.message());
    assert!(err.message().contains("ControllerPublishVolume"), "{}", err.message());
    let _ = publish.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_for_delete_the_volume_is_gone_when_delete_returns() {
    let s = setup_with(
        |c| clouds_yaml(&c.handle.demo(), Auth::PasswordByName, ""),
        &["--wait-for-delete"],
        |c| {
            c.transition_latency.insert("volume.deleting".into(), Duration::from_millis(300));
        },
    )
    .await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-wait-delete", 1)).await.unwrap().into_inner().volume.unwrap();
    c.delete_volume(pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        volumes_named(&s.cloud, "pvc-wait-delete"),
        0,
        "the cloud finished deleting before the answer"
    );
}

fn fail(resource: &str, status: &str) -> cinder_evs_emulator::faults::TransitionRule {
    cinder_evs_emulator::faults::TransitionRule {
        resource: resource.into(),
        status: status.into(),
        id: None,
        effect: cinder_evs_emulator::faults::TransitionEffect::Fail,
        count: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_the_cloud_fails_to_create_reports_cinders_message() {
    let s = setup().await;
    let mut c = s.client.clone();
    s.cloud.handle.cloud().faults().add_transition(fail("volume", "creating"));
    let err = c.create_volume(create("pvc-broken", 1)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{}", err.message());
    assert!(
        err.message().contains("create volume from backend storage:Driver failed to create the volume."),
        "Cinder's user message: {}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_the_cloud_fails_to_extend_reports_cinders_message() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-no-grow", 1)).await.unwrap().into_inner().volume.unwrap();
    s.cloud.handle.cloud().faults().add_transition(fail("volume", "extending"));
    let err = c
        .controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: volume.volume_id.clone(),
            capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{}", err.message());
    assert!(err.message().contains("error_extending"), "{}", err.message());
    assert!(
        err.message().contains("extend volume:Volume Driver failed to extend volume."),
        "Cinder's user message: {}",
        err.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_the_cloud_fails_to_take_reports_cinders_message() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-snap-fails", 1)).await.unwrap().into_inner().volume.unwrap();
    s.cloud.handle.cloud().faults().add_transition(fail("snapshot", "creating"));
    let request = pb::CreateSnapshotRequest {
        name: "snap-fails".into(),
        source_volume_id: volume.volume_id.clone(),
        ..Default::default()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let err = loop {
        match c.create_snapshot(request.clone()).await {
            Err(status) => break status,
            Ok(reply) => assert!(!reply.into_inner().snapshot.unwrap().ready_to_use),
        }
        assert!(std::time::Instant::now() < deadline, "the snapshot never failed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        err.message().contains("create snapshot:Snapshot failed to create."),
        "Cinder's user message: {}",
        err.message()
    );
}
