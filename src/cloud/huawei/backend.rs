//! The Huawei Cloud implementation of [`Backend`]: EVS for disks and snapshots, ECS for
//! attachments, jobs and disk states followed through the wait engine.

use crate::contract::CloudId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::auth::Client;
use super::ecs::{Ecs, Submitted};
use super::endpoints::Service;
use super::evs::{self, Evs};
use super::jobs::{Job, Jobs};
use super::tags::{self, Tags};
use crate::cloud::backend::Backend;
use crate::cloud::conditions::{self, Condition};
use crate::cloud::error::CloudError;
use crate::cloud::lookup::{self, NameLookups, NameSource};
use crate::cloud::recent::Recent;
use crate::cloud::types::{
    Attached, Capacity, Owner, Page, Snapshot, SnapshotSpec, TagRepair, Volume, VolumeSource, VolumeSpec,
    VolumeStatus,
};
use crate::cloud::wait::{Check, StatusSource, WaitKind, WaitSettings, Waiter};

/// How long `create_volume` waits for the create job to name its disk.
const CREATE_ACCEPT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a read stands in for the next one of the same RPC (its checks, then the action).
const READ_TTL: Duration = Duration::from_millis(500);

/// Polls EVS disks for the wait engine: one `ids` query for many, single GETs for few.
#[derive(Debug)]
struct VolumeStates(Arc<Evs>);

#[async_trait::async_trait]
impl StatusSource for VolumeStates {
    type Item = Volume;
    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Volume>>, CloudError> {
        if ids.len() > 2 {
            return self.0.volumes_by_id(ids).await;
        }
        crate::cloud::waits::fetch_each(ids, |id| self.0.get_volume(id)).await
    }
}

/// Polls EVS snapshots for the wait engine.
#[derive(Debug)]
struct SnapshotStates(Arc<Evs>);

#[async_trait::async_trait]
impl StatusSource for SnapshotStates {
    type Item = Snapshot;
    async fn fetch(
        &self,
        ids: &[String],
        _individually: &[String],
        _since: SystemTime,
    ) -> Result<HashMap<String, Option<Snapshot>>, CloudError> {
        crate::cloud::waits::fetch_each(ids, |id| self.0.get_snapshot(id)).await
    }
}

/// Looks disk names up in EVS: a `?name=` query each, or, for a burst of names, one listing
/// of the disks carrying the owner's metadata. Metadata rather than tags: tags can be removed
/// by hand and are only put back by the next repair pass; metadata is what ownership is.
#[derive(Debug)]
struct DiskNames {
    evs: Arc<Evs>,
    owner: Option<Owner>,
}

#[async_trait::async_trait]
impl NameSource for DiskNames {
    async fn by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        self.evs.volumes_named(name).await
    }

    async fn owned_page(
        &self,
        marker: Option<&str>,
    ) -> Option<Result<(Vec<Volume>, Option<String>), CloudError>> {
        let owner = self.owner.as_ref()?;
        let page = self.evs.page_volumes_with_metadata(&owner.key, &owner.value, marker).await;
        Some(page.map(|page| (page.items, page.next)))
    }
}

/// A Huawei Cloud.
#[derive(Debug)]
pub struct HuaweiBackend {
    client: Arc<Client>,
    evs: Arc<Evs>,
    tags: Tags,
    owner: Option<Owner>,
    ecs: Ecs,
    evs_jobs: Jobs,
    ecs_jobs: Jobs,
    volumes: Waiter<VolumeStates>,
    snapshots: Waiter<SnapshotStates>,
    names: NameLookups,
    /// What an RPC has just read, so that its attach or detach need not read it again.
    reads: Recent<Volume>,
    /// The kind of transition each new disk's create started, for its wait.
    kinds: Recent<WaitKind>,
}

fn is_attached_to(volume: &Volume, server_id: &str) -> bool {
    volume.attachments.iter().any(|a| a.server_id == server_id)
}

