//! Is this device blank? A low-level `blkid -p` probe (filesystems, RAID, LUKS, partition
//! tables), double-checked by looking for MBR and GPT signatures at both ends ourselves,
//! because formatting a device that holds data is the one mistake that cannot be undone.
//! Both looks run at once: the double check costs no time on the staging path.

use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{Result, command, io_error};

/// What a device holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signature {
    /// No signature of any kind: safe to format.
    Blank,
    /// A filesystem of this type (blkid's name: `ext4`, `xfs`, `btrfs`, ...).
    Filesystem(String),
    /// Anything else: a partition table, RAID or LVM member, encrypted container, swap, or a
    /// signature blkid found ambiguous.
    Other(String),
}

/// The span read at each end of the device: enough for a GPT header at LBA 1 (or the last LBA)
/// with 4096-byte sectors, and the MBR signature. Reading more would only slow staging down.
const EDGE: u64 = 2 * 4096;
/// The sector sizes a GPT header may be laid out for.
const SECTOR_SIZES: [u64; 2] = [512, 4096];

/// Probes `device` for any signature.
pub async fn probe(device: &Path) -> Result<Signature> {
    let path = device.to_string_lossy();
    let args = ["-p", "-o", "export", path.as_ref()];
    let edges = {
        let device = device.to_path_buf();
        tokio::task::spawn_blocking(move || partition_table_signature(&device))
    };
    let (out, edges) = tokio::join!(command::output("blkid", &args), edges);
    let out = out?;
    match out.status.code() {
        Some(0) => {
            let found = parse_export(&String::from_utf8_lossy(&out.stdout));
            if found != Signature::Blank {
                return Ok(found);
            }
            // blkid said "found" but named nothing we understand: not blank.
            Ok(Signature::Other("an unnamed signature".into()))
        }
        Some(2) => {
            edges.expect("probe task panicked").map(|found| found.map_or(Signature::Blank, Signature::Other))
        }
        // blkid's "ambivalent probing result": more than one signature.
        Some(8) => Ok(Signature::Other("several conflicting signatures".into())),
        _ => Err(command::failure("blkid", &args, &out)),
    }
}

/// Reads the `KEY=value` lines of `blkid -o export`.
fn parse_export(text: &str) -> Signature {
    let value = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).map(str::to_string)
    };
    if let Some(table) = value("PTTYPE") {
        return Signature::Other(format!("a {table} partition table"));
    }
    match (value("TYPE"), value("USAGE")) {
        (Some(fs), Some(usage)) if usage == "filesystem" => Signature::Filesystem(fs),
        (Some(fs), None) => Signature::Filesystem(fs),
        (Some(other), Some(usage)) => Signature::Other(format!("{other} ({usage})")),
        (None, _) => Signature::Blank,
    }
}

/// Looks for an MBR boot signature or a GPT header (primary or backup) in the edges of the
/// device; returns what it found.
pub fn partition_table_signature(device: &Path) -> Result<Option<String>> {
    let file = std::fs::File::open(device).map_err(io_error("opening", device))?;
    let size = device_size(&file, device)?;
    let head_len = EDGE.min(size);
    let mut head = vec![0u8; head_len as usize];
    file.read_exact_at(&mut head, 0).map_err(io_error("reading", device))?;
    let tail_start = size.saturating_sub(EDGE);
    let mut tail = vec![0u8; (size - tail_start) as usize];
    file.read_exact_at(&mut tail, tail_start).map_err(io_error("reading", device))?;
    Ok(scan_edges(&head, &tail))
}

/// The partition-table signature in the head and tail bytes of a device, if any.
pub fn scan_edges(head: &[u8], tail: &[u8]) -> Option<String> {
    let gpt_at = |bytes: &[u8], offset: u64| {
        let offset = offset as usize;
        bytes.get(offset..offset + 8) == Some(b"EFI PART".as_slice())
    };
    if SECTOR_SIZES.iter().any(|sector| gpt_at(head, *sector)) {
        return Some("a GPT partition table header".into());
    }
    if SECTOR_SIZES
        .iter()
        .any(|sector| tail.len() as u64 >= *sector && gpt_at(tail, tail.len() as u64 - sector))
    {
        return Some("a backup GPT partition table header".into());
    }
    if head.get(510..512) == Some([0x55, 0xAA].as_slice()) {
        return Some("an MBR boot signature".into());
    }
    None
}

fn device_size(file: &std::fs::File, device: &Path) -> Result<u64> {
    use std::io::{Seek, SeekFrom};
    // Seeking to the end gives the size of block devices and regular files alike.
    let mut file = file;
    file.seek(SeekFrom::End(0)).map_err(io_error("measuring", device))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blkid_export_names_filesystems_and_other_signatures() {
        assert_eq!(
            parse_export("DEVNAME=/dev/loop0\nUUID=x\nTYPE=ext4\nUSAGE=filesystem\n"),
            Signature::Filesystem("ext4".into())
        );
        assert_eq!(
            parse_export("DEVNAME=/dev/loop0\nTYPE=LVM2_member\nUSAGE=raid\n"),
            Signature::Other("LVM2_member (raid)".into())
        );
        assert_eq!(
            parse_export("DEVNAME=/dev/loop0\nPTUUID=1\nPTTYPE=gpt\n"),
            Signature::Other("a gpt partition table".into())
        );
        assert_eq!(parse_export("DEVNAME=/dev/loop0\n"), Signature::Blank);
    }

    #[test]
    fn zeroed_edges_have_no_partition_table() {
        assert_eq!(scan_edges(&[0; 8192], &[0; 8192]), None);
    }

    #[test]
    fn gpt_headers_are_found_at_either_end_and_either_sector_size() {
        for sector in [512usize, 4096] {
            let mut head = vec![0u8; 8192];
            head[sector..sector + 8].copy_from_slice(b"EFI PART");
            assert!(scan_edges(&head, &[0; 8192]).unwrap().contains("GPT"));
            let mut tail = vec![0u8; 8192];
            tail[8192 - sector..8192 - sector + 8].copy_from_slice(b"EFI PART");
            assert!(scan_edges(&[0; 8192], &tail).unwrap().contains("backup GPT"));
        }
    }

    #[test]
    fn an_mbr_boot_signature_is_found() {
        let mut head = vec![0u8; 1024];
        head[510] = 0x55;
        head[511] = 0xAA;
        assert!(scan_edges(&head, &[]).unwrap().contains("MBR"));
    }
}
