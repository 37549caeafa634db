//! Controller behaviour against the in-memory fake cloud: validation, idempotency and error
//! codes. The same behaviours run against the emulator in tests/controller/.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tonic::Code;

use super::*;
use crate::cloud::fake::{FakeBackend, volume};
use crate::cloud::types::{Volume, VolumeAttachment, VolumeStatus};
use crate::contract::GIB;
use crate::contract::ownership::{META_CLUSTER_ID, META_PVC_NAMESPACE, META_VOLUME_NAME};
use crate::csi::pb::volume_capability::access_mode::Mode;
use crate::csi::pb::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
use crate::telemetry::metrics::Metrics;

fn controller(fake: Arc<FakeBackend>) -> ControllerService {
    let backend: Arc<dyn crate::cloud::Backend> = fake;
    let clouds = Clouds::new("default".into(), BTreeMap::from([("default".to_string(), backend)]));
    let mut settings = ControllerSettings::new("csi.example.io".into(), "cluster-a".into());
    settings.max_volumes_per_node = 2;
    ControllerService::new(clouds, settings, Observer::new(Metrics::new()))
}

fn mount_cap(mode: Mode) -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

fn block_cap(mode: Mode) -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

fn create_request(name: &str, gib: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap(Mode::SingleNodeWriter)],
        ..Default::default()
    }
}

/// A UUID spelling `name` (hex of its bytes, so that names sort as their ids do).
fn u(name: &str) -> String {
    let hex: String = name.bytes().map(|b| format!("{b:02x}")).collect();
    let hex = format!("{hex:0<32}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

fn code<T>(result: Result<T, CsiError>) -> Code {
    result.err().expect("expected an error").code()
}

#[tokio::test]
async fn create_rounds_up_to_whole_gib_and_reports_the_zone_under_both_keys() {
    let fake = Arc::new(FakeBackend::default());
    let mut request = create_request("pvc-1", 0);
    request.capacity_range = Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: 0 });
    let volume = controller(fake).create(request).await.unwrap().volume.unwrap();
    assert_eq!(volume.capacity_bytes, 2 * GIB);
    let topology = &volume.accessible_topology[0].segments;
    assert_eq!(topology["topology.kubernetes.io/zone"], "nova");
    assert_eq!(topology["topology.csi.example.io/zone"], "nova");
}

#[tokio::test]
async fn create_writes_the_volume_name_and_cluster_id_into_metadata() {
    let fake = Arc::new(FakeBackend::default());
    let mut request = create_request("pvc-meta", 1);
    request.parameters =
        HashMap::from([(crate::csi::params::PVC_NAMESPACE.to_string(), "team-a".to_string())]);
    let id = controller(fake.clone()).create(request).await.unwrap().volume.unwrap().volume_id;
    let metadata = fake.volumes.lock().unwrap()[&id].metadata.clone();
    assert_eq!(metadata[META_VOLUME_NAME], "pvc-meta");
    assert_eq!(metadata[META_CLUSTER_ID], "cluster-a");
    assert_eq!(metadata[META_PVC_NAMESPACE], "team-a");
}

fn with_params(name: &str, pairs: &[(&str, &str)]) -> pb::CreateVolumeRequest {
    let mut request = create_request(name, 10);
    request.parameters = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    request
}

#[tokio::test]
async fn storage_class_performance_encryption_and_scsi_reach_the_cloud_as_typed_fields() {
    let fake = Arc::new(FakeBackend::default());
    let key = "0123456789abcdef0123456789abcdef0123";
    let request = with_params(
        "pvc-fast",
        &[
            ("iops", "5000"),
            ("throughput", "250"),
            ("encrypted", "true"),
            ("kmsKeyId", key),
            ("scsi", "true"),
        ],
    );
    controller(fake.clone()).create(request).await.unwrap();
    let spec = fake.specs.lock().unwrap()[0].clone();
    assert_eq!(spec.iops, Some(5000));
    assert_eq!(spec.throughput, Some(250));
    assert_eq!(spec.encryption, Some(crate::cloud::types::Encryption { kms_key_id: Some(key.into()) }));
    assert!(spec.scsi);
    assert!(
        spec.metadata
            .keys()
            .all(|k| !k.starts_with("evs:") && !k.starts_with("__system__") && k != "hw:passthrough"),
        "no magic metadata: {:?}",
        spec.metadata
    );
}

