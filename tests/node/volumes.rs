//! The Node service on real loop devices, real mkfs and real mounts: staging formats only
//! blank devices, publishing binds, everything is idempotent, and nothing that is not the
//! volume's is ever formatted or unmounted.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crate::harness::*;
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use tonic::Code;

/// xfs needs ≥ 300 MiB; the files are sparse, so this costs nothing.
const XFS_SIZE: u64 = 320 * MIB;
const SMALL: u64 = 128 * MIB;
/// A well-formed volume id that names no device on this node.
const NO_SUCH_VOLUME: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";

fn size_for(fs: &str) -> u64 {
    if fs == "xfs" { XFS_SIZE } else { SMALL }
}

async fn fresh_device_is_formatted_and_mounted(test: &str, fs: &str, expected: &str) {
    if !root_or_skip(test) {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(size_for(fs));
    let staging = node.path("staging");
    node.client
        .node_stage_volume(stage_request(&volume.id, &staging, mount_capability(fs, Mode::SingleNodeWriter)))
        .await
        .unwrap();
    assert_eq!(volume.blkid_type(), expected);
    let mounts = mounts_at(&staging);
    assert_eq!(mounts.len(), 1, "{mounts:?}");
    assert_eq!(mounts[0].fs_type, expected);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    assert!(mounts_at(&staging).is_empty());
    assert!(!staging.exists(), "the staging directory is removed");
}

#[tokio::test]
async fn a_blank_device_is_formatted_ext4_and_mounted() {
    fresh_device_is_formatted_and_mounted("a_blank_device_is_formatted_ext4_and_mounted", "ext4", "ext4")
        .await;
}

#[tokio::test]
async fn a_blank_device_is_formatted_xfs_and_mounted() {
    fresh_device_is_formatted_and_mounted("a_blank_device_is_formatted_xfs_and_mounted", "xfs", "xfs").await;
}

#[tokio::test]
async fn a_blank_device_is_formatted_btrfs_and_mounted() {
    fresh_device_is_formatted_and_mounted("a_blank_device_is_formatted_btrfs_and_mounted", "btrfs", "btrfs")
        .await;
}

#[tokio::test]
async fn a_blank_device_is_formatted_ext3_and_mounted() {
    fresh_device_is_formatted_and_mounted("a_blank_device_is_formatted_ext3_and_mounted", "ext3", "ext3")
        .await;
}

#[tokio::test]
async fn an_empty_fs_type_means_ext4() {
    fresh_device_is_formatted_and_mounted("an_empty_fs_type_means_ext4", "", "ext4").await;
}

async fn restage_keeps_data(test: &str, fs: &str) {
    if !root_or_skip(test) {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(size_for(fs));
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability(fs, Mode::SingleNodeWriter);
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 251) as u8).collect();

    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability.clone(), false))
        .await
        .unwrap();
    std::fs::write(target.join("data.bin"), &payload).unwrap();
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();

    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, false))
        .await
        .unwrap();
    assert_eq!(std::fs::read(target.join("data.bin")).unwrap(), payload, "the data survived the re-stage");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn restaging_an_ext4_volume_keeps_its_data() {
    restage_keeps_data("restaging_an_ext4_volume_keeps_its_data", "ext4").await;
}

#[tokio::test]
async fn restaging_an_xfs_volume_keeps_its_data() {
    restage_keeps_data("restaging_an_xfs_volume_keeps_its_data", "xfs").await;
}

#[tokio::test]
async fn restaging_a_btrfs_volume_keeps_its_data() {
    restage_keeps_data("restaging_a_btrfs_volume_keeps_its_data", "btrfs").await;
}

/// Stages `volume` as ext4 and expects a refusal that leaves every byte as it was.
async fn stage_is_refused_and_bytes_unchanged(
    node: &mut NodeHarness,
    volume: &LoopVolume,
    fs: &str,
) -> String {
    stage_of_id_is_refused_and_bytes_unchanged(node, &volume.id, volume, fs).await
}

