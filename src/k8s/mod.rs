//! The driver's own use of the Kubernetes API, outside the CSI services: the node's preStop
//! wait for its attachments to drain ([`drain`]) and the garbage collector of cloud volumes,
//! snapshots and attachments that no Kubernetes object references any more ([`gc`]).

pub mod drain;
pub mod gc;

use std::path::Path;
use std::time::Duration;

/// Why a Kubernetes call failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The kubeconfig or in-cluster configuration could not be loaded.
    #[error("kubernetes configuration: {0}")]
    Config(String),
    /// A request to the API server failed.
    #[error("kubernetes {what}: {source}")]
    Api {
        /// What was asked for.
        what: String,
        /// The client's error.
        source: kube::Error,
    },
}

impl KubeError {
    /// Wraps a client error with what was being asked for.
    pub fn api(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Self {
        let what = what.into();
        move |source| Self::Api { what, source }
    }
}

/// A client from `kubeconfig` when given, else the in-cluster service account (or
/// `KUBECONFIG`), with `timeout` on connecting and reading.
pub async fn client(kubeconfig: Option<&Path>, timeout: Duration) -> Result<kube::Client, KubeError> {
    let config_error = |e: &dyn std::fmt::Display| KubeError::Config(e.to_string());
    let mut config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| config_error(&e))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| config_error(&e))?
        }
        None => kube::Config::infer().await.map_err(|e| config_error(&e))?,
    };
    config.connect_timeout = Some(timeout);
    config.read_timeout = Some(timeout);
    kube::Client::try_from(config).map_err(|e| config_error(&e))
}
