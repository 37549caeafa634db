//! GetCapacity: what the quota of the chosen cloud still allows.

use super::ControllerService;
use crate::contract::GIB;
use crate::csi::pb;
use crate::csi::status::CsiError;

impl ControllerService {
    pub(super) async fn capacity_rpc(
        &self,
        request: pb::GetCapacityRequest,
    ) -> Result<pb::GetCapacityResponse, CsiError> {
        let parameters = crate::csi::params::parse(&request.parameters)?;
        let (_, backend) = self.clouds.backend(parameters.cloud.as_deref())?;
        let capacity = backend.capacity(parameters.volume_type.as_deref()).await?;
        // Unlimited quota: report a large finite number, as Kubernetes needs one.
        let available = capacity.available_gib.map_or(i64::MAX / GIB, |g| g as i64);
        Ok(pb::GetCapacityResponse {
            available_capacity: available.saturating_mul(GIB),
            maximum_volume_size: None,
            minimum_volume_size: Some(GIB),
        })
    }
}
