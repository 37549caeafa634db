//! Who the node says it is: the server id and zone from the metadata service or the config
//! drive, in the configured order, reported by NodeGetInfo with the zone as topology.

use std::time::Duration;

use crate::harness::{LoopVolume, MIB, root_or_skip, run};
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::node_identity::{self as identity, IdentityConfig, NodeIdentity, Source};
use testkit::fake_kube::FakeKube;
use testkit::{Driver, temp_socket, unix_channel, wait_for_path};

const DOCUMENT_PATH: &str = "/openstack/latest/meta_data.json";

/// Serves `document` as the metadata service would; returns the document's URL.
async fn metadata_service(document: &'static str) -> String {
    let app = axum::Router::new().route(DOCUMENT_PATH, axum::routing::get(move || async move { document }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}{DOCUMENT_PATH}")
}

/// A fake Kubernetes API answering `GET /api/v1/nodes/worker-1` with `node`.
async fn kubernetes_api(node: &str) -> FakeKube {
    let kube = FakeKube::start().await;
    kube.serve("/api/v1/nodes/worker-1", serde_json::from_str(node).unwrap());
    kube
}

const NODE_WITH_PROVIDER_ID: &str = r#"{"apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "worker-1", "labels": {"topology.kubernetes.io/zone": "az-k8s"}},
    "spec": {"providerID": "openstack:///5b0e3c9a-1111-4222-8333-444455556666"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_takes_id_and_zone_from_the_kubernetes_node_object() {
    let kube = kubernetes_api(NODE_WITH_PROVIDER_ID).await;
    let kubeconfig = &kube.kubeconfig;
    let (_sockdir, path, endpoint) = temp_socket();
    let driver = Driver::start(&[
        "node",
        "--endpoint",
        &endpoint,
        "--node-id-sources",
        "kubernetes",
        "--kube-node-name",
        "worker-1",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]);
    wait_for_path(&path, &driver);
    let mut node = pb::node_client::NodeClient::new(unix_channel(path).await);
    let info = node.node_get_info(pb::NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_id, "5b0e3c9a-1111-4222-8333-444455556666");
    assert_eq!(info.accessible_topology.unwrap().segments["topology.kubernetes.io/zone"], "az-k8s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_object_without_provider_id_passes_on_to_the_next_source() {
    let kube = kubernetes_api(
        r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"}, "spec": {}}"#,
    )
    .await;
    let kubeconfig = &kube.kubeconfig;
    let url = metadata_service(r#"{"uuid": "from-metadata"}"#).await;
    let config = IdentityConfig {
        sources: vec![Source::Kubernetes, Source::Metadata],
        metadata_url: url.clone(),
        kube_node_name: Some("worker-1".into()),
        kubeconfig: Some(kubeconfig.clone()),
        timeout: Duration::from_secs(10),
        ..IdentityConfig::default()
    };
    assert_eq!(identity::resolve(&config).await.unwrap().node_id, "from-metadata");
    let only_kubernetes = IdentityConfig { sources: vec![Source::Kubernetes], ..config };
    let error = identity::resolve(&only_kubernetes).await.unwrap_err().to_string();
    assert!(error.contains("providerID"), "{error}");
}

/// A loop device holding an ext4 config drive (label `config-2`) with `document`.
fn config_drive(dir: &std::path::Path, document: &str) -> LoopVolume {
    let drive = LoopVolume::create_with_id(dir, "config-drive", 16 * MIB);
    let device = drive.device.to_str().unwrap();
    run("mkfs.ext4", &["-q", "-L", "config-2", device]);
    let mount_point = dir.join("drive");
    std::fs::create_dir(&mount_point).unwrap();
    run("mount", &[device, mount_point.to_str().unwrap()]);
    let latest = mount_point.join("openstack/latest");
    std::fs::create_dir_all(&latest).unwrap();
    std::fs::write(latest.join("meta_data.json"), document).unwrap();
    run("umount", &[mount_point.to_str().unwrap()]);
    drive
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_node_id_the_binary_takes_id_and_zone_from_the_metadata_service() {
    let url = metadata_service(
        r#"{"uuid": "9d1c7c1e-0000-4000-8000-00000000abcd", "availability_zone": "eu-west-1b"}"#,
    )
    .await;
    let (_dir, path, endpoint) = temp_socket();
    let driver = Driver::start(&[
        "node",
        "--endpoint",
        &endpoint,
        "--driver-name",
        "test.csi.example.io",
        "--node-id-sources",
        "metadata",
        "--metadata-url",
        &url,
        "--max-volumes-per-node",
        "40",
    ]);
    wait_for_path(&path, &driver);
    let mut node = pb::node_client::NodeClient::new(unix_channel(path).await);
    let info = node.node_get_info(pb::NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_id, "9d1c7c1e-0000-4000-8000-00000000abcd");
    assert_eq!(info.max_volumes_per_node, 40);
    let segments = info.accessible_topology.unwrap().segments;
    assert_eq!(segments["topology.test.csi.example.io/zone"], "eu-west-1b");
    assert_eq!(segments["topology.kubernetes.io/zone"], "eu-west-1b");
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_drive_answers_when_it_comes_first() {
    if !root_or_skip("the_config_drive_answers_when_it_comes_first") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let drive = config_drive(dir.path(), r#"{"uuid": "from-config-drive", "availability_zone": "az-cd"}"#);
    let url = metadata_service(r#"{"uuid": "from-metadata", "availability_zone": "az-md"}"#).await;
    let config = IdentityConfig {
        sources: vec![Source::ConfigDrive, Source::Metadata],
        metadata_url: url,
        config_drive: Some(drive.device.clone()),
        timeout: Duration::from_secs(10),
        ..IdentityConfig::default()
    };
    let identity = identity::resolve(&config).await.unwrap();
    assert_eq!(identity, NodeIdentity { node_id: "from-config-drive".into(), zone: Some("az-cd".into()) });
    let leftovers: Vec<_> = cinder_evs_csi::host::mount::mounts()
        .unwrap()
        .into_iter()
        .filter(|m| m.source == drive.device.to_string_lossy())
        .collect();
    assert!(leftovers.is_empty(), "the config drive is unmounted after reading: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metadata_service_answers_when_it_comes_first() {
    if !root_or_skip("the_metadata_service_answers_when_it_comes_first") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let drive = config_drive(dir.path(), r#"{"uuid": "from-config-drive"}"#);
    let url = metadata_service(r#"{"uuid": "from-metadata"}"#).await;
    let config = IdentityConfig {
        sources: vec![Source::Metadata, Source::ConfigDrive],
        metadata_url: url,
        config_drive: Some(drive.device.clone()),
        timeout: Duration::from_secs(10),
        ..IdentityConfig::default()
    };
    assert_eq!(identity::resolve(&config).await.unwrap().node_id, "from-metadata");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_source_answers_when_an_earlier_one_fails() {
    let url = metadata_service(r#"{"uuid": "from-metadata", "availability_zone": "az-md"}"#).await;
    let config = IdentityConfig {
        sources: vec![Source::ConfigDrive, Source::Metadata],
        metadata_url: url,
        config_drive: Some("/nonexistent/config-drive".into()),
        timeout: Duration::from_secs(10),
        ..IdentityConfig::default()
    };
    let identity = identity::resolve(&config).await.unwrap();
    assert_eq!(identity, NodeIdentity { node_id: "from-metadata".into(), zone: Some("az-md".into()) });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_zone_overrides_the_one_the_metadata_reports() {
    let url = metadata_service(r#"{"uuid": "s1", "availability_zone": "az-md"}"#).await;
    let config = IdentityConfig {
        zone: Some("az-override".into()),
        sources: vec![Source::Metadata],
        metadata_url: url,
        timeout: Duration::from_secs(10),
        ..IdentityConfig::default()
    };
    assert_eq!(identity::resolve(&config).await.unwrap().zone.as_deref(), Some("az-override"));
}