/// Stages `volume_id`, whose link leads to `device`, and expects a refusal that leaves every
/// byte of `device` as it was.
async fn stage_of_id_is_refused_and_bytes_unchanged(
    node: &mut NodeHarness,
    volume_id: &str,
    device: &LoopVolume,
    fs: &str,
) -> String {
    let before = device.checksum();
    let staging = node.path("staging");
    let status = node
        .client
        .node_stage_volume(stage_request(volume_id, &staging, mount_capability(fs, Mode::SingleNodeWriter)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(device.checksum(), before, "the device was modified");
    assert!(mounts_at(&staging).is_empty(), "nothing was mounted");
    status.message().to_string()
}

#[tokio::test]
async fn a_device_with_another_filesystem_is_refused_and_untouched() {
    if !root_or_skip("a_device_with_another_filesystem_is_refused_and_untouched") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(XFS_SIZE);
    run("mkfs.xfs", &["-q", volume.device.to_str().unwrap()]);
    let message = stage_is_refused_and_bytes_unchanged(&mut node, &volume, "ext4").await;
    assert!(message.contains("xfs"), "{message}");
}

#[tokio::test]
async fn a_device_with_a_non_filesystem_signature_is_refused_and_untouched() {
    if !root_or_skip("a_device_with_a_non_filesystem_signature_is_refused_and_untouched") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    run("mkswap", &[volume.device.to_str().unwrap()]);
    let message = stage_is_refused_and_bytes_unchanged(&mut node, &volume, "ext4").await;
    assert!(message.contains("swap"), "{message}");
}

#[tokio::test]
async fn a_device_with_an_mbr_boot_signature_is_refused_and_untouched() {
    if !root_or_skip("a_device_with_an_mbr_boot_signature_is_refused_and_untouched") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    volume.write_at(510, &[0x55, 0xAA]);
    let message = stage_is_refused_and_bytes_unchanged(&mut node, &volume, "ext4").await;
    assert!(message.contains("MBR") || message.contains("partition"), "{message}");
}

#[tokio::test]
async fn a_device_with_only_a_backup_gpt_header_is_refused_and_untouched() {
    if !root_or_skip("a_device_with_only_a_backup_gpt_header_is_refused_and_untouched") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    volume.write_at(SMALL - 512, b"EFI PART");
    let message = stage_is_refused_and_bytes_unchanged(&mut node, &volume, "ext4").await;
    assert!(message.contains("GPT"), "{message}");
}

#[tokio::test]
async fn a_device_that_is_not_the_volume_is_refused_and_untouched() {
    if !root_or_skip("a_device_that_is_not_the_volume_is_refused_and_untouched") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let other = LoopVolume::create(node.dir.path(), SMALL);
    // A link named after another volume id that leads to this volume's device.
    let imposter = uuid::Uuid::new_v4().to_string();
    node.link(&imposter, &other.device);
    let message = stage_of_id_is_refused_and_bytes_unchanged(&mut node, &imposter, &other, "ext4").await;
    assert!(message.contains(&format!("is not volume {imposter}")), "{message}");
}

#[tokio::test]
async fn a_volume_without_a_device_is_not_found() {
    if !root_or_skip("a_volume_without_a_device_is_not_found") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let staging = node.path("staging");
    let status = node
        .client
        .node_stage_volume(stage_request(
            NO_SUCH_VOLUME,
            &staging,
            mount_capability("ext4", Mode::SingleNodeWriter),
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert!(status.message().contains(NO_SUCH_VOLUME), "{status:?}");
}

#[tokio::test]
async fn the_device_is_found_through_the_sysfs_fallback_without_a_link() {
    if !root_or_skip("the_device_is_found_through_the_sysfs_fallback_without_a_link") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = LoopVolume::create(node.dir.path(), SMALL);
    let staging = node.path("staging");
    node.client
        .node_stage_volume(stage_request(
            &volume.id,
            &staging,
            mount_capability("ext4", Mode::SingleNodeWriter),
        ))
        .await
        .unwrap();
    assert_eq!(mounts_at(&staging).len(), 1);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_appears_while_stage_waits_is_found() {
    if !root_or_skip("a_device_that_appears_while_stage_waits_is_found") {
        return;
    }
    // A generous wait: only a hang guard, the device appears long before.
    let mut node = NodeHarness::start_waiting(std::time::Duration::from_secs(60)).await;
    let id = uuid::Uuid::new_v4().to_string();
    let staging = node.path("staging");
    let request = stage_request(&id, &staging, mount_capability("ext4", Mode::SingleNodeWriter));
    let dir = node.dir.path().to_path_buf();
    // The "attach" happens while the stage call is already looking for the device.
    let attach = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        LoopVolume::create_with_id(&dir, &id, SMALL)
    });
    node.client.node_stage_volume(request.clone()).await.unwrap();
    let volume = attach.await.unwrap();
    assert_eq!(mounts_at(&staging).len(), 1);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn mkfs_options_from_the_volume_context_are_applied() {
    if !root_or_skip("mkfs_options_from_the_volume_context_are_applied") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    let mut request = stage_request(&volume.id, &staging, mount_capability("ext4", Mode::SingleNodeWriter));
    request.volume_context = context(&[("blockSize", "2048"), ("inodeSize", "512")]);
    node.client.node_stage_volume(request).await.unwrap();
    let info = run("dumpe2fs", &["-h", volume.device.to_str().unwrap()]);
    assert!(info.lines().any(|l| l.starts_with("Block size:") && l.ends_with(" 2048")), "{info}");
    assert!(info.lines().any(|l| l.starts_with("Inode size:") && l.ends_with(" 512")), "{info}");
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_readonly_publish_refuses_writes() {
    if !root_or_skip("a_readonly_publish_refuses_writes") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, true))
        .await
        .unwrap();
    assert!(mounts_at(&target)[0].is_readonly());
    let error = std::fs::write(target.join("x"), b"x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(nix::libc::EROFS));
    assert!(!mounts_at(&staging)[0].is_readonly(), "the staging mount stays writable");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_reader_only_access_mode_stages_read_only() {
    if !root_or_skip("a_reader_only_access_mode_stages_read_only") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    run("mkfs.ext4", &["-q", volume.device.to_str().unwrap()]);
    let staging = node.path("staging");
    node.client
        .node_stage_volume(stage_request(
            &volume.id,
            &staging,
            mount_capability("ext4", Mode::MultiNodeReaderOnly),
        ))
        .await
        .unwrap();
    assert!(mounts_at(&staging)[0].is_readonly());
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_raw_block_volume_is_published_as_a_device_file_that_carries_io() {
    if !root_or_skip("a_raw_block_volume_is_published_as_a_device_file_that_carries_io") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = block_capability(Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability.clone(), false))
        .await
        .unwrap();
    assert!(std::fs::metadata(&target).unwrap().file_type().is_block_device());
    {
        use std::os::unix::fs::FileExt;
        let file = std::fs::OpenOptions::new().write(true).open(&target).unwrap();
        file.write_all_at(b"through the published file", 4096).unwrap();
        file.sync_all().unwrap();
    }
    let mut seen = vec![0u8; 26];
    std::os::unix::fs::FileExt::read_exact_at(&std::fs::File::open(&volume.device).unwrap(), &mut seen, 4096)
        .unwrap();
    assert_eq!(&seen, b"through the published file");
    // Publishing again is a no-op success.
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, false))
        .await
        .unwrap();
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    assert!(!target.exists(), "the target file is removed");
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

/// True when writing one block at the start of `path` fails (open may succeed on a read-only
/// device; the write is what the kernel refuses).
fn write_fails(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    match std::fs::OpenOptions::new().write(true).open(path) {
        Err(_) => true,
        Ok(file) => file.write_all_at(&[0xAB; 4096], 0).and_then(|()| file.sync_all()).is_err(),
    }
}

#[tokio::test]
async fn a_readonly_raw_block_publish_refuses_writes() {
    if !root_or_skip("a_readonly_raw_block_publish_refuses_writes") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = block_capability(Mode::SingleNodeWriter);
    let blank = volume.checksum();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, true))
        .await
        .unwrap();
    assert!(write_fails(&target), "writes through the published file are refused");
    assert_eq!(volume.checksum(), blank, "nothing reached the device");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    assert!(!write_fails(&volume.device), "the device is writable again once no read-only publish remains");
}

#[tokio::test]
async fn every_stage_and_publish_call_is_idempotent() {
    if !root_or_skip("every_stage_and_publish_call_is_idempotent") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    for _ in 0..2 {
        node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    }
    assert_eq!(mounts_at(&staging).len(), 1, "staged once");
    for _ in 0..2 {
        node.client
            .node_publish_volume(publish_request(&volume.id, &staging, &target, capability.clone(), false))
            .await
            .unwrap();
    }
    assert_eq!(mounts_at(&target).len(), 1, "published once");
    for _ in 0..2 {
        node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    }
    for _ in 0..2 {
        node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    }
    assert!(mounts_at(&staging).is_empty() && mounts_at(&target).is_empty());
    assert!(!staging.exists() && !target.exists(), "no directory is left behind");
}

#[tokio::test]
async fn unpublish_and_unstage_of_paths_that_never_existed_succeed() {
    let mut node = NodeHarness::start().await;
    node.client
        .node_unpublish_volume(unpublish_request(NO_SUCH_VOLUME, &node.path("never-target")))
        .await
        .unwrap();
    node.client
        .node_unstage_volume(unstage_request(NO_SUCH_VOLUME, &node.path("never-staged")))
        .await
        .unwrap();
}

#[tokio::test]
async fn unpublish_of_an_already_unmounted_target_removes_the_directory() {
    let mut node = NodeHarness::start().await;
    let target = node.path("target");
    std::fs::create_dir(&target).unwrap();
    node.client.node_unpublish_volume(unpublish_request(NO_SUCH_VOLUME, &target)).await.unwrap();
    assert!(!target.exists());
}

#[tokio::test]
async fn a_publish_target_holding_another_volume_is_left_mounted_and_reported() {
    if !root_or_skip("a_publish_target_holding_another_volume_is_left_mounted_and_reported") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let target = node.path("target");
    std::fs::create_dir(&target).unwrap();
    run("mount", &["-t", "tmpfs", "-o", "size=1m", "stranger", target.to_str().unwrap()]);
    let status = node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("leaving it alone"), "{status:?}");
    assert_eq!(mounts_at(&target).len(), 1, "the foreign mount is still there");
    run("umount", &[target.to_str().unwrap()]);
}

#[tokio::test]
async fn staging_onto_a_path_that_holds_another_volume_is_refused() {
    if !root_or_skip("staging_onto_a_path_that_holds_another_volume_is_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let (first, second) = (node.volume(SMALL), node.volume(SMALL));
    let staging = node.path("staging");
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&first.id, &staging, capability.clone())).await.unwrap();
    let status =
        node.client.node_stage_volume(stage_request(&second.id, &staging, capability)).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists, "{status:?}");
    assert_eq!(second.blkid_type(), "", "the second device was not formatted");
    // And unstaging the second volume from that path must not unmount the first.
    let status = node.client.node_unstage_volume(unstage_request(&second.id, &staging)).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(mounts_at(&staging).len(), 1);
    node.client.node_unstage_volume(unstage_request(&first.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_vanished_device_can_still_be_unpublished_and_unstaged() {
    if !root_or_skip("a_vanished_device_can_still_be_unpublished_and_unstaged") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, false))
        .await
        .unwrap();
    // The volume disappears: its link goes and its backing store is deleted.
    for entry in std::fs::read_dir(&node.by_id).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::remove_file(&volume.file).unwrap();

    let (stats, _) = volume_stats(&mut node, &volume.id, &target).await;
    let condition = stats.volume_condition.unwrap();
    assert!(condition.abnormal && condition.message.contains("gone"), "{condition:?}");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    assert!(mounts_at(&staging).is_empty() && mounts_at(&target).is_empty());
    assert!(!staging.exists() && !target.exists());
}

