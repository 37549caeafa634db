//! Cinder v3 volumes, snapshots and version discovery of the emulator, over HTTP.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::emulator::TestCloud;

#[tokio::test]
async fn version_discovery_reports_the_microversion_range() {
    let cloud = TestCloud::start().await;
    let root = cloud.send(Method::GET, &cloud.url("/volume/"), None, None, &[]).await;
    assert_eq!(root.status, 300);
    let v3 = cloud.send(Method::GET, &cloud.url("/volume/v3/"), None, None, &[]).await;
    assert_eq!(v3.status, 200);
    assert_eq!(v3.body["versions"][0]["min_version"], "3.0");
    assert_eq!(v3.body["versions"][0]["version"], "3.70");
}

#[tokio::test]
async fn the_microversion_is_echoed_and_refused_outside_the_range() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let reply = cloud.cinder(&s, Method::GET, "/volumes", None, "3.42").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("openstack-api-version").as_deref(), Some("volume 3.42"));
    let reply = cloud.cinder(&s, Method::GET, "/volumes", None, "3.99").await;
    assert_eq!(reply.status, 406);
    assert_eq!(reply.body["notAcceptable"]["code"], 406);
}

#[tokio::test]
async fn a_volume_goes_from_creating_to_available_after_the_latency() {
    let cloud = TestCloud::start_with(|c| c.latency = Duration::from_millis(300)).await;
    let s = cloud.login("demo").await;
    let reply = cloud
        .cinder(&s, Method::POST, "/volumes", Some(json!({"volume": {"size": 2, "name": "v1"}})), "3.0")
        .await;
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body["volume"]["status"], "creating");
    let id = reply.body["volume"]["id"].as_str().unwrap().to_string();
    let volume = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(volume["size"], 2);
    assert_eq!(volume["name"], "v1");
    assert_eq!(volume["volume_type"], "__DEFAULT__");
    assert_eq!(volume["availability_zone"], "nova");
    let file = cloud.dir.path().join("volumes").join(format!("{id}.img"));
    assert_eq!(std::fs::metadata(file).unwrap().len(), 2 << 30);
}

#[tokio::test]
async fn a_volume_of_an_unknown_type_or_zone_is_refused() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let reply = cloud
        .cinder(
            &s,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "volume_type": "gold"}})),
            "3.0",
        )
        .await;
    assert_eq!(reply.status, 404);
    assert!(reply.body["itemNotFound"]["message"].as_str().unwrap().contains("gold"));
    let reply = cloud
        .cinder(
            &s,
            Method::POST,
            "/volumes",
            Some(json!({"volume": {"size": 1, "availability_zone": "mars"}})),
            "3.0",
        )
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["badRequest"]["code"], 400);
    let reply =
        cloud.cinder(&s, Method::POST, "/volumes", Some(json!({"volume": {"size": "big"}})), "3.0").await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn an_unknown_volume_is_item_not_found() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let reply =
        cloud.cinder(&s, Method::GET, "/volumes/00000000-0000-0000-0000-000000000000", None, "3.0").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["itemNotFound"]["code"], 404);
}

#[tokio::test]
async fn projects_never_see_each_others_volumes() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let id = cloud.create_volume(&demo, json!({"size": 1})).await;
    let listed = cloud.cinder(&admin, Method::GET, "/volumes/detail", None, "3.0").await;
    assert!(listed.body["volumes"].as_array().unwrap().iter().all(|v| v["id"] != id.as_str()));
    let other = TestCloud::start_with(|c| {
        c.users.push(cinder_evs_emulator::UserConfig {
            name: "alt".into(),
            password: "alt-secret".into(),
            project: "alt".into(),
            domain: "Default".into(),
            roles: vec!["member".into()],
            app_credential: None,
        })
    })
    .await;
    let alt = other.login("alt").await;
    let demo2 = other.login("demo").await;
    let vid = other.create_volume(&demo2, json!({"size": 1})).await;
    let reply = other.cinder(&alt, Method::GET, &format!("/volumes/{vid}"), None, "3.0").await;
    assert_eq!(reply.status, 404);
    // Using another project's id in the URL is a malformed request.
    let url = format!("{}/volumes", demo2.volume);
    let reply = other.send(Method::GET, &url, Some(&alt.token), None, &[]).await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn lists_filter_by_name_status_and_metadata() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let a = cloud.create_volume(&s, json!({"size": 1, "name": "alpha", "metadata": {"team": "x"}})).await;
    let _b = cloud.create_volume(&s, json!({"size": 1, "name": "beta", "metadata": {"team": "y"}})).await;
    let by_name = cloud.cinder(&s, Method::GET, "/volumes?name=alpha", None, "3.0").await;
    assert_eq!(by_name.body["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(by_name.body["volumes"][0]["id"], a.as_str());
    let meta = cloud
        .cinder(&s, Method::GET, "/volumes/detail?metadata=%7B%22team%22%3A%22x%22%7D", None, "3.0")
        .await;
    assert_eq!(meta.body["volumes"].as_array().unwrap().len(), 1);
    assert_eq!(meta.body["volumes"][0]["name"], "alpha");
    cloud.wait_status(&s, &format!("/volumes/{a}"), "volume", "available").await;
    let status = cloud.cinder(&s, Method::GET, "/volumes/detail?status=available", None, "3.0").await;
    assert!(status.body["volumes"].as_array().unwrap().iter().all(|v| v["status"] == "available"));
    let bad = cloud.cinder(&s, Method::GET, "/volumes?colour=red", None, "3.31").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn lists_page_with_limit_marker_and_sort() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    for name in ["c", "a", "b"] {
        cloud.create_volume(&s, json!({"size": 1, "name": name})).await;
    }
    let first = cloud.cinder(&s, Method::GET, "/volumes/detail?limit=2&sort=name:asc", None, "3.0").await;
    let names: Vec<&str> =
        first.body["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a", "b"]);
    let next = first.body["volumes_links"][0]["href"].as_str().unwrap().to_string();
    assert!(next.contains("marker="), "{next}");
    let second = cloud.send(Method::GET, &next, Some(&s.token), None, &[]).await;
    let names: Vec<&str> =
        second.body["volumes"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["c"]);
    let counted = cloud.cinder(&s, Method::GET, "/volumes?with_count=true&limit=1", None, "3.45").await;
    assert_eq!(counted.body["count"], 3);
    let bad_marker = cloud.cinder(&s, Method::GET, "/volumes?marker=nope", None, "3.0").await;
    assert_eq!(bad_marker.status, 404);
    let bad_limit = cloud.cinder(&s, Method::GET, "/volumes?limit=-1", None, "3.0").await;
    assert_eq!(bad_limit.status, 400);
}

