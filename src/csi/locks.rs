//! Per-object operation locks. Identical retries of one operation queue behind each other
//! (each then finds the work done and returns the same answer); a different operation on the
//! same object gets `Aborted`, as the CSI spec asks, instead of racing.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::status::CsiError;
use crate::contract::{CloudId, SnapshotRef};

#[derive(Debug)]
struct Slot {
    operation: u64,
    describe: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    holders: usize,
}

/// What an operation locks: the name a create is for, or the object an id names. Each kind
/// has its own space, so a volume and a snapshot with the same text never share a lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// The name CreateVolume is asked for.
    VolumeName(String),
    /// A volume.
    Volume(CloudId),
    /// The name CreateSnapshot is asked for.
    SnapshotName(String),
    /// A snapshot or backup.
    Snapshot(SnapshotRef),
    /// The name CreateVolumeGroupSnapshot is asked for.
    GroupSnapshotName(String),
    /// A group snapshot.
    GroupSnapshot(CloudId),
}

impl std::fmt::Display for LockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::VolumeName(name) => write!(f, "name/{name}"),
            Self::Volume(id) => write!(f, "volume/{id}"),
            Self::SnapshotName(name) => write!(f, "snapshot-name/{name}"),
            Self::Snapshot(id) => write!(f, "snapshot/{id}"),
            Self::GroupSnapshotName(name) => write!(f, "group-snapshot-name/{name}"),
            Self::GroupSnapshot(id) => write!(f, "group-snapshot/{id}"),
        }
    }
}

/// Locks keyed by object (volume name or id).
#[derive(Debug, Default)]
pub struct OperationLocks {
    slots: Mutex<HashMap<String, Slot>>,
}

/// Held while an operation runs; released on drop.
#[derive(Debug)]
pub struct OperationGuard {
    locks: Arc<OperationLocks>,
    key: String,
    _held: OwnedMutexGuard<()>,
}

impl Drop for OperationGuard {
    fn drop(&mut self) {
        let mut slots = self.locks.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = slots.get_mut(&self.key) {
            slot.holders -= 1;
            if slot.holders == 0 {
                slots.remove(&self.key);
            }
        }
    }
}

/// A stable fingerprint of an operation (method and request, secrets already redacted by
/// the request's `Debug`).
pub fn fingerprint(method: &str, request: &impl std::fmt::Debug) -> u64 {
    let mut hasher = DefaultHasher::new();
    method.hash(&mut hasher);
    format!("{request:?}").hash(&mut hasher);
    hasher.finish()
}

impl OperationLocks {
    /// New, empty locks.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes the lock for `key`: waits behind the same operation, refuses a different one.
    pub async fn acquire(
        self: &Arc<Self>,
        key: &LockKey,
        operation: u64,
        describe: &str,
    ) -> Result<OperationGuard, CsiError> {
        let key = key.to_string();
        let lock = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.entry(key.clone()).or_insert_with(|| Slot {
                operation,
                describe: describe.to_string(),
                lock: Arc::new(tokio::sync::Mutex::new(())),
                holders: 0,
            });
            if slot.operation != operation {
                return Err(CsiError::Aborted(format!(
                    "{} is in progress for {key}; retry {describe} later",
                    slot.describe
                )));
            }
            slot.holders += 1;
            slot.lock.clone()
        };
        let held = lock.lock_owned().await;
        Ok(OperationGuard { locks: self.clone(), key, _held: held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn volume(n: u8) -> LockKey {
        LockKey::Volume(CloudId::parse("id", &format!("00000000-0000-0000-0000-0000000000{n:02}")).unwrap())
    }

    #[test]
    fn keys_of_different_kinds_never_collide() {
        let name = "00000000-0000-0000-0000-000000000001";
        assert_ne!(LockKey::VolumeName(name.into()).to_string(), volume(1).to_string());
        assert_ne!(
            LockKey::SnapshotName(name.into()).to_string(),
            LockKey::VolumeName(name.into()).to_string()
        );
    }

    #[tokio::test]
    async fn a_different_operation_on_the_same_key_is_aborted() {
        let locks = OperationLocks::new();
        let _create = locks.acquire(&volume(1), 1, "CreateVolume").await.unwrap();
        let err = locks.acquire(&volume(1), 2, "DeleteVolume").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert!(err.to_string().contains("CreateVolume is in progress"), "{err}");
        assert!(locks.acquire(&volume(2), 2, "DeleteVolume").await.is_ok(), "other keys are independent");
    }

    #[tokio::test]
    async fn identical_operations_queue_and_the_key_is_freed_after_the_last() {
        let locks = OperationLocks::new();
        let first = locks.acquire(&volume(1), 7, "CreateVolume").await.unwrap();
        let queued = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire(&volume(1), 7, "CreateVolume").await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!queued.is_finished(), "the retry waits for the first");
        drop(first);
        queued.await.unwrap().unwrap();
        assert!(locks.acquire(&volume(1), 8, "DeleteVolume").await.is_ok(), "the key is free again");
    }

    #[test]
    fn fingerprints_differ_by_method_and_request() {
        assert_eq!(fingerprint("A", &1), fingerprint("A", &1));
        assert_ne!(fingerprint("A", &1), fingerprint("B", &1));
        assert_ne!(fingerprint("A", &1), fingerprint("A", &2));
    }
}
