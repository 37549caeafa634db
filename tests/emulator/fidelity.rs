//! The emulator answers as the real clouds do where clients we did not write notice
//! (issue 22): Cinder's create/update/show views, group types, list filters, Nova's server
//! detail, and Huawei's per-service listeners, IAM catalog, ECS v2.1, EVS answers and quotas.

use std::time::Duration;

use cinder_evs_csi::cloud::huawei::sign::{Signer, sdk_date};
use cinder_evs_emulator::services::Service;
use reqwest::{Method, Url};
use serde_json::{Value, json};
use testkit::emulator::{Reply, TestCloud};

fn has(view: &Value, key: &str) -> bool {
    view.as_object().is_some_and(|o| o.contains_key(key))
}

#[tokio::test]
async fn a_volume_lists_no_attachment_until_it_is_attached() {
    let cloud = TestCloud::start_with(|c| {
        c.transition_latency.insert("volume.attaching".into(), Duration::from_millis(800));
    })
    .await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let body = json!({"volumeAttachment": {"volumeId": id}});
    let path = format!("/servers/{server}/os-volume_attachments");
    assert_eq!(cloud.nova(&s, Method::POST, &path, Some(body), "2.1").await.status, 200);
    let attaching = cloud.cinder(&s, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(attaching.body["volume"]["status"], "attaching");
    assert_eq!(attaching.body["volume"]["attachments"], json!([]), "an attaching attachment is not listed");
    let attached = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    assert_eq!(attached["attachments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn volume_create_and_update_answers_carry_no_show_only_fields() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let made = cloud
        .cinder(&admin, Method::POST, "/volumes", Some(json!({"volume": {"size": 1, "name": "v"}})), "3.47")
        .await;
    assert_eq!(made.status, 202);
    let view = &made.body["volume"];
    for key in [
        "os-vol-tenant-attr:tenant_id",
        "os-vol-host-attr:host",
        "os-vol-mig-status-attr:migstat",
        "backup_id",
    ] {
        assert!(!has(view, key), "create answered {key}");
    }
    let id = view["id"].as_str().unwrap().to_string();
    let shown = cloud.wait_status(&admin, &format!("/volumes/{id}"), "volume", "available").await;
    assert!(has(&shown, "os-vol-tenant-attr:tenant_id") && has(&shown, "os-vol-host-attr:host"));
    let updated = cloud
        .cinder(
            &admin,
            Method::PUT,
            &format!("/volumes/{id}"),
            Some(json!({"volume": {"name": "w"}})),
            "3.47",
        )
        .await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["volume"]["name"], "w");
    assert!(!has(&updated.body["volume"], "os-vol-tenant-attr:tenant_id"));
    assert!(!has(&updated.body["volume"], "backup_id"));
}

#[tokio::test]
async fn admin_volume_views_carry_cluster_name_from_3_61() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let id = cloud.available_volume(&admin, 1).await;
    let path = format!("/volumes/{id}");
    assert!(has(
        &cloud.cinder(&admin, Method::GET, &path, None, "3.61").await.body["volume"],
        "cluster_name"
    ));
    assert!(!has(
        &cloud.cinder(&admin, Method::GET, &path, None, "3.60").await.body["volume"],
        "cluster_name"
    ));
    let detail = cloud.cinder(&admin, Method::GET, "/volumes/detail", None, "3.61").await;
    assert!(has(&detail.body["volumes"][0], "cluster_name"));
    let demo = cloud.login("demo").await;
    let own = cloud.available_volume(&demo, 1).await;
    let view = cloud.cinder(&demo, Method::GET, &format!("/volumes/{own}"), None, "3.61").await;
    assert!(!has(&view.body["volume"], "cluster_name"), "only admins see the cluster");
}

#[tokio::test]
async fn snapshot_answers_have_no_links_and_extended_attributes_only_on_show() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let vid = cloud.available_volume(&s, 1).await;
    let made = cloud
        .cinder(&s, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": vid}})), "3.0")
        .await;
    assert_eq!(made.status, 202);
    let snap = &made.body["snapshot"];
    assert!(!has(snap, "links") && !has(snap, "os-extended-snapshot-attributes:progress"), "{snap}");
    let sid = snap["id"].as_str().unwrap().to_string();
    let shown = cloud.wait_status(&s, &format!("/snapshots/{sid}"), "snapshot", "available").await;
    assert!(has(&shown, "os-extended-snapshot-attributes:project_id") && !has(&shown, "links"));
    let updated = cloud
        .cinder(
            &s,
            Method::PUT,
            &format!("/snapshots/{sid}"),
            Some(json!({"snapshot": {"name": "n"}})),
            "3.0",
        )
        .await;
    assert!(!has(&updated.body["snapshot"], "os-extended-snapshot-attributes:progress"));
    let listed = cloud.cinder(&s, Method::GET, "/snapshots", None, "3.0").await;
    assert!(!has(&listed.body["snapshots"][0], "os-extended-snapshot-attributes:progress"));
}

#[tokio::test]
async fn a_snapshot_of_a_null_volume_is_not_found_and_of_no_volume_a_bad_request() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let null = cloud
        .cinder(&s, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": null}})), "3.0")
        .await;
    assert_eq!(null.status, 404, "{:?}", null.body);
    let missing =
        cloud.cinder(&s, Method::POST, "/snapshots", Some(json!({"snapshot": {"name": "x"}})), "3.0").await;
    assert_eq!(missing.status, 400, "{:?}", missing.body);
    let listed = cloud.cinder(&s, Method::GET, "/snapshots", None, "3.0").await;
    assert_eq!(listed.body["snapshots"], json!([]), "nothing was left behind");
}

#[tokio::test]
async fn volume_type_create_answers_the_access_flag_and_update_neither_it_nor_qos() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let made = cloud
        .cinder(
            &admin,
            Method::POST,
            "/types",
            Some(json!({"volume_type": {"name": "fidelity-type"}})),
            "3.0",
        )
        .await;
    assert_eq!(made.status, 200);
    assert_eq!(made.body["volume_type"]["os-volume-type-access:is_public"], true);
    assert!(!has(&made.body["volume_type"], "qos_specs_id"));
    let id = made.body["volume_type"]["id"].as_str().unwrap().to_string();
    let updated = cloud
        .cinder(
            &admin,
            Method::PUT,
            &format!("/types/{id}"),
            Some(json!({"volume_type": {"description": "d"}})),
            "3.0",
        )
        .await;
    assert_eq!(updated.status, 200);
    let view = &updated.body["volume_type"];
    assert!(!has(view, "qos_specs_id") && !has(view, "os-volume-type-access:is_public"), "{view}");
    let shown = cloud.cinder(&admin, Method::GET, &format!("/types/{id}"), None, "3.0").await;
    assert!(has(&shown.body["volume_type"], "qos_specs_id"));
}