#[tokio::test]
async fn update_and_metadata_change_the_volume() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.create_volume(&s, json!({"size": 1})).await;
    let reply = cloud
        .cinder(
            &s,
            Method::PUT,
            &format!("/volumes/{id}"),
            Some(json!({"volume": {"name": "renamed"}})),
            "3.0",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["volume"]["name"], "renamed");
    let path = format!("/volumes/{id}/metadata");
    let reply = cloud.cinder(&s, Method::POST, &path, Some(json!({"metadata": {"k": "v"}})), "3.0").await;
    assert_eq!(reply.body["metadata"]["k"], "v");
    let item = cloud.cinder(&s, Method::GET, &format!("{path}/k"), None, "3.0").await;
    assert_eq!(item.body["meta"]["k"], "v");
    let mismatch = cloud
        .cinder(&s, Method::PUT, &format!("{path}/k"), Some(json!({"meta": {"other": "v"}})), "3.0")
        .await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(cloud.cinder(&s, Method::DELETE, &format!("{path}/k"), None, "3.0").await.status, 200);
    assert_eq!(cloud.cinder(&s, Method::GET, &format!("{path}/k"), None, "3.0").await.status, 404);
}

#[tokio::test]
async fn a_volume_is_deleted_through_deleting() {
    let cloud = TestCloud::start_with(|c| {
        c.transition_latency.insert("volume.deleting".into(), Duration::from_millis(200));
    })
    .await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let reply = cloud.cinder(&s, Method::DELETE, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(reply.status, 202);
    let now = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(now.body["volume"]["status"], "deleting");
    cloud.wait_gone(&s, &format!("/volumes/{id}")).await;
    assert!(!cloud.dir.path().join("volumes").join(format!("{id}.img")).exists());
}

#[tokio::test]
async fn a_volume_with_snapshots_cannot_be_deleted_without_cascade() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let snap = cloud
        .cinder(&s, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": id}})), "3.0")
        .await;
    assert_eq!(snap.status, 202);
    let sid = snap.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/snapshots/{sid}"), "snapshot", "available").await;
    let reply = cloud.cinder(&s, Method::DELETE, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(reply.status, 400);
    assert!(reply.body["badRequest"]["message"].as_str().unwrap().contains("snapshots"));
    let reply = cloud.cinder(&s, Method::DELETE, &format!("/volumes/{id}?cascade=true"), None, "3.0").await;
    assert_eq!(reply.status, 202);
    cloud.wait_gone(&s, &format!("/snapshots/{sid}")).await;
    cloud.wait_gone(&s, &format!("/volumes/{id}")).await;
}

#[tokio::test]
async fn snapshots_and_clones_copy_the_data() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud.write_volume(&id, 4096, b"payload");
    let snap = cloud
        .cinder(
            &s,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": id, "name": "s1"}})),
            "3.0",
        )
        .await;
    let sid = snap.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&s, &format!("/snapshots/{sid}"), "snapshot", "available").await;
    let from_snap = cloud.create_volume(&s, json!({"snapshot_id": sid, "size": 2})).await;
    let clone = cloud.create_volume(&s, json!({"source_volid": id})).await;
    for vid in [&from_snap, &clone] {
        let v = cloud.wait_status(&s, &format!("/volumes/{vid}"), "volume", "available").await;
        assert_eq!(cloud.read_volume(vid, 4096, 7), b"payload");
        assert!(v["snapshot_id"] == sid.as_str() || v["source_volid"] == id.as_str());
    }
    let small = cloud
        .cinder(&s, Method::POST, "/volumes", Some(json!({"volume": {"snapshot_id": sid, "size": 0}})), "3.0")
        .await;
    assert_eq!(small.status, 400);
}

