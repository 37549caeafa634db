//! The binary as kubelet and the sidecars see it: a socket, the Identity service, a clean
//! stop on SIGTERM, and its start-up refusals.

use std::time::Duration;

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::identity_client::IdentityClient;
use nix::sys::signal::Signal;
use testkit::{Driver, start_node, temp_socket, unix_channel, wait_for_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_rpcs_answer_over_the_unix_socket_and_sigterm_exits_zero_removing_it() {
    let (_dir, path, _) = temp_socket();
    let mut driver = start_node(&path, &["--driver-name", "test.csi.example.io"]);

    let mut identity = IdentityClient::new(unix_channel(path.clone()).await);
    let info = identity.get_plugin_info(pb::GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, "test.csi.example.io");
    assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));
    let caps =
        identity.get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {}).await.unwrap().into_inner();
    assert!(caps.capabilities.is_empty(), "only implemented services are advertised: {caps:?}");
    let probe = identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(true));
    drop(identity);

    driver.signal(Signal::SIGTERM);
    let status = driver.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "log:\n{}", driver.log().join("\n"));
    assert!(!path.exists(), "socket removed on exit");
}

#[tokio::test]
async fn shutdown_drain_is_bounded_when_a_client_never_lets_go() {
    // This test's runtime is single-threaded and blocked while waiting for the exit, so the
    // client never answers the server's graceful-shutdown handshake: only the bound ends it.
    let (_dir, path, _) = temp_socket();
    let mut driver = start_node(&path, &["--shutdown-timeout", "1s"]);
    let mut identity = IdentityClient::new(unix_channel(path.clone()).await);
    identity.probe(pb::ProbeRequest {}).await.unwrap();
    let started = std::time::Instant::now();
    driver.signal(Signal::SIGTERM);
    let status = driver.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for the drain bound");
    assert!(driver.log().iter().any(|l| l.contains("drain timed out")), "{:?}", driver.log());
    assert!(!path.exists(), "socket removed even after an abandoned drain");
    drop(identity);
}

#[tokio::test]
async fn sigint_also_exits_zero() {
    let (_dir, path, endpoint) = temp_socket();
    let mut driver = Driver::start(&["node", "--endpoint", &endpoint, "--node-id", "server-1"]);
    wait_for_path(&path, &driver);
    driver.signal(Signal::SIGINT);
    assert_eq!(driver.wait(Duration::from_secs(10)).code(), Some(0));
    assert!(!path.exists());
}

#[tokio::test]
async fn the_socket_is_created_with_mode_0660() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path, endpoint) = temp_socket();
    let driver = Driver::start(&["node", "--node-id", "n1", "--endpoint", &endpoint]);
    wait_for_path(&path, &driver);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
}

#[tokio::test]
async fn a_stale_socket_file_is_replaced_at_start() {
    let (_dir, path, endpoint) = temp_socket();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let driver = Driver::start(&["node", "--node-id", "n1", "--endpoint", &endpoint]);
    driver.wait_for_log(|l| l.contains("removing stale socket"), Duration::from_secs(20));
    driver.wait_for_log(|l| l.contains("serving CSI"), Duration::from_secs(20));
    let mut identity = IdentityClient::new(unix_channel(path).await);
    assert!(identity.probe(pb::ProbeRequest {}).await.is_ok());
}