#[tokio::test]
async fn concurrent_stages_of_one_volume_stage_it_once_and_the_loser_is_aborted() {
    if !root_or_skip("concurrent_stages_of_one_volume_stage_it_once_and_the_loser_is_aborted") {
        return;
    }
    let node = NodeHarness::start().await;
    let volume = node.volume(XFS_SIZE);
    let staging = node.path("staging");
    let request = stage_request(&volume.id, &staging, mount_capability("xfs", Mode::SingleNodeWriter));
    let (mut a, mut b) = (node.client.clone(), node.client.clone());
    let (ra, rb) = tokio::join!(a.node_stage_volume(request.clone()), b.node_stage_volume(request.clone()));
    for result in [&ra, &rb] {
        if let Err(status) = result {
            assert_eq!(status.code(), Code::Aborted, "{status:?}");
        }
    }
    assert!(ra.is_ok() || rb.is_ok(), "one of the racing calls stages the volume");
    assert_eq!(mounts_at(&staging).len(), 1, "staged exactly once");
    let mut client = node.client.clone();
    client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

async fn volume_stats(
    node: &mut NodeHarness,
    volume_id: &str,
    path: &Path,
) -> (pb::NodeGetVolumeStatsResponse, Vec<pb::VolumeUsage>) {
    let response = node
        .client
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: volume_id.into(),
            volume_path: path.to_string_lossy().into_owned(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let usage = response.usage.clone();
    (response, usage)
}

#[tokio::test]
async fn filesystem_stats_report_bytes_and_inodes_and_a_healthy_condition() {
    if !root_or_skip("filesystem_stats_report_bytes_and_inodes_and_a_healthy_condition") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, false))
        .await
        .unwrap();
    let (before, usage) = volume_stats(&mut node, &volume.id, &target).await;
    assert_eq!(
        before.volume_condition,
        Some(pb::VolumeCondition { abnormal: false, message: "healthy".into() })
    );
    let bytes = usage.iter().find(|u| u.unit == pb::volume_usage::Unit::Bytes as i32).unwrap();
    let inodes = usage.iter().find(|u| u.unit == pb::volume_usage::Unit::Inodes as i32).unwrap();
    assert!(bytes.total > 100 * MIB as i64 && bytes.total <= SMALL as i64, "{bytes:?}");
    assert!(bytes.used + bytes.available <= bytes.total);
    assert!(inodes.total > 0 && inodes.used > 0, "{inodes:?}");

    std::fs::write(target.join("blob"), vec![7u8; 8 << 20]).unwrap();
    nix::unistd::sync();
    let (_, after) = volume_stats(&mut node, &volume.id, &target).await;
    let bytes_after = after.iter().find(|u| u.unit == pb::volume_usage::Unit::Bytes as i32).unwrap();
    assert!(bytes_after.used >= bytes.used + (8 << 20), "{bytes:?} -> {bytes_after:?}");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn block_stats_report_the_device_size() {
    if !root_or_skip("block_stats_report_the_device_size") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    node.client
        .node_publish_volume(publish_request(
            &volume.id,
            &staging,
            &target,
            block_capability(Mode::SingleNodeWriter),
            false,
        ))
        .await
        .unwrap();
    let (response, usage) = volume_stats(&mut node, &volume.id, &target).await;
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].total, SMALL as i64);
    assert!(!response.volume_condition.unwrap().abnormal);
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
}

