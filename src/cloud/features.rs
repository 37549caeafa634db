//! What a cloud can do beyond the operations every cloud has, so that the controller
//! advertises to the CO only what the configured clouds can serve.

/// Optional features of one cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// A volume can be created as a copy of another volume.
    pub clone_volume: bool,
    /// Several volumes can be snapshotted at one instant (group snapshots).
    pub group_snapshots: bool,
}

impl Features {
    /// Everything this driver knows how to use.
    pub const ALL: Self = Self { clone_volume: true, group_snapshots: true };
}
