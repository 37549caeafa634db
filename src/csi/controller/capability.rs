//! Volume capabilities: which access types and modes this driver can honour, for which volume.

use crate::contract::FsType;
use crate::csi::pb::volume_capability::access_mode::Mode;
use crate::csi::pb::volume_capability::{AccessType, MountVolume};
use crate::csi::pb::{VolumeCapability, volume_capability};
use crate::csi::status::CsiError;

/// Checks that a capability is well formed and possible for a volume that is (or will be)
/// multi-attach capable or not.
pub fn check(capability: &VolumeCapability, multiattach: bool) -> Result<(), CsiError> {
    let access_type = capability.access_type.as_ref().ok_or_else(|| {
        CsiError::InvalidArgument("volume capability needs an access type (block or mount)".into())
    })?;
    let mode = capability
        .access_mode
        .as_ref()
        .map(|m| Mode::try_from(m.mode).unwrap_or(Mode::Unknown))
        .ok_or_else(|| CsiError::InvalidArgument("volume capability needs an access mode".into()))?;
    if let AccessType::Mount(MountVolume { fs_type, .. }) = access_type {
        // The one table of filesystems the node also stages with.
        FsType::from_request(fs_type).map_err(|e| CsiError::InvalidArgument(e.to_string()))?;
    }
    match mode {
        Mode::Unknown => Err(CsiError::InvalidArgument("access mode must be set".into())),
        Mode::SingleNodeWriter
        | Mode::SingleNodeReaderOnly
        | Mode::SingleNodeSingleWriter
        | Mode::SingleNodeMultiWriter => Ok(()),
        Mode::MultiNodeReaderOnly | Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter => {
            if !matches!(access_type, AccessType::Block(_)) {
                Err(CsiError::InvalidArgument(format!(
                    "access mode {} needs a raw block volume: a filesystem cannot be mounted on several nodes safely",
                    mode.as_str_name()
                )))
            } else if !multiattach {
                Err(CsiError::InvalidArgument(format!(
                    "access mode {} needs a multi-attach volume (parameter multiattach=true, or a multiattach volume type)",
                    mode.as_str_name()
                )))
            } else {
                Ok(())
            }
        }
    }
}

/// Checks a whole list, which must not be empty.
pub fn check_all(capabilities: &[VolumeCapability], multiattach: bool) -> Result<(), CsiError> {
    if capabilities.is_empty() {
        return Err(CsiError::InvalidArgument("volume_capabilities must not be empty".into()));
    }
    capabilities.iter().try_for_each(|c| check(c, multiattach))
}

/// True when the capability is raw block.
pub fn is_block(capability: &VolumeCapability) -> bool {
    matches!(capability.access_type, Some(volume_capability::AccessType::Block(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::pb::volume_capability::{AccessMode, BlockVolume};

    fn cap(block: bool, mode: Mode) -> VolumeCapability {
        VolumeCapability {
            access_type: Some(if block {
                AccessType::Block(BlockVolume {})
            } else {
                AccessType::Mount(MountVolume { fs_type: "ext4".into(), ..Default::default() })
            }),
            access_mode: Some(AccessMode { mode: mode as i32 }),
        }
    }

    #[test]
    fn single_node_modes_are_accepted_for_both_access_types() {
        for mode in [
            Mode::SingleNodeWriter,
            Mode::SingleNodeReaderOnly,
            Mode::SingleNodeSingleWriter,
            Mode::SingleNodeMultiWriter,
        ] {
            assert!(check(&cap(false, mode), false).is_ok());
            assert!(check(&cap(true, mode), false).is_ok());
        }
    }

    #[test]
    fn multi_node_modes_need_block_and_multiattach() {
        assert!(check(&cap(true, Mode::MultiNodeMultiWriter), true).is_ok());
        let err = check(&cap(false, Mode::MultiNodeMultiWriter), true).unwrap_err();
        assert!(err.to_string().contains("raw block"), "{err}");
        let err = check(&cap(true, Mode::MultiNodeReaderOnly), false).unwrap_err();
        assert!(err.to_string().contains("multi-attach"), "{err}");
    }

    #[test]
    fn malformed_capabilities_are_invalid_arguments() {
        let no_type = VolumeCapability { access_type: None, access_mode: Some(AccessMode { mode: 1 }) };
        assert_eq!(check(&no_type, false).unwrap_err().code(), tonic::Code::InvalidArgument);
        let no_mode = VolumeCapability { access_mode: None, ..cap(false, Mode::SingleNodeWriter) };
        assert_eq!(check(&no_mode, false).unwrap_err().code(), tonic::Code::InvalidArgument);
        assert!(check(&cap(false, Mode::Unknown), false).is_err());
        assert!(check_all(&[], false).is_err());
        let ntfs = VolumeCapability {
            access_type: Some(AccessType::Mount(MountVolume {
                fs_type: "ntfs".into(),
                ..Default::default()
            })),
            access_mode: Some(AccessMode { mode: 1 }),
        };
        assert!(check(&ntfs, false).is_err());
    }
}