#[tokio::test]
async fn stats_of_a_missing_path_are_not_found() {
    let mut node = NodeHarness::start().await;
    let status = node
        .client
        .node_get_volume_stats(pb::NodeGetVolumeStatsRequest {
            volume_id: NO_SUCH_VOLUME.into(),
            volume_path: node.path("nowhere").to_string_lossy().into_owned(),
            staging_target_path: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn a_filesystem_that_went_read_only_after_errors_is_abnormal() {
    if !root_or_skip("a_filesystem_that_went_read_only_after_errors_is_abnormal") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let mut capability = mount_capability("ext4", Mode::SingleNodeWriter);
    if let Some(pb::volume_capability::AccessType::Mount(mount)) = &mut capability.access_type {
        mount.mount_flags = vec!["errors=remount-ro".into()];
    }
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability, false))
        .await
        .unwrap();
    // ext4's own error trigger, as if the filesystem had found corruption.
    let name = volume.device.file_name().unwrap().to_str().unwrap();
    std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "test").unwrap();
    let (response, _) = volume_stats(&mut node, &volume.id, &target).await;
    let condition = response.volume_condition.unwrap();
    assert!(condition.abnormal && condition.message.contains("read-only"), "{condition:?}");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_path_that_is_not_the_volumes_mount_is_abnormal() {
    if !root_or_skip("a_path_that_is_not_the_volumes_mount_is_abnormal") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let path = node.path("plain-dir");
    std::fs::create_dir(&path).unwrap();
    let (response, _) = volume_stats(&mut node, &volume.id, &path).await;
    let condition = response.volume_condition.unwrap();
    assert!(condition.abnormal && condition.message.contains("not mounted"), "{condition:?}");
}

async fn online_expansion_grows_the_filesystem(test: &str, fs: &str) {
    if !root_or_skip(test) {
        return;
    }
    // The kernel refuses online ext4 growth without CAP_SYS_RESOURCE, whoever asks (the driver
    // runs privileged in production). Where it is missing, the refusal itself is checked.
    let refused = fs == "ext4" && !has_capability(CAP_SYS_RESOURCE);
    let mut node = NodeHarness::start().await;
    let size = size_for(fs);
    let volume = node.volume(size);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability(fs, Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability.clone(), false))
        .await
        .unwrap();
    let before = nix::sys::statvfs::statvfs(&target).unwrap();
    let bigger = size * 2;
    volume.grow_to(bigger);
    let expanded = node
        .client
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: volume.id.clone(),
            volume_path: target.to_string_lossy().into_owned(),
            capacity_range: Some(pb::CapacityRange { required_bytes: bigger as i64, limit_bytes: 0 }),
            staging_target_path: staging.to_string_lossy().into_owned(),
            volume_capability: Some(capability),
            ..Default::default()
        })
        .await;
    if refused {
        eprintln!("{test}: no CAP_SYS_RESOURCE here; checking that the refusal is clean instead");
        let status = expanded.expect_err("online ext4 growth cannot succeed without CAP_SYS_RESOURCE");
        assert!(status.message().contains("resize2fs"), "the tool's own words: {status:?}");
        let after = nix::sys::statvfs::statvfs(&target).unwrap();
        assert_eq!(after.blocks(), before.blocks(), "the filesystem is unchanged");
        std::fs::write(target.join("still-writable"), b"ok")
            .expect("the volume is still mounted and writable");
        node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
        node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
        return;
    }
    let response = expanded.unwrap().into_inner();
    assert_eq!(response.capacity_bytes, bigger as i64);
    assert_eq!(volume.kernel_size(), bigger);
    let after = nix::sys::statvfs::statvfs(&target).unwrap();
    let total = |s: &nix::sys::statvfs::Statvfs| s.blocks() * s.fragment_size();
    assert!(total(&after) > total(&before) + size / 2, "{} -> {}", total(&before), total(&after));
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn an_ext4_volume_grows_online() {
    online_expansion_grows_the_filesystem("an_ext4_volume_grows_online", "ext4").await;
}

