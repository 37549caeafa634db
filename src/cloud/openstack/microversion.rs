//! API microversions (`3.42`, `2.60`) and their discovery from a service's version document.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;
use serde::Deserialize;

/// A `major.minor` microversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Microversion {
    /// Major version (3 for Cinder v3).
    pub major: u16,
    /// Minor version.
    pub minor: u16,
}

impl Microversion {
    /// `major.minor`.
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }
}

impl FromStr for Microversion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (major, minor) = s
            .trim()
            .trim_start_matches('v')
            .split_once('.')
            .ok_or_else(|| format!("bad microversion {s:?}"))?;
        Ok(Self {
            major: major.parse().map_err(|_| format!("bad microversion {s:?}"))?,
            minor: minor.parse().map_err(|_| format!("bad microversion {s:?}"))?,
        })
    }
}

impl fmt::Display for Microversion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One entry of a version document.
#[derive(Clone, Debug, Deserialize)]
pub struct VersionInfo {
    /// e.g. `v3.0`.
    pub id: String,
    /// Highest microversion, empty when the API has none.
    #[serde(default)]
    pub version: String,
    /// Lowest microversion.
    #[serde(default)]
    pub min_version: String,
}

/// `GET /v3/` answers either `{"version": {...}}` or `{"versions": [...]}`.
#[derive(Debug, Deserialize)]
pub struct VersionDocument {
    version: Option<VersionInfo>,
    #[serde(default)]
    versions: Vec<VersionInfo>,
}

impl VersionDocument {
    /// The entry for `major`.
    pub fn for_major(&self, major: u16) -> Option<&VersionInfo> {
        let wanted =
            |v: &&VersionInfo| v.id.trim_start_matches('v').split('.').next() == Some(&major.to_string());
        self.version.iter().find(wanted).or_else(|| self.versions.iter().find(wanted))
    }
}

/// The highest microversion both sides speak, or `None` when the server has no microversions
/// or its range does not reach ours.
pub fn negotiate(info: &VersionInfo, ours_min: Microversion, ours_max: Microversion) -> Option<Microversion> {
    let server_max: Microversion = info.version.parse().ok()?;
    let server_min: Microversion = info.min_version.parse().unwrap_or(server_max);
    let chosen = server_max.min(ours_max);
    (chosen >= server_min && chosen >= ours_min).then_some(chosen)
}

/// The version root of an endpoint: `http://h/volume/v3/<project>` -> `http://h/volume/v3/`.
pub fn version_root(endpoint: &Url) -> Url {
    let mut root = endpoint.clone();
    let segments: Vec<&str> = endpoint.path_segments().map(|s| s.collect()).unwrap_or_default();
    let is_version = |s: &str| {
        s.strip_prefix('v').is_some_and(|rest| {
            !rest.is_empty() && rest.split('.').all(|p| p.chars().all(|c| c.is_ascii_digit()))
        })
    };
    if let Some(pos) = segments.iter().position(|s| is_version(s)) {
        root.set_path(&format!("/{}/", segments[..=pos].join("/")));
    }
    root.set_query(None);
    root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microversions_order_numerically() {
        let a: Microversion = "3.9".parse().unwrap();
        let b: Microversion = "3.42".parse().unwrap();
        assert!(a < b);
        assert_eq!(b.to_string(), "3.42");
        assert!("3".parse::<Microversion>().is_err());
    }

    #[test]
    fn negotiation_takes_the_highest_common_version() {
        let info = VersionInfo { id: "v3.0".into(), version: "3.70".into(), min_version: "3.0".into() };
        assert_eq!(
            negotiate(&info, Microversion::new(3, 0), Microversion::new(3, 66)),
            Some(Microversion::new(3, 66))
        );
        let old = VersionInfo { id: "v3.0".into(), version: "3.27".into(), min_version: "3.0".into() };
        assert_eq!(
            negotiate(&old, Microversion::new(3, 0), Microversion::new(3, 66)),
            Some(Microversion::new(3, 27))
        );
        let none = VersionInfo { id: "v3.0".into(), version: String::new(), min_version: String::new() };
        assert_eq!(negotiate(&none, Microversion::new(3, 0), Microversion::new(3, 66)), None);
    }

    #[test]
    fn version_documents_of_both_shapes_are_read() {
        let single: VersionDocument =
            serde_json::from_str(r#"{"version": {"id": "v3.0", "version": "3.70", "min_version": "3.0"}}"#)
                .unwrap();
        assert_eq!(single.for_major(3).unwrap().version, "3.70");
        let list: VersionDocument = serde_json::from_str(
            r#"{"versions": [{"id": "v2.0", "version": ""}, {"id": "v3.0", "version": "3.60", "min_version": "3.0"}]}"#,
        )
        .unwrap();
        assert_eq!(list.for_major(3).unwrap().version, "3.60");
    }

    #[test]
    fn version_root_strips_the_project_suffix() {
        let root = |s: &str| version_root(&Url::parse(s).unwrap()).to_string();
        assert_eq!(root("http://h:8776/v3/abc123"), "http://h:8776/v3/");
        assert_eq!(root("http://h/volume/v3/abc"), "http://h/volume/v3/");
        assert_eq!(root("http://h/compute/v2.1"), "http://h/compute/v2.1/");
    }
}
