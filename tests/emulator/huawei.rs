//! The Huawei side of the emulator over HTTP: AK/SK signatures, IAM tokens, EVS disks, jobs,
//! listing, tags, expand, snapshots, quotas, error codes, ECS attach/detach and persistence.

use reqwest::Method;
use serde_json::{Value, json};
use testkit::emulator::{AkSk, Signing, TestCloud};

fn project(cloud: &TestCloud) -> String {
    cloud.handle.demo().project_id
}

fn evs(cloud: &TestCloud, rest: &str) -> String {
    format!("/evs/v2/{}{rest}", project(cloud))
}

fn disk(size: u64) -> Value {
    json!({"volume": {"availability_zone": "nova", "volume_type": "SSD", "size": size, "name": "d"}})
}

/// Creates disks through EVS, waits for the job and returns the new disk ids.
async fn create_disks(cloud: &TestCloud, key: &AkSk, body: Value) -> Vec<String> {
    let reply = cloud.huawei(key, Method::POST, &evs(cloud, "/cloudvolumes"), &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let job = cloud.wait_job(key, "evs", &project(cloud), reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job:?}");
    match job["entities"]["sub_jobs"].as_array() {
        Some(subs) => subs.iter().map(|s| s["entities"]["volume_id"].as_str().unwrap().to_string()).collect(),
        None => vec![job["entities"]["volume_id"].as_str().unwrap().to_string()],
    }
}

fn code(reply: &testkit::emulator::Reply) -> String {
    reply.body["error"]["code"].as_str().or(reply.body["error_code"].as_str()).unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_with_401() {
    let cloud = TestCloud::start().await;
    let good = cloud.demo_key();
    let ok = cloud.huawei(&good, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let bad = AkSk { sk: "not-the-secret".into(), ..good.clone() };
    let reply = cloud.huawei(&bad, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error_code"], "APIGW.0301");
    assert!(!reply.body.to_string().contains(&good.sk), "the secret leaked into the answer");
    let unknown = AkSk { ak: "NOSUCHKEY".into(), ..good };
    let reply = cloud.huawei(&unknown, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn a_tampered_body_is_refused() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let signing =
        Signing { tampered_body: Some(serde_json::to_vec(&disk(20)).unwrap()), ..Default::default() };
    let reply = cloud
        .huawei_with(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(disk(10)), signing)
        .await;
    assert_eq!(reply.status, 401, "{:?}", reply.body);
    let listed = cloud.huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!(listed.body["count"], 0);
}

#[tokio::test]
async fn a_clock_skew_over_fifteen_minutes_is_refused() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let path = evs(&cloud, "/cloudvolumes/detail");
    for (skew, status) in [(-16 * 60, 401), (16 * 60, 401), (-10 * 60, 200)] {
        let signing = Signing { skew_seconds: skew, ..Default::default() };
        let reply = cloud.huawei_with(&key, Method::GET, &path, &[], None, signing).await;
        assert_eq!(reply.status, status, "skew {skew}s: {:?}", reply.body);
    }
}

#[tokio::test]
async fn requests_without_the_signed_date_or_any_credentials_are_refused() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let path = evs(&cloud, "/cloudvolumes/detail");
    let no_date = Signing { omit_date: true, ..Default::default() };
    assert_eq!(cloud.huawei_with(&key, Method::GET, &path, &[], None, no_date).await.status, 401);
    let host_only = Signing { signed_headers: Some(vec!["host"]), ..Default::default() };
    assert_eq!(cloud.huawei_with(&key, Method::GET, &path, &[], None, host_only).await.status, 401);
    let bare = cloud.send(Method::GET, &cloud.url(&path), None, None, &[]).await;
    assert_eq!(bare.status, 401);
    assert_eq!(bare.body["error_code"], "APIGW.0301");
}

#[tokio::test]
async fn signed_queries_and_extra_signed_headers_are_verified() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let path = evs(&cloud, "/cloudvolumes/detail");
    let signing =
        Signing { signed_headers: Some(vec!["content-type", "host", "x-sdk-date"]), ..Default::default() };
    let reply = cloud
        .huawei_with(
            &key,
            Method::GET,
            &path,
            &[("status", "available"), ("limit", "5"), ("name", "a b")],
            None,
            signing,
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn keystone_tokens_are_accepted_for_their_own_project_only() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let url = cloud.url(&evs(&cloud, "/cloudvolumes/detail"));
    let reply = cloud.send(Method::GET, &url, Some(&s.token), None, &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let admin = cloud.login("admin").await;
    let other = cloud.send(Method::GET, &url, Some(&admin.token), None, &[]).await;
    assert_eq!(other.status, 400);
    assert_eq!(code(&other), "Common.0018");
    let bogus = cloud.send(Method::GET, &url, Some("not-a-token"), None, &[]).await;
    assert_eq!(bogus.status, 401);
}

#[tokio::test]
async fn the_catalog_lists_the_evs_and_ecs_endpoints() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let reply = cloud
        .send(
            Method::GET,
            &cloud.url("/identity/v3/auth/tokens"),
            Some(&s.token),
            None,
            &[("X-Subject-Token", &s.token)],
        )
        .await;
    let catalog = reply.body["token"]["catalog"].as_array().unwrap().clone();
    let url = |kind: &str| {
        catalog.iter().find(|c| c["type"] == kind).unwrap()["endpoints"][0]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(url("evs"), format!("{}/evs/v2/{}", cloud.handle.base_url(), s.project_id));
    assert_eq!(url("ecs"), format!("{}/ecs/v1/{}", cloud.handle.base_url(), s.project_id));
}

#[tokio::test]
async fn creating_a_disk_runs_a_job_that_names_the_disk() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let hold = json!({"resource": "volume", "status": "creating", "effect": "stuck"});
    cloud.admin(Method::POST, "/transitions", Some(hold)).await;
    let reply = cloud
        .huawei(
            &key,
            Method::POST,
            &format!("/evs/v2.1/{}/cloudvolumes", project(&cloud)),
            &[],
            Some(disk(20)),
        )
        .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let job_id = reply.body["job_id"].as_str().unwrap().to_string();
    let first = cloud
        .huawei(&key, Method::GET, &format!("/evs/v1/{}/jobs/{job_id}", project(&cloud)), &[], None)
        .await;
    assert_eq!(first.body["status"], "RUNNING");
    assert_eq!(first.body["job_type"], "createVolume");
    cloud.admin(Method::DELETE, "/transitions", None).await;
    let job = cloud.wait_job(&key, "evs", &project(&cloud), &job_id).await;
    assert_eq!(job["status"], "SUCCESS");
    let id = job["entities"]["volume_id"].as_str().unwrap();
    assert_eq!(reply.body["volume_ids"][0], id);
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["status"], "available");
    assert_eq!(shown.body["volume"]["volume_type"], "SSD");
    assert_eq!(shown.body["volume"]["size"], 20);
    // The same disk is a Cinder volume.
    let s = cloud.login("demo").await;
    let cinder = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(cinder.body["volume"]["size"], 20);
    let ecs_view = cloud
        .huawei(&key, Method::GET, &format!("/ecs/v1/{}/jobs/{job_id}", project(&cloud)), &[], None)
        .await;
    assert_eq!(code(&ecs_view), "Common.0011");
}

#[tokio::test]
async fn a_batch_create_has_one_sub_job_per_disk() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let mut body = disk(10);
    body["volume"]["count"] = json!(3);
    body["volume"]["name"] = json!("batch");
    let ids = create_disks(&cloud, &key, body).await;
    assert_eq!(ids.len(), 3);
    let listed = cloud
        .huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[("name", "batch-0002")], None)
        .await;
    assert_eq!(listed.body["count"], 1);
}

