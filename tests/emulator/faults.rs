//! Fault injection, counters, stuck states and restart persistence of the emulator.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::emulator::TestCloud;

#[tokio::test]
async fn counters_count_requests_by_method_and_route_template() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    cloud.admin(Method::DELETE, "/counters", None).await;
    for _ in 0..3 {
        cloud.cinder(&s, Method::GET, "/volumes/detail", None, "3.0").await;
    }
    let counters = cloud.admin(Method::GET, "/counters", None).await;
    assert_eq!(counters.body["routes"]["GET /volume/v3/{project_id}/volumes/detail"], 3);
    assert_eq!(counters.body["total"], 3);
}

#[tokio::test]
async fn injected_errors_use_the_family_body_and_retry_after() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let rule = json!({"method": "GET", "route": "/volume/v3/{project_id}/volumes", "action": {"kind": "error", "status": 503, "retry_after": 7}, "count": 1});
    assert_eq!(cloud.admin(Method::POST, "/faults", Some(rule)).await.status, 201);
    let hit = cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await;
    assert_eq!(hit.status, 503);
    assert_eq!(hit.body["serviceUnavailable"]["code"], 503);
    assert_eq!(hit.header("retry-after").as_deref(), Some("7"));
    assert_eq!(cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await.status, 200);
    let rule = json!({"route": "/identity/*", "action": {"kind": "error", "status": 500}, "count": 1});
    cloud.admin(Method::POST, "/faults", Some(rule)).await;
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": s.token}}}});
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.body["error"]["code"], 500);
}

#[tokio::test]
async fn rate_limited_requests_get_429_with_retry_after() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    cloud.admin(Method::PUT, "/rate-limit", Some(json!({"requests_per_second": 0.01, "burst": 2}))).await;
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await);
        }
        assert!(v[2].header("retry-after").is_some());
        assert_eq!(v[2].body["overLimit"]["code"], 429);
        v.iter().map(|r| r.status).collect()
    };
    assert_eq!(statuses, [200, 200, 429]);
}

#[tokio::test]
async fn dropped_connections_fail_the_request() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let rule = json!({"route": "/volume/v3/{project_id}/volumes", "action": {"kind": "drop"}, "count": 1});
    cloud.admin(Method::POST, "/faults", Some(rule)).await;
    let url = format!("{}/volumes", s.volume);
    let result = async {
        let response = cloud.http.get(&url).header("X-Auth-Token", &s.token).send().await?;
        response.bytes().await
    }
    .await;
    assert!(result.is_err(), "the dropped request completed: {result:?}");
    assert_eq!(cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await.status, 200);
}

#[tokio::test]
async fn a_lost_response_fails_the_request_but_the_change_is_made() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let rule = json!({"method": "POST", "route": "/volume/v3/{project_id}/volumes", "action": {"kind": "drop_response"}, "count": 1});
    cloud.admin(Method::POST, "/faults", Some(rule)).await;
    let url = format!("{}/volumes", s.volume);
    let body = json!({"volume": {"size": 1, "name": "made-but-unanswered"}});
    let result = async {
        let response = cloud.http.post(&url).header("X-Auth-Token", &s.token).json(&body).send().await?;
        response.bytes().await
    }
    .await;
    assert!(result.is_err(), "the unanswered request completed: {result:?}");
    let list = cloud.cinder(&s, Method::GET, "/volumes?name=made-but-unanswered", None, "3.0").await;
    assert_eq!(list.body["volumes"].as_array().map(Vec::len), Some(1), "{:?}", list.body);
}

#[tokio::test]
async fn fault_randomness_is_repeatable_with_a_seed() {
    async fn run(seed: u64) -> Vec<u16> {
        let cloud = TestCloud::start_with(|c| c.seed = seed).await;
        let s = cloud.login("demo").await;
        let rule = json!({"route": "/volume/*", "action": {"kind": "error", "status": 500}, "rate": 0.5});
        cloud.admin(Method::POST, "/faults", Some(rule)).await;
        let mut statuses = Vec::new();
        for _ in 0..24 {
            statuses.push(cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await.status);
        }
        statuses
    }
    let first = run(42).await;
    assert_eq!(first, run(42).await);
    assert!(first.contains(&500) && first.contains(&200), "{first:?}");
}

