//! Finding the block device of a volume and proving it is that volume before anything touches
//! it: by-id links named after the volume, then sysfs serials, waiting on device events (and
//! rescanning SCSI hosts) until the device appears.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::uevent::Uevents;
use super::{Error, Result};

/// The default directory of by-id links.
pub const DEFAULT_SEARCH_DIR: &str = "/dev/disk/by-id";
/// How many characters of the volume id a virtio-blk serial keeps.
const VIRTIO_SERIAL_LEN: usize = 20;
/// How often the search re-checks when no device event arrives (events are the main trigger;
/// this only covers hosts where netlink is unavailable).
const SAFETY_RECHECK: Duration = Duration::from_secs(2);

/// What the CO told us about where the volume should appear (from `publish_context`).
#[derive(Clone, Debug, Default)]
pub struct Hints {
    /// A device path the controller saw at attach time (may be stale: letters shift).
    pub device_path: Option<PathBuf>,
    /// The volume's SCSI WWN (EVS SCSI volumes), without `0x`.
    pub wwn: Option<String>,
}

/// Where and how long to look for devices.
#[derive(Clone, Debug)]
pub struct DeviceFinder {
    /// Directories of by-id style links, searched in order.
    pub search_dirs: Vec<PathBuf>,
    /// The sysfs mount (`/sys`).
    pub sys_root: PathBuf,
    /// How long `find` waits for the device to appear.
    pub wait: Duration,
}

impl Default for DeviceFinder {
    fn default() -> Self {
        Self {
            search_dirs: vec![PathBuf::from(DEFAULT_SEARCH_DIR)],
            sys_root: PathBuf::from("/sys"),
            wait: Duration::from_secs(30),
        }
    }
}

impl DeviceFinder {
    /// The link names under which `volume_id` may appear.
    pub fn link_names(volume_id: &str, hints: &Hints) -> Vec<String> {
        let short = serial_prefix(volume_id);
        let mut names = vec![
            format!("virtio-{short}"),
            format!("scsi-0QEMU_QEMU_HARDDISK_{short}"),
            format!("scsi-0QEMU_QEMU_HARDDISK_{volume_id}"),
        ];
        if let Some(wwn) = hints.wwn.as_deref().map(normalize_wwn).filter(|w| !w.is_empty()) {
            names.push(format!("wwn-0x{wwn}"));
            names.push(format!("scsi-3{wwn}"));
        }
        names.dedup();
        names
    }

