//! Cinder v3: the requests the driver makes and the JSON it reads, nothing more.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use super::fault;
use super::group_json::{
    GroupJson, GroupMemberList, GroupSnapshotJson, OneGroup, OneGroupSnapshot, OneGroupType,
};
use super::keystone::{BLOCK_STORAGE_TYPES, Session, Token};
use super::microversion::{Microversion, VersionDocument, negotiate, version_root};
use crate::cloud::cinder_json::{OneSnapshot, OneVolume, SnapshotList, VolumeList};
use crate::cloud::error::CloudError;
use crate::cloud::http::{Call, Reply};
use crate::cloud::types::{Capacity, Page, Snapshot, SnapshotSpec, Volume, VolumeSource, VolumeSpec};
use crate::contract::UrlPath;

/// The newest microversion this client understands.
pub const MAX_MICROVERSION: Microversion = Microversion::new(3, 66);
/// In-use volumes can be extended from here on.
pub const IN_USE_EXTEND: Microversion = Microversion::new(3, 42);
/// `updated_at` comparison filters on volume lists.
pub const TIME_FILTERS: Microversion = Microversion::new(3, 60);
/// Generic volume groups and group snapshots.
pub const GROUPS: Microversion = Microversion::new(3, 14);
/// Restore into a new volume from a backup via `backup_id`.
pub const CREATE_FROM_BACKUP: Microversion = Microversion::new(3, 47);
/// User messages (`/messages`), Cinder's account of why an asynchronous operation failed.
pub const MESSAGES: Microversion = Microversion::new(3, 3);

/// `2026-11-23T12:00:00`, the form Cinder's time filters take.
pub fn format_time(time: SystemTime) -> String {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    prost_types::Timestamp { seconds: seconds as i64, nanos: 0 }.to_string().trim_end_matches('Z').to_string()
}

/// A Cinder v3 client on a Keystone session.
#[derive(Debug)]
pub struct Cinder {
    session: Arc<Session>,
    microversion: OnceCell<Option<Microversion>>,
    /// Cleared when the cloud refuses time filters (they can be disabled by its policy).
    change_lists: std::sync::atomic::AtomicBool,
}

