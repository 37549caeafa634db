//! What a volume was published to a node with, kept in the volume's own metadata so that it
//! survives a controller restart: a ControllerPublishVolume of a volume already published to
//! that node with another capability or readonly flag is ALREADY_EXISTS, as the spec says.
//!
//! The record is consulted only while the cloud lists the attachment to that node, so a stale
//! record (an unpublish whose clean-up failed) never blocks a later publish; an attachment
//! without a record (made before records existed) accepts any capability and gains one.

use std::sync::Arc;

use super::ControllerService;
use crate::cloud::types::Volume;
use crate::cloud::{Backend, CloudError};
use crate::csi::pb::{self, volume_capability::AccessType};
use crate::csi::status::CsiError;

use crate::contract::ownership::published_key as key;

/// A capability and readonly flag as the record stores them: what makes two publishes the
/// same for the spec (access mode, block or mount with its filesystem, readonly), not the
/// mount flags, which the node applies per target.
pub(super) fn describe(capability: &pb::VolumeCapability, readonly: bool) -> String {
    let mode = capability
        .access_mode
        .as_ref()
        .and_then(|m| pb::volume_capability::access_mode::Mode::try_from(m.mode).ok())
        .map_or("UNKNOWN", |m| m.as_str_name());
    let access = match &capability.access_type {
        Some(AccessType::Block(_)) => "block".to_string(),
        Some(AccessType::Mount(m)) => format!("mount:{}", m.fs_type.to_ascii_lowercase()),
        None => "none".to_string(),
    };
    format!("{};{mode};{access}", if readonly { "ro" } else { "rw" })
}

impl ControllerService {
    /// ALREADY_EXISTS when the volume is attached to `node` under a record that differs.
    pub(super) fn check_publish_matches(
        &self,
        volume: &Volume,
        node: &str,
        wanted: &str,
    ) -> Result<(), CsiError> {
        let attached_here = volume.attachments.iter().any(|a| a.server_id == node);
        match volume.metadata.get(&key(node)).filter(|r| !r.is_empty()) {
            Some(recorded) if attached_here && recorded != wanted => Err(CsiError::AlreadyExists(format!(
                "volume {} is already published to node {node} as {recorded}, not {wanted}; unpublish it first",
                volume.id
            ))),
            _ => Ok(()),
        }
    }

    /// Records what the volume is now published to `node` with, unless that is recorded.
    pub(super) async fn record_publish(
        &self,
        backend: &Arc<dyn Backend>,
        volume: &Volume,
        node: &str,
        wanted: &str,
    ) -> Result<(), CsiError> {
        if volume.metadata.get(&key(node)).is_some_and(|r| r == wanted) {
            return Ok(());
        }
        match backend
            .set_volume_metadata(&super::issued("volume", &volume.id)?, &volume.metadata, &key(node), wanted)
            .await
        {
            // A cloud that cannot keep the record cannot tell publishes apart either.
            Ok(()) | Err(CloudError::Unsupported(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Clears `node`'s record after a detach; a failure only leaves a record that is ignored
    /// while the volume is not attached there.
    pub(super) async fn forget_publish(&self, backend: &Arc<dyn Backend>, volume: &Volume, node: &str) {
        if volume.metadata.get(&key(node)).is_none_or(|r| r.is_empty()) {
            return;
        }
        let Ok(id) = super::issued("volume", &volume.id) else { return };
        if let Err(e) = backend.set_volume_metadata(&id, &volume.metadata, &key(node), "").await {
            tracing::warn!(volume = %volume.id, node, error = %e, "could not clear the publish record");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::types::VolumeAttachment;
    use crate::csi::pb::volume_capability::access_mode::Mode;
    use crate::csi::pb::volume_capability::{AccessMode, BlockVolume, MountVolume};

    fn mount(mode: Mode, fs: &str, flags: &[&str]) -> pb::VolumeCapability {
        pb::VolumeCapability {
            access_type: Some(AccessType::Mount(MountVolume {
                fs_type: fs.into(),
                mount_flags: flags.iter().map(|f| f.to_string()).collect(),
                ..Default::default()
            })),
            access_mode: Some(AccessMode { mode: mode as i32 }),
        }
    }

    #[test]
    fn readonly_mode_access_type_and_filesystem_tell_publishes_apart_but_mount_flags_do_not() {
        let base = describe(&mount(Mode::SingleNodeWriter, "ext4", &[]), false);
        assert_eq!(base, describe(&mount(Mode::SingleNodeWriter, "EXT4", &["noatime"]), false));
        assert_ne!(base, describe(&mount(Mode::SingleNodeWriter, "ext4", &[]), true));
        assert_ne!(base, describe(&mount(Mode::SingleNodeReaderOnly, "ext4", &[]), false));
        assert_ne!(base, describe(&mount(Mode::SingleNodeWriter, "xfs", &[]), false));
        let block = pb::VolumeCapability {
            access_type: Some(AccessType::Block(BlockVolume {})),
            access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter as i32 }),
        };
        assert_ne!(base, describe(&block, false));
    }

    fn service() -> ControllerService {
        let backend: Arc<dyn Backend> = Arc::new(crate::cloud::fake::FakeBackend::default());
        ControllerService::new(
            super::super::Clouds::new(
                "d".into(),
                std::collections::BTreeMap::from([("d".to_string(), backend)]),
            ),
            super::super::ControllerSettings::new("csi.example.io".into(), "c".into()),
            crate::csi::observe::Observer::new(crate::telemetry::metrics::Metrics::new()),
        )
    }

    #[test]
    fn a_record_counts_only_while_the_volume_is_attached_to_that_node() {
        let mut volume = crate::cloud::fake::volume("v", "pvc", 1);
        volume.metadata.insert(key("node-a"), "rw;SINGLE_NODE_WRITER;block".into());
        let other = "ro;SINGLE_NODE_WRITER;block";
        assert!(service().check_publish_matches(&volume, "node-a", other).is_ok(), "detached: stale record");
        volume.attachments.push(VolumeAttachment { server_id: "node-a".into(), device: None });
        let refused = service().check_publish_matches(&volume, "node-a", other).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::AlreadyExists);
        assert!(service().check_publish_matches(&volume, "node-a", "rw;SINGLE_NODE_WRITER;block").is_ok());
        assert!(service().check_publish_matches(&volume, "node-b", other).is_ok(), "another node's record");
    }
}
