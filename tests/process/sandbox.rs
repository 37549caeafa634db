//! `cinder-evs-csi sandbox --demo`: the whole driver on one machine, end to end, as root.

use std::process::Command;

fn loop_devices_backed_by(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("loop/backing_file")).ok())
        .filter(|backing| backing.trim().starts_with(&dir.display().to_string()))
        .collect()
}

#[test]
fn the_demo_walks_a_volume_through_its_life_and_leaves_nothing_behind() {
    if !testkit::root_or_skip("the_demo_walks_a_volume_through_its_life_and_leaves_nothing_behind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let output = Command::new(testkit::bin())
        .args(["sandbox", "--demo", "--latency", "50ms", "--state-dir", state.to_str().unwrap()])
        .env_remove("CSI_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    testkit::secrets::assert_clean("sandbox --demo", "stdout", &stdout);
    testkit::secrets::assert_clean("sandbox --demo", "stderr", &stderr);
    assert!(output.status.success(), "sandbox --demo failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("data read back after restore matches"), "{stdout}");
    assert!(stdout.contains("data read back after expansion matches"), "{stdout}");
    assert!(stdout.contains("capacity after expansion: 3.00 GiB"), "{stdout}");
    assert!(stdout.contains("demo: done"), "{stdout}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&state.display().to_string()), "a mount is left under the sandbox:\n{mounts}");
    assert_eq!(loop_devices_backed_by(&state), Vec::<String>::new(), "loop devices are left");
}

#[test]
fn the_sandbox_serves_every_service_and_cleans_up_on_sigterm() {
    if !testkit::root_or_skip("the_sandbox_serves_every_service_and_cleans_up_on_sigterm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let socket = state.join("csi.sock");
    let mut driver =
        testkit::Driver::start(&["sandbox", "--latency", "20ms", "--state-dir", state.to_str().unwrap()]);
    testkit::wait_for_path(&socket, &driver);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        use cinder_evs_csi::csi::pb;
        let channel = testkit::unix_channel(socket.clone()).await;
        let caps = pb::identity_client::IdentityClient::new(channel.clone())
            .get_plugin_capabilities(pb::GetPluginCapabilitiesRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(caps.capabilities.len(), 3, "controller, group controller and topology: {caps:?}");
        let info = pb::node_client::NodeClient::new(channel.clone())
            .node_get_info(pb::NodeGetInfoRequest {})
            .await
            .unwrap();
        assert!(!info.into_inner().node_id.is_empty());
        let mut controller = pb::controller_client::ControllerClient::new(channel);
        let request = pb::CreateVolumeRequest {
            name: "left-behind".into(),
            volume_capabilities: vec![pb::VolumeCapability {
                access_type: Some(pb::volume_capability::AccessType::Block(Default::default())),
                access_mode: Some(pb::volume_capability::AccessMode { mode: 1 }),
            }],
            ..Default::default()
        };
        // Probe may still be opening its gate: retry briefly.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while controller.create_volume(request.clone()).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "CreateVolume never succeeded");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    driver.signal(nix::sys::signal::Signal::SIGTERM);
    let status = driver.wait(std::time::Duration::from_secs(60));
    assert!(status.success(), "log:\n{}", driver.log().join("\n"));
    let volumes = std::fs::read_dir(state.join("cloud/volumes")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(volumes, 0, "the sandbox deletes the volumes it made");
    assert_eq!(loop_devices_backed_by(&state), Vec::<String>::new());
}

/// Starts a sandbox in a fresh directory and waits for its socket.
fn start_sandbox(dir: &std::path::Path, extra: &[&str]) -> (testkit::Driver, std::path::PathBuf) {
    let state = dir.join("sandbox");
    let socket = state.join("csi.sock");
    let mut args = vec!["sandbox", "--latency", "20ms", "--state-dir", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    let driver = testkit::Driver::start(&args);
    testkit::wait_for_path(&socket, &driver);
    (driver, state)
}

/// CreateVolume, retried while the readiness gate is still opening.
async fn create(
    controller: &mut cinder_evs_csi::csi::pb::controller_client::ControllerClient<tonic::transport::Channel>,
    request: cinder_evs_csi::csi::pb::CreateVolumeRequest,
) -> Result<cinder_evs_csi::csi::pb::Volume, tonic::Status> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        match controller.create_volume(request.clone()).await {
            Ok(answer) => return Ok(answer.into_inner().volume.unwrap()),
            Err(status)
                if status.code() == tonic::Code::Unavailable && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(status) => return Err(status),
        }
    }
}

#[test]
fn a_volume_staged_outside_the_sandbox_directory_is_unmounted_at_ctrl_c() {
    let test = "a_volume_staged_outside_the_sandbox_directory_is_unmounted_at_ctrl_c";
    if !testkit::root_or_skip(test) {
        return;
    }
    use cinder_evs_csi::csi::pb;
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let staging = outside.path().join("staging");
    let target = outside.path().join("target");
    let (mut driver, state) = start_sandbox(dir.path(), &[]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = testkit::unix_channel(state.join("csi.sock")).await;
        let node_id = pb::node_client::NodeClient::new(channel.clone())
            .node_get_info(pb::NodeGetInfoRequest {})
            .await
            .unwrap()
            .into_inner()
            .node_id;
        let mut controller = pb::controller_client::ControllerClient::new(channel.clone());
        let request = testkit::requests::create_request("staged-elsewhere", 1);
        let volume = create(&mut controller, request.clone()).await.unwrap();
        let published = controller
            .controller_publish_volume(pb::ControllerPublishVolumeRequest {
                volume_id: volume.volume_id.clone(),
                node_id,
                volume_capability: Some(request.volume_capabilities[0].clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut node = pb::node_client::NodeClient::new(channel);
        node.node_stage_volume(pb::NodeStageVolumeRequest {
            volume_id: volume.volume_id.clone(),
            publish_context: published.publish_context,
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(request.volume_capabilities[0].clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        node.node_publish_volume(pb::NodePublishVolumeRequest {
            volume_id: volume.volume_id,
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(request.volume_capabilities[0].clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    });
    let mounted = |path: &std::path::Path| {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let wanted = path.display().to_string();
        table.lines().any(|line| line.split(' ').nth(4) == Some(wanted.as_str()))
    };
    assert!(mounted(&staging) && mounted(&target), "the volume was not mounted outside the sandbox");
    driver.signal(nix::sys::signal::Signal::SIGINT);
    let status = driver.wait(std::time::Duration::from_secs(60));
    assert!(status.success(), "log:\n{}", driver.log().join("\n"));
    assert!(!mounted(&target), "the publish outside the sandbox is left mounted");
    assert!(!mounted(&staging), "the staging mount outside the sandbox is left");
    assert_eq!(loop_devices_backed_by(&state), Vec::<String>::new(), "loop devices are left");
}

#[test]
fn the_sandbox_quota_is_generous_by_default_and_set_by_a_flag() {
    let test = "the_sandbox_quota_is_generous_by_default_and_set_by_a_flag";
    if !testkit::root_or_skip(test) {
        return;
    }
    use cinder_evs_csi::csi::pb;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Cinder's default allows 10 volumes; the sandbox takes more.
    let dir = tempfile::tempdir().unwrap();
    let (mut driver, state) = start_sandbox(dir.path(), &[]);
    runtime.block_on(async {
        let channel = testkit::unix_channel(state.join("csi.sock")).await;
        let mut controller = pb::controller_client::ControllerClient::new(channel);
        for i in 0..12 {
            create(&mut controller, testkit::requests::create_request(&format!("many-{i}"), 1))
                .await
                .unwrap();
        }
    });
    driver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(driver.wait(std::time::Duration::from_secs(120)).success());

    let dir = tempfile::tempdir().unwrap();
    let (mut driver, state) = start_sandbox(dir.path(), &["--quota", "volumes=2"]);
    runtime.block_on(async {
        let channel = testkit::unix_channel(state.join("csi.sock")).await;
        let mut controller = pb::controller_client::ControllerClient::new(channel);
        for i in 0..2 {
            create(&mut controller, testkit::requests::create_request(&format!("few-{i}"), 1)).await.unwrap();
        }
        let refused =
            create(&mut controller, testkit::requests::create_request("one-too-many", 1)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::ResourceExhausted, "{refused:?}");
    });
    driver.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(driver.wait(std::time::Duration::from_secs(60)).success());
}

#[test]
fn an_unknown_or_malformed_sandbox_quota_is_refused() {
    for bad in ["volumez=5", "volumes", "volumes=many", "volumes=-2"] {
        let output =
            Command::new(testkit::bin()).args(["sandbox", "--quota", bad, "--help"]).output().unwrap();
        // --help would succeed; a bad value must fail before it.
        assert!(!output.status.success(), "--quota {bad} was accepted");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--quota"), "{bad}");
    }
}

/// The Python interpreter with grpcio (CINDER_EVS_CSI_TEST_PYTHON, else python3), if it has it.
fn python_with_grpc(test: &str) -> Option<String> {
    let python = std::env::var("CINDER_EVS_CSI_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok =
        Command::new(&python).args(["-c", "import grpc, grpc_tools"]).status().is_ok_and(|s| s.success());
    if ok {
        return Some(python);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI needs {python} with grpcio and grpcio-tools (.ci/run)"
    );
    eprintln!("SKIPPED {test}: {python} has no grpcio/grpcio-tools");
    None
}

#[test]
fn the_banner_names_the_clouds_yaml_and_its_python_call_works_as_printed() {
    let test = "the_banner_names_the_clouds_yaml_and_its_python_call_works_as_printed";
    let dir = tempfile::tempdir().unwrap();
    let (driver, state) = start_sandbox(dir.path(), &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !driver.stdout().iter().any(|l| l.contains("openstack --os-cloud")) {
        assert!(std::time::Instant::now() < deadline, "no banner: {:?}", driver.stdout());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let banner = driver.stdout().join("\n");
    let clouds_yaml = state.join("clouds.yaml");
    assert!(banner.contains(&format!("clouds.yaml    {}", clouds_yaml.display())), "{banner}");
    assert!(std::fs::read_to_string(&clouds_yaml).unwrap().contains("password:"));
    let call = banner
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("python3 ") && l.ends_with("Identity GetPluginInfo"))
        .unwrap_or_else(|| panic!("no python call in the banner:\n{banner}"));
    let Some(python) = python_with_grpc(test) else { return };
    let args: Vec<&str> = call.split_whitespace().skip(1).collect();
    let output = Command::new(&python).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{call}: {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("\"name\": \"csi.cinder-evs.io\""), "{stdout}");
}
