//! Node: argument validation, the stage/publish lifecycle (root) and clean-up at SIGTERM.

use super::*;

// ---------------------------------------------------------------------------------------------
// Node: argument validation (no root needed: requests are refused before any host work)

#[tokio::test]
async fn node_get_info_names_the_node_its_limit_and_its_topology() {
    let mut s = Sandbox::start().await;
    let info = ok(s.node.node_get_info(pb::NodeGetInfoRequest {}).await);
    assert!(!info.node_id.is_empty());
    assert!(info.max_volumes_per_node > 0);
    let topology = info.accessible_topology.expect("VOLUME_ACCESSIBILITY_CONSTRAINTS is advertised");
    assert!(!topology.segments.is_empty());
    s.finish().await;
}

#[tokio::test]
async fn node_stage_without_volume_id_staging_path_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeStageVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let requests = [
        pb::NodeStageVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeStageVolumeRequest { staging_target_path: String::new(), ..full.clone() },
        pb::NodeStageVolumeRequest { staging_target_path: "relative/path".into(), ..full.clone() },
        pb::NodeStageVolumeRequest { volume_capability: None, ..full.clone() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_stage_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_unstage_without_volume_id_or_staging_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeUnstageVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
    };
    let requests = [
        pb::NodeUnstageVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeUnstageVolumeRequest { staging_target_path: String::new(), ..full },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_unstage_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_publish_without_volume_id_paths_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodePublishVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        staging_target_path: s.state.join("staging").display().to_string(),
        target_path: s.state.join("target").display().to_string(),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let requests = [
        pb::NodePublishVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodePublishVolumeRequest { target_path: String::new(), ..full.clone() },
        // STAGE_UNSTAGE_VOLUME is advertised, so a mount publish needs the staging path.
        pb::NodePublishVolumeRequest { staging_target_path: String::new(), ..full.clone() },
        pb::NodePublishVolumeRequest { volume_capability: None, ..full.clone() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_publish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_unpublish_without_volume_id_or_target_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let full = pb::NodeUnpublishVolumeRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        target_path: s.state.join("target").display().to_string(),
    };
    let requests = [
        pb::NodeUnpublishVolumeRequest { volume_id: String::new(), ..full.clone() },
        pb::NodeUnpublishVolumeRequest { target_path: String::new(), ..full },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_unpublish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn node_get_volume_stats_without_arguments_is_invalid_argument_and_a_missing_path_not_found() {
    let mut s = Sandbox::start().await;
    let missing = s.state.join("no-such-path").display().to_string();
    let requests = [
        (
            pb::NodeGetVolumeStatsRequest { volume_path: missing.clone(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::NodeGetVolumeStatsRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::NodeGetVolumeStatsRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                volume_path: missing,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(code(s.node.node_get_volume_stats(request.clone()).await), expected, "{request:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn node_expand_without_volume_id_or_path_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let requests = [
        pb::NodeExpandVolumeRequest { volume_path: "/tmp".into(), ..Default::default() },
        pb::NodeExpandVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
    ];
    for request in requests {
        assert_eq!(
            code(s.node.node_expand_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Node: the volume lifecycle (root: loop devices and mounts)

/// Stages and publishes twice, checks the target, then unpublishes and unstages twice.
async fn node_lifecycle_twice(s: &mut Sandbox, capability: pb::VolumeCapability, check: impl Fn(&Path)) {
    let name = if capability::is_block(&capability) { "node-block" } else { "node-mount" };
    let request =
        pb::CreateVolumeRequest { volume_capabilities: vec![capability.clone()], ..create_request(name, 1) };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    let node = s.node_id.clone();
    let publish = pb::ControllerPublishVolumeRequest {
        volume_capability: Some(capability.clone()),
        ..publish_request(&volume.volume_id, &node)
    };
    let context = ok(s.controller.controller_publish_volume(publish).await).publish_context;
    let pods = s.state.join("kubelet");
    let staging = pods.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    // The CO creates the target's parent; the plugin creates the target itself.
    let target = pods.join("pod").join("volume");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    let stage = pb::NodeStageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context.clone(),
        staging_target_path: staging.display().to_string(),
        volume_capability: Some(capability.clone()),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    };
    ok(s.node.node_stage_volume(stage.clone()).await);
    ok(s.node.node_stage_volume(stage).await);
    let publish = pb::NodePublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        publish_context: context,
        staging_target_path: staging.display().to_string(),
        target_path: target.display().to_string(),
        volume_capability: Some(capability),
        volume_context: volume.volume_context.clone(),
        ..Default::default()
    };
    ok(s.node.node_publish_volume(publish.clone()).await);
    ok(s.node.node_publish_volume(publish).await);
    check(&target);
    let stats = pb::NodeGetVolumeStatsRequest {
        volume_id: volume.volume_id.clone(),
        volume_path: target.display().to_string(),
        ..Default::default()
    };
    let stats = ok(s.node.node_get_volume_stats(stats).await);
    assert!(!stats.usage.is_empty(), "GET_VOLUME_STATS is advertised: {stats:?}");
    assert!(!stats.volume_condition.expect("VOLUME_CONDITION is advertised").abnormal);
    let unpublish = pb::NodeUnpublishVolumeRequest {
        volume_id: volume.volume_id.clone(),
        target_path: target.display().to_string(),
    };
    ok(s.node.node_unpublish_volume(unpublish.clone()).await);
    ok(s.node.node_unpublish_volume(unpublish).await);
    assert!(!target.exists(), "NodeUnpublishVolume removes the target it created");
    let unstage = pb::NodeUnstageVolumeRequest {
        volume_id: volume.volume_id.clone(),
        staging_target_path: staging.display().to_string(),
    };
    ok(s.node.node_unstage_volume(unstage.clone()).await);
    ok(s.node.node_unstage_volume(unstage).await);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    s.delete_volume(&volume.volume_id).await;
}

mod capability {
    use super::{AccessType, pb};

    pub fn is_block(capability: &pb::VolumeCapability) -> bool {
        matches!(capability.access_type, Some(AccessType::Block(_)))
    }
}

#[tokio::test]
async fn node_stage_and_publish_twice_of_a_mount_volume_place_a_mounted_directory_at_the_target() {
    if !testkit::root_or_skip(
        "node_stage_and_publish_twice_of_a_mount_volume_place_a_mounted_directory_at_the_target",
    ) {
        return;
    }
    let mut s = Sandbox::start().await;
    node_lifecycle_twice(&mut s, mount_cap(), |target| {
        assert!(target.is_dir(), "a mount volume's target is a directory");
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(&*target.display().to_string()))
            .unwrap_or_else(|| panic!("{} is not a mount point:\n{mounts}", target.display()));
        assert!(line.contains(" - ext4 "), "{line}");
    })
    .await;
    s.finish().await;
}

#[tokio::test]
async fn node_stage_and_publish_twice_of_a_block_volume_place_the_device_at_a_file_target() {
    if !testkit::root_or_skip(
        "node_stage_and_publish_twice_of_a_block_volume_place_the_device_at_a_file_target",
    ) {
        return;
    }
    let mut s = Sandbox::start().await;
    node_lifecycle_twice(&mut s, block_cap(), |target| {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(target).unwrap().file_type();
        assert!(kind.is_block_device(), "a raw block target is the device itself, got {kind:?}");
    })
    .await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Clean-up

#[tokio::test]
async fn sigterm_removes_published_volumes_and_snapshots_the_sandbox_made() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("left-attached").await;
    let node = s.node_id.clone();
    ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    s.create_snapshot("left-snapshot", &volume.volume_id).await;
    s.create_volume("left-alone").await;
    assert_eq!(s.volume_ids().await.len(), 2);
    // stop() checks that the emulator's volume and snapshot stores are empty afterwards.
    s.stop().await;
}
