//! CreateSnapshot, DeleteSnapshot, ListSnapshots and GetSnapshot.

use std::collections::BTreeMap;

use super::ControllerService;
use crate::cloud::CloudError;
use crate::cloud::types::{Backup, Snapshot, SnapshotSpec, SnapshotStatus};
use crate::contract::GIB;
use crate::contract::ownership::{META_CLUSTER_ID, META_VOLUME_NAME};
use crate::contract::{CloudId, Handle, SnapshotRef};
use crate::csi::locks::LockKey;
use crate::csi::pb;
use crate::csi::status::CsiError;

/// VolumeSnapshotClass parameters this driver understands.
const SNAPSHOT_PARAMETERS: &[&str] = &[FORCE, TYPE];
/// Allow snapshots of attached volumes (default true: Kubernetes snapshots bound PVCs).
const FORCE: &str = "force";
/// `snapshot` (default) or `backup` (a Cinder backup, stored apart from the volume's backend).
const TYPE: &str = "type";
/// The longest snapshot name, as for volumes: what the clouds accept.
const MAX_NAME: usize = 255;

fn valid_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 64 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

impl ControllerService {
    fn csi_snapshot(&self, cloud: &str, snapshot: &Snapshot) -> pb::Snapshot {
        pb::Snapshot {
            size_bytes: snapshot.size_gib as i64 * GIB,
            snapshot_id: self.clouds.handle(cloud, &snapshot.id),
            source_volume_id: self.clouds.handle(cloud, &snapshot.volume_id),
            creation_time: snapshot.created_at.map(prost_types::Timestamp::from),
            ready_to_use: snapshot.status == SnapshotStatus::Available,
            group_snapshot_id: String::new(),
        }
    }

    fn csi_backup(&self, cloud: &str, backup: &Backup) -> pb::Snapshot {
        // A backup id that is not a UUID cannot be named again by the CO; it is shown as the
        // cloud gave it, and any later call with it is refused as naming nothing.
        let id = match CloudId::parse("backup id", &backup.id) {
            Ok(id) => self.clouds.handle(cloud, &SnapshotRef::Backup(id)),
            Err(_) => {
                self.clouds.handle(cloud, &format!("{}{}", crate::contract::ids::BACKUP_PREFIX, backup.id))
            }
        };
        pb::Snapshot {
            size_bytes: backup.size_gib as i64 * GIB,
            snapshot_id: id,
            source_volume_id: self.clouds.handle(cloud, &backup.volume_id),
            creation_time: backup.created_at.map(prost_types::Timestamp::from),
            ready_to_use: backup.status == SnapshotStatus::Available,
            group_snapshot_id: String::new(),
        }
    }

