//! CreateVolume and DeleteVolume.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::{ControllerService, capability, topology};
use crate::cloud::types::{Encryption, Volume, VolumeSource, VolumeSpec, VolumeStatus};
use crate::cloud::{Backend, CloudError};
use crate::contract::GIB;
use crate::contract::ownership::{
    META_CLUSTER_ID, META_PV_NAME, META_PVC_NAME, META_PVC_NAMESPACE, META_VOLUME_NAME, owned_by,
};
use crate::contract::{CloudId, SnapshotRef};
use crate::csi::context;
use crate::csi::locks::LockKey;
use crate::csi::params::{self, VolumeParameters};
use crate::csi::pb::{self, volume_content_source};
use crate::csi::status::CsiError;

/// The longest volume name clouds accept.
const MAX_NAME: usize = 255;

impl ControllerService {
    pub(super) async fn create(
        &self,
        request: pb::CreateVolumeRequest,
    ) -> Result<pb::CreateVolumeResponse, CsiError> {
        let name = request.name.as_str();
        if name.is_empty() {
            return Err(CsiError::InvalidArgument("name is required".into()));
        }
        if name.len() > MAX_NAME {
            return Err(CsiError::InvalidArgument(format!("name is longer than {MAX_NAME} bytes")));
        }
        let mutable = super::mutable::parse(&request.mutable_parameters)?;
        let parameters = mutable.apply_to(params::parse(&request.parameters)?);
        let multiattach = parameters.multiattach;
        capability::check_all(&request.volume_capabilities, multiattach)?;
        let mut size_gib = params::size_gib(request.capacity_range.as_ref(), self.settings.default_size_gib)?;
        let (cloud_name, backend) = self.clouds.backend(parameters.cloud.as_deref())?;
        let keys = self.settings.topology_keys();
        let zone = topology::choose_zone(
            request.accessibility_requirements.as_ref(),
            parameters.availability.as_deref(),
            &keys,
        )?;
        let source = self.content_source(request.volume_content_source.as_ref(), cloud_name)?;
        self.check_source_supported(backend.as_ref(), cloud_name, source.as_ref())?;

        let _guard = self.lock(LockKey::VolumeName(name.to_string()), "CreateVolume", &request).await?;

        if let Some(existing) = self.existing_volume(backend.as_ref(), name).await? {
            self.check_compatible(&existing, &request, &source)?;
            let ready = backend
                .wait_volume_ready(&super::issued("volume", &existing.id)?, self.settings.create_timeout)
                .await?;
            return Ok(self.response(cloud_name, &ready, &request, &parameters, zone.as_deref(), false));
        }

        let mut grow = false;
        // Restoring a backup copies the data back: allow time in proportion to its size.
        let mut restore_time = Duration::ZERO;
        match &source {
            Some(VolumeSource::Snapshot(id)) => {
                let snapshot = backend
                    .get_snapshot(id)
                    .await?
                    .ok_or_else(|| CsiError::NotFound(format!("source snapshot {id} not found")))?;
                size_gib = self.fit_source(size_gib, snapshot.size_gib, &request, "snapshot", id)?;
                grow = size_gib > snapshot.size_gib;
            }
            Some(VolumeSource::Volume(id)) => {
                let volume = backend
                    .get_volume(id)
                    .await?
                    .ok_or_else(|| CsiError::NotFound(format!("source volume {id} not found")))?;
                if let Some(zone) = &zone
                    && !self.settings.ignore_volume_az
                    && !volume.zone.is_empty()
                    && volume.zone != *zone
                {
                    return Err(CsiError::InvalidArgument(format!(
                        "source volume {id} is in zone {}, the clone would be in {zone}; clones stay in their source's zone",
                        volume.zone
                    )));
                }
                size_gib = self.fit_source(size_gib, volume.size_gib, &request, "volume", id)?;
                grow = size_gib > volume.size_gib;
            }
            Some(VolumeSource::Backup(id)) => {
                let backup = backend
                    .get_backup(id)
                    .await?
                    .ok_or_else(|| CsiError::NotFound(format!("source backup {id} not found")))?;
                size_gib = self.fit_source(size_gib, backup.size_gib, &request, "backup", id)?;
                grow = size_gib > backup.size_gib;
                restore_time = Duration::from_secs(6) * u32::try_from(size_gib).unwrap_or(u32::MAX);
            }
            None => {}
        }

        let spec = VolumeSpec {
            name: name.to_string(),
            size_gib,
            volume_type: parameters.volume_type.clone(),
            zone: if self.settings.ignore_volume_az { None } else { zone.clone() },
            source,
            metadata: self.metadata(name, &parameters),
            description: Some("Created by cinder-evs-csi".into()),
            multiattach,
            iops: parameters.iops,
            throughput: parameters.throughput,
            encryption: parameters
                .encrypted
                .then(|| Encryption { kms_key_id: parameters.kms_key_id.clone() }),
            scsi: parameters.scsi,
        };
        let created = backend.create_volume(&spec).await?;
        let created_id = super::issued("volume", &created.id)?;
        match backend.wait_volume_ready(&created_id, self.settings.create_timeout + restore_time).await {
            Ok(volume) => {
                if multiattach && !volume.multiattach {
                    self.discard(backend.as_ref(), &volume.id).await;
                    return Err(CsiError::InvalidArgument(format!(
                        "the cloud created a volume that is not multi-attach capable; use a volume type with multiattach (type {:?})",
                        parameters.volume_type.as_deref().unwrap_or("default")
                    )));
                }
                Ok(self.response(cloud_name, &volume, &request, &parameters, zone.as_deref(), grow))
            }
            Err(CloudError::ErrorState { status, reason, .. }) => {
                // Never leave a broken volume behind for the CO to trip over.
                self.discard(backend.as_ref(), &created.id).await;
                Err(CsiError::ResourceExhausted(format!(
                    "the cloud could not create volume {name}: status {status}{}",
                    reason.map(|r| format!(" ({r})")).unwrap_or_default()
                )))
            }
            // Still being created: the CO's retry finds it by name and waits again.
            Err(e) => Err(e.into()),
        }
    }