    /// Finds and verifies the device of `volume_id`, waiting up to `self.wait` for it to
    /// appear.
    pub async fn find(&self, volume_id: &str, hints: &Hints) -> Result<PathBuf> {
        // The device is almost always there already (publish, a repeated stage): look once
        // before paying for an event subscription.
        if let Some(device) = self.find_now(volume_id, hints)? {
            return Ok(device);
        }
        // Subscribe before the next scan so that an attach in between is not missed.
        let events = match Uevents::subscribe() {
            Ok(events) => Some(events),
            Err(e) => {
                tracing::warn!(error = %e, "no device events (netlink refused); polling instead");
                None
            }
        };
        let deadline = Instant::now() + self.wait;
        let mut rescanned = false;
        loop {
            if let Some(device) = self.find_now(volume_id, hints)? {
                return Ok(device);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.not_found(volume_id));
            }
            if !rescanned {
                // A hot-plugged SCSI disk sometimes needs the host adapter to look again.
                self.rescan_scsi_hosts();
                rescanned = true;
            }
            let limit = (deadline - now).min(SAFETY_RECHECK);
            match &events {
                Some(events) => {
                    let count = events.next_batch(limit).await;
                    tracing::debug!(volume_id, events = count, "looking for the device again");
                }
                None => tokio::time::sleep(limit).await,
            }
        }
    }

    /// One look for the device of `volume_id`, without waiting. A link named after the volume
    /// that leads to another device is an error, not a miss.
    pub fn find_now(&self, volume_id: &str, hints: &Hints) -> Result<Option<PathBuf>> {
        if let Some(hint) = &hints.device_path
            && is_block_device(hint)
        {
            match self.verify(hint, volume_id, hints) {
                Ok(device) => return Ok(Some(device)),
                Err(e) => tracing::info!(error = %e, "device hint is stale; searching"),
            }
        }
        for dir in &self.search_dirs {
            for name in Self::link_names(volume_id, hints) {
                let link = dir.join(name);
                if is_block_device(&link) {
                    return self.verify(&link, volume_id, hints).map(Some);
                }
            }
        }
        self.find_in_sysfs(volume_id, hints)
    }

    /// The device under `/sys/block` whose identity names the volume.
    fn find_in_sysfs(&self, volume_id: &str, hints: &Hints) -> Result<Option<PathBuf>> {
        let Ok(entries) = std::fs::read_dir(self.sys_root.join("block")) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.identity(&name).matches(volume_id, hints) {
                let device = PathBuf::from("/dev").join(&name);
                if is_block_device(&device) {
                    return Ok(Some(device));
                }
            }
        }
        Ok(None)
    }

    /// Proves that `device` is `volume_id` (by serial, WWN, or a loop device's backing file)
    /// and returns its canonical path; refuses otherwise.
    pub fn verify(&self, device: &Path, volume_id: &str, hints: &Hints) -> Result<PathBuf> {
        let canonical =
            std::fs::canonicalize(device).map_err(|_| Error::PathNotFound(device.to_path_buf()))?;
        if !is_block_device(&canonical) {
            return Err(Error::NotThisVolume {
                device: canonical,
                volume_id: volume_id.into(),
                reason: "not a block device".into(),
            });
        }
        let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let identity = self.identity(&name);
        if identity.matches(volume_id, hints) {
            Ok(canonical)
        } else {
            Err(Error::NotThisVolume {
                device: canonical,
                volume_id: volume_id.into(),
                reason: identity.describe(),
            })
        }
    }

    /// What sysfs says a block device is.
    pub fn identity(&self, name: &str) -> Identity {
        let dir = self.sys_root.join("class/block").join(name);
        if let Ok(backing) = std::fs::read_to_string(dir.join("loop/backing_file")) {
            return Identity::Loop(backing.trim_end_matches('\n').to_string());
        }
        let ids: Vec<String> = ["serial", "device/serial", "device/wwid", "device/vpd_pg80"]
            .iter()
            .filter_map(|file| std::fs::read(dir.join(file)).ok())
            .map(|bytes| printable(&bytes))
            .filter(|id| !id.is_empty())
            .collect();
        if ids.is_empty() { Identity::Unknown } else { Identity::Serials(ids) }
    }

    /// Asks every SCSI host adapter to scan for new disks; failures only matter in logs.
    fn rescan_scsi_hosts(&self) {
        let Ok(hosts) = std::fs::read_dir(self.sys_root.join("class/scsi_host")) else { return };
        for host in hosts.flatten() {
            if let Err(e) = std::fs::write(host.path().join("scan"), "- - -") {
                tracing::debug!(host = %host.path().display(), error = %e, "SCSI rescan failed");
            }
        }
    }

    fn not_found(&self, volume_id: &str) -> Error {
        let dirs: Vec<String> = self.search_dirs.iter().map(|d| d.display().to_string()).collect();
        Error::DeviceNotFound {
            volume_id: volume_id.to_string(),
            searched: format!("{} and {}/block serials", dirs.join(", "), self.sys_root.display()),
        }
    }
}

/// A block device's identity as sysfs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A loop device and its backing file (with the kernel's ` (deleted)` mark if unlinked).
    Loop(String),
    /// Serial numbers and WWIDs of a disk.
    Serials(Vec<String>),
    /// Nothing that identifies the device.
    Unknown,
}

impl Identity {
    /// True when this identity names `volume_id` (or the hinted WWN).
    pub fn matches(&self, volume_id: &str, hints: &Hints) -> bool {
        let volume = volume_id.to_ascii_lowercase();
        match self {
            // A deleted backing file means the volume is gone, whatever its name was.
            Self::Loop(backing) => {
                !backing.ends_with(" (deleted)")
                    && Path::new(backing)
                        .file_name()
                        .is_some_and(|f| f.to_string_lossy().to_ascii_lowercase().contains(&volume))
            }
            Self::Serials(ids) => {
                let short = serial_prefix(&volume);
                let compact: String = volume.chars().filter(|c| *c != '-').collect();
                let wwn = hints.wwn.as_deref().map(normalize_wwn).filter(|w| !w.is_empty());
                ids.iter().map(|id| id.to_ascii_lowercase()).any(|id| {
                    id.contains(&volume)
                        || id.contains(&compact)
                        || (short.len() == VIRTIO_SERIAL_LEN && id == short)
                        || (short.len() < VIRTIO_SERIAL_LEN && id == volume)
                        || wwn.as_ref().is_some_and(|w| id.contains(w.as_str()))
                })
            }
            Self::Unknown => false,
        }
    }

    /// For error messages: what the device says it is.
    pub fn describe(&self) -> String {
        match self {
            Self::Loop(backing) => format!("it is a loop device backed by {backing}"),
            Self::Serials(ids) => format!("its serial/WWID is {}", ids.join(" / ")),
            Self::Unknown => "it reports no serial number to prove its identity".into(),
        }
    }
}

