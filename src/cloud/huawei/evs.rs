//! EVS: disks through the native `cloudvolumes` API (v2.1 for create and expand, job based),
//! snapshots and quotas through its Cinder-compatible v2 API. Tags are in [`super::tags`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::auth::{Client, Request};
use super::endpoints::Service;
use super::fault;
use super::sign;
use crate::cloud::cinder_json::{OneSnapshot, OneVolume, SnapshotList, VolumeList};
use crate::cloud::error::CloudError;
#[cfg(test)]
use crate::cloud::types::Encryption;
use crate::cloud::types::{Capacity, Page, Snapshot, SnapshotSpec, Volume, VolumeSource, VolumeSpec};
use crate::contract::UrlPath;

/// Smallest data disk, GiB.
pub const MIN_SIZE_GIB: u64 = 10;
/// Largest data disk, GiB.
pub const MAX_SIZE_GIB: u64 = 32768;
/// Disk type used when the spec names none.
pub const DEFAULT_TYPE: &str = "GPSSD";
/// EVS metadata: encrypt with KMS ("1").
pub const META_ENCRYPTED: &str = "__system__encrypted";
/// EVS metadata: the KMS key id (36 characters).
pub const META_CMK_ID: &str = "__system__cmkid";
/// EVS metadata: SCSI passthrough ("true").
pub const META_PASSTHROUGH: &str = "hw:passthrough";
/// Most ids one `ids` filter may name.
pub const MAX_IDS_PER_QUERY: usize = 60;

/// A disk from a `{"volume": ...}` body.
pub fn volume_from_json(body: &[u8]) -> Result<Volume, CloudError> {
    serde_json::from_slice::<OneVolume>(body)
        .map(|v| v.volume.into())
        .map_err(|e| CloudError::Protocol(format!("malformed disk: {e}")))
}

/// A page of disks from a `cloudvolumes/detail` body.
pub fn volume_page_from_json(body: &[u8]) -> Result<Page<Volume>, CloudError> {
    let page: VolumeList = serde_json::from_slice(body)
        .map_err(|e| CloudError::Protocol(format!("malformed disk list: {e}")))?;
    Ok(page.into())
}

/// A snapshot from a `{"snapshot": ...}` body.
pub fn snapshot_from_json(body: &[u8]) -> Result<Snapshot, CloudError> {
    serde_json::from_slice::<OneSnapshot>(body)
        .map(|s| s.snapshot.into())
        .map_err(|e| CloudError::Protocol(format!("malformed snapshot: {e}")))
}

/// A page of snapshots from a `snapshots/detail` body.
pub fn snapshot_page_from_json(body: &[u8]) -> Result<Page<Snapshot>, CloudError> {
    let page: SnapshotList = serde_json::from_slice(body)
        .map_err(|e| CloudError::Protocol(format!("malformed snapshot list: {e}")))?;
    Ok(page.into())
}

