//! Cinder volume actions, types, quotas and the other Cinder families of the emulator.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::emulator::TestCloud;

async fn action(
    cloud: &TestCloud,
    s: &testkit::emulator::Session,
    id: &str,
    body: serde_json::Value,
    version: &str,
) -> testkit::emulator::Reply {
    cloud.cinder(s, Method::POST, &format!("/volumes/{id}/action"), Some(body), version).await
}

#[tokio::test]
async fn extend_grows_the_volume_and_its_file() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    assert_eq!(action(&cloud, &s, &id, json!({"os-extend": {"new_size": 3}}), "3.0").await.status, 202);
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["size"], 3);
    assert_eq!(
        std::fs::metadata(cloud.dir.path().join("volumes").join(format!("{id}.img"))).unwrap().len(),
        3 << 30
    );
    let smaller = action(&cloud, &s, &id, json!({"os-extend": {"new_size": 2}}), "3.0").await;
    assert_eq!(smaller.status, 400);
}

#[tokio::test]
async fn in_use_extend_needs_3_42() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("other", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud.attach_through_nova(&s, &server, &id).await;
    let old = action(&cloud, &s, &id, json!({"os-extend": {"new_size": 2}}), "3.41").await;
    assert_eq!(old.status, 400);
    let new = action(&cloud, &s, &id, json!({"os-extend": {"new_size": 2}}), "3.42").await;
    assert_eq!(new.status, 202);
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    assert_eq!(v["size"], 2);
}

#[tokio::test]
async fn extend_is_refused_while_extending() {
    let cloud = TestCloud::start_with(|c| {
        c.transition_latency.insert("volume.extending".into(), Duration::from_secs(60));
    })
    .await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    assert_eq!(action(&cloud, &s, &id, json!({"os-extend": {"new_size": 2}}), "3.0").await.status, 202);
    let again = action(&cloud, &s, &id, json!({"os-extend": {"new_size": 3}}), "3.0").await;
    assert_eq!(again.status, 400);
    assert!(again.body["badRequest"]["message"].as_str().unwrap().contains("extending"));
}

#[tokio::test]
async fn retype_changes_the_type_or_keeps_it_when_migration_is_forbidden() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    assert_eq!(
        action(&cloud, &s, &id, json!({"os-retype": {"new_type": "lvmdriver-1"}}), "3.0").await.status,
        202
    );
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["volume_type"], "lvmdriver-1");
    assert_eq!(
        action(
            &cloud,
            &s,
            &id,
            json!({"os-retype": {"new_type": "fast", "migration_policy": "never"}}),
            "3.0"
        )
        .await
        .status,
        202
    );
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["volume_type"], "lvmdriver-1");
    assert_eq!(
        action(
            &cloud,
            &s,
            &id,
            json!({"os-retype": {"new_type": "fast", "migration_policy": "on-demand"}}),
            "3.0"
        )
        .await
        .status,
        202
    );
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["volume_type"], "fast");
    let bad = action(
        &cloud,
        &s,
        &id,
        json!({"os-retype": {"new_type": "fast", "migration_policy": "sometimes"}}),
        "3.0",
    )
    .await;
    assert_eq!(bad.status, 400);
    let unknown = action(&cloud, &s, &id, json!({"os-retype": {"new_type": "gold"}}), "3.0").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn admin_actions_are_forbidden_to_members() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let reply = action(&cloud, &s, &id, json!({"os-reset_status": {"status": "error"}}), "3.0").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body["forbidden"]["code"], 403);
    assert_eq!(action(&cloud, &s, &id, json!({"os-force_detach": {}}), "3.0").await.status, 403);
}

#[tokio::test]
async fn reset_status_and_force_detach_work_for_admins() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let server = cloud.add_server("other", "demo").await;
    let id = cloud.available_volume(&demo, 1).await;
    cloud.attach_through_nova(&demo, &server, &id).await;
    assert_eq!(action(&cloud, &admin, &id, json!({"os-force_detach": {}}), "3.0").await.status, 202);
    let v = cloud.wait_status(&demo, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["attachments"].as_array().unwrap().len(), 0);
    assert_eq!(
        action(&cloud, &admin, &id, json!({"os-reset_status": {"status": "error"}}), "3.0").await.status,
        202
    );
    cloud.wait_status(&demo, &format!("/volumes/{id}"), "volume", "error").await;
    let bad = action(&cloud, &admin, &id, json!({"os-reset_status": {"status": "sleeping"}}), "3.0").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn bootable_and_readonly_flags_are_set() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    assert_eq!(
        action(&cloud, &s, &id, json!({"os-set_bootable": {"bootable": true}}), "3.0").await.status,
        200
    );
    assert_eq!(
        action(&cloud, &s, &id, json!({"os-update_readonly_flag": {"readonly": true}}), "3.0").await.status,
        202
    );
    let v = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(v.body["volume"]["bootable"], "true");
    assert_eq!(v.body["volume"]["metadata"]["readonly"], "True");
    assert_eq!(
        action(&cloud, &s, &id, json!({"os-set_bootable": {"bootable": "maybe"}}), "3.0").await.status,
        400
    );
    assert_eq!(action(&cloud, &s, &id, json!({"os-dance": {}}), "3.0").await.status, 400);
}