#[tokio::test]
async fn an_xfs_volume_grows_online() {
    online_expansion_grows_the_filesystem("an_xfs_volume_grows_online", "xfs").await;
}

#[tokio::test]
async fn a_btrfs_volume_grows_online() {
    online_expansion_grows_the_filesystem("a_btrfs_volume_grows_online", "btrfs").await;
}

#[tokio::test]
async fn a_raw_block_expansion_reports_the_new_size() {
    if !root_or_skip("a_raw_block_expansion_reports_the_new_size") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, target) = (node.path("staging"), node.path("target"));
    node.client
        .node_publish_volume(publish_request(
            &volume.id,
            &staging,
            &target,
            block_capability(Mode::SingleNodeWriter),
            false,
        ))
        .await
        .unwrap();
    volume.grow_to(SMALL * 2);
    let response = node
        .client
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: volume.id.clone(),
            volume_path: target.to_string_lossy().into_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.capacity_bytes, (SMALL * 2) as i64);
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
}

#[tokio::test]
async fn stage_grows_the_filesystem_when_the_context_says_the_volume_outgrew_its_source() {
    if !root_or_skip("stage_grows_the_filesystem_when_the_context_says_the_volume_outgrew_its_source") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    // A "snapshot" of 64 MiB restored onto a 128 MiB volume.
    run("mkfs.ext4", &["-q", volume.device.to_str().unwrap(), "64M"]);
    let staging = node.path("staging");
    let mut request = stage_request(&volume.id, &staging, mount_capability("ext4", Mode::SingleNodeWriter));
    request.volume_context = context(&[("growFs", "true")]);
    node.client.node_stage_volume(request).await.unwrap();
    let vfs = nix::sys::statvfs::statvfs(&staging).unwrap();
    let total = vfs.blocks() * vfs.fragment_size();
    assert!(total > 100 * MIB, "filesystem size {total}");
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

/// Mounts a FUSE filesystem whose daemon is already dead at `target`: every access to it fails
/// with ENOTCONN, the kernel's own "corrupted mount". Its source names `device`, as the mount
/// of a volume would.
fn dead_fuse_mount(target: &Path, device: &Path) {
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(target).unwrap();
    let fuse = std::fs::OpenOptions::new().read(true).write(true).open("/dev/fuse").unwrap();
    let data = format!("fd={},rootmode=40000,user_id=0,group_id=0", fuse.as_raw_fd());
    nix::mount::mount(Some(device), target, Some("fuse"), nix::mount::MsFlags::empty(), Some(data.as_str()))
        .unwrap();
    drop(fuse);
    let error = std::fs::metadata(target).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(nix::libc::ENOTCONN), "the mount is corrupted");
}

