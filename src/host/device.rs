//! Finding the block device of a volume and proving it is that volume before anything touches
//! it: by-id links named after the volume, then sysfs serials, waiting on device events (and
//! rescanning SCSI hosts) until the device appears.

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::time::Instant;

use super::uevent::Uevents;
use super::{Error, Result};
use crate::contract::CloudId;

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
    /// The volume's SCSI WWN (EVS SCSI volumes): lower-case hex without `0x`, as
    /// [`parse_wwn`] makes it.
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
    /// The link names under which `volume` may appear.
    pub fn link_names(volume: &CloudId, hints: &Hints) -> Vec<String> {
        let id = volume.as_str();
        let short = virtio_serial(volume);
        let mut names = vec![
            format!("virtio-{short}"),
            format!("scsi-0QEMU_QEMU_HARDDISK_{short}"),
            format!("scsi-0QEMU_QEMU_HARDDISK_{id}"),
        ];
        if let Some(wwn) = &hints.wwn {
            names.push(format!("wwn-0x{wwn}"));
            names.push(format!("scsi-3{wwn}"));
        }
        names.dedup();
        names
    }

    /// Finds and verifies the device of `volume`, waiting up to `self.wait` for it to appear.
    pub async fn find(&self, volume: &CloudId, hints: &Hints) -> Result<PathBuf> {
        // The device is almost always there already (publish, a repeated stage): look once
        // before paying for an event subscription.
        if let Some(device) = self.find_now(volume, hints)? {
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
            if let Some(device) = self.find_now(volume, hints)? {
                return Ok(device);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(self.not_found(volume));
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
                    tracing::debug!(volume_id = %volume, events = count, "looking for the device again");
                }
                None => tokio::time::sleep(limit).await,
            }
        }
    }

    /// One look for the device of `volume`, without waiting. A link named after the volume
    /// that leads to another device is an error, not a miss.
    pub fn find_now(&self, volume: &CloudId, hints: &Hints) -> Result<Option<PathBuf>> {
        if let Some(hint) = &hints.device_path
            && is_block_device(hint)
        {
            match self.verify(hint, volume, hints) {
                Ok(device) => return Ok(Some(device)),
                Err(e) => tracing::info!(error = %e, "device hint is not the volume; searching"),
            }
        }
        for dir in &self.search_dirs {
            for name in Self::link_names(volume, hints) {
                let link = dir.join(name);
                if is_block_device(&link) {
                    return self.verify(&link, volume, hints).map(Some);
                }
            }
        }
        self.find_in_sysfs(volume, hints)
    }

    /// The device under `/sys/block` whose identity names the volume exactly.
    fn find_in_sysfs(&self, volume: &CloudId, hints: &Hints) -> Result<Option<PathBuf>> {
        let Ok(entries) = std::fs::read_dir(self.sys_root.join("block")) else {
            return Ok(None);
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if self.identity(&name).is_live(volume, hints) {
                let device = PathBuf::from("/dev").join(&name);
                if is_block_device(&device) {
                    return Ok(Some(device));
                }
            }
        }
        Ok(None)
    }

    /// Proves that `device` is `volume` (by serial, WWN, or a loop device's backing file)
    /// and returns its canonical path; refuses otherwise.
    pub fn verify(&self, device: &Path, volume: &CloudId, hints: &Hints) -> Result<PathBuf> {
        let canonical =
            std::fs::canonicalize(device).map_err(|_| Error::PathNotFound(device.to_path_buf()))?;
        if !is_block_device(&canonical) {
            return Err(Error::NotThisVolume {
                device: canonical,
                volume_id: volume.to_string(),
                reason: "not a block device".into(),
            });
        }
        let name = canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let identity = self.identity(&name);
        if identity.is_live(volume, hints) {
            Ok(canonical)
        } else {
            Err(Error::NotThisVolume {
                device: canonical,
                volume_id: volume.to_string(),
                reason: identity.describe(),
            })
        }
    }

    /// What sysfs says a block device is.
    pub fn identity(&self, name: &str) -> Identity {
        // A name from the mount table or a link could hold `/` or `..`; sysfs names never do.
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Identity::Unknown;
        }
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

    /// What the kernel says the block device numbered `rdev` is, if it still exists.
    pub fn identity_of_rdev(&self, rdev: u64) -> Option<Identity> {
        let (major, minor) = (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev));
        let link = std::fs::read_link(self.sys_root.join(format!("dev/block/{major}:{minor}"))).ok()?;
        let name = link.file_name()?.to_string_lossy().into_owned();
        Some(self.identity(&name))
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

    fn not_found(&self, volume: &CloudId) -> Error {
        let dirs: Vec<String> = self.search_dirs.iter().map(|d| d.display().to_string()).collect();
        Error::DeviceNotFound {
            volume_id: volume.to_string(),
            searched: format!("{} and {}/block serials", dirs.join(", "), self.sys_root.display()),
        }
    }
}

