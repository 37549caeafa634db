//! EVS disks: create (v2 and v2.1, job based, batches), list and detail with filters and
//! pagination, show, update, delete (job) and expand (job).

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::jobs::new_job;
use super::{Ctx, evs_bad, evs_not_found, json_object, opt_int, opt_string, views};
use crate::EVS_PREFIX;
use crate::bootstrap::{HUAWEI_TYPES, resource_id};
use crate::clock::now_ms;
use crate::errors::{ApiError, ApiResult, Family};
use crate::model::{JobTarget, Metadata, Op, Pending, Volume};
use crate::sparse;
use crate::store::{Cloud, World};

const F: Family = Family::Evs;
/// The smallest and largest data disk (GiB).
pub const DATA_DISK_GIB: std::ops::RangeInclusive<u64> = 10..=32768;
/// Statuses a disk may be deleted in (EVS.1046 otherwise).
const DELETABLE: &[&str] = &["available", "error", "error_extending", "error_restoring", "error_rollbacking"];
/// The most ids an `ids` filter takes.
const MAX_IDS: usize = 60;

/// The disk routes.
pub fn routes() -> Router<Cloud> {
    Router::new()
        .route("/evs/v2/{project_id}/cloudvolumes", get(list).post(create_v2))
        .route("/evs/v2.1/{project_id}/cloudvolumes", post(create_v21))
        .route("/evs/v2/{project_id}/cloudvolumes/detail", get(detail))
        .route("/evs/v2/{project_id}/cloudvolumes/{volume_id}", get(show).put(update).delete(delete))
        .route("/evs/v2/{project_id}/cloudvolumes/{volume_id}/action", post(action))
        .route("/evs/v2.1/{project_id}/cloudvolumes/{volume_id}/action", post(action))
        .route("/evs/v5/{project_id}/cloudvolumes/{volume_id}/qos", axum::routing::put(modify_qos))
}

/// A disk of the caller's project, or 404 EVS.5404.
pub fn find<'a>(w: &'a World, ctx: &Ctx, id: &str) -> ApiResult<&'a Volume> {
    w.stores
        .get(&ctx.auth.project_id)
        .and_then(|s| s.volumes.get(id))
        .ok_or_else(|| evs_not_found("Volume", id))
}

fn quota_error(resource: &str) -> ApiError {
    if resource.starts_with("gigabytes") {
        evs_bad("EVS.1042", "volume gigabytes exceeded volume gigabytes quota!")
    } else {
        evs_bad("EVS.1034", "volume count exceeded volume count quota!")
    }
}

/// EVS.1034/EVS.1042 when a project would exceed a volume count or capacity quota.
pub fn check_quota(w: &World, project_id: &str, wants: &[(String, i64)]) -> ApiResult<()> {
    let usage = w.usage(project_id);
    for (resource, amount) in wants {
        let limit = w.quota_limit(project_id, resource);
        let used = usage.get(resource).copied().unwrap_or(0);
        if limit >= 0 && used + amount > limit {
            return Err(quota_error(resource));
        }
    }
    Ok(())
}

fn metadata_of(map: &Map<String, Value>) -> ApiResult<Metadata> {
    match map.get("metadata") {
        None | Some(Value::Null) => Ok(Metadata::new()),
        Some(Value::Object(entries)) => entries
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => {
                    Err(evs_bad("EVS.1018", "Type conversion error , parameter type is unexpected: metadata"))
                }
            })
            .collect(),
        Some(_) => Err(evs_bad("EVS.1018", "Type conversion error , parameter type is unexpected: metadata")),
    }
}

/// Provisioned IOPS and throughput of the V2 types, checked against their ranges.
fn performance(type_name: &str, iops: Option<i64>, throughput: Option<i64>) -> ApiResult<Vec<(String, i64)>> {
    let range = |name: &str, value: i64, low: i64, high: i64| {
        if (low..=high).contains(&value) {
            Ok((name.to_string(), value))
        } else {
            Err(evs_bad(
                "EVS.5400",
                format!("Invalid {name} {value} for {type_name}: must be {low} to {high}."),
            ))
        }
    };
    match type_name {
        "GPSSD2" => Ok(vec![
            range("iops", iops.unwrap_or(3000), 3000, 128_000)?,
            range("throughput", throughput.unwrap_or(125), 125, 1000)?,
        ]),
        "ESSD2" if throughput.is_some() => {
            Err(evs_bad("EVS.5400", "throughput can only be provisioned for GPSSD2 disks."))
        }
        "ESSD2" => Ok(vec![range("iops", iops.unwrap_or(1000), 100, 256_000)?]),
        _ if iops.is_some() || throughput.is_some() => Err(evs_bad(
            "EVS.5400",
            format!(
                "iops and throughput can only be provisioned for GPSSD2 and ESSD2 disks, not {type_name}."
            ),
        )),
        _ => Ok(Vec::new()),
    }
}

