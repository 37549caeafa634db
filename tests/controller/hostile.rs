//! Hostile requests against the controller binary over its socket, on the emulator's OpenStack
//! and Huawei faces at once (two clouds configured: `test` and `hw`). Every attack asserts the
//! precise gRPC code and that the cloud's volumes, snapshots and backups (with sizes, statuses,
//! metadata and attachments) are exactly as before.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use cinder_evs_csi::cloud::Backend;
use cinder_evs_csi::cloud::types::{SnapshotSpec, VolumeSpec};
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::controller_client::ControllerClient;
use cinder_evs_csi::csi::pb::group_controller_client::GroupControllerClient;
use cinder_evs_csi::csi::pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
use testkit::cloud::{Auth, HuaweiAuth, clouds_yaml, emulator, huawei_yaml};
use testkit::requests::{GIB, mount_cap};
use tonic::Code;

type Client = ControllerClient<tonic::transport::Channel>;

const CLUSTER_KEY: &str = "cinder-evs-csi/cluster-id";
const WAIT: Duration = Duration::from_secs(30);

/// One emulator, a controller configured with both of its faces, and resources to attack.
struct World {
    cloud: testkit::emulator::TestCloud,
    _driver: testkit::Driver,
    c: Client,
    groups: GroupControllerClient<tonic::transport::Channel>,
    server: String,
    /// An OpenStack volume with a snapshot (so DeleteVolume must refuse it).
    victim: String,
    /// Its snapshot's handle.
    snapshot: String,
    /// Another OpenStack volume.
    other: String,
    /// A Huawei volume.
    hw: String,
}

/// The two-cloud clouds.yaml: OpenStack as `test`, the Huawei face as `hw`.
fn two_clouds(cloud: &testkit::emulator::TestCloud) -> String {
    let openstack = clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, "");
    let huawei = huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), "");
    format!("{openstack}{}", huawei.trim_start_matches("clouds:\n"))
}

