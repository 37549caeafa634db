//! Who this node is: the server id and zone for NodeGetInfo, from an explicit `--node-id`, the
//! config drive, the metadata service or the Kubernetes Node object (in a configurable order),
//! No cloud credentials are involved.
//!
//! A room of its own because it asks services over the network (the metadata service, the
//! Kubernetes API), which `host` (this machine's kernel only) must not.

pub mod config_drive;
pub mod kubernetes;
pub mod metadata;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// Why this node's identity could not be determined (what a source answered, or all of them).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A source gave no usable answer.
    #[error("{0}")]
    Identity(String),
    /// Reading the config drive failed on this host.
    #[error(transparent)]
    Host(#[from] crate::host::Error),
}

/// The node identity room's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where the node id may come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The OpenStack config drive (label `config-2`).
    ConfigDrive,
    /// The metadata service.
    Metadata,
    /// The Kubernetes Node object's `spec.providerID`.
    Kubernetes,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "config-drive" => Ok(Self::ConfigDrive),
            "metadata" => Ok(Self::Metadata),
            "kubernetes" => Ok(Self::Kubernetes),
            other => {
                Err(format!("unknown node id source {other:?}; use config-drive, metadata or kubernetes"))
            }
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConfigDrive => "config-drive",
            Self::Metadata => "metadata",
            Self::Kubernetes => "kubernetes",
        })
    }
}

/// How to determine the node's identity.
#[derive(Clone, Debug)]
pub struct IdentityConfig {
    /// `--node-id`: used as is, without consulting any source.
    pub node_id: Option<String>,
    /// `--zone`: overrides the zone a source reports.
    pub zone: Option<String>,
    /// Sources, tried in order until one answers.
    pub sources: Vec<Source>,
    /// The metadata document's URL.
    pub metadata_url: String,
    /// The config drive's device; found by label when unset.
    pub config_drive: Option<PathBuf>,
    /// The Kubernetes Node name of this host (for the `kubernetes` source).
    pub kube_node_name: Option<String>,
    /// A kubeconfig for the `kubernetes` source; in-cluster configuration when unset.
    pub kubeconfig: Option<PathBuf>,
    /// Time limit of each metadata request.
    pub timeout: Duration,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            zone: None,
            sources: vec![Source::ConfigDrive, Source::Metadata],
            metadata_url: metadata::DEFAULT_METADATA_URL.into(),
            config_drive: None,
            kube_node_name: None,
            kubeconfig: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The node as NodeGetInfo reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The cloud server id.
    pub node_id: String,
    /// The availability zone, when known.
    pub zone: Option<String>,
}

/// Determines the node's identity; the error says what every source answered.
pub async fn resolve(config: &IdentityConfig) -> Result<NodeIdentity> {
    let zone_override = config.zone.clone().filter(|z| !z.trim().is_empty());
    if let Some(node_id) = config.node_id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return Ok(NodeIdentity { node_id: node_id.to_string(), zone: zone_override });
    }
    let mut failures = Vec::new();
    for source in &config.sources {
        let answer = match source {
            Source::ConfigDrive => match &config.config_drive {
                Some(device) => config_drive::read(device).await,
                None => match config_drive::find().await {
                    Some(device) => config_drive::read(&device).await,
                    None => Err(Error::Identity(format!("no device labelled {}", config_drive::LABEL))),
                },
            },
            Source::Metadata => metadata::fetch(&config.metadata_url, config.timeout).await,
            Source::Kubernetes => match config.kube_node_name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => kubernetes::node_identity(name, config.kubeconfig.as_deref(), config.timeout)
                    .await
                    .map(|(uuid, availability_zone)| metadata::MetaData { uuid, availability_zone }),
                None => Err(Error::Identity("no Kubernetes node name (--kube-node-name) given".into())),
            },
        };
        match answer {
            Ok(data) => {
                tracing::info!(%source, node_id = %data.uuid, zone = ?data.availability_zone, "node identity found");
                return Ok(NodeIdentity {
                    node_id: data.uuid,
                    zone: zone_override.or(data.availability_zone),
                });
            }
            Err(e) => failures.push(format!("{source}: {e}")),
        }
    }
    Err(Error::Identity(format!(
        "cannot determine this node's id ({}); pass --node-id (or CSI_NODE_ID): the cloud server id of this host",
        if failures.is_empty() { "no sources configured".to_string() } else { failures.join("; ") }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_by_name() {
        assert_eq!("config-drive".parse(), Ok(Source::ConfigDrive));
        assert_eq!(" metadata".parse(), Ok(Source::Metadata));
        assert_eq!("kubernetes".parse(), Ok(Source::Kubernetes));
        assert!("cmdb".parse::<Source>().unwrap_err().contains("unknown"));
    }

    #[tokio::test]
    async fn an_explicit_node_id_is_used_without_consulting_sources() {
        let config = IdentityConfig {
            node_id: Some("server-1".into()),
            zone: Some("az-9".into()),
            metadata_url: "http://127.0.0.1:9/never".into(),
            ..IdentityConfig::default()
        };
        let identity = resolve(&config).await.unwrap();
        assert_eq!(identity, NodeIdentity { node_id: "server-1".into(), zone: Some("az-9".into()) });
    }

    #[tokio::test]
    async fn no_answering_source_is_an_error_naming_the_flag_and_each_failure() {
        let config = IdentityConfig {
            sources: vec![Source::Metadata],
            metadata_url: "http://127.0.0.1:9/openstack/latest/meta_data.json".into(),
            ..IdentityConfig::default()
        };
        let error = resolve(&config).await.unwrap_err().to_string();
        assert!(error.contains("--node-id"), "{error}");
        assert!(error.contains("metadata:"), "{error}");
    }
}
