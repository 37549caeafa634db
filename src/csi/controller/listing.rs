//! ListVolumes, ControllerGetVolume and ValidateVolumeCapabilities.

use super::publish::condition;
use super::{ControllerService, capability, topology};
use crate::cloud::CloudError;
use crate::cloud::types::Volume;
use crate::contract::GIB;
use crate::csi::pb;
use crate::csi::status::CsiError;

/// A page token is the cloud's marker: a volume id. Anything else did not come from us.
fn valid_token(token: &str) -> bool {
    !token.is_empty() && token.len() <= 64 && token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// A volume whose DeleteVolume the driver has accepted: gone as far as the CO is concerned.
fn being_deleted(volume: &Volume) -> bool {
    volume.status == crate::cloud::types::VolumeStatus::Deleting
}

impl ControllerService {
    fn csi_volume(&self, cloud: &str, volume: &Volume) -> pb::Volume {
        let accessible_topology = if volume.zone.is_empty() || self.settings.ignore_volume_az {
            Vec::new()
        } else {
            vec![topology::segments(&volume.zone, &self.settings.topology_keys())]
        };
        pb::Volume {
            capacity_bytes: volume.size_gib as i64 * GIB,
            volume_id: self.clouds.handle(cloud, &volume.id),
            accessible_topology,
            ..Default::default()
        }
    }

    pub(super) async fn list(
        &self,
        request: pb::ListVolumesRequest,
    ) -> Result<pb::ListVolumesResponse, CsiError> {
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
        let limit = (request.max_entries > 0).then_some(request.max_entries as u32);
        let (cloud, backend) = self.clouds.backend(None)?;
        let page = match backend.list_volumes(limit, marker).await {
            Ok(p) => p,
            // The cloud refuses a marker that names no volume (any more).
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
            .filter(|v| !being_deleted(v) && self.ours_or_imported(&v.metadata))
            .map(|v| pb::list_volumes_response::Entry {
                volume: Some(self.csi_volume(cloud, v)),
                status: Some(pb::list_volumes_response::VolumeStatus {
                    published_node_ids: v.attachments.iter().map(|a| a.server_id.clone()).collect(),
                    volume_condition: Some(condition(v)),
                }),
            })
            .collect();
        Ok(pb::ListVolumesResponse { entries, next_token: page.next.unwrap_or_default() })
    }

    pub(super) async fn get(
        &self,
        request: pb::ControllerGetVolumeRequest,
    ) -> Result<pb::ControllerGetVolumeResponse, CsiError> {
        let handle = super::clouds::volume_handle("volume_id", &request.volume_id)?;
        let ((cloud, _), volume) = self
            .clouds
            .locate_volume(&handle)
            .await?
            .filter(|(_, v)| !being_deleted(v))
            .ok_or_else(|| CsiError::NotFound(format!("volume {} not found", request.volume_id)))?;
        Ok(pb::ControllerGetVolumeResponse {
            volume: Some(self.csi_volume(cloud, &volume)),
            status: Some(pb::controller_get_volume_response::VolumeStatus {
                published_node_ids: volume.attachments.iter().map(|a| a.server_id.clone()).collect(),
                volume_condition: Some(condition(&volume)),
            }),
        })
    }

    pub(super) async fn validate(
        &self,
        request: pb::ValidateVolumeCapabilitiesRequest,
    ) -> Result<pb::ValidateVolumeCapabilitiesResponse, CsiError> {
        if request.volume_capabilities.is_empty() {
            return Err(CsiError::InvalidArgument("volume_capabilities must not be empty".into()));
        }
        let handle = super::clouds::volume_handle("volume_id", &request.volume_id)?;
        let (_, volume) = self
            .clouds
            .locate_volume(&handle)
            .await?
            .ok_or_else(|| CsiError::NotFound(format!("volume {} not found", request.volume_id)))?;
        match capability::check_all(&request.volume_capabilities, volume.multiattach) {
            Ok(()) => Ok(pb::ValidateVolumeCapabilitiesResponse {
                confirmed: Some(pb::validate_volume_capabilities_response::Confirmed {
                    volume_context: request.volume_context.clone(),
                    volume_capabilities: request.volume_capabilities.clone(),
                    parameters: request.parameters.clone(),
                    mutable_parameters: request.mutable_parameters.clone(),
                }),
                message: String::new(),
            }),
            Err(e) => Ok(pb::ValidateVolumeCapabilitiesResponse { confirmed: None, message: e.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_starting_token_lists_or_is_aborted(token in ".{0,80}") {
            let fake = std::sync::Arc::new(crate::cloud::fake::FakeBackend::default());
            let backend: std::sync::Arc<dyn crate::cloud::Backend> = fake;
            let clouds = super::super::Clouds::new(
                "default".into(),
                std::collections::BTreeMap::from([("default".to_string(), backend)]),
            );
            let settings = super::super::ControllerSettings::new("csi.example.io".into(), "c".into());
            let service = ControllerService::new(
                clouds,
                settings,
                crate::csi::observe::Observer::new(crate::telemetry::metrics::Metrics::new()),
            );
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let request = pb::ListVolumesRequest { starting_token: token.clone(), ..Default::default() };
            match runtime.block_on(service.list(request)) {
                Ok(_) => proptest::prop_assert!(token.is_empty() || valid_token(&token)),
                Err(e) if token.contains('\0') => proptest::prop_assert_eq!(e.code(), tonic::Code::InvalidArgument),
                Err(e) => proptest::prop_assert_eq!(e.code(), tonic::Code::Aborted, "{:?}", e),
            }
        }
    }

    #[test]
    fn page_tokens_must_look_like_cloud_ids() {
        assert!(valid_token("3f1c9b5e-0c55-4c1e-9f5a-6c2d1a0b9e77"));
        assert!(!valid_token("not a token!"));
        assert!(!valid_token(&"a".repeat(65)));
    }
}
