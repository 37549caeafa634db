//! Volume files: sparse creation, growth, and copies that keep holes (reflink when the
//! filesystem can, else only the data ranges found with SEEK_DATA/SEEK_HOLE).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{Whence, lseek};

/// One GiB in bytes.
pub const GIB: u64 = 1 << 30;

mod ioctl {
    // FICLONE = _IOW(0x94, 9, int): share all blocks of the source file (btrfs, xfs, ...). A
    // module of its own because the macro's public function takes no doc comment.
    nix::ioctl_write_int!(ficlone, 0x94, 9);
}
use ioctl::ficlone;

/// Creates (or truncates) a sparse file of `gib` GiB.
pub fn create(path: &Path, gib: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).open(path)?;
    file.set_len(gib * GIB)?;
    file.sync_all()
}

/// Grows (never shrinks) a file to `gib` GiB.
pub fn grow(path: &Path, gib: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    if file.metadata()?.len() < gib * GIB {
        file.set_len(gib * GIB)?;
    }
    file.sync_all()
}

/// Copies `src` to `dst`, then sizes `dst` to at least `gib` GiB; holes stay holes.
pub fn copy(src: &Path, dst: &Path, gib: u64) -> io::Result<()> {
    let input = File::open(src)?;
    let output = OpenOptions::new().write(true).create(true).truncate(true).open(dst)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE reads no memory.
    let cloned = unsafe { ficlone(output.as_raw_fd(), input.as_raw_fd() as _) }.is_ok();
    if !cloned {
        copy_data_ranges(&input, &output)?;
    }
    if output.metadata()?.len() < gib * GIB {
        output.set_len(gib * GIB)?;
    }
    output.sync_all()
}

fn copy_data_ranges(input: &File, output: &File) -> io::Result<()> {
    let len = input.metadata()?.len();
    output.set_len(len)?;
    let mut offset = 0u64;
    while offset < len {
        let start = match lseek(input, offset as i64, Whence::SeekData) {
            Ok(start) => start as u64,
            Err(Errno::ENXIO) => break,
            // No SEEK_DATA support: treat the rest as data.
            Err(Errno::EINVAL) => offset,
            Err(e) => return Err(e.into()),
        };
        let end = match lseek(input, start as i64, Whence::SeekHole) {
            Ok(end) => end as u64,
            Err(Errno::EINVAL) => len,
            Err(e) => return Err(e.into()),
        };
        copy_range(input, output, start, end.min(len))?;
        offset = end.max(start + 1);
    }
    Ok(())
}

fn copy_range(input: &File, output: &File, start: u64, end: u64) -> io::Result<()> {
    let mut buffer = vec![0u8; 1 << 20];
    let mut at = start;
    while at < end {
        let want = ((end - at) as usize).min(buffer.len());
        let read = input.read_at(&mut buffer[..want], at)?;
        if read == 0 {
            break;
        }
        output.write_all_at(&buffer[..read], at)?;
        at += read as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
        create(&src, 1).unwrap();
        let file = OpenOptions::new().write(true).open(&src).unwrap();
        file.write_all_at(b"head", 0).unwrap();
        file.write_all_at(b"tail", GIB - 4).unwrap();
        drop(file);
        copy(&src, &dst, 2).unwrap();
        let out = File::open(&dst).unwrap();
        let mut buf = [0u8; 4];
        out.read_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"head");
        out.read_at(&mut buf, GIB - 4).unwrap();
        assert_eq!(&buf, b"tail");
        let meta = out.metadata().unwrap();
        assert_eq!(meta.len(), 2 * GIB);
        assert!(meta.blocks() * 512 < 64 << 20, "the copy is not sparse: {} blocks", meta.blocks());
    }

    #[test]
    fn grow_never_shrinks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        create(&path, 2).unwrap();
        grow(&path, 1).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GIB);
        grow(&path, 3).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * GIB);
    }
}
