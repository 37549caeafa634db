//! Wire compatibility with the published CSI v1.12.0 schema: bytes assembled by hand from the
//! spec's field numbers must decode into the right fields (and our encoding must match them).
//! A mismatch here would break every real sidecar.

use cinder_evs_csi::csi::pb;
use prost::Message;

const VARINT: u8 = 0;
const LEN: u8 = 2;

/// One protobuf field: the key byte(s) for `number`/`wire`, then the payload.
fn field(number: u32, wire: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = varint(u64::from((number << 3) | u32::from(wire)));
    if wire == LEN {
        out.extend(varint(payload.len() as u64));
    }
    out.extend_from_slice(payload);
    out
}

fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn string(number: u32, s: &str) -> Vec<u8> {
    field(number, LEN, s.as_bytes())
}

fn map_entry(number: u32, key: &str, value: &str) -> Vec<u8> {
    field(number, LEN, &[string(1, key), string(2, value)].concat())
}

#[test]
fn varint_helper_matches_the_protobuf_encoding_documentation() {
    assert_eq!(varint(150), vec![0x96, 0x01]);
    assert_eq!(field(1, VARINT, &varint(150)), vec![0x08, 0x96, 0x01]);
    assert_eq!(string(2, "testing"), vec![0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']);
}

#[test]
fn create_volume_request_decodes_from_spec_field_numbers() {
    // CreateVolumeRequest: name=1, capacity_range=2, volume_capabilities=3, parameters=4,
    // secrets=5, volume_content_source=6, accessibility_requirements=7, mutable_parameters=8.
    let capacity = field(1, VARINT, &varint(10 << 30)); // CapacityRange.required_bytes = 1
    let mount = string(1, "xfs"); // MountVolume.fs_type = 1
    let access_mode = field(1, VARINT, &varint(7)); // AccessMode.mode = 1; SINGLE_NODE_MULTI_WRITER = 7
    let capability = [field(2, LEN, &mount), field(3, LEN, &access_mode)].concat(); // mount = 2, access_mode = 3
    let snapshot_source = field(1, LEN, &string(1, "snap-1")); // VolumeContentSource.snapshot = 1 { snapshot_id = 1 }
    let topology = field(
        1,
        LEN,
        &field(1, LEN, &[string(1, "topology.kubernetes.io/zone"), string(2, "nova")].concat()),
    ); // requisite = 1, Topology.segments = 1
    let bytes = [
        string(1, "pvc-0001"),
        field(2, LEN, &capacity),
        field(3, LEN, &capability),
        map_entry(4, "type", "ssd"),
        map_entry(5, "password", "s3cret"),
        field(6, LEN, &snapshot_source),
        field(7, LEN, &topology),
        map_entry(8, "iops", "3000"),
    ]
    .concat();

    let request = pb::CreateVolumeRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(request.name, "pvc-0001");
    assert_eq!(request.capacity_range.unwrap().required_bytes, 10 << 30);
    let capability = &request.volume_capabilities[0];
    match &capability.access_type {
        Some(pb::volume_capability::AccessType::Mount(m)) => assert_eq!(m.fs_type, "xfs"),
        other => panic!("expected mount access type, got {other:?}"),
    }
    assert_eq!(
        capability.access_mode.unwrap().mode,
        pb::volume_capability::access_mode::Mode::SingleNodeMultiWriter as i32
    );
    assert_eq!(request.parameters["type"], "ssd");
    assert_eq!(request.secrets["password"], "s3cret");
    match request.volume_content_source.unwrap().r#type {
        Some(pb::volume_content_source::Type::Snapshot(s)) => assert_eq!(s.snapshot_id, "snap-1"),
        other => panic!("expected snapshot source, got {other:?}"),
    }
    let requisite = &request.accessibility_requirements.unwrap().requisite[0];
    assert_eq!(requisite.segments["topology.kubernetes.io/zone"], "nova");
    assert_eq!(request.mutable_parameters["iops"], "3000");
}

#[test]
fn node_publish_volume_request_decodes_from_spec_field_numbers() {
    // NodePublishVolumeRequest: volume_id=1, publish_context=2, staging_target_path=3,
    // target_path=4, volume_capability=5, readonly=6, secrets=7, volume_context=8.
    let block = field(1, LEN, &[]); // VolumeCapability.block = 1
    let bytes = [
        string(1, "vol-1"),
        map_entry(2, "devicePath", "/dev/vdb"),
        string(3, "/staging"),
        string(4, "/target"),
        field(5, LEN, &block),
        field(6, VARINT, &varint(1)),
        map_entry(7, "token", "t"),
        map_entry(8, "fsType", "ext4"),
    ]
    .concat();
    let request = pb::NodePublishVolumeRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(request.volume_id, "vol-1");
    assert_eq!(request.publish_context["devicePath"], "/dev/vdb");
    assert_eq!(request.staging_target_path, "/staging");
    assert_eq!(request.target_path, "/target");
    assert!(matches!(
        request.volume_capability.unwrap().access_type,
        Some(pb::volume_capability::AccessType::Block(_))
    ));
    assert!(request.readonly);
    assert_eq!(request.secrets["token"], "t");
    assert_eq!(request.volume_context["fsType"], "ext4");
}

#[test]
fn node_stage_volume_request_decodes_from_spec_field_numbers() {
    // NodeStageVolumeRequest: volume_id=1, publish_context=2, staging_target_path=3,
    // volume_capability=4, secrets=5, volume_context=6.
    let bytes = [
        string(1, "vol-2"),
        map_entry(2, "volumeId", "vol-2"),
        string(3, "/staging/vol-2"),
        field(4, LEN, &field(3, LEN, &field(1, VARINT, &varint(1)))),
        map_entry(5, "secret", "x"),
        map_entry(6, "growFs", "true"),
    ]
    .concat();
    let request = pb::NodeStageVolumeRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(request.volume_id, "vol-2");
    assert_eq!(request.publish_context["volumeId"], "vol-2");
    assert_eq!(request.staging_target_path, "/staging/vol-2");
    assert_eq!(
        request.volume_capability.unwrap().access_mode.unwrap().mode,
        pb::volume_capability::access_mode::Mode::SingleNodeWriter as i32
    );
    assert_eq!(request.secrets["secret"], "x");
    assert_eq!(request.volume_context["growFs"], "true");
}

#[test]
fn controller_modify_volume_request_decodes_from_spec_field_numbers() {
    // ControllerModifyVolumeRequest: volume_id=1, secrets=2, mutable_parameters=3.
    let bytes = [string(1, "vol-3"), map_entry(2, "k", "v"), map_entry(3, "type", "gold")].concat();
    let request = pb::ControllerModifyVolumeRequest::decode(bytes.as_slice()).unwrap();
    assert_eq!(request.volume_id, "vol-3");
    assert_eq!(request.secrets["k"], "v");
    assert_eq!(request.mutable_parameters["type"], "gold");
}

#[test]
fn responses_encode_to_the_bytes_the_spec_prescribes() {
    // GetPluginInfoResponse: name=1, vendor_version=2, manifest=3.
    let info = pb::GetPluginInfoResponse {
        name: "csi.example.io".into(),
        vendor_version: "1.2.3".into(),
        manifest: [("commit".to_string(), "abc".to_string())].into(),
    };
    let expected = [string(1, "csi.example.io"), string(2, "1.2.3"), map_entry(3, "commit", "abc")].concat();
    assert_eq!(info.encode_to_vec(), expected);

    // ProbeResponse.ready = 1 is a google.protobuf.BoolValue { value = 1 }.
    let probe = pb::ProbeResponse { ready: Some(true) };
    assert_eq!(probe.encode_to_vec(), field(1, LEN, &field(1, VARINT, &[1])));

    // Snapshot: size_bytes=1, snapshot_id=2, source_volume_id=3, creation_time=4,
    // ready_to_use=5, group_snapshot_id=6; inside CreateSnapshotResponse.snapshot = 1.
    let snapshot = pb::Snapshot {
        size_bytes: 1 << 30,
        snapshot_id: "snap-9".into(),
        source_volume_id: "vol-9".into(),
        creation_time: Some(prost_types::Timestamp { seconds: 1_700_000_000, nanos: 0 }),
        ready_to_use: true,
        group_snapshot_id: "group-1".into(),
    };
    let expected_snapshot = [
        field(1, VARINT, &varint(1 << 30)),
        string(2, "snap-9"),
        string(3, "vol-9"),
        field(4, LEN, &field(1, VARINT, &varint(1_700_000_000))),
        field(5, VARINT, &[1]),
        string(6, "group-1"),
    ]
    .concat();
    let response = pb::CreateSnapshotResponse { snapshot: Some(snapshot) };
    assert_eq!(response.encode_to_vec(), field(1, LEN, &expected_snapshot));
}

#[test]
fn plugin_capability_enums_have_the_spec_values() {
    use pb::plugin_capability::service::Type;
    assert_eq!(Type::ControllerService as i32, 1);
    assert_eq!(Type::VolumeAccessibilityConstraints as i32, 2);
    assert_eq!(Type::GroupControllerService as i32, 3);
    assert_eq!(Type::SnapshotMetadataService as i32, 4);
    use pb::volume_capability::access_mode::Mode;
    assert_eq!(Mode::MultiNodeMultiWriter as i32, 5);
    assert_eq!(Mode::SingleNodeSingleWriter as i32, 6);
    assert_eq!(Mode::SingleNodeMultiWriter as i32, 7);
}

#[test]
fn generated_debug_of_requests_redacts_secrets() {
    let request = pb::CreateVolumeRequest {
        name: "pvc-1".into(),
        secrets: [("password".to_string(), "hunter2".to_string())].into(),
        parameters: [("type".to_string(), "ssd".to_string()), ("accessKey".to_string(), "k-123".to_string())]
            .into(),
        ..Default::default()
    };
    let shown = format!("{request:?}");
    assert!(shown.contains("pvc-1") && shown.contains("ssd"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("k-123"), "secret-looking parameter keys are redacted: {shown}");
}