#[tokio::test]
async fn a_corrupted_publish_target_is_unmounted_and_removed() {
    if !root_or_skip("a_corrupted_publish_target_is_unmounted_and_removed") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let target = node.path("target");
    dead_fuse_mount(&target, &volume.device);
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    assert!(mounts_at(&target).is_empty());
    assert!(!target.exists());
}

#[tokio::test]
async fn a_corrupted_staging_mount_is_unmounted_and_removed() {
    if !root_or_skip("a_corrupted_staging_mount_is_unmounted_and_removed") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    dead_fuse_mount(&staging, &volume.device);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    assert!(mounts_at(&staging).is_empty());
    assert!(!staging.exists());
}

#[tokio::test]
async fn a_corrupted_mount_reports_an_abnormal_condition() {
    if !root_or_skip("a_corrupted_mount_reports_an_abnormal_condition") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let target = node.path("target");
    dead_fuse_mount(&target, &volume.device);
    let (response, usage) = volume_stats(&mut node, &volume.id, &target).await;
    let condition = response.volume_condition.unwrap();
    assert!(condition.abnormal && condition.message.contains("corrupted"), "{condition:?}");
    assert!(usage.is_empty(), "nothing can be measured");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
}

/// The filesystem size at `path`, in bytes.
fn fs_bytes(path: &Path) -> u64 {
    let vfs = nix::sys::statvfs::statvfs(path).unwrap();
    vfs.blocks() * vfs.fragment_size()
}