/// The v2.1 create body for `spec`, after checking what EVS documents as limits. `tags` go into
/// the body (v2.1's `volume.tags`), so a new disk needs no second call to be tagged.
pub fn create_body(
    spec: &VolumeSpec,
    enterprise_project_id: Option<&str>,
    tags: &[(String, String)],
) -> Result<Value, CloudError> {
    let zone = spec.zone.as_deref().ok_or_else(|| {
        CloudError::InvalidInput(
            "EVS needs an availability zone (topology or the `availability` parameter)".into(),
        )
    })?;
    if spec.source.is_none() && !(MIN_SIZE_GIB..=MAX_SIZE_GIB).contains(&spec.size_gib) {
        return Err(CloudError::InvalidInput(format!(
            "EVS data disks are {MIN_SIZE_GIB} to {MAX_SIZE_GIB} GiB; {} GiB was asked for",
            spec.size_gib
        )));
    }
    if spec.size_gib > MAX_SIZE_GIB {
        return Err(CloudError::InvalidInput(format!("EVS data disks are at most {MAX_SIZE_GIB} GiB")));
    }
    let mut metadata: BTreeMap<String, String> = spec.metadata.clone();
    // EVS reads these from reserved metadata keys; only the typed fields may set them.
    for key in [META_ENCRYPTED, META_CMK_ID, META_PASSTHROUGH] {
        metadata.remove(key);
    }
    let from_snapshot = matches!(spec.source, Some(VolumeSource::Snapshot(_)));
    // A disk from a snapshot inherits encryption and bus; EVS refuses them there (EVS.1043).
    if !from_snapshot {
        if let Some(encryption) = &spec.encryption {
            metadata.insert(META_ENCRYPTED.into(), "1".into());
            if let Some(key) = &encryption.kms_key_id {
                if key.len() != 36 {
                    return Err(CloudError::InvalidInput(format!(
                        "the KMS key id must have 36 characters, got {}",
                        key.len()
                    )));
                }
                metadata.insert(META_CMK_ID.into(), key.clone());
            }
        }
        if spec.scsi {
            metadata.insert(META_PASSTHROUGH.into(), "true".into());
        }
    }
    let mut volume = json!({
        "name": spec.name,
        "size": spec.size_gib,
        "availability_zone": zone,
        "volume_type": spec.volume_type.as_deref().unwrap_or(DEFAULT_TYPE),
        "count": 1,
        "metadata": metadata,
    });
    if spec.multiattach {
        volume["multiattach"] = json!(true);
    }
    if let Some(d) = &spec.description {
        volume["description"] = json!(d);
    }
    if let Some(iops) = spec.iops {
        volume["iops"] = json!(iops);
    }
    if let Some(throughput) = spec.throughput {
        volume["throughput"] = json!(throughput);
    }
    if let Some(ep) = enterprise_project_id {
        volume["enterprise_project_id"] = json!(ep);
    }
    if !tags.is_empty() {
        volume["tags"] = json!(tags.iter().cloned().collect::<BTreeMap<_, _>>());
    }
    match &spec.source {
        Some(VolumeSource::Snapshot(id)) => volume["snapshot_id"] = json!(id),
        Some(VolumeSource::Backup(id)) => volume["backup_id"] = json!(id),
        Some(VolumeSource::Volume(_)) => {
            return Err(CloudError::Unsupported(
                "EVS cannot clone a disk; take a snapshot and create from it".into(),
            ));
        }
        None => {}
    }
    Ok(json!({ "volume": volume }))
}

/// A UUID-shaped `X-Client-Token` derived from the disk name, so a retried create of the same
/// CSI volume is recognised by EVS as the same request.
pub fn client_token(name: &str) -> String {
    let hash = sign::sha256_hex(format!("cinder-evs-csi/{name}").as_bytes());
    format!("{}-{}-4{}-8{}-{}", &hash[0..8], &hash[8..12], &hash[13..16], &hash[17..20], &hash[20..32])
}

/// What a create request returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    /// The job to poll.
    pub job_id: Option<String>,
    /// Disk ids, when the answer already names them.
    pub volume_ids: Vec<String>,
}

/// An EVS client.
#[derive(Debug)]
pub struct Evs {
    client: Arc<Client>,
}

fn page_query(query: &mut Vec<(String, String)>, limit: Option<u32>, marker: Option<&str>) {
    if let Some(limit) = limit {
        query.push(("limit".into(), limit.clamp(1, 1000).to_string()));
    }
    if let Some(marker) = marker {
        query.push(("marker".into(), marker.to_string()));
    }
}

impl Evs {
    /// A client.
    pub fn new(client: Arc<Client>) -> Self {
        Self { client }
    }

    async fn send(&self, request: Request) -> Result<crate::cloud::http::Reply, CloudError> {
        self.client.send(&request).await
    }

    /// `POST /v2.1/{project_id}/cloudvolumes`, the disk tagged with `tags` from the start.
    pub async fn create_volume(
        &self,
        spec: &VolumeSpec,
        tags: &[(String, String)],
    ) -> Result<Created, CloudError> {
        let cloud = self.client.cloud();
        let body = create_body(spec, cloud.huawei.enterprise_project_id.as_deref(), tags)?;
        let request = Request::new(
            "evs.volume.create",
            Service::Evs,
            Method::POST,
            UrlPath::new("v2.1").project().word("cloudvolumes"),
        )
        .json(body)
        .header("x-client-token", client_token(&spec.name));
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            let kind = match &spec.source {
                Some(VolumeSource::Snapshot(_)) => "snapshot",
                Some(VolumeSource::Backup(_)) => "backup",
                _ => "volume",
            };
            return Err(fault::to_error(&reply, kind, ""));
        }
        let body: Value = reply.json()?;
        let ids = body["volume_ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect());
        Ok(Created { job_id: body["job_id"].as_str().map(String::from), volume_ids: ids.unwrap_or_default() })
    }

