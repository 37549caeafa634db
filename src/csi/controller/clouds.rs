//! The backends of every configured cloud, and the CSI volume ids that name them: a volume of
//! the default cloud is named by its cloud id alone, a volume of another cloud as
//! `<cloud>:<id>`, so that calls which only carry the id still reach the right cloud.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cloud::Backend;
use crate::csi::status::CsiError;

/// Backends by cloud name.
#[derive(Clone, Debug)]
pub struct Clouds {
    default: String,
    backends: BTreeMap<String, Arc<dyn Backend>>,
}

/// A CSI volume (or snapshot) id split into its cloud and the cloud's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle {
    /// The cloud's name.
    pub cloud: String,
    /// The id in that cloud.
    pub id: String,
}

impl Clouds {
    /// Backends with `default` as the cloud of unprefixed ids; `default` must be a key.
    pub fn new(default: String, backends: BTreeMap<String, Arc<dyn Backend>>) -> Self {
        assert!(backends.contains_key(&default), "the default cloud has a backend");
        Self { default, backends }
    }

    /// The backend of a named cloud (`None`: the default).
    pub fn backend(&self, cloud: Option<&str>) -> Result<(&str, &Arc<dyn Backend>), CsiError> {
        let name = cloud.unwrap_or(&self.default);
        self.backends.get_key_value(name).map(|(k, v)| (k.as_str(), v)).ok_or_else(|| {
            CsiError::InvalidArgument(format!(
                "cloud {name:?} is not configured (known: {})",
                self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Every backend, the default first.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Arc<dyn Backend>)> {
        let default = self.backends.get_key_value(&self.default);
        default.into_iter().chain(self.backends.iter().filter(|(k, _)| **k != self.default))
    }

    /// The CSI id of a cloud object.
    pub fn handle(&self, cloud: &str, id: &str) -> String {
        if cloud == self.default { id.to_string() } else { format!("{cloud}:{id}") }
    }

    /// Splits a CSI id; an unknown cloud prefix is `NotFound` (the object cannot exist here).
    pub fn parse(&self, handle: &str) -> Result<Handle, CsiError> {
        match handle.split_once(':') {
            None => Ok(Handle { cloud: self.default.clone(), id: handle.to_string() }),
            Some((cloud, id)) if self.backends.contains_key(cloud) && !id.is_empty() => {
                Ok(Handle { cloud: cloud.to_string(), id: id.to_string() })
            }
            Some(_) => Err(CsiError::NotFound(format!("{handle} does not belong to any configured cloud"))),
        }
    }
}
