//! The Huawei backend against the emulator's Huawei side, configured through clouds.yaml as an
//! operator would: AK/SK and IAM tokens, v2.1 create jobs, listing, expand, delete, snapshots,
//! ECS attach/detach jobs, quotas, failed jobs, the EVS error codes, tags and their repair.

use std::collections::BTreeMap;
use std::time::Duration;

use cinder_evs_csi::cloud::huawei::tags::Tags;
use cinder_evs_csi::cloud::types::{
    Encryption, Owner, SnapshotSpec, TagRepair, VolumeSource, VolumeSpec, VolumeStatus,
};
use cinder_evs_csi::cloud::{Backend, CloudError};
use cinder_evs_emulator::errors::Family;
use cinder_evs_emulator::faults::{FaultAction, FaultRule, TransitionEffect, TransitionRule};
use reqwest::Method;
use testkit::cloud::{
    HuaweiAuth, TestCloud, TestHuawei, count, emulator, huawei_backend, huawei_yaml, owned_huawei_backend,
};

const WAIT: Duration = Duration::from_secs(20);

fn spec(name: &str, gib: u64) -> VolumeSpec {
    VolumeSpec {
        name: name.into(),
        size_gib: gib,
        zone: Some("nova".into()),
        metadata: BTreeMap::from([("cinder-evs-csi/cluster-id".into(), "k8s".into())]),
        ..Default::default()
    }
}

async fn aksk(cloud: &TestCloud) -> TestHuawei {
    huawei_backend(&huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), ""))
}

async fn ready_volume(b: &TestHuawei, name: &str, gib: u64) -> String {
    let created = b.backend.create_volume(&spec(name, gib)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    created.id
}

fn fail_once(resource: &str, status: &str) -> TransitionRule {
    TransitionRule {
        resource: resource.into(),
        status: status.into(),
        id: None,
        effect: TransitionEffect::Fail,
        count: Some(1),
    }
}

#[tokio::test]
async fn a_disk_created_through_the_v21_job_becomes_available_and_is_found_by_name() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    b.backend.probe().await.unwrap();
    let created = b.backend.create_volume(&spec("pvc-a", 10)).await.unwrap();
    assert_eq!(count(&cloud.handle, "POST", "/evs/v2.1/"), 1, "created through v2.1");
    let ready = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    assert_eq!(ready.status, VolumeStatus::Available);
    assert_eq!(ready.size_gib, 10);
    assert_eq!(ready.zone, "nova");
    assert_eq!(ready.volume_type.as_deref(), Some("GPSSD"), "the default disk type");
    assert_eq!(ready.metadata["cinder-evs-csi/cluster-id"], "k8s");
    assert_eq!(b.backend.get_volume(&testkit::cid(&created.id)).await.unwrap().unwrap().id, created.id);
    let found = b.backend.find_volumes_by_name("pvc-a").await.unwrap();
    assert_eq!(found.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), vec![created.id.as_str()]);
}

#[tokio::test]
async fn the_name_filter_matches_exact_names_only() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    ready_volume(&b, "pvc-ab", 10).await;
    let exact = ready_volume(&b, "pvc-a", 10).await;
    let found = b.backend.find_volumes_by_name("pvc-a").await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, exact);
}

#[tokio::test]
async fn listing_pages_through_all_disks_oldest_first() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(ready_volume(&b, &format!("pvc-{i}"), 10).await);
    }
    let first = b.backend.list_volumes(Some(2), None).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let marker = first.next.clone().expect("a second page");
    let second = b.backend.list_volumes(Some(2), Some(&marker)).await.unwrap();
    assert_eq!(second.next, None);
    let listed: Vec<String> = first.items.iter().chain(&second.items).map(|v| v.id.clone()).collect();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn a_missing_disk_is_none_and_deleting_it_is_success() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let missing = "00000000-0000-0000-0000-000000000000";
    assert_eq!(b.backend.get_volume(&testkit::cid(missing)).await.unwrap(), None);
    b.backend.delete_volume(&testkit::cid(missing)).await.unwrap();
    b.backend.wait_volume_deleted(&testkit::cid(missing), WAIT).await.unwrap();
}

#[tokio::test]
async fn a_deleted_disk_is_gone_after_the_wait() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-del", 10).await;
    b.backend.delete_volume(&testkit::cid(&id)).await.unwrap();
    b.backend.wait_volume_deleted(&testkit::cid(&id), WAIT).await.unwrap();
    assert_eq!(b.backend.get_volume(&testkit::cid(&id)).await.unwrap(), None);
    b.backend.delete_volume(&testkit::cid(&id)).await.expect("deleting again is success");
}

#[tokio::test]
async fn an_expanded_disk_reaches_its_new_size() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-grow", 10).await;
    b.backend.extend_volume(&testkit::cid(&id), 20).await.unwrap();
    let grown = b.backend.wait_volume_extended(&testkit::cid(&id), 20, WAIT).await.unwrap();
    assert_eq!(grown.size_gib, 20);
    assert_eq!(grown.status, VolumeStatus::Available);
}

