//! The waits every backend needs, over the shared wait engine: a volume until a condition
//! holds (failing on `error*` states and disappearance), and a snapshot until available.

use std::collections::HashMap;
use std::time::Duration;

use super::error::CloudError;
use super::types::{Snapshot, SnapshotStatus, Volume, VolumeSource, VolumeSpec, VolumeStatus};
use super::wait::{Check, StatusSource, WaitKind, Waiter};

/// The kind of transition creating `spec` starts: restores and clones take their own time.
pub fn create_kind(spec: &VolumeSpec) -> WaitKind {
    let operation = match &spec.source {
        None => "volume.create",
        Some(VolumeSource::Snapshot(_)) => "volume.create_from_snapshot",
        Some(VolumeSource::Volume(_)) => "volume.clone",
        Some(VolumeSource::Backup(_)) => "volume.restore",
    };
    WaitKind::new(operation, spec.volume_type.as_deref())
}

/// The current state of each id, one GET each: the poll of resources a cloud cannot list by
/// change, shared by every backend's status sources.
pub async fn fetch_each<'a, T, F, Fut>(
    ids: &'a [String],
    get: F,
) -> Result<HashMap<String, Option<T>>, CloudError>
where
    F: Fn(&'a str) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, CloudError>>,
{
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        out.insert(id.clone(), get(id).await?);
    }
    Ok(out)
}

fn gone(kind: &'static str, id: &str) -> CloudError {
    CloudError::NotFound { kind, id: id.to_string() }
}

fn error_state(kind: &'static str, id: &str, status: &str) -> CloudError {
    CloudError::ErrorState { kind, id: id.to_string(), status: status.to_string(), reason: None }
}

/// Waits until `accept` holds for the volume; an `error*` state or its disappearance fails.
pub async fn volume_until<S: StatusSource<Item = Volume>>(
    waiter: &Waiter<S>,
    id: &str,
    seed: Option<Volume>,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Volume) -> bool + Send,
) -> Result<Volume, CloudError> {
    volume_until_as(waiter, None, id, seed, timeout, what, accept).await
}

/// [`volume_until`] for a transition of `kind`, which it learns from and polls by.
pub async fn volume_until_as<S: StatusSource<Item = Volume>>(
    waiter: &Waiter<S>,
    kind: Option<&WaitKind>,
    id: &str,
    seed: Option<Volume>,
    timeout: Duration,
    what: &str,
    accept: impl Fn(&Volume) -> bool + Send,
) -> Result<Volume, CloudError> {
    let check = |v: Option<&Volume>| match v {
        None => Check::Fail(gone("volume", id)),
        Some(v) if accept(v) => Check::Done,
        Some(Volume { status: VolumeStatus::Error(status), .. }) => {
            Check::Fail(error_state("volume", id, status))
        }
        Some(_) => Check::Continue,
    };
    waiter.wait_as(kind, id, seed, check, timeout, what).await?.ok_or_else(|| gone("volume", id))
}

/// Waits until the snapshot is available; an `error*` state or its disappearance fails.
pub async fn snapshot_ready<S: StatusSource<Item = Snapshot>>(
    waiter: &Waiter<S>,
    id: &str,
    timeout: Duration,
) -> Result<Snapshot, CloudError> {
    let check = |s: Option<&Snapshot>| match s {
        None => Check::Fail(gone("snapshot", id)),
        Some(Snapshot { status: SnapshotStatus::Available, .. }) => Check::Done,
        Some(Snapshot { status: SnapshotStatus::Error(status), .. }) => {
            Check::Fail(error_state("snapshot", id, status))
        }
        Some(_) => Check::Continue,
    };
    let what = format!("snapshot {id} to become available");
    waiter.wait(id, None, check, timeout, &what).await?.ok_or_else(|| gone("snapshot", id))
}
