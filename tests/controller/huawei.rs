//! The controller binary over its unix socket against the emulator's Huawei side, configured as
//! a Huawei cloud with AK/SK: create, publish to this host's server, unpublish, delete.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use testkit::Driver;
use testkit::cloud::{HuaweiAuth, count, emulator, huawei_yaml};
use testkit::http_get;
use testkit::requests::{GIB, mount_cap};
use tonic::Code;

/// A controller on the emulator's Huawei side, ready.
async fn controller(
    cloud: &testkit::emulator::TestCloud,
) -> (Driver, ControllerClient<tonic::transport::Channel>) {
    controller_with(cloud, &[]).await
}

/// [`controller`] with extra flags.
async fn controller_with(
    cloud: &testkit::emulator::TestCloud,
    extra: &[&str],
) -> (Driver, ControllerClient<tonic::transport::Channel>) {
    let config = cloud.dir.path().join("clouds.yaml");
    std::fs::write(&config, huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), "")).unwrap();
    let (driver, channel) =
        testkit::start_controller(cloud.dir.path(), &config, extra, Duration::from_secs(20)).await;
    (driver, ControllerClient::new(channel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huawei_volume_is_created_published_unpublished_and_deleted() {
    let cloud = emulator(|_| {}).await;
    let (_driver, mut c) = controller(&cloud).await;
    let server_id = cloud.handle.this_host_server_id().unwrap();

    let request = pb::CreateVolumeRequest {
        name: "pvc-hw".into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([
            ("type".to_string(), "SSD".to_string()),
            ("availability".to_string(), "nova".to_string()),
        ]),
        ..Default::default()
    };
    let volume = c.create_volume(request.clone()).await.unwrap().into_inner().volume.unwrap();
    assert_eq!(volume.capacity_bytes, 10 * GIB);
    assert_eq!(count(&cloud.handle, "POST", "/evs/v2.1/"), 1, "created through EVS");
    assert_eq!(
        c.create_volume(request).await.unwrap().into_inner().volume.unwrap().volume_id,
        volume.volume_id,
        "a repeated create returns the same disk"
    );

    let publish = pb::ControllerPublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        node_id: server_id.clone(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let context = c.controller_publish_volume(publish.clone()).await.unwrap().into_inner().publish_context;
    assert_eq!(context["volumeId"], volume.volume_id);
    assert!(!context.contains_key("devicePath"), "the node finds an EVS disk by its serial: {context:?}");
    assert_eq!(count(&cloud.handle, "POST", "attachvolume"), 1, "attached through ECS");
    assert_eq!(c.controller_publish_volume(publish).await.unwrap().into_inner().publish_context, context);

    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(c.delete_volume(delete.clone()).await.unwrap_err().code(), Code::FailedPrecondition);

    let unpublish = pb::ControllerUnpublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        node_id: server_id.clone(),
        ..Default::default()
    };
    c.controller_unpublish_volume(unpublish.clone()).await.unwrap();
    c.controller_unpublish_volume(unpublish).await.expect("unpublish is idempotent");
    c.delete_volume(delete.clone()).await.unwrap();
    c.delete_volume(delete).await.expect("deleting a deleted volume succeeds");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while cloud.handle.cloud().read(|w| w.volume(&volume.volume_id).is_some()) {
        assert!(std::time::Instant::now() < deadline, "the disk never went");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_distinct_creates_shares_its_disk_name_lookups() {
    use cinder_evs_emulator::faults::{FaultAction, FaultRule};
    let cloud = emulator(|c| {
        c.default_quotas.insert("volumes".into(), -1);
        c.default_quotas.insert("gigabytes".into(), -1);
    })
    .await;
    let (_driver, c) = controller(&cloud).await;
    // A slow list makes sure the burst arrives while the first lookup is still out.
    cloud.handle.cloud().faults().add_rule(FaultRule {
        method: Some("GET".into()),
        route: Some("/evs/v2/{project_id}/cloudvolumes/detail".into()),
        action: FaultAction::Slow { delay_ms: 300 },
        rate: 1.0,
        count: None,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut c = c.clone();
        tasks.spawn(async move {
            let request = pb::CreateVolumeRequest {
                name: format!("pvc-hw-burst-{i}"),
                capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
                volume_capabilities: vec![mount_cap()],
                parameters: HashMap::from([("availability".to_string(), "nova".to_string())]),
                ..Default::default()
            };
            c.create_volume(request).await
        });
    }
    for result in tasks.join_all().await {
        result.expect("every create succeeds");
    }
    assert_eq!(count(&cloud.handle, "POST", "/evs/v2.1/"), 20, "one disk each");
    let lists = count(&cloud.handle, "GET", "cloudvolumes/detail");
    assert!(lists < 10, "20 creates took {lists} disk listings");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_disk_carries_its_tags_without_a_tag_call() {
    let cloud = emulator(|_| {}).await;
    let (_driver, mut c) = controller(&cloud).await;
    let request = pb::CreateVolumeRequest {
        name: "pvc-hw-born-tagged".into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([("availability".to_string(), "nova".to_string())]),
        ..Default::default()
    };
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    let path = format!("/evs/v2/{}/cloudvolumes/{}/tags", cloud.handle.demo().project_id, volume.volume_id);
    let reply = cloud.huawei(&cloud.demo_key(), reqwest::Method::GET, &path, &[], None).await;
    let tags = reply.body["tags"].as_array().cloned().unwrap_or_default();
    assert!(
        tags.iter().any(|t| t["key"] == "cinder-evs-csi_cluster-id" && t["value"] == "test-cluster"),
        "{:?}",
        reply.body
    );
    assert_eq!(count(&cloud.handle, "POST", "tags/action"), 0, "tagged in the create request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evs_publish_attaches_the_named_server_and_records_it_and_unpublish_undoes_both() {
    // Transitions slow enough that an answer given before the cloud finished would show.
    let cloud = emulator(|c| c.latency = Duration::from_millis(500)).await;
    let (_driver, mut c) = controller(&cloud).await;
    let server_id = cloud.handle.this_host_server_id().unwrap();
    let request = pb::CreateVolumeRequest {
        name: "pvc-hw-publish-record".into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([("availability".to_string(), "nova".to_string())]),
        ..Default::default()
    };
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    let id = volume.volume_id.clone();
    let record_key = format!("cinder-evs-csi/published-{server_id}");
    let publish = pb::ControllerPublishVolumeRequest {
        volume_id: id.clone(),
        node_id: server_id.clone(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    c.controller_publish_volume(publish).await.unwrap();
    // When Publish answers, the disk is attached to that server and to no other, and recorded.
    let (status, servers, record) = cloud.handle.cloud().read(|w| {
        let v = w.volume(&id).unwrap();
        let servers: Vec<_> = v.attachments.iter().map(|a| (a.server_id.clone(), a.status.clone())).collect();
        (v.status.clone(), servers, v.metadata.get(&record_key).cloned())
    });
    assert_eq!(status, "in-use");
    assert_eq!(servers, vec![(Some(server_id.clone()), "attached".to_string())]);
    assert!(record.is_some_and(|r| !r.is_empty()), "the publish record is written");

    let unpublish = pb::ControllerUnpublishVolumeRequest {
        volume_id: id.clone(),
        node_id: server_id.clone(),
        ..Default::default()
    };
    c.controller_unpublish_volume(unpublish).await.unwrap();
    let (status, attachments, record) = cloud.handle.cloud().read(|w| {
        let v = w.volume(&id).unwrap();
        (v.status.clone(), v.attachments.len(), v.metadata.get(&record_key).cloned())
    });
    assert_eq!(status, "available", "detached when Unpublish answers");
    assert_eq!(attachments, 0);
    // EVS cannot delete a metadata key through an update: a cleared record is empty.
    assert_eq!(record.as_deref().unwrap_or(""), "", "the publish record is cleared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_repairs_the_tags_a_disk_has_lost() {
    let cloud = emulator(|_| {}).await;
    let (driver, mut c) =
        controller_with(&cloud, &["--tag-repair-interval", "300ms", "--metrics-address", "127.0.0.1:0"])
            .await;
    let line = driver.wait_for_log(|l| l.contains("serving /metrics"), Duration::from_secs(20));
    let metrics_address =
        line.split("address=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let request = pb::CreateVolumeRequest {
        name: "pvc-hw-tags".into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([("availability".to_string(), "nova".to_string())]),
        ..Default::default()
    };
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    let path = format!("/evs/v2/{}/cloudvolumes/{}/tags", cloud.handle.demo().project_id, volume.volume_id);
    // Someone strips the tags by hand (or an older driver's tag call failed).
    let strip = serde_json::json!({"action": "delete", "tags": [{"key": "cinder-evs-csi_cluster-id"}]});
    let reply = cloud
        .huawei(&cloud.demo_key(), reqwest::Method::POST, &format!("{path}/action"), &[], Some(strip))
        .await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let reply = cloud.huawei(&cloud.demo_key(), reqwest::Method::GET, &path, &[], None).await;
        let tags = reply.body["tags"].as_array().cloned().unwrap_or_default();
        if tags.iter().any(|t| t["key"] == "cinder-evs-csi_cluster-id" && t["value"] == "test-cluster") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the disk was never tagged: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(count(&cloud.handle, "POST", "resource_instances/action") >= 1, "found through the tag query");
    // The pass records its count once it has gone through every disk.
    loop {
        let metrics = http_get(&metrics_address, "/metrics");
        if metrics.contains(r#"cinder_evs_csi_tag_repairs_total{outcome="repaired"} 1"#) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the repair was never counted: {metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates an EVS SCSI (`hw:passthrough`) disk through the controller and publishes it to
/// this host's server; the disk's id, the publish context and the cloud calls of the publish
/// by route.
async fn publish_a_scsi_disk(
    cloud: &testkit::emulator::TestCloud,
    c: &mut ControllerClient<tonic::transport::Channel>,
) -> (String, HashMap<String, String>, BTreeMap<String, u64>) {
    let request = pb::CreateVolumeRequest {
        name: "pvc-hw-scsi".into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([
            ("availability".to_string(), "nova".to_string()),
            ("scsi".to_string(), "true".to_string()),
        ]),
        ..Default::default()
    };
    let id = c.create_volume(request).await.unwrap().into_inner().volume.unwrap().volume_id;
    let calls =
        || -> BTreeMap<String, u64> { cloud.handle.cloud().counters().snapshot().into_iter().collect() };
    let before = calls();
    let publish = pb::ControllerPublishVolumeRequest {
        volume_id: id.clone(),
        node_id: cloud.handle.this_host_server_id().unwrap(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let context = c.controller_publish_volume(publish).await.unwrap().into_inner().publish_context;
    let during = calls()
        .into_iter()
        .map(|(route, n)| (n - before.get(&route).copied().unwrap_or(0), route))
        .filter(|(n, _)| *n > 0)
        .map(|(n, route)| (route, n))
        .collect();
    (id, context, during)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evs_scsi_disk_is_published_with_the_wwn_the_cloud_reports() {
    let cloud = emulator(|_| {}).await;
    let (_driver, mut c) = controller(&cloud).await;
    let (id, context, _) = publish_a_scsi_disk(&cloud, &mut c).await;
    let reported = cinder_evs_emulator::loopdev::wwn(&id);
    assert_eq!(context["wwn"], reported, "{context:?}");
    // The node's finder accepts the hint and looks for the very link the emulator's attach makes.
    let hint = cinder_evs_csi::host::device::parse_wwn(&context["wwn"]).expect("a WWN by the node's rule");
    let hints = cinder_evs_csi::host::device::Hints { wwn: Some(hint), ..Default::default() };
    let volume = cinder_evs_csi::contract::CloudId::parse("id", &id).unwrap();
    let metadata = cloud.handle.cloud().read(|w| w.volume(&id).unwrap().metadata.clone());
    let link = cinder_evs_emulator::loopdev::link_name_for(&id, &metadata);
    assert_eq!(link, format!("scsi-3{reported}"), "the emulator attaches it as a SCSI disk");
    let names = cinder_evs_csi::host::device::DeviceFinder::link_names(&volume, &hints);
    assert!(names.contains(&link), "{link} not in {names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carrying_the_wwn_costs_an_evs_publish_no_cloud_call() {
    let cloud = emulator(|_| {}).await;
    let (_driver, mut c) = controller(&cloud).await;
    let (_, context, during) = publish_a_scsi_disk(&cloud, &mut c).await;
    assert!(context.contains_key("wwn"), "{context:?}");
    // One disk GET, the publish record's metadata PUT, the ECS attach, and the attach job's
    // polls (how many depends on the emulator's timing, not on the wwn): nothing else.
    let polls = during.get("GET /ecs/v1/{project_id}/jobs/{job_id}").copied().unwrap_or(0);
    assert!(polls >= 1, "{during:?}");
    let expected = BTreeMap::from([
        ("GET /evs/v2/{project_id}/cloudvolumes/{volume_id}".to_string(), 1),
        ("PUT /evs/v2/{project_id}/cloudvolumes/{volume_id}".to_string(), 1),
        ("POST /ecs/v1/{project_id}/cloudservers/{server_id}/attachvolume".to_string(), 1),
        ("GET /ecs/v1/{project_id}/jobs/{job_id}".to_string(), polls),
    ]);
    assert_eq!(during, expected);
}
