//! Snapshots and group snapshots: CreateSnapshot, DeleteSnapshot, ListSnapshots, GetSnapshot
//! and the GroupController service.

use super::*;

// ---------------------------------------------------------------------------------------------
// Snapshots

#[tokio::test]
async fn create_snapshot_without_name_or_source_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-args").await;
    for request in [snapshot_request("", &volume.volume_id), snapshot_request("no-source", "")] {
        assert_eq!(
            code(s.controller.create_snapshot(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_of_an_unknown_volume_is_not_found() {
    let mut s = Sandbox::start().await;
    let request = snapshot_request("orphan", UNKNOWN_VOLUME);
    assert_eq!(code(s.controller.create_snapshot(request).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_twice_returns_the_same_snapshot_which_becomes_ready_with_a_creation_time() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-source").await;
    let first = s.create_snapshot("snap", &volume.volume_id).await;
    let second = s.create_snapshot("snap", &volume.volume_id).await;
    assert_eq!(first.snapshot_id, second.snapshot_id);
    assert_eq!(first.source_volume_id, volume.volume_id);
    assert!(first.creation_time.is_some(), "creation_time is required: {first:?}");
    let ready = s.wait_snapshot_ready(&first.snapshot_id).await;
    assert!(ready.creation_time.is_some());
    assert_eq!(ready.size_bytes, volume.capacity_bytes);
    assert_eq!(s.snapshot_ids().await, vec![first.snapshot_id.clone()]);
    s.delete_snapshot(&first.snapshot_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_snapshot_with_a_name_taken_by_another_volume_is_already_exists() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("snap-a").await;
    let b = s.create_volume("snap-b").await;
    let snapshot = s.create_snapshot("shared-name", &a.volume_id).await;
    let request = snapshot_request("shared-name", &b.volume_id);
    assert_eq!(code(s.controller.create_snapshot(request).await), Code::AlreadyExists);
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&a.volume_id).await;
    s.delete_volume(&b.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_snapshot_without_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::DeleteSnapshotRequest::default();
    assert_eq!(code(s.controller.delete_snapshot(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn delete_snapshot_twice_and_of_an_unknown_id_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("snap-delete").await;
    let snapshot = s.create_snapshot("snap-delete", &volume.volume_id).await;
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    let delete =
        pb::DeleteSnapshotRequest { snapshot_id: snapshot.snapshot_id.clone(), ..Default::default() };
    ok(s.controller.delete_snapshot(delete.clone()).await);
    // At once, while the cloud is still deleting it: the repeat must succeed too.
    ok(s.controller.delete_snapshot(delete).await);
    let unknown = pb::DeleteSnapshotRequest { snapshot_id: UNKNOWN_SNAPSHOT.into(), ..Default::default() };
    ok(s.controller.delete_snapshot(unknown).await);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn get_snapshot_without_id_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let get = |id: &str| pb::GetSnapshotRequest { snapshot_id: id.into(), ..Default::default() };
    assert_eq!(code(s.controller.get_snapshot(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.controller.get_snapshot(get(UNKNOWN_SNAPSHOT)).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_with_negative_max_entries_is_invalid_argument_and_a_bad_token_aborted() {
    let mut s = Sandbox::start().await;
    let negative = pb::ListSnapshotsRequest { max_entries: -1, ..Default::default() };
    assert_eq!(code(s.controller.list_snapshots(negative).await), Code::InvalidArgument);
    let bad = pb::ListSnapshotsRequest { starting_token: "not a token!".into(), ..Default::default() };
    assert_eq!(code(s.controller.list_snapshots(bad).await), Code::Aborted);
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_filters_by_id_and_source_and_an_unknown_filter_gives_an_empty_list() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("list-a").await;
    let b = s.create_volume("list-b").await;
    let sa = s.create_snapshot("list-sa", &a.volume_id).await;
    let sb = s.create_snapshot("list-sb", &b.volume_id).await;
    let ids = |r: pb::ListSnapshotsResponse| -> Vec<String> {
        r.entries.into_iter().map(|e| e.snapshot.unwrap().snapshot_id).collect()
    };
    let by_id = pb::ListSnapshotsRequest { snapshot_id: sa.snapshot_id.clone(), ..Default::default() };
    assert_eq!(ids(ok(s.controller.list_snapshots(by_id).await)), vec![sa.snapshot_id.clone()]);
    let by_source = pb::ListSnapshotsRequest { source_volume_id: b.volume_id.clone(), ..Default::default() };
    assert_eq!(ids(ok(s.controller.list_snapshots(by_source).await)), vec![sb.snapshot_id.clone()]);
    let unknown_id = pb::ListSnapshotsRequest { snapshot_id: UNKNOWN_SNAPSHOT.into(), ..Default::default() };
    assert!(ids(ok(s.controller.list_snapshots(unknown_id).await)).is_empty());
    let unknown_source =
        pb::ListSnapshotsRequest { source_volume_id: UNKNOWN_VOLUME.into(), ..Default::default() };
    assert!(ids(ok(s.controller.list_snapshots(unknown_source).await)).is_empty());
    for id in [&sa.snapshot_id, &sb.snapshot_id] {
        s.delete_snapshot(id).await;
    }
    for id in [&a.volume_id, &b.volume_id] {
        s.delete_volume(id).await;
    }
    s.finish().await;
}

#[tokio::test]
async fn list_snapshots_pages_honour_max_entries_and_cover_every_snapshot_once() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("list-pages").await;
    let mut made = HashSet::new();
    for i in 0..5 {
        made.insert(s.create_snapshot(&format!("page-{i}"), &volume.volume_id).await.snapshot_id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request =
            pb::ListSnapshotsRequest { max_entries: 2, starting_token: token.clone(), ..Default::default() };
        let page = ok(s.controller.list_snapshots(request).await);
        assert!(page.entries.len() <= 2, "max_entries 2, got {}", page.entries.len());
        seen.extend(page.entries.into_iter().map(|e| e.snapshot.unwrap().snapshot_id));
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen.len(), made.len(), "each snapshot exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), made);
    assert!(pages >= 3, "5 snapshots in pages of 2 take 3 pages, took {pages}");
    for id in &made {
        s.delete_snapshot(id).await;
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_with_snapshots_is_failed_precondition_and_names_them() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("has-snapshots").await;
    let snapshot = s.create_snapshot("pinning", &volume.volume_id).await;
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    let status = s.controller.delete_volume(delete).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains(&snapshot.snapshot_id), "{}", status.message());
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// Group snapshots

#[tokio::test]
async fn group_snapshot_rpcs_validate_ids_and_unknown_group_is_not_found() {
    let mut s = Sandbox::start().await;
    let no_name = pb::CreateVolumeGroupSnapshotRequest {
        source_volume_ids: vec![UNKNOWN_VOLUME.into()],
        ..Default::default()
    };
    assert_eq!(code(s.group.create_volume_group_snapshot(no_name).await), Code::InvalidArgument);
    let no_sources = pb::CreateVolumeGroupSnapshotRequest { name: "g".into(), ..Default::default() };
    assert_eq!(code(s.group.create_volume_group_snapshot(no_sources).await), Code::InvalidArgument);
    let unknown_source = pb::CreateVolumeGroupSnapshotRequest {
        name: "g".into(),
        source_volume_ids: vec![UNKNOWN_VOLUME.into()],
        ..Default::default()
    };
    assert_eq!(code(s.group.create_volume_group_snapshot(unknown_source).await), Code::NotFound);
    let get =
        |id: &str| pb::GetVolumeGroupSnapshotRequest { group_snapshot_id: id.into(), ..Default::default() };
    assert_eq!(code(s.group.get_volume_group_snapshot(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.group.get_volume_group_snapshot(get(UNKNOWN_SNAPSHOT)).await), Code::NotFound);
    let delete = pb::DeleteVolumeGroupSnapshotRequest::default();
    assert_eq!(code(s.group.delete_volume_group_snapshot(delete).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn group_snapshot_twice_returns_the_same_group_and_delete_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let a = s.create_volume("group-a").await;
    let b = s.create_volume("group-b").await;
    let request = pb::CreateVolumeGroupSnapshotRequest {
        name: "group".into(),
        source_volume_ids: vec![a.volume_id.clone(), b.volume_id.clone()],
        ..Default::default()
    };
    let first = ok(s.group.create_volume_group_snapshot(request.clone()).await).group_snapshot.unwrap();
    let second = ok(s.group.create_volume_group_snapshot(request).await).group_snapshot.unwrap();
    assert_eq!(first.group_snapshot_id, second.group_snapshot_id);
    assert_eq!(first.snapshots.len(), 2);
    assert!(first.creation_time.is_some());
    for snapshot in &first.snapshots {
        assert_eq!(snapshot.group_snapshot_id, first.group_snapshot_id);
        assert!(snapshot.creation_time.is_some());
    }
    let delete = pb::DeleteVolumeGroupSnapshotRequest {
        group_snapshot_id: first.group_snapshot_id.clone(),
        snapshot_ids: first.snapshots.iter().map(|s| s.snapshot_id.clone()).collect(),
        ..Default::default()
    };
    ok(s.group.delete_volume_group_snapshot(delete.clone()).await);
    ok(s.group.delete_volume_group_snapshot(delete).await);
    for id in [&a.volume_id, &b.volume_id] {
        s.delete_volume(id).await;
    }
    s.finish().await;
}