#[tokio::test]
async fn a_failed_creation_fails_its_job() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let rule = json!({"resource": "volume", "status": "creating", "effect": "fail"});
    assert!(cloud.admin(Method::POST, "/transitions", Some(rule)).await.status < 300);
    let reply = cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(disk(10))).await;
    let job = cloud.wait_job(&key, "evs", &project(&cloud), reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "FAIL");
    assert_eq!(job["error_code"], "EVS.2024");
}

#[tokio::test]
async fn listing_pages_filters_and_counts() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let mut body = disk(10);
    body["volume"]["count"] = json!(5);
    body["volume"]["name"] = json!("page");
    create_disks(&cloud, &key, body).await;
    let path = evs(&cloud, "/cloudvolumes/detail");
    let first = cloud.huawei(&key, Method::GET, &path, &[("limit", "2"), ("sort_dir", "asc")], None).await;
    assert_eq!(first.body["count"], 5);
    let page: Vec<String> = first.body["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(page.len(), 2);
    assert_eq!(first.body["volumes_links"][0]["rel"], "next");
    let second = cloud
        .huawei(&key, Method::GET, &path, &[("limit", "2"), ("sort_dir", "asc"), ("marker", &page[1])], None)
        .await;
    let next: Vec<&str> =
        second.body["volumes"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(next.len(), 2);
    assert!(!next.contains(&page[0].as_str()) && !next.contains(&page[1].as_str()));
    let offset = cloud.huawei(&key, Method::GET, &path, &[("offset", "4")], None).await;
    assert_eq!(offset.body["volumes"].as_array().unwrap().len(), 1);
    let none = cloud.huawei(&key, Method::GET, &path, &[("status", "in-use")], None).await;
    assert_eq!(none.body["count"], 0);
    let zone = cloud.huawei(&key, Method::GET, &path, &[("availability_zone", "nova")], None).await;
    assert_eq!(zone.body["count"], 5);
    for (query, expected) in [
        (("limit", "0"), "EVS.1023"),
        (("limit", "1001"), "EVS.2142"),
        (("marker", "not-a-uuid"), "EVS.1024"),
        (("sort_key", "name"), "EVS.1039"),
        (("sort_dir", "up"), "EVS.1040"),
    ] {
        let reply = cloud.huawei(&key, Method::GET, &path, &[query], None).await;
        assert_eq!((reply.status, code(&reply)), (400, expected.to_string()), "{query:?}");
    }
}

#[tokio::test]
async fn tags_are_added_listed_queried_and_removed() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let ids = create_disks(&cloud, &key, disk(10)).await;
    let id = &ids[0];
    let action = evs(&cloud, &format!("/cloudvolumes/{id}/tags/action"));
    let add = json!({"action": "create", "tags": [{"key": "k8s", "value": "pvc-1"}, {"key": "team", "value": "a"}]});
    assert_eq!(cloud.huawei(&key, Method::POST, &action, &[], Some(add)).await.status, 204);
    let tags =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}/tags")), &[], None).await;
    assert_eq!(tags.body["tags"].as_array().unwrap().len(), 2);
    let all = cloud.huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/tags"), &[], None).await;
    assert_eq!(all.body["tags"]["k8s"], json!(["pvc-1"]));
    let query = json!({"action": "filter", "tags": [{"key": "k8s", "values": ["pvc-1"]}], "limit": "10"});
    let found = cloud
        .huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes/resource_instances/action"), &[], Some(query))
        .await;
    assert_eq!(found.body["total_count"], 1);
    assert_eq!(found.body["resources"][0]["resource_id"], id.as_str());
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["tags"]["team"], "a");
    let too_many: Vec<Value> = (0..10).map(|i| json!({"key": format!("x{i}"), "value": "v"})).collect();
    let over = cloud
        .huawei(&key, Method::POST, &action, &[], Some(json!({"action": "create", "tags": too_many})))
        .await;
    assert_eq!(over.status, 400);
    let remove = json!({"action": "delete", "tags": [{"key": "k8s"}]});
    assert_eq!(cloud.huawei(&key, Method::POST, &action, &[], Some(remove)).await.status, 204);
    let after =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}/tags")), &[], None).await;
    assert_eq!(after.body["tags"], json!([{"key": "team", "value": "a"}]));
}