#[tokio::test]
async fn quotas_report_usage_and_refuse_excess_with_413() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    cloud.available_volume(&demo, 4).await;
    let q = cloud
        .cinder(&demo, Method::GET, &format!("/os-quota-sets/{}?usage=true", demo.project_id), None, "3.0")
        .await;
    assert_eq!(q.body["quota_set"]["gigabytes"]["in_use"], 4);
    assert_eq!(q.body["quota_set"]["volumes"]["limit"], 10);
    let set = cloud
        .cinder(
            &admin,
            Method::PUT,
            &format!("/os-quota-sets/{}", demo.project_id),
            Some(json!({"quota_set": {"gigabytes": 5}})),
            "3.0",
        )
        .await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    let over =
        cloud.cinder(&demo, Method::POST, "/volumes", Some(json!({"volume": {"size": 2}})), "3.0").await;
    assert_eq!(over.status, 413);
    assert_eq!(over.body["overLimit"]["code"], 413);
    assert!(over.header("retry-after").is_some());
    let member_set = cloud
        .cinder(
            &demo,
            Method::PUT,
            &format!("/os-quota-sets/{}", demo.project_id),
            Some(json!({"quota_set": {"gigabytes": 50}})),
            "3.0",
        )
        .await;
    assert_eq!(member_set.status, 403);
}

#[tokio::test]
async fn volume_types_carry_extra_specs_and_multiattach() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let s = cloud.login("demo").await;
    let types = cloud.cinder(&s, Method::GET, "/types", None, "3.0").await;
    let multi = types.body["volume_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "multiattach")
        .unwrap()
        .clone();
    assert_eq!(multi["extra_specs"]["multiattach"], "<is> True");
    let created = cloud
        .cinder(
            &admin,
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "gold", "extra_specs": {"tier": "1"}}})),
            "3.0",
        )
        .await;
    assert_eq!(created.status, 200);
    let tid = created.body["volume_type"]["id"].as_str().unwrap().to_string();
    let spec = cloud
        .cinder(
            &admin,
            Method::PUT,
            &format!("/types/{tid}/extra_specs/tier"),
            Some(json!({"tier": "2"})),
            "3.0",
        )
        .await;
    assert_eq!(spec.body["tier"], "2");
    let dup = cloud
        .cinder(&admin, Method::POST, "/types", Some(json!({"volume_type": {"name": "gold"}})), "3.0")
        .await;
    assert_eq!(dup.status, 409);
    assert_eq!(dup.body["conflictingRequest"]["code"], 409);
    assert_eq!(
        cloud
            .cinder(&s, Method::POST, "/types", Some(json!({"volume_type": {"name": "x"}})), "3.0")
            .await
            .status,
        403
    );
    let vid = cloud.create_volume(&s, json!({"size": 1, "volume_type": "multiattach"})).await;
    let v = cloud.cinder(&s, Method::GET, &format!("/volumes/{vid}"), None, "3.0").await;
    assert_eq!(v.body["volume"]["multiattach"], true);
}