impl HuaweiBackend {
    /// A backend on a client; must be created inside the runtime (it starts pollers).
    /// Disks with `owner` in their metadata are the ones a burst of name lookups may list and
    /// the tag repair looks after.
    pub fn new(client: Arc<Client>, waits: WaitSettings, owner: Option<Owner>) -> Self {
        let evs = Arc::new(Evs::new(client.clone()));
        Self {
            names: NameLookups::new(DiskNames { evs: evs.clone(), owner: owner.clone() }),
            owner,
            tags: Tags::new(client.clone()),
            ecs: Ecs::new(client.clone()),
            evs_jobs: Jobs::new(client.clone(), Service::Evs, waits.clone()),
            ecs_jobs: Jobs::new(client.clone(), Service::Ecs, waits.clone()),
            volumes: Waiter::new(VolumeStates(evs.clone()), waits.clone()),
            snapshots: Waiter::new(SnapshotStates(evs.clone()), waits),
            reads: Recent::new(READ_TTL),
            kinds: Recent::new(Duration::from_secs(600)),
            evs,
            client,
        }
    }

    async fn wait_volume(
        &self,
        id: &str,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Volume) -> bool + Send,
    ) -> Result<Volume, CloudError> {
        self.wait_volume_as(None, id, timeout, what, accept).await
    }

    async fn wait_volume_as(
        &self,
        kind: Option<&WaitKind>,
        id: &str,
        timeout: Duration,
        what: &str,
        accept: impl Fn(&Volume) -> bool + Send,
    ) -> Result<Volume, CloudError> {
        let waited =
            crate::cloud::waits::volume_until_as(&self.volumes, kind, id, None, timeout, what, accept).await;
        // The settled read replaces any older one: an attach right after must act on it.
        self.reads.remember(id, waited.as_ref().ok());
        waited
    }

    /// The disk as this RPC has just read it, or as EVS says now.
    async fn current(&self, id: &str) -> Result<Option<Volume>, CloudError> {
        match self.reads.take(id) {
            Some(volume) => Ok(Some(volume)),
            None => self.evs.get_volume(id).await,
        }
    }

    /// The type of the disk a snapshot was taken of: EVS restores a snapshot only into a disk
    /// of that type, and its create request must name one.
    async fn snapshot_source_type(&self, snapshot_id: &str) -> Result<String, CloudError> {
        let not_found = |kind, id: &str| CloudError::NotFound { kind, id: id.to_string() };
        let snapshot =
            self.evs.get_snapshot(snapshot_id).await?.ok_or_else(|| not_found("snapshot", snapshot_id))?;
        let source = self.evs.get_volume(&snapshot.volume_id).await?;
        let source = source.ok_or_else(|| not_found("volume", &snapshot.volume_id))?;
        Ok(source.volume_type.unwrap_or_else(|| evs::DEFAULT_TYPE.to_string()))
    }

    /// Waits for a job until it names a disk (or finishes); returns the disk id.
    async fn created_volume_id(&self, spec: &VolumeSpec, job_id: &str) -> Result<String, CloudError> {
        let name = &spec.name;
        let kind = WaitKind::new("job.create_names_disk", spec.volume_type.as_deref());
        let job = self
            .evs_jobs
            .wait_as(
                Some(&kind),
                job_id,
                |job: Option<&Job>| match job {
                    Some(j) if !j.volume_ids.is_empty() => Check::Done,
                    other => super::jobs::until_finished(other, job_id, "volume", name),
                },
                CREATE_ACCEPT_TIMEOUT,
                &format!("create job {job_id} of {name} to name its disk"),
            )
            .await?;
        job.and_then(|j| j.volume_ids.into_iter().next())
            .ok_or_else(|| CloudError::Protocol(format!("create job {job_id} finished without a volume_id")))
    }
}

#[async_trait::async_trait]
impl Backend for HuaweiBackend {
    fn features(&self) -> crate::cloud::features::Features {
        // EVS has no clone of a disk and no consistency groups.
        crate::cloud::features::Features { clone_volume: false, group_snapshots: false }
    }

