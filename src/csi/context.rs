//! Keys of the volume context and publish context: the contract between the controller,
//! which writes them, and the node, which reads them.

/// Volume context: filesystem to format with (from the `fsType` parameter).
pub const FS_TYPE: &str = "fsType";
/// Volume context: "true" when the volume is bigger than the snapshot or volume it was made
/// from, so the node grows the filesystem at stage.
pub const GROW_FS: &str = "growFs";
/// Volume context: the cloud volume id (the CSI volume id may carry a cloud prefix).
pub const CLOUD_VOLUME_ID: &str = "cloudVolumeId";

/// Publish context: the device path the cloud reported; a hint, never trusted alone.
pub const DEVICE_PATH: &str = "devicePath";
/// Publish context: the cloud volume id the node must find and verify.
pub const VOLUME_ID: &str = "volumeId";
/// Publish context: "true" when the attachment is read-only.
pub const READONLY: &str = "readonly";
