//! `gc` against the emulator and a fake Kubernetes API: it finds the volumes, snapshots and
//! attachments of this cluster id that no PersistentVolume, VolumeSnapshotContent or Node
//! references, removes them only with `delete`, and never touches another cluster's.

use std::collections::BTreeMap;
use std::time::Duration;

use cinder_evs_csi::cloud::Backend;
use cinder_evs_csi::cloud::types::{SnapshotSpec, VolumeSpec};
use cinder_evs_csi::contract::ownership::META_CLUSTER_ID;
use cinder_evs_csi::k8s::gc::{self, Action, Finding, GcSettings, Kind};
use cinder_evs_emulator::ServerConfig;
use serde_json::{Value, json};
use testkit::cloud::{Auth, TestBackend, TestCloud, backend, clouds_yaml, emulator};
use testkit::fake_kube::{FakeKube, list};

const DRIVER: &str = "csi.cinder-evs.io";
const WAIT: Duration = Duration::from_secs(30);
const GONE_SERVER: &str = "0000aaaa-0000-4000-8000-00000000dead";

struct World {
    _cloud: TestCloud,
    backend: TestBackend,
    kube: FakeKube,
    node_server: String,
    /// Ids by role.
    ids: BTreeMap<&'static str, String>,
}

async fn volume(backend: &dyn Backend, name: &str, cluster: Option<&str>) -> String {
    let mut metadata = BTreeMap::new();
    if let Some(c) = cluster {
        metadata.insert(META_CLUSTER_ID.to_string(), c.to_string());
    }
    let spec = VolumeSpec { name: name.into(), size_gib: 1, metadata, ..Default::default() };
    let id = backend.create_volume(&spec).await.unwrap().id;
    backend.wait_volume_ready(&testkit::cid(&id), WAIT).await.unwrap();
    id
}

async fn snapshot(backend: &dyn Backend, name: &str, volume_id: &str, cluster: &str) -> String {
    let metadata = BTreeMap::from([(META_CLUSTER_ID.to_string(), cluster.to_string())]);
    let spec = SnapshotSpec { name: name.into(), volume_id: testkit::cid(volume_id), force: true, metadata };
    let id = backend.create_snapshot(&spec).await.unwrap().id;
    backend.wait_snapshot_ready(&testkit::cid(&id), WAIT).await.unwrap();
    id
}

fn pv(name: &str, handle: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name},
           "spec": {"csi": {"driver": DRIVER, "volumeHandle": handle}}})
}

/// A cloud with, for cluster `mine`: a referenced volume attached to a live node, a referenced
/// volume attached to a server that is no Node, an orphan volume, a referenced and an orphan snapshot; and an orphan of `theirs`
/// and one without cluster id.
async fn world() -> World {
    let cloud = emulator(|config| {
        config.servers.push(ServerConfig {
            id: Some(GONE_SERVER.into()),
            name: "gone".into(),
            project: "demo".into(),
            availability_zone: None,
            this_host: false,
        });
    })
    .await;
    let creds = cloud.handle.credentials("demo").unwrap();
    let backend = backend(&clouds_yaml(&creds, Auth::PasswordByName, ""));
    let b: &dyn Backend = backend.backend.as_ref();
    let node_server = cloud.handle.this_host_server_id().unwrap();
    let mut ids = BTreeMap::new();
    ids.insert("referenced", volume(b, "pvc-referenced", Some("mine")).await);
    ids.insert("stranded", volume(b, "pvc-stranded", Some("mine")).await);
    ids.insert("orphan", volume(b, "pvc-orphan", Some("mine")).await);
    ids.insert("theirs", volume(b, "pvc-theirs", Some("theirs")).await);
    ids.insert("untagged", volume(b, "someone-elses", None).await);
    ids.insert("snap-referenced", snapshot(b, "snap-referenced", &ids["referenced"], "mine").await);
    ids.insert("snap-orphan", snapshot(b, "snap-orphan", &ids["referenced"], "mine").await);
    b.attach(&testkit::cid(&ids["referenced"]), &testkit::cid(&node_server), WAIT).await.unwrap();
    b.attach(&testkit::cid(&ids["stranded"]), &testkit::cid(GONE_SERVER), WAIT).await.unwrap();

    let kube = FakeKube::start().await;
    kube.serve(
        "/api/v1/persistentvolumes",
        list(
            "v1",
            "PersistentVolumeList",
            vec![pv("pv-1", &ids["referenced"]), pv("pv-2", &ids["stranded"]), pv("pv-x", "unrelated")],
        ),
    );
    kube.serve(
        "/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents",
        list(
            "snapshot.storage.k8s.io/v1",
            "VolumeSnapshotContentList",
            vec![json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshotContent",
                "metadata": {"name": "snapcontent-1"},
                "spec": {"driver": DRIVER, "deletionPolicy": "Delete", "source": {"volumeHandle": ids["referenced"]},
                         "volumeSnapshotRef": {"name": "s", "namespace": "default"}},
                "status": {"snapshotHandle": ids["snap-referenced"]}})],
        ),
    );
    kube.serve(
        "/api/v1/nodes",
        list(
            "v1",
            "NodeList",
            vec![json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"},
                        "spec": {"providerID": format!("openstack:///{node_server}")}})],
        ),
    );
    World { _cloud: cloud, backend, kube, node_server, ids }
}

