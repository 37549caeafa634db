//! The CSI Node service. It needs no cloud credentials: it validates requests, takes the
//! volume's lock and hands the work to the host room (devices, filesystems, mounts).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tonic::{Request, Response, Status};

use super::observe::Observer;
use super::pb::volume_capability::AccessType;
use super::pb::volume_capability::access_mode::Mode;
use super::pb::{self, node_server::Node};
use super::status::CsiError;
use crate::contract::{CloudId, FsType, PublishContext, ids};
use crate::host::device::{self, DeviceFinder, Hints};
use crate::host::lock::VolumeLocks;
use crate::host::publish::{self, PublishRequest};
use crate::host::stage::{self, Access, StageRequest};
use crate::host::{resize, safe_path, stats};
use crate::node_identity::NodeIdentity;

/// What the node service needs to know about its host.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The CSI driver name, for the topology key.
    pub driver_name: String,
    /// The node's id and zone.
    pub identity: NodeIdentity,
    /// The limit reported in NodeGetInfo.
    pub max_volumes_per_node: i64,
    /// How devices are found.
    pub finder: DeviceFinder,
}

/// Node service state.
#[derive(Debug)]
pub struct NodeService {
    config: NodeConfig,
    locks: VolumeLocks,
    observer: Observer,
}

impl NodeService {
    /// A node service for the host described by `config`.
    pub fn new(config: NodeConfig, observer: Observer) -> Self {
        Self { config, locks: VolumeLocks::new(), observer }
    }

    /// The topology segments of this node: the zone under the driver's key and the
    /// well-known Kubernetes key.
    pub fn topology(&self) -> Option<pb::Topology> {
        let zone = self.config.identity.zone.clone()?;
        let segments = HashMap::from([
            (format!("topology.{}/zone", self.config.driver_name), zone.clone()),
            ("topology.kubernetes.io/zone".to_string(), zone),
        ]);
        Some(pb::Topology { segments })
    }
}

fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.trim().is_empty() {
        Err(CsiError::InvalidArgument(format!("{field} is required")).into())
    } else {
        Ok(value)
    }
}

/// A path field: absolute, no NUL, no `..`, within the kernel's limits (InvalidArgument).
fn required_path(value: &str, field: &str) -> Result<PathBuf, Status> {
    Ok(safe_path::request_path(field, value)?)
}

/// A path field of NodeGetVolumeStats / NodeExpandVolume: a path that does not exist is
/// NotFound (whatever its form, as the CSI spec and csi-sanity expect), checked before the
/// other rules of [`required_path`].
fn existing_path(value: &str, field: &str) -> Result<PathBuf, Status> {
    required(value, field)?;
    if !value.contains('\0')
        && Path::new(value).symlink_metadata().is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
    {
        return Err(CsiError::NotFound(format!("{field} {} does not exist", ids::quote(value))).into());
    }
    required_path(value, field)
}

/// The cloud volume id in a CSI volume handle `[<cloud-name>:]<uuid>` (split at the last
/// `:`). An id that cannot be a cloud id names no volume on this node: NotFound, before any
/// device search.
fn volume_id(value: &str) -> Result<CloudId, Status> {
    required(value, "volume_id")?;
    let uuid = value.rsplit_once(':').map_or(value, |(_, id)| id);
    CloudId::parse("volume_id", uuid)
        .map_err(|e| CsiError::NotFound(format!("no volume {} on this node: {e}", ids::quote(value))).into())
}

/// The access a capability asks for, and its mode.
fn access(capability: Option<&pb::VolumeCapability>) -> Result<(Access, Mode), Status> {
    let capability =
        capability.ok_or_else(|| CsiError::InvalidArgument("volume_capability is required".into()))?;
    let mode = capability.access_mode.map(|m| m.mode()).unwrap_or(Mode::Unknown);
    let access = match &capability.access_type {
        Some(AccessType::Block(_)) => Access::Block,
        Some(AccessType::Mount(mount)) => {
            if matches!(mode, Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter) {
                return Err(CsiError::InvalidArgument(format!(
                    "access mode {} cannot be served with a filesystem: ext4, xfs and btrfs are single-host",
                    mode.as_str_name()
                ))
                .into());
            }
            let fs = FsType::from_request(&mount.fs_type)
                .map_err(|e| Status::from(CsiError::InvalidArgument(e.to_string())))?;
            Access::Filesystem { fs, mount_options: mount.mount_flags.clone() }
        }
        None => {
            return Err(CsiError::InvalidArgument(
                "volume_capability needs an access_type (block or mount)".into(),
            )
            .into());
        }
    };
    if mode == Mode::Unknown {
        return Err(CsiError::InvalidArgument("volume_capability needs an access_mode".into()).into());
    }
    Ok((access, mode))
}

/// True for the access modes that only read.
fn is_reader_only(mode: Mode) -> bool {
    matches!(mode, Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly)
}

