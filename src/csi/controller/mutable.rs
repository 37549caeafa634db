//! Mutable parameters (a VolumeAttributesClass): parsed once, for ControllerModifyVolume and
//! for CreateVolume, which must refuse what a modify would refuse and apply the rest at once.

use std::collections::HashMap;

use crate::csi::params::{self, VolumeParameters};
use crate::csi::status::CsiError;

/// What a VolumeAttributesClass may change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct MutableParameters {
    /// The volume type to change to.
    pub volume_type: Option<String>,
    /// Provisioned IOPS.
    pub iops: Option<u64>,
    /// Provisioned throughput in MiB/s.
    pub throughput: Option<u64>,
}

impl MutableParameters {
    /// The StorageClass parameters with these values taking precedence, as the volume would
    /// have them after a modify.
    pub(crate) fn apply_to(&self, mut parameters: VolumeParameters) -> VolumeParameters {
        if let Some(t) = &self.volume_type {
            parameters.volume_type = Some(t.clone());
        }
        parameters.iops = self.iops.or(parameters.iops);
        parameters.throughput = self.throughput.or(parameters.throughput);
        parameters
    }
}

/// Parses mutable parameters; an unknown key or a malformed value is InvalidArgument.
pub(super) fn parse(map: &HashMap<String, String>) -> Result<MutableParameters, CsiError> {
    let positive = |key: &str, value: &str| {
        value.trim().parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            CsiError::InvalidArgument(format!(
                "mutable parameter {key}: expected a positive integer, got {value:?}"
            ))
        })
    };
    let mut out = MutableParameters::default();
    for (key, value) in map {
        match key.as_str() {
            params::TYPE if value.trim().is_empty() => {
                return Err(CsiError::InvalidArgument("mutable parameter type must not be empty".into()));
            }
            params::TYPE => out.volume_type = Some(value.trim().to_string()),
            params::IOPS => out.iops = Some(positive(key, value)?),
            params::THROUGHPUT => out.throughput = Some(positive(key, value)?),
            other => {
                return Err(CsiError::InvalidArgument(format!(
                    "mutable parameter {other:?} is not supported; valid mutable parameters are: type, iops, throughput"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn no_mutable_parameters_change_nothing() {
        assert_eq!(parse(&HashMap::new()).unwrap(), MutableParameters::default());
    }

    #[test]
    fn type_iops_and_throughput_parse() {
        let parsed = parse(&map(&[("type", " fast "), ("iops", "3000"), ("throughput", "125")])).unwrap();
        assert_eq!(
            parsed,
            MutableParameters { volume_type: Some("fast".into()), iops: Some(3000), throughput: Some(125) }
        );
    }

    #[test]
    fn unknown_keys_and_malformed_values_are_invalid_argument() {
        for bad in [
            map(&[("fsType", "ext4")]),
            map(&[("type", "  ")]),
            map(&[("iops", "0")]),
            map(&[("iops", "-5")]),
            map(&[("throughput", "fast")]),
            map(&[("iops", "18446744073709551616")]),
        ] {
            assert!(matches!(parse(&bad), Err(CsiError::InvalidArgument(_))), "{bad:?}");
        }
    }

    #[test]
    fn mutable_values_take_precedence_over_the_storage_class() {
        let base = params::parse(&map(&[("type", "slow"), ("iops", "100")])).unwrap();
        let applied = parse(&map(&[("type", "fast")])).unwrap().apply_to(base);
        assert_eq!(applied.volume_type.as_deref(), Some("fast"));
        assert_eq!(applied.iops, Some(100), "what the class does not name stays");
    }
}