#[tokio::test]
async fn without_those_parameters_the_spec_asks_for_nothing_special() {
    let fake = Arc::new(FakeBackend::default());
    controller(fake.clone()).create(create_request("pvc-plain", 1)).await.unwrap();
    let spec = fake.specs.lock().unwrap()[0].clone();
    assert_eq!((spec.iops, spec.throughput, spec.encryption, spec.scsi), (None, None, None, false));
}

#[tokio::test]
async fn encryption_without_a_key_asks_for_the_clouds_default_key() {
    let fake = Arc::new(FakeBackend::default());
    controller(fake.clone()).create(with_params("pvc-enc", &[("encrypted", "true")])).await.unwrap();
    let spec = fake.specs.lock().unwrap()[0].clone();
    assert_eq!(spec.encryption, Some(crate::cloud::types::Encryption { kms_key_id: None }));
}

#[tokio::test]
async fn a_cloud_that_cannot_set_iops_per_volume_is_an_invalid_argument_naming_the_type_parameter() {
    let mut cinder_like = FakeBackend::default();
    cinder_like.refuse_per_volume_options = true;
    let fake = Arc::new(cinder_like);
    let err = controller(fake.clone()).create(with_params("pvc-qos", &[("iops", "3000")])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.to_string().contains("type parameter"), "{err}");
    assert!(fake.volumes.lock().unwrap().is_empty(), "nothing was created");
}

#[tokio::test]
async fn create_requires_a_name_and_capabilities() {
    let c = controller(Arc::new(FakeBackend::default()));
    assert_eq!(code(c.create(create_request("", 1)).await), Code::InvalidArgument);
    let mut no_caps = create_request("pvc", 1);
    no_caps.volume_capabilities.clear();
    assert_eq!(code(c.create(no_caps).await), Code::InvalidArgument);
}

#[tokio::test]
async fn create_refuses_unknown_parameters_and_filesystem_multi_node_modes() {
    let c = controller(Arc::new(FakeBackend::default()));
    let mut typo = create_request("pvc", 1);
    typo.parameters.insert("tpye".into(), "ssd".into());
    assert_eq!(code(c.create(typo).await), Code::InvalidArgument);
    let mut multi = create_request("pvc", 1);
    multi.volume_capabilities = vec![mount_cap(Mode::MultiNodeMultiWriter)];
    multi.parameters.insert("multiattach".into(), "true".into());
    assert_eq!(code(c.create(multi).await), Code::InvalidArgument);
}

#[tokio::test]
async fn multi_node_block_volumes_are_created_multiattach() {
    let fake = Arc::new(FakeBackend::default());
    let mut request = create_request("pvc-shared", 1);
    request.volume_capabilities = vec![block_cap(Mode::MultiNodeMultiWriter)];
    request.parameters.insert("multiattach".into(), "true".into());
    let id = controller(fake.clone()).create(request).await.unwrap().volume.unwrap().volume_id;
    assert!(fake.volumes.lock().unwrap()[&id].multiattach);
}