/// The device search inputs from a request's `publish_context`: the cloud id to look for
/// (the context's `volumeId` when the controller set one) and the verified hints.
fn device_lookup(volume: CloudId, context: &HashMap<String, String>) -> Result<(CloudId, Hints), Status> {
    let context = PublishContext::from_map(context)
        .map_err(|e| Status::from(CsiError::InvalidArgument(e.to_string())))?;
    let cloud_id = context.volume_id.unwrap_or(volume);
    // Only a hint (a cloud may report "auto" or a stale letter): one that is not a clean
    // absolute path is dropped, and one that is gets verified like any other candidate.
    let device_path = context.device_path.and_then(|p| {
        safe_path::request_path("publish_context devicePath", &p)
            .inspect_err(|e| tracing::info!(error = %e, "ignoring the device path hint"))
            .ok()
    });
    let wwn = context.wwn.as_deref().map(device::parse_wwn).transpose()?;
    Ok((cloud_id, Hints { device_path, wwn }))
}

/// Runs blocking host work (mount syscalls) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::host::Result<T> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Status::internal(format!("host task failed: {e}")))?
        .map_err(Status::from)
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_stage_volume(
        &self,
        request: Request<pb::NodeStageVolumeRequest>,
    ) -> Result<Response<pb::NodeStageVolumeResponse>, Status> {
        self.observer
            .call("NodeStageVolume", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let staging_path = required_path(&r.staging_target_path, "staging_target_path")?;
                let (access, mode) = access(r.volume_capability.as_ref())?;
                let volume = volume_id(&r.volume_id)?;
                let _guard = self.locks.try_lock(volume.as_str())?;
                let (cloud_id, hints) = device_lookup(volume, &r.publish_context)?;
                let request = StageRequest {
                    volume: &cloud_id,
                    staging_path: &staging_path,
                    hints,
                    access,
                    readonly: is_reader_only(mode),
                    context: &r.volume_context,
                };
                stage::stage(&self.config.finder, &request).await?;
                Ok(pb::NodeStageVolumeResponse {})
            })
            .await
    }

    async fn node_unstage_volume(
        &self,
        request: Request<pb::NodeUnstageVolumeRequest>,
    ) -> Result<Response<pb::NodeUnstageVolumeResponse>, Status> {
        self.observer
            .call("NodeUnstageVolume", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let staging_path = required_path(&r.staging_target_path, "staging_target_path")?;
                let volume = volume_id(&r.volume_id)?;
                let _guard = self.locks.try_lock(volume.as_str())?;
                let finder = self.config.finder.clone();
                blocking(move || stage::unstage(&finder, &volume, &staging_path)).await?;
                Ok(pb::NodeUnstageVolumeResponse {})
            })
            .await
    }

    async fn node_publish_volume(
        &self,
        request: Request<pb::NodePublishVolumeRequest>,
    ) -> Result<Response<pb::NodePublishVolumeResponse>, Status> {
        self.observer
            .call("NodePublishVolume", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let target = required_path(&r.target_path, "target_path")?;
                let (access, mode) = access(r.volume_capability.as_ref())?;
                let staging_path = match access {
                    Access::Filesystem { .. } => {
                        required_path(&r.staging_target_path, "staging_target_path")?
                    }
                    // Raw block publishes bind the device itself; the staging path is unused.
                    Access::Block => PathBuf::new(),
                };
                let volume = volume_id(&r.volume_id)?;
                let _guard = self.locks.try_lock(volume.as_str())?;
                let (cloud_id, hints) = device_lookup(volume, &r.publish_context)?;
                let request = PublishRequest {
                    volume: &cloud_id,
                    staging_path: &staging_path,
                    target: &target,
                    hints,
                    access,
                    readonly: is_reader_only(mode) || r.readonly,
                    single_publish: mode == Mode::SingleNodeSingleWriter,
                };
                publish::publish(&self.config.finder, &request).await?;
                Ok(pb::NodePublishVolumeResponse {})
            })
            .await
    }

    async fn node_unpublish_volume(
        &self,
        request: Request<pb::NodeUnpublishVolumeRequest>,
    ) -> Result<Response<pb::NodeUnpublishVolumeResponse>, Status> {
        self.observer
            .call("NodeUnpublishVolume", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let target = required_path(&r.target_path, "target_path")?;
                let volume = volume_id(&r.volume_id)?;
                let _guard = self.locks.try_lock(volume.as_str())?;
                let finder = self.config.finder.clone();
                blocking(move || publish::unpublish(&finder, &volume, &target)).await?;
                Ok(pb::NodeUnpublishVolumeResponse {})
            })
            .await
    }

    async fn node_get_volume_stats(
        &self,
        request: Request<pb::NodeGetVolumeStatsRequest>,
    ) -> Result<Response<pb::NodeGetVolumeStatsResponse>, Status> {
        self.observer
            .call("NodeGetVolumeStats", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let volume_path = existing_path(&r.volume_path, "volume_path")?;
                let volume = volume_id(&r.volume_id)?;
                let finder = self.config.finder.clone();
                let (usage, condition) =
                    blocking(move || stats::volume_stats(&finder, &volume, &volume_path)).await?;
                Ok(pb::NodeGetVolumeStatsResponse {
                    usage: usage_messages(usage),
                    volume_condition: Some(pb::VolumeCondition {
                        abnormal: condition.abnormal,
                        message: condition.message,
                    }),
                })
            })
            .await
    }

    async fn node_expand_volume(
        &self,
        request: Request<pb::NodeExpandVolumeRequest>,
    ) -> Result<Response<pb::NodeExpandVolumeResponse>, Status> {
        self.observer
            .call("NodeExpandVolume", request, |r| async move {
                required(&r.volume_id, "volume_id")?;
                let volume_path = existing_path(&r.volume_path, "volume_path")?;
                let volume = volume_id(&r.volume_id)?;
                let _guard = self.locks.try_lock(volume.as_str())?;
                let capacity = resize::expand(&self.config.finder, &volume, &volume_path).await?;
                let required_bytes = r.capacity_range.map_or(0, |c| c.required_bytes);
                if (capacity as i64) < required_bytes {
                    tracing::warn!(capacity, required_bytes, "the device is still smaller than requested");
                }
                Ok(pb::NodeExpandVolumeResponse { capacity_bytes: capacity as i64 })
            })
            .await
    }

    async fn node_get_capabilities(
        &self,
        request: Request<pb::NodeGetCapabilitiesRequest>,
    ) -> Result<Response<pb::NodeGetCapabilitiesResponse>, Status> {
        use pb::node_service_capability::{Rpc, Type, rpc::Type as Rpc_};
        self.observer
            .call("NodeGetCapabilities", request, |_| async {
                let capabilities = [
                    Rpc_::StageUnstageVolume,
                    Rpc_::GetVolumeStats,
                    Rpc_::ExpandVolume,
                    Rpc_::VolumeCondition,
                    Rpc_::SingleNodeMultiWriter,
                ]
                .into_iter()
                .map(|t| pb::NodeServiceCapability { r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })) })
                .collect();
                Ok(pb::NodeGetCapabilitiesResponse { capabilities })
            })
            .await
    }

    async fn node_get_info(
        &self,
        request: Request<pb::NodeGetInfoRequest>,
    ) -> Result<Response<pb::NodeGetInfoResponse>, Status> {
        self.observer
            .call("NodeGetInfo", request, |_| async {
                Ok(pb::NodeGetInfoResponse {
                    node_id: self.config.identity.node_id.clone(),
                    max_volumes_per_node: self.config.max_volumes_per_node,
                    accessible_topology: self.topology(),
                })
            })
            .await
    }
}

