//! Keys of the volume context: what CreateVolume tells the CO to hand back at stage. The
//! publish context is [`crate::contract::PublishContext`].

/// Volume context: filesystem to format with (from the `fsType` parameter).
pub const FS_TYPE: &str = "fsType";
/// Volume context: "true" when the volume is bigger than the snapshot or volume it was made
/// from, so the node grows the filesystem at stage.
pub const GROW_FS: &str = "growFs";
/// Volume context: the cloud volume id (the CSI volume id may carry a cloud prefix).
pub const CLOUD_VOLUME_ID: &str = "cloudVolumeId";