impl Cinder {
    /// A client; the microversion is negotiated on first use.
    pub fn new(session: Arc<Session>) -> Self {
        Self {
            session,
            microversion: OnceCell::new(),
            change_lists: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// The negotiated microversion (`None`: plain 3.0).
    pub async fn microversion(&self) -> Result<Option<Microversion>, CloudError> {
        self.microversion
            .get_or_try_init(|| async {
                if self.session.cloud().block_storage.ignore_volume_microversion {
                    return Ok(None);
                }
                let reply = self
                    .session
                    .send(|token| Ok(Call::new("cinder.versions", Method::GET, version_root(&self.endpoint(token)?))))
                    .await?;
                if !reply.status.is_success() {
                    return Err(fault::to_error(&reply, "version document", ""));
                }
                let doc: VersionDocument = reply.json()?;
                let chosen = doc.for_major(3).and_then(|info| negotiate(info, Microversion::new(3, 0), MAX_MICROVERSION));
                tracing::info!(microversion = ?chosen.map(|m| m.to_string()), "negotiated Cinder microversion");
                Ok(chosen)
            })
            .await
            .copied()
    }

    /// True when the negotiated microversion reaches `wanted`.
    pub async fn supports(&self, wanted: Microversion) -> Result<bool, CloudError> {
        Ok(self.microversion().await?.is_some_and(|m| m >= wanted))
    }

    fn endpoint(&self, token: &Token) -> Result<Url, CloudError> {
        self.session.endpoint(token, BLOCK_STORAGE_TYPES)
    }

    fn url(&self, token: &Token, path: &UrlPath, query: &[(&str, String)]) -> Result<Url, CloudError> {
        let base = self.endpoint(token)?;
        if base.cannot_be_a_base() {
            return Err(CloudError::Config(format!("block storage endpoint {base} cannot hold a path")));
        }
        let mut url = path.join_to(&base);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        Ok(url)
    }

    async fn send(
        &self,
        operation: &'static str,
        method: Method,
        path: &UrlPath,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Reply, CloudError> {
        let microversion = self.microversion().await?;
        self.session
            .send(|token| {
                let mut call = Call::new(operation, method.clone(), self.url(token, path, query)?);
                if let Some(v) = microversion {
                    call = call.header("openstack-api-version", &format!("volume {v}"));
                }
                if let Some(body) = &body {
                    call = call.json(body);
                }
                Ok(call)
            })
            .await
    }

    /// `POST /volumes`.
    pub async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CloudError> {
        refuse_per_volume_options(spec)?;
        let mut volume = json!({ "name": spec.name, "size": spec.size_gib, "metadata": spec.metadata });
        if let Some(t) = &spec.volume_type {
            volume["volume_type"] = json!(t);
        }
        if let Some(z) = &spec.zone {
            volume["availability_zone"] = json!(z);
        }
        if spec.multiattach {
            volume["multiattach"] = json!(true);
        }
        if let Some(d) = &spec.description {
            volume["description"] = json!(d);
        }
        match &spec.source {
            Some(VolumeSource::Snapshot(id)) => volume["snapshot_id"] = json!(id),
            Some(VolumeSource::Volume(id)) => volume["source_volid"] = json!(id),
            Some(VolumeSource::Backup(id)) => {
                if !self.supports(CREATE_FROM_BACKUP).await? {
                    return Err(CloudError::Unsupported(
                        "creating a volume from a backup needs Cinder 3.47".into(),
                    ));
                }
                volume["backup_id"] = json!(id);
            }
            None => {}
        }
        let reply = self
            .send(
                "cinder.volume.create",
                Method::POST,
                &UrlPath::new("volumes"),
                &[],
                Some(json!({ "volume": volume })),
            )
            .await?;
        if reply.status != StatusCode::ACCEPTED && reply.status != StatusCode::OK {
            // Cinder answers 404 both for a missing source and for an unknown volume type;
            // the latter is a bad parameter, not a missing object.
            let message = fault::message(&reply);
            if reply.status == StatusCode::NOT_FOUND && message.starts_with("Volume type") {
                return Err(CloudError::InvalidInput(message));
            }
            let (source_kind, source_id) = match &spec.source {
                Some(VolumeSource::Snapshot(id)) => ("snapshot", id.as_str()),
                Some(VolumeSource::Volume(id)) => ("volume", id.as_str()),
                Some(VolumeSource::Backup(id)) => ("backup", id.as_str()),
                None => ("volume", spec.name.as_str()),
            };
            return Err(fault::to_error(&reply, source_kind, source_id));
        }
        Ok(reply.json::<OneVolume>()?.volume.into())
    }

    /// `GET /volumes/{id}`; `None` on 404.
    pub async fn get_volume(&self, id: &str) -> Result<Option<Volume>, CloudError> {
        let reply = self
            .send("cinder.volume.get", Method::GET, &UrlPath::new("volumes").segment("id", id)?, &[], None)
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(reply.json::<OneVolume>()?.volume.into())),
            _ => Err(fault::to_error(&reply, "volume", id)),
        }
    }

    /// `GET /volumes/detail` with filters; one page.
    pub async fn list_volumes(&self, query: &[(&str, String)]) -> Result<Page<Volume>, CloudError> {
        let reply = self
            .send("cinder.volume.list", Method::GET, &UrlPath::new("volumes/detail"), query, None)
            .await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "volume list", ""));
        }
        Ok(reply.json::<VolumeList>()?.into())
    }

    /// `DELETE /volumes/{id}`; a missing volume is success.
    pub async fn delete_volume(&self, id: &str) -> Result<(), CloudError> {
        let reply = self
            .send(
                "cinder.volume.delete",
                Method::DELETE,
                &UrlPath::new("volumes").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            // Cinder answers 400 "Invalid volume" when the state forbids deletion.
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "volume", id)),
        }
    }

    /// `os-extend`.
    pub async fn extend_volume(&self, id: &str, size_gib: u64) -> Result<(), CloudError> {
        self.action("cinder.volume.extend", id, json!({ "os-extend": { "new_size": size_gib } })).await
    }

    /// `os-retype`, allowing a migration (`on-demand`) or not (`never`).
    pub async fn retype_volume(&self, id: &str, volume_type: &str, migrate: bool) -> Result<(), CloudError> {
        let policy = if migrate { "on-demand" } else { "never" };
        self.action(
            "cinder.volume.retype",
            id,
            json!({ "os-retype": { "new_type": volume_type, "migration_policy": policy } }),
        )
        .await
    }

    /// `POST /volumes/{id}/metadata` with one pair, which Cinder merges into the volume's.
    pub async fn merge_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), CloudError> {
        let body = json!({ "metadata": { key: value } });
        let reply = self
            .send(
                "cinder.volume.metadata",
                Method::POST,
                &UrlPath::new("volumes").segment("id", id)?.word("metadata"),
                &[],
                Some(body),
            )
            .await?;
        if reply.status.is_success() { Ok(()) } else { Err(fault::to_error(&reply, "volume", id)) }
    }

    /// `PUT /volumes/{id}` with the volume's whole metadata, which Cinder replaces.
    pub async fn replace_metadata(
        &self,
        id: &str,
        metadata: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), CloudError> {
        let body = json!({ "volume": { "metadata": metadata } });
        let reply = self
            .send(
                "cinder.volume.update",
                Method::PUT,
                &UrlPath::new("volumes").segment("id", id)?,
                &[],
                Some(body),
            )
            .await?;
        if reply.status.is_success() { Ok(()) } else { Err(fault::to_error(&reply, "volume", id)) }
    }

    async fn action(&self, operation: &'static str, id: &str, body: Value) -> Result<(), CloudError> {
        let reply = self
            .send(
                operation,
                Method::POST,
                &UrlPath::new("volumes").segment("id", id)?.word("action"),
                &[],
                Some(body),
            )
            .await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "volume", id)),
        }
    }

    /// `POST /snapshots`.
    pub async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError> {
        let body = json!({ "snapshot": {
            "volume_id": spec.volume_id, "name": spec.name, "force": spec.force, "metadata": spec.metadata
        }});
        let reply = self
            .send("cinder.snapshot.create", Method::POST, &UrlPath::new("snapshots"), &[], Some(body))
            .await?;
        match reply.status {
            s if s.is_success() => Ok(reply.json::<OneSnapshot>()?.snapshot.into()),
            StatusCode::NOT_FOUND => {
                Err(CloudError::NotFound { kind: "volume", id: spec.volume_id.to_string() })
            }
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "snapshot", "")),
        }
    }

    /// `GET /snapshots/{id}`; `None` on 404.
    pub async fn get_snapshot(&self, id: &str) -> Result<Option<Snapshot>, CloudError> {
        let reply = self
            .send(
                "cinder.snapshot.get",
                Method::GET,
                &UrlPath::new("snapshots").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(reply.json::<OneSnapshot>()?.snapshot.into())),
            _ => Err(fault::to_error(&reply, "snapshot", id)),
        }
    }

    /// `GET /snapshots/detail` with filters; one page.
    pub async fn list_snapshots(&self, query: &[(&str, String)]) -> Result<Page<Snapshot>, CloudError> {
        let reply = self
            .send("cinder.snapshot.list", Method::GET, &UrlPath::new("snapshots/detail"), query, None)
            .await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "snapshot list", ""));
        }
        Ok(reply.json::<SnapshotList>()?.into())
    }

    /// `DELETE /snapshots/{id}`; a missing snapshot is success.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), CloudError> {
        let reply = self
            .send(
                "cinder.snapshot.delete",
                Method::DELETE,
                &UrlPath::new("snapshots").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "snapshot", id)),
        }
    }

    /// Remaining GiB from `os-quota-sets` with usage, overall or for one volume type.
    pub async fn capacity(&self, volume_type: Option<&str>) -> Result<Capacity, CloudError> {
        let token = self.session.token().await?;
        let project = token
            .project_id
            .clone()
            .ok_or_else(|| CloudError::Config("capacity needs a project-scoped token".into()))?;
        let reply = self
            .send(
                "cinder.quota.get",
                Method::GET,
                &UrlPath::new("os-quota-sets").segment("project_id", &project)?,
                &[("usage", "True".into())],
                None,
            )
            .await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "quota set", &project));
        }
        let body: Value = reply.json()?;
        let set = &body["quota_set"];
        let remaining = |key: &str| -> Option<Option<u64>> {
            let entry = set.get(key)?;
            let limit = entry.get("limit")?.as_i64()?;
            if limit < 0 {
                return Some(None);
            }
            let used = entry.get("in_use").and_then(Value::as_i64).unwrap_or(0)
                + entry.get("reserved").and_then(Value::as_i64).unwrap_or(0);
            Some(Some(u64::try_from(limit - used).unwrap_or(0)))
        };
        let overall = remaining("gigabytes")
            .ok_or_else(|| CloudError::Protocol("quota set without gigabytes".into()))?;
        let per_type = volume_type.and_then(|t| remaining(&format!("gigabytes_{t}"))).flatten();
        let available = match (overall, per_type) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(Capacity { available_gib: available })
    }

    /// Current states of several volumes: one list of what changed since `since` when the
    /// cloud supports time filters, plus single GETs for `individually`.
    pub async fn observe_volumes(
        &self,
        ids: &[String],
        individually: &[String],
        since: SystemTime,
    ) -> Result<HashMap<String, Option<Volume>>, CloudError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut out = HashMap::new();
        let listable = ids.len() > individually.len() + 2
            && self.change_lists.load(Relaxed)
            && self.supports(TIME_FILTERS).await?;
        if listable {
            match self.changed_volumes(ids, since).await {
                Ok(changed) => out.extend(changed),
                Err(CloudError::InvalidInput(why)) => {
                    tracing::warn!(reason = %why, "the cloud refuses time filters; polling volumes one by one");
                    self.change_lists.store(false, Relaxed);
                    return Box::pin(self.observe_volumes(ids, individually, since)).await;
                }
                Err(e) => return Err(e),
            }
        }
        let singles: &[String] = if listable { individually } else { ids };
        for id in singles {
            out.insert(id.clone(), self.get_volume(id).await?);
        }
        Ok(out)
    }
}