async fn world() -> World {
    let cloud = emulator(|_| {}).await;
    let yaml = two_clouds(&cloud);
    let config = cloud.dir.path().join("clouds.yaml");
    std::fs::write(&config, &yaml).unwrap();
    let (driver, channel) =
        testkit::start_controller(cloud.dir.path(), &config, &["--cloud", "test"], Duration::from_secs(20))
            .await;
    let mut c = ControllerClient::new(channel.clone());
    let victim = create(&mut c, "pvc-victim", "test").await;
    let other = create(&mut c, "pvc-other", "test").await;
    let hw = create(&mut c, "pvc-hw", "hw").await;
    let snapshot = c
        .create_snapshot(pb::CreateSnapshotRequest {
            name: "snap-victim".into(),
            source_volume_id: victim.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .snapshot
        .unwrap()
        .snapshot_id;
    let server = cloud.handle.this_host_server_id().unwrap();
    let w = World {
        groups: GroupControllerClient::new(channel),
        cloud,
        _driver: driver,
        c,
        server,
        victim,
        snapshot,
        other,
        hw,
    };
    w.settle().await;
    w
}

async fn create(c: &mut Client, name: &str, cloud: &str) -> String {
    let mut parameters = HashMap::from([("cloud".to_string(), cloud.to_string())]);
    if cloud == "hw" {
        parameters.insert("availability".into(), "nova".into());
    }
    let request = pb::CreateVolumeRequest {
        name: name.into(),
        // EVS data disks start at 10 GiB.
        capacity_range: Some(pb::CapacityRange { required_bytes: 10 * GIB, limit_bytes: 0 }),
        volume_capabilities: vec![mount_cap()],
        parameters,
        ..Default::default()
    };
    c.create_volume(request).await.unwrap().into_inner().volume.unwrap().volume_id
}

/// The bare cloud id of a handle.
fn bare(handle: &str) -> &str {
    handle.rsplit_once(':').map_or(handle, |(_, id)| id)
}

impl World {
    /// Everything the cloud holds that an attack could change.
    fn state(&self) -> String {
        self.cloud.handle.cloud().read(|w| {
            let mut out = String::new();
            for (project, store) in &w.stores {
                for v in store.volumes.values() {
                    let attached: Vec<_> = v.attachments.iter().map(|a| a.server_id.clone()).collect();
                    out += &format!(
                        "{project} volume {} {} {}GiB {} {:?} {:?}\n",
                        v.id, v.name, v.size, v.status, v.metadata, attached
                    );
                }
                for s in store.snapshots.values() {
                    out += &format!(
                        "{project} snapshot {} {} {} {} {:?} .\n",
                        s.id, s.volume_id, s.size, s.status, s.metadata
                    );
                }
                for b in store.backups.values() {
                    out += &format!("{project} backup {} {} {} .\n", b.id, b.volume_id, b.status);
                }
            }
            out
        })
    }

    /// Waits until nothing is in a transition, so that states compare.
    async fn settle(&self) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let state = self.state();
            let moving = ["creating", "attaching", "detaching", "deleting", "extending", "reserved"];
            if !moving.iter().any(|m| state.contains(&format!(" {m} "))) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the cloud never settled:\n{state}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Ids that try to reach another resource or query through the handle.
fn hostile_volume_ids(w: &World) -> Vec<String> {
    let (v, o, h) = (bare(&w.victim), bare(&w.other), bare(&w.hw));
    vec![
        format!("../volumes/{v}"),
        format!("x/../{o}"),
        format!("test:x/../{o}"),
        format!("hw:../cloudvolumes/{h}"),
        format!("hw:{h}/../../cloudvolumes/{h}"),
        format!("{v}?cascade=true"),
        format!("test:{v}?cascade=true"),
        format!("{v}#fragment"),
        format!("{v}%2F..%2F{o}"),
        format!("%2e%2e/volumes/{v}"),
        format!("{v}/action"),
        format!("{v} "),
        format!("nowhere:{v}"),
        "detail".into(),
        "-".into(),
        ".".into(),
        "..".into(),
        "x".repeat(10 * 1024),
        format!("{}{v}", "a:".repeat(3000)),
    ]
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(s) => s.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_volume_ids_touch_nothing_and_get_the_code_of_an_id_that_cannot_exist() {
    let mut w = world().await;
    let before = w.state();
    let server = w.server.clone();
    for id in hostile_volume_ids(&w) {
        let short: String = id.chars().take(60).collect();
        let checks: Vec<(&str, Code, Code)> = vec![
            (
                "DeleteVolume",
                Code::Ok,
                code(
                    w.c.delete_volume(pb::DeleteVolumeRequest {
                        volume_id: id.clone(),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "ControllerPublishVolume",
                Code::NotFound,
                code(
                    w.c.controller_publish_volume(pb::ControllerPublishVolumeRequest {
                        volume_id: id.clone(),
                        node_id: server.clone(),
                        volume_capability: Some(mount_cap()),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "ControllerUnpublishVolume",
                Code::Ok,
                code(
                    w.c.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest {
                        volume_id: id.clone(),
                        node_id: server.clone(),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "ValidateVolumeCapabilities",
                Code::NotFound,
                code(
                    w.c.validate_volume_capabilities(pb::ValidateVolumeCapabilitiesRequest {
                        volume_id: id.clone(),
                        volume_capabilities: vec![mount_cap()],
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "ControllerGetVolume",
                Code::NotFound,
                code(
                    w.c.controller_get_volume(pb::ControllerGetVolumeRequest { volume_id: id.clone() }).await,
                ),
            ),
            (
                "ControllerExpandVolume",
                Code::NotFound,
                code(
                    w.c.controller_expand_volume(pb::ControllerExpandVolumeRequest {
                        volume_id: id.clone(),
                        capacity_range: Some(pb::CapacityRange { required_bytes: 3 * GIB, limit_bytes: 0 }),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "ControllerModifyVolume",
                Code::NotFound,
                code(
                    w.c.controller_modify_volume(pb::ControllerModifyVolumeRequest {
                        volume_id: id.clone(),
                        mutable_parameters: HashMap::from([("type".to_string(), "fast".to_string())]),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "CreateSnapshot",
                Code::NotFound,
                code(
                    w.c.create_snapshot(pb::CreateSnapshotRequest {
                        name: "snap-hostile".into(),
                        source_volume_id: id.clone(),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "CreateVolume from volume",
                Code::NotFound,
                code(
                    w.c.create_volume(pb::CreateVolumeRequest {
                        name: "pvc-hostile-clone".into(),
                        volume_capabilities: vec![mount_cap()],
                        volume_content_source: Some(pb::VolumeContentSource {
                            r#type: Some(Type::Volume(VolumeSource { volume_id: id.clone() })),
                        }),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "CreateVolumeGroupSnapshot",
                Code::NotFound,
                code(
                    w.groups
                        .create_volume_group_snapshot(pb::CreateVolumeGroupSnapshotRequest {
                            name: "group-hostile".into(),
                            source_volume_ids: vec![w.victim.clone(), id.clone()],
                            ..Default::default()
                        })
                        .await,
                ),
            ),
        ];
        for (rpc, expected, got) in checks {
            assert_eq!(got, expected, "{rpc} with volume id {short:?}");
        }
        let listed = w
            .c
            .list_snapshots(pb::ListSnapshotsRequest { source_volume_id: id.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(listed.entries.is_empty(), "ListSnapshots by source {short:?}: {listed:?}");
        w.settle().await;
        assert_eq!(w.state(), before, "the cloud changed after hostile volume id {short:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_snapshot_and_group_ids_touch_nothing() {
    let mut w = world().await;
    let before = w.state();
    let (s, v) = (bare(&w.snapshot).to_string(), bare(&w.victim).to_string());
    let hostile = vec![
        format!("../volumes/{v}"),
        format!("../snapshots/{s}"),
        format!("backup/../volumes/{v}"),
        format!("backup/../../volumes/{v}"),
        format!("test:backup/{s}/../../volumes/{v}"),
        format!("{s}?force=true"),
        format!("backup/{s}#x"),
        format!("hw:../snapshots/{s}"),
        format!("{s}%2F"),
        "detail".into(),
        "backup/".into(),
        "x".repeat(10 * 1024),
    ];
    for id in hostile {
        let short: String = id.chars().take(60).collect();
        let checks: Vec<(&str, Code, Code)> = vec![
            (
                "DeleteSnapshot",
                Code::Ok,
                code(
                    w.c.delete_snapshot(pb::DeleteSnapshotRequest {
                        snapshot_id: id.clone(),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "GetSnapshot",
                Code::NotFound,
                code(
                    w.c.get_snapshot(pb::GetSnapshotRequest {
                        snapshot_id: id.clone(),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "CreateVolume from snapshot",
                Code::NotFound,
                code(
                    w.c.create_volume(pb::CreateVolumeRequest {
                        name: "pvc-hostile-restore".into(),
                        volume_capabilities: vec![mount_cap()],
                        volume_content_source: Some(pb::VolumeContentSource {
                            r#type: Some(Type::Snapshot(SnapshotSource { snapshot_id: id.clone() })),
                        }),
                        ..Default::default()
                    })
                    .await,
                ),
            ),
            (
                "DeleteVolumeGroupSnapshot",
                Code::Ok,
                code(
                    w.groups
                        .delete_volume_group_snapshot(pb::DeleteVolumeGroupSnapshotRequest {
                            group_snapshot_id: id.clone(),
                            ..Default::default()
                        })
                        .await,
                ),
            ),
            (
                "GetVolumeGroupSnapshot",
                Code::NotFound,
                code(
                    w.groups
                        .get_volume_group_snapshot(pb::GetVolumeGroupSnapshotRequest {
                            group_snapshot_id: id.clone(),
                            ..Default::default()
                        })
                        .await,
                ),
            ),
        ];
        for (rpc, expected, got) in checks {
            assert_eq!(got, expected, "{rpc} with snapshot id {short:?}");
        }
        let listed =
            w.c.list_snapshots(pb::ListSnapshotsRequest { snapshot_id: id.clone(), ..Default::default() })
                .await
                .unwrap()
                .into_inner();
        assert!(listed.entries.is_empty(), "ListSnapshots by id {short:?}: {listed:?}");
        w.settle().await;
        assert_eq!(w.state(), before, "the cloud changed after hostile snapshot id {short:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_node_ids_attach_and_detach_nothing() {
    let mut w = world().await;
    let before = w.state();
    let s = w.server.clone();
    for node in [
        format!("{s}?x=1"),
        format!("{s}/os-volume_attachments"),
        format!("../servers/{s}"),
        format!("{s}#"),
        format!("{s}%2F"),
        "x".repeat(10 * 1024),
    ] {
        let short: String = node.chars().take(60).collect();
        for volume in [w.victim.clone(), w.hw.clone()] {
            let publish =
                w.c.controller_publish_volume(pb::ControllerPublishVolumeRequest {
                    volume_id: volume.clone(),
                    node_id: node.clone(),
                    volume_capability: Some(mount_cap()),
                    ..Default::default()
                })
                .await;
            assert_eq!(code(publish), Code::NotFound, "publish of {volume} to node {short:?}");
            let unpublish =
                w.c.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest {
                    volume_id: volume.clone(),
                    node_id: node.clone(),
                    ..Default::default()
                })
                .await;
            assert_eq!(code(unpublish), Code::Ok, "unpublish of {volume} from node {short:?}");
        }
        w.settle().await;
        assert_eq!(w.state(), before, "the cloud changed after hostile node id {short:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_in_any_string_field_are_invalid_argument() {
    let mut w = world().await;
    let before = w.state();
    let v = w.victim.clone();
    let nul = |s: &str| format!("{s}\0");
    let mut params = HashMap::from([("type".to_string(), nul("fast"))]);
    let results = vec![
        (
            "CreateVolume name",
            code(
                w.c.create_volume(pb::CreateVolumeRequest {
                    name: nul("pvc"),
                    volume_capabilities: vec![mount_cap()],
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "CreateVolume parameter",
            code(
                w.c.create_volume(pb::CreateVolumeRequest {
                    name: "pvc-nul".into(),
                    volume_capabilities: vec![mount_cap()],
                    parameters: params.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "DeleteVolume",
            code(
                w.c.delete_volume(pb::DeleteVolumeRequest { volume_id: nul(&v), ..Default::default() }).await,
            ),
        ),
        (
            "ControllerPublishVolume node",
            code(
                w.c.controller_publish_volume(pb::ControllerPublishVolumeRequest {
                    volume_id: v.clone(),
                    node_id: nul(&w.server),
                    volume_capability: Some(mount_cap()),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ControllerUnpublishVolume",
            code(
                w.c.controller_unpublish_volume(pb::ControllerUnpublishVolumeRequest {
                    volume_id: nul(&v),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ControllerExpandVolume",
            code(
                w.c.controller_expand_volume(pb::ControllerExpandVolumeRequest {
                    volume_id: nul(&v),
                    capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ControllerModifyVolume",
            code(
                w.c.controller_modify_volume(pb::ControllerModifyVolumeRequest {
                    volume_id: v.clone(),
                    mutable_parameters: std::mem::take(&mut params),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "CreateSnapshot name",
            code(
                w.c.create_snapshot(pb::CreateSnapshotRequest {
                    name: nul("snap"),
                    source_volume_id: v.clone(),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "DeleteSnapshot",
            code(
                w.c.delete_snapshot(pb::DeleteSnapshotRequest {
                    snapshot_id: nul(&w.snapshot),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ListSnapshots",
            code(
                w.c.list_snapshots(pb::ListSnapshotsRequest {
                    source_volume_id: nul(&v),
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "ListVolumes token",
            code(
                w.c.list_volumes(pb::ListVolumesRequest { starting_token: nul("x"), ..Default::default() })
                    .await,
            ),
        ),
        (
            "GetCapacity",
            code(
                w.c.get_capacity(pb::GetCapacityRequest {
                    parameters: HashMap::from([("type".to_string(), nul("x"))]),
                    ..Default::default()
                })
                .await,
            ),
        ),
    ];
    for (what, got) in results {
        assert_eq!(got, Code::InvalidArgument, "{what}");
    }
    w.settle().await;
    assert_eq!(w.state(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_message_limit_is_resource_exhausted_and_a_long_snapshot_name_invalid() {
    let mut w = world().await;
    let before = w.state();
    let huge = pb::DeleteVolumeRequest { volume_id: "x".repeat(5 << 20), ..Default::default() };
    assert_eq!(code(w.c.delete_volume(huge).await), Code::ResourceExhausted);
    let long = pb::CreateSnapshotRequest {
        name: "s".repeat(10 * 1024),
        source_volume_id: w.victim.clone(),
        ..Default::default()
    };
    assert_eq!(code(w.c.create_snapshot(long).await), Code::InvalidArgument);
    let just_over = pb::CreateSnapshotRequest {
        name: "s".repeat(256),
        source_volume_id: w.victim.clone(),
        ..Default::default()
    };
    assert_eq!(code(w.c.create_snapshot(just_over).await), Code::InvalidArgument);
    w.settle().await;
    assert_eq!(w.state(), before);
}

/// A volume (and snapshot) that another cluster's driver created, made straight in the cloud.
async fn foreign(w: &World, cloud: &str, name: &str) -> (String, String) {
    let (volume, snapshot) = if cloud == "test" {
        let yaml = clouds_yaml(&w.cloud.handle.demo(), Auth::PasswordByName, "");
        let b = testkit::cloud::backend(&yaml);
        made_by_another_cluster(b.backend.as_ref(), name, None).await
    } else {
        let yaml = huawei_yaml(&w.cloud.handle, HuaweiAuth::AkSk(None), "");
        let b = testkit::cloud::huawei_backend(&yaml);
        made_by_another_cluster(b.backend.as_ref(), name, Some("nova".into())).await
    };
    (format!("{cloud}:{volume}"), format!("{cloud}:{snapshot}"))
}

async fn made_by_another_cluster(
    backend: &dyn Backend,
    name: &str,
    zone: Option<String>,
) -> (String, String) {
    let metadata = BTreeMap::from([(CLUSTER_KEY.to_string(), "other-cluster".to_string())]);
    let spec = VolumeSpec {
        name: name.into(),
        size_gib: 10,
        metadata: metadata.clone(),
        zone,
        ..Default::default()
    };
    let volume = backend.create_volume(&spec).await.unwrap();
    backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    let spec = SnapshotSpec {
        name: format!("{name}-snap"),
        volume_id: testkit::cid(&volume.id),
        force: true,
        metadata,
    };
    let snapshot = backend.create_snapshot(&spec).await.unwrap();
    backend.wait_snapshot_ready(&testkit::cid(&snapshot.id), WAIT).await.unwrap();
    (volume.id, snapshot.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_clusters_volumes_and_snapshots_are_refused_on_both_clouds() {
    let mut w = world().await;
    let mut made = Vec::new();
    for cloud in ["test", "hw"] {
        let (volume, snapshot) = foreign(&w, cloud, &format!("pvc-foreign-{cloud}")).await;
        made.push(bare(&volume).to_string());
        made.push(bare(&snapshot).to_string());
        w.settle().await;
        let before = w.state();
        let mut refusals = vec![
            (
                "DeleteVolume",
                w.c.delete_volume(pb::DeleteVolumeRequest {
                    volume_id: volume.clone(),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            ),
            (
                "ControllerExpandVolume",
                w.c.controller_expand_volume(pb::ControllerExpandVolumeRequest {
                    volume_id: volume.clone(),
                    capacity_range: Some(pb::CapacityRange { required_bytes: 20 * GIB, limit_bytes: 0 }),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            ),
            (
                "ControllerModifyVolume",
                w.c.controller_modify_volume(pb::ControllerModifyVolumeRequest {
                    volume_id: volume.clone(),
                    mutable_parameters: HashMap::from([("iops".to_string(), "3000".to_string())]),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            ),
            (
                "ControllerPublishVolume",
                w.c.controller_publish_volume(pb::ControllerPublishVolumeRequest {
                    volume_id: volume.clone(),
                    node_id: w.server.clone(),
                    volume_capability: Some(mount_cap()),
                    ..Default::default()
                })
                .await
                .map(|_| ()),
            ),
        ];
        refusals.push((
            "DeleteSnapshot",
            w.c.delete_snapshot(pb::DeleteSnapshotRequest {
                snapshot_id: snapshot.clone(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
        ));
        for (rpc, result) in refusals {
            let status = result.expect_err(&format!("{rpc} on {cloud}:\n{}", w.state()));
            assert_eq!(status.code(), Code::FailedPrecondition, "{rpc} on {cloud}: {status:?}");
            assert!(
                status.message().contains("other-cluster"),
                "{rpc} names the owner: {}",
                status.message()
            );
        }
        w.settle().await;
        assert_eq!(w.state(), before, "another cluster's resources on {cloud} changed");

        let volumes = w.c.list_volumes(pb::ListVolumesRequest::default()).await.unwrap().into_inner();
        let listed: Vec<String> =
            volumes.entries.iter().map(|e| e.volume.clone().unwrap().volume_id).collect();
        assert!(!listed.iter().any(|id| bare(id) == bare(&volume)), "ListVolumes shows {volume}: {listed:?}");
        // An unfiltered ListSnapshots walks the default cloud only; by id reaches every cloud.
        if cloud == "test" {
            let snapshots =
                w.c.list_snapshots(pb::ListSnapshotsRequest::default()).await.unwrap().into_inner();
            let listed: Vec<String> =
                snapshots.entries.iter().map(|e| e.snapshot.clone().unwrap().snapshot_id).collect();
            assert!(!listed.iter().any(|id| bare(id) == bare(&snapshot)), "ListSnapshots shows {snapshot}");
        }
        let by_id = w
            .c
            .list_snapshots(pb::ListSnapshotsRequest { snapshot_id: snapshot.clone(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        assert!(by_id.entries.is_empty(), "ListSnapshots by id shows {snapshot}");
    }
    let state = w.state();
    for id in made {
        assert!(state.contains(&id), "{id} of another cluster is gone:\n{state}");
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_volumes_stay_listed_and_usable_and_handles_are_stable_across_clouds() {
    let mut w = world().await;
    // Two clouds: every new handle names its cloud, the default's included.
    assert!(w.victim.starts_with("test:"), "{}", w.victim);
    assert!(w.hw.starts_with("hw:"), "{}", w.hw);
    // A volume made by hand (no cluster id), as `import` adopts.
    let yaml = clouds_yaml(&w.cloud.handle.demo(), Auth::PasswordByName, "");
    let legacy = testkit::cloud::backend(&yaml);
    let backend = legacy.backend.as_ref();
    let spec = VolumeSpec { name: "legacy".into(), size_gib: 1, ..Default::default() };
    let imported = backend.create_volume(&spec).await.unwrap().id;
    backend.wait_volume_ready(&testkit::cid(&imported), WAIT).await.unwrap();

    let listed = w.c.list_volumes(pb::ListVolumesRequest::default()).await.unwrap().into_inner();
    let ids: Vec<String> = listed.entries.iter().map(|e| e.volume.clone().unwrap().volume_id).collect();
    assert!(ids.contains(&format!("test:{imported}")), "imported volume listed: {ids:?}");
    assert!(ids.contains(&w.victim), "our volume listed: {ids:?}");

    // A bare id (a PV written by a one-cloud driver) still reaches its volume.
    let expanded =
        w.c.controller_expand_volume(pb::ControllerExpandVolumeRequest {
            volume_id: imported.clone(),
            capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
            ..Default::default()
        })
        .await
        .expect("an imported volume is usable")
        .into_inner();
    assert_eq!(expanded.capacity_bytes, 2 * GIB);
    let got =
        w.c.controller_get_volume(pb::ControllerGetVolumeRequest { volume_id: bare(&w.hw).to_string() })
            .await
            .expect("a bare id of a non-default cloud is found")
            .into_inner();
    assert_eq!(bare(&got.volume.unwrap().volume_id), bare(&w.hw));
}
