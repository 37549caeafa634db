//! What the Node service says about requests before it touches the host: precise
//! InvalidArgument messages, its capabilities and its identity.

use crate::harness::*;
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::node_service_capability::rpc::Type;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use tonic::Code;

/// A well-formed volume id that names no device.
const ID: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";

#[tokio::test]
async fn stage_requests_missing_a_field_name_it() {
    let mut node = NodeHarness::start().await;
    let staging = node.path("staging");
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    let cases = [
        (stage_request("", &staging, capability.clone()), "volume_id is required"),
        (
            pb::NodeStageVolumeRequest {
                staging_target_path: String::new(),
                ..stage_request(ID, &staging, capability.clone())
            },
            "staging_target_path is required",
        ),
        (
            pb::NodeStageVolumeRequest {
                volume_capability: None,
                ..stage_request(ID, &staging, capability.clone())
            },
            "volume_capability is required",
        ),
        (
            stage_request(ID, std::path::Path::new("relative/dir"), capability.clone()),
            "must be an absolute path",
        ),
        (stage_request(ID, &staging, mount_capability("ntfs", Mode::SingleNodeWriter)), "ntfs"),
        (
            stage_request(ID, &staging, mount_capability("ext4", Mode::MultiNodeMultiWriter)),
            "MULTI_NODE_MULTI_WRITER",
        ),
    ];
    for (request, message) in cases {
        let status = node.client.node_stage_volume(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().contains(message), "{message:?} not in {status:?}");
    }
}

#[tokio::test]
async fn publish_unpublish_and_unstage_requests_missing_a_field_name_it() {
    let mut node = NodeHarness::start().await;
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    let status = node
        .client
        .node_publish_volume(publish_request(
            ID,
            &staging,
            std::path::Path::new(""),
            capability.clone(),
            false,
        ))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "target_path is required"));
    let status = node
        .client
        .node_publish_volume(publish_request(ID, std::path::Path::new(""), &target, capability, false))
        .await
        .unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "staging_target_path is required"));
    let status = node.client.node_unpublish_volume(unpublish_request("", &target)).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "volume_id is required"));
    let status =
        node.client.node_unstage_volume(unstage_request(ID, std::path::Path::new(""))).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "staging_target_path is required"));
}

#[tokio::test]
async fn the_node_advertises_what_it_implements() {
    let mut node = NodeHarness::start().await;
    let caps =
        node.client.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}).await.unwrap().into_inner();
    let mut types: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|c| match c.r#type {
            Some(pb::node_service_capability::Type::Rpc(rpc)) => Some(rpc.r#type),
            _ => None,
        })
        .collect();
    types.sort();
    let expected = [
        Type::StageUnstageVolume,
        Type::GetVolumeStats,
        Type::ExpandVolume,
        Type::VolumeCondition,
        Type::SingleNodeMultiWriter,
    ];
    assert_eq!(types, expected.iter().map(|t| *t as i32).collect::<Vec<_>>());
}

#[tokio::test]
async fn node_info_reports_the_server_id_zone_topology_and_volume_limit() {
    let mut node = NodeHarness::start().await;
    let info = node.client.node_get_info(pb::NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_id, "server-1");
    assert_eq!(info.max_volumes_per_node, 25);
    let segments = info.accessible_topology.unwrap().segments;
    assert_eq!(segments.get("topology.test.csi.example.io/zone").map(String::as_str), Some("az-1"));
    assert_eq!(segments.get("topology.kubernetes.io/zone").map(String::as_str), Some("az-1"));
}

#[tokio::test]
async fn stats_and_expand_of_a_path_that_does_not_exist_are_not_found_whatever_its_form() {
    let mut node = NodeHarness::start().await;
    let missing = node.path("nowhere").to_string_lossy().into_owned();
    for path in ["some/relative/path", missing.as_str()] {
        let stats = pb::NodeGetVolumeStatsRequest {
            volume_id: ID.into(),
            volume_path: path.into(),
            staging_target_path: String::new(),
        };
        let status = node.client.node_get_volume_stats(stats).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{path}: {status:?}");
        let expand = pb::NodeExpandVolumeRequest {
            volume_id: ID.into(),
            volume_path: path.into(),
            ..Default::default()
        };
        let status = node.client.node_expand_volume(expand).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound, "{path}: {status:?}");
    }
}