/// A volume expanded while no pod used it: the next NodeStage grows the filesystem to the
/// device (ext offline before the mount, xfs and btrfs right after it), with no context key,
/// so that the NodeExpandVolume kubelet sends next has nothing left to do.
async fn stage_grows_an_outgrown_filesystem(test: &str, fs: &str) {
    if !root_or_skip(test) {
        return;
    }
    let mut node = NodeHarness::start().await;
    let size = size_for(fs);
    let volume = node.volume(size);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let capability = mount_capability(fs, Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    let before = fs_bytes(&staging);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    // The cloud grows the volume while it is not staged anywhere.
    volume.grow_to(size * 2);
    run("losetup", &["-c", volume.device.to_str().unwrap()]);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    let grown = fs_bytes(&staging);
    assert!(grown > before + size / 2, "{fs}: {before} -> {grown}");
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &target, capability.clone(), false))
        .await
        .unwrap();
    let response = node
        .client
        .node_expand_volume(pb::NodeExpandVolumeRequest {
            volume_id: volume.id.clone(),
            volume_path: target.to_string_lossy().into_owned(),
            capacity_range: Some(pb::CapacityRange { required_bytes: (size * 2) as i64, limit_bytes: 0 }),
            staging_target_path: staging.to_string_lossy().into_owned(),
            volume_capability: Some(capability),
            ..Default::default()
        })
        .await;
    // Online ext growth with nothing to grow succeeds even without CAP_SYS_RESOURCE.
    assert_eq!(response.unwrap().into_inner().capacity_bytes, (size * 2) as i64);
    assert_eq!(fs_bytes(&target), grown, "{fs}: NodeExpandVolume had nothing left to do");
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn stage_grows_an_ext4_filesystem_its_device_outgrew() {
    stage_grows_an_outgrown_filesystem("stage_grows_an_ext4_filesystem_its_device_outgrew", "ext4").await;
}