async fn create_v2(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    // The v2 create documents no tags (reference 6.1.1); a `tags` field there is ignored.
    let (job_id, _) = create(&cloud, &ctx, &body, false)?;
    Ok(Json(json!({"job_id": job_id})))
}

async fn create_v21(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let (job_id, volume_ids) = create(&cloud, &ctx, &body, true)?;
    if cloud.config().evs_ids_from_jobs_only {
        return Ok(Json(json!({"job_id": job_id})));
    }
    Ok(Json(json!({"job_id": job_id, "volume_ids": volume_ids})))
}

/// Validates a create request, records the disks as `creating` and their job. With `with_tags`
/// (the v2.1 create), `volume.tags` is checked and each new disk carries it from the start.
fn create(cloud: &Cloud, ctx: &Ctx, body: &Bytes, with_tags: bool) -> ApiResult<(String, Vec<String>)> {
    let top = json_object(body, F)?;
    let map = top.get("volume").and_then(Value::as_object).cloned();
    let map = map.ok_or_else(|| evs_bad("EVS.1008", "null createVolumeReq!"))?;
    let name = opt_string(&map, "name")?.unwrap_or_default();
    let description = opt_string(&map, "description")?;
    if name.len() > 255 {
        return Err(evs_bad("EVS.1003", "invalid volume name!"));
    }
    if description.as_ref().is_some_and(|d| d.len() > 255) {
        return Err(evs_bad("EVS.1004", "invalid volume description!"));
    }
    let zone = opt_string(&map, "availability_zone")?;
    let type_asked = opt_string(&map, "volume_type")?;
    let snapshot_id = opt_string(&map, "snapshot_id")?;
    let backup_id = opt_string(&map, "backup_id")?;
    let image = opt_string(&map, "imageRef")?;
    let count = opt_int(&map, "count")?.unwrap_or(1);
    let size = opt_int(&map, "size")?;
    let mut metadata = metadata_of(&map)?;
    let tags = if with_tags { super::tag_rules::create_tags(&map)? } else { Map::new() };
    let iops = opt_int(&map, "iops")?;
    let enterprise_project = opt_string(&map, "enterprise_project_id")?;
    let throughput = opt_int(&map, "throughput")?;
    let multiattach = match map.get("multiattach") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(evs_bad(
                "EVS.1018",
                "Type conversion error , parameter type is unexpected: multiattach",
            ));
        }
    };
    let shareable = match opt_string(&map, "shareable")?.as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => return Err(evs_bad("EVS.1054", "invalid shareable parameter!")),
    };
    if [&snapshot_id, &backup_id, &image].iter().filter(|s| s.is_some()).count() > 1 {
        return Err(evs_bad(
            "EVS.1016",
            "Invalid input received: May specify only one of imageRef, snapshot_id, backup_id!",
        ));
    }
    if let Some(image) = &image {
        return Err(evs_bad("EVS.2046", format!("invalid imageRef! The emulator has no image {image}.")));
    }
    if !(1..=100).contains(&count) {
        return Err(evs_bad("EVS.1021", "the quantity of volume is invalid!"));
    }
    if backup_id.is_some() && count > 1 {
        return Err(evs_bad("EVS.1051", "can not batch create volume from backup!"));
    }
    if let Some(v) = metadata.get("hw:passthrough")
        && v != "true"
        && v != "false"
    {
        return Err(evs_bad("EVS.1057", "invalid hw:passthrough in metadata!"));
    }
    if let Some(v) = metadata.get("full_clone")
        && v != "0"
        && v != "1"
    {
        return Err(evs_bad("EVS.1063", "invalid full_clone in metadata!"));
    }
    if size.is_some_and(|s| s < 1) {
        return Err(evs_bad("EVS.1010", "invalid volume size!"));
    }
    let size = size.map(|s| s as u64);
    cloud.write(F, |w| {
        let project_id = ctx.auth.project_id.clone();
        let mut type_name = type_asked.clone();
        let mut source = None;
        let mut minimum = None;
        if let Some(sid) = &snapshot_id {
            let snapshot = w.stores.get(&project_id).and_then(|s| s.snapshots.get(sid)).cloned();
            let snapshot = snapshot.ok_or_else(|| evs_bad("EVS.2045", "invalid snapshot_id!"))?;
            if snapshot.status != "available" {
                return Err(evs_bad("EVS.2043", "The status of snapshot is not available or backing-up."));
            }
            let parent = w.volume(&snapshot.volume_id).cloned();
            let parent_type = parent.as_ref().map(|p| views::type_name(w, p));
            if let (Some(asked), Some(parent_type)) = (&type_asked, &parent_type)
                && asked != parent_type
            {
                return Err(evs_bad("EVS.2096", format!("Target volumeType[{asked}] is not matched with snapshot[{sid}] !")));
            }
            if let (Some(asked), Some(parent)) = (&zone, &parent)
                && *asked != parent.availability_zone
            {
                return Err(evs_bad("EVS.2054", "Cannot create volume from snapshot as the az is invalid!"));
            }
            if ["__system__encrypted", "__system__cmkid", "hw:passthrough"].iter().any(|k| metadata.contains_key(*k)) {
                return Err(evs_bad("EVS.1043", "encrypt and cmk and passthrough in metadata is not support when create volume from snapshot or image!"));
            }
            if let Some(parent) = &parent {
                for key in ["hw:passthrough", "__system__encrypted", "__system__cmkid"] {
                    if let Some(value) = parent.metadata.get(key) {
                        metadata.insert(key.into(), value.clone());
                    }
                }
            }
            type_name = type_name.or(parent_type);
            minimum = Some(snapshot.size);
            if size.is_some_and(|s| s < snapshot.size) {
                return Err(evs_bad("EVS.1010", format!("invalid volume size! It must be at least the snapshot size {}.", snapshot.size)));
            }
            source = Some(cloud.snapshot_file(sid));
        }
        if let Some(bid) = &backup_id {
            let backup = w.stores.get(&project_id).and_then(|s| s.backups.get(bid)).cloned();
            let backup = backup.ok_or_else(|| evs_bad("EVS.1006", "invalid backup id!"))?;
            if backup.status != "available" {
                return Err(evs_bad("EVS.1044", "backup status must be available when create a volume from it!"));
            }
            if size.is_some_and(|s| s < backup.size) {
                return Err(evs_bad("EVS.1022", "the size param is less than backup size!"));
            }
            minimum = Some(backup.size);
            source = Some(cloud.backup_file(bid));
        }
        let zone = zone.clone().ok_or_else(|| evs_bad("EVS.2083", "AZ and volume type must not be empty or null!"))?;
        if !w.availability_zones.contains(&zone) {
            return Err(evs_bad("EVS.1036", "invalid availability zone!"));
        }
        let type_name = type_name.ok_or_else(|| evs_bad("EVS.2083", "AZ and volume type must not be empty or null!"))?;
        let volume_type = w
            .volume_type(&type_name)
            .filter(|t| HUAWEI_TYPES.iter().any(|(n, _)| *n == t.name))
            .cloned()
            .ok_or_else(|| evs_bad("EVS.1020", "invalid volume type!"))?;
        let size = size.or(minimum).ok_or_else(|| evs_bad("EVS.1010", "invalid volume size!"))?;
        let allowed = if source.is_some() { 1..=*DATA_DISK_GIB.end() } else { DATA_DISK_GIB };
        if !allowed.contains(&size) {
            return Err(evs_bad("EVS.1010", format!("invalid volume size! Data disks are {} to {} GB.", DATA_DISK_GIB.start(), DATA_DISK_GIB.end())));
        }
        let mut extra: Vec<(String, Value)> =
            performance(&volume_type.name, iops, throughput)?.into_iter().map(|(k, v)| (k, json!(v))).collect();
        if let Some(ep) = &enterprise_project {
            extra.push(("enterprise_project_id".into(), json!(ep)));
        }
        if !tags.is_empty() {
            extra.push(("tags".into(), Value::Object(tags.clone())));
        }
        let n = count as i64;
        check_quota(w, &project_id, &[
            ("volumes".into(), n),
            ("gigabytes".into(), n * size as i64),
            (format!("volumes_{}", volume_type.name), n),
            (format!("gigabytes_{}", volume_type.name), n * size as i64),
        ])?;
        let mut sub_jobs = Vec::new();
        let mut ids = Vec::new();
        for index in 1..=count {
            let id = resource_id();
            let file = cloud.volume_file(&id);
            let made = match &source {
                None => sparse::create(&file, size),
                Some(from) => sparse::copy(from, &file, size),
            };
            made.map_err(|e| {
                tracing::error!(volume = %id, error = %e, "emulator: creating the disk file failed");
                super::evs(StatusCode::INTERNAL_SERVER_ERROR, "EVS.2002", "internal error!")
            })?;
            let disk_name = if count > 1 { format!("{name}-{index:04}") } else { name.clone() };
            let volume = Volume {
                id: id.clone(),
                project_id: project_id.clone(),
                user_id: ctx.auth.user_id.clone(),
                name: disk_name.clone(),
                description: description.clone(),
                size,
                status: "creating".into(),
                volume_type_id: volume_type.id.clone(),
                availability_zone: zone.clone(),
                bootable: false,
                readonly: false,
                multiattach: multiattach.or(shareable).unwrap_or(false),
                metadata: metadata.clone(),
                snapshot_id: snapshot_id.clone(),
                source_volid: None,
                backup_id: backup_id.clone(),
                group_id: None,
                migration_status: None,
                attachments: Vec::new(),
                created_at_ms: now_ms(),
                updated_at_ms: None,
                pending: Some(Pending { op: Op::Create, due_ms: cloud.due("volume.creating") }),
                extra: extra.iter().cloned().collect(),
            };
            w.store_mut(&project_id).volumes.insert(id.clone(), volume);
            let mut entities = json!({"name": disk_name, "size": size, "volume_type": volume_type.name});
            if !cloud.config().evs_ids_from_jobs_only {
                entities["volume_id"] = json!(id);
            }
            sub_jobs.push(new_job(&project_id, "evs", "createVolume", JobTarget::CreateVolume { volume_id: id.clone() }, entities));
            ids.push(id);
        }
        let job = if count == 1 {
            sub_jobs.pop().expect("one disk")
        } else {
            let mut batch = new_job(&project_id, "evs", "batchCreateVolume", JobTarget::Batch, json!({}));
            batch.sub_jobs = sub_jobs;
            batch
        };
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        Ok((job_id, ids))
    })
}

