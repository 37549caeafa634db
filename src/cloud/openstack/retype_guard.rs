//! Decides before `os-retype` whether Cinder can finish it. Cinder 29's volume manager saves
//! the volume with its snapshots loaded; when one of them carries metadata the save raises
//! `ObjectActionError: snapshots changed` and the volume stays `retyping`, a state only an admin
//! can clear (`os-reset_status`). That happens on every path that reaches that save: a retype
//! that needs no migration (the success path, whatever the policy) and the refusal of an
//! `on-demand` migration because of snapshots. Only `never` with a needed migration refuses
//! cleanly, and the driver cannot tell the paths apart (extra specs are the admin's). So a
//! volume with such a snapshot is never sent to retype; snapshots without metadata are safe.

use super::cinder::Cinder;
use crate::cloud::error::CloudError;
use crate::cloud::types::Snapshot;

/// Upper bound on the pages read: a volume with more snapshots than this is refused anyway.
const MAX_PAGES: usize = 20;
/// How many snapshots the refusal names before it says how many more there are.
const NAMED: usize = 5;

/// Every snapshot of the volume (paged through), for the decision and the migration policy.
pub async fn snapshots_of(cinder: &Cinder, volume_id: &str) -> Result<Vec<Snapshot>, CloudError> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = vec![("volume_id", volume_id.to_string()), ("limit", "100".to_string())];
        if let Some(m) = &marker {
            query.push(("marker", m.clone()));
        }
        let page = cinder.list_snapshots(&query).await?;
        // The filter is the cloud's; a snapshot of another volume must not decide this one.
        all.extend(page.items.into_iter().filter(|s| s.volume_id == volume_id));
        match page.next {
            Some(next) if marker.as_deref() != Some(next.as_str()) => marker = Some(next),
            _ => return Ok(all),
        }
    }
    Err(CloudError::Conflict(format!(
        "volume {volume_id} has more than {} snapshots; refusing to retype it",
        MAX_PAGES * 100
    )))
}

/// Refuses the retype when a snapshot carries metadata (Cinder would strand the volume).
pub fn check(volume_id: &str, volume_type: &str, snapshots: &[Snapshot]) -> Result<(), CloudError> {
    let blocking: Vec<&Snapshot> = snapshots.iter().filter(|s| !s.metadata.is_empty()).collect();
    if blocking.is_empty() {
        return Ok(());
    }
    let mut named: Vec<String> = blocking
        .iter()
        .take(NAMED)
        .map(|s| if s.name.is_empty() { s.id.clone() } else { format!("{} ({})", s.id, s.name) })
        .collect();
    if blocking.len() > NAMED {
        named.push(format!("and {} more", blocking.len() - NAMED));
    }
    Err(CloudError::Conflict(format!(
        "volume {volume_id} cannot be retyped to {volume_type} while it has snapshots that carry metadata: {}; \
         Cinder fails such a retype and leaves the volume in `retyping`, which only an admin can clear; \
         delete these snapshots (or their metadata) first",
        named.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cloud::types::SnapshotStatus;

    fn snapshot(id: &str, metadata: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.into(),
            name: format!("snapshot-{id}"),
            volume_id: "v".into(),
            size_gib: 1,
            status: SnapshotStatus::Available,
            created_at: None,
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn a_volume_without_snapshots_may_be_retyped() {
        assert_eq!(check("v", "gold", &[]), Ok(()));
    }

    #[test]
    fn snapshots_without_metadata_do_not_block_a_retype() {
        assert_eq!(check("v", "gold", &[snapshot("a", &[]), snapshot("b", &[])]), Ok(()));
    }

    #[test]
    fn a_snapshot_with_metadata_blocks_the_retype_and_is_named_with_the_reason() {
        let err = check("v", "gold", &[snapshot("a", &[]), snapshot("b", &[("csi", "x")])]).unwrap_err();
        let CloudError::Conflict(message) = err else { panic!("not a conflict: {err:?}") };
        assert!(message.contains("b (snapshot-b)"), "{message}");
        assert!(
            !message.contains("a (snapshot-a)"),
            "a snapshot without metadata is not to blame: {message}"
        );
        assert!(message.contains("retyping") && message.contains("admin"), "{message}");
        assert!(message.contains("gold"), "{message}");
    }

    #[test]
    fn a_long_list_of_blocking_snapshots_is_cut_short_with_a_count() {
        let many: Vec<Snapshot> = (0..8).map(|i| snapshot(&format!("s{i}"), &[("k", "v")])).collect();
        let CloudError::Conflict(message) = check("v", "gold", &many).unwrap_err() else { panic!() };
        assert!(message.contains("s4 (snapshot-s4)") && !message.contains("s5 (snapshot-s5)"), "{message}");
        assert!(message.contains("and 3 more"), "{message}");
    }
}