impl Cinder {
    async fn require(&self, wanted: Microversion, what: &str) -> Result<(), CloudError> {
        if self.supports(wanted).await? {
            Ok(())
        } else {
            Err(CloudError::Unsupported(format!("{what} needs Cinder microversion {wanted}")))
        }
    }

    /// `GET /groups/detail?name=`: groups with exactly this name.
    pub async fn find_groups(&self, name: &str) -> Result<Vec<GroupJson>, CloudError> {
        self.require(GROUPS, "volume groups").await?;
        let query = [("name", name.to_string()), ("list_volume", "True".into())];
        typed("group", self.list_named("cinder.group.list", "groups", "group list", &query, name).await?)
    }

    /// `GET /groups/{id}`; `None` on 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<GroupJson>, CloudError> {
        // Cinder lists a group's volumes only when asked to (3.25).
        let query = [("list_volume", "True".to_string())];
        let reply = self
            .send("cinder.group.get", Method::GET, &UrlPath::new("groups").segment("id", id)?, &query, None)
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(reply.json::<OneGroup>()?.group)),
            _ => Err(fault::to_error(&reply, "group", id)),
        }
    }

    /// `GET /group_types/default`: the id of the group type the operator made the default
    /// (cinder.conf `default_group_type`); clouds name it as they like.
    async fn default_group_type(&self) -> Result<String, CloudError> {
        let reply = self
            .send("cinder.group_type.default", Method::GET, &UrlPath::new("group_types/default"), &[], None)
            .await?;
        match reply.status {
            s if s.is_success() => Ok(reply.json::<OneGroupType>()?.group_type.id),
            StatusCode::NOT_FOUND => Err(CloudError::Unsupported(
                "volume group snapshots need a default group type, and the cloud has none (Cinder's default_group_type option)"
                    .into(),
            )),
            _ => Err(fault::to_error(&reply, "group type", "default")),
        }
    }

    /// `POST /groups` of the default group type holding `volume_types`.
    pub async fn create_group(&self, name: &str, volume_types: &[String]) -> Result<String, CloudError> {
        self.require(GROUPS, "volume groups").await?;
        let group_type = self.default_group_type().await?;
        let body = json!({ "group": { "name": name, "group_type": group_type, "volume_types": volume_types,
            "description": "Helper group of a CSI volume group snapshot (cinder-evs-csi)" } });
        let reply =
            self.send("cinder.group.create", Method::POST, &UrlPath::new("groups"), &[], Some(body)).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "group", name));
        }
        let id = reply.json::<OneGroup>()?.group.id;
        if id.is_empty() {
            return Err(CloudError::Protocol("group create answer without an id".into()));
        }
        Ok(id)
    }

    /// `PUT /groups/{id}` adding and removing volumes.
    pub async fn update_group(&self, id: &str, add: &[String], remove: &[String]) -> Result<(), CloudError> {
        let mut group = json!({});
        if !add.is_empty() {
            group["add_volumes"] = json!(add.join(","));
        }
        if !remove.is_empty() {
            group["remove_volumes"] = json!(remove.join(","));
        }
        let reply = self
            .send(
                "cinder.group.update",
                Method::PUT,
                &UrlPath::new("groups").segment("id", id)?,
                &[],
                Some(json!({ "group": group })),
            )
            .await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "group", id)),
        }
    }

    /// `POST /groups/{id}/action {"delete": {"delete-volumes": false}}`; a missing group is success.
    pub async fn delete_group(&self, id: &str) -> Result<(), CloudError> {
        let body = json!({ "delete": { "delete-volumes": false } });
        let reply = self
            .send(
                "cinder.group.delete",
                Method::POST,
                &UrlPath::new("groups").segment("id", id)?.word("action"),
                &[],
                Some(body),
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "group", id)),
        }
    }

    /// `GET /group_snapshots/detail`, filtered to exactly `name`.
    pub async fn find_group_snapshots(&self, name: &str) -> Result<Vec<GroupSnapshotJson>, CloudError> {
        self.require(GROUPS, "group snapshots").await?;
        let found = self
            .list_named(
                "cinder.group_snapshot.list",
                "group_snapshots",
                "group snapshot list",
                &[("name", name.to_string())],
                name,
            )
            .await?;
        typed("group snapshot", found)
    }

    /// `GET /group_snapshots/{id}`; `None` on 404.
    pub async fn get_group_snapshot(&self, id: &str) -> Result<Option<GroupSnapshotJson>, CloudError> {
        let reply = self
            .send(
                "cinder.group_snapshot.get",
                Method::GET,
                &UrlPath::new("group_snapshots").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(reply.json::<OneGroupSnapshot>()?.group_snapshot)),
            _ => Err(fault::to_error(&reply, "group snapshot", id)),
        }
    }

    /// `POST /group_snapshots`.
    pub async fn create_group_snapshot(&self, name: &str, group_id: &str) -> Result<String, CloudError> {
        let body = json!({ "group_snapshot": { "name": name, "group_id": group_id } });
        let reply = self
            .send(
                "cinder.group_snapshot.create",
                Method::POST,
                &UrlPath::new("group_snapshots"),
                &[],
                Some(body),
            )
            .await?;
        match reply.status {
            s if s.is_success() => Some(reply.json::<OneGroupSnapshot>()?.group_snapshot.id)
                .filter(|id| !id.is_empty())
                .ok_or_else(|| CloudError::Protocol("group snapshot answer without an id".into())),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "group snapshot", name)),
        }
    }

    /// `DELETE /group_snapshots/{id}`; a missing one is success.
    pub async fn delete_group_snapshot(&self, id: &str) -> Result<(), CloudError> {
        let reply = self
            .send(
                "cinder.group_snapshot.delete",
                Method::DELETE,
                &UrlPath::new("group_snapshots").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "group snapshot", id)),
        }
    }

    /// The member snapshots of a group snapshot: the snapshots of the group's volumes that
    /// name it. (Cinder lets only admins filter snapshots by `group_snapshot_id`.)
    pub async fn group_snapshot_members(&self, id: &str) -> Result<Vec<Snapshot>, CloudError> {
        let Some(group_snapshot) = self.get_group_snapshot(id).await? else { return Ok(Vec::new()) };
        let group_id = group_snapshot.group_id.unwrap_or_default();
        let Some(group) = self.get_group(&group_id).await? else { return Ok(Vec::new()) };
        let mut members = Vec::new();
        for volume in &group.volumes {
            let reply = self
                .send(
                    "cinder.snapshot.list",
                    Method::GET,
                    &UrlPath::new("snapshots/detail"),
                    &[("volume_id", volume.to_string())],
                    None,
                )
                .await?;
            if !reply.status.is_success() {
                return Err(fault::to_error(&reply, "snapshot list", ""));
            }
            let listed: GroupMemberList = reply.json()?;
            for member in listed.snapshots {
                if member.group_snapshot_id.as_deref() == Some(id) {
                    members.push(member.snapshot.into());
                }
            }
        }
        Ok(members)
    }

    /// `POST /os-volume-manage` (an admin API by default policy).
    pub async fn manage_volume(&self, spec: &crate::cloud::types::ManageSpec) -> Result<Volume, CloudError> {
        use crate::cloud::types::ManageRef;
        let reference = match &spec.reference {
            ManageRef::Name(n) => json!({ "source-name": n }),
            ManageRef::Id(i) => json!({ "source-id": i }),
        };
        let mut volume = json!({ "host": spec.host, "ref": reference, "name": spec.name });
        if let Some(t) = &spec.volume_type {
            volume["volume_type"] = json!(t);
        }
        if let Some(z) = &spec.zone {
            volume["availability_zone"] = json!(z);
        }
        let reply = self
            .send(
                "cinder.volume.manage",
                Method::POST,
                &UrlPath::new("os-volume-manage"),
                &[],
                Some(json!({ "volume": volume })),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "storage", &spec.name));
        }
        Ok(reply.json::<OneVolume>()?.volume.into())
    }

    /// `POST /backups` (forced, so attached volumes can be backed up).
    pub async fn create_backup(&self, name: &str, volume_id: &str) -> Result<Value, CloudError> {
        let body = json!({ "backup": { "name": name, "volume_id": volume_id, "force": true,
            "description": "CSI snapshot of type backup (cinder-evs-csi)" } });
        let reply = self
            .send("cinder.backup.create", Method::POST, &UrlPath::new("backups"), &[], Some(body))
            .await?;
        match reply.status {
            s if s.is_success() => Ok(reply.json::<Value>()?["backup"].clone()),
            StatusCode::NOT_FOUND => Err(CloudError::NotFound { kind: "volume", id: volume_id.to_string() }),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "backup", name)),
        }
    }

    /// `GET /backups/detail?name=`: backups with exactly this name.
    pub async fn find_backups(&self, name: &str) -> Result<Vec<Value>, CloudError> {
        self.list_named("cinder.backup.list", "backups", "backup list", &[("name", name.to_string())], name)
            .await
    }

    /// `GET /{collection}/detail` with `query`, keeping the items named exactly `name` (the
    /// name filter may match loosely on some clouds); `kind` names the list in errors.
    async fn list_named(
        &self,
        operation: &'static str,
        collection: &'static str,
        kind: &'static str,
        query: &[(&str, String)],
        name: &str,
    ) -> Result<Vec<Value>, CloudError> {
        let reply =
            self.send(operation, Method::GET, &UrlPath::new(collection).word("detail"), query, None).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, kind, ""));
        }
        let mut body: Value = reply.json()?;
        let items = match body[collection].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        Ok(items.into_iter().filter(|item| item["name"] == name).collect())
    }

    /// `GET /backups/{id}`; `None` on 404.
    pub async fn get_backup(&self, id: &str) -> Result<Option<Value>, CloudError> {
        let reply = self
            .send("cinder.backup.get", Method::GET, &UrlPath::new("backups").segment("id", id)?, &[], None)
            .await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => Ok(Some(reply.json::<Value>()?["backup"].clone())),
            _ => Err(fault::to_error(&reply, "backup", id)),
        }
    }

    /// `DELETE /backups/{id}`; a missing one is success.
    pub async fn delete_backup(&self, id: &str) -> Result<(), CloudError> {
        let reply = self
            .send(
                "cinder.backup.delete",
                Method::DELETE,
                &UrlPath::new("backups").segment("id", id)?,
                &[],
                None,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            StatusCode::BAD_REQUEST => Err(CloudError::Conflict(fault::message(&reply))),
            _ => Err(fault::to_error(&reply, "backup", id)),
        }
    }

    /// `GET /messages?resource_uuid=`: the user messages Cinder recorded about one resource
    /// (3.3+), as JSON; empty below 3.3.
    pub async fn list_messages(&self, resource_uuid: &str) -> Result<Vec<Value>, CloudError> {
        if !self.supports(MESSAGES).await? {
            return Ok(Vec::new());
        }
        let query = [("resource_uuid", resource_uuid.to_string())];
        let reply =
            self.send("cinder.message.list", Method::GET, &UrlPath::new("messages"), &query, None).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "message list", ""));
        }
        match reply.json::<Value>()?["messages"].take() {
            Value::Array(items) => Ok(items),
            _ => Ok(Vec::new()),
        }
    }

    /// Volumes among `ids` changed since `since`, from `updated_at` filtered lists.
    async fn changed_volumes(
        &self,
        ids: &[String],
        since: SystemTime,
    ) -> Result<HashMap<String, Option<Volume>>, CloudError> {
        let mut out = HashMap::new();
        let mut query =
            vec![("updated_at", format!("gte:{}", format_time(since))), ("limit", "1000".to_string())];
        // Bounded: a wait tick must not turn into a crawl of the whole project.
        for _ in 0..10 {
            let page = self.list_volumes(&query).await?;
            for volume in page.items {
                if ids.contains(&volume.id) {
                    out.insert(volume.id.clone(), Some(volume));
                }
            }
            match page.next {
                Some(marker) => {
                    query.retain(|(k, _)| *k != "marker");
                    query.push(("marker", marker));
                }
                None => break,
            }
        }
        Ok(out)
    }
}

