//! Why a Cinder resource ended in an error state, in Cinder's words: the newest user message
//! about it (`/messages?resource_uuid=`, 3.3+). Cinder records them for volumes, snapshots and
//! backups; groups and group snapshots have none, so their errors say the status alone.

use serde_json::Value;

use super::cinder::Cinder;
use crate::cloud::error::CloudError;
use crate::telemetry::reason::cloud_reason;

/// The error with the cloud's reason added, when it is an error state without one and Cinder
/// recorded a message about the resource. Asking is best effort: the failure itself is what
/// must be reported, so a failed question leaves the error as it was.
pub async fn explain(cinder: &Cinder, error: CloudError) -> CloudError {
    match error {
        CloudError::ErrorState { kind, id, status, reason: None }
            if kind != "group" && kind != "group snapshot" =>
        {
            let reason = match cinder.list_messages(&id).await {
                Ok(messages) => newest_reason(&id, &messages),
                Err(e) => {
                    tracing::debug!(resource = %id, error = %e, "could not read Cinder's messages about a failure");
                    None
                }
            };
            CloudError::ErrorState { kind, id, status, reason }
        }
        other => other,
    }
}

/// The newest message's text about resource `id`; messages about anything else are ignored
/// (a cloud that ignores the filter must not lend another resource's reason).
pub fn newest_reason(id: &str, messages: &[Value]) -> Option<String> {
    messages
        .iter()
        .filter(|m| m["resource_uuid"].as_str() == Some(id))
        .filter_map(|m| Some((m["created_at"].as_str().unwrap_or_default(), m["user_message"].as_str()?)))
        .max_by(|a, b| a.0.cmp(b.0))
        .and_then(|(_, text)| cloud_reason(text))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ID: &str = "5f1d1d3c-3a8e-4a55-9a3c-1b2c3d4e5f60";

    #[test]
    fn the_newest_message_about_the_resource_is_the_reason() {
        let messages = vec![
            json!({"resource_uuid": ID, "created_at": "2026-12-04T10:00:00.000000", "user_message": "extend volume:old"}),
            json!({"resource_uuid": ID, "created_at": "2026-12-04T11:00:00.000000",
                   "user_message": "extend volume:Volume Driver failed to extend volume."}),
        ];
        assert_eq!(
            newest_reason(ID, &messages).as_deref(),
            Some("extend volume:Volume Driver failed to extend volume.")
        );
    }

    #[test]
    fn messages_about_other_resources_are_ignored() {
        let messages = vec![json!({"resource_uuid": "other", "created_at": "2026-12-04T11:00:00",
                                   "user_message": "create snapshot:Snapshot failed to create."})];
        assert_eq!(newest_reason(ID, &messages), None);
    }

    #[test]
    fn a_message_without_text_or_a_hostile_one_gives_no_or_a_clean_reason() {
        let messages = vec![
            json!({"resource_uuid": ID, "created_at": "2026-12-04T11:00:00", "user_message": null}),
            json!({"resource_uuid": ID, "created_at": "2026-12-04T10:00:00",
                   "user_message": "attach volume:rbd://admin:hunter2@ceph failed\nTraceback (most recent call last)"}),
        ];
        let reason = newest_reason(ID, &messages).unwrap();
        assert!(!reason.contains("hunter2") && !reason.contains("Traceback"), "{reason}");
    }
}