    /// `GET /v2/{project_id}/cloudvolumes/{id}`; `None` when it does not exist.
    pub async fn get_volume(&self, id: &str) -> Result<Option<Volume>, CloudError> {
        let request = Request::new(
            "evs.volume.get",
            Service::Evs,
            Method::GET,
            UrlPath::new("v2").project().word("cloudvolumes").segment("id", id)?,
        );
        let reply = self.send(request).await?;
        if reply.status.is_success() {
            return volume_from_json(&reply.body).map(Some);
        }
        match fault::to_error(&reply, "volume", id) {
            CloudError::NotFound { .. } => Ok(None),
            other => Err(other),
        }
    }

    /// `PUT /v2/{project_id}/cloudvolumes/{id}` with metadata, which EVS merges into the disk's.
    pub async fn merge_metadata(&self, id: &str, key: &str, value: &str) -> Result<(), CloudError> {
        let request = Request::new(
            "evs.volume.update",
            Service::Evs,
            Method::PUT,
            UrlPath::new("v2").project().word("cloudvolumes").segment("id", id)?,
        )
        .json(json!({ "volume": { "metadata": { key: value } } }));
        let reply = self.send(request).await?;
        if reply.status.is_success() { Ok(()) } else { Err(fault::to_error(&reply, "volume", id)) }
    }

