//! The controller binary over its unix socket, as the sidecars drive it, against the emulator.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::csi::pb::identity_client::IdentityClient;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use cinder_evs_csi::csi::pb::volume_capability::{AccessMode, AccessType, MountVolume};
use common::cloud::{Auth, TestCloud, clouds_yaml, count, emulator};
use common::{Driver, unix_channel, wait_for_path};
use tonic::Code;
use tonic::transport::Channel;

const GIB: i64 = 1 << 30;

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
    tweak: impl FnOnce(&mut cinder_evs_csi::emulator::EmulatorConfig),
) -> Setup {
    common::secrets::register("the CSI secret in CreateVolume", "never-logged-secret");
    let cloud = emulator(|c| {
        c.default_quotas.insert("volumes".into(), -1);
        c.default_quotas.insert("gigabytes".into(), -1);
        tweak(c);
    })
    .await;
    let config = cloud.dir.path().join("clouds.yaml");
    std::fs::write(&config, make_yaml(&cloud)).unwrap();
    let socket = cloud.dir.path().join("csi.sock");
    let endpoint = format!("unix://{}", socket.display());
    let mut args = vec![
        "controller",
        "--endpoint",
        &endpoint,
        "--cloud-config",
        config.to_str().unwrap(),
        "--cluster-id",
        "test-cluster",
        "--driver-name",
        "csi.example.io",
    ];
    args.extend_from_slice(extra_args);
    let driver = Driver::start(&args);
    wait_for_path(&socket, &driver);
    let channel = unix_channel(socket).await;
    let mut identity = IdentityClient::new(channel.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner().ready != Some(true) {
        assert!(std::time::Instant::now() < deadline, "never ready; log:\n{}", driver.log().join("\n"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let server_id = cloud.handle.this_host_server_id().unwrap();
    Setup { cloud, _driver: driver, client: ControllerClient::new(channel), server_id }
}

fn mount_cap() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

fn create(name: &str, gib: i64) -> pb::CreateVolumeRequest {
    pb::CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters: HashMap::from([("csi.storage.k8s.io/pvc/name".to_string(), "data".to_string())]),
        secrets: HashMap::from([("password".to_string(), "never-logged-secret".to_string())]),
        ..Default::default()
    }
}

fn volumes_named(cloud: &TestCloud, name: &str) -> usize {
    cloud
        .handle
        .cloud()
        .read(|w| w.stores.values().flat_map(|s| s.volumes.values()).filter(|v| v.name == name).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_advertises_what_it_implements() {
    use pb::controller_service_capability::rpc::Type;
    let s = setup().await;
    let caps = s
        .client
        .clone()
        .controller_get_capabilities(pb::ControllerGetCapabilitiesRequest {})
        .await
        .unwrap()
        .into_inner();
    let types: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|c| c.r#type.as_ref().map(|pb::controller_service_capability::Type::Rpc(rpc)| rpc.r#type))
        .collect();
    for wanted in [
        Type::CreateDeleteVolume,
        Type::PublishUnpublishVolume,
        Type::ListVolumes,
        Type::CreateDeleteSnapshot,
        Type::ExpandVolume,
    ] {
        assert!(types.contains(&(wanted as i32)), "{wanted:?} missing from {types:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_creates_make_exactly_one_cloud_volume() {
    let s = setup().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let mut client = s.client.clone();
        tasks.spawn(async move {
            client
                .create_volume(create("pvc-fifty", 1))
                .await
                .map(|r| r.into_inner().volume.unwrap().volume_id)
        });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        ids.insert(result.unwrap().expect("every identical create succeeds"));
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(volumes_named(&s.cloud, "pvc-fifty"), 1, "the emulator holds a single volume");
    assert_eq!(count(&s.cloud.handle, "POST", "{project_id}/volumes"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_distinct_creates_shares_its_name_lookups() {
    use cinder_evs_csi::emulator::faults::{FaultAction, FaultRule};
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_codes_the_spec_requires() {
    let s = setup().await;
    let mut c = s.client.clone();
    assert_eq!(c.create_volume(create("", 1)).await.unwrap_err().code(), Code::InvalidArgument);
    let mut typo = create("pvc-typo", 1);
    typo.parameters.insert("tpye".into(), "x".into());
    assert_eq!(c.create_volume(typo).await.unwrap_err().code(), Code::InvalidArgument);
    c.create_volume(create("pvc-size", 1)).await.unwrap();
    assert_eq!(c.create_volume(create("pvc-size", 3)).await.unwrap_err().code(), Code::AlreadyExists);
    let mut out_of_range = create("pvc-range", 1);
    out_of_range.capacity_range = Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: GIB + 2 });
    assert_eq!(c.create_volume(out_of_range).await.unwrap_err().code(), Code::OutOfRange);
    let publish = pb::ControllerPublishVolumeRequest {
        volume_id: "00000000-0000-0000-0000-000000000000".into(),
        node_id: s.server_id.clone(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    assert_eq!(c.controller_publish_volume(publish).await.unwrap_err().code(), Code::NotFound);
    let list = pb::ListVolumesRequest { max_entries: 1, starting_token: "bogus token".into() };
    assert_eq!(c.list_volumes(list).await.unwrap_err().code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_volumes_pages_through_every_volume() {
    let s = setup().await;
    let mut c = s.client.clone();
    for i in 0..5 {
        c.create_volume(create(&format!("pvc-list-{i}"), 1)).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_volumes(pb::ListVolumesRequest { max_entries: 2, starting_token: token })
            .await
            .unwrap()
            .into_inner();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.into_iter().map(|e| e.volume.unwrap().volume_id));
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_restore_and_expansion_work_through_the_socket() {
    let s = setup().await;
    let mut c = s.client.clone();
    let source = c.create_volume(create("pvc-snap-src", 1)).await.unwrap().into_inner().volume.unwrap();
    let request = pb::CreateSnapshotRequest {
        name: "snap-a".into(),
        source_volume_id: source.volume_id.clone(),
        ..Default::default()
    };
    let mut snapshot = c.create_snapshot(request.clone()).await.unwrap().into_inner().snapshot.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !snapshot.ready_to_use {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
        snapshot = c.create_snapshot(request.clone()).await.unwrap().into_inner().snapshot.unwrap();
    }
    assert!(snapshot.creation_time.is_some());
    let mut restore = create("pvc-restored", 2);
    restore.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: snapshot.snapshot_id.clone(),
        })),
    });
    let restored = c.create_volume(restore).await.unwrap().into_inner().volume.unwrap();
    assert_eq!(restored.volume_context["growFs"], "true");
    let expand = pb::ControllerExpandVolumeRequest {
        volume_id: restored.volume_id.clone(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 4 * GIB, limit_bytes: 0 }),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let expanded = c.controller_expand_volume(expand).await.unwrap().into_inner();
    assert_eq!(expanded.capacity_bytes, 4 * GIB);
    assert!(expanded.node_expansion_required);
    let delete_source = pb::DeleteVolumeRequest { volume_id: source.volume_id.clone(), ..Default::default() };
    let err = c.delete_volume(delete_source).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&snapshot.snapshot_id), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_retypes_a_volume_and_reports_a_refused_migration() {
    let s = setup().await;
    let mut c = s.client.clone();
    let mut request = create("pvc-modify", 1);
    request.parameters.insert("type".into(), "lvmdriver-1".into());
    let volume = c.create_volume(request).await.unwrap().into_inner().volume.unwrap();
    let modify = |volume_type: &str| pb::ControllerModifyVolumeRequest {
        volume_id: volume.volume_id.clone(),
        mutable_parameters: HashMap::from([("type".to_string(), volume_type.to_string())]),
        ..Default::default()
    };
    c.controller_modify_volume(modify("fast")).await.expect("an available volume migrates on demand");
    let volume_type = s.cloud.handle.cloud().read(|w| {
        let v = w.stores.values().find_map(|st| st.volumes.get(&volume.volume_id)).unwrap();
        w.volume_types[&v.volume_type_id].name.clone()
    });
    assert_eq!(volume_type, "fast");
    c.controller_modify_volume(modify("fast")).await.expect("modifying to the current type is a no-op");

    let snapshot = pb::CreateSnapshotRequest {
        name: "pin".into(),
        source_volume_id: volume.volume_id.clone(),
        ..Default::default()
    };
    c.create_snapshot(snapshot).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = c.controller_modify_volume(modify("lvmdriver-1")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    let bad = pb::ControllerModifyVolumeRequest {
        volume_id: volume.volume_id.clone(),
        mutable_parameters: HashMap::from([("colour".to_string(), "red".to_string())]),
        ..Default::default()
    };
    assert_eq!(c.controller_modify_volume(bad).await.unwrap_err().code(), Code::InvalidArgument);
}

fn volume_file(s: &Setup, id: &str) -> std::path::PathBuf {
    s.cloud.handle.cloud().config().state_dir.join("volumes").join(format!("{id}.img"))
}

fn checksum(path: &std::path::Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_snapshot_of_three_volumes_restores_each_volume_s_data() {
    use cinder_evs_csi::csi::pb::group_controller_client::GroupControllerClient;
    let s = setup().await;
    let mut c = s.client.clone();
    let mut ids = Vec::new();
    for i in 0..3 {
        let volume =
            c.create_volume(create(&format!("pvc-group-{i}"), 1)).await.unwrap().into_inner().volume.unwrap();
        // Each volume gets its own data, as if written by the workload.
        let path = volume_file(&s, &volume.volume_id);
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        use std::io::{Seek, SeekFrom, Write};
        file.seek(SeekFrom::Start(4096 * (i as u64 + 1))).unwrap();
        file.write_all(format!("volume {i} data").repeat(100).as_bytes()).unwrap();
        file.sync_all().unwrap();
        ids.push(volume.volume_id);
    }
    let originals: Vec<Vec<u8>> = ids.iter().map(|id| checksum(&volume_file(&s, id))).collect();

    let channel = common::unix_channel(s.cloud.dir.path().join("csi.sock")).await;
    let mut groups = GroupControllerClient::new(channel);
    let request = pb::CreateVolumeGroupSnapshotRequest {
        name: "group-a".into(),
        source_volume_ids: ids.clone(),
        ..Default::default()
    };
    let group = groups
        .create_volume_group_snapshot(request.clone())
        .await
        .unwrap()
        .into_inner()
        .group_snapshot
        .unwrap();
    assert!(group.ready_to_use);
    assert_eq!(group.snapshots.len(), 3);
    let again =
        groups.create_volume_group_snapshot(request).await.unwrap().into_inner().group_snapshot.unwrap();
    assert_eq!(again.group_snapshot_id, group.group_snapshot_id, "idempotent by name");
    let got = groups
        .get_volume_group_snapshot(pb::GetVolumeGroupSnapshotRequest {
            group_snapshot_id: group.group_snapshot_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .group_snapshot
        .unwrap();
    assert_eq!(got.snapshots.len(), 3);

    for (i, source) in ids.iter().enumerate() {
        let member =
            group.snapshots.iter().find(|m| &m.source_volume_id == source).expect("a member per volume");
        assert_eq!(member.group_snapshot_id, group.group_snapshot_id);
        let mut restore = create(&format!("pvc-group-restore-{i}"), 1);
        restore.volume_content_source = Some(pb::VolumeContentSource {
            r#type: Some(pb::volume_content_source::Type::Snapshot(
                pb::volume_content_source::SnapshotSource { snapshot_id: member.snapshot_id.clone() },
            )),
        });
        let restored = c.create_volume(restore).await.unwrap().into_inner().volume.unwrap();
        assert_eq!(
            checksum(&volume_file(&s, &restored.volume_id)),
            originals[i],
            "volume {i} restored with its data"
        );
    }

    let delete = pb::DeleteVolumeGroupSnapshotRequest {
        group_snapshot_id: group.group_snapshot_id.clone(),
        ..Default::default()
    };
    groups.delete_volume_group_snapshot(delete.clone()).await.unwrap();
    groups.delete_volume_group_snapshot(delete).await.expect("deleting twice succeeds");
    let helper_groups =
        s.cloud.handle.cloud().read(|w| w.stores.values().map(|st| st.groups.len()).sum::<usize>());
    assert_eq!(helper_groups, 0, "the helper group is cleaned up with the group snapshot");
    let missing = pb::CreateVolumeGroupSnapshotRequest {
        name: "group-b".into(),
        source_volume_ids: vec!["00000000-0000-0000-0000-000000000000".into()],
        ..Default::default()
    };
    assert_eq!(groups.create_volume_group_snapshot(missing).await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_snapshot_restores_into_a_new_volume() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = c.create_volume(create("pvc-backup-src", 1)).await.unwrap().into_inner().volume.unwrap();
    std::fs::write(volume_file(&s, &volume.volume_id), b"backed up bytes").unwrap();
    let original = checksum(&volume_file(&s, &volume.volume_id));
    let request = pb::CreateSnapshotRequest {
        name: "backup-a".into(),
        source_volume_id: volume.volume_id.clone(),
        parameters: HashMap::from([("type".to_string(), "backup".to_string())]),
        ..Default::default()
    };
    let mut snapshot = c.create_snapshot(request.clone()).await.unwrap().into_inner().snapshot.unwrap();
    assert!(snapshot.snapshot_id.starts_with("backup/"), "{}", snapshot.snapshot_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !snapshot.ready_to_use {
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
        snapshot = c.create_snapshot(request.clone()).await.unwrap().into_inner().snapshot.unwrap();
    }
    let mut restore = create("pvc-from-backup", 1);
    restore.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: snapshot.snapshot_id.clone(),
        })),
    });
    let restored = c.create_volume(restore).await.unwrap().into_inner().volume.unwrap();
    let restored_bytes = std::fs::read(volume_file(&s, &restored.volume_id)).unwrap();
    assert!(restored_bytes.starts_with(b"backed up bytes"), "restored data differs");
    assert_eq!(original.len(), 32);
    c.delete_snapshot(pb::DeleteSnapshotRequest {
        snapshot_id: snapshot.snapshot_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = c
            .get_snapshot(pb::GetSnapshotRequest {
                snapshot_id: snapshot.snapshot_id.clone(),
                ..Default::default()
            })
            .await;
        match got {
            Err(status) if status.code() == Code::NotFound => break,
            _ => assert!(std::time::Instant::now() < deadline, "the backup was never deleted: {got:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn publish_request(volume_id: &str, node_id: &str) -> pb::ControllerPublishVolumeRequest {
    pb::ControllerPublishVolumeRequest {
        volume_id: volume_id.into(),
        node_id: node_id.into(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_stuck_attaching_is_detached_so_the_retry_starts_clean() {
    use cinder_evs_csi::emulator::faults::{TransitionEffect, TransitionRule};
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
    use cinder_evs_csi::emulator::faults::{TransitionEffect, TransitionRule};
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