#[tokio::test]
async fn the_attachments_api_reserves_connects_completes_and_deletes() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("other", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let old = cloud
        .cinder(
            &s,
            Method::POST,
            "/attachments",
            Some(json!({"attachment": {"volume_uuid": id, "instance_uuid": server}})),
            "3.26",
        )
        .await;
    assert_eq!(old.status, 404);
    let created = cloud
        .cinder(
            &s,
            Method::POST,
            "/attachments",
            Some(json!({"attachment": {"volume_uuid": id, "instance_uuid": server}})),
            "3.44",
        )
        .await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    assert_eq!(created.body["attachment"]["status"], "reserved");
    let aid = created.body["attachment"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "reserved").await;
    let updated = cloud
        .cinder(
            &s,
            Method::PUT,
            &format!("/attachments/{aid}"),
            Some(json!({"attachment": {"connector": {"host": "h"}}})),
            "3.44",
        )
        .await;
    assert_eq!(updated.status, 200);
    assert!(updated.body["attachment"]["connection_info"].is_object());
    let done = cloud
        .cinder(
            &s,
            Method::POST,
            &format!("/attachments/{aid}/action"),
            Some(json!({"os-complete": null})),
            "3.44",
        )
        .await;
    assert_eq!(done.status, 204);
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    let gone = cloud.cinder(&s, Method::DELETE, &format!("/attachments/{aid}"), None, "3.44").await;
    assert_eq!(gone.status, 200);
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
}

#[tokio::test]
async fn groups_and_group_snapshots_snapshot_every_member() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let g = cloud.cinder(&s, Method::POST, "/groups", Some(json!({"group": {"name": "g", "group_type": "default_group_type", "volume_types": ["__DEFAULT__"]}})), "3.14").await;
    assert_eq!(g.status, 202, "{:?}", g.body);
    let gid = g.body["group"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/groups/{gid}"), "group", "available").await;
    let a = cloud.available_volume(&s, 1).await;
    let created = cloud
        .cinder(&s, Method::POST, "/volumes", Some(json!({"volume": {"size": 1, "group_id": gid}})), "3.14")
        .await;
    let b = created.body["volume"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/volumes/{b}"), "volume", "available").await;
    let add = cloud
        .cinder(
            &s,
            Method::PUT,
            &format!("/groups/{gid}"),
            Some(json!({"group": {"add_volumes": a}})),
            "3.14",
        )
        .await;
    assert_eq!(add.status, 202);
    let gs = cloud
        .cinder(
            &s,
            Method::POST,
            "/group_snapshots",
            Some(json!({"group_snapshot": {"group_id": gid, "name": "gs"}})),
            "3.14",
        )
        .await;
    assert_eq!(gs.status, 202);
    let gsid = gs.body["group_snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/group_snapshots/{gsid}"), "group_snapshot", "available").await;
    let snaps = cloud
        .cinder(&s, Method::GET, &format!("/snapshots/detail?group_snapshot_id={gsid}"), None, "3.14")
        .await;
    assert_eq!(snaps.body["snapshots"].as_array().unwrap().len(), 2);
    assert_eq!(
        cloud.cinder(&s, Method::DELETE, &format!("/group_snapshots/{gsid}"), None, "3.14").await.status,
        202
    );
    cloud.wait_gone(&s, &format!("/group_snapshots/{gsid}")).await;
}

#[tokio::test]
async fn backups_are_made_and_restored() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud.write_volume(&id, 0, b"kept");
    let b = cloud
        .cinder(&s, Method::POST, "/backups", Some(json!({"backup": {"volume_id": id, "name": "b"}})), "3.0")
        .await;
    assert_eq!(b.status, 202);
    let bid = b.body["backup"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/backups/{bid}"), "backup", "available").await;
    let r = cloud
        .cinder(
            &s,
            Method::POST,
            &format!("/backups/{bid}/restore"),
            Some(json!({"restore": {"name": "restored"}})),
            "3.0",
        )
        .await;
    assert_eq!(r.status, 202);
    let vid = r.body["restore"]["volume_id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/volumes/{vid}"), "volume", "available").await;
    assert_eq!(cloud.read_volume(&vid, 0, 4), b"kept");
}

#[tokio::test]
async fn unmanaged_volumes_can_be_managed_again() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let id = cloud.available_volume(&admin, 2).await;
    assert_eq!(action(&cloud, &admin, &id, json!({"os-unmanage": {}}), "3.0").await.status, 202);
    cloud.wait_gone(&admin, &format!("/volumes/{id}")).await;
    let body = json!({"volume": {"host": "emulator@lvmdriver-1#lvmdriver-1", "ref": {"source-name": format!("volume-{id}")}, "name": "adopted"}});
    let managed = cloud.cinder(&admin, Method::POST, "/os-volume-manage", Some(body), "3.0").await;
    assert_eq!(managed.status, 202, "{:?}", managed.body);
    let nid = managed.body["volume"]["id"].as_str().unwrap().to_string();
    let v = cloud.wait_status(&admin, &format!("/volumes/{nid}"), "volume", "available").await;
    assert_eq!(v["size"], 2);
    let missing = json!({"volume": {"host": "h", "ref": {"source-name": "nothing"}}});
    assert_eq!(
        cloud.cinder(&admin, Method::POST, "/os-volume-manage", Some(missing), "3.0").await.status,
        400
    );
}