/// `/evs/v2.1/{project}{rest}`: the create that takes tags in its body.
fn evs21(cloud: &TestCloud, rest: &str) -> String {
    format!("/evs/v2.1/{}{rest}", project(cloud))
}

#[tokio::test]
async fn a_v2_1_create_keeps_the_tags_of_its_body() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let mut body = disk(20);
    body["volume"]["tags"] = json!({"cluster": "c1", "pvc": "data-0"});
    let reply = cloud.huawei(&key, Method::POST, &evs21(&cloud, "/cloudvolumes"), &[], Some(body)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let id = reply.body["volume_ids"][0].as_str().unwrap().to_string();
    let tags =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}/tags")), &[], None).await;
    assert_eq!(
        tags.body["tags"],
        json!([{"key": "cluster", "value": "c1"}, {"key": "pvc", "value": "data-0"}])
    );
    let query = json!({"action": "filter", "tags": [{"key": "cluster", "values": ["c1"]}], "limit": 10});
    let found = cloud
        .huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes/resource_instances/action"), &[], Some(query))
        .await;
    assert_eq!(found.body["total_count"], 1, "{:?}", found.body);
}

#[tokio::test]
async fn a_v2_1_create_with_bad_tags_is_refused_and_makes_no_disk() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let eleven: serde_json::Map<String, Value> = (0..11).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (tags, want) in [
        (json!({"bad key!": "v"}), "EVS.5400"),
        (json!({"k": "bad value!"}), "EVS.5400"),
        (json!({"k": 1}), "EVS.1018"),
        (json!([{"key": "k", "value": "v"}]), "EVS.1018"),
        (Value::Object(eleven), "EVS.5400"),
    ] {
        let mut body = disk(20);
        body["volume"]["tags"] = tags.clone();
        let reply = cloud.huawei(&key, Method::POST, &evs21(&cloud, "/cloudvolumes"), &[], Some(body)).await;
        assert_eq!(reply.status, 400, "{tags}: {:?}", reply.body);
        assert_eq!(code(&reply), want, "{tags}: {:?}", reply.body);
    }
    let listed = cloud.huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!(listed.body["count"], 0);
}