    pub(super) async fn create_snapshot_rpc(
        &self,
        request: pb::CreateSnapshotRequest,
    ) -> Result<pb::CreateSnapshotResponse, CsiError> {
        if request.name.is_empty() {
            return Err(CsiError::InvalidArgument("name is required".into()));
        }
        if request.name.len() > MAX_NAME {
            return Err(CsiError::InvalidArgument(format!("name is longer than {MAX_NAME} bytes")));
        }
        if request.source_volume_id.is_empty() {
            return Err(CsiError::InvalidArgument("source_volume_id is required".into()));
        }
        let mut force = true;
        let mut backup = false;
        for (key, value) in &request.parameters {
            match key.as_str() {
                TYPE => {
                    backup = match value.as_str() {
                        "snapshot" => false,
                        "backup" => true,
                        _ => {
                            return Err(CsiError::InvalidArgument(format!(
                                "parameter type: expected snapshot or backup, got {value:?}"
                            )));
                        }
                    }
                }
                FORCE => {
                    force = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(CsiError::InvalidArgument(format!(
                                "parameter force: expected true or false, got {value:?}"
                            )));
                        }
                    }
                }
                k if k.starts_with("csi.storage.k8s.io/") => {}
                other => {
                    return Err(CsiError::InvalidArgument(format!(
                        "unknown snapshot parameter {other:?}; valid parameters are: {}",
                        SNAPSHOT_PARAMETERS.join(", ")
                    )));
                }
            }
        }
        let handle = super::clouds::volume_handle("source_volume_id", &request.source_volume_id)?;
        let _guard =
            self.lock(LockKey::SnapshotName(request.name.clone()), "CreateSnapshot", &request).await?;
        let Some(((cloud, backend), source)) = self.clouds.locate_volume(&handle).await? else {
            return Err(CsiError::NotFound(format!("source volume {} not found", request.source_volume_id)));
        };
        self.check_owner("volume", &request.source_volume_id, &source.metadata)?;
        if backup {
            let b = backend.create_backup(&request.name, &handle.id).await?;
            if b.volume_id != handle.id.as_str() {
                return Err(CsiError::AlreadyExists(format!(
                    "backup {} already exists for another volume",
                    request.name
                )));
            }
            if let SnapshotStatus::Error(status) = &b.status {
                let reason = b.fail_reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
                return Err(CsiError::Internal(format!("backup {} failed: {status}{reason}", b.id)));
            }
            return Ok(pb::CreateSnapshotResponse { snapshot: Some(self.csi_backup(cloud, &b)) });
        }

        let existing = backend.find_snapshots_by_name(&request.name).await?;
        // A snapshot being deleted is gone for the CO: a new CreateSnapshot takes a new one.
        if let Some(snapshot) =
            existing.iter().find(|s| !matches!(s.status, SnapshotStatus::Error(_) | SnapshotStatus::Deleting))
        {
            if snapshot.volume_id != handle.id.as_str() {
                return Err(CsiError::AlreadyExists(format!(
                    "snapshot {} already exists for another volume ({})",
                    request.name, snapshot.volume_id
                )));
            }
            return Ok(pb::CreateSnapshotResponse { snapshot: Some(self.csi_snapshot(cloud, snapshot)) });
        }
        let mut failures = Vec::new();
        for broken in existing.iter().filter(|s| matches!(s.status, SnapshotStatus::Error(_))) {
            if !self.ours_or_imported(&broken.metadata) {
                continue;
            }
            let reason = backend.failure_reason("snapshot", &broken.id).await;
            tracing::warn!(snapshot = %broken.id, reason = reason.as_deref().unwrap_or("none given"), "deleting a snapshot a failed earlier attempt left behind");
            if let Ok(id) = super::issued("snapshot", &broken.id) {
                let _ = backend.delete_snapshot(&id).await;
            }
            failures.push(match reason {
                Some(reason) => format!("{}: {reason}", broken.id),
                None => broken.id.clone(),
            });
        }
        // Say why once, so the CO's event explains itself; its retry takes a new snapshot.
        if !failures.is_empty() {
            return Err(CsiError::Internal(format!(
                "snapshot {} failed in the cloud ({}); it was deleted and the next attempt takes a new one",
                request.name,
                failures.join("; ")
            )));
        }
        let spec = SnapshotSpec {
            name: request.name.clone(),
            volume_id: handle.id.clone(),
            force,
            metadata: BTreeMap::from([
                (META_VOLUME_NAME.to_string(), request.name.clone()),
                (META_CLUSTER_ID.to_string(), self.settings.cluster_id.clone()),
            ]),
        };
        let snapshot = match backend.create_snapshot(&spec).await {
            Err(CloudError::NotFound { .. }) => {
                return Err(CsiError::NotFound(format!(
                    "source volume {} not found",
                    request.source_volume_id
                )));
            }
            other => other?,
        };
        // Kubernetes polls until ready_to_use; answering at once keeps the provisioner free.
        Ok(pb::CreateSnapshotResponse { snapshot: Some(self.csi_snapshot(cloud, &snapshot)) })
    }

    pub(super) async fn delete_snapshot_rpc(
        &self,
        request: pb::DeleteSnapshotRequest,
    ) -> Result<pb::DeleteSnapshotResponse, CsiError> {
        let handle = match super::clouds::snapshot_handle("snapshot_id", &request.snapshot_id) {
            Ok(h) => h,
            // An id that cannot be ours names nothing: deleting nothing succeeds.
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteSnapshotResponse {}),
            Err(e) => return Err(e),
        };
        let _guard = self.lock(LockKey::Snapshot(handle.id.clone()), "DeleteSnapshot", &request).await?;
        let candidates = match self.clouds.candidates(&handle) {
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteSnapshotResponse {}),
            other => other?,
        };
        for (_, backend) in candidates {
            let status = match &handle.id {
                SnapshotRef::Backup(id) => match backend.get_backup(id).await? {
                    Some(b) => b.status,
                    None => continue,
                },
                SnapshotRef::Snapshot(id) => match backend.get_snapshot(id).await? {
                    Some(s) => {
                        self.check_owner("snapshot", &request.snapshot_id, &s.metadata)?;
                        s.status
                    }
                    None => continue,
                },
            };
            let deleted = match &handle.id {
                SnapshotRef::Backup(id) => backend.delete_backup(id).await,
                SnapshotRef::Snapshot(id) => backend.delete_snapshot(id).await,
            };
            let deleted = self.delete_once_settled(backend, &handle.id, deleted).await?;
            return match deleted {
                Ok(()) => Ok(pb::DeleteSnapshotResponse {}),
                // The cloud refuses to delete a snapshot that is already being deleted; for the
                // CO that is a repeated DeleteSnapshot, which the spec makes idempotent.
                Err(CloudError::Conflict(_)) if status == SnapshotStatus::Deleting => {
                    Ok(pb::DeleteSnapshotResponse {})
                }
                Err(CloudError::Conflict(why)) => {
                    let now = match &handle.id {
                        SnapshotRef::Backup(id) => backend.get_backup(id).await?.map(|b| b.status),
                        SnapshotRef::Snapshot(id) => backend.get_snapshot(id).await?.map(|s| s.status),
                    };
                    if matches!(now, None | Some(SnapshotStatus::Deleting)) {
                        return Ok(pb::DeleteSnapshotResponse {});
                    }
                    Err(CsiError::FailedPrecondition(format!(
                        "snapshot {} cannot be deleted now (volumes may depend on it): {why}",
                        request.snapshot_id
                    )))
                }
                Err(CloudError::NotFound { .. }) => Ok(pb::DeleteSnapshotResponse {}),
                Err(e) => Err(e.into()),
            };
        }
        Ok(pb::DeleteSnapshotResponse {})
    }

    pub(super) async fn list_snapshots_rpc(
        &self,
        request: pb::ListSnapshotsRequest,
    ) -> Result<pb::ListSnapshotsResponse, CsiError> {
        if request.max_entries < 0 {
            return Err(CsiError::InvalidArgument("max_entries must not be negative".into()));
        }
        // The request's Debug (which `refuse_nul` reads) redacts tokens, so they are checked here.
        if request.starting_token.contains('\0') {
            return Err(CsiError::InvalidArgument("starting_token contains a NUL byte".into()));
        }
        let marker = match request.starting_token.as_str() {
            "" => None,
            t if valid_token(t) => Some(t),
            _ => {
                return Err(CsiError::Aborted(format!(
                    "starting_token {:?} is not valid",
                    request.starting_token
                )));
            }
        };
        // A filter that cannot name anything of ours matches nothing: an empty list, not an error.
        let volume_filter = match request.source_volume_id.as_str() {
            "" => None,
            text => match Handle::<CloudId>::parse("source_volume_id", text) {
                Ok(h) => Some(h),
                Err(_) => return Ok(pb::ListSnapshotsResponse::default()),
            },
        };
        if !request.snapshot_id.is_empty() {
            let Ok(handle) = Handle::<SnapshotRef>::parse("snapshot_id", &request.snapshot_id) else {
                return Ok(pb::ListSnapshotsResponse::default());
            };
            let Ok(candidates) = self.clouds.candidates(&handle) else {
                return Ok(pb::ListSnapshotsResponse::default());
            };
            for (cloud, backend) in candidates {
                let found = match &handle.id {
                    SnapshotRef::Snapshot(id) => backend
                        .get_snapshot(id)
                        .await?
                        .filter(|s| {
                            s.status != SnapshotStatus::Deleting && self.ours_or_imported(&s.metadata)
                        })
                        .map(|s| (s.volume_id.clone(), self.csi_snapshot(cloud, &s))),
                    SnapshotRef::Backup(id) => backend
                        .get_backup(id)
                        .await?
                        .filter(|b| b.status != SnapshotStatus::Deleting)
                        .map(|b| (b.volume_id.clone(), self.csi_backup(cloud, &b))),
                };
                let Some((volume_id, snapshot)) = found else { continue };
                let entries = volume_filter
                    .as_ref()
                    .is_none_or(|v| v.id.as_str() == volume_id)
                    .then_some(pb::list_snapshots_response::Entry { snapshot: Some(snapshot) })
                    .into_iter()
                    .collect();
                return Ok(pb::ListSnapshotsResponse { entries, next_token: String::new() });
            }
            return Ok(pb::ListSnapshotsResponse::default());
        }
        let (cloud, backend, volume) = match &volume_filter {
            None => {
                let (cloud, backend) = self.clouds.backend(None)?;
                (cloud, backend, None)
            }
            Some(handle) => {
                let Ok(Some(((cloud, backend), _))) = self.clouds.locate_volume(handle).await else {
                    return Ok(pb::ListSnapshotsResponse::default());
                };
                (cloud, backend, Some(&handle.id))
            }
        };
        let limit = (request.max_entries > 0).then_some(request.max_entries as u32);
        let page = match backend.list_snapshots(volume, limit, marker).await {
            Ok(p) => p,
            Err(CloudError::InvalidInput(why) | CloudError::NotFound { kind: _, id: why })
                if marker.is_some() =>
            {
                return Err(CsiError::Aborted(format!("starting_token is no longer valid: {why}")));
            }
            Err(e) => return Err(e.into()),
        };
        let entries = page
            .items
            .iter()
            .filter(|s| s.status != SnapshotStatus::Deleting && self.ours_or_imported(&s.metadata))
            .map(|s| pb::list_snapshots_response::Entry { snapshot: Some(self.csi_snapshot(cloud, s)) })
            .collect();
        Ok(pb::ListSnapshotsResponse { entries, next_token: page.next.unwrap_or_default() })
    }

    pub(super) async fn get_snapshot_rpc(
        &self,
        request: pb::GetSnapshotRequest,
    ) -> Result<pb::GetSnapshotResponse, CsiError> {
        let handle = super::clouds::snapshot_handle("snapshot_id", &request.snapshot_id)?;
        for (cloud, backend) in self.clouds.candidates(&handle)? {
            let snapshot = match &handle.id {
                SnapshotRef::Backup(id) => backend
                    .get_backup(id)
                    .await?
                    .filter(|b| b.status != SnapshotStatus::Deleting)
                    .map(|b| self.csi_backup(cloud, &b)),
                SnapshotRef::Snapshot(id) => backend
                    .get_snapshot(id)
                    .await?
                    .filter(|s| s.status != SnapshotStatus::Deleting)
                    .map(|s| self.csi_snapshot(cloud, &s)),
            };
            if let Some(snapshot) = snapshot {
                return Ok(pb::GetSnapshotResponse { snapshot: Some(snapshot) });
            }
        }
        Err(CsiError::NotFound(format!("snapshot {} not found", request.snapshot_id)))
    }
}