#[tokio::test]
async fn snapshots_are_taken_listed_restored_and_deleted() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let source = ready_volume(&b, "pvc-src", 10).await;
    let taken = b
        .backend
        .create_snapshot(&SnapshotSpec {
            name: "snap-1".into(),
            volume_id: testkit::cid(&source),
            force: true,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let ready = b.backend.wait_snapshot_ready(&testkit::cid(&taken.id), WAIT).await.unwrap();
    assert_eq!(ready.volume_id, source);
    assert_eq!(ready.size_gib, 10);
    assert!(ready.created_at.is_some());
    let listed = b.backend.list_snapshots(Some(&testkit::cid(&source)), None, None).await.unwrap();
    assert_eq!(listed.items.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), vec![taken.id.as_str()]);
    assert_eq!(b.backend.find_snapshots_by_name("snap-1").await.unwrap().len(), 1);

    let mut restore = spec("pvc-restored", 20);
    restore.source = Some(VolumeSource::Snapshot(testkit::cid(&taken.id)));
    let restored = b.backend.create_volume(&restore).await.unwrap();
    let restored = b.backend.wait_volume_ready(&testkit::cid(&restored.id), WAIT).await.unwrap();
    assert_eq!(restored.source_snapshot_id.as_deref(), Some(taken.id.as_str()));
    assert_eq!(restored.size_gib, 20);

    b.backend.delete_snapshot(&testkit::cid(&taken.id)).await.unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while b.backend.get_snapshot(&testkit::cid(&taken.id)).await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "the snapshot never went");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.backend.delete_snapshot(&testkit::cid(&taken.id)).await.expect("deleting again is success");
}

#[tokio::test]
async fn snapshot_listing_pages_with_a_marker() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let source = ready_volume(&b, "pvc-src", 10).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let s = b
            .backend
            .create_snapshot(&SnapshotSpec {
                name: format!("snap-{i}"),
                volume_id: testkit::cid(&source),
                force: false,
                metadata: BTreeMap::new(),
            })
            .await
            .unwrap();
        b.backend.wait_snapshot_ready(&testkit::cid(&s.id), WAIT).await.unwrap();
        ids.push(s.id);
    }
    let first = b.backend.list_snapshots(None, Some(2), None).await.unwrap();
    assert_eq!(first.items.len(), 2);
    let marker = first.next.clone().expect("a second page");
    let second = b.backend.list_snapshots(None, Some(2), Some(&marker)).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next, None);
    let mut listed: Vec<String> = first.items.iter().chain(&second.items).map(|s| s.id.clone()).collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);
}

#[tokio::test]
async fn attach_and_detach_through_ecs_jobs_are_idempotent() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-attach", 10).await;
    let attached = b.backend.attach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap();
    assert_eq!(attached.device_hint, None, "the node finds an EVS disk by its serial");
    assert!(count(&cloud.handle, "GET", "/ecs/v1/") >= 1, "the ECS job was followed");
    let disk = b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap();
    assert_eq!(disk.status, VolumeStatus::InUse, "attached when the attach answers");
    assert!(disk.attachments.iter().any(|a| a.server_id == server));
    assert_eq!(
        b.backend.attach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap(),
        attached,
        "attaching again is success"
    );
    assert_eq!(count(&cloud.handle, "POST", "attachvolume"), 1, "no second attach request");
    assert_eq!(b.backend.attached_count(&testkit::cid(&server)).await.unwrap(), 1);
    b.backend.detach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap();
    b.backend
        .detach(&testkit::cid(&id), &testkit::cid(&server), WAIT)
        .await
        .expect("detaching again is success");
    assert_eq!(count(&cloud.handle, "DELETE", "detachvolume"), 1, "no second detach request");
    let after = b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap();
    assert_eq!(after.status, VolumeStatus::Available);
    assert!(after.attachments.is_empty());
    assert_eq!(b.backend.attached_count(&testkit::cid(&server)).await.unwrap(), 0);
}

#[tokio::test]
async fn detaching_from_a_deleted_server_is_success() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let server = cloud.add_server("doomed", &cloud.handle.demo().project_id).await;
    let id = ready_volume(&b, "pvc-orphan", 10).await;
    b.backend.attach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap();
    // The server vanishes with the disk still showing its attachment.
    cloud
        .handle
        .cloud()
        .write(Family::Ecs, |w| {
            w.servers.remove(&server);
            Ok(())
        })
        .unwrap();
    b.backend
        .detach(&testkit::cid(&id), &testkit::cid(&server), WAIT)
        .await
        .expect("a deleted server holds no disks");
    b.backend
        .detach(&testkit::cid(&id), &testkit::cid("5e000000-0000-4000-8000-00000000dead"), WAIT)
        .await
        .expect("a missing server holds no disks");
}

