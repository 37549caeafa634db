//! The one table of filesystems this driver supports: what the controller accepts in a
//! StorageClass or capability, and what the node formats, checks, mounts and grows.
//!
//! Adding a filesystem here makes it valid everywhere at once; there is no second list.

use std::fmt;
use std::str::FromStr;

/// A filesystem the driver formats and mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FsType {
    /// ext4, the default.
    Ext4,
    /// ext3 (mounted by the kernel's ext4 driver; checked and grown by e2fsprogs).
    Ext3,
    /// XFS.
    Xfs,
    /// Btrfs.
    Btrfs,
}

/// A `fs_type` / `fsType` value that names no supported filesystem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filesystem type {quoted} is not supported; use one of {}", FsType::names().join(", "))]
pub struct UnsupportedFs {
    /// The value, quoted and cut short.
    pub quoted: String,
}

/// How a filesystem grows to fill a larger device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// Grown before it is mounted (after a full check); needs no CAP_SYS_RESOURCE and races
    /// with no writer. Online growth of a mounted one is also possible.
    OfflineFirst,
    /// Grown only while mounted.
    OnlineOnly,
}

impl FsType {
    /// Every supported filesystem, the default first.
    pub const ALL: [FsType; 4] = [Self::Ext4, Self::Ext3, Self::Xfs, Self::Btrfs];

    /// The name blkid, mkfs, mount(2) and the CSI `fs_type` use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ext4 => "ext4",
            Self::Ext3 => "ext3",
            Self::Xfs => "xfs",
            Self::Btrfs => "btrfs",
        }
    }

    /// The names of every supported filesystem, for messages.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|fs| fs.name()).collect()
    }

    /// The filesystem for a capability's `fs_type` or a `fsType` parameter; empty means the
    /// default, ext4. Case is folded.
    pub fn from_request(fs_type: &str) -> Result<Self, UnsupportedFs> {
        if fs_type.is_empty() { Ok(Self::Ext4) } else { fs_type.parse() }
    }

    /// The mkfs program.
    pub fn mkfs(self) -> &'static str {
        match self {
            Self::Ext4 => "mkfs.ext4",
            Self::Ext3 => "mkfs.ext3",
            Self::Xfs => "mkfs.xfs",
            Self::Btrfs => "mkfs.btrfs",
        }
    }

    /// True for the ext family, which shares e2fsprogs options, checks and growth.
    pub fn is_ext(self) -> bool {
        matches!(self, Self::Ext4 | Self::Ext3)
    }

    /// How this filesystem grows to fill its device.
    pub fn growth(self) -> Growth {
        if self.is_ext() { Growth::OfflineFirst } else { Growth::OnlineOnly }
    }

    /// Options every mount of this filesystem gets: xfs refuses a second filesystem with the
    /// same UUID, which every clone or restored snapshot has, so it mounts with `nouuid`.
    pub fn implied_mount_options(self) -> &'static [&'static str] {
        match self {
            Self::Xfs => &["nouuid"],
            Self::Ext4 | Self::Ext3 | Self::Btrfs => &[],
        }
    }
}

impl FromStr for FsType {
    type Err = UnsupportedFs;

    fn from_str(s: &str) -> Result<Self, UnsupportedFs> {
        Self::ALL
            .into_iter()
            .find(|fs| fs.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnsupportedFs { quoted: super::ids::quote(s) })
    }
}

impl fmt::Display for FsType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_filesystem_in_any_case() {
        for fs in FsType::ALL {
            assert_eq!(fs.name().parse::<FsType>().unwrap(), fs);
            assert_eq!(fs.name().to_uppercase().parse::<FsType>().unwrap(), fs);
        }
    }

    #[test]
    fn an_empty_fs_type_is_ext4() {
        assert_eq!(FsType::from_request("").unwrap(), FsType::Ext4);
    }

    #[test]
    fn unknown_or_padded_names_are_refused_and_quoted_short() {
        for bad in ["ntfs", "ext2", " ext4", "ext4\0", "xfs,ro", "vfat"] {
            assert!(FsType::from_request(bad).is_err(), "{bad:?}");
        }
        let error = FsType::from_request(&"z".repeat(5000)).unwrap_err().to_string();
        assert!(error.len() < 300 && error.contains("ext4, ext3, xfs, btrfs"), "{error}");
    }

    #[test]
    fn only_the_ext_family_grows_offline() {
        assert_eq!(FsType::Ext4.growth(), Growth::OfflineFirst);
        assert_eq!(FsType::Ext3.growth(), Growth::OfflineFirst);
        assert_eq!(FsType::Xfs.growth(), Growth::OnlineOnly);
        assert_eq!(FsType::Btrfs.growth(), Growth::OnlineOnly);
    }
}
