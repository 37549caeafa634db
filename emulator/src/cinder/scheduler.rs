//! What Cinder's scheduler decides before a volume reaches a backend: a type whose extra specs
//! ask for capabilities no pool reports (CapabilitiesFilter) leaves the volume in `error`, with
//! the user message Cinder records for NoValidBackend.

use crate::bootstrap::resource_id;
use crate::model::VolumeType;
use crate::store::World;

use crate::model::Message;

/// The emulated pool's vendor, as `get_pools` and `capabilities` report it.
pub const VENDOR: &str = "Open Source";
/// The emulated pool's storage protocol.
pub const PROTOCOL: &str = "iSCSI";
/// The emulated pool's driver version.
pub const DRIVER_VERSION: &str = "3.0.0";

/// The capabilities the emulated pool reports (the same as its `get_pools` answer).
const CAPABILITIES: &[(&str, &str)] =
    &[("storage_protocol", PROTOCOL), ("vendor_name", VENDOR), ("driver_version", DRIVER_VERSION)];

/// Whether a reported capability satisfies a spec value, in the forms of Cinder's
/// extra_specs_ops that name strings: `<in> x`, `<or> a <or> b`, `s== x`, `s!= x`, or equal.
fn satisfies(reported: &str, wanted: &str) -> bool {
    let words: Vec<&str> = wanted.split_whitespace().collect();
    match words.first().copied() {
        Some("<in>") => reported.contains(words[1..].join(" ").as_str()),
        Some("<or>") => wanted.split("<or>").map(str::trim).any(|w| w == reported),
        Some("s==") => reported == words[1..].join(" "),
        Some("s!=") => reported != words[1..].join(" "),
        _ => reported == wanted,
    }
}

/// Whether no pool can take a volume of this type. Only the capabilities the pool reports are
/// judged; other unscoped keys are left alone (Cinder would refuse a key no pool reports, but
/// the emulator's own types carry free-form keys that its users rely on).
pub fn unplaceable(t: &VolumeType) -> bool {
    t.extra_specs.iter().any(|(key, wanted)| {
        let key = key.strip_prefix("capabilities:").unwrap_or(key);
        CAPABILITIES.iter().any(|(name, reported)| *name == key && !satisfies(reported, wanted))
    })
}

/// Records the user message Cinder's scheduler leaves for a volume no backend could take
/// (action SCHEDULE_ALLOCATE_VOLUME, detail NO_BACKEND_AVAILABLE).
pub fn no_valid_backend(w: &mut World, project_id: &str, volume_id: &str, now: u64) {
    let message = Message {
        id: resource_id(),
        event_id: "VOLUME_VOLUME_001_003".into(),
        user_message: "schedule allocate volume:Could not find any available weighted backend.".into(),
        resource_type: "VOLUME".into(),
        resource_uuid: volume_id.into(),
        created_at_ms: now,
    };
    w.store_mut(project_id).messages.insert(message.id.clone(), message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(specs: &[(&str, &str)]) -> VolumeType {
        VolumeType {
            id: "t".into(),
            name: "t".into(),
            description: None,
            is_public: true,
            extra_specs: specs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            projects: Default::default(),
            encryption: None,
        }
    }

    #[test]
    fn a_type_asking_for_a_protocol_or_vendor_no_pool_has_is_unplaceable() {
        assert!(unplaceable(&typed(&[("storage_protocol", "tempest-bogus")])));
        assert!(unplaceable(&typed(&[("capabilities:vendor_name", "Nobody")])));
    }

    #[test]
    fn a_type_asking_for_what_the_pool_reports_or_for_nothing_it_judges_is_placeable() {
        assert!(!unplaceable(&typed(&[("storage_protocol", "iSCSI"), ("vendor_name", "Open Source")])));
        assert!(!unplaceable(&typed(&[("storage_protocol", "<or> FC <or> iSCSI")])));
        assert!(!unplaceable(&typed(&[("vendor_name", "<in> Source")])));
        assert!(!unplaceable(&typed(&[("volume_backend_name", "lvmdriver-1"), ("spec1", "x")])));
    }
}
