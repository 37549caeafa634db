//! The CSI Controller service: provisioning, attachment, listing and health of volumes.
//! It validates requests, serialises operations per object, and reaches the cloud only
//! through [`crate::cloud::Backend`].

mod advertise;
pub mod capability;
mod capacity;
pub mod clouds;
mod expand;
mod group;
mod listing;
mod modify;
mod mutable;
mod publish;
mod published;
mod settle;
pub mod snapshots;
#[cfg(test)]
mod tests;
pub mod topology;
mod volumes;

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::locks::{LockKey, OperationLocks, fingerprint};
use super::observe::Observer;
use super::pb::{self, controller_server::Controller};
use super::status::CsiError;
pub use clouds::Clouds;

/// How the controller behaves.
#[derive(Clone, Debug)]
pub struct ControllerSettings {
    /// The CSI driver name (topology keys derive from it).
    pub driver_name: String,
    /// Written into every volume's metadata, so volumes of this cluster can be told apart.
    pub cluster_id: String,
    /// Size of a volume whose request names no capacity.
    pub default_size_gib: u64,
    /// How long CreateVolume waits for the cloud.
    pub create_timeout: Duration,
    /// How long Publish/Unpublish wait for the cloud.
    pub attach_timeout: Duration,
    /// When set, DeleteVolume waits this long for the delete to finish.
    pub delete_timeout: Option<Duration>,
    /// How long a delete, expand or publish waits for a transition the cloud would refuse it
    /// in (a snapshot still creating, a volume still extending) to settle.
    pub settle_timeout: Duration,
    /// Attachments allowed per node (0: unlimited). Off unless configured: each node reports
    /// its own limit (25 on virtio-blk, 59 on SCSI) in NodeGetInfo, which the scheduler
    /// enforces, and one number here could not fit both kinds of node.
    pub max_volumes_per_node: u32,
    /// Do not pin volumes to the topology zone (compute and volume zones differ).
    pub ignore_volume_az: bool,
}

impl ControllerSettings {
    /// Defaults for a driver name and cluster id.
    pub fn new(driver_name: String, cluster_id: String) -> Self {
        Self {
            driver_name,
            cluster_id,
            default_size_gib: 1,
            create_timeout: Duration::from_secs(300),
            attach_timeout: Duration::from_secs(180),
            delete_timeout: None,
            settle_timeout: Duration::from_secs(120),
            max_volumes_per_node: 0,
            ignore_volume_az: false,
        }
    }

    /// Topology keys: the driver's own and the Kubernetes one.
    pub fn topology_keys(&self) -> Vec<String> {
        vec![topology::driver_zone_key(&self.driver_name), topology::KUBERNETES_ZONE.to_string()]
    }
}

/// Controller service state.
#[derive(Debug)]
pub struct ControllerService {
    clouds: Clouds,
    settings: ControllerSettings,
    locks: Arc<OperationLocks>,
    observer: Observer,
}

/// Controller capabilities this build implements.
pub const CAPABILITIES: &[pb::controller_service_capability::rpc::Type] = {
    use pb::controller_service_capability::rpc::Type;
    &[
        Type::CreateDeleteVolume,
        Type::PublishUnpublishVolume,
        Type::ListVolumes,
        Type::ListVolumesPublishedNodes,
        Type::GetVolume,
        Type::VolumeCondition,
        Type::CloneVolume,
        Type::PublishReadonly,
        Type::SingleNodeMultiWriter,
        Type::CreateDeleteSnapshot,
        Type::ListSnapshots,
        Type::GetSnapshot,
        Type::ExpandVolume,
        Type::GetCapacity,
        Type::ModifyVolume,
    ]
};

impl ControllerService {
    /// A controller over the given clouds.
    pub fn new(clouds: Clouds, settings: ControllerSettings, observer: Observer) -> Self {
        Self { clouds, settings, locks: OperationLocks::new(), observer }
    }

    /// The configured clouds (for `import`, which names volumes as the controller does).
    pub fn clouds(&self) -> &Clouds {
        &self.clouds
    }

    /// Whether a resource with this metadata may be touched by this cluster: it names this
    /// cluster, or no cluster at all (imported, or created by hand).
    fn ours_or_imported(&self, metadata: &std::collections::BTreeMap<String, String>) -> bool {
        crate::contract::ownership::owned_by(metadata, &self.settings.cluster_id)
    }

