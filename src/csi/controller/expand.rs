//! ControllerExpandVolume: grow a volume in the cloud; the node grows its filesystem.

use super::ControllerService;
use crate::contract::GIB;
use crate::csi::locks::LockKey;
use crate::csi::pb;
use crate::csi::status::CsiError;

impl ControllerService {
    pub(super) async fn expand_rpc(
        &self,
        request: pb::ControllerExpandVolumeRequest,
    ) -> Result<pb::ControllerExpandVolumeResponse, CsiError> {
        let range = request
            .capacity_range
            .as_ref()
            .ok_or_else(|| CsiError::InvalidArgument("capacity_range is required".into()))?;
        let size_gib = crate::csi::params::size_gib(Some(range), 0)?;
        if size_gib == 0 {
            return Err(CsiError::InvalidArgument("capacity_range needs required_bytes".into()));
        }
        let handle = super::clouds::volume_handle("volume_id", &request.volume_id)?;
        let _guard =
            self.lock(LockKey::Volume(handle.id.clone()), "ControllerExpandVolume", &request).await?;
        let (backend, volume) = self.volume_to_act_on(&handle, &request.volume_id).await?;
        let block = request.volume_capability.as_ref().is_some_and(super::capability::is_block);
        if volume.size_gib < size_gib {
            backend.extend_volume(&handle.id, size_gib).await?;
            backend.wait_volume_extended(&handle.id, size_gib, self.settings.create_timeout).await?;
        } else if volume.size_gib > size_gib
            && range.limit_bytes > 0
            && (volume.size_gib as i64 * GIB) > range.limit_bytes
        {
            return Err(CsiError::InvalidArgument(format!(
                "volume {} is {} GiB; shrinking is not supported",
                request.volume_id, volume.size_gib
            )));
        }
        let capacity = volume.size_gib.max(size_gib);
        Ok(pb::ControllerExpandVolumeResponse {
            capacity_bytes: capacity as i64 * GIB,
            node_expansion_required: !block,
        })
    }
}
