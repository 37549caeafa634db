//! Per-object operation locks. Identical retries of one operation queue behind each other
//! (each then finds the work done and returns the same answer); a different operation on the
//! same object gets `Aborted`, as the CSI spec asks, instead of racing.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::status::CsiError;

#[derive(Debug)]
struct Slot {
    operation: u64,
    describe: String,
    lock: Arc<tokio::sync::Mutex<()>>,
    holders: usize,
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
        key: &str,
        operation: u64,
        describe: &str,
    ) -> Result<OperationGuard, CsiError> {
        let lock = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let slot = slots.entry(key.to_string()).or_insert_with(|| Slot {
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
        Ok(OperationGuard { locks: self.clone(), key: key.to_string(), _held: held })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_different_operation_on_the_same_key_is_aborted() {
        let locks = OperationLocks::new();
        let _create = locks.acquire("vol-1", 1, "CreateVolume").await.unwrap();
        let err = locks.acquire("vol-1", 2, "DeleteVolume").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Aborted);
        assert!(err.to_string().contains("CreateVolume is in progress"), "{err}");
        assert!(locks.acquire("vol-2", 2, "DeleteVolume").await.is_ok(), "other keys are independent");
    }

    #[tokio::test]
    async fn identical_operations_queue_and_the_key_is_freed_after_the_last() {
        let locks = OperationLocks::new();
        let first = locks.acquire("vol-1", 7, "CreateVolume").await.unwrap();
        let queued = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.acquire("vol-1", 7, "CreateVolume").await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!queued.is_finished(), "the retry waits for the first");
        drop(first);
        queued.await.unwrap().unwrap();
        assert!(locks.acquire("vol-1", 8, "DeleteVolume").await.is_ok(), "the key is free again");
    }

    #[test]
    fn fingerprints_differ_by_method_and_request() {
        assert_eq!(fingerprint("A", &1), fingerprint("A", &1));
        assert_ne!(fingerprint("A", &1), fingerprint("B", &1));
        assert_ne!(fingerprint("A", &1), fingerprint("A", &2));
    }
}
