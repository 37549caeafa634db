//! Loop devices and by-id links for volumes attached to the server that is this host, so a
//! node plugin finds `virtio-<id prefix>` as it would on a KVM guest.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether this process may set up loop devices.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The by-id link name of a volume: `virtio-` and the first 20 characters of its id, as the
/// virtio-blk serial is truncated to 20 bytes.
pub fn link_name(volume_id: &str) -> String {
    let prefix: String = volume_id.chars().take(20).collect();
    format!("virtio-{prefix}")
}

/// The WWN the emulator gives a disk: a fixed vendor prefix and the first hex digits of its id.
pub fn wwn(volume_id: &str) -> String {
    let digits: String = volume_id.chars().filter(char::is_ascii_hexdigit).take(22).collect();
    format!("6888603000{digits}")
}

/// The by-id link name of an attached volume: `scsi-3<wwn>` for a SCSI (`hw:passthrough`)
/// disk, as udev names SCSI disks by their WWN, else the virtio serial name.
pub fn link_name_for(volume_id: &str, metadata: &crate::model::Metadata) -> String {
    let scsi = metadata.get("hw:passthrough").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if scsi { format!("scsi-3{}", wwn(volume_id)) } else { link_name(volume_id) }
}

/// Attaches `file` to a free loop device and returns the device path.
pub fn attach(file: &Path) -> io::Result<String> {
    let output = Command::new("losetup").arg("--find").arg("--show").arg(file).output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "losetup --find --show {}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Detaches a loop device.
pub fn detach(device: &str) -> io::Result<()> {
    run(Command::new("losetup").arg("-d").arg(device))
}

/// Makes the kernel re-read the size of the backing file (after an extend).
pub fn refresh(device: &str) -> io::Result<()> {
    run(Command::new("losetup").arg("-c").arg(device))
}

/// The file a loop device is backed by, if it is set up.
pub fn backing_file(device: &str) -> Option<PathBuf> {
    let name = Path::new(device).file_name()?.to_str()?;
    let text = std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file")).ok()?;
    Some(PathBuf::from(text.trim()))
}

/// Creates (or replaces) the by-id link `name` pointing at `device`.
pub fn link(dir: &Path, name: &str, device: &str) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(device, &path)?;
    Ok(path)
}

/// Removes a link if it is there.
pub fn unlink(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn run(command: &mut Command) -> io::Result<()> {
    let output = command.output()?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!("{command:?}: {}", String::from_utf8_lossy(&output.stderr).trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_names_follow_the_virtio_serial() {
        assert_eq!(link_name("0123456789abcdef0123456789"), "virtio-0123456789abcdef0123");
        assert_eq!(link_name("short"), "virtio-short");
    }

    #[test]
    fn scsi_disks_are_linked_by_wwn() {
        let mut metadata = crate::model::Metadata::new();
        let id = "0123abcd-0000-1111-2222-333344445555";
        assert_eq!(link_name_for(id, &metadata), link_name(id));
        metadata.insert("hw:passthrough".into(), "true".into());
        assert_eq!(link_name_for(id, &metadata), "scsi-368886030000123abcd00001111222233");
    }
}