#[tokio::test]
async fn attaching_to_a_missing_server_is_not_found() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-nowhere", 10).await;
    let err = b
        .backend
        .attach(&testkit::cid(&id), &testkit::cid("5e000000-0000-4000-8000-00000000dead"), WAIT)
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::NotFound { kind: "server", .. }), "{err}");
}

#[tokio::test]
async fn a_failed_attach_job_ends_in_the_jobs_error() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-attach-fails", 10).await;
    cloud.handle.cloud().faults().add_transition(fail_once("volume", "attaching"));
    let err = b.backend.attach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::ErrorState { kind: "volume", status, reason: Some(r), .. }
            if status == "FAIL" && r.contains("attachVolume")),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_disk_that_fails_to_create_ends_the_wait_with_its_error_state() {
    let cloud = emulator(|_| {}).await;
    cloud.handle.cloud().faults().add_transition(fail_once("volume", "creating"));
    let b = aksk(&cloud).await;
    let created = b.backend.create_volume(&spec("pvc-err", 10)).await.unwrap();
    let err = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap_err();
    assert!(matches!(&err, CloudError::ErrorState { status, .. } if status == "error"), "{err}");
}

#[tokio::test]
async fn a_failed_expansion_ends_the_wait_with_its_error_state() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-grow-fails", 10).await;
    cloud.handle.cloud().faults().add_transition(fail_once("volume", "extending"));
    b.backend.extend_volume(&testkit::cid(&id), 20).await.unwrap();
    let err = b.backend.wait_volume_extended(&testkit::cid(&id), 20, WAIT).await.unwrap_err();
    assert!(matches!(&err, CloudError::ErrorState { status, .. } if status.starts_with("error")), "{err}");
}

#[tokio::test]
async fn deleting_an_attached_disk_is_a_conflict() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-busy", 10).await;
    b.backend.attach(&testkit::cid(&id), &testkit::cid(&server), WAIT).await.unwrap();
    let err = b.backend.delete_volume(&testkit::cid(&id)).await.unwrap_err();
    assert!(matches!(&err, CloudError::Conflict(m) if m.contains("EVS.1046")), "{err}");
}

#[tokio::test]
async fn exceeding_the_quota_is_quota_exceeded() {
    let cloud = emulator(|c| {
        c.default_quotas.insert("gigabytes".into(), 15);
    })
    .await;
    let b = aksk(&cloud).await;
    ready_volume(&b, "pvc-fits", 10).await;
    let err = b.backend.create_volume(&spec("pvc-too-much", 10)).await.unwrap_err();
    assert!(matches!(&err, CloudError::QuotaExceeded(m) if m.contains("EVS.1042")), "{err}");
    let id = b.backend.find_volumes_by_name("pvc-fits").await.unwrap()[0].id.clone();
    let err = b.backend.extend_volume(&testkit::cid(&id), 20).await.unwrap_err();
    assert!(matches!(err, CloudError::QuotaExceeded(_)), "{err}");
}

#[tokio::test]
async fn parameters_evs_refuses_are_invalid_input() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut unknown_type = spec("pvc-type", 10);
    unknown_type.volume_type = Some("NOPE".into());
    let err = b.backend.create_volume(&unknown_type).await.unwrap_err();
    assert!(matches!(&err, CloudError::InvalidInput(m) if m.contains("EVS.1020")), "{err}");
    let mut unknown_zone = spec("pvc-zone", 10);
    unknown_zone.zone = Some("nowhere".into());
    let err = b.backend.create_volume(&unknown_zone).await.unwrap_err();
    assert!(matches!(&err, CloudError::InvalidInput(m) if m.contains("EVS.1036")), "{err}");
}

#[tokio::test]
async fn operations_on_missing_disks_are_not_found() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = aksk(&cloud).await;
    let missing = "00000000-0000-0000-0000-000000000000";
    let err = b.backend.extend_volume(&testkit::cid(missing), 20).await.unwrap_err();
    assert!(matches!(err, CloudError::NotFound { kind: "volume", .. }), "{err}");
    let err = b.backend.attach(&testkit::cid(missing), &testkit::cid(&server), WAIT).await.unwrap_err();
    assert!(matches!(err, CloudError::NotFound { kind: "volume", .. }), "{err}");
    assert_eq!(b.backend.get_snapshot(&testkit::cid(missing)).await.unwrap(), None);
    let err = b
        .backend
        .create_snapshot(&SnapshotSpec {
            name: "s".into(),
            volume_id: testkit::cid(missing),
            force: false,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::NotFound { kind: "volume", .. }), "{err}");
}

#[tokio::test]
async fn capacity_comes_from_the_evs_quota_usage() {
    let cloud = emulator(|c| {
        c.default_quotas.insert("gigabytes".into(), 50);
    })
    .await;
    let b = aksk(&cloud).await;
    assert_eq!(b.backend.capacity(None).await.unwrap().available_gib, Some(50));
    ready_volume(&b, "pvc-q", 20).await;
    assert_eq!(b.backend.capacity(None).await.unwrap().available_gib, Some(30));
    assert_eq!(b.backend.capacity(Some("GPSSD")).await.unwrap().available_gib, Some(30));
}

