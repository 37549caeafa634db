//! What operators see: one structured log line per RPC, no secret in any log line, and the
//! Prometheus endpoint.

use std::collections::HashMap;
use std::time::Duration;

use cinder_evs_csi::csi::pb;
use nix::sys::signal::Signal;
use testkit::{Driver, http_get, start_node, temp_socket, unix_channel, wait_for_path};

const SECRET_VALUES: &[&str] = &["hunter2-csi-secret", "AKIDEXAMPLE0000001", "tok-5ecr3t-in-context"];

fn stage_request_with_secrets() -> pb::NodeStageVolumeRequest {
    for value in SECRET_VALUES {
        testkit::secrets::register("a CSI secret in NodeStageVolume", value);
    }
    pb::NodeStageVolumeRequest {
        volume_id: "vol-1234".into(),
        staging_target_path: "/var/lib/kubelet/plugins/staging/vol-1234".into(),
        secrets: HashMap::from([
            ("password".into(), SECRET_VALUES[0].into()),
            ("access_key".into(), SECRET_VALUES[1].into()),
        ]),
        volume_context: HashMap::from([
            ("fsType".into(), "ext4".into()),
            ("token".into(), SECRET_VALUES[2].into()),
        ]),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_logs_of_a_request_carrying_secrets_contain_no_secret_value() {
    let (_dir, path, _) = temp_socket();
    let mut driver = start_node(&path, &["--log-level", "debug", "--log-format", "json"]);
    let mut node = pb::node_client::NodeClient::new(unix_channel(path).await);
    // Without a volume capability the request is refused after it has been logged.
    let status = node.node_stage_volume(stage_request_with_secrets()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let request_line =
        driver.wait_for_log(|l| l.contains("rpc request") && l.contains("vol-1234"), Duration::from_secs(10));
    assert!(request_line.contains("<redacted>"), "secrets are shown as redacted: {request_line}");
    assert!(request_line.contains("fsType"), "non-secret context stays visible: {request_line}");
    driver.signal(Signal::SIGTERM);
    driver.wait(Duration::from_secs(10));
    let log = driver.log().join("\n");
    for secret in SECRET_VALUES {
        assert!(!log.contains(secret), "secret {secret} leaked into the log:\n{log}");
    }
}

#[tokio::test]
async fn each_rpc_logs_one_structured_line_with_method_ids_duration_and_code() {
    let (_dir, path, endpoint) = temp_socket();
    let driver =
        Driver::start(&["node", "--endpoint", &endpoint, "--node-id", "server-1", "--log-format", "json"]);
    wait_for_path(&path, &driver);
    let mut node = pb::node_client::NodeClient::new(unix_channel(path).await);
    let mut request = tonic::Request::new(stage_request_with_secrets());
    request.metadata_mut().insert("x-request-id", "req-42".parse().unwrap());
    let status = node.node_stage_volume(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    let line = driver.wait_for_log(
        |l| l.contains("rpc finished") && l.contains("NodeStageVolume"),
        Duration::from_secs(10),
    );
    let entry: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let span = &entry["span"];
    assert_eq!(span["method"], "NodeStageVolume", "{line}");
    assert_eq!(span["volume_id"], "vol-1234", "{line}");
    assert_eq!(span["request_id"], "req-42", "{line}");
    assert_eq!(entry["code"], "InvalidArgument", "{line}");
    assert!(entry["duration_ms"].as_f64().is_some(), "{line}");
    let finished = driver.log().iter().filter(|l| l.contains("rpc finished")).count();
    assert_eq!(finished, 1, "exactly one outcome line per RPC");
}

#[tokio::test]
async fn metrics_endpoint_counts_rpcs_and_reports_rss_and_health() {
    let (_dir, path, endpoint) = temp_socket();
    let driver = Driver::start(&[
        "node",
        "--endpoint",
        &endpoint,
        "--node-id",
        "n",
        "--metrics-address",
        "127.0.0.1:0",
    ]);
    let line = driver.wait_for_log(|l| l.contains("serving /metrics"), Duration::from_secs(20));
    let address = line.split("address=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    wait_for_path(&path, &driver);
    let mut identity = pb::identity_client::IdentityClient::new(unix_channel(path).await);
    identity.probe(pb::ProbeRequest {}).await.unwrap();
    identity.probe(pb::ProbeRequest {}).await.unwrap();

    let health = http_get(&address, "/healthz");
    assert!(health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"), "{health}");
    let metrics = http_get(&address, "/metrics");
    assert!(metrics.contains(r#"cinder_evs_csi_csi_rpc_total{method="Probe",code="Ok"} 2"#), "{metrics}");
    assert!(
        metrics.contains(r#"cinder_evs_csi_csi_rpc_duration_seconds_count{method="Probe"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains("cinder_evs_csi_process_resident_memory_bytes "), "{metrics}");
}

/// A sidecar's deadline that cuts a call short drops the handler in the middle of its wait:
/// the driver still says so, once, with the code, the duration and the ids, and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rpc_cut_off_by_the_callers_deadline_is_logged_and_counted() {
    use testkit::cloud::{Auth, clouds_yaml};
    let cloud = testkit::cloud::emulator(|c| {
        c.transition_latency.insert("volume.creating".into(), Duration::from_secs(30));
    })
    .await;
    let config = cloud.dir.path().join("clouds.yaml");
    std::fs::write(&config, clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, "")).unwrap();
    let extra = ["--metrics-address", "127.0.0.1:0", "--log-format", "json"];
    let (driver, channel) =
        testkit::start_controller(cloud.dir.path(), &config, &extra, Duration::from_secs(60)).await;
    let line = driver.wait_for_log(|l| l.contains("serving /metrics"), Duration::from_secs(20));
    let entry: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    let address = entry["address"].as_str().expect("the metrics address").to_string();

    let mut controller = pb::controller_client::ControllerClient::new(channel);
    let mut request = tonic::Request::new(testkit::requests::create("pvc-slow", 1));
    request.set_timeout(Duration::from_millis(800));
    request.metadata_mut().insert("x-request-id", "req-slow".parse().unwrap());
    let status = controller.create_volume(request).await.unwrap_err();
    assert!(
        matches!(status.code(), tonic::Code::Cancelled | tonic::Code::DeadlineExceeded),
        "the client gave up: {status:?}"
    );

    let line = driver.wait_for_log(|l| l.contains("rpc cancelled"), Duration::from_secs(10));
    let entry: serde_json::Value = serde_json::from_str(&line).expect("json log line");
    assert_eq!(entry["code"], "DeadlineExceeded", "{line}");
    assert_eq!(entry["span"]["method"], "CreateVolume", "{line}");
    // The span's own name is also `name` in the JSON, so the field is looked for as text.
    assert!(line.contains(r#""name":"pvc-slow""#), "{line}");
    assert_eq!(entry["span"]["request_id"], "req-slow", "{line}");
    let duration_ms = entry["duration_ms"].as_f64().expect("a duration");
    assert!((700.0..5000.0).contains(&duration_ms), "about the deadline: {line}");
    assert_eq!(entry["deadline_ms"].as_f64(), Some(800.0), "{line}");
    let metrics = http_get(&address, "/metrics");
    assert!(
        metrics.contains(r#"cinder_evs_csi_csi_rpc_total{method="CreateVolume",code="DeadlineExceeded"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"cinder_evs_csi_csi_rpc_duration_seconds_count{method="CreateVolume"} 1"#),
        "{metrics}"
    );
    let outcomes =
        driver.log().iter().filter(|l| l.contains("CreateVolume") && l.contains("rpc finished")).count();
    assert_eq!(outcomes, 0, "one outcome line, the cancellation");
    assert!(!driver.log().join("\n").contains("never-logged-secret"));
}
