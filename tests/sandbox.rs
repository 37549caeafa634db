//! `cinder-evs-csi sandbox --demo`: the whole driver on one machine, end to end, as root.

mod common;

use std::process::Command;

/// Needs root for loop devices and mounts: fails under CI, says it skipped otherwise.
fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root, and CI runs as root");
    eprintln!("SKIPPED {test}: needs root (loop devices and mounts)");
    false
}

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
    if !root_or_skip("the_demo_walks_a_volume_through_its_life_and_leaves_nothing_behind") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let output = Command::new(common::BIN)
        .args(["sandbox", "--demo", "--latency", "50ms", "--state-dir", state.to_str().unwrap()])
        .env_remove("CSI_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    common::secrets::assert_clean("sandbox --demo", "stdout", &stdout);
    common::secrets::assert_clean("sandbox --demo", "stderr", &stderr);
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
    if !root_or_skip("the_sandbox_serves_every_service_and_cleans_up_on_sigterm") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("sandbox");
    let socket = state.join("csi.sock");
    let mut driver =
        common::Driver::start(&["sandbox", "--latency", "20ms", "--state-dir", state.to_str().unwrap()]);
    common::wait_for_path(&socket, &driver);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        use cinder_evs_csi::csi::pb;
        let channel = common::unix_channel(socket.clone()).await;
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