fn settings(delete: bool) -> GcSettings {
    GcSettings { cluster_id: "mine".into(), driver_name: DRIVER.into(), delete, detach_timeout: WAIT }
}

fn summary(findings: &[Finding]) -> Vec<(Kind, String, String)> {
    findings.iter().map(|f| (f.kind, f.id.clone(), f.name.clone())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_lists_exactly_this_clusters_orphans_and_changes_nothing() {
    let w = world().await;
    let b: &dyn Backend = w.backend.backend.as_ref();
    let findings = gc::run(&w.kube.client().await, b, &settings(false)).await.unwrap();
    let mut expected = vec![
        (Kind::Attachment, w.ids["stranded"].clone(), GONE_SERVER.to_string()),
        (Kind::Snapshot, w.ids["snap-orphan"].clone(), "snap-orphan".to_string()),
        (Kind::Volume, w.ids["orphan"].clone(), "pvc-orphan".to_string()),
    ];
    expected.sort();
    assert_eq!(summary(&findings), expected);
    assert!(findings.iter().all(|f| f.action == Action::WouldRemove), "{findings:?}");
    assert!(b.get_volume(&testkit::cid(&w.ids["orphan"])).await.unwrap().is_some());
    assert!(b.get_snapshot(&testkit::cid(&w.ids["snap-orphan"])).await.unwrap().is_some());
    assert_eq!(b.get_volume(&testkit::cid(&w.ids["stranded"])).await.unwrap().unwrap().attachments.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_orphans_and_keeps_everything_else() {
    let w = world().await;
    let b: &dyn Backend = w.backend.backend.as_ref();
    let findings = gc::run(&w.kube.client().await, b, &settings(true)).await.unwrap();
    assert_eq!(findings.len(), 3);
    assert!(findings.iter().all(|f| f.action == Action::Removed), "{findings:?}");
    b.wait_volume_deleted(&testkit::cid(&w.ids["orphan"]), WAIT).await.unwrap();
    let attached: Vec<_> = b
        .get_volume(&testkit::cid(&w.ids["referenced"]))
        .await
        .unwrap()
        .unwrap()
        .attachments
        .into_iter()
        .map(|a| a.server_id)
        .collect();
    assert_eq!(attached, vec![w.node_server.clone()]);
    assert!(b.get_volume(&testkit::cid(&w.ids["stranded"])).await.unwrap().unwrap().attachments.is_empty());
    for kept in ["referenced", "stranded", "theirs", "untagged"] {
        assert!(b.get_volume(&testkit::cid(&w.ids[kept])).await.unwrap().is_some(), "{kept} was removed");
    }
    assert!(b.get_snapshot(&testkit::cid(&w.ids["snap-referenced"])).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_snapshot_api_snapshots_are_not_judged() {
    let w = world().await;
    w.kube.serve_sequence("/apis/snapshot.storage.k8s.io/v1/volumesnapshotcontents", vec![]);
    let findings =
        gc::run(&w.kube.client().await, w.backend.backend.as_ref(), &settings(false)).await.unwrap();
    assert!(findings.iter().all(|f| f.kind != Kind::Snapshot), "{findings:?}");
    assert!(findings.iter().any(|f| f.kind == Kind::Volume));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_kubernetes_listing_stops_the_run_before_any_removal() {
    let w = world().await;
    w.kube.serve_sequence("/api/v1/persistentvolumes", vec![]);
    let b: &dyn Backend = w.backend.backend.as_ref();
    let result = gc::run(&w.kube.client().await, b, &settings(true)).await;
    assert!(result.is_err());
    assert!(b.get_volume(&testkit::cid(&w.ids["orphan"])).await.unwrap().is_some());
}
