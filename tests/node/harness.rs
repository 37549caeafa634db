//! A harness for node tests on real loop devices: sparse backing files named after the volume,
//! by-id links in a private search directory, and the real NodeService served in-process on a
//! temporary unix socket.

#![allow(dead_code)] // Each test binary uses a different part of the harness.

use std::collections::HashMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cinder_evs_csi::csi::node::{NodeConfig, NodeService};
use cinder_evs_csi::csi::observe::Observer;
use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::node_client::NodeClient;
use cinder_evs_csi::csi::pb::node_server::NodeServer;
use cinder_evs_csi::host::device::DeviceFinder;
use cinder_evs_csi::node_identity::NodeIdentity;
use cinder_evs_csi::telemetry::metrics::Metrics;
pub use testkit::requests::{block_capability, mount_capability};
pub use testkit::{CAP_SYS_RESOURCE, has_capability, root_or_skip};
use tonic::transport::Channel;

pub const MIB: u64 = 1 << 20;

/// Runs a tool and returns its stdout; panics with its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A loop device over a sparse file named after the volume; detached on drop.
pub struct LoopVolume {
    pub id: String,
    pub file: PathBuf,
    pub device: PathBuf,
}

impl LoopVolume {
    /// A fresh volume of `size` bytes (all zeros) in `dir`.
    pub fn create(dir: &Path, size: u64) -> Self {
        let id = uuid::Uuid::new_v4().to_string();
        Self::create_with_id(dir, &id, size)
    }

    /// A fresh volume with the given id.
    pub fn create_with_id(dir: &Path, id: &str, size: u64) -> Self {
        let file = dir.join(format!("{id}.img"));
        std::fs::File::create(&file).unwrap().set_len(size).unwrap();
        let device = run("losetup", &["--find", "--show", file.to_str().unwrap()]).trim().to_string();
        // The kernel's read-only flag outlives a detach; a crashed test may have left it set.
        run("blockdev", &["--setrw", &device]);
        Self { id: id.to_string(), file, device: PathBuf::from(device) }
    }

    /// Grows the backing file (the "cloud" extends the volume); the kernel sees it on rescan.
    pub fn grow_to(&self, size: u64) {
        std::fs::OpenOptions::new().write(true).open(&self.file).unwrap().set_len(size).unwrap();
    }

    /// The device's size as the kernel sees it.
    pub fn kernel_size(&self) -> u64 {
        run("blockdev", &["--getsize64", self.device.to_str().unwrap()]).trim().parse().unwrap()
    }