#[tokio::test]
async fn repeating_a_create_returns_the_same_volume() {
    let fake = Arc::new(FakeBackend::default());
    let c = controller(fake.clone());
    let first = c.create(create_request("pvc-1", 1)).await.unwrap().volume.unwrap();
    let second = c.create(create_request("pvc-1", 1)).await.unwrap().volume.unwrap();
    assert_eq!(first.volume_id, second.volume_id);
    assert_eq!(fake.creates.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn fifty_concurrent_identical_creates_make_one_volume() {
    let fake = Arc::new(FakeBackend::default());
    *fake.create_delay.lock().unwrap() = Duration::from_millis(50);
    let c = Arc::new(controller(fake.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let c = c.clone();
        tasks.spawn(async move {
            c.create(create_request("pvc-race", 1)).await.map(|r| r.volume.unwrap().volume_id)
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        ids.insert(result.unwrap().unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller sees the same volume");
    assert_eq!(fake.creates.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_incompatible_repeat_is_already_exists() {
    let c = controller(Arc::new(FakeBackend::default()));
    c.create(create_request("pvc-1", 1)).await.unwrap();
    assert_eq!(code(c.create(create_request("pvc-1", 5)).await), Code::AlreadyExists);
}

#[tokio::test]
async fn a_volume_left_in_error_by_an_earlier_attempt_is_replaced_not_duplicated() {
    let fake = Arc::new(FakeBackend::default());
    let mut broken = volume(&u("old"), "pvc-1", 1);
    broken.status = VolumeStatus::Error("error".into());
    fake.insert_volume(broken);
    let id =
        controller(fake.clone()).create(create_request("pvc-1", 1)).await.unwrap().volume.unwrap().volume_id;
    let volumes = fake.volumes.lock().unwrap();
    assert_ne!(id, u("old"));
    assert_eq!(volumes.len(), 1, "the broken volume was deleted: {volumes:?}");
}

#[tokio::test]
async fn a_create_that_ends_in_error_leaves_no_volume_behind() {
    let fake = Arc::new(FakeBackend::default());
    *fake.create_ends_in.lock().unwrap() = Some(VolumeStatus::Error("error".into()));
    let result = controller(fake.clone()).create(create_request("pvc-1", 1)).await;
    assert_eq!(code(result), Code::ResourceExhausted);
    assert!(fake.volumes.lock().unwrap().is_empty());
}

#[tokio::test]
async fn create_from_a_missing_snapshot_is_not_found() {
    let mut request = create_request("pvc-1", 1);
    request.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: "nope".into(),
        })),
    });
    assert_eq!(code(controller(Arc::new(FakeBackend::default())).create(request).await), Code::NotFound);
}

#[tokio::test]
async fn a_restore_bigger_than_its_snapshot_tells_the_node_to_grow_the_filesystem() {
    let fake = Arc::new(FakeBackend::default());
    let c = controller(fake.clone());
    let source = c.create(create_request("src", 1)).await.unwrap().volume.unwrap().volume_id;
    let snapshot = c
        .create_snapshot_rpc(pb::CreateSnapshotRequest {
            name: "snap".into(),
            source_volume_id: source,
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot
        .unwrap();
    let mut request = create_request("restored", 3);
    request.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: snapshot.snapshot_id,
        })),
    });
    let restored = c.create(request).await.unwrap().volume.unwrap();
    assert_eq!(restored.volume_context[crate::csi::context::GROW_FS], "true");
    assert!(restored.content_source.is_some());
}

#[tokio::test]
async fn deleting_a_missing_volume_succeeds() {
    let c = controller(Arc::new(FakeBackend::default()));
    c.delete(pb::DeleteVolumeRequest { volume_id: u("gone"), ..Default::default() }).await.unwrap();
    assert_eq!(code(c.delete(pb::DeleteVolumeRequest::default()).await), Code::InvalidArgument);
}

#[tokio::test]
async fn deleting_an_attached_volume_is_a_failed_precondition() {
    let fake = Arc::new(FakeBackend::default());
    let mut attached = volume(&u("v1"), "pvc", 1);
    attached.attachments.push(VolumeAttachment { server_id: u("node-1"), device: None });
    fake.insert_volume(attached);
    let err =
        controller(fake).delete(pb::DeleteVolumeRequest { volume_id: u("v1"), ..Default::default() }).await;
    assert_eq!(code(err), Code::FailedPrecondition);
}

#[tokio::test]
async fn deleting_a_volume_with_snapshots_names_them() {
    let fake = Arc::new(FakeBackend::default());
    let c = controller(fake.clone());
    let id = c.create(create_request("pvc", 1)).await.unwrap().volume.unwrap().volume_id;
    let snap = c
        .create_snapshot_rpc(pb::CreateSnapshotRequest {
            name: "s".into(),
            source_volume_id: id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .snapshot
        .unwrap();
    let err =
        c.delete(pb::DeleteVolumeRequest { volume_id: id.clone(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.to_string().contains(&snap.snapshot_id), "{err}");
}

fn publish_request(volume: &str, node: &str) -> pb::ControllerPublishVolumeRequest {
    pb::ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(mount_cap(Mode::SingleNodeWriter)),
        ..Default::default()
    }
}

#[tokio::test]
async fn publish_returns_the_volume_id_and_device_hint_and_is_idempotent() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake.clone());
    let first = c.publish(publish_request(&u("v1"), &u("node-1"))).await.unwrap();
    let again = c.publish(publish_request(&u("v1"), &u("node-1"))).await.unwrap();
    assert_eq!(first.publish_context["volumeId"], u("v1"));
    assert_eq!(first.publish_context["devicePath"], "/dev/vdb");
    assert_eq!(first, again);
    assert_eq!(fake.volumes.lock().unwrap()[&u("v1")].attachments.len(), 1);
}

/// The publish context of `v1` on `node-1` when the cloud reports `wwn` for it.
async fn context_with_cloud_wwn(wwn: Option<&str>) -> HashMap<String, String> {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    fake.insert_volume(Volume { wwn: wwn.map(str::to_string), ..volume(&u("v1"), "pvc", 1) });
    let c = controller(fake.clone());
    let published = c.publish(publish_request(&u("v1"), &u("node-1"))).await;
    let context = published.unwrap_or_else(|e| panic!("publish with wwn {wwn:?}: {e:?}")).publish_context;
    assert_eq!(fake.volumes.lock().unwrap()[&u("v1")].attachments.len(), 1, "attached all the same");
    context
}

#[tokio::test]
async fn publish_passes_the_clouds_wwn_to_the_node_trimmed_and_in_lower_case() {
    let context = context_with_cloud_wwn(Some(" 0x68886030000D136FA16F48F05992360A\t")).await;
    assert_eq!(context["wwn"], "68886030000d136fa16f48f05992360a");
}

#[tokio::test]
async fn the_published_wwn_is_one_the_node_searches_for_under_its_by_id_names() {
    use crate::host::device::{DeviceFinder, Hints, parse_wwn};
    let context = context_with_cloud_wwn(Some("6888603000001234")).await;
    let hint = parse_wwn(&context["wwn"]).expect("the node accepts what the controller writes");
    let names = DeviceFinder::link_names(
        &crate::contract::CloudId::parse("id", &u("v1")).unwrap(),
        &Hints { wwn: Some(hint), ..Hints::default() },
    );
    assert!(names.contains(&"scsi-36888603000001234".to_string()), "{names:?}");
    assert!(names.contains(&"wwn-0x6888603000001234".to_string()), "{names:?}");
}

#[tokio::test]
async fn a_wwn_that_breaks_the_rule_is_left_out_and_the_publish_still_succeeds() {
    let oversize = "a".repeat(100_000);
    for hostile in [
        "",
        "   ",
        "garbage",
        // Huawei's API example: a leading space and 31 hex digits.
        " 68886030000d136fa16f48f05992360",
        "6888603000001234/../../etc",
        "../6888603000001234",
        "..",
        "/dev/sda",
        "68886030/0001234",
        oversize.as_str(),
    ] {
        let context = context_with_cloud_wwn(Some(hostile)).await;
        assert!(!context.contains_key("wwn"), "{:?}: {context:?}", &hostile[..hostile.len().min(40)]);
        assert_eq!(context["volumeId"], u("v1"));
    }
}

#[tokio::test]
async fn a_volume_without_a_wwn_publishes_none() {
    assert!(!context_with_cloud_wwn(None).await.contains_key("wwn"));
}

#[tokio::test]
async fn publish_validates_its_arguments_and_finds_what_is_missing() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake);
    assert_eq!(code(c.publish(publish_request("", &u("node-1"))).await), Code::InvalidArgument);
    assert_eq!(code(c.publish(publish_request(&u("v1"), "")).await), Code::InvalidArgument);
    let mut no_cap = publish_request(&u("v1"), &u("node-1"));
    no_cap.volume_capability = None;
    assert_eq!(code(c.publish(no_cap).await), Code::InvalidArgument);
    assert_eq!(code(c.publish(publish_request(&u("missing"), &u("node-1"))).await), Code::NotFound);
    assert_eq!(code(c.publish(publish_request(&u("v1"), &u("no-such-node"))).await), Code::NotFound);
}