/// The kernel's mark on a loop device whose backing file was unlinked.
const DELETED_MARK: &str = " (deleted)";

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
    /// True when this identity is exactly that of `volume` (or the hinted WWN) and the
    /// device is usable: a loop device whose backing file was deleted is a volume that is
    /// gone, whatever its name was.
    pub fn is_live(&self, volume: &CloudId, hints: &Hints) -> bool {
        match self {
            Self::Loop(backing) if backing.ends_with(DELETED_MARK) => false,
            _ => self.names(volume, hints),
        }
    }

    /// True when this identity is exactly that of `volume`, even if the device has lost its
    /// backing store: enough to prove a mount of it is the volume's, never to use it.
    ///
    /// Every rule is an exact comparison with a name derived from the cloud id; nothing the
    /// request chose can be a substring or prefix that happens to match.
    pub fn names(&self, volume: &CloudId, hints: &Hints) -> bool {
        match self {
            Self::Loop(backing) => {
                let backing = backing.strip_suffix(DELETED_MARK).unwrap_or(backing);
                Path::new(backing)
                    .file_name()
                    .is_some_and(|f| f == std::ffi::OsStr::new(&loop_file_name(volume)))
            }
            Self::Serials(ids) => {
                let accepted = accepted_serials(volume, hints);
                ids.iter().any(|id| accepted.contains(&id.to_ascii_lowercase()))
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

/// The backing file name of a volume's loop device, as the emulator names volume files.
pub fn loop_file_name(volume: &CloudId) -> String {
    format!("{volume}.img")
}

/// The serial a virtio-blk disk reports: the first 20 characters of the volume id.
pub fn virtio_serial(volume: &CloudId) -> &str {
    &volume.as_str()[..VIRTIO_SERIAL_LEN]
}

/// Every serial / WWID text (lower case) that proves a disk is `volume`: the virtio serial,
/// the whole id with or without dashes (SCSI serial), and the hinted WWN in its sysfs forms.
fn accepted_serials(volume: &CloudId, hints: &Hints) -> Vec<String> {
    let id = volume.as_str();
    let mut accepted = vec![virtio_serial(volume).to_string(), id.to_string(), id.replace('-', "")];
    if let Some(wwn) = &hints.wwn {
        accepted.extend([wwn.clone(), format!("0x{wwn}"), format!("naa.{wwn}")]);
    }
    accepted
}

/// Parses a `wwn` hint by the rule the controller writes it with ([`crate::contract::wwn`]);
/// a hint that breaks it is refused, never searched for.
pub fn parse_wwn(text: &str) -> Result<String> {
    crate::contract::wwn::parse("publish_context wwn", text)
        .map_err(|e| Error::InvalidArgument(e.to_string()))
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

    fn volume() -> CloudId {
        CloudId::parse("volume_id", VOLUME).unwrap()
    }

    fn wwn_hint(wwn: &str) -> Hints {
        Hints { wwn: Some(parse_wwn(wwn).unwrap()), ..Hints::default() }
    }

    #[test]
    fn link_names_cover_virtio_qemu_scsi_and_wwn_forms() {
        let names = DeviceFinder::link_names(&volume(), &wwn_hint("0x6888603000001234"));
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
    fn a_virtio_serial_matches_exactly_the_first_twenty_characters() {
        let identity = Identity::Serials(vec!["6F3C1A2B-9D4E-4F5A-8".into()]);
        assert!(identity.is_live(&volume(), &Hints::default()));
        let other = CloudId::parse("v", "6f3c1a2b-9d4e-4f5a-9b7c-0d1e2f3a4b5c").unwrap();
        assert!(!identity.is_live(&other, &Hints::default()));
    }

    #[test]
    fn a_serial_that_is_only_part_of_the_id_does_not_match() {
        for serial in ["6f3c1a2b-9d4e-4f5a-", "6f3c1a2b", "-", "4b5c", "6f3c1a2b-9d4e-4f5a-8b"] {
            let identity = Identity::Serials(vec![serial.into()]);
            assert!(!identity.is_live(&volume(), &Hints::default()), "{serial:?}");
        }
    }

    #[test]
    fn a_serial_that_contains_the_id_does_not_match() {
        for serial in
            [format!("x{VOLUME}"), format!("{VOLUME}0"), format!("QEMU {}", VOLUME.replace('-', ""))]
        {
            let identity = Identity::Serials(vec![serial.clone()]);
            assert!(!identity.is_live(&volume(), &Hints::default()), "{serial:?}");
        }
    }

    #[test]
    fn a_scsi_serial_matches_the_whole_id_with_or_without_dashes() {
        for serial in [VOLUME.to_string(), VOLUME.replace('-', ""), VOLUME.to_uppercase()] {
            assert!(Identity::Serials(vec![serial]).is_live(&volume(), &Hints::default()));
        }
    }

    #[test]
    fn a_wwid_matches_only_the_hinted_wwn_exactly() {
        let wwid = Identity::Serials(vec!["naa.68886030000012ab".into()]);
        assert!(!wwid.is_live(&volume(), &Hints::default()));
        assert!(wwid.is_live(&volume(), &wwn_hint("68886030000012AB")));
        assert!(!wwid.is_live(&volume(), &wwn_hint("68886030000012ac")));
        let longer = Identity::Serials(vec!["naa.68886030000012ab00".into()]);
        assert!(!longer.is_live(&volume(), &wwn_hint("68886030000012ab")));
    }

    #[test]
    fn a_wwn_hint_must_be_sixteen_or_thirty_two_hex_digits() {
        assert_eq!(parse_wwn("0x6888603000001234").unwrap(), "6888603000001234");
        assert_eq!(parse_wwn("naa.6888603000001234ABCDEF0123456789").unwrap().len(), 32);
        for bad in ["", "-", "1234", "6888603000001234/../x", "zz88603000001234", "0x"] {
            assert!(matches!(parse_wwn(bad), Err(Error::InvalidArgument(_))), "{bad:?}");
        }
    }

    #[test]
    fn a_loop_device_matches_when_its_backing_file_is_named_exactly_after_the_volume() {
        let hints = Hints::default();
        assert!(Identity::Loop(format!("/tmp/x/{VOLUME}.img")).is_live(&volume(), &hints));
        for other in [
            format!("/tmp/{VOLUME}/other.img"),
            format!("/tmp/x/old-{VOLUME}.img"),
            format!("/tmp/x/{VOLUME}.img.bak"),
            format!("/tmp/x/{VOLUME}"),
            "/tmp/x/-.img".to_string(),
            "/var/lib/disk.img".to_string(),
        ] {
            assert!(!Identity::Loop(other.clone()).is_live(&volume(), &hints), "{other}");
            assert!(!Identity::Loop(other.clone()).names(&volume(), &hints), "{other}");
        }
    }

    #[test]
    fn a_loop_device_whose_file_was_deleted_is_the_volume_but_not_usable() {
        let deleted = Identity::Loop(format!("/tmp/x/{VOLUME}.img (deleted)"));
        assert!(!deleted.is_live(&volume(), &Hints::default()));
        assert!(deleted.names(&volume(), &Hints::default()));
    }

    #[test]
    fn a_device_without_identity_never_matches() {
        assert!(!Identity::Unknown.names(&volume(), &Hints::default()));
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
        assert_eq!(finder.identity("../block/vdb"), Identity::Unknown);
    }

    proptest::proptest! {
        #[test]
        fn no_cut_or_padded_piece_of_the_id_is_its_identity(
            a in 0usize..=36,
            b in 0usize..=36,
            prefix in "[a-f0-9x. -]{0,3}",
            suffix in "[a-f0-9x. -]{0,3}",
        ) {
            let (start, end) = (a.min(b), a.max(b));
            let text = format!("{prefix}{}{suffix}", &VOLUME[start..end]);
            let accepted = [VOLUME.to_string(), VOLUME.replace('-', ""), VOLUME[..20].to_string()];
            let hints = Hints::default();
            let serial = Identity::Serials(vec![text.clone()]);
            proptest::prop_assert_eq!(serial.names(&volume(), &hints), accepted.contains(&text));
            let backing = Identity::Loop(format!("/var/lib/volumes/{text}.img"));
            proptest::prop_assert_eq!(backing.names(&volume(), &hints), text == VOLUME);
        }
    }
}
