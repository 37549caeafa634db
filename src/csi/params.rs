//! StorageClass parameters and capacity ranges, validated into what the controller needs.
//! Unknown keys are refused with the list of valid ones, so a typo never goes unnoticed.

use std::collections::{BTreeMap, HashMap};

use super::status::CsiError;
use crate::contract::GIB;

/// Parameter keys this driver understands.
pub const KNOWN: &[&str] = &[
    TYPE,
    AVAILABILITY,
    FS_TYPE,
    MULTIATTACH,
    CLOUD,
    IOPS,
    THROUGHPUT,
    ENCRYPTED,
    KMS_KEY_ID,
    SCSI,
    "csi.storage.k8s.io/fstype",
];

/// Volume type.
pub const TYPE: &str = "type";
/// Availability zone to create in when topology does not decide.
pub const AVAILABILITY: &str = "availability";
/// Filesystem the node formats with (passed through in the volume context).
pub const FS_TYPE: &str = "fsType";
/// Ask for a multi-attach capable volume.
pub const MULTIATTACH: &str = "multiattach";
/// Which configured cloud to create in.
pub const CLOUD: &str = "cloud";
/// Provisioned IOPS (EVS GPSSD2/ESSD2).
pub const IOPS: &str = "iops";
/// Provisioned throughput in MiB/s (EVS GPSSD2).
pub const THROUGHPUT: &str = "throughput";
/// Encrypt the volume (EVS KMS).
pub const ENCRYPTED: &str = "encrypted";
/// KMS key for encryption (EVS).
pub const KMS_KEY_ID: &str = "kmsKeyId";
/// SCSI passthrough disk (EVS `hw:passthrough`).
pub const SCSI: &str = "scsi";

/// Parameters the external-provisioner adds with `--extra-create-metadata`.
pub const PVC_NAME: &str = "csi.storage.k8s.io/pvc/name";
/// PVC namespace, from the external-provisioner.
pub const PVC_NAMESPACE: &str = "csi.storage.k8s.io/pvc/namespace";
/// PV name, from the external-provisioner.
pub const PV_NAME: &str = "csi.storage.k8s.io/pv/name";
const PROVISIONER_KEYS: &[&str] = &[PVC_NAME, PVC_NAMESPACE, PV_NAME];

/// Validated StorageClass parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VolumeParameters {
    /// Volume type.
    pub volume_type: Option<String>,
    /// Zone from the `availability` parameter.
    pub availability: Option<String>,
    /// Filesystem for the node.
    pub fs_type: Option<String>,
    /// Multi-attach requested.
    pub multiattach: bool,
    /// Cloud name.
    pub cloud: Option<String>,
    /// IOPS.
    pub iops: Option<u64>,
    /// Throughput.
    pub throughput: Option<u64>,
    /// Encryption.
    pub encrypted: bool,
    /// KMS key.
    pub kms_key_id: Option<String>,
    /// SCSI passthrough.
    pub scsi: bool,
    /// PVC and PV names from the provisioner, for metadata.
    pub provisioner: BTreeMap<String, String>,
}

fn flag(key: &str, value: &str) -> Result<bool, CsiError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => {
            Err(CsiError::InvalidArgument(format!("parameter {key}: expected true or false, got {value:?}")))
        }
    }
}

fn number(key: &str, value: &str) -> Result<u64, CsiError> {
    value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        CsiError::InvalidArgument(format!("parameter {key}: expected a positive integer, got {value:?}"))
    })
}

/// Parses and validates CreateVolume parameters.
pub fn parse(parameters: &HashMap<String, String>) -> Result<VolumeParameters, CsiError> {
    let mut out = VolumeParameters::default();
    let mut keys: Vec<&String> = parameters.keys().collect();
    keys.sort();
    for key in keys {
        let value = parameters[key].trim();
        match key.as_str() {
            TYPE => out.volume_type = Some(value.to_string()).filter(|v| !v.is_empty()),
            AVAILABILITY => out.availability = Some(value.to_string()).filter(|v| !v.is_empty()),
            FS_TYPE | "csi.storage.k8s.io/fstype" => {
                out.fs_type = Some(value.to_ascii_lowercase()).filter(|v| !v.is_empty())
            }
            MULTIATTACH => out.multiattach = flag(key, value)?,
            CLOUD => out.cloud = Some(value.to_string()).filter(|v| !v.is_empty()),
            IOPS => out.iops = Some(number(key, value)?),
            THROUGHPUT => out.throughput = Some(number(key, value)?),
            ENCRYPTED => out.encrypted = flag(key, value)?,
            KMS_KEY_ID => out.kms_key_id = Some(value.to_string()).filter(|v| !v.is_empty()),
            SCSI => out.scsi = flag(key, value)?,
            k if PROVISIONER_KEYS.contains(&k) => {
                out.provisioner.insert(k.to_string(), value.to_string());
            }
            other => {
                return Err(CsiError::InvalidArgument(format!(
                    "unknown parameter {other:?}; valid parameters are: {}",
                    KNOWN.join(", ")
                )));
            }
        }
    }
    if let Some(fs) = &out.fs_type {
        // The one table of filesystems the node also stages with.
        crate::contract::FsType::from_request(fs)
            .map_err(|e| CsiError::InvalidArgument(format!("fsType: {e}")))?;
    }
    if out.kms_key_id.is_some() && !out.encrypted {
        return Err(CsiError::InvalidArgument("kmsKeyId needs encrypted=true".into()));
    }
    Ok(out)
}

