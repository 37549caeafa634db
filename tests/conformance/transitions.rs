//! What COs do back to back while the cloud is still in a transition, at realistic latencies:
//! delete right after create, delete the source right after its snapshot, expand and publish
//! a volume that is still being created, list and get right after a delete, and mutable
//! parameters at create. The sequences that matter run at 500 ms and at 2 s per transition.

use serde_json::Value;

use super::*;

/// `message` with a gRPC deadline, as the sidecars send every call.
fn within<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// The emulator's record of a cloud object (its state file is written through on every
/// change): how a test sees what the cloud holds, as opposed to what the driver reports.
fn cloud_record(state: &Path, id: &str) -> Option<Value> {
    fn find(value: &Value, id: &str) -> Option<Value> {
        match value {
            Value::Object(map) if map.get("id").and_then(Value::as_str) == Some(id) => Some(value.clone()),
            Value::Object(map) => map.values().find_map(|v| find(v, id)),
            Value::Array(items) => items.iter().find_map(|v| find(v, id)),
            _ => None,
        }
    }
    let text = std::fs::read(state.join("cloud").join("state.json")).ok()?;
    find(&serde_json::from_slice(&text).ok()?, id)
}

/// A CreateVolume the CO gave up on (its deadline passed while the cloud was still creating):
/// the id of the volume the cloud is still creating, found as the CO's retry would find it.
async fn volume_still_creating(s: &mut Sandbox, name: &str, deadline: Duration) -> String {
    let cut = s.controller.create_volume(within(create_request(name, 1), deadline)).await;
    // The client's timer or the server's (tonic answers Cancelled) ends the call first.
    let cut = code(cut);
    assert!(
        matches!(cut, Code::DeadlineExceeded | Code::Cancelled),
        "the create must outlast the caller's deadline: {cut:?}"
    );
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(id) = s.volume_ids().await.into_iter().next() {
            let status = cloud_record(&s.state, &id).and_then(|v| v["status"].as_str().map(str::to_string));
            assert_eq!(status.as_deref(), Some("creating"), "the race this test is about");
            return id;
        }
        assert!(Instant::now() < until, "the cut create never reached the cloud");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// create → snapshot → DeleteSnapshot at once → DeleteVolume of the source at once: every call
/// succeeds the first time, and neither object is listed or found afterwards.
async fn create_snapshot_then_delete_both_at_once(latency: Duration) {
    let mut s = Sandbox::start_with_latency(latency).await;
    let volume = s.create_volume("sequence-source").await;
    let snapshot = s.create_snapshot("sequence-snapshot", &volume.volume_id).await;
    assert!(!snapshot.ready_to_use, "the snapshot is still being taken: the race this test is about");

    let delete =
        pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    ok(s.controller.delete_snapshot(delete).await);
    assert!(!s.snapshot_ids().await.contains(&snapshot.snapshot_id), "a deleted snapshot is not listed");
    let get = pb::GetSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.get_snapshot(get).await), Code::NotFound);

    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    assert!(!s.volume_ids().await.contains(&volume.volume_id), "a deleted volume is not listed");
    let get = pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() };
    assert_eq!(code(s.controller.controller_get_volume(get).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_then_delete_it_and_its_source_at_once_each_succeed_in_one_call() {
    create_snapshot_then_delete_both_at_once(LATENCY).await;
}

#[tokio::test]
async fn create_snapshot_then_delete_it_and_its_source_at_once_each_succeed_in_one_call_at_2s() {
    create_snapshot_then_delete_both_at_once(SLOW).await;
}

#[tokio::test]
async fn delete_snapshot_of_a_backup_still_being_made_succeeds_in_one_call() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("backup-source").await;
    let request = pb::CreateSnapshotRequest {
        parameters: HashMap::from([("type".to_string(), "backup".to_string())]),
        ..snapshot_request("backup-at-once", &volume.volume_id)
    };
    let backup = ok(s.controller.create_snapshot(request).await).snapshot.unwrap();
    assert!(!backup.ready_to_use, "the backup is still being made: the race this test is about");
    let delete = pb::DeleteSnapshotRequest { snapshot_id: backup.snapshot_id.clone(), ..Default::default() };
    ok(s.controller.delete_snapshot(delete).await);
    let get = pb::GetSnapshotRequest { snapshot_id: backup.snapshot_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.get_snapshot(get).await), Code::NotFound);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

/// DeleteVolume of a volume the cloud is still creating (the CO gave up on the create).
async fn delete_volume_still_creating(latency: Duration, cut: Duration) {
    let mut s = Sandbox::start_with_latency(latency).await;
    let id = volume_still_creating(&mut s, "deleted-while-creating", cut).await;
    let delete = pb::DeleteVolumeRequest { volume_id: id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    assert!(!s.volume_ids().await.contains(&id));
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_of_a_volume_still_creating_waits_and_deletes_it_in_one_call() {
    delete_volume_still_creating(LATENCY, Duration::from_millis(150)).await;
}

#[tokio::test]
async fn delete_volume_of_a_volume_still_creating_waits_and_deletes_it_in_one_call_at_2s() {
    delete_volume_still_creating(SLOW, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_delete_that_cannot_settle_before_the_callers_deadline_is_aborted_before_it() {
    let mut s = Sandbox::start_with_latency(SLOW).await;
    let id = volume_still_creating(&mut s, "settles-too-late", Duration::from_millis(300)).await;
    let delete = pb::DeleteVolumeRequest { volume_id: id.clone(), ..Default::default() };
    let started = Instant::now();
    let refused = s.controller.delete_volume(within(delete.clone(), Duration::from_millis(1500))).await;
    assert_eq!(code(refused), Code::Aborted, "the driver answers, before the deadline, that it must retry");
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(cloud_record(&s.state, &id).is_some(), "nothing was deleted mid-transition");
    ok(s.controller.delete_volume(delete).await);
    s.finish().await;
}

#[tokio::test]
async fn controller_expand_of_a_volume_still_creating_waits_and_grows_it() {
    let mut s = Sandbox::start().await;
    let id = volume_still_creating(&mut s, "expanded-while-creating", Duration::from_millis(150)).await;
    let expand = pb::ControllerExpandVolumeRequest {
        volume_id: id.clone(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
        ..Default::default()
    };
    assert_eq!(ok(s.controller.controller_expand_volume(expand).await).capacity_bytes, 2 * GIB);
    let get = pb::ControllerGetVolumeRequest { volume_id: id.clone() };
    let volume = ok(s.controller.controller_get_volume(get).await).volume.unwrap();
    assert_eq!(volume.capacity_bytes, 2 * GIB);
    s.delete_volume(&id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_of_a_volume_still_creating_waits_and_attaches_it() {
    let mut s = Sandbox::start().await;
    let id = volume_still_creating(&mut s, "published-while-creating", Duration::from_millis(150)).await;
    let node = s.node_id.clone();
    let context =
        ok(s.controller.controller_publish_volume(publish_request(&id, &node)).await).publish_context;
    assert!(!context.is_empty());
    let get = pb::ControllerGetVolumeRequest { volume_id: id.clone() };
    let status = ok(s.controller.controller_get_volume(get).await).status.unwrap();
    assert_eq!(status.published_node_ids, vec![node.clone()]);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&id, &node)).await);
    s.delete_volume(&id).await;
    s.finish().await;
}

#[tokio::test]
async fn a_deleted_volume_is_neither_listed_nor_found_while_the_cloud_still_deletes_it() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("listed-after-delete").await;
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.delete_volume(delete).await);
    let status =
        cloud_record(&s.state, &volume.volume_id).and_then(|v| v["status"].as_str().map(str::to_string));
    assert_eq!(
        status.as_deref(),
        Some("deleting"),
        "the cloud is still deleting: the race this test is about"
    );
    assert!(!s.volume_ids().await.contains(&volume.volume_id), "ListVolumes shows a deleted volume");
    let get = pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() };
    assert_eq!(code(s.controller.controller_get_volume(get).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_invalid_mutable_parameters_is_invalid_argument_and_creates_nothing() {
    let mut s = Sandbox::start().await;
    for (key, value) in [("colour", "red"), ("iops", "0"), ("throughput", "fast"), ("type", " ")] {
        let request = pb::CreateVolumeRequest {
            mutable_parameters: HashMap::from([(key.to_string(), value.to_string())]),
            ..create_request("bad-mutable", 1)
        };
        assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument, "{key}={value}");
    }
    assert!(s.volume_ids().await.is_empty(), "a refused create leaves nothing behind");
    s.finish().await;
}

#[tokio::test]
async fn create_volume_applies_valid_mutable_parameters_at_create() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        mutable_parameters: HashMap::from([("type".to_string(), "fast".to_string())]),
        ..create_request("typed-by-its-class", 1)
    };
    let volume = ok(s.controller.create_volume(request.clone()).await).volume.unwrap();
    let record = cloud_record(&s.state, &volume.volume_id).expect("the volume is in the cloud");
    let type_id = record["volume_type_id"].as_str().unwrap().to_string();
    let volume_type = cloud_record(&s.state, &type_id).expect("its type exists");
    assert_eq!(volume_type["name"], "fast", "the VolumeAttributesClass's type was applied at create");
    let again = ok(s.controller.create_volume(request).await).volume.unwrap();
    assert_eq!(again.volume_id, volume.volume_id, "the repeated create is the same volume");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_modify_with_empty_mutable_parameters_succeeds_and_changes_nothing() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("modified-with-nothing").await;
    let before = cloud_record(&s.state, &volume.volume_id).unwrap();
    let modify =
        pb::ControllerModifyVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    ok(s.controller.controller_modify_volume(modify).await);
    let after = cloud_record(&s.state, &volume.volume_id).unwrap();
    assert_eq!(before["volume_type_id"], after["volume_type_id"]);
    assert_eq!(before["size"], after["size"]);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

/// The id of a group snapshot the cloud holds in `creating`, from the emulator's state file.
fn group_snapshot_creating(state: &Path) -> Option<String> {
    fn find(value: &Value) -> Option<String> {
        match value {
            Value::Object(map)
                if map.contains_key("group_id")
                    && map.contains_key("group_type_id")
                    && map.get("status").and_then(Value::as_str) == Some("creating") =>
            {
                map.get("id").and_then(Value::as_str).map(str::to_string)
            }
            Value::Object(map) => map.values().find_map(find),
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    let text = std::fs::read(state.join("cloud").join("state.json")).ok()?;
    find(&serde_json::from_slice(&text).ok()?)
}

#[tokio::test]
async fn delete_of_a_group_snapshot_still_being_taken_waits_and_deletes_it_in_one_call() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("group-race-a").await;
    let b = s.create_volume("group-race-b").await;
    let request = pb::CreateVolumeGroupSnapshotRequest {
        name: "group-race".into(),
        source_volume_ids: vec![a.volume_id.clone(), b.volume_id.clone()],
        ..Default::default()
    };
    let mut creator = s.group.clone();
    let create = tokio::spawn(async move { creator.create_volume_group_snapshot(request).await });
    let until = Instant::now() + Duration::from_secs(20);
    let id = loop {
        if let Some(id) = group_snapshot_creating(&s.state) {
            break id;
        }
        assert!(Instant::now() < until, "the group snapshot never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let delete = pb::DeleteVolumeGroupSnapshotRequest { group_snapshot_id: id.clone(), ..Default::default() };
    ok(s.group.delete_volume_group_snapshot(delete).await);
    let get = pb::GetVolumeGroupSnapshotRequest { group_snapshot_id: id, ..Default::default() };
    assert_eq!(code(s.group.get_volume_group_snapshot(get).await), Code::NotFound);
    // The create lost its group snapshot to the delete; only the delete's outcome matters here.
    let _ = tokio::time::timeout(Duration::from_secs(30), create).await;
    for id in [&a.volume_id, &b.volume_id] {
        s.delete_volume(id).await;
    }
    s.finish().await;
}