    /// A digest of the whole device (FNV-1a over its bytes), to prove nothing changed.
    pub fn checksum(&self) -> u64 {
        let bytes = std::fs::read(&self.device).unwrap();
        bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3))
    }

    /// Writes `bytes` at `offset` of the device.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) {
        let file = std::fs::OpenOptions::new().write(true).open(&self.device).unwrap();
        file.write_all_at(bytes, offset).unwrap();
        file.sync_all().unwrap();
    }

    /// What blkid says the device holds ("" for nothing).
    pub fn blkid_type(&self) -> String {
        let out = Command::new("blkid")
            .args(["-p", "-o", "value", "-s", "TYPE", self.device.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for LoopVolume {
    fn drop(&mut self) {
        let _ = Command::new("blockdev").arg("--setrw").arg(&self.device).status();
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// The mount entries of this process at `path`.
pub fn mounts_at(path: &Path) -> Vec<cinder_evs_csi::host::mount::MountEntry> {
    cinder_evs_csi::host::mount::mounts().unwrap().into_iter().filter(|m| m.mount_point == path).collect()
}

/// The node service on a private socket, with its own by-id directory and workspace.
pub struct NodeHarness {
    pub dir: tempfile::TempDir,
    pub by_id: PathBuf,
    pub client: NodeClient<Channel>,
    server: tokio::task::JoinHandle<()>,
}

impl NodeHarness {
    /// Starts a node service that looks for devices in a private by-id directory.
    pub async fn start() -> Self {
        Self::start_with(NodeIdentity { node_id: "server-1".into(), zone: Some("az-1".into()) }).await
    }

    /// Starts a node service that waits up to `wait` for devices.
    pub async fn start_waiting(wait: Duration) -> Self {
        Self::start_configured(NodeIdentity { node_id: "server-1".into(), zone: Some("az-1".into()) }, wait)
            .await
    }

    /// Starts a node service with the given identity.
    pub async fn start_with(identity: NodeIdentity) -> Self {
        Self::start_configured(identity, Duration::from_secs(2)).await
    }

    async fn start_configured(identity: NodeIdentity, wait: Duration) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let by_id = dir.path().join("by-id");
        std::fs::create_dir(&by_id).unwrap();
        let config = NodeConfig {
            driver_name: "test.csi.example.io".into(),
            identity,
            max_volumes_per_node: 25,
            finder: DeviceFinder { search_dirs: vec![by_id.clone()], sys_root: PathBuf::from("/sys"), wait },
        };
        let socket = dir.path().join("csi.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        let service = NodeService::new(config, Observer::new(Metrics::new()));
        let server = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(NodeServer::new(service))
                .serve_with_incoming(tokio_stream::wrappers::UnixListenerStream::new(listener))
                .await
                .unwrap();
        });
        let client = NodeClient::new(testkit::unix_channel(socket).await);
        Self { dir, by_id, client, server }
    }

    /// A volume of `size` bytes with its `virtio-<id[:20]>` link in the search directory.
    pub fn volume(&self, size: u64) -> LoopVolume {
        let volume = LoopVolume::create(self.dir.path(), size);
        self.link(&volume.id, &volume.device);
        volume
    }

    /// Links `virtio-<volume_id[:20]>` to `device`.
    pub fn link(&self, volume_id: &str, device: &Path) {
        let short: String = volume_id.chars().take(20).collect();
        std::os::unix::fs::symlink(device, self.by_id.join(format!("virtio-{short}"))).unwrap();
    }

    /// A path in the workspace (not created).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for NodeHarness {
    fn drop(&mut self) {
        // Whatever a failed test left mounted in the workspace goes before the tempdir.
        let root = self.dir.path().to_path_buf();
        let mut mounts: Vec<_> = cinder_evs_csi::host::mount::mounts()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.mount_point.starts_with(&root))
            .collect();
        mounts.reverse();
        for m in mounts {
            let _ = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH);
        }
        self.server.abort();
    }
}

/// A stage request for `volume` at `staging` with `capability`.
pub fn stage_request(
    volume_id: &str,
    staging: &Path,
    capability: pb::VolumeCapability,
) -> pb::NodeStageVolumeRequest {
    pb::NodeStageVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        volume_capability: Some(capability),
        ..Default::default()
    }
}

/// A publish request.
pub fn publish_request(
    volume_id: &str,
    staging: &Path,
    target: &Path,
    capability: pb::VolumeCapability,
    readonly: bool,
) -> pb::NodePublishVolumeRequest {
    pb::NodePublishVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
        target_path: target.to_string_lossy().into_owned(),
        volume_capability: Some(capability),
        readonly,
        ..Default::default()
    }
}

/// An unstage request.
pub fn unstage_request(volume_id: &str, staging: &Path) -> pb::NodeUnstageVolumeRequest {
    pb::NodeUnstageVolumeRequest {
        volume_id: volume_id.into(),
        staging_target_path: staging.to_string_lossy().into_owned(),
    }
}

/// An unpublish request.
pub fn unpublish_request(volume_id: &str, target: &Path) -> pb::NodeUnpublishVolumeRequest {
    pb::NodeUnpublishVolumeRequest {
        volume_id: volume_id.into(),
        target_path: target.to_string_lossy().into_owned(),
    }
}

/// A volume context from pairs.
pub fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}
