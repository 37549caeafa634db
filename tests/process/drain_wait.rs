//! `drain-wait`, the node plugin's preStop hook: while the Node is cordoned it waits until no
//! VolumeAttachment of this driver names the node; otherwise it returns at once. Runs against
//! a fake Kubernetes API.

use std::time::Duration;

use cinder_evs_csi::k8s::drain::{self, DrainError, DrainOutcome, DrainSettings};
use serde_json::{Value, json};
use testkit::fake_kube::{FakeKube, list};

const DRIVER: &str = "csi.cinder-evs.io";
const NODE_PATH: &str = "/api/v1/nodes/worker-1";
const ATTACHMENTS_PATH: &str = "/apis/storage.k8s.io/v1/volumeattachments";

fn settings() -> DrainSettings {
    DrainSettings {
        node_name: "worker-1".into(),
        driver_name: DRIVER.into(),
        // Generous: only guards against a hang; the tests end on the fake's answers.
        timeout: Duration::from_secs(60),
        interval: Duration::from_millis(20),
    }
}

fn node(unschedulable: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker-1"},
           "spec": {"unschedulable": unschedulable}})
}

fn attachment(name: &str, node: &str, attacher: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": {"name": name},
           "spec": {"attacher": attacher, "nodeName": node, "source": {"persistentVolumeName": "pv-1"}}})
}

fn attachments(items: Vec<Value>) -> Value {
    list("storage.k8s.io/v1", "VolumeAttachmentList", items)
}

#[tokio::test]
async fn a_node_that_is_not_cordoned_is_not_waited_for() {
    let kube = FakeKube::start().await;
    kube.serve(NODE_PATH, node(false));
    kube.serve(ATTACHMENTS_PATH, attachments(vec![attachment("va-1", "worker-1", DRIVER)]));
    let outcome = drain::wait(&kube.client().await, &settings()).await.unwrap();
    assert_eq!(outcome, DrainOutcome::NotDraining);
    assert_eq!(kube.hits(ATTACHMENTS_PATH), 0);
}

#[tokio::test]
async fn a_cordoned_node_waits_until_its_attachments_are_gone() {
    let kube = FakeKube::start().await;
    kube.serve(NODE_PATH, node(true));
    kube.serve_sequence(
        ATTACHMENTS_PATH,
        vec![
            attachments(vec![attachment("va-1", "worker-1", DRIVER), attachment("va-2", "worker-1", DRIVER)]),
            attachments(vec![attachment("va-2", "worker-1", DRIVER)]),
            attachments(vec![]),
        ],
    );
    let outcome = drain::wait(&kube.client().await, &settings()).await.unwrap();
    assert_eq!(outcome, DrainOutcome::Drained { listings: 3 });
}

#[tokio::test]
async fn attachments_of_other_nodes_and_other_drivers_do_not_hold_the_drain() {
    let kube = FakeKube::start().await;
    kube.serve(NODE_PATH, node(true));
    kube.serve(
        ATTACHMENTS_PATH,
        attachments(vec![
            attachment("va-other-node", "worker-2", DRIVER),
            attachment("va-other-driver", "worker-1", "cinder.csi.openstack.org"),
        ]),
    );
    let outcome = drain::wait(&kube.client().await, &settings()).await.unwrap();
    assert_eq!(outcome, DrainOutcome::Drained { listings: 1 });
}

#[tokio::test]
async fn attachments_that_stay_end_the_wait_with_a_timeout_naming_them() {
    let kube = FakeKube::start().await;
    kube.serve(NODE_PATH, node(true));
    kube.serve(ATTACHMENTS_PATH, attachments(vec![attachment("va-stuck", "worker-1", DRIVER)]));
    let short = DrainSettings { timeout: Duration::from_millis(100), ..settings() };
    let error = drain::wait(&kube.client().await, &short).await.unwrap_err();
    assert!(matches!(error, DrainError::Timeout { .. }), "{error}");
    assert!(error.to_string().contains("va-stuck"), "{error}");
    assert!(kube.hits(ATTACHMENTS_PATH) >= 1);
}

#[tokio::test]
async fn a_node_object_that_is_gone_is_not_waited_for() {
    let kube = FakeKube::start().await;
    let outcome = drain::wait(&kube.client().await, &settings()).await.unwrap();
    assert_eq!(outcome, DrainOutcome::NodeGone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_drain_wait_exits_zero_once_the_node_is_drained() {
    let kube = FakeKube::start().await;
    kube.serve(NODE_PATH, node(true));
    kube.serve_sequence(
        ATTACHMENTS_PATH,
        vec![attachments(vec![attachment("va-1", "worker-1", DRIVER)]), attachments(vec![])],
    );
    let kubeconfig = kube.kubeconfig.to_str().unwrap().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(testkit::bin())
            .args(["drain-wait", "--kube-node-name", "worker-1", "--kubeconfig", &kubeconfig])
            .args(["--interval", "20ms", "--timeout", "60s"])
            .env_remove("CSI_DRIVER_NAME")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    testkit::secrets::assert_clean("drain-wait", "stderr", &String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success());
    assert_eq!(kube.hits(ATTACHMENTS_PATH), 2);
}
