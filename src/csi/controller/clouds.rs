//! The backends of every configured cloud, and the CSI ids that name their objects.
//!
//! A handle is `[<cloud>:]<uuid>`. With one cloud configured the driver writes bare ids; with
//! several it writes `<cloud>:<uuid>` for every cloud, the default included, so that changing
//! the default later never changes what an existing handle means. A bare id (written by a
//! one-cloud driver, or by `import` before) is looked up in every cloud, the default first:
//! cloud ids are UUIDs, so at most one cloud holds it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::cloud::Backend;
use crate::cloud::types::Volume;
use crate::contract::{CloudId, Handle, IdError};
use crate::csi::status::CsiError;

/// Backends by cloud name.
#[derive(Clone, Debug)]
pub struct Clouds {
    default: String,
    backends: BTreeMap<String, Arc<dyn Backend>>,
}

/// One cloud: its name and backend.
pub type Cloud<'a> = (&'a str, &'a Arc<dyn Backend>);

impl Clouds {
    /// Backends with `default` as the cloud of unprefixed ids; `default` must be a key.
    pub fn new(default: String, backends: BTreeMap<String, Arc<dyn Backend>>) -> Self {
        assert!(backends.contains_key(&default), "the default cloud has a backend");
        Self { default, backends }
    }

    /// The backend of a named cloud (`None`: the default).
    pub fn backend(&self, cloud: Option<&str>) -> Result<Cloud<'_>, CsiError> {
        let name = cloud.unwrap_or(&self.default);
        self.backends.get_key_value(name).map(|(k, v)| (k.as_str(), v)).ok_or_else(|| {
            CsiError::InvalidArgument(format!(
                "cloud {} is not configured (known: {})",
                crate::contract::ids::quote(name),
                self.backends.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// Every backend, the default first.
    pub fn all(&self) -> impl Iterator<Item = (&String, &Arc<dyn Backend>)> {
        let default = self.backends.get_key_value(&self.default);
        default.into_iter().chain(self.backends.iter().filter(|(k, _)| **k != self.default))
    }

    /// The CSI id of a cloud object: prefixed whenever more than one cloud is configured.
    pub fn handle(&self, cloud: &str, id: &impl std::fmt::Display) -> String {
        if self.backends.len() == 1 { id.to_string() } else { format!("{cloud}:{id}") }
    }

    /// The clouds a parsed handle may live in: its named cloud, or (bare) every cloud, the
    /// default first. A cloud that is not configured holds nothing: `NotFound`.
    pub fn candidates<T>(&self, handle: &Handle<T>) -> Result<Vec<Cloud<'_>>, CsiError> {
        match &handle.cloud {
            Some(name) => match self.backends.get_key_value(name.as_str()) {
                Some((k, v)) => Ok(vec![(k.as_str(), v)]),
                None => Err(CsiError::NotFound(format!(
                    "cloud {} is not configured, so it holds nothing",
                    crate::contract::ids::quote(name)
                ))),
            },
            None => Ok(self.all().map(|(k, v)| (k.as_str(), v)).collect()),
        }
    }

    /// The one cloud a handle is created in or compared against: its named cloud, or the
    /// default for a bare id.
    pub fn home<T>(&self, handle: &Handle<T>) -> Result<Cloud<'_>, CsiError> {
        match &handle.cloud {
            Some(_) => Ok(self.candidates(handle)?.remove(0)),
            None => self.backend(None),
        }
    }

    /// The volume a handle names, with its cloud; `None` when no candidate cloud has it.
    pub async fn locate_volume(
        &self,
        handle: &Handle<CloudId>,
    ) -> Result<Option<(Cloud<'_>, Volume)>, CsiError> {
        for cloud in self.candidates(handle)? {
            if let Some(volume) = cloud.1.get_volume(&handle.id).await? {
                return Ok(Some((cloud, volume)));
            }
        }
        Ok(None)
    }
}

/// A request's volume (or group snapshot) handle, parsed. Empty or NUL-holding text is
/// `InvalidArgument`; anything else that cannot be a handle is `NotFound`: it names nothing
/// this driver could have issued. RPCs for which the spec asks OK on a missing object (the
/// deletes, unpublish) map that `NotFound` to success.
pub fn volume_handle(what: &'static str, text: &str) -> Result<Handle<CloudId>, CsiError> {
    refuse_unreadable(what, text)?;
    Handle::<CloudId>::parse(what, text).map_err(not_found)
}

/// A request's snapshot handle, parsed (`[<cloud>:][backup/]<uuid>`); codes as
/// [`volume_handle`].
pub fn snapshot_handle(
    what: &'static str,
    text: &str,
) -> Result<Handle<crate::contract::SnapshotRef>, CsiError> {
    refuse_unreadable(what, text)?;
    Handle::<crate::contract::SnapshotRef>::parse(what, text).map_err(not_found)
}

/// A request's node id: the cloud server's id. Codes as [`volume_handle`].
pub fn node_id(what: &'static str, text: &str) -> Result<CloudId, CsiError> {
    refuse_unreadable(what, text)?;
    CloudId::parse(what, text).map_err(not_found)
}

fn refuse_unreadable(what: &'static str, text: &str) -> Result<(), CsiError> {
    if text.is_empty() {
        return Err(CsiError::InvalidArgument(format!("{what} is required")));
    }
    if text.contains('\0') {
        return Err(CsiError::InvalidArgument(format!("{what} contains a NUL byte")));
    }
    Ok(())
}

fn not_found(error: IdError) -> CsiError {
    match error {
        IdError::Empty { what } => CsiError::InvalidArgument(format!("{what} is required")),
        IdError::Malformed { .. } => CsiError::NotFound(format!("{error}, so it names nothing")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";

    fn clouds(names: &[&str]) -> Clouds {
        let backends = names
            .iter()
            .map(|n| {
                let b: Arc<dyn Backend> = Arc::new(crate::cloud::fake::FakeBackend::default());
                (n.to_string(), b)
            })
            .collect();
        Clouds::new(names[0].to_string(), backends)
    }

    #[test]
    fn one_cloud_writes_bare_ids() {
        assert_eq!(clouds(&["a"]).handle("a", &ID), ID);
    }

    #[test]
    fn several_clouds_prefix_every_handle_the_default_included() {
        let c = clouds(&["a", "b"]);
        assert_eq!(c.handle("a", &ID), format!("a:{ID}"));
        assert_eq!(c.handle("b", &ID), format!("b:{ID}"));
    }

    #[test]
    fn a_bare_id_may_live_in_every_cloud_default_first() {
        let c = clouds(&["b", "a"]);
        let handle = volume_handle("volume_id", ID).unwrap();
        let names: Vec<&str> = c.candidates(&handle).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["b", "a"]);
    }

    #[test]
    fn an_unknown_cloud_prefix_holds_nothing() {
        let handle = volume_handle("volume_id", &format!("x:{ID}")).unwrap();
        assert_eq!(clouds(&["a"]).candidates(&handle).unwrap_err().code(), tonic::Code::NotFound);
    }

    #[test]
    fn empty_and_nul_ids_are_invalid_and_malformed_ones_name_nothing() {
        assert_eq!(volume_handle("volume_id", "").unwrap_err().code(), tonic::Code::InvalidArgument);
        assert_eq!(volume_handle("volume_id", "a\0b").unwrap_err().code(), tonic::Code::InvalidArgument);
        for text in ["detail", "../volumes/x", &format!("{ID}?cascade=true"), &format!("a:b/../{ID}")] {
            assert_eq!(volume_handle("volume_id", text).unwrap_err().code(), tonic::Code::NotFound, "{text}");
        }
        assert_eq!(node_id("node_id", "srv?x=1").unwrap_err().code(), tonic::Code::NotFound);
    }
}
