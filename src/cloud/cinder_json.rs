//! Cinder-shaped JSON: volumes, snapshots, their lists and `*_links` page markers. Cinder v3
//! sends it and so does EVS, whose API derives from Cinder's; both backends read it here.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::types::{Page, Snapshot, SnapshotStatus, Volume, VolumeAttachment, VolumeStatus};

/// A volume (an EVS disk) as the API shows it.
#[derive(Debug, Deserialize)]
pub struct VolumeJson {
    id: String,
    #[serde(default)]
    name: Option<String>,
    size: u64,
    status: String,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    volume_type: Option<String>,
    #[serde(default)]
    multiattach: bool,
    #[serde(default)]
    attachments: Vec<AttachmentJson>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    snapshot_id: Option<String>,
    #[serde(default)]
    source_volid: Option<String>,
    /// EVS only; any JSON is accepted here so that a hostile value cannot make the whole disk
    /// unreadable (it is dropped unless it is text, and checked where it is used).
    #[serde(default)]
    wwn: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct AttachmentJson {
    server_id: String,
    #[serde(default)]
    device: Option<String>,
}

/// A snapshot as the API shows it.
#[derive(Debug, Deserialize)]
pub struct SnapshotJson {
    id: String,
    #[serde(default)]
    name: Option<String>,
    volume_id: String,
    size: u64,
    status: String,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

/// Metadata as text: Cinder only stores strings, but EVS may answer with JSON non-strings.
fn text_map(map: Option<Map<String, Value>>) -> BTreeMap<String, String> {
    map.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect()
}

impl From<VolumeJson> for Volume {
    fn from(v: VolumeJson) -> Self {
        Volume {
            id: v.id,
            name: v.name.unwrap_or_default(),
            size_gib: v.size,
            status: VolumeStatus::parse(&v.status),
            zone: v.availability_zone.unwrap_or_default(),
            volume_type: v.volume_type,
            multiattach: v.multiattach,
            attachments: v
                .attachments
                .into_iter()
                .map(|a| VolumeAttachment { server_id: a.server_id, device: a.device })
                .collect(),
            metadata: text_map(v.metadata),
            source_snapshot_id: v.snapshot_id,
            source_volume_id: v.source_volid,
            wwn: match v.wwn {
                Some(Value::String(text)) => Some(text),
                _ => None,
            },
        }
    }
}

impl From<SnapshotJson> for Snapshot {
    fn from(s: SnapshotJson) -> Self {
        Snapshot {
            id: s.id,
            name: s.name.unwrap_or_default(),
            volume_id: s.volume_id,
            size_gib: s.size,
            status: SnapshotStatus::parse(&s.status),
            created_at: s.created_at.as_deref().and_then(parse_time),
            metadata: text_map(s.metadata),
        }
    }
}

/// A timestamp; Cinder and EVS (`2016-05-25T02:42:10.856332`) leave the zone out and mean UTC.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let with_zone =
        if text.ends_with('Z') || text.contains('+') { text.to_string() } else { format!("{text}Z") };
    let ts: prost_types::Timestamp = with_zone.parse().ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(u64::try_from(ts.seconds).ok()?, ts.nanos.max(0) as u32))
}

/// One entry of a `*_links` list.
#[derive(Debug, Deserialize)]
pub struct Link {
    rel: String,
    href: String,
}

/// The `marker` of a `rel=next` link.
pub fn next_marker(links: &[Link]) -> Option<String> {
    let next = links.iter().find(|l| l.rel == "next")?;
    // Links in the EVS reference wrap lines; whitespace is never part of a marker.
    let href: String = next.href.chars().filter(|c| !c.is_whitespace()).collect();
    let url = Url::parse(&href).ok()?;
    url.query_pairs().find(|(k, _)| k == "marker").map(|(_, v)| v.into_owned())
}