    async fn probe(&self) -> Result<(), CloudError> {
        self.client.authenticate().await?;
        self.evs.page_volumes(Some(1), None).await?;
        Ok(())
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CloudError> {
        let inherited;
        let spec = match (&spec.source, &spec.volume_type) {
            (Some(VolumeSource::Snapshot(snapshot_id)), None) => {
                let volume_type = Some(self.snapshot_source_type(snapshot_id).await?);
                inherited = VolumeSpec { volume_type, ..spec.clone() };
                &inherited
            }
            _ => spec,
        };
        // The tags ride in the create request; a disk whose tags went missing anyway (made by
        // an older driver, or tagged by hand) is the repair pass's job, not another call here.
        let tags = tags::tags_for(&spec.metadata, self.owner.as_ref().map(|o| o.key.as_str()));
        let created = self.evs.create_volume(spec, &tags).await?;
        let id = match (created.volume_ids.first(), &created.job_id) {
            (Some(id), _) => id.clone(),
            (None, Some(job)) => self.created_volume_id(spec, job).await?,
            (None, None) => {
                return Err(CloudError::Protocol("EVS accepted a create without job or disk id".into()));
            }
        };
        self.kinds.put(&id, crate::cloud::waits::create_kind(spec));
        // The disk as requested, not as read back: every caller waits for it to become ready
        // next, and that wait's look is the read. A GET here would be one more call per create.
        Ok(Volume {
            id,
            name: spec.name.clone(),
            size_gib: spec.size_gib,
            status: VolumeStatus::Creating,
            zone: spec.zone.clone().unwrap_or_default(),
            volume_type: Some(spec.volume_type.clone().unwrap_or_else(|| evs::DEFAULT_TYPE.into())),
            multiattach: spec.multiattach,
            attachments: Vec::new(),
            metadata: spec.metadata.clone(),
            source_snapshot_id: None,
            source_volume_id: None,
            wwn: None,
        })
    }

    async fn get_volume(&self, id: &CloudId) -> Result<Option<Volume>, CloudError> {
        let volume = self.evs.get_volume(id).await?;
        self.reads.remember(id, volume.as_ref());
        Ok(volume)
    }

    async fn find_volumes_by_name(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        self.names.find(name).await
    }

    async fn list_volumes(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError> {
        self.evs.page_volumes(limit, marker).await
    }

    async fn delete_volume(&self, id: &CloudId) -> Result<(), CloudError> {
        self.evs.delete_volume(id).await
    }

    async fn extend_volume(&self, id: &CloudId, size_gib: u64) -> Result<(), CloudError> {
        self.evs.extend_volume(id, size_gib).await.map(|_| ())
    }

    async fn wait_volume_ready(&self, id: &CloudId, timeout: Duration) -> Result<Volume, CloudError> {
        let kind = self.kinds.take(id);
        let what = format!("volume {id} to become ready");
        self.wait_volume_as(kind.as_ref(), id, timeout, &what, conditions::is_ready().on_present()).await
    }

    async fn modify_performance(
        &self,
        id: &CloudId,
        iops: Option<u64>,
        throughput: Option<u64>,
        timeout: Duration,
    ) -> Result<(), CloudError> {
        if let Some(job_id) = self.evs.modify_qos(id, iops, throughput).await? {
            self.evs_jobs.finish(&job_id, "volume", id, timeout).await?;
        }
        Ok(())
    }

    async fn retype_volume(&self, id: &CloudId, _volume_type: &str) -> Result<(), CloudError> {
        // EVS documents no retype; changing a disk's performance is a separate QoS API.
        Err(CloudError::Unsupported(format!("EVS cannot change the type of disk {id}")))
    }

    async fn wait_volume_retyped(
        &self,
        id: &CloudId,
        _volume_type: &str,
        _timeout: Duration,
    ) -> Result<Volume, CloudError> {
        Err(CloudError::Unsupported(format!("EVS cannot change the type of disk {id}")))
    }

    async fn wait_volume_extended(
        &self,
        id: &CloudId,
        size_gib: u64,
        timeout: Duration,
    ) -> Result<Volume, CloudError> {
        let extended = conditions::is_ready().and(conditions::has_size(size_gib));
        self.wait_volume(id, timeout, &format!("volume {id} to reach {size_gib} GiB"), extended.on_present())
            .await
    }

    async fn wait_volume_deleted(&self, id: &CloudId, timeout: Duration) -> Result<(), CloudError> {
        self.volumes
            .wait(
                id,
                None,
                |v| {
                    conditions::verdict(
                        id.as_str(),
                        v,
                        &conditions::is_gone(),
                        &conditions::has_error("error_deleting"),
                    )
                },
                timeout,
                &format!("volume {id} to be deleted"),
            )
            .await?;
        Ok(())
    }

    async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError> {
        if spec.name.starts_with("autobk_snapshot_") {
            // EVS reserves these names for server backups.
            return Err(CloudError::InvalidInput(
                "snapshot names starting autobk_snapshot_ are reserved".into(),
            ));
        }
        self.evs.create_snapshot(spec).await
    }

    async fn get_snapshot(&self, id: &CloudId) -> Result<Option<Snapshot>, CloudError> {
        self.evs.get_snapshot(id).await
    }

    async fn find_snapshots_by_name(&self, name: &str) -> Result<Vec<Snapshot>, CloudError> {
        let page = self.evs.list_snapshots(None, Some(name), None, None).await?;
        Ok(page.items.into_iter().filter(|s| s.name == name).collect())
    }

    async fn list_snapshots(
        &self,
        volume_id: Option<&CloudId>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Snapshot>, CloudError> {
        self.evs.list_snapshots(volume_id.map(|v| v.as_str()), None, limit, marker).await
    }

    async fn delete_snapshot(&self, id: &CloudId) -> Result<(), CloudError> {
        self.evs.delete_snapshot(id).await
    }

    async fn wait_snapshot_ready(&self, id: &CloudId, timeout: Duration) -> Result<Snapshot, CloudError> {
        crate::cloud::waits::snapshot_ready(&self.snapshots, id, timeout).await
    }

    async fn attach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<Attached, CloudError> {
        let volume = self
            .current(volume_id)
            .await?
            .ok_or(CloudError::NotFound { kind: "volume", id: volume_id.to_string() })?;
        let kind = WaitKind::new("job.attach", volume.volume_type.as_deref());
        let attached_here = |v: &Volume| v.status != VolumeStatus::Attaching && is_attached_to(v, server_id);
        // No device hint on EVS: the name in `attachments[].device` is the hypervisor's guess,
        // the node finds the disk by its serial anyway, and leaving it out keeps the publish
        // context the same whether or not this call had to read the disk after the attach.
        let done = Attached { device_hint: None };
        if attached_here(&volume) {
            return Ok(done);
        }
        if volume.status != VolumeStatus::Attaching {
            let outcome = match self.ecs.attach(server_id, volume_id).await? {
                Ok(Submitted::ServerMissing) => {
                    Err(CloudError::NotFound { kind: "server", id: server_id.to_string() })
                }
                Ok(Submitted::NotAttached) => {
                    Err(CloudError::Protocol("ECS answered an attach with \"not attached\"".into()))
                }
                Ok(Submitted::Job(job_id)) => {
                    // ECS ends this job in success only once the disk is attached to this
                    // server: the job's answer is the look at the disk, no GET needed.
                    match self.ecs_jobs.finish_as(Some(&kind), &job_id, "volume", volume_id, timeout).await {
                        Ok(_) => return Ok(done),
                        Err(e) => Err(e),
                    }
                }
                Ok(Submitted::Accepted) => Ok(()),
                Err(fault) => Err(fault.to_error("volume", volume_id)),
            };
            if let Err(error) = outcome {
                // "Already attached" comes back as a refusal; the disk itself says whether it is.
                match self.evs.get_volume(volume_id).await? {
                    Some(v) if attached_here(&v) => return Ok(done),
                    _ => return Err(error),
                }
            }
        }
        // Attaching already, or accepted without a job: the disk is the only witness.
        let server = server_id.to_string();
        self.wait_volume(
            volume_id,
            timeout,
            &format!("volume {volume_id} to attach to {server_id}"),
            move |v| v.status == VolumeStatus::InUse && is_attached_to(v, &server),
        )
        .await?;
        Ok(done)
    }

    async fn detach(
        &self,
        volume_id: &CloudId,
        server_id: &CloudId,
        timeout: Duration,
    ) -> Result<(), CloudError> {
        let Some(volume) = self.current(volume_id).await? else { return Ok(()) };
        if !is_attached_to(&volume, server_id) {
            return Ok(());
        }
        let kind = WaitKind::new("job.detach", volume.volume_type.as_deref());
        if volume.status != VolumeStatus::Detaching {
            let outcome = match self.ecs.detach(server_id, volume_id).await? {
                // A deleted server holds no disks; its VolumeAttachment may be released. ECS
                // is the authority on what a server holds, even while EVS still lists it.
                Ok(Submitted::ServerMissing | Submitted::NotAttached) => return Ok(()),
                Ok(Submitted::Job(job_id)) => {
                    // A successful detach job means the server no longer holds the disk.
                    match self.ecs_jobs.finish_as(Some(&kind), &job_id, "volume", volume_id, timeout).await {
                        Ok(_) => return Ok(()),
                        Err(e) => Err(e),
                    }
                }
                Ok(Submitted::Accepted) => Ok(()),
                Err(fault) => Err(fault.to_error("volume", volume_id)),
            };
            if let Err(error) = outcome {
                match self.evs.get_volume(volume_id).await? {
                    None => return Ok(()),
                    Some(v) if !is_attached_to(&v, server_id) => return Ok(()),
                    Some(_) if matches!(error, CloudError::NotFound { .. }) => return Ok(()),
                    Some(_) => return Err(error),
                }
            }
        }
        let server = server_id.to_string();
        match self
            .wait_volume(
                volume_id,
                timeout,
                &format!("volume {volume_id} to detach from {server_id}"),
                move |v| !is_attached_to(v, &server) && v.status != VolumeStatus::Detaching,
            )
            .await
        {
            Err(CloudError::NotFound { .. }) => Ok(()),
            other => other.map(|_| ()),
        }
    }

    async fn set_volume_metadata(
        &self,
        id: &CloudId,
        _current: &std::collections::BTreeMap<String, String>,
        key: &str,
        value: &str,
    ) -> Result<(), CloudError> {
        self.evs.merge_metadata(id, key, value).await
    }

    async fn attached_count(&self, server_id: &CloudId) -> Result<usize, CloudError> {
        self.ecs.attachment_count(server_id).await
    }

    async fn capacity(&self, volume_type: Option<&str>) -> Result<Capacity, CloudError> {
        self.evs.capacity(volume_type).await
    }

    /// One tag query for the disks carrying the owner tag, then the owned disks by metadata:
    /// a settled disk whose tags are absent or differ from its metadata gets them added.
    async fn repair_tags(&self) -> Result<TagRepair, CloudError> {
        let Some(owner) = &self.owner else { return Ok(TagRepair::default()) };
        let (key, value) = tags::tag_for(&owner.key, &owner.value);
        let tagged: HashMap<String, BTreeMap<String, String>> = self
            .tags
            .disks_tagged(&key, &value, tags::MAX_QUERY_PAGE)
            .await?
            .into_iter()
            .map(|disk| (disk.id, disk.tags))
            .collect();
        // The same listing of the cluster's disks that a burst of name lookups uses.
        let owned = DiskNames { evs: self.evs.clone(), owner: Some(owner.clone()) };
        let owned = lookup::list_owned(&owned).await.unwrap_or_else(|| Ok(Vec::new()))?;
        let untagged = BTreeMap::new();
        let mut report = TagRepair::default();
        // A disk in a transition may refuse tags; the next pass sees it settled.
        let settled =
            owned.iter().filter(|v| matches!(v.status, VolumeStatus::Available | VolumeStatus::InUse));
        for disk in settled {
            report.checked += 1;
            let expected = tags::tags_for(&disk.metadata, Some(&owner.key));
            let missing = tags::missing_tags(&expected, tagged.get(&disk.id).unwrap_or(&untagged));
            if missing.is_empty() {
                continue;
            }
            match self.tags.add(&disk.id, &missing).await {
                Ok(()) => {
                    report.repaired += 1;
                    tracing::info!(volume_id = %disk.id, tags = missing.len(), "added the disk's missing tags");
                }
                Err(CloudError::NotFound { .. }) => {}
                Err(e) => {
                    report.failed += 1;
                    tracing::warn!(volume_id = %disk.id, error = %e, "could not add the disk's missing tags");
                }
            }
        }
        Ok(report)
    }
}
