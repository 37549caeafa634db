//! Node rows: idle memory, NodeStageVolume on a fresh 10 GiB loop device against `mkfs` +
//! `mount` run directly, NodePublishVolume latency, start-up. They need root (loop devices).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::node_client::NodeClient;
use cinder_evs_csi::csi::pb::volume_capability::access_mode::Mode;
use cinder_evs_csi::csi::pb::volume_capability::{AccessMode, AccessType, MountVolume};

use crate::controller::startup;
use crate::process::Driver;
use crate::report::memory_row;
use crate::report::{Row, Verdict, median, percentile, time};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
const STAGE_SAMPLES: usize = 5;
const PUBLISH_SAMPLES: usize = 200;

/// The node rows, or "skipped" rows when this process is not root.
pub async fn run(dir: &Path, rows: &mut Vec<Row>) {
    if !nix::unistd::geteuid().is_root() {
        for (name, target) in [
            ("Start-up: node, exec to ready Probe", "≤ 1.00"),
            ("Node RSS, idle", "≤ 1.00"),
            ("NodeStageVolume (ext4, fresh 10 GiB loop device) vs mkfs + mount", "≤ 1.10"),
            ("NodePublishVolume p99", "≤ 1.00"),
        ] {
            rows.push(Row::skipped(name, target, "needs root (loop devices, mounts)"));
        }
        return;
    }
    let by_id = dir.join("by-id");
    std::fs::create_dir_all(&by_id).expect("by-id dir");
    let args = [
        "node",
        "--node-id",
        "bench-node",
        "--zone",
        "nova",
        "--device-search-dirs",
        by_id.to_str().unwrap(),
    ];
    rows.push(startup(dir, "Start-up: node, exec to ready Probe (median of 10)", &args).await);
    let driver = Driver::spawn(dir, "node", &args);
    let mut client = NodeClient::new(driver.ready().await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    rows.push(memory_row("Node RSS, idle", driver.rss(), 15 * MIB));

    let mut staged = Vec::new();
    let mut direct = Vec::new();
    let mut checked = Vec::new();
    let mut devices = Vec::new();
    for i in 0..STAGE_SAMPLES {
        let volume = LoopVolume::create(dir);
        volume.link(&by_id);
        let staging = dir.join(format!("staging-{i}"));
        let started = Instant::now();
        client.node_stage_volume(stage_request(&volume.id, &staging)).await.expect("NodeStageVolume");
        staged.push(started.elapsed());
        devices.push((volume, staging));

        let plain = LoopVolume::create(dir);
        let mount_point = dir.join(format!("direct-{i}"));
        std::fs::create_dir_all(&mount_point).unwrap();
        let started = Instant::now();
        tool("mkfs.ext4", &["-q", plain.device.to_str().unwrap()]);
        tool("mount", &["-t", "ext4", plain.device.to_str().unwrap(), mount_point.to_str().unwrap()]);
        direct.push(started.elapsed());
        tool("umount", &[mount_point.to_str().unwrap()]);

        // The same by hand with the blank check the driver may never skip.
        let plain = LoopVolume::create(dir);
        let started = Instant::now();
        let probe = Command::new("blkid").args(["-p", "-o", "export"]).arg(&plain.device).output().unwrap();
        assert_eq!(probe.status.code(), Some(2), "a fresh device is blank");
        tool("mkfs.ext4", &["-q", plain.device.to_str().unwrap()]);
        tool("mount", &["-t", "ext4", plain.device.to_str().unwrap(), mount_point.to_str().unwrap()]);
        checked.push(started.elapsed());
        tool("umount", &[mount_point.to_str().unwrap()]);
    }
    let (stage, baseline) = (median(&mut staged), median(&mut direct));
    let ratio = stage.as_secs_f64() / baseline.as_secs_f64();
    rows.push(Row {
        name: format!(
            "NodeStageVolume (ext4, fresh 10 GiB loop device) vs mkfs + mount (median of {STAGE_SAMPLES})"
        ),
        measured: time(stage),
        compared_to: time(baseline),
        ratio: format!("{ratio:.3}"),
        target: "≤ 1.10".into(),
        verdict: Verdict::of(ratio <= 1.10),
        note: "baseline: `mkfs.ext4 -q` + `mount -t ext4` on another fresh loop device, same run".into(),
    });
    let checked = median(&mut checked);
    let ratio = stage.as_secs_f64() / checked.as_secs_f64();
    rows.push(Row {
        name: format!(
            "NodeStageVolume vs `blkid -p` + mkfs + mount, the blank check included (median of {STAGE_SAMPLES})"
        ),
        measured: time(stage),
        compared_to: time(checked),
        ratio: format!("{ratio:.3}"),
        target: "≤ 1.10".into(),
        verdict: Verdict::of(ratio <= 1.10),
        note: "baseline: the row above's, plus the blank check the driver may never skip".into(),
    });

    let (volume, staging) = &devices[0];
    let mut took = Vec::new();
    let mut targets = Vec::new();
    for i in 0..PUBLISH_SAMPLES {
        let target = dir.join(format!("target-{i}"));
        let started = Instant::now();
        client.node_publish_volume(publish_request(&volume.id, staging, &target)).await.expect("NodePublish");
        took.push(started.elapsed());
        targets.push(target);
    }
    for target in &targets {
        let unpublish = pb::NodeUnpublishVolumeRequest {
            volume_id: volume.id.clone(),
            target_path: target.to_string_lossy().into_owned(),
        };
        client.node_unpublish_volume(unpublish).await.expect("NodeUnpublish");
    }
    let p99 = percentile(&mut took, 99.0);
    let limit = Duration::from_millis(5);
    rows.push(Row {
        name: format!("NodePublishVolume p99 ({PUBLISH_SAMPLES} bind mounts of one staged volume)"),
        measured: time(p99),
        compared_to: time(limit),
        ratio: format!("{:.2}", p99.as_secs_f64() / limit.as_secs_f64()),
        target: "≤ 1.00".into(),
        verdict: Verdict::of(p99 <= limit),
        note: format!("median {}", time(median(&mut took))),
    });
    for (volume, staging) in &devices {
        let unstage = pb::NodeUnstageVolumeRequest {
            volume_id: volume.id.clone(),
            staging_target_path: staging.to_string_lossy().into_owned(),
        };
        client.node_unstage_volume(unstage).await.expect("NodeUnstage");
    }
}

/// A loop device over a sparse 10 GiB file named after a fresh volume id; detached on drop.
struct LoopVolume {
    id: String,
    file: PathBuf,
    device: PathBuf,
}

impl LoopVolume {
    fn create(dir: &Path) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        let file = dir.join(format!("{id}.img"));
        std::fs::File::create(&file).unwrap().set_len(10 * GIB).unwrap();
        let device = tool("losetup", &["--find", "--show", file.to_str().unwrap()]).trim().to_string();
        Self { id, file, device: PathBuf::from(device) }
    }

    /// The `virtio-<id[:20]>` link the node looks for.
    fn link(&self, by_id: &Path) {
        let short: String = self.id.chars().take(20).collect();
        std::os::unix::fs::symlink(&self.device, by_id.join(format!("virtio-{short}"))).unwrap();
    }
}

impl Drop for LoopVolume {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

fn tool(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn capability() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

fn stage_request(volume_id: &str, staging: &Path) -> pb::NodeStageVolumeRequest {
    pb::NodeStageVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        volume_capability: Some(capability()),
        ..Default::default()
    }
}

fn publish_request(volume_id: &str, staging: &Path, target: &Path) -> pb::NodePublishVolumeRequest {
    pb::NodePublishVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        target_path: target.to_string_lossy().into_owned(),
        volume_capability: Some(capability()),
        ..Default::default()
    }
}