#[tokio::test]
async fn a_wrong_secret_key_is_unauthorized_and_no_key_is_in_the_error() {
    let cloud = emulator(|_| {}).await;
    let (ak, sk) = cloud.handle.access_keys("demo").into_iter().next().unwrap();
    let wrong = "wrong-secret-key-value-000000000000";
    let b = huawei_backend(&huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(Some(wrong.into())), ""));
    let err = b.backend.probe().await.unwrap_err();
    assert!(matches!(err, CloudError::Unauthorized(_)), "{err}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(wrong) && !text.contains(&sk), "a secret leaked: {text}");
    assert!(!text.contains(&ak), "the access key leaked: {text}");
}

#[tokio::test]
async fn an_iam_token_from_a_keystone_password_works_too() {
    let cloud = emulator(|_| {}).await;
    let b = huawei_backend(&huawei_yaml(&cloud.handle, HuaweiAuth::Password, ""));
    b.backend.probe().await.unwrap();
    let id = ready_volume(&b, "pvc-iam", 10).await;
    assert_eq!(b.backend.list_volumes(None, None).await.unwrap().items[0].id, id);
    assert!(count(&cloud.handle, "POST", "auth/tokens") >= 1, "a token was issued");
}

#[tokio::test]
async fn provisioned_iops_and_throughput_are_sent_natively() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut fast = spec("pvc-fast", 20);
    fast.volume_type = Some("GPSSD2".into());
    fast.iops = Some(5000);
    fast.throughput = Some(250);
    let created = b.backend.create_volume(&fast).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    let extra = cloud.handle.cloud().read(|w| w.volume(&created.id).unwrap().extra.clone());
    assert_eq!(extra["iops"], 5000);
    assert_eq!(extra["throughput"], 250);
}

#[tokio::test]
async fn iops_on_a_type_without_provisioned_performance_is_invalid_input() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut wrong = spec("pvc-slow", 20);
    wrong.volume_type = Some("SAS".into());
    wrong.iops = Some(5000);
    let err = b.backend.create_volume(&wrong).await.unwrap_err();
    assert!(matches!(&err, CloudError::InvalidInput(m) if m.contains("iops")), "{err}");
}

#[tokio::test]
async fn encryption_and_scsi_become_the_disks_system_metadata() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = aksk(&cloud).await;
    let key = "0123456789abcdef0123456789abcdef0123";
    let mut secure = spec("pvc-secure", 10);
    secure.encryption = Some(Encryption { kms_key_id: Some(key.into()) });
    secure.scsi = true;
    let created = b.backend.create_volume(&secure).await.unwrap();
    let ready = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    assert_eq!(ready.metadata["__system__encrypted"], "1");
    assert_eq!(ready.metadata["__system__cmkid"], key);
    assert_eq!(ready.metadata["hw:passthrough"], "true");
    b.backend.attach(&testkit::cid(&created.id), &testkit::cid(&server), WAIT).await.unwrap();
    let disk = b.backend.get_volume(&testkit::cid(&created.id)).await.unwrap().unwrap();
    let device = disk.attachments.iter().find(|a| a.server_id == server).and_then(|a| a.device.clone());
    assert!(device.as_deref().is_some_and(|d| d.starts_with("/dev/sd")), "a SCSI device: {disk:?}");
}

#[tokio::test]
async fn the_qos_of_a_gpssd2_disk_changes_through_a_job() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut fast = spec("pvc-qos", 20);
    fast.volume_type = Some("GPSSD2".into());
    fast.iops = Some(3000);
    fast.throughput = Some(125);
    let created = b.backend.create_volume(&fast).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    b.backend.modify_performance(&testkit::cid(&created.id), Some(8000), Some(300), WAIT).await.unwrap();
    let extra = cloud.handle.cloud().read(|w| w.volume(&created.id).unwrap().extra.clone());
    assert_eq!(extra["iops"], 8000);
    assert_eq!(extra["throughput"], 300);
    let err =
        b.backend.modify_performance(&testkit::cid(&created.id), Some(8000), None, WAIT).await.unwrap_err();
    assert!(matches!(err, CloudError::InvalidInput(_)), "GPSSD2 needs both values: {err}");
}

#[tokio::test]
async fn the_qos_of_other_disk_types_cannot_change() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let mut plain = spec("pvc-plain", 20);
    plain.volume_type = Some("SAS".into());
    let created = b.backend.create_volume(&plain).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    let err =
        b.backend.modify_performance(&testkit::cid(&created.id), Some(5000), None, WAIT).await.unwrap_err();
    assert!(matches!(err, CloudError::InvalidInput(_)), "{err}");
}