/// `{"volume": ...}`.
#[derive(Deserialize)]
pub struct OneVolume {
    /// The volume.
    pub volume: VolumeJson,
}

/// `{"snapshot": ...}`.
#[derive(Deserialize)]
pub struct OneSnapshot {
    /// The snapshot.
    pub snapshot: SnapshotJson,
}

/// `{"volumes": [...], "volumes_links": [...]}`.
#[derive(Deserialize)]
pub struct VolumeList {
    volumes: Vec<VolumeJson>,
    // The EVS reference's examples show `null` when there is no further page.
    #[serde(default)]
    volumes_links: Option<Vec<Link>>,
}

impl From<VolumeList> for Page<Volume> {
    fn from(list: VolumeList) -> Self {
        Page {
            next: next_marker(list.volumes_links.as_deref().unwrap_or_default()),
            items: list.volumes.into_iter().map(Into::into).collect(),
        }
    }
}

/// `{"snapshots": [...], "snapshots_links": [...]}`.
#[derive(Deserialize)]
pub struct SnapshotList {
    snapshots: Vec<SnapshotJson>,
    #[serde(default)]
    snapshots_links: Option<Vec<Link>>,
}

impl From<SnapshotList> for Page<Snapshot> {
    fn from(list: SnapshotList) -> Self {
        Page {
            next: next_marker(list.snapshots_links.as_deref().unwrap_or_default()),
            items: list.snapshots.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_maps_to_the_neutral_volume() {
        let json = r#"{"id": "v1", "name": "pvc-1", "size": 10, "status": "in-use", "availability_zone": "nova",
            "volume_type": "ssd", "multiattach": false, "metadata": {"k": "v"},
            "attachments": [{"server_id": "s1", "device": "/dev/vdb", "attachment_id": "a1"}],
            "snapshot_id": null, "source_volid": "v0", "bootable": "false"}"#;
        let volume: Volume = serde_json::from_str::<VolumeJson>(json).unwrap().into();
        assert_eq!(volume.status, VolumeStatus::InUse);
        assert_eq!(
            volume.attachments,
            vec![VolumeAttachment { server_id: "s1".into(), device: Some("/dev/vdb".into()) }]
        );
        assert_eq!(volume.source_volume_id.as_deref(), Some("v0"));
        assert_eq!(volume.size_gib, 10);
        assert_eq!(volume.metadata["k"], "v");
    }

    #[test]
    fn metadata_that_is_not_text_is_kept_as_json_text() {
        let json = r#"{"id": "v1", "size": 10, "status": "available", "metadata": {"n": 3, "b": true}}"#;
        let volume: Volume = serde_json::from_str::<VolumeJson>(json).unwrap().into();
        assert_eq!((volume.metadata["n"].as_str(), volume.metadata["b"].as_str()), ("3", "true"));
    }

    #[test]
    fn the_marker_comes_from_the_next_link_even_when_wrapped() {
        let links = vec![
            Link { rel: "self".into(), href: "http://c/v3/p/volumes".into() },
            Link { rel: "next".into(), href: "http://c/v3/p/volumes/detail?limit=2&mar\n  ker=abc".into() },
        ];
        assert_eq!(next_marker(&links).as_deref(), Some("abc"));
        assert_eq!(next_marker(&[]), None);
    }

    #[test]
    fn a_null_links_entry_means_no_further_page() {
        let list: VolumeList = serde_json::from_str(r#"{"volumes": [], "volumes_links": null}"#).unwrap();
        assert_eq!(Page::<Volume>::from(list).next, None);
    }

    #[test]
    fn times_without_a_zone_are_utc() {
        let t = parse_time("1970-01-01T00:01:00.500000").unwrap();
        assert_eq!(t, SystemTime::UNIX_EPOCH + Duration::from_millis(60_500));
        assert_eq!(
            parse_time("1970-01-01T00:01:00Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(60))
        );
        assert!(parse_time("yesterday").is_none());
    }
}
