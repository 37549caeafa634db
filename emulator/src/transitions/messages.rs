//! Cinder's user messages: recorded when a transition ends in an error state, with the texts of
//! Cinder's `message_field` for that failure (and a failed backup's `fail_reason`).

use crate::bootstrap::resource_id;
use crate::model::Message;
use crate::world::World;

/// The backup driver's words when a backup fails: what Cinder's posix driver stores, a first
/// line and the traceback after it.
pub const BACKUP_FAIL_REASON: &str = "[Errno 28] No space left on device: '/var/lib/cinder/backup/volume_backup'\n\
Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/cinder/backup/manager.py\", line 417, in create_backup";

/// Records what Cinder would after `kind` `id` of project `pid` moved from `before` to
/// `after`: nothing unless it just entered an error state Cinder reports.
pub fn after_transition(
    w: &mut World,
    pid: &str,
    kind: &str,
    id: &str,
    before: &str,
    after: Option<&str>,
    now: u64,
) {
    let Some(after) = after else { return };
    if before.starts_with("error") || !after.starts_with("error") {
        return;
    }
    // (resource, action code, action, detail code, detail) from Cinder's message_field.
    let event = match (kind, before, after) {
        ("volume", "creating", "error") => (
            "VOLUME",
            "008",
            "create volume from backend storage",
            "012",
            "Driver failed to create the volume.",
        ),
        ("volume", "extending", "error_extending") => {
            ("VOLUME", "007", "extend volume", "010", "Volume Driver failed to extend volume.")
        }
        ("volume", "restoring-backup", _) => {
            ("VOLUME_BACKUP", "015", "restore backup", "026", "Backup driver failed to restore backup.")
        }
        ("snapshot", "creating", "error") => {
            ("VOLUME_SNAPSHOT", "009", "create snapshot", "013", "Snapshot failed to create.")
        }
        ("snapshot", "deleting", "error_deleting") => {
            ("VOLUME_SNAPSHOT", "010", "delete snapshot", "016", "Snapshot failed to delete.")
        }
        ("backup", "creating", "error") => {
            ("VOLUME_BACKUP", "013", "create backup", "020", "Backup driver failed to create backup.")
        }
        ("backup", "deleting", "error_deleting") => {
            ("VOLUME_BACKUP", "014", "delete backup", "025", "Backup driver failed to delete backup.")
        }
        _ => return,
    };
    let (resource, action_code, action, detail_code, detail) = event;
    let store = w.store_mut(pid);
    if kind == "backup"
        && after == "error"
        && let Some(backup) = store.backups.get_mut(id)
    {
        backup.fail_reason = Some(BACKUP_FAIL_REASON.into());
    }
    let message = Message {
        id: resource_id(),
        event_id: format!("VOLUME_{resource}_{action_code}_{detail_code}"),
        user_message: format!("{action}:{detail}"),
        resource_type: resource.into(),
        resource_uuid: id.into(),
        created_at_ms: now,
    };
    store.messages.insert(message.id.clone(), message);
}