#[tokio::test]
async fn stats_and_expand_of_an_existing_relative_path_are_invalid_arguments() {
    let mut node = NodeHarness::start().await;
    // The test's working directory exists, relative to itself.
    let stats = pb::NodeGetVolumeStatsRequest {
        volume_id: ID.into(),
        volume_path: "src".into(),
        ..Default::default()
    };
    let status = node.client.node_get_volume_stats(stats).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let expand =
        pb::NodeExpandVolumeRequest { volume_id: ID.into(), volume_path: "src".into(), ..Default::default() };
    let status = node.client.node_expand_volume(expand).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

#[tokio::test]
async fn ids_that_cannot_be_cloud_ids_are_not_found_on_every_node_rpc() {
    let mut node = NodeHarness::start().await;
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    let existing = node.dir.path().to_string_lossy().into_owned();
    for id in ["-", "victim", "disk", "some-vol-id", "0b8e2f3c-5d6a-4c1b-9e7f"] {
        let codes = [
            node.client
                .node_stage_volume(stage_request(id, &staging, capability.clone()))
                .await
                .unwrap_err()
                .code(),
            node.client
                .node_publish_volume(publish_request(id, &staging, &target, capability.clone(), false))
                .await
                .unwrap_err()
                .code(),
            node.client.node_unpublish_volume(unpublish_request(id, &target)).await.unwrap_err().code(),
            node.client.node_unstage_volume(unstage_request(id, &staging)).await.unwrap_err().code(),
            node.client
                .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
                    volume_id: id.into(),
                    volume_path: existing.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err()
                .code(),
            node.client
                .node_expand_volume(pb::NodeExpandVolumeRequest {
                    volume_id: id.into(),
                    volume_path: existing.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err()
                .code(),
        ];
        assert_eq!(codes, [Code::NotFound; 6], "{id:?}");
    }
    let huge = format!("cloud:{}", "x".repeat(100_000));
    let status = node.client.node_stage_volume(stage_request(&huge, &staging, capability)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().len() < 400, "the id is quoted cut short: {} bytes", status.message().len());
}

#[tokio::test]
async fn the_controller_and_the_node_accept_the_same_filesystems() {
    use cinder_evs_csi::csi::controller::capability;
    use cinder_evs_csi::csi::params;
    // No device wait: an accepted filesystem ends in NotFound for this id at once.
    let mut node = NodeHarness::start_waiting(std::time::Duration::ZERO).await;
    let staging = node.path("staging");
    for fs in ["ext4", "ext3", "xfs", "btrfs", "XFS", "", "ext2", "ntfs", "vfat", "ext4 ", "xfs\0"] {
        // StorageClass parameters are trimmed as a rule (all of them); capabilities are not.
        let parameters = std::collections::HashMap::from([("fsType".to_string(), fs.trim().to_string())]);
        let capability = mount_capability(fs, Mode::SingleNodeWriter);
        let trimmed = mount_capability(fs.trim(), Mode::SingleNodeWriter);
        let node_accepts = |status: tonic::Status| status.code() != Code::InvalidArgument;
        let status =
            node.client.node_stage_volume(stage_request(ID, &staging, capability.clone())).await.unwrap_err();
        assert_eq!(
            capability::check(&capability, false).is_ok(),
            node_accepts(status.clone()),
            "{fs:?}: {status:?}"
        );
        let status = node.client.node_stage_volume(stage_request(ID, &staging, trimmed)).await.unwrap_err();
        assert_eq!(params::parse(&parameters).is_ok(), node_accepts(status.clone()), "{fs:?}: {status:?}");
    }
}
