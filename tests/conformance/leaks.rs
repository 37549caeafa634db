//! A failing spec cannot leak into the next: whatever a spec mounted or attached as a loop
//! device is gone once its sandbox is dropped, however the spec ended.

use std::sync::{Arc, Mutex};

use super::*;

/// Stages and publishes a new mount volume, returning the published target.
async fn publish_a_mount_volume(s: &mut Sandbox) -> PathBuf {
    let volume = s.create_volume("left-mounted").await;
    let node = s.node_id.clone();
    let context = ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await)
        .publish_context;
    let staging = s.state.join("kubelet").join("staging");
    let target = s.state.join("kubelet").join("pod").join("volume");
    std::fs::create_dir_all(&staging).unwrap();
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let stage = pb::NodeStageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context.clone(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(mount_cap()),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    };
    ok(s.node.node_stage_volume(stage).await);
    let publish = pb::NodePublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context,
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(mount_cap()),
        volume_context: volume.volume_context,
        ..Default::default()
    };
    ok(s.node.node_publish_volume(publish).await);
    target
}

#[tokio::test]
async fn a_spec_that_fails_with_a_published_volume_leaves_no_mount_or_loop_device_behind() {
    if !testkit::root_or_skip(
        "a_spec_that_fails_with_a_published_volume_leaves_no_mount_or_loop_device_behind",
    ) {
        return;
    }
    let seen: Arc<Mutex<Option<(PathBuf, PathBuf)>>> = Arc::default();
    let record = seen.clone();
    let failing_spec = tokio::spawn(async move {
        let mut s = Sandbox::start().await;
        let target = publish_a_mount_volume(&mut s).await;
        *record.lock().unwrap() = Some((s.state.clone(), target));
        panic!("this spec fails with its volume published");
    });
    let outcome = failing_spec.await;
    assert!(outcome.is_err_and(|e| e.is_panic()), "the spec was meant to fail");
    let (state, target) = seen.lock().unwrap().clone().expect("the spec published before failing");
    assert!(
        LeakGuard::mounts(&state).is_empty(),
        "mounts left by a failed spec: {:?}",
        LeakGuard::mounts(&state)
    );
    assert!(LeakGuard::loops(&state).is_empty(), "loop devices left by a failed spec");
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!table.contains(&target.display().to_string()), "the published target is still mounted");
}
