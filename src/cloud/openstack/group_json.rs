//! Cinder's generic volume groups and group snapshots as the API shows them (3.14+), typed
//! like volumes and snapshots: the driver reads only these fields, and a field that is absent
//! or null reads as empty rather than failing the call.

use std::time::SystemTime;

use serde::Deserialize;

use crate::cloud::cinder_json::{SnapshotJson, parse_time};

/// A group (`GET /groups/{id}?list_volume=True`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupJson {
    /// The group's id.
    #[serde(default)]
    pub id: String,
    /// Its status (`creating`, `available`, `updating`, `error`, ...).
    #[serde(default)]
    pub status: String,
    /// The ids of its volumes (listed only when asked for with `list_volume`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub volumes: Vec<String>,
    /// The group snapshot it was created from, if any.
    #[serde(default)]
    pub group_snapshot_id: Option<String>,
}

/// A group snapshot (`GET /group_snapshots/{id}`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct GroupSnapshotJson {
    /// The group snapshot's id.
    #[serde(default)]
    pub id: String,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its status (`creating`, `available`, `deleting`, `error`, ...).
    #[serde(default)]
    pub status: String,
    /// The group it was taken of.
    #[serde(default)]
    pub group_id: Option<String>,
    /// When it was taken (Cinder leaves the zone out and means UTC).
    #[serde(default)]
    pub created_at: Option<String>,
}

impl GroupSnapshotJson {
    /// When it was taken, when Cinder says and the text is a time.
    pub fn created(&self) -> Option<SystemTime> {
        self.created_at.as_deref().and_then(parse_time)
    }
}

/// `{"group": {...}}`.
#[derive(Debug, Deserialize)]
pub struct OneGroup {
    /// The group.
    pub group: GroupJson,
}

/// `{"group_snapshot": {...}}`.
#[derive(Debug, Deserialize)]
pub struct OneGroupSnapshot {
    /// The group snapshot.
    pub group_snapshot: GroupSnapshotJson,
}

/// `{"group_type": {"id": ...}}`.
#[derive(Debug, Deserialize)]
pub struct OneGroupType {
    /// The group type.
    pub group_type: IdOnly,
}

/// Any resource of which only the id is read.
#[derive(Debug, Deserialize)]
pub struct IdOnly {
    /// Its id.
    pub id: String,
}

/// A snapshot in a list, with the group snapshot it belongs to.
#[derive(Debug, Deserialize)]
pub struct GroupMemberJson {
    /// The group snapshot it was taken in, if any.
    #[serde(default)]
    pub group_snapshot_id: Option<String>,
    /// The snapshot.
    #[serde(flatten)]
    pub snapshot: SnapshotJson,
}

/// `{"snapshots": [...]}`.
#[derive(Debug, Deserialize)]
pub struct GroupMemberList {
    /// The snapshots.
    #[serde(default)]
    pub snapshots: Vec<GroupMemberJson>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_reads_its_volumes_and_tolerates_nulls() {
        let group: OneGroup = serde_json::from_str(
            r#"{"group": {"id": "g1", "status": "available", "volumes": ["v1", "v2"],
                "group_snapshot_id": null, "name": null, "group_type": "t"}}"#,
        )
        .unwrap();
        assert_eq!(group.group.volumes, ["v1", "v2"]);
        assert_eq!(group.group.group_snapshot_id, None);
        let bare: OneGroup = serde_json::from_str(r#"{"group": {"id": "g1", "volumes": null}}"#).unwrap();
        assert!(bare.group.volumes.is_empty());
    }

    #[test]
    fn a_group_snapshot_reads_its_group_and_time() {
        let g: OneGroupSnapshot = serde_json::from_str(
            r#"{"group_snapshot": {"id": "s1", "name": "n", "status": "available", "group_id": "g1",
                "created_at": "2026-01-02T03:04:05.000000"}}"#,
        )
        .unwrap();
        assert_eq!(g.group_snapshot.group_id.as_deref(), Some("g1"));
        assert!(g.group_snapshot.created().is_some());
    }

    #[test]
    fn a_mistyped_volume_list_is_refused_rather_than_guessed() {
        assert!(serde_json::from_str::<OneGroup>(r#"{"group": {"id": "g1", "volumes": [1, 2]}}"#).is_err());
    }
}
