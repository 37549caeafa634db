//! The bytes a chaos run writes: seeded patterns in slots of a volume (a file per slot on a
//! filesystem, a 1 MiB region per slot on a raw block device), and their read-back check.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Slots per volume; a raw block slot is 1 MiB at offset `slot` MiB.
pub const SLOTS: u64 = 16;
const SLOT_BYTES: u64 = 1 << 20;

/// One pattern written to a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The pattern's seed.
    pub seed: u64,
    /// Its length in bytes.
    pub len: usize,
    /// FNV-1a of the bytes, recorded when written.
    pub checksum: u64,
}

/// What a volume is expected to hold: slot -> the last chunk written there.
pub type Contents = BTreeMap<u64, Chunk>;

/// The seeded pattern of `len` bytes.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        bytes.extend_from_slice(&super::splitmix(&mut state).to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// FNV-1a.
pub fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

fn file_of(target: &Path, slot: u64) -> PathBuf {
    target.join(format!("slot-{slot}.bin"))
}

/// Writes `chunk` to `slot` through the published `target` and syncs it to the device.
pub fn write(target: &Path, block: bool, slot: u64, seed: u64, len: usize) -> Chunk {
    let bytes = pattern(seed, len);
    if block {
        let device = std::fs::OpenOptions::new().write(true).open(target).unwrap();
        device.write_all_at(&bytes, slot * SLOT_BYTES).unwrap();
        device.sync_all().unwrap();
    } else {
        let path = file_of(target, slot);
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(&bytes).unwrap();
        file.sync_all().unwrap();
        // The directory entry must reach the device too, or a snapshot could miss the file.
        std::fs::File::open(target).unwrap().sync_all().unwrap();
    }
    Chunk { seed, len, checksum: checksum(&bytes) }
}

/// The slots whose bytes read back through `target` differ from `expected`, described.
pub fn differences(target: &Path, block: bool, expected: &Contents) -> Vec<String> {
    let mut wrong = Vec::new();
    for (slot, chunk) in expected {
        let read = if block {
            let device = std::fs::File::open(target).unwrap();
            let mut bytes = vec![0; chunk.len];
            device.read_exact_at(&mut bytes, slot * SLOT_BYTES).map(|()| bytes)
        } else {
            std::fs::read(file_of(target, *slot))
        };
        match read {
            Ok(bytes) if checksum(&bytes) == chunk.checksum && bytes.len() == chunk.len => {}
            Ok(bytes) => wrong.push(format!(
                "slot {slot}: {} bytes with checksum {:016x}, expected {} bytes with {:016x}",
                bytes.len(),
                checksum(&bytes),
                chunk.len,
                chunk.checksum
            )),
            Err(e) => wrong.push(format!("slot {slot}: {e}")),
        }
    }
    wrong
}

/// Total capacity the published `target` shows: the device size (block) or the
/// filesystem's size (statvfs).
pub fn capacity(target: &Path, block: bool) -> u64 {
    if block {
        let out = std::process::Command::new("blockdev")
            .args(["--getsize64", target.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    } else {
        let stat = nix::sys::statvfs::statvfs(target).unwrap();
        stat.blocks() * stat.fragment_size()
    }
}
