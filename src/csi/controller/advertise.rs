//! What the controller advertises, from what the configured clouds can do: a capability is
//! advertised when at least one cloud has it, and a request that sends a cloud what it lacks
//! (a StorageClass naming that cloud) is refused as the spec says for an unsupported source.

use super::{CAPABILITIES, ControllerService};
use crate::cloud::Backend;
use crate::cloud::features::Features;
use crate::cloud::types::VolumeSource;
use crate::csi::pb::controller_service_capability::rpc::Type;
use crate::csi::status::CsiError;

impl ControllerService {
    fn any_cloud(&self, has: impl Fn(Features) -> bool) -> bool {
        self.clouds.all().any(|(_, backend)| has(backend.features()))
    }

    /// The controller capabilities of this build that some configured cloud can serve.
    pub fn capabilities(&self) -> Vec<Type> {
        let clone = self.any_cloud(|f| f.clone_volume);
        CAPABILITIES.iter().copied().filter(|t| *t != Type::CloneVolume || clone).collect()
    }

    /// True when some configured cloud takes group snapshots, so the GroupController service
    /// is worth offering.
    pub fn group_snapshots_supported(&self) -> bool {
        self.any_cloud(|f| f.group_snapshots)
    }

    /// Refuses, before any cloud call, a source the chosen cloud cannot create from:
    /// INVALID_ARGUMENT is the spec's answer for an unsupported `volume_content_source`.
    pub(super) fn check_source_supported(
        &self,
        backend: &dyn Backend,
        cloud: &str,
        source: Option<&VolumeSource>,
    ) -> Result<(), CsiError> {
        if matches!(source, Some(VolumeSource::Volume(_))) && !backend.features().clone_volume {
            return Err(CsiError::InvalidArgument(format!(
                "cloud {cloud} cannot clone volumes; create the volume from a snapshot instead"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::cloud::fake::FakeBackend;
    use crate::csi::controller::{Clouds, ControllerSettings};
    use crate::csi::observe::Observer;
    use crate::telemetry::metrics::Metrics;

    const EVS_LIKE: Features = Features { clone_volume: false, group_snapshots: false };

    fn service(clouds: &[(&str, Features)]) -> ControllerService {
        let backends: BTreeMap<String, Arc<dyn Backend>> = clouds
            .iter()
            .map(|(name, features)| {
                let mut fake = FakeBackend::default();
                fake.features = Some(*features);
                (name.to_string(), Arc::new(fake) as Arc<dyn Backend>)
            })
            .collect();
        let settings = ControllerSettings::new("csi.example.io".into(), "c".into());
        ControllerService::new(
            Clouds::new(clouds[0].0.into(), backends),
            settings,
            Observer::new(Metrics::new()),
        )
    }

    #[test]
    fn a_cloud_without_clones_or_groups_advertises_neither() {
        let only_evs = service(&[("hw", EVS_LIKE)]);
        assert!(!only_evs.capabilities().contains(&Type::CloneVolume));
        assert!(only_evs.capabilities().contains(&Type::CreateDeleteSnapshot));
        assert!(!only_evs.group_snapshots_supported());
    }

    #[test]
    fn mixed_clouds_advertise_what_any_of_them_can_do() {
        let mixed = service(&[("hw", EVS_LIKE), ("os", Features::ALL)]);
        assert!(mixed.capabilities().contains(&Type::CloneVolume));
        assert!(mixed.group_snapshots_supported());
        assert_eq!(mixed.capabilities().len(), CAPABILITIES.len());
    }

    #[test]
    fn a_clone_sent_to_a_cloud_that_cannot_clone_is_invalid_argument() {
        let mixed = service(&[("hw", EVS_LIKE), ("os", Features::ALL)]);
        let (_, evs) = mixed.clouds.backend(Some("hw")).unwrap();
        let clone = VolumeSource::Volume(crate::contract::CloudId::random());
        let refused = mixed.check_source_supported(evs.as_ref(), "hw", Some(&clone)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);
        let snapshot = VolumeSource::Snapshot(crate::contract::CloudId::random());
        assert!(mixed.check_source_supported(evs.as_ref(), "hw", Some(&snapshot)).is_ok());
        let (_, os) = mixed.clouds.backend(Some("os")).unwrap();
        assert!(mixed.check_source_supported(os.as_ref(), "os", Some(&clone)).is_ok());
    }
}
