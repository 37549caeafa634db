//! ControllerModifyVolume: apply mutable parameters (type, IOPS, throughput) to a volume.

use super::ControllerService;
use crate::csi::locks::LockKey;
use crate::csi::pb;
use crate::csi::status::CsiError;

impl ControllerService {
    pub(super) async fn modify_rpc(
        &self,
        request: pb::ControllerModifyVolumeRequest,
    ) -> Result<pb::ControllerModifyVolumeResponse, CsiError> {
        if request.volume_id.is_empty() {
            return Err(CsiError::InvalidArgument("volume_id is required".into()));
        }
        // Empty mutable parameters are a valid no-op (the spec's "nothing to change").
        let super::mutable::MutableParameters { volume_type: new_type, iops, throughput } =
            super::mutable::parse(&request.mutable_parameters)?;
        let handle = super::clouds::volume_handle("volume_id", &request.volume_id)?;
        let _guard =
            self.lock(LockKey::Volume(handle.id.clone()), "ControllerModifyVolume", &request).await?;
        let (backend, volume) = self.volume_to_act_on(&handle, &request.volume_id).await?;
        if iops.is_some() || throughput.is_some() {
            backend.modify_performance(&handle.id, iops, throughput, self.settings.create_timeout).await?;
        }
        if let Some(new_type) = new_type
            && volume.volume_type.as_deref() != Some(new_type.as_str())
        {
            backend.retype_volume(&handle.id, &new_type).await?;
            backend.wait_volume_retyped(&handle.id, &new_type, self.settings.create_timeout).await?;
        }
        Ok(pb::ControllerModifyVolumeResponse {})
    }
}