/// The size in GiB for a capacity range: the smallest whole GiB of at least `required_bytes`
/// that does not exceed `limit_bytes`; `default_gib` when neither is set.
pub fn size_gib(range: Option<&super::pb::CapacityRange>, default_gib: u64) -> Result<u64, CsiError> {
    let Some(range) = range else { return Ok(default_gib) };
    let (required, limit) = (range.required_bytes, range.limit_bytes);
    if required < 0 || limit < 0 {
        return Err(CsiError::InvalidArgument("capacity range bytes must not be negative".into()));
    }
    if required == 0 && limit == 0 {
        return Ok(default_gib);
    }
    if limit > 0 && required > limit {
        return Err(CsiError::InvalidArgument(format!(
            "required_bytes {required} exceeds limit_bytes {limit}"
        )));
    }
    // In i128: rounding a required size near i64::MAX up to whole GiB must not overflow.
    let (required, limit, unit) = (i128::from(required), i128::from(limit), i128::from(GIB));
    let gib = if required > 0 { (required + unit - 1) / unit } else { i128::from(default_gib) };
    let gib = if limit > 0 && gib * unit > limit { limit / unit } else { gib };
    if gib < 1 || (required > 0 && gib * unit < required) || gib * unit > i128::from(i64::MAX) {
        return Err(CsiError::OutOfRange(format!(
            "no whole GiB size fits between required_bytes {required} and limit_bytes {limit}"
        )));
    }
    Ok(gib as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csi::pb::CapacityRange;

    #[test]
    fn a_required_size_near_the_largest_integer_is_out_of_range_not_a_panic() {
        let range = CapacityRange { required_bytes: i64::MAX, limit_bytes: i64::MAX };
        assert_eq!(size_gib(Some(&range), 1).unwrap_err().code(), tonic::Code::OutOfRange);
        let range = CapacityRange { required_bytes: i64::MAX, limit_bytes: 0 };
        assert_eq!(size_gib(Some(&range), 1).unwrap_err().code(), tonic::Code::OutOfRange);
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn known_parameters_are_parsed() {
        let p = parse(&params(&[
            ("type", "ssd"),
            ("availability", "nova"),
            ("fsType", "XFS"),
            ("multiattach", "true"),
            (PVC_NAME, "data"),
        ]))
        .unwrap();
        assert_eq!(p.volume_type.as_deref(), Some("ssd"));
        assert_eq!(p.fs_type.as_deref(), Some("xfs"));
        assert!(p.multiattach);
        assert_eq!(p.provisioner[PVC_NAME], "data");
    }

    #[test]
    fn unknown_parameters_are_refused_listing_the_valid_ones() {
        let err = parse(&params(&[("tpye", "ssd")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("\"tpye\"") && text.contains("type, availability"), "{text}");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }

    #[test]
    fn malformed_values_are_refused() {
        assert!(parse(&params(&[("multiattach", "maybe")])).is_err());
        assert!(parse(&params(&[("iops", "-3")])).is_err());
        assert!(parse(&params(&[("fsType", "ntfs")])).is_err());
        assert!(parse(&params(&[("kmsKeyId", "k")])).is_err());
    }

    #[test]
    fn sizes_round_up_to_whole_gib_within_the_limit() {
        let range = |r: i64, l: i64| CapacityRange { required_bytes: r, limit_bytes: l };
        assert_eq!(size_gib(None, 1).unwrap(), 1);
        assert_eq!(size_gib(Some(&range(1, 0)), 1).unwrap(), 1);
        assert_eq!(size_gib(Some(&range(GIB + 1, 0)), 1).unwrap(), 2);
        assert_eq!(size_gib(Some(&range(0, 5 * GIB)), 1).unwrap(), 1);
        assert_eq!(size_gib(Some(&range(0, 5 * GIB)), 10).unwrap(), 5);
        assert_eq!(size_gib(Some(&range(3 * GIB, 3 * GIB)), 1).unwrap(), 3);
    }

    #[test]
    fn ranges_without_a_whole_gib_are_out_of_range() {
        let err = size_gib(Some(&CapacityRange { required_bytes: GIB + 1, limit_bytes: GIB + 100 }), 1)
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::OutOfRange);
        let err = size_gib(Some(&CapacityRange { required_bytes: 0, limit_bytes: 100 }), 1).unwrap_err();
        assert_eq!(err.code(), tonic::Code::OutOfRange);
        let err = size_gib(Some(&CapacityRange { required_bytes: 5, limit_bytes: 4 }), 1).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
    }
}