#[tokio::test]
async fn publish_past_the_node_limit_is_resource_exhausted() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    for id in [&u("v1"), &u("v2"), &u("v3")] {
        fake.insert_volume(volume(id, id, 1));
    }
    let c = controller(fake);
    c.publish(publish_request(&u("v1"), &u("node-1"))).await.unwrap();
    c.publish(publish_request(&u("v2"), &u("node-1"))).await.unwrap();
    assert_eq!(code(c.publish(publish_request(&u("v3"), &u("node-1"))).await), Code::ResourceExhausted);
    c.publish(publish_request(&u("v2"), &u("node-1"))).await.expect("a repeat at the limit is still fine");
}

#[tokio::test]
async fn without_a_configured_limit_the_node_s_own_limit_is_left_to_the_scheduler() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    let backend: Arc<dyn crate::cloud::Backend> = fake.clone();
    let clouds = Clouds::new("default".into(), BTreeMap::from([("default".to_string(), backend)]));
    let settings = ControllerSettings::new("csi.example.io".into(), "cluster-a".into());
    let c = ControllerService::new(clouds, settings, Observer::new(Metrics::new()));
    // More than a virtio-blk node takes (25), as a SCSI node (59) does.
    for i in 0..30 {
        let id = u(&format!("v{i}"));
        fake.insert_volume(volume(&id, &id, 1));
        c.publish(publish_request(&id, &u("node-1"))).await.unwrap_or_else(|e| panic!("publish {i}: {e:?}"));
    }
}