#[tokio::test]
async fn a_stuck_volume_never_leaves_attaching_until_released() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud
        .admin(
            Method::POST,
            "/transitions",
            Some(json!({"resource": "volume", "status": "attaching", "effect": "stuck"})),
        )
        .await;
    cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            Some(json!({"volumeAttachment": {"volumeId": id}})),
            "2.1",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(v.body["volume"]["status"], "attaching");
    cloud.admin(Method::DELETE, "/transitions", None).await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
}

#[tokio::test]
async fn a_failing_transition_ends_in_the_error_status() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    cloud
        .admin(
            Method::POST,
            "/transitions",
            Some(json!({"resource": "volume", "status": "creating", "effect": "fail", "count": 1})),
        )
        .await;
    let id = cloud.create_volume(&s, json!({"size": 1})).await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "error").await;
    let ok = cloud.available_volume(&s, 1).await;
    assert!(!ok.is_empty());
}

#[tokio::test]
async fn state_survives_a_restart() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let id = cloud.available_volume(&s, 3).await;
    cloud.attach_through_nova(&s, &server, &id).await;
    let snap = cloud
        .cinder(
            &s,
            Method::POST,
            "/snapshots",
            Some(json!({"snapshot": {"volume_id": id, "force": true, "name": "keep"}})),
            "3.0",
        )
        .await;
    let sid = snap.body["snapshot"]["id"].as_str().unwrap().to_string();
    let project = s.project_id.clone();
    let cloud = cloud.restart().await;
    let s = cloud.login("demo").await;
    assert_eq!(s.project_id, project, "project ids changed across the restart");
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    assert_eq!(v["size"], 3);
    assert_eq!(v["attachments"][0]["server_id"], server.as_str());
    let snap = cloud.wait_status(&s, &format!("/snapshots/{sid}"), "snapshot", "available").await;
    assert_eq!(snap["name"], "keep");
}

#[tokio::test]
async fn tokens_survive_a_restart() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let cloud = cloud.restart().await;
    let moved = testkit::emulator::Session {
        volume: s.volume.replace(&s.volume[..s.volume.find("/volume").unwrap()], cloud.handle.base_url()),
        ..s.clone()
    };
    assert_eq!(cloud.cinder(&moved, Method::GET, "/volumes", None, "3.0").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_create_of_a_concurrent_burst_is_already_on_disk() {
    let cloud = std::sync::Arc::new(
        TestCloud::start_with(|c| {
            c.default_quotas.insert("volumes".into(), -1);
        })
        .await,
    );
    let s = cloud.login("demo").await;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (cloud, s) = (cloud.clone(), s.clone());
        creates.spawn(async move {
            let body = json!({"volume": {"size": 1, "name": format!("burst-{i}")}});
            let reply = cloud.cinder(&s, Method::POST, "/volumes", Some(body), "3.0").await;
            assert_eq!(reply.status, 202, "{:?}", reply.body);
            reply.body["volume"]["id"].as_str().unwrap().to_string()
        });
    }
    let ids = creates.join_all().await;
    // Read the file as a crash right now would leave it: no shutdown, no later save.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cloud.dir.path().join("state.json")).unwrap()).unwrap();
    let stores = saved["stores"].as_object().unwrap();
    for id in &ids {
        assert!(
            stores.values().any(|store| store["volumes"].get(id).is_some()),
            "volume {id} was answered but is not in state.json"
        );
    }
}

#[tokio::test]
async fn an_in_memory_emulator_writes_no_state_file() {
    let cloud = TestCloud::start_with(|c| c.persist = false).await;
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    assert!(!id.is_empty());
    assert!(!cloud.dir.path().join("state.json").exists(), "state.json was written");
}