#[tokio::test]
async fn a_second_instance_refuses_a_socket_held_by_a_live_process() {
    let (_dir, path, endpoint) = temp_socket();
    let _first = Driver::start(&["node", "--node-id", "n1", "--endpoint", &endpoint]);
    wait_for_path(&path, &_first);
    let mut second = Driver::start(&["node", "--node-id", "n1", "--endpoint", &endpoint]);
    let status = second.wait(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    assert!(second.log().iter().any(|l| l.contains("another live process")), "{:?}", second.log());
    let mut identity = IdentityClient::new(unix_channel(path).await);
    assert!(identity.probe(pb::ProbeRequest {}).await.is_ok(), "the first instance still serves");
}

#[tokio::test]
async fn the_tcp_endpoint_serves_identity() {
    let driver = Driver::start(&["node", "--node-id", "n1", "--endpoint", "tcp://127.0.0.1:0"]);
    let line = driver.wait_for_log(|l| l.contains("serving CSI"), Duration::from_secs(20));
    let address = line.split("tcp://").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let mut identity = IdentityClient::connect(format!("http://{address}")).await.unwrap();
    let info = identity.get_plugin_info(pb::GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, cinder_evs_csi::cli::DEFAULT_DRIVER_NAME);
}

#[test]
fn node_mode_without_a_node_id_or_an_answering_source_fails_with_a_clear_message() {
    let (_dir, path, endpoint) = temp_socket();
    // Port 9 (discard) refuses at once: no metadata service answers.
    let mut driver = Driver::start(&[
        "node",
        "--endpoint",
        &endpoint,
        "--node-id-sources",
        "metadata",
        "--metadata-url",
        "http://127.0.0.1:9/openstack/latest/meta_data.json",
    ]);
    assert_eq!(driver.wait(Duration::from_secs(20)).code(), Some(1));
    assert!(driver.log().iter().any(|l| l.contains("--node-id")), "{:?}", driver.log());
    assert!(!path.exists());
}

#[test]
fn a_malformed_endpoint_is_refused_before_start() {
    let mut driver = Driver::start(&["all", "--endpoint", "unix://relative.sock"]);
    assert_eq!(driver.wait(Duration::from_secs(20)).code(), Some(2), "clap usage error");
    assert!(driver.log().join("\n").contains("absolute path"), "{:?}", driver.log());
}

#[test]
fn version_prints_the_cargo_version_and_git_commit() {
    let out = std::process::Command::new(testkit::bin()).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with(&format!("cinder-evs-csi {} (commit ", env!("CARGO_PKG_VERSION"))), "{text}");
    let commit = text.split("(commit ").nth(1).unwrap().trim_end().trim_end_matches(')');
    assert!(!commit.is_empty());
}

#[test]
fn help_lists_every_flag_with_its_environment_variable() {
    let out = std::process::Command::new(testkit::bin()).args(["node", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--endpoint", "CSI_ENDPOINT"),
        ("--driver-name", "CSI_DRIVER_NAME"),
        ("--cloud-config", "CSI_CLOUD_CONFIG"),
        ("--node-id", "CSI_NODE_ID"),
        ("--log-format", "CSI_LOG_FORMAT"),
        ("--log-level", "CSI_LOG_LEVEL"),
        ("--metrics-address", "CSI_METRICS_ADDRESS"),
        ("--shutdown-timeout", "CSI_SHUTDOWN_TIMEOUT"),
        ("--node-id-sources", "CSI_NODE_ID_SOURCES"),
        ("--metadata-url", "CSI_METADATA_URL"),
        ("--zone", "CSI_ZONE"),
        ("--kube-node-name", "CSI_KUBE_NODE_NAME"),
        ("--kubeconfig", "CSI_KUBECONFIG"),
        ("--max-volumes-per-node", "CSI_MAX_VOLUMES_PER_NODE"),
        ("--device-search-dirs", "CSI_DEVICE_SEARCH_DIRS"),
        ("--device-wait-timeout", "CSI_DEVICE_WAIT_TIMEOUT"),
    ] {
        assert!(help.contains(flag), "{flag} missing from help:\n{help}");
        assert!(help.contains(&format!("[env: {env}=")), "{env} missing from help:\n{help}");
    }
}

#[tokio::test]
async fn flags_are_read_from_environment_variables() {
    let (_dir, path, endpoint) = temp_socket();
    let mut command = std::process::Command::new(testkit::bin());
    command
        .arg("node")
        .env("CSI_ENDPOINT", &endpoint)
        .env("CSI_NODE_ID", "server-from-env")
        .env("CSI_DRIVER_NAME", "env.csi.example.io")
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "socket never appeared");
        std::thread::sleep(Duration::from_millis(10));
    }
    let channel = unix_channel(path).await;
    let info =
        IdentityClient::new(channel.clone()).get_plugin_info(pb::GetPluginInfoRequest {}).await.unwrap();
    assert_eq!(info.into_inner().name, "env.csi.example.io");
    let node =
        pb::node_client::NodeClient::new(channel).node_get_info(pb::NodeGetInfoRequest {}).await.unwrap();
    assert_eq!(node.into_inner().node_id, "server-from-env");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn controller_mode_without_any_cloud_configuration_fails_with_a_clear_message() {
    let (_dir, path, endpoint) = temp_socket();
    let mut driver = Driver::start(&["controller", "--endpoint", &endpoint]);
    assert_eq!(driver.wait(Duration::from_secs(20)).code(), Some(1));
    let log = driver.log().join("\n");
    assert!(log.contains("no cloud configuration") && log.contains("--cloud-config"), "{log}");
    assert!(!path.exists());
}