/// The parsed query of a disk listing.
struct Listing {
    limit: usize,
    offset: usize,
    marker: Option<String>,
    sort_key: String,
    ascending: bool,
    filters: Vec<(String, String)>,
}

fn is_uuid(text: &str) -> bool {
    uuid::Uuid::parse_str(text).is_ok()
}

/// Parses limit (1–1000), offset, marker and sorting with the EVS error codes.
fn parse_listing(query: &[(String, String)]) -> ApiResult<Listing> {
    let mut listing = Listing {
        limit: 1000,
        offset: 0,
        marker: None,
        sort_key: "created_at".into(),
        ascending: false,
        filters: Vec::new(),
    };
    for (key, value) in query {
        match key.as_str() {
            "limit" => {
                let n: i64 =
                    value.parse().map_err(|_| evs_bad("EVS.5400", "limit param must be an integer."))?;
                if n < 1 {
                    return Err(evs_bad("EVS.1023", "invalid filter limit!"));
                }
                if n > 1000 {
                    return Err(evs_bad("EVS.2142", "invalid filter limit, can not greater than 1000."));
                }
                listing.limit = n as usize;
            }
            "offset" => {
                let n: i64 =
                    value.parse().map_err(|_| evs_bad("EVS.5400", "offset param must be an integer."))?;
                if n < 0 {
                    return Err(evs_bad("EVS.5400", "offset param must be an integer."));
                }
                listing.offset = n as usize;
            }
            "marker" => {
                if !is_uuid(value) {
                    return Err(evs_bad("EVS.1024", "invalid filter marker!"));
                }
                listing.marker = Some(value.clone());
            }
            "sort_key" => {
                if !["id", "status", "size", "created_at"].contains(&value.as_str()) {
                    return Err(evs_bad("EVS.1039", "invalid sort_key!"));
                }
                listing.sort_key = value.clone();
            }
            "sort_dir" => {
                listing.ascending = match value.as_str() {
                    "asc" => true,
                    "desc" => false,
                    _ => return Err(evs_bad("EVS.1040", "invalid sort_dir!")),
                }
            }
            _ => listing.filters.push((key.clone(), value.clone())),
        }
    }
    Ok(listing)
}

