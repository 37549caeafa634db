//! The GroupController service: volume group snapshots as Cinder generic groups and group
//! snapshots, so several volumes are captured at one instant.

use tonic::{Request, Response, Status};

use super::ControllerService;
use crate::cloud::CloudError;
use crate::cloud::types::{GroupSnapshot, SnapshotStatus};
use crate::contract::GIB;
use crate::csi::locks::LockKey;
use crate::csi::pb::{self, group_controller_server::GroupController};
use crate::csi::status::CsiError;

impl ControllerService {
    fn csi_group_snapshot(&self, cloud: &str, group: &GroupSnapshot) -> pb::VolumeGroupSnapshot {
        let group_snapshot_id = self.clouds.handle(cloud, &group.id);
        pb::VolumeGroupSnapshot {
            group_snapshot_id: group_snapshot_id.clone(),
            snapshots: group
                .snapshots
                .iter()
                .map(|s| pb::Snapshot {
                    size_bytes: s.size_gib as i64 * GIB,
                    snapshot_id: self.clouds.handle(cloud, &s.id),
                    source_volume_id: self.clouds.handle(cloud, &s.volume_id),
                    creation_time: s.created_at.map(prost_types::Timestamp::from),
                    ready_to_use: s.status == SnapshotStatus::Available,
                    group_snapshot_id: group_snapshot_id.clone(),
                })
                .collect(),
            creation_time: group.created_at.map(prost_types::Timestamp::from),
            ready_to_use: group.status == SnapshotStatus::Available
                && group.snapshots.iter().all(|s| s.status == SnapshotStatus::Available),
        }
    }

    async fn create_group(
        &self,
        request: pb::CreateVolumeGroupSnapshotRequest,
    ) -> Result<pb::CreateVolumeGroupSnapshotResponse, CsiError> {
        if request.name.is_empty() {
            return Err(CsiError::InvalidArgument("name is required".into()));
        }
        if request.source_volume_ids.is_empty() {
            return Err(CsiError::InvalidArgument("source_volume_ids must not be empty".into()));
        }
        if let Some(key) = request.parameters.keys().find(|k| !k.starts_with("csi.storage.k8s.io/")) {
            return Err(CsiError::InvalidArgument(format!(
                "unknown group snapshot parameter {key:?}; this driver takes none"
            )));
        }
        let handles = request
            .source_volume_ids
            .iter()
            .map(|id| super::clouds::volume_handle("source_volume_ids", id))
            .collect::<Result<Vec<_>, _>>()?;
        let _guard = self
            .lock(LockKey::GroupSnapshotName(request.name.clone()), "CreateVolumeGroupSnapshot", &request)
            .await?;
        let mut cloud = None;
        let mut ids = Vec::new();
        for (handle, text) in handles.iter().zip(&request.source_volume_ids) {
            let ((name, backend), volume) = self
                .clouds
                .locate_volume(handle)
                .await?
                .ok_or_else(|| CsiError::NotFound(format!("source volume {text} not found")))?;
            self.check_owner("volume", text, &volume.metadata)?;
            if cloud.as_ref().is_some_and(|(c, _)| *c != name) {
                return Err(CsiError::InvalidArgument(
                    "a group snapshot's volumes must be in one cloud".into(),
                ));
            }
            cloud = Some((name, backend));
            ids.push(handle.id.clone());
        }
        let Some((cloud, backend)) = cloud else {
            return Err(CsiError::InvalidArgument("source_volume_ids must not be empty".into()));
        };
        let group = backend.create_group_snapshot(&request.name, &ids, self.settings.create_timeout).await?;
        let mut members: Vec<&str> = group.snapshots.iter().map(|s| s.volume_id.as_str()).collect();
        members.sort_unstable();
        let mut wanted: Vec<&str> = ids.iter().map(|id| id.as_str()).collect();
        wanted.sort_unstable();
        if members != wanted {
            return Err(CsiError::AlreadyExists(format!(
                "group snapshot {} already exists for other volumes ({})",
                request.name,
                members.join(", ")
            )));
        }
        Ok(pb::CreateVolumeGroupSnapshotResponse {
            group_snapshot: Some(self.csi_group_snapshot(cloud, &group)),
        })
    }

