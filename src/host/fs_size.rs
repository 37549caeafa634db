//! How big a filesystem is, read from its superblock before it is mounted, so that staging can
//! tell a filesystem smaller than its device (the volume grew while no pod used it) and grow
//! it then, instead of leaving the work to an online resize that may be refused later.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::format::FsType;
use super::{Result, io_error};

/// A filesystem's size and how much smaller than its device it may stay after a full grow
/// (the tail the filesystem's own layout cannot use).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsSize {
    /// Bytes the filesystem spans.
    pub bytes: u64,
    /// Bytes of the device a fully grown filesystem may leave unused.
    pub slack: u64,
}

impl FsSize {
    /// True when the device has room the filesystem does not use yet.
    pub fn needs_growth(&self, device_bytes: u64) -> bool {
        device_bytes > self.bytes.saturating_add(self.slack)
    }
}

const MIB: u64 = 1 << 20;
const EXT_SUPERBLOCK: u64 = 1024;
const EXT_MAGIC: u16 = 0xEF53;
const EXT_INCOMPAT_64BIT: u32 = 0x80;
const BTRFS_SUPERBLOCK: u64 = 64 * 1024;

/// Reads the size of the `fs` filesystem on `device`; `None` when the superblock is not one
/// this reader understands (the device is then left as it is).
pub fn read(device: &Path, fs: FsType) -> Result<Option<FsSize>> {
    let file = std::fs::File::open(device).map_err(io_error("opening", device))?;
    let (offset, len) = match fs {
        FsType::Ext4 | FsType::Ext3 => (EXT_SUPERBLOCK, 1024),
        FsType::Xfs => (0, 512),
        FsType::Btrfs => (BTRFS_SUPERBLOCK, 4096),
    };
    let mut block = vec![0u8; len];
    file.read_exact_at(&mut block, offset).map_err(io_error("reading", device))?;
    Ok(match fs {
        FsType::Ext4 | FsType::Ext3 => ext(&block),
        FsType::Xfs => xfs(&block),
        FsType::Btrfs => btrfs(&block),
    })
}

fn le32(b: &[u8], at: usize) -> u64 {
    u64::from(u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")))
}

fn le16(b: &[u8], at: usize) -> u64 {
    u64::from(u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes")))
}

/// An ext2/3/4 superblock (the 1024 bytes at offset 1024).
pub fn ext(sb: &[u8]) -> Option<FsSize> {
    if sb.len() < 1024 || le16(sb, 56) != u64::from(EXT_MAGIC) {
        return None;
    }
    let log_block = le32(sb, 24);
    if log_block > 6 {
        return None;
    }
    let block = 1024u64 << log_block;
    let mut blocks = le32(sb, 4);
    if le32(sb, 96) as u32 & EXT_INCOMPAT_64BIT != 0 {
        blocks |= le32(sb, 0x150) << 32;
    }
    let inode_size = match le16(sb, 88) {
        0 => 128,
        n => n,
    };
    // resize2fs drops a last block group too small for its own metadata: the inode table,
    // bitmaps, and (in backup groups) the superblock with its reserved descriptor blocks.
    let metadata = le32(sb, 40) * inode_size + (le16(sb, 0xCE) + 128) * block;
    Some(FsSize { bytes: blocks.checked_mul(block)?, slack: metadata + MIB })
}

/// An XFS superblock (the first sector).
pub fn xfs(sb: &[u8]) -> Option<FsSize> {
    if sb.len() < 16 || &sb[0..4] != b"XFSB" {
        return None;
    }
    let block = u64::from(u32::from_be_bytes(sb[4..8].try_into().ok()?));
    let blocks = u64::from_be_bytes(sb[8..16].try_into().ok()?);
    // xfs_growfs adds no allocation group smaller than 64 blocks.
    Some(FsSize { bytes: blocks.checked_mul(block)?, slack: 64 * block + MIB })
}

/// A btrfs superblock (the 4096 bytes at 64 KiB).
pub fn btrfs(sb: &[u8]) -> Option<FsSize> {
    if sb.len() < 0x78 || &sb[0x40..0x48] != b"_BHRfS_M" {
        return None;
    }
    let bytes = u64::from_le_bytes(sb[0x70..0x78].try_into().ok()?);
    Some(FsSize { bytes, slack: MIB })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ext4_superblock_gives_blocks_times_block_size() {
        let mut sb = vec![0u8; 1024];
        sb[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb[4..8].copy_from_slice(&32768u32.to_le_bytes());
        sb[24..28].copy_from_slice(&2u32.to_le_bytes());
        let size = ext(&sb).unwrap();
        assert_eq!(size.bytes, 32768 * 4096);
        assert!(size.needs_growth(2 * size.bytes));
        assert!(!size.needs_growth(size.bytes + size.slack));
    }

    #[test]
    fn a_64bit_ext4_superblock_adds_the_high_block_count() {
        let mut sb = vec![0u8; 1024];
        sb[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        sb[96..100].copy_from_slice(&EXT_INCOMPAT_64BIT.to_le_bytes());
        sb[0x150..0x154].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(ext(&sb).unwrap().bytes, (1u64 << 32) * 1024);
    }

    #[test]
    fn foreign_or_hostile_superblocks_give_no_size() {
        assert_eq!(ext(&[0u8; 1024]), None);
        assert_eq!(ext(&[0u8; 10]), None);
        let mut huge = vec![0u8; 1024];
        huge[56..58].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        huge[24..28].copy_from_slice(&40u32.to_le_bytes());
        assert_eq!(ext(&huge), None, "an absurd block size is not trusted");
        assert_eq!(xfs(b"XFSA0000000000000000"), None);
        assert_eq!(btrfs(&[0u8; 4096]), None);
    }

    #[test]
    fn xfs_and_btrfs_superblocks_give_their_sizes() {
        let mut x = vec![0u8; 512];
        x[0..4].copy_from_slice(b"XFSB");
        x[4..8].copy_from_slice(&4096u32.to_be_bytes());
        x[8..16].copy_from_slice(&81920u64.to_be_bytes());
        assert_eq!(xfs(&x).unwrap().bytes, 320 * MIB);
        let mut b = vec![0u8; 4096];
        b[0x40..0x48].copy_from_slice(b"_BHRfS_M");
        b[0x70..0x78].copy_from_slice(&(128 * MIB).to_le_bytes());
        assert_eq!(btrfs(&b).unwrap().bytes, 128 * MIB);
    }
}