#[tokio::test]
async fn a_single_attach_volume_cannot_be_published_to_a_second_node() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1"), &u("node-2")]));
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake);
    c.publish(publish_request(&u("v1"), &u("node-1"))).await.unwrap();
    assert_eq!(code(c.publish(publish_request(&u("v1"), &u("node-2"))).await), Code::FailedPrecondition);
}

#[tokio::test]
async fn unpublish_succeeds_when_the_volume_or_node_is_gone() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake.clone());
    c.publish(publish_request(&u("v1"), &u("node-1"))).await.unwrap();
    let request = |v: &str, n: &str| pb::ControllerUnpublishVolumeRequest {
        volume_id: v.into(),
        node_id: n.into(),
        ..Default::default()
    };
    c.unpublish(request(&u("v1"), &u("node-1"))).await.unwrap();
    assert!(fake.volumes.lock().unwrap()[&u("v1")].attachments.is_empty());
    c.unpublish(request(&u("v1"), &u("node-1"))).await.expect("already detached");
    c.unpublish(request(&u("gone"), &u("node-1"))).await.expect("volume gone");
    c.unpublish(request(&u("v1"), &u("deleted-node"))).await.expect("node gone");
}

#[tokio::test]
async fn list_volumes_pages_with_tokens_and_aborts_on_a_bad_token() {
    let fake = Arc::new(FakeBackend::with_servers(&[&u("node-1")]));
    for id in [&u("a1"), &u("a2"), &u("a3")] {
        fake.insert_volume(volume(id, id, 1));
    }
    let c = controller(fake);
    c.publish(publish_request(&u("a2"), &u("node-1"))).await.unwrap();
    let first =
        c.list(pb::ListVolumesRequest { max_entries: 2, starting_token: String::new() }).await.unwrap();
    assert_eq!(first.entries.len(), 2);
    assert!(!first.next_token.is_empty());
    let second =
        c.list(pb::ListVolumesRequest { max_entries: 2, starting_token: first.next_token }).await.unwrap();
    assert_eq!(second.entries.len(), 1);
    assert!(second.next_token.is_empty());
    let published: Vec<_> =
        first.entries.iter().flat_map(|e| e.status.clone().unwrap().published_node_ids).collect();
    assert_eq!(published, vec![u("node-1")]);
    assert_eq!(
        code(c.list(pb::ListVolumesRequest { max_entries: 1, starting_token: "zz-none".into() }).await),
        Code::Aborted
    );
    assert_eq!(
        code(c.list(pb::ListVolumesRequest { max_entries: 1, starting_token: "bad token!".into() }).await),
        Code::Aborted
    );
    assert_eq!(
        code(c.list(pb::ListVolumesRequest { max_entries: -1, starting_token: String::new() }).await),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn get_volume_reports_an_error_state_as_an_abnormal_condition() {
    let fake = Arc::new(FakeBackend::default());
    let mut broken = volume(&u("v1"), "pvc", 1);
    broken.status = VolumeStatus::Error("error_extending".into());
    fake.insert_volume(broken);
    let c = controller(fake);
    let status = c.get(pb::ControllerGetVolumeRequest { volume_id: u("v1") }).await.unwrap().status.unwrap();
    let condition = status.volume_condition.unwrap();
    assert!(condition.abnormal);
    assert!(condition.message.contains("error_extending"), "{}", condition.message);
    assert_eq!(code(c.get(pb::ControllerGetVolumeRequest { volume_id: u("gone") }).await), Code::NotFound);
}

#[tokio::test]
async fn validate_confirms_supported_capabilities_only() {
    let fake = Arc::new(FakeBackend::default());
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake);
    let request = |cap| pb::ValidateVolumeCapabilitiesRequest {
        volume_id: u("v1"),
        volume_capabilities: vec![cap],
        ..Default::default()
    };
    assert!(c.validate(request(mount_cap(Mode::SingleNodeWriter))).await.unwrap().confirmed.is_some());
    let refused = c.validate(request(block_cap(Mode::MultiNodeMultiWriter))).await.unwrap();
    assert!(refused.confirmed.is_none() && !refused.message.is_empty());
    let missing = pb::ValidateVolumeCapabilitiesRequest {
        volume_id: "x".into(),
        ..request(mount_cap(Mode::SingleNodeWriter))
    };
    assert_eq!(code(c.validate(missing).await), Code::NotFound);
}

#[tokio::test]
async fn expansion_grows_filesystem_volumes_and_is_idempotent() {
    let fake = Arc::new(FakeBackend::default());
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake.clone());
    let request = |gib: i64, cap| pb::ControllerExpandVolumeRequest {
        volume_id: u("v1"),
        capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
        volume_capability: Some(cap),
        ..Default::default()
    };
    let grown = c.expand_rpc(request(3, mount_cap(Mode::SingleNodeWriter))).await.unwrap();
    assert_eq!(grown.capacity_bytes, 3 * GIB);
    assert!(grown.node_expansion_required);
    let again = c.expand_rpc(request(2, block_cap(Mode::SingleNodeWriter))).await.unwrap();
    assert_eq!(again.capacity_bytes, 3 * GIB, "already big enough");
    assert!(!again.node_expansion_required, "raw block needs no node step");
    assert_eq!(fake.volumes.lock().unwrap()[&u("v1")].size_gib, 3);
}