#[tokio::test]
async fn snapshots_of_in_use_volumes_need_force_before_3_66() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("other", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let attach = cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": id}})),
            "2.60",
        )
        .await;
    assert_eq!(attach.status, 200);
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    let body = json!({"snapshot": {"volume_id": id}});
    assert_eq!(cloud.cinder(&s, Method::POST, "/snapshots", Some(body.clone()), "3.0").await.status, 400);
    let forced = json!({"snapshot": {"volume_id": id, "force": true}});
    assert_eq!(cloud.cinder(&s, Method::POST, "/snapshots", Some(forced), "3.0").await.status, 202);
    assert_eq!(cloud.cinder(&s, Method::POST, "/snapshots", Some(body), "3.66").await.status, 202);
}

#[tokio::test]
async fn snapshots_list_page_update_and_delete() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let mut ids = Vec::new();
    for name in ["s1", "s2"] {
        let r = cloud
            .cinder(
                &s,
                Method::POST,
                "/snapshots",
                Some(json!({"snapshot": {"volume_id": id, "name": name, "metadata": {"n": name}}})),
                "3.0",
            )
            .await;
        ids.push(r.body["snapshot"]["id"].as_str().unwrap().to_string());
    }
    let page = cloud.cinder(&s, Method::GET, "/snapshots/detail?limit=1", None, "3.0").await;
    assert_eq!(page.body["snapshots"].as_array().unwrap().len(), 1);
    assert!(page.body["snapshots_links"].is_array());
    let filtered =
        cloud.cinder(&s, Method::GET, &format!("/snapshots?volume_id={id}&name=s2"), None, "3.0").await;
    assert_eq!(filtered.body["snapshots"].as_array().unwrap().len(), 1);
    let renamed = cloud
        .cinder(
            &s,
            Method::PUT,
            &format!("/snapshots/{}", ids[0]),
            Some(json!({"snapshot": {"name": "first"}})),
            "3.0",
        )
        .await;
    assert_eq!(renamed.body["snapshot"]["name"], "first");
    let meta = cloud.cinder(&s, Method::GET, &format!("/snapshots/{}/metadata", ids[1]), None, "3.0").await;
    assert_eq!(meta.body["metadata"]["n"], "s2");
    cloud.wait_status(&s, &format!("/snapshots/{}", ids[0]), "snapshot", "available").await;
    assert_eq!(
        cloud.cinder(&s, Method::DELETE, &format!("/snapshots/{}", ids[0]), None, "3.0").await.status,
        202
    );
    cloud.wait_gone(&s, &format!("/snapshots/{}", ids[0])).await;
}

#[tokio::test]
async fn a_creating_snapshot_cannot_be_deleted() {
    let cloud = TestCloud::start_with(|c| {
        c.transition_latency.insert("snapshot.creating".into(), Duration::from_secs(60));
    })
    .await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let r = cloud
        .cinder(&s, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": id}})), "3.0")
        .await;
    let sid = r.body["snapshot"]["id"].as_str().unwrap();
    let reply = cloud.cinder(&s, Method::DELETE, &format!("/snapshots/{sid}"), None, "3.0").await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn snapshot_metadata_is_merged_replaced_and_edited_item_by_item() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let volume = cloud.available_volume(&s, 1).await;
    let body = json!({"snapshot": {"volume_id": volume, "name": "s", "metadata": {"a": "1"}}});
    let created = cloud.cinder(&s, Method::POST, "/snapshots", Some(body), "3.0").await;
    let path = format!("/snapshots/{}/metadata", created.body["snapshot"]["id"].as_str().unwrap());

    let merged = cloud.cinder(&s, Method::POST, &path, Some(json!({"metadata": {"b": "2"}})), "3.0").await;
    assert_eq!(merged.body["metadata"], json!({"a": "1", "b": "2"}));
    let replaced = cloud.cinder(&s, Method::PUT, &path, Some(json!({"metadata": {"c": "3"}})), "3.0").await;
    assert_eq!(replaced.body["metadata"], json!({"c": "3"}));
    let set =
        cloud.cinder(&s, Method::PUT, &format!("{path}/d"), Some(json!({"meta": {"d": "4"}})), "3.0").await;
    assert_eq!(set.body["meta"], json!({"d": "4"}));
    assert_eq!(cloud.cinder(&s, Method::GET, &format!("{path}/d"), None, "3.0").await.body["meta"]["d"], "4");
    assert_eq!(cloud.cinder(&s, Method::DELETE, &format!("{path}/c"), None, "3.0").await.status, 200);
    assert_eq!(cloud.cinder(&s, Method::DELETE, &format!("{path}/c"), None, "3.0").await.status, 404);
    assert_eq!(cloud.cinder(&s, Method::GET, &path, None, "3.0").await.body["metadata"], json!({"d": "4"}));
    let missing = cloud.cinder(&s, Method::GET, "/snapshots/no-such-snapshot/metadata", None, "3.0").await;
    assert_eq!(missing.status, 404);
}
