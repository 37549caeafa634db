//! Zones: where to create a volume, and how to tell Kubernetes where it can be used.

use std::collections::HashMap;

use crate::csi::pb::{Topology, TopologyRequirement};
use crate::csi::status::CsiError;

/// The well-known Kubernetes zone label, accepted and reported beside the driver's own key.
pub const KUBERNETES_ZONE: &str = "topology.kubernetes.io/zone";

/// The driver's own zone key, `topology.<driver-name>/zone`.
pub fn driver_zone_key(driver_name: &str) -> String {
    format!("topology.{driver_name}/zone")
}

fn zone_of<'a>(topology: &'a Topology, keys: &[String]) -> Option<&'a str> {
    keys.iter().find_map(|k| topology.segments.get(k)).map(String::as_str)
}

/// The zone to create in: the `availability` parameter (which must be allowed by `requisite`),
/// else the first preferred zone, else the first requisite zone, else none (cloud default).
pub fn choose_zone(
    requirement: Option<&TopologyRequirement>,
    availability: Option<&str>,
    keys: &[String],
) -> Result<Option<String>, CsiError> {
    let requisite: Vec<&str> = requirement
        .map(|r| r.requisite.iter().filter_map(|t| zone_of(t, keys)).collect())
        .unwrap_or_default();
    if let Some(zone) = availability {
        if !requisite.is_empty() && !requisite.contains(&zone) {
            return Err(CsiError::InvalidArgument(format!(
                "parameter availability={zone} is outside the requisite topology ({})",
                requisite.join(", ")
            )));
        }
        return Ok(Some(zone.to_string()));
    }
    let preferred = requirement.and_then(|r| r.preferred.iter().find_map(|t| zone_of(t, keys)));
    Ok(preferred.or_else(|| requisite.first().copied()).map(str::to_string))
}

/// The topology segments of a zone, under both keys.
pub fn segments(zone: &str, keys: &[String]) -> Topology {
    Topology { segments: keys.iter().map(|k| (k.clone(), zone.to_string())).collect::<HashMap<_, _>>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<String> {
        vec![driver_zone_key("csi.example.io"), KUBERNETES_ZONE.to_string()]
    }

    fn topo(key: &str, zone: &str) -> Topology {
        Topology { segments: HashMap::from([(key.to_string(), zone.to_string())]) }
    }

    #[test]
    fn preferred_wins_over_requisite() {
        let req = TopologyRequirement {
            requisite: vec![topo(KUBERNETES_ZONE, "az1"), topo(KUBERNETES_ZONE, "az2")],
            preferred: vec![topo(KUBERNETES_ZONE, "az2")],
        };
        assert_eq!(choose_zone(Some(&req), None, &keys()).unwrap().as_deref(), Some("az2"));
    }

    #[test]
    fn requisite_is_used_without_preference_and_the_driver_key_counts() {
        let req = TopologyRequirement {
            requisite: vec![topo("topology.csi.example.io/zone", "az3")],
            preferred: vec![],
        };
        assert_eq!(choose_zone(Some(&req), None, &keys()).unwrap().as_deref(), Some("az3"));
        assert_eq!(choose_zone(None, None, &keys()).unwrap(), None);
    }

    #[test]
    fn the_availability_parameter_must_fit_the_requisite() {
        let req = TopologyRequirement { requisite: vec![topo(KUBERNETES_ZONE, "az1")], preferred: vec![] };
        assert_eq!(choose_zone(Some(&req), Some("az1"), &keys()).unwrap().as_deref(), Some("az1"));
        assert_eq!(
            choose_zone(Some(&req), Some("az9"), &keys()).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        assert_eq!(choose_zone(None, Some("az9"), &keys()).unwrap().as_deref(), Some("az9"));
    }

    #[test]
    fn segments_carry_both_keys() {
        let t = segments("az1", &keys());
        assert_eq!(t.segments[KUBERNETES_ZONE], "az1");
        assert_eq!(t.segments["topology.csi.example.io/zone"], "az1");
    }
}