#[tokio::test]
async fn group_types_are_created_updated_specified_and_deleted_with_cinders_codes() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let v = "3.11";
    let made = cloud
        .cinder(
            &admin,
            Method::POST,
            "/group_types",
            Some(json!({"group_type": {"name": "gt", "group_specs": {"a": "1"}}})),
            v,
        )
        .await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    let id = made.body["group_type"]["id"].as_str().unwrap().to_string();
    let base = format!("/group_types/{id}");
    let renamed =
        cloud.cinder(&admin, Method::PUT, &base, Some(json!({"group_type": {"name": "gt2"}})), v).await;
    assert_eq!((renamed.status, renamed.body["group_type"]["name"].as_str()), (200, Some("gt2")));
    let specs = format!("{base}/group_specs");
    let added = cloud.cinder(&admin, Method::POST, &specs, Some(json!({"group_specs": {"b": "2"}})), v).await;
    assert_eq!(added.status, 202);
    let listed = cloud.cinder(&admin, Method::GET, &specs, None, v).await;
    assert_eq!(listed.body["group_specs"], json!({"a": "1", "b": "2"}));
    let set = cloud.cinder(&admin, Method::PUT, &format!("{specs}/b"), Some(json!({"b": "3"})), v).await;
    assert_eq!((set.status, set.body["b"].as_str()), (200, Some("3")));
    let mismatch = cloud.cinder(&admin, Method::PUT, &format!("{specs}/b"), Some(json!({"c": "3"})), v).await;
    assert_eq!(mismatch.status, 400);
    assert_eq!(cloud.cinder(&admin, Method::GET, &format!("{specs}/b"), None, v).await.body["b"], "3");
    assert_eq!(cloud.cinder(&admin, Method::DELETE, &format!("{specs}/b"), None, v).await.status, 202);
    assert_eq!(cloud.cinder(&admin, Method::GET, &format!("{specs}/b"), None, v).await.status, 404);
    let demo = cloud.login("demo").await;
    let refused =
        cloud.cinder(&demo, Method::PUT, &base, Some(json!({"group_type": {"name": "x"}})), v).await;
    assert_eq!(refused.status, 403);
    assert_eq!(cloud.cinder(&admin, Method::DELETE, &base, None, v).await.status, 202);
    assert_eq!(cloud.cinder(&admin, Method::GET, &base, None, v).await.status, 404);
}