    /// `GET /v2/{project_id}/cloudvolumes/detail` with filters; one page.
    pub async fn list_volumes(&self, query: Vec<(String, String)>) -> Result<Page<Volume>, CloudError> {
        let mut request = Request::new(
            "evs.volume.list",
            Service::Evs,
            Method::GET,
            UrlPath::new("v2").project().word("cloudvolumes").word("detail"),
        );
        request.query = query;
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "volume list", ""));
        }
        volume_page_from_json(&reply.body)
    }

    /// Oldest-first page of disks.
    pub async fn page_volumes(
        &self,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError> {
        let mut query = vec![("sort_key".into(), "created_at".into()), ("sort_dir".into(), "asc".into())];
        page_query(&mut query, limit, marker);
        self.list_volumes(query).await
    }

    /// One page (up to 1000) of the disks whose metadata holds `key: value`, oldest first.
    pub async fn page_volumes_with_metadata(
        &self,
        key: &str,
        value: &str,
        marker: Option<&str>,
    ) -> Result<Page<Volume>, CloudError> {
        let mut query = vec![
            ("metadata".to_string(), json!({ key: value }).to_string()),
            ("sort_key".into(), "created_at".into()),
            ("sort_dir".into(), "asc".into()),
        ];
        page_query(&mut query, Some(1000), marker);
        self.list_volumes(query).await
    }

    /// Disks named exactly `name`, across pages.
    pub async fn volumes_named(&self, name: &str) -> Result<Vec<Volume>, CloudError> {
        let mut found = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..100 {
            let mut query = vec![("name".to_string(), name.to_string())];
            page_query(&mut query, Some(1000), marker.as_deref());
            let page = self.list_volumes(query).await?;
            // The name filter may match loosely; only exact names count.
            found.extend(page.items.into_iter().filter(|v| v.name == name));
            match page.next {
                Some(next) => marker = Some(next),
                None => break,
            }
        }
        Ok(found)
    }

    /// The states of many disks by id (at most 60 per call); ids absent from the answer are gone.
    pub async fn volumes_by_id(&self, ids: &[String]) -> Result<HashMap<String, Option<Volume>>, CloudError> {
        let mut out: HashMap<String, Option<Volume>> = HashMap::new();
        for chunk in ids.chunks(MAX_IDS_PER_QUERY) {
            let list = chunk.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(",");
            let page = self
                .list_volumes(vec![("ids".into(), format!("[{list}]")), ("limit".into(), "1000".into())])
                .await?;
            for id in chunk {
                out.insert(id.clone(), None);
            }
            for volume in page.items {
                if chunk.contains(&volume.id) {
                    out.insert(volume.id.clone(), Some(volume));
                }
            }
        }
        Ok(out)
    }

    /// `DELETE /v2/{project_id}/cloudvolumes/{id}` (job based); a missing disk is success.
    pub async fn delete_volume(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::new(
            "evs.volume.delete",
            Service::Evs,
            Method::DELETE,
            UrlPath::new("v2").project().word("cloudvolumes").segment("id", id)?,
        );
        let reply = self.send(request).await?;
        if reply.status.is_success() {
            return Ok(());
        }
        match fault::to_error(&reply, "volume", id) {
            CloudError::NotFound { .. } => Ok(()),
            other => Err(other),
        }
    }

    /// `POST /v2.1/{project_id}/cloudvolumes/{id}/action` `os-extend`; returns the job id.
    pub async fn extend_volume(&self, id: &str, size_gib: u64) -> Result<Option<String>, CloudError> {
        if size_gib > MAX_SIZE_GIB {
            return Err(CloudError::InvalidInput(format!("EVS data disks are at most {MAX_SIZE_GIB} GiB")));
        }
        let request = Request::new(
            "evs.volume.extend",
            Service::Evs,
            Method::POST,
            UrlPath::new("v2.1").project().word("cloudvolumes").segment("id", id)?.word("action"),
        )
        .json(json!({ "os-extend": { "new_size": size_gib } }));
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "volume", id));
        }
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        Ok(body["job_id"].as_str().map(String::from))
    }

    /// `PUT /v5/{project_id}/cloudvolumes/{id}/qos`: new IOPS and/or throughput (GPSSD2, ESSD2).
    pub async fn modify_qos(
        &self,
        id: &str,
        iops: Option<u64>,
        throughput: Option<u64>,
    ) -> Result<Option<String>, CloudError> {
        let mut qos = json!({});
        if let Some(i) = iops {
            qos["iops"] = json!(i);
        }
        if let Some(t) = throughput {
            qos["throughput"] = json!(t);
        }
        let request = Request::new(
            "evs.volume.modify_qos",
            Service::Evs,
            Method::PUT,
            UrlPath::new("v5").project().word("cloudvolumes").segment("id", id)?.word("qos"),
        )
        .json(json!({ "qos_modify": qos }));
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "volume", id));
        }
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
        Ok(body["job_id"].as_str().map(String::from))
    }

    /// `POST /v2/{project_id}/snapshots`.
    pub async fn create_snapshot(&self, spec: &SnapshotSpec) -> Result<Snapshot, CloudError> {
        let body = json!({ "snapshot": {
            "volume_id": spec.volume_id, "name": spec.name, "force": spec.force, "metadata": spec.metadata
        }});
        let request = Request::new(
            "evs.snapshot.create",
            Service::Evs,
            Method::POST,
            UrlPath::new("v2").project().word("snapshots"),
        )
        .json(body);
        let reply = self.send(request).await?;
        match reply.status {
            s if s.is_success() => snapshot_from_json(&reply.body),
            StatusCode::NOT_FOUND => {
                Err(CloudError::NotFound { kind: "volume", id: spec.volume_id.to_string() })
            }
            _ => Err(fault::to_error(&reply, "volume", &spec.volume_id)),
        }
    }

    /// `GET /v2/{project_id}/snapshots/{id}`; `None` when it does not exist.
    pub async fn get_snapshot(&self, id: &str) -> Result<Option<Snapshot>, CloudError> {
        let request = Request::new(
            "evs.snapshot.get",
            Service::Evs,
            Method::GET,
            UrlPath::new("v2").project().word("snapshots").segment("id", id)?,
        );
        let reply = self.send(request).await?;
        if reply.status.is_success() {
            return snapshot_from_json(&reply.body).map(Some);
        }
        match fault::to_error(&reply, "snapshot", id) {
            CloudError::NotFound { .. } => Ok(None),
            other => Err(other),
        }
    }

    /// `GET /v2/{project_id}/snapshots/detail` with filters; one page.
    pub async fn list_snapshots(
        &self,
        volume_id: Option<&str>,
        name: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Page<Snapshot>, CloudError> {
        let mut request = Request::new(
            "evs.snapshot.list",
            Service::Evs,
            Method::GET,
            UrlPath::new("v2").project().word("snapshots").word("detail"),
        );
        if let Some(v) = volume_id {
            request = request.query("volume_id", v);
        }
        if let Some(n) = name {
            request = request.query("name", n);
        }
        // EVS returns next links only when a limit is given.
        page_query(&mut request.query, Some(limit.unwrap_or(1000)), marker);
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "snapshot list", ""));
        }
        snapshot_page_from_json(&reply.body)
    }

    /// `DELETE /v2/{project_id}/snapshots/{id}`; a missing snapshot is success.
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), CloudError> {
        let request = Request::new(
            "evs.snapshot.delete",
            Service::Evs,
            Method::DELETE,
            UrlPath::new("v2").project().word("snapshots").segment("id", id)?,
        );
        let reply = self.send(request).await?;
        if reply.status.is_success() {
            return Ok(());
        }
        match fault::to_error(&reply, "snapshot", id) {
            CloudError::NotFound { .. } => Ok(()),
            other => Err(other),
        }
    }

    /// Remaining GiB from `os-quota-sets` with usage, overall or for one disk type.
    pub async fn capacity(&self, volume_type: Option<&str>) -> Result<Capacity, CloudError> {
        let request = Request::new(
            "evs.quota.get",
            Service::Evs,
            Method::GET,
            UrlPath::new("v2").project().word("os-quota-sets").project(),
        )
        .query("usage", "True");
        let reply = self.send(request).await?;
        if !reply.status.is_success() {
            return Err(fault::to_error(&reply, "quota set", ""));
        }
        capacity_from_json(&reply.json()?, volume_type)
    }
}

