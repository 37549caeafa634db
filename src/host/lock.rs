//! One operation per volume at a time: a second call for a volume that is busy is refused at
//! once (the CO retries), rather than queued behind the first.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use super::{Error, Result};

/// The set of volumes with an operation in flight; clones share the set.
#[derive(Clone, Debug, Default)]
pub struct VolumeLocks {
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Holds a volume's lock until dropped.
#[derive(Debug)]
pub struct VolumeGuard {
    volume_id: String,
    locks: VolumeLocks,
}

impl VolumeLocks {
    /// An empty lock set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lock of `volume_id`, or fails with [`Error::Busy`] if it is held.
    pub fn try_lock(&self, volume_id: &str) -> Result<VolumeGuard> {
        if self.set().insert(volume_id.to_string()) {
            Ok(VolumeGuard { volume_id: volume_id.to_string(), locks: self.clone() })
        } else {
            Err(Error::Busy(volume_id.to_string()))
        }
    }

    fn set(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.busy.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for VolumeGuard {
    fn drop(&mut self) {
        self.locks.set().remove(&self.volume_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_volume_refuses_a_second_lock_and_frees_on_drop() {
        let locks = VolumeLocks::new();
        let guard = locks.try_lock("v1").unwrap();
        assert!(matches!(locks.try_lock("v1"), Err(Error::Busy(id)) if id == "v1"));
        assert!(locks.try_lock("v2").is_ok(), "other volumes are independent");
        drop(guard);
        assert!(locks.try_lock("v1").is_ok());
    }
}