#[tokio::test]
async fn availability_zones_are_listed() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let reply = cloud.cinder(&s, Method::GET, "/os-availability-zone", None, "3.0").await;
    assert_eq!(reply.body["availabilityZoneInfo"][0]["zoneName"], "nova");
}

// The three below pin behaviour of real Cinder 29 found by the real-OpenStack tier
// (tests/real-openstack/), which the emulator once answered differently.

#[tokio::test]
async fn the_default_group_type_is_the_configured_one_not_one_called_default() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let default = cloud.cinder(&s, Method::GET, "/group_types/default", None, "3.11").await;
    assert_eq!(default.status, 200, "{:?}", default.body);
    assert_eq!(default.body["group_type"]["name"], "default_group_type");
    let by_id = format!("/group_types/{}", default.body["group_type"]["id"].as_str().unwrap());
    assert_eq!(cloud.cinder(&s, Method::GET, &by_id, None, "3.11").await.body, default.body);
}

#[tokio::test]
async fn a_group_lists_its_volumes_only_when_asked_from_3_25() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let body =
        json!({"group": {"name": "g", "group_type": "default_group_type", "volume_types": ["__DEFAULT__"]}});
    let g = cloud.cinder(&s, Method::POST, "/groups", Some(body), "3.25").await;
    let gid = g.body["group"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/groups/{gid}"), "group", "available").await;
    let volume = cloud
        .cinder(&s, Method::POST, "/volumes", Some(json!({"volume": {"size": 1, "group_id": gid}})), "3.25")
        .await;
    let vid = volume.body["volume"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/volumes/{vid}"), "volume", "available").await;

    let plain = cloud.cinder(&s, Method::GET, &format!("/groups/{gid}"), None, "3.25").await;
    assert!(plain.body["group"].get("volumes").is_none(), "{:?}", plain.body);
    let asked = cloud.cinder(&s, Method::GET, &format!("/groups/{gid}?list_volume=True"), None, "3.25").await;
    assert_eq!(asked.body["group"]["volumes"], json!([vid]));
    let listed = cloud.cinder(&s, Method::GET, "/groups/detail?list_volume=True&name=g", None, "3.50").await;
    assert_eq!(listed.status, 200, "list_volume is no filter: {:?}", listed.body);
    assert_eq!(listed.body["groups"][0]["volumes"], json!([vid]));
    let too_early =
        cloud.cinder(&s, Method::GET, &format!("/groups/{gid}?list_volume=True"), None, "3.24").await;
    assert!(too_early.body["group"].get("volumes").is_none(), "{:?}", too_early.body);
}

#[tokio::test]
async fn only_admins_may_filter_snapshots_by_group_snapshot() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let path = "/snapshots/detail?group_snapshot_id=00000000-0000-0000-0000-000000000000";
    let refused = cloud.cinder(&demo, Method::GET, path, None, "3.50").await;
    assert_eq!(refused.status, 400);
    assert_eq!(
        refused.body["badRequest"]["message"],
        "Invalid filters group_snapshot_id are found in query options."
    );
    let by_volume = cloud.cinder(&demo, Method::GET, "/snapshots/detail?volume_id=x", None, "3.50").await;
    assert_eq!(by_volume.status, 200, "volume_id is a user filter: {:?}", by_volume.body);
    let admin = cloud.login("admin").await;
    assert_eq!(cloud.cinder(&admin, Method::GET, path, None, "3.50").await.status, 200);
}

#[tokio::test]
async fn a_migration_refused_for_a_snapshot_with_metadata_leaves_the_volume_retyping_as_cinder_29_does() {
    let cloud = TestCloud::start_with(|c| c.latency = Duration::from_millis(20)).await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let body = json!({"snapshot": {"volume_id": id, "name": "pin", "metadata": {"owner": "csi"}}});
    let snapshot = cloud.cinder(&s, Method::POST, "/snapshots", Some(body), "3.50").await;
    let snapshot_id = snapshot.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/snapshots/{snapshot_id}"), "snapshot", "available").await;

    let never = json!({"os-retype": {"new_type": "fast", "migration_policy": "never"}});
    assert_eq!(action(&cloud, &s, &id, never, "3.50").await.status, 202);
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["volume_type"], "__DEFAULT__", "`never` is refused cleanly");

    let on_demand = json!({"os-retype": {"new_type": "fast", "migration_policy": "on-demand"}});
    assert_eq!(action(&cloud, &s, &id, on_demand, "3.50").await.status, 202);
    // Many transition latencies later it has still not come back.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.50").await;
    assert_eq!(v.body["volume"]["status"], "retyping");
    assert_eq!(v.body["volume"]["volume_type"], "__DEFAULT__");
}

