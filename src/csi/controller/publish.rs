//! ControllerPublishVolume and ControllerUnpublishVolume: attach through the cloud's compute
//! API, idempotently, with per-node limits.

use std::collections::HashMap;

use super::{ControllerService, capability};
use crate::cloud::CloudError;
use crate::cloud::types::VolumeStatus;
use crate::csi::context;
use crate::csi::pb;
use crate::csi::status::CsiError;

impl ControllerService {
    pub(super) async fn publish(
        &self,
        request: pb::ControllerPublishVolumeRequest,
    ) -> Result<pb::ControllerPublishVolumeResponse, CsiError> {
        if request.volume_id.is_empty() {
            return Err(CsiError::InvalidArgument("volume_id is required".into()));
        }
        if request.node_id.is_empty() {
            return Err(CsiError::InvalidArgument("node_id is required".into()));
        }
        let capability = request
            .volume_capability
            .as_ref()
            .ok_or_else(|| CsiError::InvalidArgument("volume_capability is required".into()))?;
        let handle = self.clouds.parse(&request.volume_id)?;
        let (_, backend) = self.clouds.backend(Some(&handle.cloud))?;
        let _guard =
            self.lock(format!("volume/{}", request.volume_id), "ControllerPublishVolume", &request).await?;

        let volume = backend
            .get_volume(&handle.id)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {} not found", request.volume_id)))?;
        let volume = self
            .settle_volume(backend, volume)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {} not found", request.volume_id)))?;
        capability::check(capability, volume.multiattach)?;
        let elsewhere: Vec<&str> = volume
            .attachments
            .iter()
            .filter(|a| a.server_id != request.node_id)
            .map(|a| a.server_id.as_str())
            .collect();
        if !elsewhere.is_empty() && !volume.multiattach {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {} is attached to {} and is not multi-attach capable",
                request.volume_id,
                elsewhere.join(", ")
            )));
        }
        let record = super::published::describe(capability, request.readonly);
        self.check_publish_matches(&volume, &request.node_id, &record)?;
        let here = volume.attachments.iter().any(|a| a.server_id == request.node_id);
        if !here && self.settings.max_volumes_per_node > 0 {
            let count = match backend.attached_count(&request.node_id).await {
                Err(CloudError::NotFound { .. }) => {
                    return Err(CsiError::NotFound(format!("node {} not found", request.node_id)));
                }
                other => other?,
            };
            if count >= self.settings.max_volumes_per_node as usize {
                return Err(CsiError::ResourceExhausted(format!(
                    "node {} already has {count} volumes attached, the limit is {}",
                    request.node_id, self.settings.max_volumes_per_node
                )));
            }
        }
        let attached = match backend.attach(&handle.id, &request.node_id, self.settings.attach_timeout).await
        {
            Ok(a) => a,
            Err(CloudError::NotFound { .. }) => {
                // The volume was seen a moment ago, so the server is what is missing.
                return Err(CsiError::NotFound(format!(
                    "node {} or volume {} not found",
                    request.node_id, request.volume_id
                )));
            }
            Err(CloudError::Timeout(why)) => {
                // A volume stuck attaching is released so that the CO's retry starts clean.
                tracing::warn!(volume = %handle.id, node = %request.node_id, "attach timed out; detaching before retry");
                if let Err(e) =
                    backend.detach(&handle.id, &request.node_id, self.settings.attach_timeout).await
                {
                    tracing::error!(volume = %handle.id, error = %e, "could not release the stuck attachment");
                }
                return Err(CsiError::DeadlineExceeded(format!(
                    "attach of {} timed out: {why}",
                    request.volume_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        self.record_publish(backend, &volume, &request.node_id, &record).await?;
        let mut publish_context = HashMap::from([(context::VOLUME_ID.to_string(), handle.id.clone())]);
        if let Some(device) = attached.device_hint {
            publish_context.insert(context::DEVICE_PATH.to_string(), device);
        }
        if request.readonly {
            publish_context.insert(context::READONLY.to_string(), "true".into());
        }
        Ok(pb::ControllerPublishVolumeResponse { publish_context })
    }

    pub(super) async fn unpublish(
        &self,
        request: pb::ControllerUnpublishVolumeRequest,
    ) -> Result<pb::ControllerUnpublishVolumeResponse, CsiError> {
        if request.volume_id.is_empty() {
            return Err(CsiError::InvalidArgument("volume_id is required".into()));
        }
        let handle = match self.clouds.parse(&request.volume_id) {
            Ok(h) => h,
            Err(CsiError::NotFound(_)) => return Ok(pb::ControllerUnpublishVolumeResponse {}),
            Err(e) => return Err(e),
        };
        let (_, backend) = self.clouds.backend(Some(&handle.cloud))?;
        let _guard =
            self.lock(format!("volume/{}", request.volume_id), "ControllerUnpublishVolume", &request).await?;
        let Some(volume) = backend.get_volume(&handle.id).await? else {
            return Ok(pb::ControllerUnpublishVolumeResponse {});
        };
        let servers: Vec<String> = if request.node_id.is_empty() {
            volume.attachments.iter().map(|a| a.server_id.clone()).collect()
        } else {
            vec![request.node_id.clone()]
        };
        for server in servers {
            match backend.detach(&handle.id, &server, self.settings.attach_timeout).await {
                // A deleted server or volume has nothing left to detach.
                Ok(()) => self.forget_publish(backend, &volume, &server).await,
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(pb::ControllerUnpublishVolumeResponse {})
    }
}

/// True when a volume's status or attachments say something is wrong.
pub(super) fn condition(volume: &crate::cloud::types::Volume) -> pb::VolumeCondition {
    let abnormal = |message: String| pb::VolumeCondition { abnormal: true, message };
    match &volume.status {
        VolumeStatus::Error(status) => abnormal(format!("the cloud reports the volume in state {status}")),
        VolumeStatus::InUse if volume.attachments.is_empty() => {
            abnormal("the volume is in-use but has no attachment".into())
        }
        VolumeStatus::Available if !volume.attachments.is_empty() => {
            abnormal("the volume is available but still lists attachments".into())
        }
        _ => {
            pb::VolumeCondition { abnormal: false, message: format!("volume is {}", volume.status.as_str()) }
        }
    }
}