#[tokio::test]
async fn list_filters_take_python_literals_display_name_sorts_and_like_filters() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    for (name, tier) in [("alpha-db", "gold"), ("beta-web", "silver")] {
        let body = json!({"size": 1, "name": name, "metadata": {"tier": tier}});
        cloud.create_volume(&s, body).await;
    }
    let names = |r: &Reply| -> Vec<String> {
        r.body["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap().to_string())
            .collect()
    };
    let gold =
        cloud.cinder(&s, Method::GET, "/volumes?metadata=%7B%27tier%27%3A+%27gold%27%7D", None, "3.0").await;
    assert_eq!((gold.status, names(&gold)), (200, vec!["alpha-db".to_string()]));
    let hostile =
        cloud.cinder(&s, Method::GET, "/volumes?metadata=%7B%27tier%27%3A+__import__%7D", None, "3.0").await;
    assert_eq!(hostile.status, 400);
    let sorted = cloud.cinder(&s, Method::GET, "/volumes?sort=display_name:desc", None, "3.0").await;
    assert_eq!((sorted.status, names(&sorted)), (200, vec!["beta-web".to_string(), "alpha-db".to_string()]));
    let like = cloud.cinder(&s, Method::GET, "/volumes?name~=WEB", None, "3.34").await;
    assert_eq!((like.status, names(&like)), (200, vec!["beta-web".to_string()]));
    let early = cloud.cinder(&s, Method::GET, "/volumes?name~=web", None, "3.33").await;
    assert_eq!(early.status, 400, "like filters arrive at 3.34");
}

#[tokio::test]
async fn nova_server_detail_has_image_flavor_and_user() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let old = cloud.nova(&s, Method::GET, &format!("/servers/{server}"), None, "2.1").await;
    let view = &old.body["server"];
    assert_eq!(view["image"], "");
    assert!(view["flavor"]["id"].is_string(), "{view}");
    assert_eq!(view["user_id"], cloud.handle.demo().user_id.as_str());
    let new = cloud.nova(&s, Method::GET, "/servers/detail", None, "2.47").await;
    assert!(new.body["servers"][0]["flavor"]["original_name"].is_string());
}

