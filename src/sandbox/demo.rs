//! `sandbox --demo`: one volume through the life of a PVC, driven over the CSI socket exactly
//! as the sidecars and kubelet would, with each step's duration printed.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use super::SandboxError;
use crate::contract::GIB;
use crate::csi::pb;
use crate::csi::pb::controller_client::ControllerClient;
use crate::csi::pb::identity_client::IdentityClient;
use crate::csi::pb::node_client::NodeClient;
use crate::csi::pb::volume_capability::access_mode::Mode;
use crate::csi::pb::volume_capability::{AccessMode, AccessType, MountVolume};
use crate::server::Endpoint;

const DATA_BYTES: usize = 4 << 20;
/// The demo's filesystem: xfs grows online with CAP_SYS_ADMIN alone, while ext4's online
/// resize also needs CAP_SYS_RESOURCE, which some container sandboxes withhold even from root;
/// ext4 when xfsprogs is not installed.
fn demo_fs() -> &'static str {
    let dirs = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];
    if dirs.iter().any(|d| Path::new(d).join("mkfs.xfs").exists()) { "xfs" } else { "ext4" }
}

fn failed(what: &str) -> impl FnOnce(tonic::Status) -> SandboxError + '_ {
    move |status| SandboxError::Demo(format!("{what}: {:?}: {}", status.code(), status.message()))
}

/// Runs one step, printing its name and duration.
async fn step<T, F: Future<Output = Result<T, SandboxError>>>(name: &str, f: F) -> Result<T, SandboxError> {
    let started = Instant::now();
    let result = f.await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &result {
        Ok(_) => println!("  ok    {name:<52} {ms:>8.1} ms"),
        Err(e) => println!("  FAIL  {name:<52} {ms:>8.1} ms: {e}"),
    }
    result
}

