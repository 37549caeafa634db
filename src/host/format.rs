//! Making and checking filesystems: the supported types, the mkfs options a volume's context
//! may carry, and the pre-mount check.

use std::collections::HashMap;
use std::path::Path;

use super::{Error, Result, command};

/// Volume context key: filesystem block size in bytes (ext4 `-b`, xfs `-b size=`).
pub const BLOCK_SIZE_KEY: &str = "blockSize";
/// Volume context key: inode size in bytes (ext4 `-I`, xfs `-i size=`).
pub const INODE_SIZE_KEY: &str = "inodeSize";
/// Volume context key: bytes per inode (ext4 `-i`), the inode density.
pub const BYTES_PER_INODE_KEY: &str = "bytesPerInode";
/// Volume context key: ext4 features, comma separated, e.g. `^has_journal,quota` (ext4 `-O`).
pub const EXT4_FEATURES_KEY: &str = "ext4Features";

pub use crate::contract::FsType;

impl From<crate::contract::fs::UnsupportedFs> for Error {
    fn from(error: crate::contract::fs::UnsupportedFs) -> Self {
        Error::InvalidArgument(error.to_string())
    }
}

/// mkfs tuning taken from the volume context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MkfsOptions {
    /// Filesystem block size in bytes.
    pub block_size: Option<u32>,
    /// Inode size in bytes.
    pub inode_size: Option<u32>,
    /// Bytes per inode (ext4 only).
    pub bytes_per_inode: Option<u32>,
    /// ext4 feature list (ext4 only).
    pub ext4_features: Option<String>,
}

impl MkfsOptions {
    /// Reads the options from a volume context; unknown keys are ignored, malformed values
    /// refused.
    pub fn from_context(context: &HashMap<String, String>) -> Result<Self> {
        let number = |key: &str| -> Result<Option<u32>> {
            context
                .get(key)
                .map(|v| {
                    v.trim().parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        Error::InvalidArgument(format!("volume context {key}={v:?} is not a positive number"))
                    })
                })
                .transpose()
        };
        let ext4_features = context.get(EXT4_FEATURES_KEY).map(|v| v.trim().to_string());
        if let Some(features) = &ext4_features
            && !features.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | ',' | '^'))
        {
            return Err(Error::InvalidArgument(format!(
                "volume context {EXT4_FEATURES_KEY}={features:?} must be a comma separated feature list"
            )));
        }
        Ok(Self {
            block_size: number(BLOCK_SIZE_KEY)?,
            inode_size: number(INODE_SIZE_KEY)?,
            bytes_per_inode: number(BYTES_PER_INODE_KEY)?,
            ext4_features: ext4_features.filter(|f| !f.is_empty()),
        })
    }

    /// The mkfs program and arguments that make `fs` on `device` with these options.
    pub fn mkfs_command(&self, fs: FsType, device: &str) -> Result<(String, Vec<String>)> {
        let unsupported = |key: &str| {
            Err(Error::InvalidArgument(format!("volume context {key} does not apply to {fs} filesystems")))
        };
        // No "force" flag: mkfs's own refusal to overwrite a signature is a second safety net.
        let mut args: Vec<String> = Vec::new();
        match fs {
            FsType::Ext4 | FsType::Ext3 => {
                args.push("-q".into());
                if let Some(n) = self.block_size {
                    args.extend(["-b".into(), n.to_string()]);
                }
                if let Some(n) = self.inode_size {
                    args.extend(["-I".into(), n.to_string()]);
                }
                if let Some(n) = self.bytes_per_inode {
                    args.extend(["-i".into(), n.to_string()]);
                }
                if let Some(features) = &self.ext4_features {
                    args.extend(["-O".into(), features.clone()]);
                }
            }
            FsType::Xfs => {
                if self.bytes_per_inode.is_some() {
                    return unsupported(BYTES_PER_INODE_KEY);
                }
                if self.ext4_features.is_some() {
                    return unsupported(EXT4_FEATURES_KEY);
                }
                args.push("-q".into());
                if let Some(n) = self.block_size {
                    args.extend(["-b".into(), format!("size={n}")]);
                }
                if let Some(n) = self.inode_size {
                    args.extend(["-i".into(), format!("size={n}")]);
                }
            }
            FsType::Btrfs => {
                for (value, key) in [
                    (self.block_size.is_some(), BLOCK_SIZE_KEY),
                    (self.inode_size.is_some(), INODE_SIZE_KEY),
                    (self.bytes_per_inode.is_some(), BYTES_PER_INODE_KEY),
                    (self.ext4_features.is_some(), EXT4_FEATURES_KEY),
                ] {
                    if value {
                        return unsupported(key);
                    }
                }
                args.push("-q".into());
            }
        }
        args.push(device.to_string());
        Ok((fs.mkfs().to_string(), args))
    }
}