#[tokio::test]
async fn without_volume_ids_in_the_answer_the_disk_id_comes_from_the_finished_job() {
    let cloud = emulator(|c| c.evs_ids_from_jobs_only = true).await;
    let b = aksk(&cloud).await;
    let created = b.backend.create_volume(&spec("pvc-from-job", 10)).await.unwrap();
    assert!(count(&cloud.handle, "GET", "/jobs/") >= 1, "the job was read");
    let ready = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    assert_eq!(ready.name, "pvc-from-job");
}

#[tokio::test]
async fn a_create_job_that_fails_before_naming_its_disk_is_the_jobs_error() {
    let cloud = emulator(|c| c.evs_ids_from_jobs_only = true).await;
    cloud.handle.cloud().faults().add_transition(fail_once("volume", "creating"));
    let b = aksk(&cloud).await;
    let err = b.backend.create_volume(&spec("pvc-job-fails", 10)).await.unwrap_err();
    assert!(
        matches!(&err, CloudError::Conflict(m) if m.contains("createVolume") && m.contains("EVS.2024")),
        "the job's own code and reason: {err:?}"
    );
    // The failed disk stays findable by name, so the retried CreateVolume can clean it up.
    let found = b.backend.find_volumes_by_name("pvc-job-fails").await.unwrap();
    assert!(matches!(found.as_slice(), [v] if matches!(v.status, VolumeStatus::Error(_))), "{found:?}");
}

const CLUSTER_KEY: &str = "cinder-evs-csi/cluster-id";

fn owned(cloud: &TestCloud, cluster: &str) -> TestHuawei {
    let owner = Owner { key: CLUSTER_KEY.into(), value: cluster.into() };
    owned_huawei_backend(&huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), ""), Some(owner))
}

fn pvc_spec(name: &str, cluster: &str) -> VolumeSpec {
    VolumeSpec {
        metadata: BTreeMap::from([
            (CLUSTER_KEY.into(), cluster.into()),
            ("cinder-evs-csi/pvc-name".into(), name.into()),
        ]),
        ..spec(name, 10)
    }
}

/// The next `count` POSTs to `route` are answered with `status`.
fn fail_posts(cloud: &TestCloud, route: &str, status: u16, count: u64) {
    cloud.handle.cloud().faults().add_rule(FaultRule {
        method: Some("POST".into()),
        route: Some(route.into()),
        action: FaultAction::Error { status, retry_after: None, message: None },
        rate: 1.0,
        count: Some(count),
    });
}

/// The next `count` tag calls fail with a 400, which is not retried.
fn refuse_tagging(cloud: &TestCloud, count: u64) {
    fail_posts(cloud, "/evs/v2/{project_id}/cloudvolumes/{volume_id}/tags/action", 400, count);
}

/// Removes every tag of the disk, as someone editing it by hand would.
async fn strip_tags(cloud: &TestCloud, id: &str) {
    let keys: Vec<_> = tags_of(cloud, id).await.into_keys().map(|k| serde_json::json!({"key": k})).collect();
    let action = format!("/evs/v2/{}/cloudvolumes/{id}/tags/action", cloud.handle.demo().project_id);
    let strip = serde_json::json!({"action": "delete", "tags": keys});
    let reply = cloud.huawei(&cloud.demo_key(), Method::POST, &action, &[], Some(strip)).await;
    assert_eq!(reply.status, 204, "{:?}", reply.body);
    assert!(tags_of(cloud, id).await.is_empty());
}

/// The disk's tags as EVS shows them.
async fn tags_of(cloud: &TestCloud, id: &str) -> BTreeMap<String, String> {
    let path = format!("/evs/v2/{}/cloudvolumes/{id}/tags", cloud.handle.demo().project_id);
    let reply = cloud.huawei(&cloud.demo_key(), Method::GET, &path, &[], None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["key"].as_str().unwrap().to_string(), t["value"].as_str().unwrap().to_string()))
        .collect()
}

async fn ready(b: &TestHuawei, spec: &VolumeSpec) -> String {
    let created = b.backend.create_volume(spec).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    created.id
}

#[tokio::test]
async fn a_new_disk_is_tagged_with_its_cluster_and_claim() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let id = ready(&b, &pvc_spec("pvc-tagged", "prod")).await;
    assert_eq!(
        tags_of(&cloud, &id).await,
        BTreeMap::from([
            ("cinder-evs-csi_cluster-id".to_string(), "prod".to_string()),
            ("cinder-evs-csi_pvc-name".to_string(), "pvc-tagged".to_string()),
        ])
    );
}

#[tokio::test]
async fn a_disk_that_lost_its_tags_gets_them_from_the_repair() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let id = ready(&b, &pvc_spec("pvc-untagged", "prod")).await;
    strip_tags(&cloud, &id).await;

    let report = b.backend.repair_tags().await.unwrap();
    assert_eq!(report, TagRepair { checked: 1, repaired: 1, failed: 0 });
    let tags = tags_of(&cloud, &id).await;
    assert_eq!(tags.get("cinder-evs-csi_cluster-id").map(String::as_str), Some("prod"));
    assert_eq!(tags.get("cinder-evs-csi_pvc-name").map(String::as_str), Some("pvc-untagged"));
}

