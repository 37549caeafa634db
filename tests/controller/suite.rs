//! The controller binary over its unix socket, as the sidecars drive it, on the emulator or,
//! with `CSI_REAL_OPENSTACK=<clouds.yaml>`, on a real Keystone and Cinder (see
//! tests/real-openstack/). The same tests run on both; what is checked goes through the cloud's
//! API. Checks only the emulator can make (request counts, the bytes of a volume) are made
//! when the target is the emulator; attach and detach need Nova and live in
//! tests/controller/emulator.rs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::csi::pb::group_controller_client::GroupControllerClient;
use testkit::Driver;
use testkit::cloud::{Auth, clouds_yaml, count};
use testkit::requests::{GIB, create, mount_cap};
use testkit::target::Target;
use tonic::Code;
use tonic::transport::Channel;

/// Generous bound for what a real cloud does in seconds; only guards against hangs.
const PATIENCE: Duration = Duration::from_secs(120);

struct Suite {
    target: Target,
    driver: Driver,
    client: ControllerClient<Channel>,
    groups: GroupControllerClient<Channel>,
}

async fn setup() -> Suite {
    let target = Target::new().await;
    let config = target.dir().join("clouds.yaml");
    std::fs::write(&config, clouds_yaml(&target.user, Auth::PasswordByName, "")).unwrap();
    let (driver, channel) =
        testkit::start_controller(target.dir(), &config, &[], Duration::from_secs(60)).await;
    Suite {
        target,
        driver,
        client: ControllerClient::new(channel.clone()),
        groups: GroupControllerClient::new(channel),
    }
}

impl Suite {
    /// The driver's log, for failure messages.
    fn log(&self) -> String {
        self.driver.log().join("\n")
    }

    /// Creates a volume and returns it, failing with the driver's log.
    async fn create(&self, request: pb::CreateVolumeRequest) -> pb::Volume {
        let name = request.name.clone();
        match self.client.clone().create_volume(request).await {
            Ok(reply) => reply.into_inner().volume.unwrap(),
            Err(status) => panic!("create {name}: {status:?}; log:\n{}", self.log()),
        }
    }

    /// Snapshots a volume and waits until the snapshot is ready to use.
    async fn ready_snapshot(&self, request: pb::CreateSnapshotRequest) -> pb::Snapshot {
        let mut c = self.client.clone();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let snapshot = match c.create_snapshot(request.clone()).await {
                Ok(reply) => reply.into_inner().snapshot.unwrap(),
                Err(status) => panic!("snapshot {}: {status:?}; log:\n{}", request.name, self.log()),
            };
            if snapshot.ready_to_use {
                return snapshot;
            }
            assert!(Instant::now() < deadline, "snapshot {} never became ready", request.name);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn of_type(mut request: pb::CreateVolumeRequest, volume_type: &str) -> pb::CreateVolumeRequest {
    request.parameters.insert("type".into(), volume_type.into());
    request
}

fn from_snapshot(mut request: pb::CreateVolumeRequest, snapshot_id: &str) -> pb::CreateVolumeRequest {
    request.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: snapshot_id.into(),
        })),
    });
    request
}

fn snapshot_of(name: &str, volume_id: &str) -> pb::CreateSnapshotRequest {
    pb::CreateSnapshotRequest { name: name.into(), source_volume_id: volume_id.into(), ..Default::default() }
}

/// The bytes of an emulator volume (the emulator keeps each volume in a sparse file).
fn volume_bytes(target: &Target, id: &str) -> Option<Vec<u8>> {
    let cloud = target.emulator()?;
    let path = cloud.handle.cloud().config().state_dir.join("volumes").join(format!("{id}.img"));
    Some(std::fs::read(path).unwrap())
}