/// Remaining GiB of a quota set (`-1` limits are unlimited).
pub fn capacity_from_json(body: &Value, volume_type: Option<&str>) -> Result<Capacity, CloudError> {
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
    let overall =
        remaining("gigabytes").ok_or_else(|| CloudError::Protocol("quota set without gigabytes".into()))?;
    let per_type = volume_type.and_then(|t| remaining(&format!("gigabytes_{t}"))).flatten();
    let available = match (overall, per_type) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Ok(Capacity { available_gib: available })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::types::{SnapshotStatus, VolumeAttachment, VolumeStatus};
    use crate::contract::CloudId;

    /// The seed's `cloudvolumes/detail` example, with its line-wrapped link joined.
    const LIST: &str = r#"{"count": 1, "volumes": [{
        "attachments": [], "availability_zone": "az-dc-1", "bootable": "false",
        "created_at": "2016-05-25T02:42:10.856332", "description": null,
        "id": "b104b8db-170d-441b-897a-3c8ba9c5a214",
        "links": [{"href": "https://volume.localdomain.com:8776/v2/dd14c6ac581f40059e27f5320b60bf2f/volumes/b104b8db-170d-441b-897a-3c8ba9c5a214", "rel": "self"}],
        "metadata": {}, "name": "zjb_u25_test", "os-vol-host-attr:host": "pod01.xxx#SATA",
        "volume_image_metadata": {}, "os-vol-mig-status-attr:migstat": null,
        "os-vol-tenant-attr:tenant_id": "dd14c6ac581f40059e27f5320b60bf2f", "replication_status": "disabled",
        "multiattach": false, "size": 1, "snapshot_id": null, "status": "available",
        "updated_at": "2016-05-25T02:42:22.341984", "user_id": "b0524e8342084ef5b74f158f78fc3049",
        "volume_type": "SATA", "service_type": "EVS", "dedicated_storage_id": null, "wwn": " 68886030000d136fa16f48f05992360"}],
        "volumes_links": [{"href": "https://volume.localdomain.com:8776/v2/dd14c6ac581f40059e27f5320b60bf2f/volumes/\ndetail?limit=1&marker=b104b8db-170d-441b-897a-3c8ba9c5a214", "rel": "next"}]}"#;

    #[test]
    fn the_seed_disk_list_maps_with_its_next_marker() {
        let page = volume_page_from_json(LIST.as_bytes()).unwrap();
        assert_eq!(page.items.len(), 1);
        let v = &page.items[0];
        assert_eq!(v.id, "b104b8db-170d-441b-897a-3c8ba9c5a214");
        assert_eq!(v.status, VolumeStatus::Available);
        assert_eq!(v.zone, "az-dc-1");
        assert_eq!(v.volume_type.as_deref(), Some("SATA"));
        assert_eq!(page.next.as_deref(), Some("b104b8db-170d-441b-897a-3c8ba9c5a214"));
    }

    #[test]
    fn an_attached_shared_disk_keeps_servers_devices_and_system_metadata() {
        let body = r#"{"volume": {"id": "v1", "name": "pvc-1", "size": 100, "status": "in-use",
            "availability_zone": "cn-north-4a", "volume_type": "ESSD", "multiattach": true,
            "attachments": [{"server_id": "s1", "attachment_id": "a1", "device": "/dev/sdb", "volume_id": "v1", "id": "v1"},
                            {"server_id": "s2", "attachment_id": "a2", "device": "/dev/sdc", "volume_id": "v1", "id": "v1"}],
            "metadata": {"hw:passthrough": "true", "__system__encrypted": "1", "readonly": false},
            "tags": {"k": "v"}, "wwn": "688860300", "serial_number": "SN1"}}"#;
        let v = volume_from_json(body.as_bytes()).unwrap();
        assert!(v.multiattach);
        assert_eq!(v.attachments.len(), 2);
        assert_eq!(
            v.attachments[1],
            VolumeAttachment { server_id: "s2".into(), device: Some("/dev/sdc".into()) }
        );
        assert_eq!(v.metadata["hw:passthrough"], "true");
        assert_eq!(v.metadata["readonly"], "false");
    }

    #[test]
    fn a_disks_wwn_is_carried_as_the_cloud_reports_it() {
        let v = &volume_page_from_json(LIST.as_bytes()).unwrap().items[0];
        assert_eq!(v.wwn.as_deref(), Some(" 68886030000d136fa16f48f05992360"), "checked where used");
    }

    #[test]
    fn a_wwn_that_is_not_text_is_dropped_without_losing_the_disk() {
        for wwn in ["null", "12", "[\"6888603000001234\"]", "{\"a\": 1}", "true"] {
            let body =
                format!(r#"{{"volume": {{"id": "v1", "size": 10, "status": "available", "wwn": {wwn}}}}}"#);
            let v = volume_from_json(body.as_bytes()).unwrap_or_else(|e| panic!("{wwn}: {e}"));
            assert_eq!((v.id.as_str(), v.wwn), ("v1", None), "{wwn}");
        }
    }

    #[test]
    fn a_null_links_entry_means_no_further_page() {
        let page = snapshot_page_from_json(br#"{"snapshots": [], "snapshots_links": null}"#).unwrap();
        assert_eq!(page.next, None);
        let page = volume_page_from_json(br#"{"volumes": [], "volumes_links": null}"#).unwrap();
        assert_eq!(page.next, None);
    }

    #[test]
    fn snapshots_map_with_their_time() {
        let body = r#"{"snapshot": {"id": "s1", "name": "snap", "volume_id": "v1", "size": 10, "status": "available",
            "created_at": "2016-02-16T16:54:14.981520", "metadata": {}, "os-extended-snapshot-attributes:progress": "100%"}}"#;
        let s = snapshot_from_json(body.as_bytes()).unwrap();
        assert_eq!(s.status, SnapshotStatus::Available);
        assert!(s.created_at.is_some());
    }

    fn spec() -> VolumeSpec {
        VolumeSpec {
            name: "pvc-1".into(),
            size_gib: 20,
            volume_type: Some("GPSSD2".into()),
            zone: Some("cn-north-4a".into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_create_body_carries_type_zone_performance_and_enterprise_project() {
        let mut s = spec();
        s.multiattach = true;
        s.iops = Some(5000);
        s.throughput = Some(200);
        s.scsi = true;
        s.metadata.insert("cinder-evs-csi/cluster-id".into(), "k8s".into());
        let body = create_body(&s, Some("ep-1"), &[]).unwrap();
        assert_eq!(
            body,
            json!({"volume": {
                "name": "pvc-1", "size": 20, "availability_zone": "cn-north-4a", "volume_type": "GPSSD2",
                "count": 1, "multiattach": true, "iops": 5000, "throughput": 200, "enterprise_project_id": "ep-1",
                "metadata": {"hw:passthrough": "true", "cinder-evs-csi/cluster-id": "k8s"}
            }})
        );
    }

    #[test]
    fn the_create_body_carries_the_tags_as_a_map() {
        let tags = [("cluster".to_string(), "k8s".to_string()), ("pvc".to_string(), "data-0".to_string())];
        let body = create_body(&spec(), None, &tags).unwrap();
        assert_eq!(body["volume"]["tags"], json!({"cluster": "k8s", "pvc": "data-0"}));
    }

    #[test]
    fn a_create_without_tags_sends_no_tags_field() {
        let body = create_body(&spec(), None, &[]).unwrap();
        assert!(body["volume"].get("tags").is_none(), "{body}");
    }

    #[test]
    fn encryption_sets_the_system_metadata_with_its_key() {
        let mut s = spec();
        s.encryption = Some(Encryption { kms_key_id: None });
        let body = create_body(&s, None, &[]).unwrap();
        assert_eq!(body["volume"]["metadata"][META_ENCRYPTED], "1");
        assert!(body["volume"]["metadata"].get(META_CMK_ID).is_none(), "the default key");
        let key = "0123456789abcdef0123456789abcdef0123";
        s.encryption = Some(Encryption { kms_key_id: Some(key.into()) });
        let body = create_body(&s, None, &[]).unwrap();
        assert_eq!(body["volume"]["metadata"][META_CMK_ID], key);
        s.encryption = Some(Encryption { kms_key_id: Some("short".into()) });
        assert!(matches!(create_body(&s, None, &[]), Err(CloudError::InvalidInput(_))));
    }

    #[test]
    fn reserved_metadata_keys_are_not_a_back_door() {
        let mut s = spec();
        s.metadata.insert(META_ENCRYPTED.into(), "1".into());
        s.metadata.insert(META_PASSTHROUGH.into(), "true".into());
        s.metadata.insert("evs:iops".into(), "5000".into());
        let body = create_body(&s, None, &[]).unwrap();
        assert!(body["volume"]["metadata"].get(META_ENCRYPTED).is_none());
        assert!(body["volume"]["metadata"].get(META_PASSTHROUGH).is_none());
        assert!(body["volume"].get("iops").is_none());
    }

    #[test]
    fn disks_from_snapshots_leave_inherited_metadata_out() {
        let mut s = spec();
        s.source = Some(VolumeSource::Snapshot(
            CloudId::parse("id", "5a000000-0000-4000-8000-000000000001").unwrap(),
        ));
        s.scsi = true;
        s.encryption = Some(Encryption { kms_key_id: None });
        let body = create_body(&s, None, &[]).unwrap();
        assert_eq!(body["volume"]["snapshot_id"], "5a000000-0000-4000-8000-000000000001");
        assert!(body["volume"]["metadata"].get(META_PASSTHROUGH).is_none());
        assert!(body["volume"]["metadata"].get(META_ENCRYPTED).is_none());
    }

    #[test]
    fn documented_limits_and_gaps_are_refused_before_calling() {
        for size in [9, 32769] {
            let s = VolumeSpec { size_gib: size, ..spec() };
            assert!(matches!(create_body(&s, None, &[]), Err(CloudError::InvalidInput(_))), "{size}");
        }
        assert!(create_body(&VolumeSpec { size_gib: 10, ..spec() }, None, &[]).is_ok());
        assert!(create_body(&VolumeSpec { size_gib: 32768, ..spec() }, None, &[]).is_ok());
        assert!(matches!(
            create_body(&VolumeSpec { zone: None, ..spec() }, None, &[]),
            Err(CloudError::InvalidInput(_))
        ));
        let clone = VolumeSpec {
            source: Some(VolumeSource::Volume(
                CloudId::parse("id", "5a000000-0000-4000-8000-000000000000").unwrap(),
            )),
            ..spec()
        };
        assert!(matches!(create_body(&clone, None, &[]), Err(CloudError::Unsupported(_))));
    }

    #[test]
    fn the_client_token_is_a_stable_uuid_per_name() {
        let a = client_token("pvc-1");
        assert_eq!(a, client_token("pvc-1"));
        assert_ne!(a, client_token("pvc-2"));
        assert!(uuid::Uuid::parse_str(&a).is_ok(), "{a}");
    }

    #[test]
    fn capacity_takes_the_tighter_of_overall_and_type_quota() {
        let body = json!({"quota_set": {
            "gigabytes": {"limit": 1000, "in_use": 300, "reserved": 0},
            "gigabytes_SSD": {"limit": 500, "in_use": 400, "reserved": 50}
        }});
        assert_eq!(capacity_from_json(&body, Some("SSD")).unwrap().available_gib, Some(50));
        assert_eq!(capacity_from_json(&body, None).unwrap().available_gib, Some(700));
        let unlimited = json!({"quota_set": {"gigabytes": {"limit": -1, "in_use": 3}}});
        assert_eq!(capacity_from_json(&unlimited, None).unwrap().available_gib, None);
    }
}