/// The part of a volume id a virtio-blk serial keeps.
fn serial_prefix(volume_id: &str) -> &str {
    let end = volume_id.char_indices().nth(VIRTIO_SERIAL_LEN).map_or(volume_id.len(), |(i, _)| i);
    &volume_id[..end]
}

fn normalize_wwn(wwn: &str) -> String {
    let wwn = wwn.trim().to_ascii_lowercase();
    wwn.strip_prefix("0x").or_else(|| wwn.strip_prefix("naa.")).unwrap_or(&wwn).to_string()
}

/// The printable text of a sysfs attribute (VPD pages carry binary headers).
fn printable(bytes: &[u8]) -> String {
    let text: String = bytes.iter().map(|b| if b.is_ascii_graphic() { *b as char } else { ' ' }).collect();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// True when `path` leads (through links) to a block device node.
pub fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOLUME: &str = "6f3c1a2b-9d4e-4f5a-8b7c-0d1e2f3a4b5c";

    #[test]
    fn link_names_cover_virtio_qemu_scsi_and_wwn_forms() {
        let hints = Hints { wwn: Some("0x6888603000001234".into()), ..Hints::default() };
        let names = DeviceFinder::link_names(VOLUME, &hints);
        assert_eq!(
            names,
            [
                "virtio-6f3c1a2b-9d4e-4f5a-8",
                "scsi-0QEMU_QEMU_HARDDISK_6f3c1a2b-9d4e-4f5a-8",
                &format!("scsi-0QEMU_QEMU_HARDDISK_{VOLUME}"),
                "wwn-0x6888603000001234",
                "scsi-36888603000001234",
            ]
        );
    }

    #[test]
    fn a_virtio_serial_matches_the_first_twenty_characters() {
        let identity = Identity::Serials(vec!["6f3c1a2b-9d4e-4f5a-8".into()]);
        assert!(identity.matches(VOLUME, &Hints::default()));
        assert!(!identity.matches("6f3c1a2b-9d4e-4f5a-9bbb", &Hints::default()));
    }

    #[test]
    fn a_scsi_serial_or_wwid_matches_the_whole_id_or_the_hinted_wwn() {
        let serial = Identity::Serials(vec![VOLUME.replace('-', "")]);
        assert!(serial.matches(VOLUME, &Hints::default()));
        let wwid = Identity::Serials(vec!["naa.68886030000012ab".into()]);
        assert!(!wwid.matches(VOLUME, &Hints::default()));
        let hints = Hints { wwn: Some("68886030000012AB".into()), ..Hints::default() };
        assert!(wwid.matches(VOLUME, &hints));
    }

    #[test]
    fn a_loop_device_matches_when_its_live_backing_file_names_the_volume() {
        let hints = Hints::default();
        assert!(Identity::Loop(format!("/tmp/x/{VOLUME}.img")).matches(VOLUME, &hints));
        assert!(!Identity::Loop(format!("/tmp/{VOLUME}/other.img")).matches(VOLUME, &hints));
        assert!(!Identity::Loop(format!("/tmp/x/{VOLUME}.img (deleted)")).matches(VOLUME, &hints));
    }

    #[test]
    fn a_device_without_identity_never_matches() {
        assert!(!Identity::Unknown.matches(VOLUME, &Hints::default()));
        assert!(Identity::Unknown.describe().contains("no serial"));
    }

    #[test]
    fn sysfs_attributes_are_read_as_printable_text() {
        assert_eq!(printable(b"\x00\x80\x00\x14  ABC123\n"), "ABC123");
    }

    #[test]
    fn identities_are_read_from_a_sysfs_tree() {
        let sys = tempfile::tempdir().unwrap();
        let vdb = sys.path().join("class/block/vdb");
        std::fs::create_dir_all(&vdb).unwrap();
        std::fs::write(vdb.join("serial"), "6f3c1a2b-9d4e-4f5a-8\n").unwrap();
        let loop3 = sys.path().join("class/block/loop3/loop");
        std::fs::create_dir_all(&loop3).unwrap();
        std::fs::write(loop3.join("backing_file"), "/data/v.img\n").unwrap();
        let finder = DeviceFinder { sys_root: sys.path().into(), ..DeviceFinder::default() };
        assert_eq!(finder.identity("vdb"), Identity::Serials(vec!["6f3c1a2b-9d4e-4f5a-8".into()]));
        assert_eq!(finder.identity("loop3"), Identity::Loop("/data/v.img".into()));
        assert_eq!(finder.identity("sdz"), Identity::Unknown);
    }
}