/// `['a','b']`, `["a","b"]` or `a,b`.
fn parse_ids(text: &str) -> Vec<String> {
    text.trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|s| !s.is_empty())
        .take(MAX_IDS)
        .collect()
}

fn matches(w: &World, v: &Volume, filters: &[(String, String)]) -> ApiResult<bool> {
    let ids_given = filters.iter().any(|(k, _)| k == "ids");
    for (key, value) in filters {
        let ok = match key.as_str() {
            "name" => v.name.contains(value.as_str()),
            "status" => v.status == *value,
            "availability_zone" => {
                if !w.availability_zones.contains(value) {
                    return Err(evs_bad("EVS.1041", "invalid filter availability-zone!"));
                }
                v.availability_zone == *value
            }
            "id" if !ids_given => v.id == *value,
            "ids" => parse_ids(value).contains(&v.id),
            "multiattach" => v.multiattach.to_string() == value.to_ascii_lowercase(),
            "server_id" => v.attachments.iter().any(|a| a.server_id.as_deref() == Some(value.as_str())),
            "volume_type_id" => v.volume_type_id == *value,
            "enterprise_project_id" => views::enterprise_project(v) == value,
            "service_type" => value == "EVS",
            "metadata" => {
                let wanted: Map<String, Value> = serde_json::from_str(value)
                    .map_err(|_| evs_bad("EVS.1058", "invalid metadata filter!"))?;
                wanted
                    .iter()
                    .all(|(k, want)| v.metadata.get(k).is_some_and(|have| want.as_str() == Some(have)))
            }
            _ => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Filters, sorts and pages the caller's disks; returns the page and the filtered count.
fn select(w: &World, ctx: &Ctx, listing: &Listing) -> ApiResult<(Vec<Volume>, usize, bool)> {
    let mut all = Vec::new();
    for v in w.stores.get(&ctx.auth.project_id).map(|s| s.volumes.values()).into_iter().flatten() {
        if matches(w, v, &listing.filters)? {
            all.push(v.clone());
        }
    }
    all.sort_by(|a, b| {
        let order = match listing.sort_key.as_str() {
            "id" => a.id.cmp(&b.id),
            "status" => a.status.cmp(&b.status),
            "size" => a.size.cmp(&b.size),
            _ => a.created_at_ms.cmp(&b.created_at_ms),
        }
        .then_with(|| a.id.cmp(&b.id));
        if listing.ascending { order } else { order.reverse() }
    });
    let count = all.len();
    let start = match &listing.marker {
        Some(marker) => {
            all.iter()
                .position(|v| v.id == *marker)
                .ok_or_else(|| evs_bad("EVS.1024", "invalid filter marker!"))?
                + 1
        }
        None => 0,
    } + listing.offset;
    let rest: Vec<Volume> = all.into_iter().skip(start).collect();
    let more = rest.len() > listing.limit;
    Ok((rest.into_iter().take(listing.limit).collect(), count, more))
}

fn next_link(cloud: &Cloud, ctx: &Ctx, path: &str, listing: &Listing, page: &[Volume], more: bool) -> Value {
    match page.last() {
        Some(last) if more => json!([{
            "href": format!("{}{EVS_PREFIX}/v2/{}/{path}?limit={}&marker={}", cloud.base_url(), ctx.auth.project_id, listing.limit, last.id),
            "rel": "next",
        }]),
        _ => json!([]),
    }
}

async fn detail(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let listing = parse_listing(&query)?;
    cloud.read(|w| {
        let (page, count, more) = select(w, &ctx, &listing)?;
        let volumes: Vec<Value> = page.iter().map(|v| views::disk(&cloud, w, v)).collect();
        let links = next_link(&cloud, &ctx, "cloudvolumes/detail", &listing, &page, more);
        Ok(Json(json!({"volumes": volumes, "count": count, "volumes_links": links})))
    })
}

async fn list(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Query(query): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    let listing = parse_listing(&query)?;
    cloud.read(|w| {
        let (page, count, more) = select(w, &ctx, &listing)?;
        let volumes: Vec<Value> = page
            .iter()
            .map(|v| {
                let full = views::disk(&cloud, w, v);
                json!({"id": v.id, "name": v.name, "links": full["links"]})
            })
            .collect();
        let links = next_link(&cloud, &ctx, "cloudvolumes", &listing, &page, more);
        Ok(Json(json!({"volumes": volumes, "count": count, "volumes_links": links})))
    })
}

async fn show(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.read(|w| Ok(Json(json!({"volume": views::disk(&cloud, w, find(w, &ctx, &id)?)}))))
}

async fn update(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let top = json_object(&body, F)?;
    let map = top.get("volume").and_then(Value::as_object).cloned();
    let map = map.ok_or_else(|| evs_bad("EVS.1001", "null volume!"))?;
    let name = opt_string(&map, "name")?.or(opt_string(&map, "display_name")?);
    let description = opt_string(&map, "description")?.or(opt_string(&map, "display_description")?);
    let metadata = if map.contains_key("metadata") { Some(metadata_of(&map)?) } else { None };
    if name.is_none() && description.is_none() && metadata.is_none() {
        return Err(evs_bad("EVS.1007", "volume name and description can not both be empty!"));
    }
    if name.as_ref().is_some_and(|n| n.len() > 255) {
        return Err(evs_bad("EVS.1003", "invalid volume name!"));
    }
    if description.as_ref().is_some_and(|d| d.len() > 255) {
        return Err(evs_bad("EVS.1004", "invalid volume description!"));
    }
    if metadata
        .as_ref()
        .is_some_and(|m| m.keys().any(|k| k.starts_with("__system__") || k == "hw:passthrough"))
    {
        return Err(evs_bad("EVS.2047", "the metadata Param is not allowed to be updated!"));
    }
    cloud.write(F, |w| {
        find(w, &ctx, &id)?;
        let volume = w.store_mut(&ctx.auth.project_id).volumes.get_mut(&id).expect("found above");
        if let Some(name) = name {
            volume.name = name;
        }
        if let Some(description) = description {
            volume.description = Some(description);
        }
        if let Some(metadata) = metadata {
            volume.metadata.extend(metadata);
        }
        volume.updated_at_ms = Some(now_ms());
        let volume = volume.clone();
        // EVS answers this PUT with the disk itself, not wrapped in `volume` (reference 6.1.4).
        Ok(Json(views::disk(&cloud, w, &volume)))
    })
}

async fn delete(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    cloud.write(F, |w| {
        let volume = find(w, &ctx, &id)?.clone();
        let refuse = || evs_bad("EVS.1046", "volume status must be available, error, error_extending, error_restoring, error_rollbacking when delete volume!");
        if !DELETABLE.contains(&volume.status.as_str()) || !volume.attachments.is_empty() {
            return Err(refuse());
        }
        let store = w.store_mut(&volume.project_id);
        // Deleting an EVS disk deletes its snapshots with it.
        let snapshots: Vec<String> =
            store.snapshots.values().filter(|s| s.volume_id == id).map(|s| s.id.clone()).collect();
        if store.snapshots.values().any(|s| s.volume_id == id && !["available", "error"].contains(&s.status.as_str())) {
            return Err(evs_bad("EVS.1047", "snapshot status must be available or error when delete snapshot!"));
        }
        for sid in snapshots {
            if let Some(s) = store.snapshots.get_mut(&sid) {
                s.status = "deleting".into();
                s.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("snapshot.deleting") });
            }
        }
        let v = store.volumes.get_mut(&id).expect("found above");
        v.status = "deleting".into();
        v.updated_at_ms = Some(now_ms());
        v.pending = Some(Pending { op: Op::Delete, due_ms: cloud.due("volume.deleting") });
        let entities = json!({"volume_id": id});
        let job = new_job(&volume.project_id, "evs", "deleteVolume", JobTarget::DeleteVolume { volume_id: id.clone() }, entities);
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        Ok(Json(json!({"job_id": job_id})))
    })
}

async fn action(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let top = json_object(&body, F)?;
    let extend = top.get("os-extend").and_then(Value::as_object).cloned();
    let extend = extend.ok_or_else(|| evs_bad("EVS.1011", "null extendVolumeReq!"))?;
    let new_size =
        opt_int(&extend, "new_size")?.ok_or_else(|| evs_bad("EVS.1011", "null extendVolumeReq!"))?;
    cloud.write(F, |w| {
        let volume = find(w, &ctx, &id)?.clone();
        if !["available", "in-use"].contains(&volume.status.as_str()) {
            return Err(evs_bad("EVS.1064", "volume status must be available or in-use when extending!"));
        }
        if volume.multiattach && volume.status == "in-use" {
            return Err(evs_bad("EVS.1065", "multiattach volume status must be available when extending!"));
        }
        if new_size <= volume.size as i64 {
            return Err(evs_bad("EVS.1015", "new volume Size must be greater than old Size!"));
        }
        if new_size as u64 > *DATA_DISK_GIB.end() {
            return Err(evs_bad("EVS.1010", "invalid volume size!"));
        }
        let type_name = views::type_name(w, &volume);
        let grow = new_size - volume.size as i64;
        check_quota(
            w,
            &volume.project_id,
            &[("gigabytes".into(), grow), (format!("gigabytes_{type_name}"), grow)],
        )?;
        let new_size = new_size as u64;
        let v = w.store_mut(&volume.project_id).volumes.get_mut(&id).expect("found above");
        v.status = "extending".into();
        v.updated_at_ms = Some(now_ms());
        v.pending = Some(Pending {
            op: Op::Extend { new_size, back_to: volume.status.clone() },
            due_ms: cloud.due("volume.extending"),
        });
        let entities = json!({"volume_id": id, "size": new_size});
        let target = JobTarget::ExtendVolume { volume_id: id.clone(), new_size };
        let job = new_job(&volume.project_id, "evs", "extendVolume", target, entities);
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        // An expand is accepted, not done: 202, as the reference (7.2.1) and golangsdk expect.
        Ok((StatusCode::ACCEPTED, Json(json!({"job_id": job_id}))))
    })
}

/// `PUT /v5/{project_id}/cloudvolumes/{volume_id}/qos`: GPSSD2 disks change IOPS and
/// throughput (both required), ESSD2 disks IOPS only; the disk must be available or in-use.
async fn modify_qos(
    State(cloud): State<Cloud>,
    Extension(ctx): Extension<Ctx>,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let top = json_object(&body, F)?;
    let qos = top.get("qos_modify").and_then(Value::as_object).cloned();
    let qos = qos.ok_or_else(|| evs_bad("EVS.5400", "Malformed request body."))?;
    let iops = opt_int(&qos, "iops")?;
    let throughput = opt_int(&qos, "throughput")?;
    cloud.write(F, |w| {
        let volume = find(w, &ctx, &id)?.clone();
        if !["available", "in-use"].contains(&volume.status.as_str()) {
            return Err(evs_bad("EVS.1031", "invalid resources status!"));
        }
        let type_name = views::type_name(w, &volume);
        if type_name == "GPSSD2" && (iops.is_none() || throughput.is_none()) {
            return Err(evs_bad("EVS.5400", "GPSSD2 disks need both iops and throughput."));
        }
        if iops.is_none() && throughput.is_none() {
            return Err(evs_bad("EVS.5400", "qos_modify needs iops or throughput."));
        }
        let settings = performance(&type_name, iops, throughput)?;
        if settings.is_empty() {
            return Err(evs_bad("EVS.5400", format!("the QoS of {type_name} disks cannot be changed.")));
        }
        let v = w.store_mut(&volume.project_id).volumes.get_mut(&id).expect("found above");
        for (key, value) in settings {
            v.extra.insert(key, json!(value));
        }
        v.updated_at_ms = Some(now_ms());
        let target = JobTarget::ModifyQos { volume_id: id.clone() };
        let job = new_job(&volume.project_id, "evs", "modifyVolumeQos", target, json!({"volume_id": id}));
        let job_id = job.id.clone();
        w.jobs.insert(job_id.clone(), job);
        Ok((StatusCode::ACCEPTED, Json(json!({"job_id": job_id}))))
    })
}
