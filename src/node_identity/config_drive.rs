//! The OpenStack config drive: a small filesystem labelled `config-2` that carries the same
//! metadata document as the metadata service, mounted read-only for the moment of reading.

use std::path::{Path, PathBuf};

use super::{Error, Result, metadata};

/// The filesystem label of an OpenStack config drive.
pub const LABEL: &str = "config-2";
/// Where the document sits inside the config drive.
const DOCUMENT: &str = "openstack/latest/meta_data.json";

/// The config drive's device, found by its label.
pub async fn find() -> Option<PathBuf> {
    for label in [LABEL, "CONFIG-2"] {
        let link = Path::new("/dev/disk/by-label").join(label);
        if link.exists() {
            return Some(link);
        }
    }
    let label = format!("LABEL={LABEL}");
    let out = crate::host::command::output("blkid", &["-l", "-o", "device", "-t", &label]).await.ok()?;
    let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !device.is_empty()).then(|| PathBuf::from(device))
}

/// Reads the document from the config drive on `device`, mounted read-only for the moment.
pub async fn read(device: &Path) -> Result<metadata::MetaData> {
    let path = device.to_string_lossy();
    let out = crate::host::command::run("blkid", &["-p", "-o", "value", "-s", "TYPE", path.as_ref()]).await?;
    let fs_type = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dir =
        std::env::temp_dir().join(format!("cinder-evs-csi-config-drive-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).map_err(crate::host::io_error("creating", &dir))?;
    let flags =
        nix::mount::MsFlags::MS_RDONLY | nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
    let mounted = nix::mount::mount(Some(device), &dir, Some(fs_type.as_str()), flags, None::<&str>)
        .map_err(crate::host::errno_error("mounting config drive at", &dir))
        .map_err(Error::from);
    let document = match mounted {
        Ok(()) => {
            let read = std::fs::read_to_string(dir.join(DOCUMENT))
                .map_err(|e| Error::Identity(format!("config drive {}: {DOCUMENT}: {e}", device.display())));
            if let Err(e) = nix::mount::umount(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not unmount the config drive");
            }
            read
        }
        Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir(&dir);
    metadata::parse(&document?)
}
