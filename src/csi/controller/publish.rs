//! ControllerPublishVolume and ControllerUnpublishVolume: attach through the cloud's compute
//! API, idempotently, with per-node limits.

use super::{ControllerService, capability};
use crate::cloud::CloudError;
use crate::cloud::types::VolumeStatus;
use crate::contract::{CloudId, PublishContext};
use crate::csi::locks::LockKey;
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
        let handle = super::clouds::volume_handle("volume_id", &request.volume_id)?;
        let node = super::clouds::node_id("node_id", &request.node_id)?;
        let _guard =
            self.lock(LockKey::Volume(handle.id.clone()), "ControllerPublishVolume", &request).await?;

        let (backend, volume) = self.volume_to_act_on(&handle, &request.volume_id).await?;
        capability::check(capability, volume.multiattach)?;
        let elsewhere: Vec<&str> = volume
            .attachments
            .iter()
            .filter(|a| a.server_id != node.as_str())
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
        self.check_publish_matches(&volume, node.as_str(), &record)?;
        let here = volume.attachments.iter().any(|a| a.server_id == node.as_str());
        if !here && self.settings.max_volumes_per_node > 0 {
            let count = match backend.attached_count(&node).await {
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
        let attached = match backend.attach(&handle.id, &node, self.settings.attach_timeout).await {
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
                if let Err(e) = backend.detach(&handle.id, &node, self.settings.attach_timeout).await {
                    tracing::error!(volume = %handle.id, error = %e, "could not release the stuck attachment");
                }
                return Err(CsiError::DeadlineExceeded(format!(
                    "attach of {} timed out: {why}",
                    request.volume_id
                )));
            }
            Err(e) => return Err(e.into()),
        };
        self.record_publish(backend, &volume, node.as_str(), &record).await?;
        let context = PublishContext {
            volume_id: Some(handle.id.clone()),
            device_path: attached.device_hint,
            wwn: published_wwn(&volume),
            readonly: request.readonly,
        };
        Ok(pb::ControllerPublishVolumeResponse { publish_context: context.to_map() })
    }

    pub(super) async fn unpublish(
        &self,
        request: pb::ControllerUnpublishVolumeRequest,
    ) -> Result<pb::ControllerUnpublishVolumeResponse, CsiError> {
        // A volume or node that cannot exist is attached nowhere: nothing to detach.
        let handle = match super::clouds::volume_handle("volume_id", &request.volume_id) {
            Ok(h) => h,
            Err(CsiError::NotFound(_)) => return Ok(pb::ControllerUnpublishVolumeResponse {}),
            Err(e) => return Err(e),
        };
        let node = match request.node_id.as_str() {
            "" => None,
            text => match super::clouds::node_id("node_id", text) {
                Ok(n) => Some(n),
                Err(CsiError::NotFound(_)) => return Ok(pb::ControllerUnpublishVolumeResponse {}),
                Err(e) => return Err(e),
            },
        };
        let _guard =
            self.lock(LockKey::Volume(handle.id.clone()), "ControllerUnpublishVolume", &request).await?;
        let located = match self.clouds.locate_volume(&handle).await {
            Err(CsiError::NotFound(_)) => return Ok(pb::ControllerUnpublishVolumeResponse {}),
            other => other?,
        };
        let Some(((_, backend), volume)) = located else {
            return Ok(pb::ControllerUnpublishVolumeResponse {});
        };
        let servers: Vec<CloudId> = match node {
            None => volume
                .attachments
                .iter()
                .filter_map(|a| CloudId::parse("server id", &a.server_id).ok())
                .collect(),
            Some(node) => vec![node],
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

/// The WWN the node may look for, from the volume as read before the attach (no extra call):
/// the cloud's text by the node's own rule, or nothing when it breaks that rule. A bad WWN
/// only costs the node one way of finding the disk, so it never fails the publish.
fn published_wwn(volume: &crate::cloud::types::Volume) -> Option<String> {
    let text = volume.wwn.as_deref()?;
    crate::contract::wwn::parse("the cloud's wwn", text)
        .inspect_err(|e| tracing::debug!(volume = %volume.id, error = %e, "leaving the wwn out of the publish context"))
        .ok()
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