/// Writes `data` at `offset` into an emulator volume; nothing on a real cloud.
fn write_volume(target: &Target, id: &str, offset: u64, data: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let Some(cloud) = target.emulator() else { return };
    let path = cloud.handle.cloud().config().state_dir.join("volumes").join(format!("{id}.img"));
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(data).unwrap();
    file.sync_all().unwrap();
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
        Type::CloneVolume,
        Type::GetCapacity,
        Type::ModifyVolume,
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
    assert_eq!(s.target.api.volumes_named("pvc-fifty").await.len(), 1, "the cloud holds a single volume");
    if let Some(cloud) = s.target.emulator() {
        assert_eq!(count(&cloud.handle, "POST", "{project_id}/volumes"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_volume_carries_its_size_zone_and_metadata_and_deletes_idempotently() {
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = s.create(create("pvc-life", 2)).await;
    assert_eq!(volume.capacity_bytes, 2 * GIB);
    assert_eq!(volume.accessible_topology[0].segments["topology.kubernetes.io/zone"], "nova");
    assert_eq!(volume.accessible_topology[0].segments["topology.csi.example.io/zone"], "nova");
    let seen = s.target.api.volume(&volume.volume_id).await;
    assert_eq!(seen["name"], "pvc-life");
    assert_eq!(seen["size"], 2);
    assert_eq!(seen["status"], "available");
    assert_eq!(seen["metadata"]["cinder-evs-csi/cluster-id"], "test-cluster");
    assert_eq!(seen["metadata"]["cinder-evs-csi/pvc-name"], "data");

    let got = c
        .controller_get_volume(pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.volume.unwrap().capacity_bytes, 2 * GIB);
    assert!(got.status.unwrap().published_node_ids.is_empty());

    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    c.delete_volume(delete.clone()).await.unwrap();
    c.delete_volume(delete).await.expect("deleting a deleted volume succeeds");
    let deadline = Instant::now() + PATIENCE;
    while !s.target.api.volumes_named("pvc-life").await.is_empty() {
        assert!(Instant::now() < deadline, "the volume was never deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = c.controller_get_volume(pb::ControllerGetVolumeRequest { volume_id: volume.volume_id }).await;
    assert_eq!(gone.unwrap_err().code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_codes_the_spec_requires() {
    let s = setup().await;
    let mut c = s.client.clone();
    assert_eq!(c.create_volume(create("", 1)).await.unwrap_err().code(), Code::InvalidArgument);
    let mut typo = create("pvc-typo", 1);
    typo.parameters.insert("tpye".into(), "x".into());
    assert_eq!(c.create_volume(typo).await.unwrap_err().code(), Code::InvalidArgument);
    s.create(create("pvc-size", 1)).await;
    assert_eq!(c.create_volume(create("pvc-size", 3)).await.unwrap_err().code(), Code::AlreadyExists);
    let mut out_of_range = create("pvc-range", 1);
    out_of_range.capacity_range = Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: GIB + 2 });
    assert_eq!(c.create_volume(out_of_range).await.unwrap_err().code(), Code::OutOfRange);
    let unknown_type = of_type(create("pvc-no-such-type", 1), "no-such-type");
    let err = c.create_volume(unknown_type).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    let missing = "00000000-0000-0000-0000-000000000000";
    let get = pb::ControllerGetVolumeRequest { volume_id: missing.into() };
    assert_eq!(c.controller_get_volume(get).await.unwrap_err().code(), Code::NotFound);
    let expand = pb::ControllerExpandVolumeRequest {
        volume_id: missing.into(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
        ..Default::default()
    };
    assert_eq!(c.controller_expand_volume(expand).await.unwrap_err().code(), Code::NotFound);
    let snapshot = snapshot_of("snap-of-nothing", missing);
    assert_eq!(c.create_snapshot(snapshot).await.unwrap_err().code(), Code::NotFound);
    let restore = from_snapshot(create("pvc-from-nothing", 1), missing);
    assert_eq!(c.create_volume(restore).await.unwrap_err().code(), Code::NotFound);
    let delete = pb::DeleteSnapshotRequest { snapshot_id: missing.into(), ..Default::default() };
    c.delete_snapshot(delete).await.expect("deleting a missing snapshot succeeds");
    let list = pb::ListVolumesRequest { max_entries: 1, starting_token: "bogus token".into() };
    assert_eq!(c.list_volumes(list).await.unwrap_err().code(), Code::Aborted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_volumes_pages_through_every_volume() {
    let s = setup().await;
    let mut c = s.client.clone();
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(s.create(create(&format!("pvc-list-{i}"), 1)).await.volume_id);
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
    let pages = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), pages, "no volume is listed twice");
    created.sort();
    assert_eq!(seen, created);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_restore_and_expansion_work_through_the_socket() {
    let s = setup().await;
    let mut c = s.client.clone();
    let source = s.create(create("pvc-snap-src", 1)).await;
    let snapshot = s.ready_snapshot(snapshot_of("snap-a", &source.volume_id)).await;
    assert!(snapshot.creation_time.is_some());
    assert_eq!(snapshot.size_bytes, GIB);
    assert_eq!(snapshot.source_volume_id, source.volume_id);
    let again = s.ready_snapshot(snapshot_of("snap-a", &source.volume_id)).await;
    assert_eq!(again.snapshot_id, snapshot.snapshot_id, "idempotent by name");

    let listed = c
        .list_snapshots(pb::ListSnapshotsRequest {
            source_volume_id: source.volume_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let ids: Vec<_> =
        listed.entries.iter().map(|e| e.snapshot.as_ref().unwrap().snapshot_id.clone()).collect();
    assert_eq!(ids, vec![snapshot.snapshot_id.clone()]);

    let restored = s.create(from_snapshot(create("pvc-restored", 2), &snapshot.snapshot_id)).await;
    assert_eq!(restored.capacity_bytes, 2 * GIB);
    assert_eq!(restored.volume_context["growFs"], "true");
    let seen = s.target.api.volume(&restored.volume_id).await;
    assert_eq!(seen["snapshot_id"], snapshot.snapshot_id.as_str());
    assert_eq!(seen["size"], 2);

    let expand = pb::ControllerExpandVolumeRequest {
        volume_id: restored.volume_id.clone(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 4 * GIB, limit_bytes: 0 }),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let expanded = c.controller_expand_volume(expand.clone()).await.unwrap().into_inner();
    assert_eq!(expanded.capacity_bytes, 4 * GIB);
    assert!(expanded.node_expansion_required);
    assert_eq!(s.target.api.volume(&restored.volume_id).await["size"], 4);
    let twice = c.controller_expand_volume(expand).await.unwrap().into_inner();
    assert_eq!(twice.capacity_bytes, 4 * GIB, "already big enough");

    let delete_source = pb::DeleteVolumeRequest { volume_id: source.volume_id.clone(), ..Default::default() };
    let err = c.delete_volume(delete_source.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&snapshot.snapshot_id), "{}", err.message());

    let delete =
        pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    c.delete_snapshot(delete.clone()).await.unwrap();
    c.delete_snapshot(delete).await.expect("deleting twice succeeds");
    let deadline = Instant::now() + PATIENCE;
    loop {
        match c.delete_volume(delete_source.clone()).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::FailedPrecondition && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(status) => panic!("the source never became deletable: {status:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_clones_another_volume() {
    let s = setup().await;
    let source = s.create(create("pvc-clone-src", 1)).await;
    write_volume(&s.target, &source.volume_id, 0, b"cloned bytes");
    let mut clone = create("pvc-clone", 1);
    clone.volume_content_source = Some(pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Volume(pb::volume_content_source::VolumeSource {
            volume_id: source.volume_id.clone(),
        })),
    });
    let cloned = s.create(clone.clone()).await;
    assert_ne!(cloned.volume_id, source.volume_id);
    assert_eq!(cloned.capacity_bytes, GIB);
    let source_of_clone = &cloned.content_source.as_ref().expect("the clone names its source").r#type;
    assert!(
        matches!(source_of_clone, Some(pb::volume_content_source::Type::Volume(v)) if v.volume_id == source.volume_id),
        "{source_of_clone:?}"
    );
    let seen = s.target.api.volume(&cloned.volume_id).await;
    assert_eq!(seen["source_volid"], source.volume_id.as_str());
    assert_eq!(seen["status"], "available");
    if let Some(bytes) = volume_bytes(&s.target, &cloned.volume_id) {
        assert!(bytes.starts_with(b"cloned bytes"), "the clone holds the source's data");
    }
    assert_eq!(s.create(clone).await.volume_id, cloned.volume_id, "idempotent by name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modify_retypes_a_volume_and_reports_a_refused_migration() {
    let s = setup().await;
    let types = s.target.types;
    let mut c = s.client.clone();
    let volume = s.create(of_type(create("pvc-modify", 1), types.initial)).await;
    assert_eq!(s.target.api.volume(&volume.volume_id).await["volume_type"], types.initial);
    let modify = |volume_type: &str| pb::ControllerModifyVolumeRequest {
        volume_id: volume.volume_id.clone(),
        mutable_parameters: HashMap::from([("type".to_string(), volume_type.to_string())]),
        ..Default::default()
    };
    if let Err(status) = c.controller_modify_volume(modify(types.retype_to)).await {
        panic!("retype of an available volume: {status:?}; log:\n{}", s.log());
    }
    assert_eq!(s.target.api.volume(&volume.volume_id).await["volume_type"], types.retype_to);
    c.controller_modify_volume(modify(types.retype_to))
        .await
        .expect("modifying to the current type is a no-op");

    s.ready_snapshot(snapshot_of("pin", &volume.volume_id)).await;
    let err = c.controller_modify_volume(modify(types.elsewhere)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    let seen = s.target.api.volume(&volume.volume_id).await;
    assert_eq!(seen["volume_type"], types.retype_to, "the refused retype left the type alone");
    assert_eq!(seen["status"], "available");
    let bad = pb::ControllerModifyVolumeRequest {
        volume_id: volume.volume_id.clone(),
        mutable_parameters: HashMap::from([("colour".to_string(), "red".to_string())]),
        ..Default::default()
    };
    assert_eq!(c.controller_modify_volume(bad).await.unwrap_err().code(), Code::InvalidArgument);
}

/// Cinder 29 strands a volume in `retyping` when it retypes one whose snapshot carries
/// metadata (every snapshot the driver takes does), even without a migration: the driver must
/// refuse before the call and leave the volume as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retype_is_refused_before_the_call_while_a_snapshot_carries_metadata() {
    let s = setup().await;
    let types = s.target.types;
    let mut c = s.client.clone();
    let volume = s.create(of_type(create("pvc-retype-pinned", 1), types.initial)).await;
    let snapshot = s.ready_snapshot(snapshot_of("pinned", &volume.volume_id)).await;
    let modify = pb::ControllerModifyVolumeRequest {
        volume_id: volume.volume_id.clone(),
        mutable_parameters: HashMap::from([("type".to_string(), types.same_backend.to_string())]),
        ..Default::default()
    };
    let err = c.controller_modify_volume(modify.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{}", err.message());
    assert!(err.message().contains(&snapshot.snapshot_id), "names the snapshot: {}", err.message());
    assert!(err.message().contains("retyping"), "says why: {}", err.message());
    // Well past the time a retype takes: nothing was sent, nothing is stranded.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = s.target.api.volume(&volume.volume_id).await;
    assert_eq!(seen["status"], "available", "{seen}");
    assert_eq!(seen["volume_type"], types.initial);

    c.delete_snapshot(pb::DeleteSnapshotRequest {
        snapshot_id: snapshot.snapshot_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while !s.target.api.get(&format!("snapshots/detail?volume_id={}", volume.volume_id)).await["snapshots"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the snapshot was never deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Err(status) = c.controller_modify_volume(modify).await {
        panic!("retype once the snapshot is gone: {status:?}; log:\n{}", s.log());
    }
    assert_eq!(s.target.api.volume(&volume.volume_id).await["volume_type"], types.same_backend);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_snapshot_of_three_volumes_restores_each_volume() {
    let s = setup().await;
    let mut groups = s.groups.clone();
    let mut ids = Vec::new();
    for i in 0..3 {
        let volume = s.create(create(&format!("pvc-group-{i}"), 1)).await;
        // Each volume gets its own data, as if written by the workload.
        write_volume(
            &s.target,
            &volume.volume_id,
            4096 * (i + 1),
            format!("volume {i} data").repeat(100).as_bytes(),
        );
        ids.push(volume.volume_id);
    }
    let originals: Vec<_> = ids.iter().map(|id| volume_bytes(&s.target, id)).collect();

    let request = pb::CreateVolumeGroupSnapshotRequest {
        name: "group-a".into(),
        source_volume_ids: ids.clone(),
        ..Default::default()
    };
    let group = match groups.create_volume_group_snapshot(request.clone()).await {
        Ok(reply) => reply.into_inner().group_snapshot.unwrap(),
        Err(status) => panic!("group snapshot: {status:?}; log:\n{}", s.log()),
    };
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
        assert!(member.ready_to_use);
        let restored =
            s.create(from_snapshot(create(&format!("pvc-group-restore-{i}"), 1), &member.snapshot_id)).await;
        assert_eq!(
            s.target.api.volume(&restored.volume_id).await["snapshot_id"],
            member.snapshot_id.as_str()
        );
        assert_eq!(
            volume_bytes(&s.target, &restored.volume_id),
            originals[i],
            "volume {i} restored with its data"
        );
    }

    let delete = pb::DeleteVolumeGroupSnapshotRequest {
        group_snapshot_id: group.group_snapshot_id.clone(),
        snapshot_ids: group.snapshots.iter().map(|m| m.snapshot_id.clone()).collect(),
        ..Default::default()
    };
    if let Err(status) = groups.delete_volume_group_snapshot(delete.clone()).await {
        panic!("delete group snapshot: {status:?}; log:\n{}", s.log());
    }
    groups.delete_volume_group_snapshot(delete).await.expect("deleting twice succeeds");
    let deadline = Instant::now() + PATIENCE;
    while !s.target.api.groups().await.is_empty() {
        assert!(Instant::now() < deadline, "the helper group outlived its group snapshot");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    let volume = s.create(of_type(create("pvc-backup-src", 1), s.target.types.backup)).await;
    write_volume(&s.target, &volume.volume_id, 0, b"backed up bytes");
    let mut request = snapshot_of("backup-a", &volume.volume_id);
    request.parameters.insert("type".into(), "backup".into());
    let snapshot = s.ready_snapshot(request.clone()).await;
    assert!(snapshot.snapshot_id.starts_with("backup/"), "{}", snapshot.snapshot_id);
    assert_eq!(snapshot.source_volume_id, volume.volume_id);
    assert_eq!(snapshot.size_bytes, GIB);

    // Restored through the backup service too, so into a type it can write to.
    let restore = of_type(create("pvc-from-backup", 1), s.target.types.backup);
    let restored = s.create(from_snapshot(restore, &snapshot.snapshot_id)).await;
    assert_eq!(s.target.api.volume(&restored.volume_id).await["status"], "available");
    if let Some(bytes) = volume_bytes(&s.target, &restored.volume_id) {
        assert!(bytes.starts_with(b"backed up bytes"), "restored data differs");
    }
    c.delete_snapshot(pb::DeleteSnapshotRequest {
        snapshot_id: snapshot.snapshot_id.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let got = c
            .get_snapshot(pb::GetSnapshotRequest {
                snapshot_id: snapshot.snapshot_id.clone(),
                ..Default::default()
            })
            .await;
        match got {
            Err(status) if status.code() == Code::NotFound => break,
            _ => assert!(Instant::now() < deadline, "the backup was never deleted: {got:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Cinder's fake driver cannot be backed up (its connector lacks an initiator); the emulator
/// fails the backup by fault injection. Either way the gRPC message carries the cloud's own
/// reason, cut before the traceback Cinder stores with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_backup_reports_the_clouds_reason() {
    use cinder_evs_emulator::faults::{TransitionEffect, TransitionRule};
    let s = setup().await;
    let mut c = s.client.clone();
    let volume = s.create(of_type(create("pvc-backup-fails", 1), s.target.types.initial)).await;
    let expected = match s.target.emulator() {
        Some(cloud) => {
            cloud.handle.cloud().faults().add_transition(TransitionRule {
                resource: "backup".into(),
                status: "creating".into(),
                id: None,
                effect: TransitionEffect::Fail,
                count: None,
            });
            "No space left on device"
        }
        None => "Connector doesn't have required information: initiator",
    };
    let mut request = snapshot_of("backup-fails", &volume.volume_id);
    request.parameters.insert("type".into(), "backup".into());
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        match c.create_snapshot(request.clone()).await {
            Err(status) => break status,
            Ok(reply) => {
                assert!(!reply.into_inner().snapshot.unwrap().ready_to_use, "the backup cannot succeed")
            }
        }
        assert!(Instant::now() < deadline, "the backup never failed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(status.code(), Code::Internal, "{}", status.message());
    assert!(status.message().contains("failed: error"), "{}", status.message());
    assert!(status.message().contains(expected), "the cloud's reason: {}", status.message());
    assert!(!status.message().contains("Traceback"), "{}", status.message());
}

/// A sidecar's deadline that expires while the driver waits on the cloud: the driver logs the
/// cancellation once (code, duration, ids) and counts it; the retry adopts what the cut-off
/// call started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_off_by_its_deadline_is_logged_counted_and_adopted_by_the_retry() {
    let target = Target::new().await;
    let config = target.dir().join("clouds.yaml");
    std::fs::write(&config, clouds_yaml(&target.user, Auth::PasswordByName, "")).unwrap();
    let extra = ["--metrics-address", "127.0.0.1:0", "--log-format", "json"];
    let (driver, channel) =
        testkit::start_controller(target.dir(), &config, &extra, Duration::from_secs(60)).await;
    let line = driver.wait_for_log(|l| l.contains("serving /metrics"), Duration::from_secs(20));
    let entry: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let address = entry["address"].as_str().expect("the metrics address").to_string();
    if let Some(cloud) = target.emulator() {
        // A slow create: the call is still waiting when its deadline passes.
        let mut latency = cloud.handle.cloud().latency();
        latency.default_ms = 2000;
        cloud.handle.cloud().set_latency(latency);
    }
    let mut c = ControllerClient::new(channel);
    let mut request = tonic::Request::new(create("pvc-cut-off", 1));
    request.set_timeout(Duration::from_millis(20));
    request.metadata_mut().insert("x-request-id", "req-cut-off".parse().unwrap());
    let status = c.create_volume(request).await.unwrap_err();
    assert!(matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded), "{status:?}");

    let line = driver.wait_for_log(|l| l.contains("rpc cancelled"), Duration::from_secs(10));
    let entry: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    assert_eq!(entry["code"], "DeadlineExceeded", "{line}");
    assert_eq!(entry["span"]["method"], "CreateVolume", "{line}");
    // The span's own name is also `name` in the JSON, so the field is looked for as text.
    assert!(line.contains(r#""name":"pvc-cut-off""#), "{line}");
    assert_eq!(entry["span"]["request_id"], "req-cut-off", "{line}");
    assert!(entry["duration_ms"].as_f64().is_some_and(|d| d >= 15.0), "{line}");
    let metrics = testkit::http_get(&address, "/metrics");
    assert!(
        metrics.contains(r#"cinder_evs_csi_csi_rpc_total{method="CreateVolume",code="DeadlineExceeded"} 1"#),
        "{metrics}"
    );

    let retried = c.create_volume(create("pvc-cut-off", 1)).await.unwrap().into_inner().volume.unwrap();
    let named = target.api.volumes_named("pvc-cut-off").await;
    assert_eq!(named.len(), 1, "one volume, whatever the cut-off call had done: {named:?}");
    assert_eq!(named[0]["id"], retried.volume_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_is_the_quota_left_overall_and_per_type() {
    let s = setup().await;
    let mut c = s.client.clone();
    let project = s.target.user.project_id.clone();
    let initial = s.target.types.initial;
    s.target.admin.set_quota(&project, "gigabytes", 10).await;
    s.target.admin.set_quota(&project, &format!("gigabytes_{initial}"), 4).await;
    s.create(of_type(create("pvc-capacity", 1), initial)).await;

    let overall = c.get_capacity(pb::GetCapacityRequest::default()).await.unwrap().into_inner();
    assert_eq!(overall.available_capacity, 9 * GIB);
    assert_eq!(overall.minimum_volume_size, Some(GIB));
    let typed = pb::GetCapacityRequest {
        parameters: HashMap::from([("type".to_string(), initial.to_string())]),
        ..Default::default()
    };
    let typed = c.get_capacity(typed).await.unwrap().into_inner();
    assert_eq!(typed.available_capacity, 3 * GIB);
}