/// Cinder takes performance, encryption and the disk bus from the volume type (QoS specs,
/// encryption specs, image properties), never from a single volume; asking per volume would
/// silently get a volume without them.
pub fn refuse_per_volume_options(spec: &VolumeSpec) -> Result<(), CloudError> {
    if spec.iops.is_some() || spec.throughput.is_some() {
        return Err(CloudError::InvalidInput(
            "iops/throughput need a Cinder volume type with QoS specs; use the type parameter".into(),
        ));
    }
    if spec.encryption.is_some() {
        return Err(CloudError::InvalidInput(
            "encryption needs a Cinder volume type with encryption specs; use the type parameter".into(),
        ));
    }
    if spec.scsi {
        return Err(CloudError::InvalidInput(
            "Cinder cannot choose the disk bus per volume (it follows the image's hw_disk_bus); drop scsi"
                .into(),
        ));
    }
    Ok(())
}

/// Items of a list read as `T`; one that does not read is the cloud's fault, named by `kind`.
fn typed<T: serde::de::DeserializeOwned>(kind: &str, items: Vec<Value>) -> Result<Vec<T>, CloudError> {
    items
        .into_iter()
        .map(|item| serde_json::from_value(item).map_err(|e| CloudError::Protocol(format!("{kind}: {e}"))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::cinder_json::parse_time;

    #[test]
    fn per_volume_performance_encryption_and_scsi_are_refused_with_the_way_out() {
        let base = VolumeSpec { name: "pvc".into(), size_gib: 1, ..Default::default() };
        assert_eq!(refuse_per_volume_options(&base), Ok(()));
        let cases = [
            (VolumeSpec { iops: Some(3000), ..base.clone() }, "QoS"),
            (VolumeSpec { throughput: Some(200), ..base.clone() }, "QoS"),
            (VolumeSpec { encryption: Some(Default::default()), ..base.clone() }, "encryption specs"),
            (VolumeSpec { scsi: true, ..base.clone() }, "disk bus"),
        ];
        for (spec, hint) in cases {
            match refuse_per_volume_options(&spec) {
                Err(CloudError::InvalidInput(m)) => assert!(m.contains(hint), "{m}"),
                other => panic!("{spec:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn cinder_times_round_trip() {
        let t = parse_time("2026-11-23T12:00:00.000000").unwrap();
        assert_eq!(format_time(t), "2026-11-23T12:00:00");
        assert!(parse_time("yesterday").is_none());
    }
}