    async fn delete_group(
        &self,
        request: pb::DeleteVolumeGroupSnapshotRequest,
    ) -> Result<pb::DeleteVolumeGroupSnapshotResponse, CsiError> {
        let handle = match super::clouds::volume_handle("group_snapshot_id", &request.group_snapshot_id) {
            Ok(h) => h,
            // An id that cannot be ours names nothing: deleting nothing succeeds.
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteVolumeGroupSnapshotResponse {}),
            Err(e) => return Err(e),
        };
        let (_, backend) = match self.clouds.home(&handle) {
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteVolumeGroupSnapshotResponse {}),
            other => other?,
        };
        let _guard = self
            .lock(LockKey::GroupSnapshot(handle.id.clone()), "DeleteVolumeGroupSnapshot", &request)
            .await?;
        let deleted = backend.delete_group_snapshot(&handle.id, self.settings.create_timeout).await;
        match self.delete_group_once_settled(backend, &handle.id, deleted).await? {
            Ok(()) | Err(CloudError::NotFound { .. } | CloudError::Unsupported(_)) => {
                Ok(pb::DeleteVolumeGroupSnapshotResponse {})
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn get_group(
        &self,
        request: pb::GetVolumeGroupSnapshotRequest,
    ) -> Result<pb::GetVolumeGroupSnapshotResponse, CsiError> {
        let handle = super::clouds::volume_handle("group_snapshot_id", &request.group_snapshot_id)?;
        let (cloud, backend) = self.clouds.home(&handle)?;
        let not_found =
            || CsiError::NotFound(format!("group snapshot {} not found", request.group_snapshot_id));
        // A cloud without group snapshots has none: the id names nothing.
        let group = match backend.get_group_snapshot(&handle.id).await {
            Err(CloudError::Unsupported(_)) => return Err(not_found()),
            other => other?.ok_or_else(not_found)?,
        };
        Ok(pb::GetVolumeGroupSnapshotResponse {
            group_snapshot: Some(self.csi_group_snapshot(cloud, &group)),
        })
    }
}

/// The GroupController service, on the controller's state.
#[tonic::async_trait]
impl GroupController for ControllerService {
    async fn group_controller_get_capabilities(
        &self,
        request: Request<pb::GroupControllerGetCapabilitiesRequest>,
    ) -> Result<Response<pb::GroupControllerGetCapabilitiesResponse>, Status> {
        use pb::group_controller_service_capability::{Rpc, Type, rpc};
        self.observer
            .call("GroupControllerGetCapabilities", request, |_| async {
                let capabilities = if self.group_snapshots_supported() {
                    vec![pb::GroupControllerServiceCapability {
                        r#type: Some(Type::Rpc(Rpc {
                            r#type: rpc::Type::CreateDeleteGetVolumeGroupSnapshot as i32,
                        })),
                    }]
                } else {
                    Vec::new()
                };
                Ok(pb::GroupControllerGetCapabilitiesResponse { capabilities })
            })
            .await
    }

    async fn create_volume_group_snapshot(
        &self,
        request: Request<pb::CreateVolumeGroupSnapshotRequest>,
    ) -> Result<Response<pb::CreateVolumeGroupSnapshotResponse>, Status> {
        self.observer
            .call("CreateVolumeGroupSnapshot", request, |r| async move {
                super::refuse_nul(&r)?;
                self.create_group(r).await.map_err(Status::from)
            })
            .await
    }

    async fn delete_volume_group_snapshot(
        &self,
        request: Request<pb::DeleteVolumeGroupSnapshotRequest>,
    ) -> Result<Response<pb::DeleteVolumeGroupSnapshotResponse>, Status> {
        self.observer
            .call("DeleteVolumeGroupSnapshot", request, |r| async move {
                super::refuse_nul(&r)?;
                self.delete_group(r).await.map_err(Status::from)
            })
            .await
    }

    async fn get_volume_group_snapshot(
        &self,
        request: Request<pb::GetVolumeGroupSnapshotRequest>,
    ) -> Result<Response<pb::GetVolumeGroupSnapshotResponse>, Status> {
        self.observer
            .call("GetVolumeGroupSnapshot", request, |r| async move {
                super::refuse_nul(&r)?;
                self.get_group(r).await.map_err(Status::from)
            })
            .await
    }
}
