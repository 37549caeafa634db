//! Block device ioctls: size, and the kernel's read-only flag (a read-only bind mount does not
//! stop writes through a device node, the device's own flag does).

use std::os::fd::AsRawFd;
use std::path::Path;

use nix::libc::c_int;

use super::{Result, errno_error, io_error};

/// The three ioctls this module issues, as nix generates them (undocumented functions).
#[allow(missing_docs)]
mod ioctl {
    use nix::libc::c_int;

    nix::ioctl_read!(blkgetsize64, 0x12, 114, u64);
    nix::ioctl_write_ptr_bad!(blkroset, nix::request_code_none!(0x12, 93), c_int);
    nix::ioctl_read_bad!(blkroget, nix::request_code_none!(0x12, 94), c_int);
}
use ioctl::{blkgetsize64, blkroget, blkroset};

/// Size in bytes of the block device at `path` (a device node or a bind of one).
pub fn size(path: &Path) -> Result<u64> {
    let file = std::fs::File::open(path).map_err(io_error("opening", path))?;
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which outlives the call.
    unsafe { blkgetsize64(file.as_raw_fd(), &mut size) }.map_err(errno_error("measuring", path))?;
    Ok(size)
}

/// True when the kernel refuses writes to the device.
pub fn is_readonly(path: &Path) -> Result<bool> {
    let file = std::fs::File::open(path).map_err(io_error("opening", path))?;
    let mut flag: c_int = 0;
    // SAFETY: BLKROGET writes one int through the pointer, which outlives the call.
    unsafe { blkroget(file.as_raw_fd(), &mut flag) }
        .map_err(errno_error("reading read-only flag of", path))?;
    Ok(flag != 0)
}

/// Sets or clears the kernel's read-only flag of the device.
pub fn set_readonly(path: &Path, readonly: bool) -> Result<()> {
    let file = std::fs::File::open(path).map_err(io_error("opening", path))?;
    let flag: c_int = readonly.into();
    // SAFETY: BLKROSET reads one int through the pointer, which outlives the call.
    unsafe { blkroset(file.as_raw_fd(), &flag) }.map_err(errno_error("setting read-only flag of", path))?;
    Ok(())
}
