//! Waiting out a cloud transition before an action the cloud refuses mid-transition.
//!
//! Cinder and EVS refuse to delete a snapshot that is still `creating`, to extend or attach a
//! volume that is still `creating`, and to delete a volume while its snapshots are `deleting`.
//! COs and conformance suites call at once, so the driver waits for the transition to end
//! (bounded by the configured settle timeout and the caller's gRPC deadline) and then acts,
//! instead of answering an error the caller can only retry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::ControllerService;
use crate::cloud::types::{Backup, GroupSnapshot, Snapshot, SnapshotStatus, Volume, VolumeStatus};
use crate::cloud::wait::{Check, StatusSource, WaitSettings, Waiter};
use crate::cloud::waits::fetch_each;
use crate::cloud::{Backend, CloudError};
use crate::contract::{CloudId, Handle, SnapshotRef};
use crate::csi::deadline;
use crate::csi::status::CsiError;

/// True for the states a volume passes through on its own and that block deletes, extends
/// and attaches (`deleting` is not one: it ends in nothing).
pub(super) fn volume_in_transition(status: &VolumeStatus) -> bool {
    matches!(
        status,
        VolumeStatus::Creating
            | VolumeStatus::Reserved
            | VolumeStatus::Attaching
            | VolumeStatus::Detaching
            | VolumeStatus::Extending
            | VolumeStatus::Retyping
    )
}

/// The answer when the transition outlasts the budget: ABORTED is the spec's "an operation is
/// pending for this object", which every CO retries.
fn still_settling(what: String, budget: Duration) -> CsiError {
    CsiError::Aborted(format!("{what} did not settle within {budget:?}; retry later"))
}

impl ControllerService {
    /// How long this request may wait for a transition.
    fn settle_budget(&self) -> Duration {
        deadline::budget(self.settings.settle_timeout)
    }

    /// The volume a request names and the backend of its cloud, once it is known to be this
    /// cluster's (or imported) and out of any transition: what expand, modify and publish act
    /// on. `named` is the request's own spelling of the id, for messages.
    pub(super) async fn volume_to_act_on(
        &self,
        handle: &Handle<CloudId>,
        named: &str,
    ) -> Result<(&Arc<dyn Backend>, Volume), CsiError> {
        let not_found = || CsiError::NotFound(format!("volume {named} not found"));
        let ((_, backend), volume) = self.clouds.locate_volume(handle).await?.ok_or_else(not_found)?;
        self.check_owner("volume", named, &volume.metadata)?;
        let volume = self.settle_volume(backend, volume).await?.ok_or_else(not_found)?;
        Ok((backend, volume))
    }