#[tokio::test]
async fn a_v2_create_ignores_tags_as_its_reference_documents_none() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let mut body = disk(20);
    body["volume"]["tags"] = json!({"cluster": "c1"});
    let id = create_disks(&cloud, &key, body).await.remove(0);
    let tags =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}/tags")), &[], None).await;
    assert_eq!(tags.body["tags"], json!([]));
}

#[tokio::test]
async fn a_tag_query_pages_by_offset_and_needs_its_tag_list() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let ids = create_disks(&cloud, &key, json!({"volume": {"availability_zone": "nova", "volume_type": "SSD", "size": 10, "name": "d", "count": 3}})).await;
    for id in &ids {
        let tag = json!({"action": "create", "tags": [{"key": "cluster", "value": "c1"}]});
        let action = evs(&cloud, &format!("/cloudvolumes/{id}/tags/action"));
        assert_eq!(cloud.huawei(&key, Method::POST, &action, &[], Some(tag)).await.status, 204);
    }
    let path = evs(&cloud, "/cloudvolumes/resource_instances/action");
    let page = |offset: u64| json!({"action": "filter", "tags": [{"key": "cluster", "values": []}], "limit": 2, "offset": offset});
    let first = cloud.huawei(&key, Method::POST, &path, &[], Some(page(0))).await;
    let second = cloud.huawei(&key, Method::POST, &path, &[], Some(page(2))).await;
    assert_eq!((first.body["total_count"].clone(), second.body["total_count"].clone()), (json!(3), json!(3)));
    let mut seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|r| r.body["resources"].as_array().unwrap().clone())
        .map(|r| r["resource_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen.len(), 3, "2 on the first page, 1 on the second");
    seen.sort();
    let mut ids = ids.clone();
    ids.sort();
    assert_eq!(seen, ids);
    let untagged = cloud.huawei(&key, Method::POST, &path, &[], Some(json!({"action": "filter"}))).await;
    assert_eq!((untagged.status, code(&untagged)), (400, "EVS.5400".to_string()));
}

#[tokio::test]
async fn expanding_runs_a_job_and_refuses_a_smaller_size_or_a_busy_disk() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let id = create_disks(&cloud, &key, disk(10)).await.remove(0);
    let path = format!("/evs/v2.1/{}/cloudvolumes/{id}/action", project(&cloud));
    let same =
        cloud.huawei(&key, Method::POST, &path, &[], Some(json!({"os-extend": {"new_size": 10}}))).await;
    assert_eq!(code(&same), "EVS.1015");
    let reply =
        cloud.huawei(&key, Method::POST, &path, &[], Some(json!({"os-extend": {"new_size": 15}}))).await;
    assert_eq!(reply.status, 202, "an expand is accepted, as the EVS reference says: {:?}", reply.body);
    let job = cloud.wait_job(&key, "evs", &project(&cloud), reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!((job["status"].as_str(), job["job_type"].as_str()), (Some("SUCCESS"), Some("extendVolume")));
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["size"], 15);
    let stuck = json!({"resource": "volume", "status": "extending", "effect": "stuck"});
    cloud.admin(Method::POST, "/transitions", Some(stuck)).await;
    cloud.huawei(&key, Method::POST, &path, &[], Some(json!({"os-extend": {"new_size": 20}}))).await;
    let busy =
        cloud.huawei(&key, Method::POST, &path, &[], Some(json!({"os-extend": {"new_size": 30}}))).await;
    assert_eq!(code(&busy), "EVS.1064");
}

