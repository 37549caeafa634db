//! The CSI Identity service: who the plugin is, what it offers, and whether it is ready.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::observe::Observer;
use super::pb::{self, identity_server::Identity};
use super::readiness::Readiness;

/// Identity service state.
#[derive(Debug)]
pub struct IdentityService {
    driver_name: String,
    capabilities: Vec<pb::PluginCapability>,
    readiness: Readiness,
    observer: Observer,
}

impl IdentityService {
    /// An Identity service advertising exactly `capabilities`.
    pub fn new(
        driver_name: String,
        capabilities: Vec<pb::PluginCapability>,
        readiness: Readiness,
        observer: Observer,
    ) -> Self {
        Self { driver_name, capabilities, readiness, observer }
    }
}

/// A plugin capability naming one service type.
pub fn service_capability(kind: pb::plugin_capability::service::Type) -> pb::PluginCapability {
    pb::PluginCapability {
        r#type: Some(pb::plugin_capability::Type::Service(pb::plugin_capability::Service {
            r#type: kind as i32,
        })),
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        request: Request<pb::GetPluginInfoRequest>,
    ) -> Result<Response<pb::GetPluginInfoResponse>, Status> {
        self.observer
            .call("GetPluginInfo", request, |_| async {
                Ok(pb::GetPluginInfoResponse {
                    name: self.driver_name.clone(),
                    vendor_version: crate::VERSION.to_string(),
                    manifest: HashMap::from([("commit".to_string(), crate::GIT_COMMIT.to_string())]),
                })
            })
            .await
    }

    async fn get_plugin_capabilities(
        &self,
        request: Request<pb::GetPluginCapabilitiesRequest>,
    ) -> Result<Response<pb::GetPluginCapabilitiesResponse>, Status> {
        self.observer
            .call("GetPluginCapabilities", request, |_| async {
                Ok(pb::GetPluginCapabilitiesResponse { capabilities: self.capabilities.clone() })
            })
            .await
    }

    async fn probe(&self, request: Request<pb::ProbeRequest>) -> Result<Response<pb::ProbeResponse>, Status> {
        self.observer
            .call("Probe", request, |_| async {
                let ready = self.readiness.is_ready();
                if !ready {
                    tracing::debug!(pending = ?self.readiness.pending(), "not ready yet");
                }
                Ok(pb::ProbeResponse { ready: Some(ready) })
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::Metrics;

    fn service(readiness: Readiness) -> IdentityService {
        IdentityService::new(
            "csi.example.io".into(),
            vec![service_capability(pb::plugin_capability::service::Type::ControllerService)],
            readiness,
            Observer::new(Metrics::new()),
        )
    }

    #[tokio::test]
    async fn plugin_info_names_the_driver_and_cargo_version() {
        let info = service(Readiness::new())
            .get_plugin_info(Request::new(pb::GetPluginInfoRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.name, "csi.example.io");
        assert_eq!(info.vendor_version, env!("CARGO_PKG_VERSION"));
    }

    #[tokio::test]
    async fn plugin_capabilities_are_exactly_the_configured_ones() {
        let caps = service(Readiness::new())
            .get_plugin_capabilities(Request::new(pb::GetPluginCapabilitiesRequest {}))
            .await
            .unwrap()
            .into_inner()
            .capabilities;
        assert_eq!(caps, vec![service_capability(pb::plugin_capability::service::Type::ControllerService)]);
    }

    #[tokio::test]
    async fn probe_is_not_ready_until_every_gate_opens() {
        let readiness = Readiness::new();
        let gate = readiness.gate("cloud backend");
        let identity = service(readiness);
        let probe = || identity.probe(Request::new(pb::ProbeRequest {}));
        assert_eq!(probe().await.unwrap().into_inner().ready, Some(false));
        gate.open();
        assert_eq!(probe().await.unwrap().into_inner().ready, Some(true));
    }
}