#[tokio::test]
async fn a_repair_with_nothing_missing_sends_no_tag_calls() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    ready(&b, &pvc_spec("pvc-a", "prod")).await;
    ready(&b, &pvc_spec("pvc-b", "prod")).await;
    let tag_calls = count(&cloud.handle, "POST", "/tags/action");

    let report = b.backend.repair_tags().await.unwrap();
    assert_eq!(report, TagRepair { checked: 2, repaired: 0, failed: 0 });
    assert_eq!(count(&cloud.handle, "POST", "/tags/action"), tag_calls, "no tag call");
    assert_eq!(count(&cloud.handle, "POST", "resource_instances/action"), 1, "one tag query");
}

#[tokio::test]
async fn a_tag_removed_by_hand_is_added_again_and_other_tags_are_kept() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let id = ready(&b, &pvc_spec("pvc-edited", "prod")).await;
    let action = format!("/evs/v2/{}/cloudvolumes/{id}/tags/action", cloud.handle.demo().project_id);
    let edit = serde_json::json!({"action": "delete", "tags": [{"key": "cinder-evs-csi_pvc-name"}]});
    let key = cloud.demo_key();
    assert_eq!(cloud.huawei(&key, Method::POST, &action, &[], Some(edit)).await.status, 204);
    let own = serde_json::json!({"action": "create", "tags": [{"key": "team", "value": "db"}]});
    assert_eq!(cloud.huawei(&key, Method::POST, &action, &[], Some(own)).await.status, 204);

    let report = b.backend.repair_tags().await.unwrap();
    assert_eq!(report.repaired, 1);
    let tags = tags_of(&cloud, &id).await;
    assert_eq!(tags.get("cinder-evs-csi_pvc-name").map(String::as_str), Some("pvc-edited"));
    assert_eq!(tags.get("team").map(String::as_str), Some("db"), "the user's own tag stays");
}

#[tokio::test]
async fn the_repair_leaves_other_clusters_disks_alone() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let theirs = ready(&b, &pvc_spec("pvc-theirs", "staging")).await;
    strip_tags(&cloud, &theirs).await;

    let report = b.backend.repair_tags().await.unwrap();
    assert_eq!(report, TagRepair::default(), "nothing of this cluster to check");
    assert!(tags_of(&cloud, &theirs).await.is_empty());
}

#[tokio::test]
async fn a_refused_repair_is_counted_and_the_next_pass_retries() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let id = ready(&b, &pvc_spec("pvc-stubborn", "prod")).await;
    strip_tags(&cloud, &id).await;
    refuse_tagging(&cloud, 1);

    assert_eq!(b.backend.repair_tags().await.unwrap(), TagRepair { checked: 1, repaired: 0, failed: 1 });
    assert!(tags_of(&cloud, &id).await.is_empty());
    assert_eq!(b.backend.repair_tags().await.unwrap(), TagRepair { checked: 1, repaired: 1, failed: 0 });
    assert!(!tags_of(&cloud, &id).await.is_empty());
}

#[tokio::test]
async fn the_tag_query_pages_through_every_tagged_disk() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(ready(&b, &pvc_spec(&format!("pvc-page-{i}"), "prod")).await);
    }
    ready(&b, &pvc_spec("pvc-elsewhere", "staging")).await;

    let found =
        Tags::new(b.client.clone()).disks_tagged("cinder-evs-csi_cluster-id", "prod", 2).await.unwrap();
    let mut found_ids: Vec<String> = found.iter().map(|d| d.id.clone()).collect();
    found_ids.sort();
    ids.sort();
    assert_eq!(found_ids, ids, "every disk of the cluster, none of another");
    assert_eq!(count(&cloud.handle, "POST", "resource_instances/action"), 3, "pages of 2, 2 and 1");
    assert!(found.iter().all(|d| d.tags.contains_key("cinder-evs-csi_pvc-name")), "with their tags");
}

#[tokio::test]
async fn a_server_error_on_the_tag_query_is_retried_because_it_only_reads() {
    let cloud = emulator(|_| {}).await;
    let b = owned(&cloud, "prod");
    ready(&b, &pvc_spec("pvc-retry", "prod")).await;
    fail_posts(&cloud, "/evs/v2/{project_id}/cloudvolumes/resource_instances/action", 500, 1);
    let found =
        Tags::new(b.client.clone()).disks_tagged("cinder-evs-csi_cluster-id", "prod", 10).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(count(&cloud.handle, "POST", "resource_instances/action"), 2, "the 500, then the answer");
}

