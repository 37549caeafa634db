//! The publish context: what ControllerPublishVolume tells the node about an attachment. The
//! controller writes it, the CO carries it to NodeStage and NodePublish, and the node reads
//! it back; the map's keys exist only here.
//!
//! Whatever arrives in the map is hostile (any process that reaches the socket can send
//! one): the volume id is parsed into a [`CloudId`]; the device path and WWN stay hints the
//! node verifies before it trusts them.

use std::collections::HashMap;

use super::ids::{CloudId, IdError};

/// Key: the cloud volume id the node must find and verify.
const VOLUME_ID: &str = "volumeId";
/// Key: the device path the cloud reported at attach time.
const DEVICE_PATH: &str = "devicePath";
/// Key: the volume's SCSI WWN, where the cloud reports one.
const WWN: &str = "wwn";
/// Key: "true" when the attachment is read-only.
const READONLY: &str = "readonly";

/// The publish context, typed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PublishContext {
    /// The cloud volume to look for (the CSI volume id may carry a cloud prefix).
    pub volume_id: Option<CloudId>,
    /// The device path the cloud reported: a hint, never trusted alone.
    pub device_path: Option<String>,
    /// The volume's SCSI WWN as [`super::wwn::parse`] makes it: a hint the node parses again
    /// and verifies.
    pub wwn: Option<String>,
    /// The attachment is read-only.
    pub readonly: bool,
}

impl PublishContext {
    /// The map ControllerPublishVolume answers with; absent values leave their key out.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        if let Some(id) = &self.volume_id {
            map.insert(VOLUME_ID.to_string(), id.to_string());
        }
        if let Some(path) = &self.device_path {
            map.insert(DEVICE_PATH.to_string(), path.clone());
        }
        if let Some(wwn) = &self.wwn {
            map.insert(WWN.to_string(), wwn.clone());
        }
        if self.readonly {
            map.insert(READONLY.to_string(), "true".to_string());
        }
        map
    }

    /// Reads a request's map: blank values count as absent, a volume id that is not a cloud
    /// id is refused, unknown keys are ignored (a CO may add its own).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, IdError> {
        let value = |key| map.get(key).map(|v: &String| v.trim()).filter(|v| !v.is_empty());
        Ok(Self {
            volume_id: value(VOLUME_ID)
                .map(|id| CloudId::parse("publish_context volumeId", id))
                .transpose()?,
            device_path: value(DEVICE_PATH).map(str::to_string),
            wwn: value(WWN).map(str::to_string),
            readonly: value(READONLY).is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d8e02d56-2648-49a3-bf97-6be8f1204f38";

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn what_the_controller_writes_the_node_reads_back() {
        let written = PublishContext {
            volume_id: Some(CloudId::parse("id", ID).unwrap()),
            device_path: Some("/dev/vdb".into()),
            wwn: Some("0x6888603000001234".into()),
            readonly: true,
        };
        assert_eq!(PublishContext::from_map(&written.to_map()).unwrap(), written);
    }

    #[test]
    fn the_keys_are_the_ones_published_volumes_already_carry() {
        let written = PublishContext {
            volume_id: Some(CloudId::parse("id", ID).unwrap()),
            device_path: Some("/dev/vdb".into()),
            wwn: None,
            readonly: true,
        };
        assert_eq!(
            written.to_map(),
            map(&[("volumeId", ID), ("devicePath", "/dev/vdb"), ("readonly", "true")])
        );
        assert!(PublishContext::default().to_map().is_empty(), "absent values leave their key out");
    }

    #[test]
    fn blank_values_are_absent_and_unknown_keys_ignored() {
        let read = PublishContext::from_map(&map(&[("volumeId", "  "), ("devicePath", ""), ("other", "x")]))
            .unwrap();
        assert_eq!(read, PublishContext::default());
    }

    #[test]
    fn a_volume_id_that_is_no_cloud_id_is_refused() {
        for hostile in ["victim", "../../x", "d8e02d56-2648-49a3-bf97-6be8f1204f38/../x"] {
            assert!(PublishContext::from_map(&map(&[("volumeId", hostile)])).is_err(), "{hostile:?}");
        }
    }
}