async fn connect(endpoint: &Endpoint) -> Result<Channel, SandboxError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = match endpoint {
            Endpoint::Unix(path) => {
                let path = path.clone();
                tonic::transport::Endpoint::from_static("http://[::]:50051")
                    .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                        let path = path.clone();
                        async move {
                            let stream = tokio::net::UnixStream::connect(path).await?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                        }
                    }))
                    .await
            }
            Endpoint::Tcp(address) => {
                tonic::transport::Endpoint::from_shared(format!("http://{address}"))
                    .map_err(|e| SandboxError::Demo(e.to_string()))?
                    .connect()
                    .await
            }
        };
        match attempt {
            Ok(channel) => return Ok(channel),
            Err(e) if Instant::now() > deadline => {
                return Err(SandboxError::Demo(format!("connecting: {e}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn capability() -> pb::VolumeCapability {
    pb::VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume { fs_type: demo_fs().into(), ..Default::default() })),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
    }
}

/// Pseudo-random bytes (xorshift), so the check does not depend on a compressible pattern.
fn pattern(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

struct Mounted {
    volume_id: String,
    staging: PathBuf,
    target: PathBuf,
}

/// The node and controller clients of the demo.
struct Demo {
    controller: ControllerClient<Channel>,
    node: NodeClient<Channel>,
    node_id: String,
    work: PathBuf,
}

impl Demo {
    async fn create(
        &mut self,
        name: &str,
        gib: i64,
        source: Option<pb::VolumeContentSource>,
    ) -> Result<pb::Volume, SandboxError> {
        let request = pb::CreateVolumeRequest {
            name: name.into(),
            capacity_range: Some(pb::CapacityRange { required_bytes: gib * GIB, limit_bytes: 0 }),
            volume_capabilities: vec![capability()],
            volume_content_source: source,
            ..Default::default()
        };
        let volume = self.controller.create_volume(request).await.map_err(failed("CreateVolume"))?;
        volume.into_inner().volume.ok_or_else(|| SandboxError::Demo("CreateVolume returned no volume".into()))
    }

    async fn attach(&mut self, volume_id: &str) -> Result<HashMap<String, String>, SandboxError> {
        let request = pb::ControllerPublishVolumeRequest {
            volume_id: volume_id.into(),
            node_id: self.node_id.clone(),
            volume_capability: Some(capability()),
            ..Default::default()
        };
        Ok(self
            .controller
            .controller_publish_volume(request)
            .await
            .map_err(failed("ControllerPublishVolume"))?
            .into_inner()
            .publish_context)
    }

    async fn detach(&mut self, volume_id: &str) -> Result<(), SandboxError> {
        let request = pb::ControllerUnpublishVolumeRequest {
            volume_id: volume_id.into(),
            node_id: self.node_id.clone(),
            ..Default::default()
        };
        self.controller
            .controller_unpublish_volume(request)
            .await
            .map_err(failed("ControllerUnpublishVolume"))?;
        Ok(())
    }

    async fn mount(
        &mut self,
        volume: &pb::Volume,
        context: HashMap<String, String>,
    ) -> Result<Mounted, SandboxError> {
        let staging = self.work.join("staging").join(&volume.volume_id);
        let target = self.work.join("pods/demo/volumes").join(&volume.volume_id);
        std::fs::create_dir_all(&staging).map_err(super::io("creating", &staging))?;
        std::fs::create_dir_all(target.parent().unwrap_or(&self.work))
            .map_err(super::io("creating", &target))?;
        let stage = pb::NodeStageVolumeRequest {
            volume_id: volume.volume_id.clone(),
            publish_context: context.clone(),
            staging_target_path: staging.display().to_string(),
            volume_capability: Some(capability()),
            volume_context: volume.volume_context.clone(),
            ..Default::default()
        };
        self.node.node_stage_volume(stage).await.map_err(failed("NodeStageVolume"))?;
        let publish = pb::NodePublishVolumeRequest {
            volume_id: volume.volume_id.clone(),
            publish_context: context,
            staging_target_path: staging.display().to_string(),
            target_path: target.display().to_string(),
            volume_capability: Some(capability()),
            volume_context: volume.volume_context.clone(),
            ..Default::default()
        };
        self.node.node_publish_volume(publish).await.map_err(failed("NodePublishVolume"))?;
        Ok(Mounted { volume_id: volume.volume_id.clone(), staging, target })
    }

    async fn unmount(&mut self, mounted: &Mounted) -> Result<(), SandboxError> {
        let unpublish = pb::NodeUnpublishVolumeRequest {
            volume_id: mounted.volume_id.clone(),
            target_path: mounted.target.display().to_string(),
        };
        self.node.node_unpublish_volume(unpublish).await.map_err(failed("NodeUnpublishVolume"))?;
        let unstage = pb::NodeUnstageVolumeRequest {
            volume_id: mounted.volume_id.clone(),
            staging_target_path: mounted.staging.display().to_string(),
        };
        self.node.node_unstage_volume(unstage).await.map_err(failed("NodeUnstageVolume"))?;
        Ok(())
    }
}

fn read_back(mounted: &Mounted, expected: &str, when: &str) -> Result<(), SandboxError> {
    let path = mounted.target.join("data.bin");
    let bytes = std::fs::read(&path).map_err(super::io("reading", &path))?;
    let actual = sha256_hex(&bytes);
    if actual != expected {
        return Err(SandboxError::Demo(format!(
            "data read back {when} differs: sha256 {actual}, expected {expected}"
        )));
    }
    println!("        data read back {when} matches (sha256 {})", &actual[..16]);
    Ok(())
}

/// Runs the demo against the sandbox at `endpoint`; node steps need root.
pub async fn run(endpoint: &Endpoint, node_id: &str, work: &Path) -> Result<(), SandboxError> {
    let channel = connect(endpoint).await?;
    let mut identity = IdentityClient::new(channel.clone());
    step("Probe until ready", async {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready =
                identity.probe(pb::ProbeRequest {}).await.map_err(failed("Probe"))?.into_inner().ready;
            if ready == Some(true) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Demo("the driver never became ready".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    let node_steps = super::is_root();
    let mut demo = Demo {
        controller: ControllerClient::new(channel.clone()),
        node: NodeClient::new(channel),
        node_id: node_id.to_string(),
        work: work.to_path_buf(),
    };
    println!("demo: one volume through the life of a PVC");
    let volume = step("CreateVolume demo-pvc (1 GiB)", demo.create("demo-pvc", 1, None)).await?;
    let context = step("ControllerPublishVolume to this node", demo.attach(&volume.volume_id)).await?;
    let data = pattern(DATA_BYTES);
    let checksum = sha256_hex(&data);
    let mounted = if node_steps {
        let mounted = step(
            &format!("NodeStageVolume (format {}) + NodePublishVolume", demo_fs()),
            demo.mount(&volume, context),
        )
        .await?;
        step("write 4 MiB of data", async {
            let path = mounted.target.join("data.bin");
            std::fs::write(&path, &data).map_err(super::io("writing", &path))?;
            nix::unistd::sync();
            Ok(())
        })
        .await?;
        Some(mounted)
    } else {
        println!(
            "  skip  node steps (stage, publish, write, read back): they need root for loop devices and mounts"
        );
        None
    };

    let snapshot = step("CreateSnapshot demo-snap, until ready_to_use", async {
        let request = pb::CreateSnapshotRequest {
            name: "demo-snap".into(),
            source_volume_id: volume.volume_id.clone(),
            ..Default::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let snapshot = demo
                .controller
                .create_snapshot(request.clone())
                .await
                .map_err(failed("CreateSnapshot"))?
                .into_inner()
                .snapshot;
            let snapshot =
                snapshot.ok_or_else(|| SandboxError::Demo("CreateSnapshot returned no snapshot".into()))?;
            if snapshot.ready_to_use {
                return Ok(snapshot);
            }
            if Instant::now() > deadline {
                return Err(SandboxError::Demo("the snapshot never became ready".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;
    let source = pb::VolumeContentSource {
        r#type: Some(pb::volume_content_source::Type::Snapshot(pb::volume_content_source::SnapshotSource {
            snapshot_id: snapshot.snapshot_id.clone(),
        })),
    };
    let restored = step(
        "CreateVolume demo-restore (2 GiB) from the snapshot",
        demo.create("demo-restore", 2, Some(source)),
    )
    .await?;
    let restored_context =
        step("ControllerPublishVolume the restored volume", demo.attach(&restored.volume_id)).await?;
    let restored_mount = match node_steps {
        true => {
            let m = step(
                "stage + publish the restored volume (grows its filesystem)",
                demo.mount(&restored, restored_context),
            )
            .await?;
            read_back(&m, &checksum, "after restore")?;
            Some(m)
        }
        false => None,
    };

    step("ControllerExpandVolume demo-pvc to 3 GiB (online)", async {
        let request = pb::ControllerExpandVolumeRequest {
            volume_id: volume.volume_id.clone(),
            capacity_range: Some(pb::CapacityRange { required_bytes: 3 * GIB, limit_bytes: 0 }),
            volume_capability: Some(capability()),
            ..Default::default()
        };
        demo.controller.controller_expand_volume(request).await.map_err(failed("ControllerExpandVolume"))?;
        Ok(())
    })
    .await?;
    if let Some(mounted) = &mounted {
        let capacity = step("NodeExpandVolume (grow the filesystem)", async {
            let request = pb::NodeExpandVolumeRequest {
                volume_id: mounted.volume_id.clone(),
                volume_path: mounted.target.display().to_string(),
                capacity_range: Some(pb::CapacityRange { required_bytes: 3 * GIB, limit_bytes: 0 }),
                staging_target_path: mounted.staging.display().to_string(),
                volume_capability: Some(capability()),
                ..Default::default()
            };
            Ok(demo
                .node
                .node_expand_volume(request)
                .await
                .map_err(failed("NodeExpandVolume"))?
                .into_inner()
                .capacity_bytes)
        })
        .await?;
        println!("        capacity after expansion: {:.2} GiB", capacity as f64 / GIB as f64);
        read_back(mounted, &checksum, "after expansion")?;
        let stats = step("NodeGetVolumeStats", async {
            let request = pb::NodeGetVolumeStatsRequest {
                volume_id: mounted.volume_id.clone(),
                volume_path: mounted.target.display().to_string(),
                staging_target_path: mounted.staging.display().to_string(),
            };
            Ok(demo
                .node
                .node_get_volume_stats(request)
                .await
                .map_err(failed("NodeGetVolumeStats"))?
                .into_inner())
        })
        .await?;
        for usage in &stats.usage {
            println!(
                "        usage: total {} used {} available {} (unit {})",
                usage.total, usage.used, usage.available, usage.unit
            );
        }
    }

    for mount in [&mounted, &restored_mount].into_iter().flatten() {
        step("NodeUnpublishVolume + NodeUnstageVolume", demo.unmount(mount)).await?;
    }
    step("ControllerUnpublishVolume both volumes", async {
        demo.detach(&restored.volume_id).await?;
        demo.detach(&volume.volume_id).await
    })
    .await?;
    step("DeleteVolume demo-restore", async {
        let request = pb::DeleteVolumeRequest { volume_id: restored.volume_id.clone(), ..Default::default() };
        demo.controller.delete_volume(request).await.map_err(failed("DeleteVolume"))?;
        Ok(())
    })
    .await?;
    step("DeleteSnapshot demo-snap", async {
        let request =
            pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
        demo.controller.delete_snapshot(request).await.map_err(failed("DeleteSnapshot"))?;
        Ok(())
    })
    .await?;
    step("DeleteVolume demo-pvc", async {
        let request = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
        let deadline = Instant::now() + Duration::from_secs(30);
        // The snapshot's deletion finishes asynchronously; until then the volume is pinned.
        loop {
            match demo.controller.delete_volume(request.clone()).await {
                Ok(_) => return Ok(()),
                Err(s) if s.code() == tonic::Code::FailedPrecondition && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(s) => return Err(failed("DeleteVolume")(s)),
            }
        }
    })
    .await?;
    println!("demo: done");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_deterministic_and_not_constant() {
        let a = pattern(1024);
        assert_eq!(a, pattern(1024));
        assert!(a.iter().any(|b| *b != a[0]));
    }

    #[test]
    fn sha256_matches_the_published_empty_digest() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
