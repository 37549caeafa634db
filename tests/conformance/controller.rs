//! Controller: CreateVolume, DeleteVolume, ValidateVolumeCapabilities, ControllerGetVolume,
//! ControllerPublish/Unpublish, ListVolumes, GetCapacity, ControllerExpand and ControllerModify.

use super::*;

// ---------------------------------------------------------------------------------------------
// CreateVolume / DeleteVolume

#[tokio::test]
async fn create_volume_without_name_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    assert_eq!(code(s.controller.create_volume(create_request("", 1)).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_without_capabilities_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest { volume_capabilities: vec![], ..create_request("no-caps", 1) };
    assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_capability_missing_access_type_or_mode_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let no_type = pb::VolumeCapability { access_type: None, ..mount_cap() };
    let no_mode = pb::VolumeCapability { access_mode: None, ..mount_cap() };
    let unknown_mode = pb::VolumeCapability { access_mode: Some(AccessMode { mode: 0 }), ..mount_cap() };
    for capability in [no_type, no_mode, unknown_mode] {
        let request = pb::CreateVolumeRequest {
            volume_capabilities: vec![capability.clone()],
            ..create_request("bad-capability", 1)
        };
        assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument, "{capability:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_unknown_parameters_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        parameters: HashMap::from([("no-such-parameter".to_string(), "x".to_string())]),
        ..create_request("bad-parameters", 1)
    };
    assert_eq!(code(s.controller.create_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_returns_an_id_and_at_least_the_required_capacity() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: 3 * GIB }),
        ..create_request("sized", 1)
    };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    assert!(!volume.volume_id.is_empty());
    assert!((GIB + 1..=3 * GIB).contains(&volume.capacity_bytes), "{volume:?}");
    assert!(!volume.accessible_topology.is_empty(), "topology is advertised, so volumes carry it");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_without_capacity_range_gets_a_default_size() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest { capacity_range: None, ..create_request("default-size", 1) };
    let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
    assert!(volume.capacity_bytes > 0, "{volume:?}");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_range_no_whole_size_fits_is_out_of_range() {
    let mut s = Sandbox::start().await;
    let request = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: GIB + 1, limit_bytes: GIB + 2 }),
        ..create_request("impossible", 1)
    };
    assert_eq!(code(s.controller.create_volume(request).await), Code::OutOfRange);
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_a_maximum_length_name_succeeds() {
    let mut s = Sandbox::start().await;
    // csi-sanity's maximum: 128 characters.
    let name = "n".repeat(128);
    let volume = s.create_volume(&name).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_twice_with_the_same_name_returns_the_same_volume() {
    let mut s = Sandbox::start().await;
    let first = s.create_volume("twice").await;
    let second = s.create_volume("twice").await;
    assert_eq!(first.volume_id, second.volume_id);
    assert_eq!(first.capacity_bytes, second.capacity_bytes);
    assert_eq!(s.volume_ids().await.len(), 1);
    s.delete_volume(&first.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_with_the_same_name_and_an_incompatible_size_is_already_exists() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("conflict").await;
    let bigger = pb::CreateVolumeRequest {
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 2 * GIB }),
        ..create_request("conflict", 1)
    };
    assert_eq!(code(s.controller.create_volume(bigger).await), Code::AlreadyExists);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn create_volume_from_an_unknown_snapshot_or_volume_is_not_found() {
    use pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
    let mut s = Sandbox::start().await;
    for source in [
        Type::Snapshot(SnapshotSource { snapshot_id: UNKNOWN_SNAPSHOT.into() }),
        Type::Volume(VolumeSource { volume_id: UNKNOWN_VOLUME.into() }),
    ] {
        let request = pb::CreateVolumeRequest {
            volume_content_source: Some(pb::VolumeContentSource { r#type: Some(source.clone()) }),
            ..create_request("from-nothing", 1)
        };
        assert_eq!(code(s.controller.create_volume(request).await), Code::NotFound, "{source:?}");
    }
    s.finish().await;
}

#[tokio::test]
async fn create_volume_from_a_snapshot_and_from_a_volume_reports_the_source() {
    use pb::volume_content_source::{SnapshotSource, Type, VolumeSource};
    let mut s = Sandbox::start().await;
    let origin = s.create_volume("origin").await;
    let snapshot = s.create_snapshot("origin-snap", &origin.volume_id).await;
    s.wait_snapshot_ready(&snapshot.snapshot_id).await;
    let mut made = Vec::new();
    for (name, source) in [
        ("restored", Type::Snapshot(SnapshotSource { snapshot_id: snapshot.snapshot_id.clone() })),
        ("cloned", Type::Volume(VolumeSource { volume_id: origin.volume_id.clone() })),
    ] {
        let content = pb::VolumeContentSource { r#type: Some(source) };
        let request = pb::CreateVolumeRequest {
            volume_content_source: Some(content.clone()),
            ..create_request(name, 1)
        };
        let volume = ok(s.controller.create_volume(request).await).volume.unwrap();
        assert_eq!(volume.content_source, Some(content), "{name}");
        made.push(volume.volume_id);
    }
    for id in made {
        s.delete_volume(&id).await;
    }
    s.delete_snapshot(&snapshot.snapshot_id).await;
    s.delete_volume(&origin.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_without_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::DeleteVolumeRequest::default();
    assert_eq!(code(s.controller.delete_volume(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_of_an_unknown_id_succeeds() {
    let mut s = Sandbox::start().await;
    s.delete_volume(UNKNOWN_VOLUME).await;
    s.delete_volume("not-even-a-uuid").await;
    s.finish().await;
}

#[tokio::test]
async fn delete_volume_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("delete-twice").await;
    s.delete_volume(&volume.volume_id).await;
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ValidateVolumeCapabilities / ControllerGetVolume

#[tokio::test]
async fn validate_volume_capabilities_without_id_or_capabilities_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("validate").await;
    let no_id = pb::ValidateVolumeCapabilitiesRequest {
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    };
    assert_eq!(code(s.controller.validate_volume_capabilities(no_id).await), Code::InvalidArgument);
    let no_caps =
        pb::ValidateVolumeCapabilitiesRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.validate_volume_capabilities(no_caps).await), Code::InvalidArgument);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn validate_volume_capabilities_of_an_unknown_volume_is_not_found() {
    let mut s = Sandbox::start().await;
    let request = pb::ValidateVolumeCapabilitiesRequest {
        volume_id: UNKNOWN_VOLUME.into(),
        volume_capabilities: vec![mount_cap()],
        ..Default::default()
    };
    assert_eq!(code(s.controller.validate_volume_capabilities(request).await), Code::NotFound);
    s.finish().await;
}

#[tokio::test]
async fn validate_volume_capabilities_confirms_supported_and_refuses_unsupported_ones() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("validate-ok").await;
    let request = |capability| pb::ValidateVolumeCapabilitiesRequest {
        volume_id: volume.volume_id.clone(),
        volume_capabilities: vec![capability],
        ..Default::default()
    };
    let confirmed = ok(s.controller.validate_volume_capabilities(request(mount_cap())).await);
    assert_eq!(confirmed.confirmed.unwrap().volume_capabilities, vec![mount_cap()]);
    let multi = pb::VolumeCapability {
        access_mode: Some(AccessMode { mode: Mode::MultiNodeMultiWriter as i32 }),
        ..mount_cap()
    };
    let refused = ok(s.controller.validate_volume_capabilities(request(multi)).await);
    assert!(refused.confirmed.is_none());
    assert!(!refused.message.is_empty(), "an unconfirmed answer says why");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_get_volume_without_id_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let get = |id: &str| pb::ControllerGetVolumeRequest { volume_id: id.into() };
    assert_eq!(code(s.controller.controller_get_volume(get("")).await), Code::InvalidArgument);
    assert_eq!(code(s.controller.controller_get_volume(get(UNKNOWN_VOLUME)).await), Code::NotFound);
    let volume = s.create_volume("get").await;
    let got = ok(s.controller.controller_get_volume(get(&volume.volume_id)).await);
    assert_eq!(got.volume.unwrap().volume_id, volume.volume_id);
    assert!(got.status.unwrap().volume_condition.is_some(), "VOLUME_CONDITION is advertised");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ControllerPublishVolume / ControllerUnpublishVolume

#[tokio::test]
async fn controller_publish_without_volume_node_or_capability_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-args").await;
    let node = s.node_id.clone();
    let requests = [
        publish_request("", &node),
        publish_request(&volume.volume_id, ""),
        pb::ControllerPublishVolumeRequest {
            volume_capability: None,
            ..publish_request(&volume.volume_id, &node)
        },
    ];
    for request in requests {
        assert_eq!(
            code(s.controller.controller_publish_volume(request.clone()).await),
            Code::InvalidArgument,
            "{request:?}"
        );
    }
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_of_an_unknown_volume_or_node_is_not_found() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    let unknown_volume = publish_request(UNKNOWN_VOLUME, &node);
    assert_eq!(code(s.controller.controller_publish_volume(unknown_volume).await), Code::NotFound);
    let volume = s.create_volume("publish-nowhere").await;
    let unknown_node = publish_request(&volume.volume_id, "00000000-0000-4000-8000-0000000000aa");
    assert_eq!(code(s.controller.controller_publish_volume(unknown_node).await), Code::NotFound);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_twice_returns_the_same_context_and_unpublish_twice_succeeds() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-twice").await;
    let node = s.node_id.clone();
    let first = ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    let second = ok(s.controller.controller_publish_volume(publish_request(&volume.volume_id, &node)).await);
    assert_eq!(first.publish_context, second.publish_context);
    let get = pb::ControllerGetVolumeRequest { volume_id: volume.volume_id.clone() };
    let published =
        ok(s.controller.controller_get_volume(get.clone()).await).status.unwrap().published_node_ids;
    assert_eq!(published, vec![node.clone()]);
    // Deleting a published volume is refused.
    let delete = pb::DeleteVolumeRequest { volume_id: volume.volume_id.clone(), ..Default::default() };
    assert_eq!(code(s.controller.delete_volume(delete).await), Code::FailedPrecondition);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    let published = ok(s.controller.controller_get_volume(get).await).status.unwrap().published_node_ids;
    assert!(published.is_empty(), "{published:?}");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_readonly_is_honoured_in_the_publish_context() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("publish-ro").await;
    let node = s.node_id.clone();
    let request =
        pb::ControllerPublishVolumeRequest { readonly: true, ..publish_request(&volume.volume_id, &node) };
    let context = ok(s.controller.controller_publish_volume(request).await).publish_context;
    assert_eq!(context.get("readonly").map(String::as_str), Some("true"), "{context:?}");
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_unpublish_without_volume_id_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    assert_eq!(
        code(s.controller.controller_unpublish_volume(unpublish_request("", &node)).await),
        Code::InvalidArgument
    );
    s.finish().await;
}

#[tokio::test]
async fn controller_unpublish_of_an_unknown_volume_succeeds() {
    let mut s = Sandbox::start().await;
    let node = s.node_id.clone();
    ok(s.controller.controller_unpublish_volume(unpublish_request(UNKNOWN_VOLUME, &node)).await);
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// ListVolumes

#[tokio::test]
async fn list_volumes_with_negative_max_entries_is_invalid_argument() {
    let mut s = Sandbox::start().await;
    let request = pb::ListVolumesRequest { max_entries: -1, ..Default::default() };
    assert_eq!(code(s.controller.list_volumes(request).await), Code::InvalidArgument);
    s.finish().await;
}

#[tokio::test]
async fn list_volumes_with_an_invalid_starting_token_is_aborted() {
    let mut s = Sandbox::start().await;
    for token in ["not a token!", UNKNOWN_VOLUME] {
        let request = pb::ListVolumesRequest { starting_token: token.into(), ..Default::default() };
        assert_eq!(code(s.controller.list_volumes(request).await), Code::Aborted, "{token}");
    }
    s.finish().await;
}

#[tokio::test]
async fn list_volumes_pages_honour_max_entries_and_cover_every_volume_once() {
    let mut s = Sandbox::start().await;
    let mut made = HashSet::new();
    for i in 0..5 {
        made.insert(s.create_volume(&format!("page-{i}")).await.volume_id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let request = pb::ListVolumesRequest { max_entries: 2, starting_token: token.clone() };
        let page = ok(s.controller.list_volumes(request).await);
        assert!(page.entries.len() <= 2, "max_entries 2, got {}", page.entries.len());
        for entry in page.entries {
            let status = entry.status.expect("LIST_VOLUMES_PUBLISHED_NODES is advertised");
            assert!(status.volume_condition.is_some(), "VOLUME_CONDITION is advertised");
            seen.push(entry.volume.unwrap().volume_id);
        }
        pages += 1;
        assert!(pages <= 10, "pagination does not end");
        if page.next_token.is_empty() {
            break;
        }
        token = page.next_token;
    }
    assert_eq!(seen.len(), made.len(), "each volume exactly once: {seen:?}");
    assert_eq!(seen.iter().cloned().collect::<HashSet<_>>(), made);
    assert!(pages >= 3, "5 volumes in pages of 2 take 3 pages, took {pages}");
    for id in &made {
        s.delete_volume(id).await;
    }
    s.finish().await;
}

// ---------------------------------------------------------------------------------------------
// GetCapacity / ControllerExpandVolume / ControllerModifyVolume

#[tokio::test]
async fn get_capacity_reports_a_non_negative_capacity() {
    let mut s = Sandbox::start().await;
    let capacity = ok(s.controller.get_capacity(pb::GetCapacityRequest::default()).await);
    assert!(capacity.available_capacity >= 0, "{capacity:?}");
    s.finish().await;
}

#[tokio::test]
async fn controller_expand_without_id_or_capacity_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let range = Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 });
    let requests = [
        (
            pb::ControllerExpandVolumeRequest { capacity_range: range, ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerExpandVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerExpandVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                capacity_range: range,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(
            code(s.controller.controller_expand_volume(request.clone()).await),
            expected,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn controller_expand_twice_grows_once_and_reports_the_new_capacity() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("expand").await;
    let request = pb::ControllerExpandVolumeRequest {
        volume_id: volume.volume_id.clone(),
        capacity_range: Some(pb::CapacityRange { required_bytes: 2 * GIB, limit_bytes: 0 }),
        volume_capability: Some(mount_cap()),
        ..Default::default()
    };
    let first = ok(s.controller.controller_expand_volume(request.clone()).await);
    let second = ok(s.controller.controller_expand_volume(request).await);
    assert_eq!(first.capacity_bytes, 2 * GIB);
    assert_eq!(second.capacity_bytes, 2 * GIB);
    assert!(first.node_expansion_required, "a filesystem volume needs NodeExpandVolume");
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}

#[tokio::test]
async fn controller_modify_without_id_or_with_bad_parameters_is_invalid_argument_and_unknown_is_not_found() {
    let mut s = Sandbox::start().await;
    let parameters = HashMap::from([("type".to_string(), "fast".to_string())]);
    let requests = [
        (
            pb::ControllerModifyVolumeRequest {
                mutable_parameters: parameters.clone(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            // No parameters is a valid no-op, but of a volume that does not exist.
            pb::ControllerModifyVolumeRequest { volume_id: UNKNOWN_VOLUME.into(), ..Default::default() },
            Code::NotFound,
        ),
        (
            pb::ControllerModifyVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                mutable_parameters: HashMap::from([("colour".to_string(), "red".to_string())]),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::ControllerModifyVolumeRequest {
                volume_id: UNKNOWN_VOLUME.into(),
                mutable_parameters: parameters,
                ..Default::default()
            },
            Code::NotFound,
        ),
    ];
    for (request, expected) in requests {
        assert_eq!(
            code(s.controller.controller_modify_volume(request.clone()).await),
            expected,
            "{request:?}"
        );
    }
    s.finish().await;
}

#[tokio::test]
async fn controller_publish_to_the_same_node_with_another_capability_or_readonly_flag_is_already_exists() {
    let mut s = Sandbox::start().await;
    let volume = s.create_volume("published-twice-differently").await;
    let node = s.node_id.clone();
    let first = publish_request(&volume.volume_id, &node);
    let context = ok(s.controller.controller_publish_volume(first.clone()).await).publish_context;
    let readonly = pb::ControllerPublishVolumeRequest { readonly: true, ..first.clone() };
    assert_eq!(code(s.controller.controller_publish_volume(readonly.clone()).await), Code::AlreadyExists);
    let block = pb::ControllerPublishVolumeRequest { volume_capability: Some(block_cap()), ..first.clone() };
    assert_eq!(code(s.controller.controller_publish_volume(block).await), Code::AlreadyExists);
    assert_eq!(
        ok(s.controller.controller_publish_volume(first).await).publish_context,
        context,
        "the same publish again is still idempotent"
    );
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    let again = ok(s.controller.controller_publish_volume(readonly).await).publish_context;
    assert_eq!(
        again.get("readonly").map(String::as_str),
        Some("true"),
        "after an unpublish any capability goes"
    );
    ok(s.controller.controller_unpublish_volume(unpublish_request(&volume.volume_id, &node)).await);
    s.delete_volume(&volume.volume_id).await;
    s.finish().await;
}
