//! The OpenStack instance metadata document (`openstack/latest/meta_data.json`), as the
//! metadata service serves it and the config drive holds it: the server id and its zone.

use std::time::Duration;

use super::{Error, Result};

/// The metadata service's document, where Nova and Huawei ECS serve it.
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254/openstack/latest/meta_data.json";

/// The fields of `meta_data.json` the node needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct MetaData {
    /// The server id: the CSI node id.
    pub uuid: String,
    /// The server's availability zone.
    #[serde(default)]
    pub availability_zone: Option<String>,
}

/// Parses a `meta_data.json` document.
pub fn parse(text: &str) -> Result<MetaData> {
    let data: MetaData = serde_json::from_str(text)
        .map_err(|e| Error::Identity(format!("meta_data.json is not a metadata document: {e}")))?;
    if data.uuid.trim().is_empty() {
        return Err(Error::Identity("meta_data.json has an empty uuid".into()));
    }
    Ok(MetaData {
        uuid: data.uuid.trim().to_string(),
        availability_zone: data.availability_zone.map(|z| z.trim().to_string()).filter(|z| !z.is_empty()),
    })
}

/// Fetches the document from the metadata service at `url`.
pub async fn fetch(url: &str, timeout: Duration) -> Result<MetaData> {
    let failed = |e: reqwest::Error| Error::Identity(format!("metadata service {url}: {e}"));
    crate::tls::install_crypto_provider();
    let client =
        reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build().map_err(failed)?;
    let response = client.get(url).send().await.map_err(failed)?.error_for_status().map_err(failed)?;
    parse(&response.text().await.map_err(failed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_data_gives_the_server_id_and_zone() {
        let text = r#"{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "availability_zone": "nova",
            "hostname": "test.novalocal", "meta": {"role": "webservers"}, "launch_index": 0}"#;
        let data = parse(text).unwrap();
        assert_eq!(data.uuid, "d8e02d56-2648-49a3-bf97-6be8f1204f38");
        assert_eq!(data.availability_zone.as_deref(), Some("nova"));
    }

    #[test]
    fn a_missing_or_empty_zone_is_none() {
        assert_eq!(parse(r#"{"uuid": "s1"}"#).unwrap().availability_zone, None);
        assert_eq!(parse(r#"{"uuid": "s1", "availability_zone": ""}"#).unwrap().availability_zone, None);
    }

    #[test]
    fn documents_without_a_uuid_are_refused() {
        assert!(parse(r#"{"availability_zone": "az1"}"#).is_err());
        assert!(parse(r#"{"uuid": "  "}"#).is_err());
        assert!(parse("<html>not json</html>").is_err());
    }
}