#[tokio::test]
async fn snapshots_are_idempotent_by_name_and_need_an_existing_source() {
    let fake = Arc::new(FakeBackend::default());
    fake.insert_volume(volume(&u("v1"), "pvc", 2));
    let c = controller(fake);
    let request = |name: &str, source: &str| pb::CreateSnapshotRequest {
        name: name.into(),
        source_volume_id: source.into(),
        ..Default::default()
    };
    let first = c.create_snapshot_rpc(request("snap-1", &u("v1"))).await.unwrap().snapshot.unwrap();
    let again = c.create_snapshot_rpc(request("snap-1", &u("v1"))).await.unwrap().snapshot.unwrap();
    assert_eq!(first.snapshot_id, again.snapshot_id);
    assert!(first.ready_to_use);
    assert_eq!(first.size_bytes, 2 * GIB);
    assert_eq!(code(c.create_snapshot_rpc(request("snap-2", &u("missing"))).await), Code::NotFound);
    assert_eq!(code(c.create_snapshot_rpc(request("", &u("v1"))).await), Code::InvalidArgument);
    let listed = c
        .list_snapshots_rpc(pb::ListSnapshotsRequest { source_volume_id: u("v1"), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.entries.len(), 1);
    c.delete_snapshot_rpc(pb::DeleteSnapshotRequest {
        snapshot_id: first.snapshot_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.delete_snapshot_rpc(pb::DeleteSnapshotRequest { snapshot_id: first.snapshot_id, ..Default::default() })
        .await
        .expect("deleting a deleted snapshot succeeds");
}

#[tokio::test]
async fn capacity_reports_the_cloud_quota_in_bytes() {
    let c = controller(Arc::new(FakeBackend::default()));
    let capacity = c.capacity_rpc(pb::GetCapacityRequest::default()).await.unwrap();
    assert_eq!(capacity.available_capacity, 1000 * GIB);
    assert_eq!(capacity.minimum_volume_size, Some(GIB));
    let mut typo = pb::GetCapacityRequest::default();
    typo.parameters.insert("tpye".into(), "x".into());
    assert_eq!(code(c.capacity_rpc(typo).await), Code::InvalidArgument);
}

#[tokio::test]
async fn modify_validates_performance_parameters_and_forwards_them() {
    let fake = Arc::new(FakeBackend::default());
    fake.insert_volume(volume(&u("v1"), "pvc", 1));
    let c = controller(fake);
    let modify = |pairs: &[(&str, &str)]| pb::ControllerModifyVolumeRequest {
        volume_id: u("v1"),
        mutable_parameters: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    assert_eq!(code(c.modify_rpc(modify(&[("iops", "-5")])).await), Code::InvalidArgument);
    assert_eq!(code(c.modify_rpc(modify(&[("colour", "red")])).await), Code::InvalidArgument);
    // The fake cloud, like Cinder, cannot change IOPS per volume.
    assert_eq!(code(c.modify_rpc(modify(&[("iops", "5000")])).await), Code::FailedPrecondition);
    c.modify_rpc(modify(&[("type", "gold")])).await.unwrap();
}