/// The CSI usage entries for a volume's usage.
fn usage_messages(usage: stats::Usage) -> Vec<pb::VolumeUsage> {
    use pb::volume_usage::Unit;
    let entry = |unit: Unit, total: u64, available: u64, used: u64| pb::VolumeUsage {
        total: total as i64,
        available: available as i64,
        used: used as i64,
        unit: unit as i32,
    };
    match usage {
        stats::Usage::Filesystem(fs) => vec![
            entry(Unit::Bytes, fs.bytes_total, fs.bytes_available, fs.bytes_used),
            entry(Unit::Inodes, fs.inodes_total, fs.inodes_available, fs.inodes_used),
        ],
        stats::Usage::Block(bytes) => {
            vec![pb::VolumeUsage { total: bytes as i64, unit: Unit::Bytes as i32, ..Default::default() }]
        }
        stats::Usage::Unknown => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";

    #[test]
    fn a_handle_is_split_at_its_last_colon_and_its_uuid_parsed() {
        for handle in [ID.to_string(), format!("huawei:{ID}"), format!("a:b:{}", ID.to_uppercase())] {
            assert_eq!(volume_id(&handle).unwrap().as_str(), ID, "{handle}");
        }
    }

    #[test]
    fn a_handle_without_a_cloud_id_is_not_found_and_an_empty_one_invalid() {
        for handle in ["-", "victim", "disk", "huawei:", &format!("{ID}:"), &format!("x:{}", &ID[..20])] {
            assert_eq!(volume_id(handle).unwrap_err().code(), tonic::Code::NotFound, "{handle:?}");
        }
        assert_eq!(volume_id("").unwrap_err().code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn publish_context_hints_are_parsed_or_refused() {
        let volume = CloudId::parse("volume_id", ID).unwrap();
        let context = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let (id, hints) =
            device_lookup(volume.clone(), &context(&[("devicePath", "auto"), ("wwn", "0x6888603000001234")]))
                .unwrap();
        assert_eq!(id, volume);
        assert_eq!(hints.device_path, None, "a hint that is not an absolute path is dropped");
        assert_eq!(hints.wwn.as_deref(), Some("6888603000001234"));
        for (key, value) in [("wwn", "../../x"), ("volumeId", "victim")] {
            let error = device_lookup(volume.clone(), &context(&[(key, value)])).unwrap_err();
            assert_eq!(error.code(), tonic::Code::InvalidArgument, "{key}={value}");
        }
    }
}