    /// The volume once it is out of any transition; `None` when it disappeared meanwhile. A
    /// volume that settles in an error state is returned as it is: the caller decides.
    pub(super) async fn settle_volume(
        &self,
        backend: &Arc<dyn Backend>,
        volume: Volume,
    ) -> Result<Option<Volume>, CsiError> {
        if !volume_in_transition(&volume.status) {
            return Ok(Some(volume));
        }
        let budget = self.settle_budget();
        tracing::info!(volume = %volume.id, status = volume.status.as_str(), "waiting for the volume to settle");
        let id = super::issued("volume", &volume.id)?;
        match backend.wait_volume_ready(&id, budget).await {
            Ok(settled) => Ok(Some(settled)),
            Err(CloudError::NotFound { .. }) => Ok(None),
            Err(CloudError::ErrorState { .. }) => Ok(backend.get_volume(&id).await?),
            Err(CloudError::Timeout(_)) => {
                Err(still_settling(format!("volume {} ({})", volume.id, volume.status.as_str()), budget))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until a snapshot that is still being taken is available (or failed, or gone).
    pub(super) async fn settle_snapshot(
        &self,
        backend: &Arc<dyn Backend>,
        id: &CloudId,
    ) -> Result<(), CsiError> {
        let budget = self.settle_budget();
        tracing::info!(snapshot = %id, "waiting for the snapshot to settle before deleting it");
        match backend.wait_snapshot_ready(id, budget).await {
            Ok(_) | Err(CloudError::NotFound { .. } | CloudError::ErrorState { .. }) => Ok(()),
            Err(CloudError::Timeout(_)) => Err(still_settling(format!("snapshot {id}"), budget)),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until a backup that is still being made is out of `creating`.
    pub(super) async fn settle_backup(
        &self,
        backend: &Arc<dyn Backend>,
        id: &CloudId,
    ) -> Result<(), CsiError> {
        let budget = self.settle_budget();
        tracing::info!(backup = %id, "waiting for the backup to settle before deleting it");
        let waiter = Waiter::new(Backups(backend.clone()), WaitSettings::default());
        let check = |b: Option<&Backup>| match b {
            Some(Backup { status: SnapshotStatus::Creating, .. }) => Check::Continue,
            _ => Check::Done,
        };
        match waiter.wait(id, None, check, budget, &format!("backup {id} to settle")).await {
            Ok(_) => Ok(()),
            Err(CloudError::Timeout(_)) => Err(still_settling(format!("backup {id}"), budget)),
            Err(e) => Err(e.into()),
        }
    }

    /// When the cloud refused to delete a snapshot (or a backup: `id` with its prefix) that
    /// is still being taken, waits for it to settle and deletes it again; any other outcome of
    /// the first delete is passed through unchanged.
    pub(super) async fn delete_once_settled(
        &self,
        backend: &Arc<dyn Backend>,
        id: &SnapshotRef,
        first: Result<(), CloudError>,
    ) -> Result<Result<(), CloudError>, CsiError> {
        if !matches!(first, Err(CloudError::Conflict(_) | CloudError::InvalidInput(_))) {
            return Ok(first);
        }
        match id {
            SnapshotRef::Backup(backup) => {
                let status = backend.get_backup(backup).await?.map(|b| b.status);
                if status != Some(SnapshotStatus::Creating) {
                    return Ok(first);
                }
                self.settle_backup(backend, backup).await?;
                Ok(backend.delete_backup(backup).await)
            }
            SnapshotRef::Snapshot(snapshot) => {
                let status = backend.get_snapshot(snapshot).await?.map(|s| s.status);
                if status != Some(SnapshotStatus::Creating) {
                    return Ok(first);
                }
                self.settle_snapshot(backend, snapshot).await?;
                Ok(backend.delete_snapshot(snapshot).await)
            }
        }
    }

    /// When the cloud refused to delete a group snapshot that is still being taken, waits for
    /// it to settle and deletes it again; any other outcome is passed through unchanged.
    pub(super) async fn delete_group_once_settled(
        &self,
        backend: &Arc<dyn Backend>,
        id: &CloudId,
        first: Result<(), CloudError>,
    ) -> Result<Result<(), CloudError>, CsiError> {
        if !matches!(first, Err(CloudError::Conflict(_) | CloudError::InvalidInput(_))) {
            return Ok(first);
        }
        let status = backend.get_group_snapshot(id).await?.map(|g| g.status);
        if status != Some(SnapshotStatus::Creating) {
            return Ok(first);
        }
        let budget = self.settle_budget();
        tracing::info!(group_snapshot = %id, "waiting for the group snapshot to settle before deleting it");
        let waiter = Waiter::new(GroupSnapshots(backend.clone()), WaitSettings::default());
        let check = |g: Option<&GroupSnapshot>| match g {
            Some(GroupSnapshot { status: SnapshotStatus::Creating, .. }) => Check::Continue,
            _ => Check::Done,
        };
        match waiter.wait(id, None, check, budget, &format!("group snapshot {id} to settle")).await {
            Ok(_) => {}
            Err(CloudError::Timeout(_)) => {
                return Err(still_settling(format!("group snapshot {id}"), budget));
            }
            Err(e) => return Err(e.into()),
        }
        Ok(backend.delete_group_snapshot(id, self.settings.create_timeout).await)
    }

    /// Waits until the snapshots that are being deleted are gone and returns the others: the
    /// ones that really keep their volume from being deleted.
    pub(super) async fn without_deleting_snapshots(
        &self,
        backend: &Arc<dyn Backend>,
        snapshots: Vec<Snapshot>,
    ) -> Result<Vec<Snapshot>, CsiError> {
        let (deleting, blocking): (Vec<_>, Vec<_>) =
            snapshots.into_iter().partition(|s| s.status == SnapshotStatus::Deleting);
        if deleting.is_empty() || !blocking.is_empty() {
            return Ok(blocking);
        }
        let budget = self.settle_budget();
        let waiter = Waiter::new(Snapshots(backend.clone()), WaitSettings::default());
        // The snapshots are deleted in parallel by the cloud; waiting for each in turn costs
        // no more time than the slowest.
        for snapshot in deleting {
            let gone = |s: Option<&Snapshot>| match s {
                None => Check::Done,
                Some(Snapshot { status: SnapshotStatus::Error(status), id, .. }) => {
                    Check::Fail(CloudError::ErrorState {
                        kind: "snapshot",
                        id: id.clone(),
                        status: status.clone(),
                        reason: None,
                    })
                }
                Some(_) => Check::Continue,
            };
            let what = format!("snapshot {} to be deleted", snapshot.id);
            match waiter.wait(&snapshot.id, None, gone, budget, &what).await {
                Ok(_) => {}
                Err(CloudError::Timeout(_)) => return Err(still_settling(what, budget)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(blocking)
    }
}

/// Snapshot states fetched one GET each through the backend.
struct Snapshots(Arc<dyn Backend>);

#[async_trait::async_trait]
impl StatusSource for Snapshots {
    type Item = Snapshot;

    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Snapshot>>, CloudError> {
        fetch_each(ids, |id| async move {
            // The ids come from this module's own parsed ids; anything else names nothing.
            match CloudId::parse("id", id) {
                Ok(id) => self.0.get_snapshot(&id).await,
                Err(_) => Ok(None),
            }
        })
        .await
    }
}

/// Backup states fetched one GET each through the backend.
struct Backups(Arc<dyn Backend>);

#[async_trait::async_trait]
impl StatusSource for Backups {
    type Item = Backup;

    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Backup>>, CloudError> {
        fetch_each(ids, |id| async move {
            // The ids come from this module's own parsed ids; anything else names nothing.
            match CloudId::parse("id", id) {
                Ok(id) => self.0.get_backup(&id).await,
                Err(_) => Ok(None),
            }
        })
        .await
    }
}

/// Group snapshot states fetched one GET each through the backend.
struct GroupSnapshots(Arc<dyn Backend>);

#[async_trait::async_trait]
impl StatusSource for GroupSnapshots {
    type Item = GroupSnapshot;

    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<GroupSnapshot>>, CloudError> {
        fetch_each(ids, |id| async move {
            // The ids come from this module's own parsed ids; anything else names nothing.
            match CloudId::parse("id", id) {
                Ok(id) => self.0.get_group_snapshot(&id).await,
                Err(_) => Ok(None),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;

    /// A volume id as the cloud issues them.
    const V1: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";
    use crate::cloud::fake::{FakeBackend, volume};
    use crate::csi::controller::{Clouds, ControllerSettings};
    use crate::csi::observe::Observer;
    use crate::csi::pb;
    use crate::telemetry::metrics::Metrics;

    fn service(fake: Arc<FakeBackend>) -> ControllerService {
        let backend: Arc<dyn Backend> = fake;
        let mut settings = ControllerSettings::new("csi.example.io".into(), "c".into());
        settings.settle_timeout = Duration::from_millis(50);
        ControllerService::new(
            Clouds::new("default".into(), BTreeMap::from([("default".to_string(), backend)])),
            settings,
            Observer::new(Metrics::new()),
        )
    }

    fn fake_with(id: &str, status: VolumeStatus) -> Arc<FakeBackend> {
        let fake = Arc::new(FakeBackend::default());
        let mut v = volume(id, "pvc", 1);
        v.status = status;
        fake.volumes.lock().unwrap().insert(id.into(), v);
        fake
    }

    #[test]
    fn only_passing_states_are_transitions() {
        for settled in [VolumeStatus::Available, VolumeStatus::InUse, VolumeStatus::Deleting] {
            assert!(!volume_in_transition(&settled), "{settled:?}");
        }
        assert!(!volume_in_transition(&VolumeStatus::Error("error".into())));
        for passing in [VolumeStatus::Creating, VolumeStatus::Extending, VolumeStatus::Attaching] {
            assert!(volume_in_transition(&passing), "{passing:?}");
        }
    }

    #[tokio::test]
    async fn a_delete_of_a_volume_that_never_settles_is_aborted_and_deletes_nothing() {
        let fake = fake_with(V1, VolumeStatus::Creating);
        let service = service(fake.clone());
        let request = pb::DeleteVolumeRequest { volume_id: V1.into(), ..Default::default() };
        let refused = service.delete(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Aborted, "{refused}");
        assert!(fake.volumes.lock().unwrap().contains_key(V1), "the volume was deleted mid-transition");
    }

    #[tokio::test]
    async fn an_expand_of_a_volume_that_never_settles_is_aborted_and_changes_nothing() {
        let fake = fake_with(V1, VolumeStatus::Creating);
        let request = pb::ControllerExpandVolumeRequest {
            volume_id: V1.into(),
            capacity_range: Some(pb::CapacityRange { required_bytes: 2 << 30, limit_bytes: 0 }),
            ..Default::default()
        };
        let refused = service(fake.clone()).expand_rpc(request).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Aborted);
        assert_eq!(fake.volumes.lock().unwrap()[V1].size_gib, 1);
    }

    #[tokio::test]
    async fn a_volume_in_error_is_deleted_without_waiting() {
        let fake = fake_with(V1, VolumeStatus::Error("error".into()));
        let request = pb::DeleteVolumeRequest { volume_id: V1.into(), ..Default::default() };
        service(fake.clone()).delete(request).await.unwrap();
        assert!(fake.volumes.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_wait_is_cut_to_the_callers_deadline() {
        let fake = fake_with(V1, VolumeStatus::Creating);
        let mut service = service(fake);
        service.settings.settle_timeout = Duration::from_secs(600);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        let budget = deadline::scope(Some(deadline), async { service.settle_budget() }).await;
        assert!(budget < Duration::from_millis(300), "{budget:?}");
    }
}