/// Makes a `fs` filesystem on `device`.
pub async fn make_filesystem(device: &Path, fs: FsType, options: &MkfsOptions) -> Result<()> {
    let (program, args) = options.mkfs_command(fs, &device.to_string_lossy())?;
    tracing::info!(device = %device.display(), %fs, ?args, "formatting blank device");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    command::run(&program, &args).await.map(drop)
}

/// Checks an existing filesystem before it is mounted. ext4 gets a preen (`e2fsck -p`), which
/// fixes what is safe to fix and fails otherwise; xfs and btrfs check themselves at mount
/// (log replay), and their offline checkers would refuse a dirty log.
pub async fn check_filesystem(device: &Path, fs: FsType) -> Result<()> {
    if !fs.is_ext() {
        return Ok(());
    }
    let path = device.to_string_lossy();
    let args = ["-p", path.as_ref()];
    let out = command::output("e2fsck", &args).await?;
    // 0: clean, 1: errors corrected, 2: corrected, reboot advised (irrelevant for a data disk).
    match out.status.code() {
        Some(0..=2) => Ok(()),
        _ => Err(Error::Conflict(format!(
            "the ext4 filesystem on {} has errors e2fsck -p cannot repair: {}",
            device.display(),
            command::failure("e2fsck", &args, &out)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fs_types_parse_case_insensitively_and_default_to_ext4() {
        assert_eq!(FsType::from_request("").unwrap(), FsType::Ext4);
        assert_eq!(FsType::from_request("XFS").unwrap(), FsType::Xfs);
        assert_eq!(FsType::from_request("btrfs").unwrap(), FsType::Btrfs);
        assert!(matches!(FsType::from_request("ntfs").map_err(Error::from), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn ext4_options_become_mke2fs_flags() {
        let options = MkfsOptions::from_context(&context(&[
            (BLOCK_SIZE_KEY, "4096"),
            (INODE_SIZE_KEY, "512"),
            (BYTES_PER_INODE_KEY, "65536"),
            (EXT4_FEATURES_KEY, "^has_journal,quota"),
            ("unrelated", "x"),
        ]))
        .unwrap();
        let (program, args) = options.mkfs_command(FsType::Ext4, "/dev/vdb").unwrap();
        assert_eq!(program, "mkfs.ext4");
        assert_eq!(
            args,
            ["-q", "-b", "4096", "-I", "512", "-i", "65536", "-O", "^has_journal,quota", "/dev/vdb"]
        );
    }

    #[test]
    fn xfs_options_become_mkfs_xfs_flags_and_refuse_ext4_only_keys() {
        let options =
            MkfsOptions::from_context(&context(&[(BLOCK_SIZE_KEY, "4096"), (INODE_SIZE_KEY, "1024")]))
                .unwrap();
        let (_, args) = options.mkfs_command(FsType::Xfs, "/dev/vdb").unwrap();
        assert_eq!(args, ["-q", "-b", "size=4096", "-i", "size=1024", "/dev/vdb"]);
        let ext4_only = MkfsOptions::from_context(&context(&[(BYTES_PER_INODE_KEY, "8192")])).unwrap();
        assert!(matches!(ext4_only.mkfs_command(FsType::Xfs, "/dev/vdb"), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn btrfs_takes_no_tuning_options() {
        let none = MkfsOptions::default();
        assert_eq!(none.mkfs_command(FsType::Btrfs, "/dev/vdb").unwrap().1, ["-q", "/dev/vdb"]);
        let tuned = MkfsOptions::from_context(&context(&[(BLOCK_SIZE_KEY, "4096")])).unwrap();
        assert!(matches!(tuned.mkfs_command(FsType::Btrfs, "/dev/vdb"), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn malformed_context_values_are_refused() {
        for (key, value) in [
            (BLOCK_SIZE_KEY, "big"),
            (INODE_SIZE_KEY, "0"),
            (BYTES_PER_INODE_KEY, "-1"),
            (EXT4_FEATURES_KEY, "quota; rm -rf /"),
        ] {
            let error = MkfsOptions::from_context(&context(&[(key, value)])).unwrap_err();
            assert!(error.to_string().contains(key), "{error}");
        }
    }
}