#[tokio::test]
async fn a_retype_needing_no_migration_strands_a_volume_whose_snapshot_carries_metadata_as_cinder_29_does() {
    let cloud = TestCloud::start_with(|c| c.latency = Duration::from_millis(20)).await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let body = json!({"snapshot": {"volume_id": id, "name": "pin", "metadata": {"owner": "csi"}}});
    let snapshot = cloud.cinder(&s, Method::POST, "/snapshots", Some(body), "3.50").await;
    let snapshot_id = snapshot.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/snapshots/{snapshot_id}"), "snapshot", "available").await;

    // Same backend: Cinder takes its success path, whose save of the volume fails; `never`
    // does not help, as no migration is involved.
    let same_backend = json!({"os-retype": {"new_type": "lvmdriver-1", "migration_policy": "never"}});
    assert_eq!(action(&cloud, &s, &id, same_backend, "3.50").await.status, 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.50").await;
    assert_eq!(v.body["volume"]["status"], "retyping");
    assert_eq!(v.body["volume"]["volume_type"], "__DEFAULT__");
}

#[tokio::test]
async fn a_retype_needing_no_migration_succeeds_when_the_snapshots_carry_no_metadata() {
    let cloud = TestCloud::start_with(|c| c.latency = Duration::from_millis(20)).await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let body = json!({"snapshot": {"volume_id": id, "name": "plain"}});
    let snapshot = cloud.cinder(&s, Method::POST, "/snapshots", Some(body), "3.50").await;
    let snapshot_id = snapshot.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/snapshots/{snapshot_id}"), "snapshot", "available").await;

    let same_backend = json!({"os-retype": {"new_type": "lvmdriver-1", "migration_policy": "never"}});
    assert_eq!(action(&cloud, &s, &id, same_backend, "3.50").await.status, 202);
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(v["volume_type"], "lvmdriver-1");
}

#[tokio::test]
async fn a_failed_backup_carries_a_fail_reason_and_a_user_message_as_cinder_records_them() {
    use cinder_evs_emulator::faults::{TransitionEffect, TransitionRule};
    let cloud = TestCloud::start_with(|c| c.latency = Duration::from_millis(20)).await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud.handle.cloud().faults().add_transition(TransitionRule {
        resource: "backup".into(),
        status: "creating".into(),
        id: None,
        effect: TransitionEffect::Fail,
        count: Some(1),
    });
    let body = json!({"backup": {"volume_id": id, "name": "b"}});
    let backup = cloud.cinder(&s, Method::POST, "/backups", Some(body), "3.50").await;
    let backup_id = backup.body["backup"]["id"].as_str().unwrap().to_string();
    let failed = cloud.wait_status(&s, &format!("/backups/{backup_id}"), "backup", "error").await;
    let reason = failed["fail_reason"].as_str().expect("a fail_reason");
    assert!(reason.starts_with("[Errno 28] No space left on device"), "{reason}");
    assert!(reason.contains("Traceback"), "Cinder stores the traceback with it: {reason}");

    let path = format!("/messages?resource_uuid={backup_id}");
    let messages = cloud.cinder(&s, Method::GET, &path, None, "3.3").await;
    assert_eq!(messages.status, 200, "{:?}", messages.body);
    let list = messages.body["messages"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["user_message"], "create backup:Backup driver failed to create backup.");
    assert_eq!(list[0]["event_id"], "VOLUME_VOLUME_BACKUP_013_020");
    assert_eq!(list[0]["resource_type"], "VOLUME_BACKUP");
    let other = cloud.cinder(&s, Method::GET, &format!("/messages?resource_uuid={id}"), None, "3.3").await;
    assert_eq!(other.body["messages"], json!([]), "nothing about the volume");
    let old = cloud.cinder(&s, Method::GET, "/messages", None, "3.2").await;
    assert_eq!(old.status, 404, "messages need 3.3");
    let admin = cloud.login("admin").await;
    let elsewhere = cloud.cinder(&admin, Method::GET, &path, None, "3.3").await;
    assert_eq!(elsewhere.body["messages"], json!([]), "another project sees none");
}
