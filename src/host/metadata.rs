//! The OpenStack instance metadata document (`openstack/latest/meta_data.json`), read from the
//! metadata service or from the config drive; both give the server id and its zone.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Error, Result, command, errno_error};

/// The metadata service's document, where Nova and Huawei ECS serve it.
pub const DEFAULT_METADATA_URL: &str = "http://169.254.169.254/openstack/latest/meta_data.json";
/// The filesystem label of an OpenStack config drive.
pub const CONFIG_DRIVE_LABEL: &str = "config-2";
/// Where the document sits inside the config drive.
const CONFIG_DRIVE_DOCUMENT: &str = "openstack/latest/meta_data.json";

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

/// The config drive's device, found by its label.
pub async fn find_config_drive() -> Option<PathBuf> {
    for label in [CONFIG_DRIVE_LABEL, "CONFIG-2"] {
        let link = Path::new("/dev/disk/by-label").join(label);
        if link.exists() {
            return Some(link);
        }
    }
    let label = format!("LABEL={CONFIG_DRIVE_LABEL}");
    let out = command::output("blkid", &["-l", "-o", "device", "-t", &label]).await.ok()?;
    let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !device.is_empty()).then(|| PathBuf::from(device))
}

/// Reads the document from the config drive on `device`, mounted read-only for the moment.
pub async fn read_config_drive(device: &Path) -> Result<MetaData> {
    let path = device.to_string_lossy();
    let out = command::run("blkid", &["-p", "-o", "value", "-s", "TYPE", path.as_ref()]).await?;
    let fs_type = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dir =
        std::env::temp_dir().join(format!("cinder-evs-csi-config-drive-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).map_err(super::io_error("creating", &dir))?;
    let flags =
        nix::mount::MsFlags::MS_RDONLY | nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
    let mounted = nix::mount::mount(Some(device), &dir, Some(fs_type.as_str()), flags, None::<&str>)
        .map_err(errno_error("mounting config drive at", &dir));
    let document = match mounted {
        Ok(()) => {
            let read = std::fs::read_to_string(dir.join(CONFIG_DRIVE_DOCUMENT)).map_err(|e| {
                Error::Identity(format!("config drive {}: {CONFIG_DRIVE_DOCUMENT}: {e}", device.display()))
            });
            if let Err(e) = nix::mount::umount(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not unmount the config drive");
            }
            read
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir(&dir);
    parse(&document?)
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