/// A temporary AK/SK and security token of the demo user, issued by the emulator's IAM.
async fn temporary_key(cloud: &TestCloud) -> (String, String, String) {
    let session = cloud.login("demo").await;
    let body = serde_json::json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": "900"}}}});
    let url = cloud.url("/identity/v3.0/OS-CREDENTIAL/securitytokens");
    let reply = cloud.send(Method::POST, &url, Some(&session.token), Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let field = |name: &str| reply.body["credential"][name].as_str().unwrap().to_string();
    assert!(field("expires_at").ends_with('Z'));
    (field("access"), field("secret"), field("securitytoken"))
}

fn temporary(
    cloud: &TestCloud,
    access_key: &str,
    secret_key: &str,
    security_token: Option<&str>,
) -> TestHuawei {
    let auth = HuaweiAuth::Temporary {
        access_key: access_key.into(),
        secret_key: secret_key.into(),
        security_token: security_token.map(str::to_string),
    };
    huawei_backend(&huawei_yaml(&cloud.handle, auth, ""))
}

#[tokio::test]
async fn a_temporary_key_works_with_its_security_token() {
    let cloud = emulator(|_| {}).await;
    let (ak, sk, token) = temporary_key(&cloud).await;
    let b = temporary(&cloud, &ak, &sk, Some(&token));
    let id = ready(&b, &spec("pvc-temporary", 10)).await;
    assert_eq!(b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap().name, "pvc-temporary");
}

#[tokio::test]
async fn a_temporary_key_without_or_with_a_wrong_security_token_is_unauthorized() {
    let cloud = emulator(|_| {}).await;
    let (ak, sk, token) = temporary_key(&cloud).await;
    for sent in [None, Some("not-the-token")] {
        let b = temporary(&cloud, &ak, &sk, sent);
        let err = b.backend.create_volume(&spec("pvc-no-token", 10)).await.unwrap_err();
        assert!(matches!(&err, CloudError::Unauthorized(m) if m.contains("security token")), "{err}");
        assert!(!err.to_string().contains(&sk) && !err.to_string().contains(&token), "no secret in {err}");
    }
    let with_token = temporary(&cloud, &ak, &sk, Some(&token));
    assert!(
        with_token.backend.find_volumes_by_name("pvc-no-token").await.unwrap().is_empty(),
        "no disk made"
    );
}

#[tokio::test]
async fn an_expired_temporary_key_is_unauthorized() {
    let cloud = emulator(|_| {}).await;
    let (ak, sk, token) = temporary_key(&cloud).await;
    cloud
        .handle
        .cloud()
        .write(Family::Identity, |w| {
            w.access_keys.get_mut(&ak).unwrap().expires_at_ms = Some(1);
            Ok(())
        })
        .unwrap();
    let b = temporary(&cloud, &ak, &sk, Some(&token));
    let err = b.backend.get_volume(&testkit::cid("00000000-0000-4000-8000-0000000000aa")).await.unwrap_err();
    assert!(matches!(&err, CloudError::Unauthorized(m) if m.contains("expired")), "{err}");
}

#[tokio::test]
async fn temporary_keys_need_a_live_token_and_a_validity_of_15_minutes_to_a_day() {
    let cloud = emulator(|_| {}).await;
    let url = cloud.url("/identity/v3.0/OS-CREDENTIAL/securitytokens");
    let body = |seconds: u64| serde_json::json!({"auth": {"identity": {"methods": ["token"], "token": {"duration_seconds": seconds}}}});
    let no_token = cloud.send(Method::POST, &url, None, Some(body(900)), &[]).await;
    assert_eq!(no_token.status, 401);
    let bogus = cloud.send(Method::POST, &url, Some("bogus"), Some(body(900)), &[]).await;
    assert_eq!(bogus.status, 401);
    let session = cloud.login("demo").await;
    for seconds in [899, 86_401] {
        let reply = cloud.send(Method::POST, &url, Some(&session.token), Some(body(seconds)), &[]).await;
        assert_eq!(reply.status, 400, "{seconds} s");
    }
    let day = cloud.send(Method::POST, &url, Some(&session.token), Some(body(86_400)), &[]).await;
    assert_eq!(day.status, 201);
}

#[tokio::test]
async fn disks_are_created_in_the_configured_enterprise_project() {
    let cloud = emulator(|_| {}).await;
    let yaml = huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), "    enterprise_project_id: ep-team-a\n");
    let b = huawei_backend(&yaml);
    let id = ready(&b, &spec("pvc-in-ep", 10)).await;
    let key = cloud.demo_key();
    let project = cloud.handle.demo().project_id;
    let shown =
        cloud.huawei(&key, Method::GET, &format!("/evs/v2/{project}/cloudvolumes/{id}"), &[], None).await;
    assert_eq!(shown.body["volume"]["enterprise_project_id"], "ep-team-a");
    let list = format!("/evs/v2/{project}/cloudvolumes/detail");
    let in_ep = cloud.huawei(&key, Method::GET, &list, &[("enterprise_project_id", "ep-team-a")], None).await;
    assert_eq!(in_ep.body["volumes"].as_array().unwrap().len(), 1);
    let default = cloud.huawei(&key, Method::GET, &list, &[("enterprise_project_id", "0")], None).await;
    assert!(default.body["volumes"].as_array().unwrap().is_empty(), "not in the default enterprise project");
}