#[tokio::test]
async fn snapshots_restore_only_in_the_same_zone_and_type() {
    let cloud = TestCloud::start_with(|c| c.availability_zones = vec!["az1".into(), "az2".into()]).await;
    let key = cloud.demo_key();
    let mut body = disk(10);
    body["volume"]["availability_zone"] = json!("az1");
    let id = create_disks(&cloud, &key, body).await.remove(0);
    let snaps = evs(&cloud, "/cloudsnapshots");
    let made = cloud
        .huawei(&key, Method::POST, &snaps, &[], Some(json!({"snapshot": {"volume_id": id, "name": "s1"}})))
        .await;
    assert_eq!(made.status, 202, "a snapshot create is accepted, as the EVS reference says: {:?}", made.body);
    let sid = made.body["snapshot"]["id"].as_str().unwrap().to_string();
    let listed = cloud
        .huawei(&key, Method::GET, &evs(&cloud, "/cloudsnapshots/detail"), &[("volume_id", &id)], None)
        .await;
    assert_eq!(listed.body["count"], 1);
    assert_eq!(listed.body["snapshots"][0]["status"], "available");
    let from = |zone: &str, kind: &str| json!({"volume": {"availability_zone": zone, "volume_type": kind, "snapshot_id": sid}});
    let cases = [(from("az2", "SSD"), "EVS.2054"), (from("az1", "SAS"), "EVS.2096")];
    for (body, expected) in cases {
        let reply = cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(body)).await;
        assert_eq!(code(&reply), expected);
    }
    let mut two = from("az1", "SSD");
    two["volume"]["backup_id"] = json!("b");
    assert_eq!(
        code(&cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(two)).await),
        "EVS.1016"
    );
    let restored = create_disks(&cloud, &key, from("az1", "SSD")).await;
    let shown = cloud
        .huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{}", restored[0])), &[], None)
        .await;
    assert_eq!(shown.body["volume"]["snapshot_id"], sid.as_str());
    let deleted =
        cloud.huawei(&key, Method::DELETE, &evs(&cloud, &format!("/cloudsnapshots/{sid}")), &[], None).await;
    assert_eq!(deleted.status, 204);
}

#[tokio::test]
async fn create_validation_answers_the_documented_codes() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let cases = [
        (json!({"volume": {"availability_zone": "nova", "volume_type": "SSD", "size": 9}}), "EVS.1010"),
        (json!({"volume": {"availability_zone": "nova", "volume_type": "SSD", "size": 32769}}), "EVS.1010"),
        (json!({"volume": {"volume_type": "SSD", "size": 10}}), "EVS.2083"),
        (json!({"volume": {"availability_zone": "mars", "volume_type": "SSD", "size": 10}}), "EVS.1036"),
        (json!({"volume": {"availability_zone": "nova", "volume_type": "TAPE", "size": 10}}), "EVS.1020"),
        (
            json!({"volume": {"availability_zone": "nova", "volume_type": "SSD", "size": 10, "count": 101}}),
            "EVS.1021",
        ),
        (
            json!({"volume": {"availability_zone": "nova", "volume_type": "SAS", "size": 10, "iops": 5000}}),
            "EVS.5400",
        ),
    ];
    for (body, expected) in cases {
        let reply =
            cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(body.clone())).await;
        assert_eq!((reply.status, code(&reply)), (400, expected.to_string()), "{body}");
    }
    let v2 = json!({"volume": {"availability_zone": "nova", "volume_type": "GPSSD2", "size": 10, "iops": 4000, "throughput": 200}});
    let id = create_disks(&cloud, &key, v2).await.remove(0);
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["iops"]["total_val"], 4000);
    assert_eq!(shown.body["volume"]["throughput"]["total_val"], 200);
    let missing = cloud
        .huawei(
            &key,
            Method::GET,
            &evs(&cloud, "/cloudvolumes/00000000-0000-0000-0000-000000000000"),
            &[],
            None,
        )
        .await;
    assert_eq!((missing.status, code(&missing)), (404, "EVS.5404".to_string()));
}