    /// Refuses a resource another cluster's driver created: deleting, growing, retyping or
    /// attaching it would act on storage that cluster still relies on.
    fn check_owner(
        &self,
        kind: &str,
        handle: &str,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CsiError> {
        if self.ours_or_imported(metadata) {
            return Ok(());
        }
        let owner =
            metadata.get(crate::contract::ownership::META_CLUSTER_ID).map(String::as_str).unwrap_or_default();
        Err(CsiError::FailedPrecondition(format!(
            "{kind} {handle} belongs to cluster {}, not to this cluster ({}); it is left alone",
            crate::contract::ids::quote(owner),
            self.settings.cluster_id
        )))
    }

    async fn lock(
        &self,
        key: LockKey,
        method: &'static str,
        request: &impl std::fmt::Debug,
    ) -> Result<super::locks::OperationGuard, CsiError> {
        self.locks.acquire(&key, fingerprint(method, request), method).await
    }
}

/// A cloud-issued id as the typed id the backends take. Clouds issue UUIDs; one that does not
/// is a cloud the driver cannot safely address, reported as such.
fn issued(kind: &str, id: &str) -> Result<crate::contract::CloudId, CsiError> {
    crate::contract::CloudId::parse("id", id).map_err(|_| {
        CsiError::Internal(format!(
            "the cloud issued {kind} id {} which is not a UUID",
            crate::contract::ids::quote(id)
        ))
    })
}

/// Refuses a request with a NUL byte in any string field: no cloud name, id, path or
/// parameter may hold one, and C-string APIs further down would cut the text short there.
///
/// It reads the request's `Debug` text, where every string is escaped, so a NUL appears as the
/// escape `\0` and a literal backslash as `\\`; secrets are redacted there and never used
/// as names or paths.
fn refuse_nul(request: &impl std::fmt::Debug) -> Result<(), CsiError> {
    let text = format!("{request:?}");
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.next() == Some('0') {
            return Err(CsiError::InvalidArgument("a field of the request contains a NUL byte".into()));
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl Controller for ControllerService {
    async fn create_volume(
        &self,
        request: Request<pb::CreateVolumeRequest>,
    ) -> Result<Response<pb::CreateVolumeResponse>, Status> {
        self.observer
            .call("CreateVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.create(r).await.map_err(Status::from)
            })
            .await
    }

    async fn delete_volume(
        &self,
        request: Request<pb::DeleteVolumeRequest>,
    ) -> Result<Response<pb::DeleteVolumeResponse>, Status> {
        self.observer
            .call("DeleteVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.delete(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_publish_volume(
        &self,
        request: Request<pb::ControllerPublishVolumeRequest>,
    ) -> Result<Response<pb::ControllerPublishVolumeResponse>, Status> {
        self.observer
            .call("ControllerPublishVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.publish(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_unpublish_volume(
        &self,
        request: Request<pb::ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<pb::ControllerUnpublishVolumeResponse>, Status> {
        self.observer
            .call("ControllerUnpublishVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.unpublish(r).await.map_err(Status::from)
            })
            .await
    }

    async fn validate_volume_capabilities(
        &self,
        request: Request<pb::ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<pb::ValidateVolumeCapabilitiesResponse>, Status> {
        self.observer
            .call("ValidateVolumeCapabilities", request, |r| async move {
                refuse_nul(&r)?;
                self.validate(r).await.map_err(Status::from)
            })
            .await
    }

    async fn list_volumes(
        &self,
        request: Request<pb::ListVolumesRequest>,
    ) -> Result<Response<pb::ListVolumesResponse>, Status> {
        self.observer
            .call("ListVolumes", request, |r| async move {
                refuse_nul(&r)?;
                self.list(r).await.map_err(Status::from)
            })
            .await
    }

    async fn get_capacity(
        &self,
        request: Request<pb::GetCapacityRequest>,
    ) -> Result<Response<pb::GetCapacityResponse>, Status> {
        self.observer
            .call("GetCapacity", request, |r| async move {
                refuse_nul(&r)?;
                self.capacity_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_get_capabilities(
        &self,
        request: Request<pb::ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<pb::ControllerGetCapabilitiesResponse>, Status> {
        self.observer
            .call("ControllerGetCapabilities", request, |_| async {
                let capabilities = self
                    .capabilities()
                    .iter()
                    .map(|t| pb::ControllerServiceCapability {
                        r#type: Some(pb::controller_service_capability::Type::Rpc(
                            pb::controller_service_capability::Rpc { r#type: *t as i32 },
                        )),
                    })
                    .collect();
                Ok(pb::ControllerGetCapabilitiesResponse { capabilities })
            })
            .await
    }

    async fn create_snapshot(
        &self,
        request: Request<pb::CreateSnapshotRequest>,
    ) -> Result<Response<pb::CreateSnapshotResponse>, Status> {
        self.observer
            .call("CreateSnapshot", request, |r| async move {
                refuse_nul(&r)?;
                self.create_snapshot_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn delete_snapshot(
        &self,
        request: Request<pb::DeleteSnapshotRequest>,
    ) -> Result<Response<pb::DeleteSnapshotResponse>, Status> {
        self.observer
            .call("DeleteSnapshot", request, |r| async move {
                refuse_nul(&r)?;
                self.delete_snapshot_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn list_snapshots(
        &self,
        request: Request<pb::ListSnapshotsRequest>,
    ) -> Result<Response<pb::ListSnapshotsResponse>, Status> {
        self.observer
            .call("ListSnapshots", request, |r| async move {
                refuse_nul(&r)?;
                self.list_snapshots_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn get_snapshot(
        &self,
        request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::GetSnapshotResponse>, Status> {
        self.observer
            .call("GetSnapshot", request, |r| async move {
                refuse_nul(&r)?;
                self.get_snapshot_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_expand_volume(
        &self,
        request: Request<pb::ControllerExpandVolumeRequest>,
    ) -> Result<Response<pb::ControllerExpandVolumeResponse>, Status> {
        self.observer
            .call("ControllerExpandVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.expand_rpc(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_get_volume(
        &self,
        request: Request<pb::ControllerGetVolumeRequest>,
    ) -> Result<Response<pb::ControllerGetVolumeResponse>, Status> {
        self.observer
            .call("ControllerGetVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.get(r).await.map_err(Status::from)
            })
            .await
    }

    async fn controller_modify_volume(
        &self,
        request: Request<pb::ControllerModifyVolumeRequest>,
    ) -> Result<Response<pb::ControllerModifyVolumeResponse>, Status> {
        self.observer
            .call("ControllerModifyVolume", request, |r| async move {
                refuse_nul(&r)?;
                self.modify_rpc(r).await.map_err(Status::from)
            })
            .await
    }
}