    fn content_source(
        &self,
        source: Option<&pb::VolumeContentSource>,
        cloud_name: &str,
    ) -> Result<Option<VolumeSource>, CsiError> {
        let Some(source) = source else { return Ok(None) };
        let (source, cloud) = match &source.r#type {
            Some(volume_content_source::Type::Snapshot(s)) => {
                let handle =
                    super::clouds::snapshot_handle("volume_content_source snapshot_id", &s.snapshot_id)?;
                let source = match handle.id.clone() {
                    SnapshotRef::Snapshot(id) => VolumeSource::Snapshot(id),
                    SnapshotRef::Backup(id) => VolumeSource::Backup(id),
                };
                (source, self.clouds.home(&handle)?.0)
            }
            Some(volume_content_source::Type::Volume(v)) => {
                let handle = super::clouds::volume_handle("volume_content_source volume_id", &v.volume_id)?;
                (VolumeSource::Volume(handle.id.clone()), self.clouds.home(&handle)?.0)
            }
            None => return Err(CsiError::InvalidArgument("volume_content_source names no source".into())),
        };
        if cloud != cloud_name {
            return Err(CsiError::InvalidArgument(format!(
                "the source is in cloud {cloud}, the new volume in {cloud_name}"
            )));
        }
        Ok(Some(source))
    }

    /// A size for a volume made from a source of `source_gib`: at least the source.
    fn fit_source(
        &self,
        requested: u64,
        source_gib: u64,
        request: &pb::CreateVolumeRequest,
        kind: &str,
        id: &CloudId,
    ) -> Result<u64, CsiError> {
        if requested >= source_gib {
            return Ok(requested);
        }
        let range = request.capacity_range.as_ref();
        let limit = range.map_or(0, |r| r.limit_bytes);
        if range.is_none_or(|r| r.required_bytes == 0) && (limit == 0 || source_gib as i64 * GIB <= limit) {
            return Ok(source_gib);
        }
        Err(CsiError::OutOfRange(format!(
            "the volume must be at least as big as its source {kind} {id} ({source_gib} GiB), {requested} GiB requested"
        )))
    }

    async fn existing_volume(&self, backend: &dyn Backend, name: &str) -> Result<Option<Volume>, CsiError> {
        let mut found = backend.find_volumes_by_name(name).await?;
        found.retain(|v| owned_by(&v.metadata, &self.settings.cluster_id));
        // A volume an earlier attempt left in error is ours to clean up, then we start over.
        for broken in found.iter().filter(|v| matches!(v.status, VolumeStatus::Error(_))) {
            tracing::warn!(volume = %broken.id, status = broken.status.as_str(), "deleting a volume a failed earlier attempt left behind");
            self.discard(backend, &broken.id).await;
        }
        found.retain(|v| !matches!(v.status, VolumeStatus::Error(_) | VolumeStatus::Deleting));
        if found.len() > 1 {
            tracing::warn!(name, count = found.len(), "several volumes carry this name; using the oldest");
        }
        Ok(found.into_iter().next())
    }

    fn check_compatible(
        &self,
        existing: &Volume,
        request: &pb::CreateVolumeRequest,
        source: &Option<VolumeSource>,
    ) -> Result<(), CsiError> {
        let bytes = existing.size_gib as i64 * GIB;
        let conflict = |why: String| {
            CsiError::AlreadyExists(format!("volume {} already exists with {why}", request.name))
        };
        if let Some(range) = &request.capacity_range {
            if range.required_bytes > bytes {
                return Err(conflict(format!("{} GiB, smaller than required", existing.size_gib)));
            }
            if range.limit_bytes > 0 && bytes > range.limit_bytes {
                return Err(conflict(format!("{} GiB, larger than the limit", existing.size_gib)));
            }
        }
        // A source id the cloud reports that is not a UUID matches no request's source.
        let issued = |id: &Option<String>| id.as_deref().and_then(|i| CloudId::parse("source id", i).ok());
        let existing_source = issued(&existing.source_snapshot_id)
            .map(VolumeSource::Snapshot)
            .or_else(|| issued(&existing.source_volume_id).map(VolumeSource::Volume));
        // Cinder does not report a volume's backup source, so only snapshots and clones compare.
        let comparable = matches!(source, Some(VolumeSource::Snapshot(_) | VolumeSource::Volume(_)));
        if comparable && *source != existing_source {
            return Err(conflict("a different content source".into()));
        }
        if let Ok(p) = params::parse(&request.parameters)
            && let Ok(mutable) = super::mutable::parse(&request.mutable_parameters)
            && let Some(t) = mutable.apply_to(p).volume_type
            && existing.volume_type.as_deref().is_some_and(|e| *e != t)
        {
            return Err(conflict(format!("volume type {:?}", existing.volume_type)));
        }
        Ok(())
    }

    fn metadata(&self, name: &str, parameters: &VolumeParameters) -> BTreeMap<String, String> {
        let mut metadata = BTreeMap::from([
            (META_VOLUME_NAME.to_string(), name.to_string()),
            (META_CLUSTER_ID.to_string(), self.settings.cluster_id.clone()),
        ]);
        for (from, to) in [
            (params::PVC_NAME, META_PVC_NAME),
            (params::PVC_NAMESPACE, META_PVC_NAMESPACE),
            (params::PV_NAME, META_PV_NAME),
        ] {
            if let Some(v) = parameters.provisioner.get(from) {
                metadata.insert(to.to_string(), v.clone());
            }
        }
        metadata
    }

    fn response(
        &self,
        cloud_name: &str,
        volume: &Volume,
        request: &pb::CreateVolumeRequest,
        parameters: &VolumeParameters,
        requested_zone: Option<&str>,
        grow: bool,
    ) -> pb::CreateVolumeResponse {
        let mut volume_context = HashMap::from([(context::CLOUD_VOLUME_ID.to_string(), volume.id.clone())]);
        if let Some(fs) = &parameters.fs_type {
            volume_context.insert(context::FS_TYPE.to_string(), fs.clone());
        }
        if grow {
            volume_context.insert(context::GROW_FS.to_string(), "true".into());
        }
        let zone = if self.settings.ignore_volume_az { requested_zone } else { Some(volume.zone.as_str()) };
        let accessible_topology = zone
            .filter(|z| !z.is_empty())
            .map(|z| vec![topology::segments(z, &self.settings.topology_keys())])
            .unwrap_or_default();
        pb::CreateVolumeResponse {
            volume: Some(pb::Volume {
                capacity_bytes: volume.size_gib as i64 * GIB,
                volume_id: self.clouds.handle(cloud_name, &volume.id),
                volume_context,
                content_source: request.volume_content_source.clone(),
                accessible_topology,
            }),
        }
    }

    async fn discard(&self, backend: &dyn Backend, id: &str) {
        let Ok(id) = CloudId::parse("volume id", id) else {
            tracing::error!(volume = id, "the cloud issued a volume id that is not a UUID; not deleting it");
            return;
        };
        if let Err(e) = backend.delete_volume(&id).await {
            tracing::error!(volume = %id, error = %e, "could not delete a failed volume; it needs manual clean-up");
        }
    }

    pub(super) async fn delete(
        &self,
        request: pb::DeleteVolumeRequest,
    ) -> Result<pb::DeleteVolumeResponse, CsiError> {
        let handle = match super::clouds::volume_handle("volume_id", &request.volume_id) {
            Ok(h) => h,
            // An id that cannot be ours names nothing: deleting nothing succeeds.
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteVolumeResponse {}),
            Err(e) => return Err(e),
        };
        let _guard = self.lock(LockKey::Volume(handle.id.clone()), "DeleteVolume", &request).await?;
        let located = match self.clouds.locate_volume(&handle).await {
            Err(CsiError::NotFound(_)) => return Ok(pb::DeleteVolumeResponse {}),
            other => other?,
        };
        let Some(((_, backend), volume)) = located else {
            return Ok(pb::DeleteVolumeResponse {});
        };
        self.check_owner("volume", &request.volume_id, &volume.metadata)?;
        let Some(volume) = self.settle_volume(backend, volume).await? else {
            return Ok(pb::DeleteVolumeResponse {});
        };
        if !volume.attachments.is_empty() {
            let servers: Vec<&str> = volume.attachments.iter().map(|a| a.server_id.as_str()).collect();
            return Err(CsiError::FailedPrecondition(format!(
                "volume {} is attached to {}; detach it first",
                request.volume_id,
                servers.join(", ")
            )));
        }
        let snapshots = backend.list_snapshots(Some(&handle.id), None, None).await?;
        let snapshots = self.without_deleting_snapshots(backend, snapshots.items).await?;
        if !snapshots.is_empty() {
            let ids: Vec<&str> = snapshots.iter().map(|s| s.id.as_str()).collect();
            return Err(CsiError::FailedPrecondition(format!(
                "volume {} has snapshots {}; delete them first",
                request.volume_id,
                ids.join(", ")
            )));
        }
        if volume.status != VolumeStatus::Deleting {
            backend.delete_volume(&handle.id).await?;
        }
        if let Some(timeout) = self.settings.delete_timeout {
            backend.wait_volume_deleted(&handle.id, timeout).await?;
        }
        Ok(pb::DeleteVolumeResponse {})
    }
}