#[tokio::test]
async fn quotas_limit_disk_count_and_capacity() {
    let cloud = TestCloud::start_with(|c| {
        c.default_quotas.insert("volumes".into(), 2);
        c.default_quotas.insert("gigabytes".into(), 30);
    })
    .await;
    let key = cloud.demo_key();
    let big = cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(disk(40))).await;
    assert_eq!(code(&big), "EVS.1042");
    create_disks(&cloud, &key, disk(10)).await;
    create_disks(&cloud, &key, disk(10)).await;
    let third = cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(disk(10))).await;
    assert_eq!(code(&third), "EVS.1034");
    let quotas = cloud
        .huawei(
            &key,
            Method::GET,
            &evs(&cloud, &format!("/os-quota-sets/{}", project(&cloud))),
            &[("usage", "True")],
            None,
        )
        .await;
    assert_eq!(quotas.body["quota_set"]["volumes"], json!({"limit": 2, "in_use": 2, "reserved": 0}));
    assert_eq!(quotas.body["quota_set"]["gigabytes"]["in_use"], 20);
}

#[tokio::test]
async fn attach_and_detach_run_ecs_jobs_and_guard_the_disk() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let pid = project(&cloud);
    let server = cloud.add_server("vm", "demo").await;
    let id = create_disks(&cloud, &key, disk(10)).await.remove(0);
    let attach = format!("/ecs/v1/{pid}/cloudservers/{server}/attachvolume");
    let body = json!({"volumeAttachment": {"volumeId": id}});
    let reply = cloud.huawei(&key, Method::POST, &attach, &[], Some(body.clone())).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let job = cloud.wait_job(&key, "ecs", &pid, reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!((job["status"].as_str(), job["job_type"].as_str()), (Some("SUCCESS"), Some("attachVolume")));
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["status"], "in-use");
    assert_eq!(shown.body["volume"]["attachments"][0]["server_id"], server.as_str());
    assert_eq!(shown.body["volume"]["attachments"][0]["device"], "/dev/vdb");
    let twice = cloud.huawei(&key, Method::POST, &attach, &[], Some(body)).await;
    assert_eq!((twice.status, code(&twice)), (400, "Ecs.0000".to_string()));
    let delete =
        cloud.huawei(&key, Method::DELETE, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(code(&delete), "EVS.1046");
    let detach = format!("/ecs/v1/{pid}/cloudservers/{server}/detachvolume/{id}");
    let reply = cloud.huawei(&key, Method::DELETE, &detach, &[], None).await;
    let job = cloud.wait_job(&key, "ecs", &pid, reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS");
    // ECS's table: Ecs.0111, "Disk %s is not in the attachment list for ECS %s".
    let again = cloud.huawei(&key, Method::DELETE, &detach, &[], None).await;
    assert_eq!((again.status, code(&again)), (400, "Ecs.0111".to_string()));
    let gone =
        cloud.huawei(&key, Method::DELETE, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    let job = cloud.wait_job(&key, "evs", &pid, gone.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS");
    let after =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(code(&after), "EVS.5404");
}

#[tokio::test]
async fn attaching_to_a_missing_server_is_ecs_0114() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let pid = project(&cloud);
    let id = create_disks(&cloud, &key, disk(10)).await.remove(0);
    let path = format!("/ecs/v1/{pid}/cloudservers/00000000-0000-0000-0000-000000000000/attachvolume");
    let reply = cloud
        .huawei(&key, Method::POST, &path, &[], Some(json!({"volumeAttachment": {"volumeId": id}})))
        .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["error"]["code"], "Ecs.0114");
}

#[tokio::test]
async fn a_scsi_disk_attached_to_this_host_gets_a_scsi_by_id_link() {
    if !testkit::root_or_skip("a_scsi_disk_attached_to_this_host_gets_a_scsi_by_id_link") {
        return;
    }
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let pid = project(&cloud);
    let server = cloud.handle.this_host_server_id().unwrap();
    let mut body = disk(10);
    body["volume"]["metadata"] = json!({"hw:passthrough": "true"});
    let id = create_disks(&cloud, &key, body).await.remove(0);
    let attach = format!("/ecs/v1/{pid}/cloudservers/{server}/attachvolume");
    let reply = cloud
        .huawei(&key, Method::POST, &attach, &[], Some(json!({"volumeAttachment": {"volumeId": id}})))
        .await;
    let job = cloud.wait_job(&key, "ecs", &pid, reply.body["job_id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "SUCCESS", "{job:?}");
    let link =
        cloud.dir.path().join("by-id").join(format!("scsi-3{}", cinder_evs_emulator::loopdev::wwn(&id)));
    let target = std::fs::read_link(&link).expect("scsi by-id link");
    assert!(target.to_string_lossy().starts_with("/dev/loop"), "{target:?}");
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["attachments"][0]["device"], "/dev/sdb");
    let detach = format!("/ecs/v1/{pid}/cloudservers/{server}/detachvolume/{id}");
    let reply = cloud.huawei(&key, Method::DELETE, &detach, &[], None).await;
    cloud.wait_job(&key, "ecs", &pid, reply.body["job_id"].as_str().unwrap()).await;
    assert!(std::fs::symlink_metadata(&link).is_err(), "the link outlived the detach");
}

#[tokio::test]
async fn huawei_routes_are_counted_and_faulted_with_evs_bodies() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    cloud.huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    let counters = cloud.admin(Method::GET, "/counters", None).await;
    assert_eq!(counters.body["routes"]["GET /evs/v2/{project_id}/cloudvolumes/detail"], 1);
    let rule = json!({"route": "/evs/*", "action": {"kind": "error", "status": 503}, "count": 1});
    cloud.admin(Method::POST, "/faults", Some(rule)).await;
    let faulted = cloud.huawei(&key, Method::GET, &evs(&cloud, "/cloudvolumes/detail"), &[], None).await;
    assert_eq!((faulted.status, code(&faulted)), (503, "EVS.5503".to_string()));
    let unknown = cloud.huawei(&key, Method::GET, &evs(&cloud, "/nothing/here/at/all"), &[], None).await;
    assert_eq!((unknown.status, code(&unknown)), (404, "APIGW.0101".to_string()));
}

#[tokio::test]
async fn evs_state_survives_a_restart() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let pid = project(&cloud);
    let reply = cloud.huawei(&key, Method::POST, &evs(&cloud, "/cloudvolumes"), &[], Some(disk(10))).await;
    let job_id = reply.body["job_id"].as_str().unwrap().to_string();
    let id = cloud.wait_job(&key, "evs", &pid, &job_id).await["entities"]["volume_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tag = json!({"action": "create", "tags": [{"key": "keep", "value": "me"}]});
    cloud
        .huawei(&key, Method::POST, &evs(&cloud, &format!("/cloudvolumes/{id}/tags/action")), &[], Some(tag))
        .await;
    let cloud = cloud.restart().await;
    let job = cloud.huawei(&key, Method::GET, &format!("/evs/v1/{pid}/jobs/{job_id}"), &[], None).await;
    assert_eq!(job.body["status"], "SUCCESS");
    let shown =
        cloud.huawei(&key, Method::GET, &evs(&cloud, &format!("/cloudvolumes/{id}")), &[], None).await;
    assert_eq!(shown.body["volume"]["tags"]["keep"], "me");
    assert_eq!(shown.body["volume"]["status"], "available");
}