/// An AK/SK request as the driver signs it, to any URL (a service listener's root).
async fn signed(
    cloud: &TestCloud,
    method: Method,
    url: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let key = cloud.demo_key();
    let project = cloud.handle.demo().project_id;
    let url = Url::parse(url).unwrap();
    let signer =
        Signer { access_key: &key.ak, secret_key: &key.sk, security_token: None, project_id: Some(&project) };
    let body = body.map(|b| serde_json::to_vec(&b).unwrap());
    let mut signed = signer.headers(&url, &sdk_date(std::time::SystemTime::now()), body.is_some());
    for (k, v) in headers {
        signed.insert(k.to_string(), v.to_string());
    }
    let authorization =
        signer.authorization(method.as_str(), &url, &signed, body.as_deref().unwrap_or_default());
    let mut request = cloud.http.request(method, url).header("Authorization", authorization);
    for (k, v) in &signed {
        request = request.header(k.as_str(), v.as_str());
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    Reply { status, headers, body }
}

async fn with_service_listeners() -> TestCloud {
    TestCloud::start_with(|c| c.huawei_listen = Some("127.0.0.1:0".parse().unwrap())).await
}

#[tokio::test]
async fn each_huawei_service_answers_at_the_root_of_its_own_listener() {
    let cloud = with_service_listeners().await;
    let project = cloud.handle.demo().project_id;
    let evs = cloud.handle.service_url(Service::Evs).unwrap().to_string();
    let ecs = cloud.handle.service_url(Service::Ecs).unwrap().to_string();
    let listed =
        signed(&cloud, Method::GET, &format!("{evs}/v2/{project}/cloudvolumes/detail?limit=5"), None, &[])
            .await;
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(listed.body["count"], 0);
    let crossed =
        signed(&cloud, Method::GET, &format!("{ecs}/v2/{project}/cloudvolumes/detail"), None, &[]).await;
    assert_eq!(crossed.status, 404, "the ECS listener serves no EVS route");
    let prefixed =
        signed(&cloud, Method::GET, &format!("{evs}/evs/v2/{project}/cloudvolumes/detail"), None, &[]).await;
    assert_eq!(prefixed.status, 404, "the service listener serves its API at the root only");
    let cinder =
        signed(&cloud, Method::GET, &format!("{evs}/../volume/v3/{project}/volumes"), None, &[]).await;
    assert_eq!(cinder.status, 404, "no other family is reachable through a service listener");
}

#[tokio::test]
async fn the_iam_listener_serves_the_catalog_to_an_aksk_signed_request() {
    let cloud = with_service_listeners().await;
    let iam = cloud.handle.service_url(Service::Iam).unwrap().to_string();
    let reply = signed(&cloud, Method::GET, &format!("{iam}/v3/auth/catalog"), None, &[]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let types: Vec<&str> =
        reply.body["catalog"].as_array().unwrap().iter().filter_map(|s| s["type"].as_str()).collect();
    assert!(types.contains(&"evs") && types.contains(&"ecs"), "{types:?}");
    let unsigned = cloud.http.get(format!("{iam}/v3/auth/catalog")).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
}

#[tokio::test]
async fn an_unsigned_payload_request_is_verified_without_its_body() {
    let cloud = with_service_listeners().await;
    let project = cloud.handle.demo().project_id;
    let evs = cloud.handle.service_url(Service::Evs).unwrap().to_string();
    let url = format!("{evs}/v2/{project}/cloudvolumes/detail");
    // Signed headers name UNSIGNED-PAYLOAD, but the driver's signer hashed the (empty) body:
    // the emulator accepts either payload hash a signer may have used.
    let reply =
        signed(&cloud, Method::GET, &url, None, &[("x-sdk-content-sha256", "UNSIGNED-PAYLOAD")]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test]
async fn ecs_serves_the_native_server_detail_and_evs_updates_answer_flat() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let project = cloud.handle.demo().project_id;
    let server = cloud.add_server("vm", "demo").await;
    let shown =
        cloud.huawei(&key, Method::GET, &format!("/ecs/v2.1/{project}/servers/{server}"), &[], None).await;
    assert_eq!((shown.status, shown.body["server"]["id"].as_str()), (200, Some(server.as_str())));
    let s = cloud.login("demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let path = format!("/evs/v2/{project}/cloudvolumes/{id}");
    let updated =
        cloud.huawei(&key, Method::PUT, &path, &[], Some(json!({"volume": {"name": "renamed"}}))).await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    assert_eq!(
        (updated.body["id"].as_str(), updated.body["name"].as_str()),
        (Some(id.as_str()), Some("renamed"))
    );
    assert!(!has(&updated.body, "volume"), "EVS answers the disk itself");
}

#[tokio::test]
async fn evs_quotas_list_only_evs_disk_types() {
    let cloud = TestCloud::start().await;
    let key = cloud.demo_key();
    let project = cloud.handle.demo().project_id;
    let s = cloud.login("demo").await;
    cloud.available_volume(&s, 1).await;
    let path = format!("/evs/v2/{project}/os-quota-sets/{project}");
    let reply = cloud.huawei(&key, Method::GET, &path, &[("usage", "True")], None).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let set = reply.body["quota_set"].as_object().unwrap();
    assert_eq!(set["volumes"]["in_use"], 1);
    assert!(set.contains_key("volumes_SSD") && set.contains_key("gigabytes_GPSSD"), "{set:?}");
    assert!(set.keys().all(|k| !k.contains("__DEFAULT__")), "a Cinder type leaked into EVS quotas: {set:?}");
}

#[tokio::test]
async fn group_views_have_no_links_and_a_project_only_from_3_58() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let gt = cloud
        .cinder(&admin, Method::POST, "/group_types", Some(json!({"group_type": {"name": "g"}})), "3.13")
        .await;
    let gt = gt.body["group_type"]["id"].as_str().unwrap().to_string();
    let types = cloud.cinder(&admin, Method::GET, "/types", None, "3.13").await;
    let vt = types.body["volume_types"][0]["id"].as_str().unwrap().to_string();
    let body = json!({"group": {"name": "grp", "group_type": gt, "volume_types": [vt]}});
    let made = cloud.cinder(&admin, Method::POST, "/groups", Some(body), "3.13").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    assert_eq!(made.body["group"].as_object().unwrap().len(), 2, "a create answers id and name only");
    let id = made.body["group"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&admin, &format!("/groups/{id}"), "group", "available").await;
    let old = cloud.cinder(&admin, Method::GET, &format!("/groups/{id}"), None, "3.13").await;
    let old = &old.body["group"];
    assert!(!has(old, "links") && !has(old, "project_id"), "{old}");
    let new = cloud.cinder(&admin, Method::GET, &format!("/groups/{id}"), None, "3.58").await;
    assert!(has(&new.body["group"], "project_id"));
    let listed = cloud.cinder(&admin, Method::GET, "/groups", None, "3.13").await;
    assert_eq!(listed.body["groups"][0], json!({"id": id, "name": "grp"}));
}

#[tokio::test]
async fn the_volume_summary_counts_the_callers_volumes_from_3_12() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    cloud.create_volume(&s, json!({"size": 2, "metadata": {"k": "v"}})).await;
    cloud.create_volume(&s, json!({"size": 3})).await;
    let admin = cloud.login("admin").await;
    cloud.create_volume(&admin, json!({"size": 5})).await;
    let summary = cloud.cinder(&s, Method::GET, "/volumes/summary", None, "3.36").await;
    assert_eq!(summary.status, 200);
    assert_eq!(
        summary.body["volume-summary"],
        json!({"total_count": 2, "total_size": 5, "metadata": {"k": ["v"]}})
    );
    let early = cloud.cinder(&s, Method::GET, "/volumes/summary", None, "3.11").await;
    assert_eq!(early.status, 404);
    let extensions = cloud.cinder(&s, Method::GET, "/extensions", None, "3.0").await;
    assert!(extensions.body["extensions"].as_array().is_some_and(|l| !l.is_empty()));
}

#[tokio::test]
async fn the_admin_api_adds_users_that_can_log_in() {
    let cloud = TestCloud::start().await;
    let body =
        json!({"name": "extra", "password": "extra-secret", "project": "extra-project", "roles": ["reader"]});
    let made = cloud.admin(Method::POST, "/users", Some(body)).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let s = cloud.login("extra").await;
    assert_eq!(s.project_id, made.body["user"]["project_id"].as_str().unwrap());
    let refused = cloud
        .admin(
            Method::POST,
            "/users",
            Some(json!({"name": "x", "password": "", "project": "p", "roles": []})),
        )
        .await;
    assert_eq!(refused.status, 400);
}
