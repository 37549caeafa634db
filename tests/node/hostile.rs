//! The Node service under attack: ids that are substrings of real devices, symlinked and
//! swapped paths, foreign mounts, NUL bytes and oversize paths. Every attack gets its precise
//! code and leaves everything outside the request's own paths as it was: a sentinel loop
//! device and a sentinel file keep their checksums, and the mount table does not change.
//!
//! Each test runs in a private mount namespace of its own (the test binary re-runs itself for
//! that one test under `unshare --mount`), so a failure cannot damage the host's mounts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::*;
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use tonic::Code;

const SMALL: u64 = 128 * MIB;
/// Set in the child that runs one test inside its own mount namespace.
const IN_NAMESPACE: &str = "HOSTILE_NODE_IN_PRIVATE_NAMESPACE";

/// True when the caller is to run the test body: it is root and inside a private mount
/// namespace. Outside one, the test binary is run again for `test` alone under
/// `unshare --mount --propagation private`, its result asserted, and false returned.
fn in_private_namespace(test: &str) -> bool {
    if !root_or_skip(test) {
        return false;
    }
    if std::env::var_os(IN_NAMESPACE).is_some() {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    // The harness names a test by its path below the crate (`hostile::<test>`).
    let module = module_path!().split_once("::").map_or("", |(_, module)| module);
    let name = format!("{module}::{test}");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(exe)
        .args([name.as_str(), "--exact", "--nocapture", "--test-threads=1"])
        .env(IN_NAMESPACE, "1")
        .output()
        .expect("running unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in a private mount namespace:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// What an attack must not change: a sentinel loop device (backing file named so that `-`,
/// `victim` and `disk` are substrings of it), a sentinel directory with a file, and the mount
/// table.
struct Sentinel {
    device: LoopVolume,
    dir: PathBuf,
    file: PathBuf,
    device_sum: u64,
    file_sum: Vec<u8>,
    mounts: String,
}

impl Sentinel {
    fn new(node: &NodeHarness) -> Self {
        let device = LoopVolume::create_with_id(node.dir.path(), "victim-disk--sentinel", 16 * MIB);
        device.write_at(0, b"host data that no request may reach");
        run("mkfs.ext4", &["-q", device.device.to_str().unwrap()]);
        let dir = node.path("sentinel-dir");
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("hostname");
        std::fs::write(&file, b"sentinel contents\n").unwrap();
        let mut sentinel = Self {
            device_sum: device.checksum(),
            device,
            file_sum: Vec::new(),
            dir,
            file,
            mounts: String::new(),
        };
        sentinel.file_sum = std::fs::read(&sentinel.file).unwrap();
        sentinel.mounts = mount_table();
        sentinel
    }

    /// Asserts that nothing the sentinel watches changed.
    fn assert_untouched(&self, attack: &str) {
        assert_eq!(self.device.checksum(), self.device_sum, "{attack}: the sentinel device changed");
        assert_eq!(std::fs::read(&self.file).unwrap(), self.file_sum, "{attack}: the sentinel file changed");
        assert_eq!(
            std::fs::read_dir(&self.dir).unwrap().count(),
            1,
            "{attack}: the sentinel directory changed"
        );
        assert_eq!(mount_table(), self.mounts, "{attack}: the mount table changed");
    }

    /// Takes the current mount table as the one to keep (after a legitimate mount).
    fn remember_mounts(&mut self) {
        self.mounts = mount_table();
    }
}

/// The mount table, without the per-read noise (nothing in it changes between reads).
fn mount_table() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap()
}

/// Mounts the sentinel filesystem without writing to it (so its checksum stays).
fn mount_read_only(device: &Path, at: &Path) {
    run("mount", &["-o", "ro,noload", device.to_str().unwrap(), at.to_str().unwrap()]);
}

fn expect_code<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    attack: &str,
) {
    let status = result.expect_err(attack);
    assert_eq!(status.code(), code, "{attack}: {status:?}");
}

fn ext4() -> pb::VolumeCapability {
    mount_capability("ext4", Mode::SingleNodeWriter)
}

#[tokio::test]
async fn ids_that_are_substrings_of_devices_name_no_volume_and_touch_nothing() {
    if !in_private_namespace("ids_that_are_substrings_of_devices_name_no_volume_and_touch_nothing") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let (staging, target) = (node.path("staging"), node.path("target"));
    let id = volume.id.as_str();
    let hostile = [
        "-".to_string(),
        "victim".into(),
        "disk".into(),
        "sentinel".into(),
        id[..20].to_string(),
        id[..35].to_string(),
        format!("{id}0"),
        id.replace('-', ""),
        format!("../{id}"),
        format!("{id}?x=1"),
        format!("cloud:{}", &id[..20]),
        format!("{id}:"),
    ];
    for attack in &hostile {
        let name = format!("volume id {attack:?}");
        expect_code(
            node.client.node_stage_volume(stage_request(attack, &staging, ext4())).await,
            Code::NotFound,
            &name,
        );
        let publish =
            publish_request(attack, &staging, &target, block_capability(Mode::SingleNodeWriter), false);
        expect_code(node.client.node_publish_volume(publish).await, Code::NotFound, &name);
        expect_code(
            node.client.node_unpublish_volume(unpublish_request(attack, &target)).await,
            Code::NotFound,
            &name,
        );
        expect_code(
            node.client.node_unstage_volume(unstage_request(attack, &staging)).await,
            Code::NotFound,
            &name,
        );
        sentinel.assert_untouched(&name);
        assert_eq!(volume.blkid_type(), "", "{name}: the real volume was formatted");
        assert!(!staging.exists() && !target.exists(), "{name}: a path was created");
    }
}

#[tokio::test]
async fn a_device_path_hint_to_a_foreign_device_is_not_used() {
    if !in_private_namespace("a_device_path_hint_to_a_foreign_device_is_not_used") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let sentinel = Sentinel::new(&node);
    let staging = node.path("staging");
    let mut request = stage_request(&uuid::Uuid::new_v4().to_string(), &staging, ext4());
    request.publish_context = context(&[("devicePath", sentinel.device.device.to_str().unwrap())]);
    expect_code(node.client.node_stage_volume(request).await, Code::NotFound, "devicePath to the sentinel");
    sentinel.assert_untouched("devicePath to the sentinel");
}

#[tokio::test]
async fn malformed_wwn_and_volume_id_hints_are_invalid_arguments() {
    if !in_private_namespace("malformed_wwn_and_volume_id_hints_are_invalid_arguments") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let staging = node.path("staging");
    for (key, value) in [("wwn", "-"), ("wwn", "6888603000"), ("volumeId", "victim"), ("volumeId", "../x")] {
        let mut request = stage_request(&volume.id, &staging, ext4());
        request.publish_context = context(&[(key, value)]);
        let attack = format!("publish_context {key}={value:?}");
        expect_code(node.client.node_stage_volume(request).await, Code::InvalidArgument, &attack);
        sentinel.assert_untouched(&attack);
        assert_eq!(volume.blkid_type(), "", "{attack}: the volume was formatted");
    }
}

#[tokio::test]
async fn a_handle_with_a_cloud_name_stages_the_volume_its_uuid_names() {
    if !in_private_namespace("a_handle_with_a_cloud_name_stages_the_volume_its_uuid_names") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    let handle = format!("huawei:{}", volume.id.to_uppercase());
    node.client.node_stage_volume(stage_request(&handle, &staging, ext4())).await.unwrap();
    assert_eq!(mounts_at(&staging).len(), 1);
    node.client.node_unstage_volume(unstage_request(&handle, &staging)).await.unwrap();
    assert!(mounts_at(&staging).is_empty());
}

#[tokio::test]
async fn a_staging_path_that_is_a_symlink_to_a_sentinel_directory_is_refused() {
    if !in_private_namespace("a_staging_path_that_is_a_symlink_to_a_sentinel_directory_is_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let link = node.path("staging");
    std::os::unix::fs::symlink(&sentinel.dir, &link).unwrap();
    let parent_link = node.path("plugin");
    std::os::unix::fs::symlink(&sentinel.dir, &parent_link).unwrap();
    for staging in [link.clone(), parent_link.join("staging")] {
        let attack = format!("staging path {}", staging.display());
        expect_code(
            node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await,
            Code::InvalidArgument,
            &attack,
        );
        expect_code(
            node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await,
            Code::InvalidArgument,
            &attack,
        );
        sentinel.assert_untouched(&attack);
        assert_eq!(volume.blkid_type(), "", "{attack}: the volume was formatted before the path was checked");
    }
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink(), "the link itself is left");
}

#[tokio::test]
async fn a_publish_target_that_is_a_symlink_to_a_sentinel_directory_is_refused() {
    if !in_private_namespace("a_publish_target_that_is_a_symlink_to_a_sentinel_directory_is_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let mut sentinel = Sentinel::new(&node);
    let staging = node.path("staging");
    node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await.unwrap();
    sentinel.remember_mounts();
    let target = node.path("target");
    std::os::unix::fs::symlink(&sentinel.dir, &target).unwrap();
    for path in [target.clone(), target.join("inner")] {
        let attack = format!("target {}", path.display());
        let request = publish_request(&volume.id, &staging, &path, ext4(), false);
        expect_code(node.client.node_publish_volume(request).await, Code::InvalidArgument, &attack);
        expect_code(
            node.client.node_unpublish_volume(unpublish_request(&volume.id, &path)).await,
            Code::InvalidArgument,
            &attack,
        );
        sentinel.assert_untouched(&attack);
    }
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_raw_block_target_that_is_a_symlink_to_a_sentinel_file_is_refused() {
    if !in_private_namespace("a_raw_block_target_that_is_a_symlink_to_a_sentinel_file_is_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let target = node.path("block-target");
    std::os::unix::fs::symlink(&sentinel.file, &target).unwrap();
    let request =
        publish_request(&volume.id, Path::new(""), &target, block_capability(Mode::SingleNodeWriter), false);
    expect_code(node.client.node_publish_volume(request).await, Code::InvalidArgument, "block target link");
    expect_code(
        node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await,
        Code::InvalidArgument,
        "block target link",
    );
    sentinel.assert_untouched("block target link");
}

#[tokio::test]
async fn a_staging_path_swapped_for_a_symlink_between_stage_and_publish_is_refused() {
    if !in_private_namespace("a_staging_path_swapped_for_a_symlink_between_stage_and_publish_is_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let mut sentinel = Sentinel::new(&node);
    let plugin = node.path("plugin");
    let staging = plugin.join("staging");
    node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await.unwrap();
    // Between the two calls, the staging path's parent is moved away and replaced by a link
    // to a directory holding a mount of another device at the same name.
    let moved = node.path("plugin-moved");
    std::fs::rename(&plugin, &moved).unwrap();
    let decoy = node.path("decoy");
    std::fs::create_dir_all(decoy.join("staging")).unwrap();
    mount_read_only(&sentinel.device.device, &decoy.join("staging"));
    std::os::unix::fs::symlink(&decoy, &plugin).unwrap();
    sentinel.remember_mounts();
    let target = node.path("target");
    let request = publish_request(&volume.id, &staging, &target, ext4(), false);
    expect_code(
        node.client.node_publish_volume(request).await,
        Code::InvalidArgument,
        "swapped staging path",
    );
    assert!(!target.exists(), "nothing was created at the target");
    run("umount", &[decoy.join("staging").to_str().unwrap()]);
    sentinel.remember_mounts();
    sentinel.assert_untouched("swapped staging path");
}

#[tokio::test]
async fn a_foreign_mount_at_the_target_is_never_unmounted() {
    if !in_private_namespace("a_foreign_mount_at_the_target_is_never_unmounted") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let mut sentinel = Sentinel::new(&node);
    let (target, tmpfs) = (node.path("target"), node.path("tmpfs-target"));
    std::fs::create_dir(&target).unwrap();
    std::fs::create_dir(&tmpfs).unwrap();
    // A host ext4 filesystem (the sentinel device) and a tmpfs, mounted where the CO says
    // a volume is published or staged.
    mount_read_only(&sentinel.device.device, &target);
    run("mount", &["-t", "tmpfs", "-o", "size=1m", "stranger", tmpfs.to_str().unwrap()]);
    sentinel.remember_mounts();
    let nothing = uuid::Uuid::new_v4().to_string();
    for (id, path) in [(&nothing, &target), (&volume.id, &target), (&nothing, &tmpfs), (&volume.id, &tmpfs)] {
        let attack = format!("unpublish/unstage {id} at {}", path.display());
        expect_code(
            node.client.node_unpublish_volume(unpublish_request(id, path)).await,
            Code::FailedPrecondition,
            &attack,
        );
        expect_code(
            node.client.node_unstage_volume(unstage_request(id, path)).await,
            Code::FailedPrecondition,
            &attack,
        );
        assert!(path.exists(), "{attack}: the mount point was removed");
        assert_eq!(mount_table(), sentinel.mounts, "{attack}: the mount table changed");
    }
    run("umount", &[target.to_str().unwrap()]);
    run("umount", &[tmpfs.to_str().unwrap()]);
    sentinel.remember_mounts();
    sentinel.assert_untouched("foreign mounts");
}

#[tokio::test]
async fn nul_bytes_and_oversize_paths_are_invalid_arguments() {
    if !in_private_namespace("nul_bytes_and_oversize_paths_are_invalid_arguments") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let base = node.path("p").to_string_lossy().into_owned();
    let hostile = [
        format!("{base}\0/etc"),
        format!("{base}/{}", "n".repeat(300)),
        format!("{base}/{}", "d/".repeat(3000)),
        format!("{base}/../sentinel-dir"),
    ];
    for path in &hostile {
        let attack = format!("path of {} bytes", path.len());
        let p = Path::new(path);
        expect_code(
            node.client.node_stage_volume(stage_request(&volume.id, p, ext4())).await,
            Code::InvalidArgument,
            &attack,
        );
        expect_code(
            node.client.node_publish_volume(publish_request(&volume.id, p, p, ext4(), false)).await,
            Code::InvalidArgument,
            &attack,
        );
        expect_code(
            node.client.node_unpublish_volume(unpublish_request(&volume.id, p)).await,
            Code::InvalidArgument,
            &attack,
        );
        expect_code(
            node.client.node_unstage_volume(unstage_request(&volume.id, p)).await,
            Code::InvalidArgument,
            &attack,
        );
        sentinel.assert_untouched(&attack);
    }
}

#[tokio::test]
async fn publishing_at_the_staging_path_is_refused_and_the_staging_mount_kept() {
    if !in_private_namespace("publishing_at_the_staging_path_is_refused_and_the_staging_mount_kept") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await.unwrap();
    let before = mount_table();
    for spelling in [staging.clone(), PathBuf::from(format!("{}/./", staging.display()))] {
        let request = publish_request(&volume.id, &staging, &spelling, ext4(), false);
        expect_code(
            node.client.node_publish_volume(request).await,
            Code::InvalidArgument,
            "target == staging",
        );
    }
    assert_eq!(mount_table(), before, "the staging mount is as it was");
    assert_eq!(mounts_at(&staging).len(), 1);
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_single_writer_volume_is_published_at_one_target_only() {
    if !in_private_namespace("a_single_writer_volume_is_published_at_one_target_only") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let (staging, first, second) = (node.path("staging"), node.path("first"), node.path("second"));
    let capability = mount_capability("ext4", Mode::SingleNodeSingleWriter);
    node.client.node_stage_volume(stage_request(&volume.id, &staging, capability.clone())).await.unwrap();
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &first, capability.clone(), false))
        .await
        .unwrap();
    let before = mount_table();
    let again = publish_request(&volume.id, &staging, &second, capability.clone(), false);
    let status = node.client.node_publish_volume(again).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains(&first.display().to_string()), "names the other target: {status:?}");
    assert_eq!(mount_table(), before, "no mount leaked");
    assert!(!second.exists(), "the second target was not created");
    // The first publish, repeated, is still idempotent.
    node.client
        .node_publish_volume(publish_request(&volume.id, &staging, &first, capability.clone(), false))
        .await
        .unwrap();
    // A raw block single-writer volume likewise.
    let block = node.volume(SMALL);
    let block_capability = block_capability(Mode::SingleNodeSingleWriter);
    let (b1, b2) = (node.path("b1"), node.path("b2"));
    node.client
        .node_publish_volume(publish_request(&block.id, Path::new(""), &b1, block_capability.clone(), false))
        .await
        .unwrap();
    let status = node
        .client
        .node_publish_volume(publish_request(&block.id, Path::new(""), &b2, block_capability, false))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(mounts_at(&b2).is_empty() && !b2.exists());
    node.client.node_unpublish_volume(unpublish_request(&block.id, &b1)).await.unwrap();
    node.client.node_unpublish_volume(unpublish_request(&volume.id, &first)).await.unwrap();
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test]
async fn a_single_node_writer_volume_is_publishable_at_several_targets() {
    if !in_private_namespace("a_single_node_writer_volume_is_publishable_at_several_targets") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let staging = node.path("staging");
    node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await.unwrap();
    let targets = [node.path("t1"), node.path("t2")];
    for target in &targets {
        node.client
            .node_publish_volume(publish_request(&volume.id, &staging, target, ext4(), false))
            .await
            .unwrap();
        assert_eq!(mounts_at(target).len(), 1);
    }
    for target in &targets {
        node.client.node_unpublish_volume(unpublish_request(&volume.id, target)).await.unwrap();
    }
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_swapped_for_a_symlink_while_publishes_run_never_leads_a_mount_elsewhere() {
    if !in_private_namespace(
        "a_target_swapped_for_a_symlink_while_publishes_run_never_leads_a_mount_elsewhere",
    ) {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let staging = node.path("staging");
    node.client.node_stage_volume(stage_request(&volume.id, &staging, ext4())).await.unwrap();
    let (target, parked) = (node.path("target"), node.path("parked"));
    // Between every check and use the driver makes, the target flips between a directory and
    // a symlink to the sentinel directory.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let swapper = {
        let (stop, target, parked, decoy) =
            (stop.clone(), target.clone(), parked.clone(), sentinel.dir.clone());
        std::thread::spawn(move || {
            let mut swaps = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if std::fs::rename(&target, &parked).is_ok()
                    && std::os::unix::fs::symlink(&decoy, &target).is_ok()
                {
                    swaps += 1;
                    let _ = std::fs::remove_file(&target);
                }
                let _ = std::fs::rename(&parked, &target);
            }
            swaps
        })
    };
    for round in 0..40 {
        let request = publish_request(&volume.id, &staging, &target, ext4(), false);
        if let Err(status) = node.client.node_publish_volume(request).await {
            assert!(
                matches!(status.code(), Code::InvalidArgument | Code::FailedPrecondition | Code::Internal),
                "round {round}: {status:?}"
            );
        }
        let _ = node.client.node_unpublish_volume(unpublish_request(&volume.id, &target)).await;
        assert!(
            mounts_at(&sentinel.dir).is_empty(),
            "round {round}: the sentinel directory was mounted over"
        );
        assert_eq!(std::fs::read(&sentinel.file).unwrap(), sentinel.file_sum, "round {round}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let swaps = swapper.join().unwrap();
    assert!(swaps > 0, "the swapper never managed a swap; the test proved nothing");
    for path in [&target, &parked] {
        if path.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
            std::fs::remove_file(path).unwrap();
        }
        for mount in mounts_at(path) {
            run("umount", &[mount.mount_point.to_str().unwrap()]);
        }
    }
    node.client.node_unstage_volume(unstage_request(&volume.id, &staging)).await.unwrap();
    assert!(mounts_at(&sentinel.dir).is_empty());
    assert_eq!(sentinel.device.checksum(), sentinel.device_sum, "the sentinel device changed");
}

#[tokio::test]
async fn stats_and_expand_of_a_symlinked_volume_path_are_refused() {
    if !in_private_namespace("stats_and_expand_of_a_symlinked_volume_path_are_refused") {
        return;
    }
    let mut node = NodeHarness::start().await;
    let volume = node.volume(SMALL);
    let sentinel = Sentinel::new(&node);
    let link = node.path("volume-path");
    std::os::unix::fs::symlink(&sentinel.dir, &link).unwrap();
    let path = link.to_string_lossy().into_owned();
    let stats = pb::NodeGetVolumeStatsRequest {
        volume_id: volume.id.clone(),
        volume_path: path.clone(),
        ..Default::default()
    };
    expect_code(
        node.client.node_get_volume_stats(stats).await,
        Code::InvalidArgument,
        "stats through a link",
    );
    let expand =
        pb::NodeExpandVolumeRequest { volume_id: volume.id.clone(), volume_path: path, ..Default::default() };
    expect_code(node.client.node_expand_volume(expand).await, Code::InvalidArgument, "expand through a link");
    sentinel.assert_untouched("stats and expand through a link");
}