#[tokio::test]
async fn a_shareable_disk_attaches_to_two_servers() {
    let cloud = emulator(|_| {}).await;
    let this_host = cloud.handle.this_host_server_id().unwrap();
    let other = cloud.add_server("worker-2", &cloud.handle.demo().project_id).await;
    let b = aksk(&cloud).await;
    let id = ready(&b, &VolumeSpec { multiattach: true, ..spec("pvc-shared", 10) }).await;
    b.backend.attach(&testkit::cid(&id), &testkit::cid(&this_host), WAIT).await.unwrap();
    b.backend.attach(&testkit::cid(&id), &testkit::cid(&other), WAIT).await.unwrap();
    let disk = b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap();
    assert!(disk.multiattach);
    let mut servers: Vec<&str> = disk.attachments.iter().map(|a| a.server_id.as_str()).collect();
    servers.sort();
    let mut expected = vec![this_host.as_str(), other.as_str()];
    expected.sort();
    assert_eq!(servers, expected);
    b.backend.detach(&testkit::cid(&id), &testkit::cid(&other), WAIT).await.unwrap();
    b.backend.detach(&testkit::cid(&id), &testkit::cid(&this_host), WAIT).await.unwrap();
    assert!(b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap().attachments.is_empty());
}

#[tokio::test]
async fn a_plain_disk_cannot_attach_to_a_second_server() {
    let cloud = emulator(|_| {}).await;
    let this_host = cloud.handle.this_host_server_id().unwrap();
    let other = cloud.add_server("worker-2", &cloud.handle.demo().project_id).await;
    let b = aksk(&cloud).await;
    let id = ready_volume(&b, "pvc-single", 10).await;
    b.backend.attach(&testkit::cid(&id), &testkit::cid(&this_host), WAIT).await.unwrap();
    let err = b.backend.attach(&testkit::cid(&id), &testkit::cid(&other), WAIT).await.unwrap_err();
    // ECS refuses it; the controller checks the attachments first and answers FailedPrecondition.
    assert!(matches!(&err, CloudError::InvalidInput(m) if m.contains("in-use")), "{err:?}");
}

async fn snapshot_of(b: &TestHuawei, volume_id: &str, name: &str) -> String {
    let spec = SnapshotSpec {
        name: name.into(),
        volume_id: testkit::cid(volume_id),
        force: true,
        metadata: BTreeMap::new(),
    };
    let taken = b.backend.create_snapshot(&spec).await.unwrap();
    b.backend.wait_snapshot_ready(&testkit::cid(&taken.id), WAIT).await.unwrap();
    taken.id
}

#[tokio::test]
async fn a_restore_without_a_type_gets_the_type_of_the_snapshots_disk() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let source = ready(&b, &VolumeSpec { volume_type: Some("SSD".into()), ..spec("pvc-ssd", 10) }).await;
    let snapshot = snapshot_of(&b, &source, "snap-ssd").await;

    let restore = VolumeSpec {
        source: Some(VolumeSource::Snapshot(testkit::cid(&snapshot))),
        ..spec("pvc-ssd-restored", 10)
    };
    let restored = ready(&b, &restore).await;
    let restored = b.backend.get_volume(&testkit::cid(&restored)).await.unwrap().unwrap();
    assert_eq!(restored.volume_type.as_deref(), Some("SSD"), "not the default GPSSD");
}

#[tokio::test]
async fn a_restore_into_another_type_is_refused_as_invalid() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let source = ready(&b, &VolumeSpec { volume_type: Some("SSD".into()), ..spec("pvc-ssd", 10) }).await;
    let snapshot = snapshot_of(&b, &source, "snap-ssd").await;

    let restore = VolumeSpec {
        source: Some(VolumeSource::Snapshot(testkit::cid(&snapshot))),
        volume_type: Some("SAS".into()),
        ..spec("pvc-sas-restored", 10)
    };
    let err = b.backend.create_volume(&restore).await.unwrap_err();
    assert!(matches!(&err, CloudError::InvalidInput(m) if m.contains("EVS.2096")), "{err:?}");
}

#[tokio::test]
async fn a_restore_from_a_missing_snapshot_is_not_found() {
    let cloud = emulator(|_| {}).await;
    let b = aksk(&cloud).await;
    let restore = VolumeSpec {
        source: Some(VolumeSource::Snapshot(testkit::cid("00000000-0000-4000-8000-00000000beef"))),
        ..spec("pvc-x", 10)
    };
    let err = b.backend.create_volume(&restore).await.unwrap_err();
    assert!(matches!(&err, CloudError::NotFound { kind: "snapshot", .. }), "{err:?}");
}