#[tokio::test]
async fn stage_grows_an_ext3_filesystem_its_device_outgrew() {
    stage_grows_an_outgrown_filesystem("stage_grows_an_ext3_filesystem_its_device_outgrew", "ext3").await;
}

#[tokio::test]
async fn stage_grows_an_xfs_filesystem_its_device_outgrew() {
    stage_grows_an_outgrown_filesystem("stage_grows_an_xfs_filesystem_its_device_outgrew", "xfs").await;
}

#[tokio::test]
async fn stage_grows_a_btrfs_filesystem_its_device_outgrew() {
    stage_grows_an_outgrown_filesystem("stage_grows_a_btrfs_filesystem_its_device_outgrew", "btrfs").await;
}

#[tokio::test]
async fn restaging_a_filesystem_that_fills_its_device_does_not_grow_it() {
    if !root_or_skip("restaging_a_filesystem_that_fills_its_device_does_not_grow_it") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    let capability = mount_capability("ext4", Mode::SingleNodeWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    let dumped = |device: &Path| run("dumpe2fs", &["-h", device.to_str().unwrap()]);
    let last_checked = |text: &str| text.lines().find(|l| l.starts_with("Last checked:")).map(str::to_string);
    let before = last_checked(&dumped(&volume.device));
    // The stamp has a resolution of seconds.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    // A full check (e2fsck -f, which resize2fs needs) stamps "Last checked"; a preen of a clean
    // filesystem does not.
    assert_eq!(last_checked(&dumped(&volume.device)), before, "no forced check, so no resize");
}
