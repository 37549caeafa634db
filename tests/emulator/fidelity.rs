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

// ---- Admin routes (issue 22): services, hosts, pools, capabilities, QoS specs, quota
// classes, volume transfers. ----

/// An emulator with a second member project, `alt`, next to `demo` and `admin`.
async fn with_alt() -> TestCloud {
    TestCloud::start_with(|c| {
        c.users.push(cinder_evs_emulator::config::UserConfig {
            name: "alt".into(),
            password: "alt-secret".into(),
            project: "alt".into(),
            domain: "Default".into(),
            roles: vec!["member".into(), "reader".into()],
            app_credential: None,
        });
    })
    .await
}

#[tokio::test]
async fn admin_only_routes_answer_403_to_a_member_and_change_nothing() {
    let cloud = TestCloud::start().await;
    let member = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let calls: &[(Method, &str, Option<Value>)] = &[
        (Method::GET, "/os-services", None),
        (
            Method::PUT,
            "/os-services/disable",
            Some(json!({"host": "emulator@lvmdriver-1", "binary": "cinder-volume"})),
        ),
        (Method::PUT, "/os-services/freeze", Some(json!({"host": "emulator@lvmdriver-1"}))),
        (Method::GET, "/os-hosts", None),
        (Method::GET, "/os-hosts/emulator@lvmdriver-1", None),
        (Method::GET, "/scheduler-stats/get_pools?detail=True", None),
        (Method::GET, "/capabilities/emulator@lvmdriver-1", None),
        (Method::GET, "/qos-specs", None),
        (Method::POST, "/qos-specs", Some(json!({"qos_specs": {"name": "sneaky", "read_iops_sec": "1"}}))),
        (Method::GET, "/os-quota-class-sets/default", None),
        (Method::PUT, "/os-quota-class-sets/default", Some(json!({"quota_class_set": {"volumes": 100000}}))),
    ];
    for (method, path, body) in calls {
        let reply = cloud.cinder(&member, method.clone(), path, body.clone(), "3.70").await;
        assert_eq!(reply.status, 403, "{method} {path} as a member: {:?}", reply.body);
        assert!(reply.body["forbidden"]["message"].as_str().unwrap().starts_with("Policy doesn't allow"));
    }
    let qos = cloud.cinder(&admin, Method::GET, "/qos-specs", None, "3.0").await;
    assert_eq!(qos.body["qos_specs"], json!([]), "the member's QoS create left nothing");
    let class = cloud.cinder(&admin, Method::GET, "/os-quota-class-sets/default", None, "3.0").await;
    assert_eq!(class.body["quota_class_set"]["volumes"], 10, "the member's quota class update left nothing");
    let services = cloud.cinder(&admin, Method::GET, "/os-services?binary=cinder-volume", None, "3.0").await;
    assert_eq!(services.body["services"][0]["status"], "enabled");
    assert_eq!(services.body["services"][0]["frozen"], false);
}

#[tokio::test]
async fn services_filter_by_host_at_host_level_and_by_binary() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let all = cloud.cinder(&admin, Method::GET, "/os-services", None, "3.0").await;
    assert_eq!(all.status, 200);
    let binaries: Vec<&str> =
        all.body["services"].as_array().unwrap().iter().map(|s| s["binary"].as_str().unwrap()).collect();
    assert_eq!(binaries, ["cinder-scheduler", "cinder-volume", "cinder-backup"]);
    assert!(!has(&all.body["services"][0], "cluster"), "cluster is 3.7+");
    let on_host = cloud
        .cinder(&admin, Method::GET, "/os-services?host=emulator&binary=cinder-volume", None, "3.7")
        .await;
    let services = on_host.body["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "host=emulator matches the backend emulator@lvmdriver-1");
    assert_eq!(services[0]["host"], "emulator@lvmdriver-1");
    assert!(has(&services[0], "cluster"));
    let prefix = cloud.cinder(&admin, Method::GET, "/os-services?host=emul", None, "3.0").await;
    assert_eq!(prefix.body["services"], json!([]), "a host prefix is no host");
}

#[tokio::test]
async fn a_disabled_service_with_a_reason_is_listed_so_and_survives_a_restart() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let body =
        json!({"host": "emulator@lvmdriver-1", "binary": "cinder-volume", "disabled_reason": "maintenance"});
    let disabled =
        cloud.cinder(&admin, Method::PUT, "/os-services/disable-log-reason", Some(body), "3.0").await;
    assert_eq!(disabled.status, 200);
    assert_eq!(disabled.body["disabled"], true);
    let no_reason =
        json!({"host": "emulator@lvmdriver-1", "binary": "cinder-volume", "disabled_reason": null});
    let refused =
        cloud.cinder(&admin, Method::PUT, "/os-services/disable-log-reason", Some(no_reason), "3.0").await;
    assert_eq!(refused.status, 400);
    let unknown = json!({"host": "nowhere", "binary": "cinder-volume"});
    assert_eq!(
        cloud.cinder(&admin, Method::PUT, "/os-services/enable", Some(unknown), "3.0").await.status,
        404
    );
    let frozen = cloud
        .cinder(&admin, Method::PUT, "/os-services/freeze", Some(json!({"host": "nowhere"})), "3.0")
        .await;
    assert_eq!(frozen.status, 400);
    let cloud = cloud.restart().await;
    let admin = cloud.login("admin").await;
    let listed = cloud.cinder(&admin, Method::GET, "/os-services?binary=cinder-volume", None, "3.0").await;
    assert_eq!(listed.body["services"][0]["status"], "disabled");
    assert_eq!(listed.body["services"][0]["disabled_reason"], "maintenance");
    let hosts = cloud.cinder(&admin, Method::GET, "/os-hosts", None, "3.0").await;
    let volume_host =
        hosts.body["hosts"].as_array().unwrap().iter().find(|h| h["service"] == "cinder-volume").unwrap();
    assert_eq!(volume_host["service-state"], "disabled");
}

#[tokio::test]
async fn a_volume_host_shows_its_usage_as_strings_and_an_unknown_host_is_404() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    cloud.available_volume(&demo, 2).await;
    cloud.available_volume(&demo, 3).await;
    let shown = cloud.cinder(&admin, Method::GET, "/os-hosts/emulator@lvmdriver-1", None, "3.0").await;
    assert_eq!(shown.status, 200);
    let rows = shown.body["host"].as_array().unwrap();
    assert_eq!(rows[0]["resource"]["project"], "(total)");
    assert_eq!(rows[0]["resource"]["volume_count"], "2");
    assert_eq!(rows[0]["resource"]["total_volume_gb"], "5");
    assert_eq!(rows[1]["resource"]["project"], json!(demo.project_id));
    let scheduler = cloud.cinder(&admin, Method::GET, "/os-hosts/emulator", None, "3.0").await;
    assert_eq!(scheduler.status, 404, "only a volume host has usage: {:?}", scheduler.body);
    assert_eq!(scheduler.body["itemNotFound"]["message"], "Host not found");
}

#[tokio::test]
async fn pools_and_capabilities_report_the_same_backend() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let plain = cloud.cinder(&admin, Method::GET, "/scheduler-stats/get_pools", None, "3.0").await;
    assert_eq!(plain.body, json!({"pools": [{"name": "emulator@lvmdriver-1#lvmdriver-1"}]}));
    let detail =
        cloud.cinder(&admin, Method::GET, "/scheduler-stats/get_pools?detail=True", None, "3.0").await;
    let pool = &detail.body["pools"][0]["capabilities"];
    let caps = cloud
        .cinder(&admin, Method::GET, "/capabilities/emulator@lvmdriver-1#lvmdriver-1", None, "3.0")
        .await;
    assert_eq!(caps.status, 200);
    for key in ["vendor_name", "volume_backend_name", "storage_protocol", "driver_version"] {
        assert_eq!(pool[key], caps.body[key], "{key}");
    }
    assert_eq!(caps.body["namespace"], "OS::Storage::Capabilities::lvmdriver-1");
    let missing = cloud.cinder(&admin, Method::GET, "/capabilities/other-host", None, "3.0").await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn qos_specs_are_created_keyed_associated_and_deleted_with_cinders_codes() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let body = json!({"qos_specs": {"name": "gold", "consumer": "front-end", "read_iops_sec": "2000"}});
    let made = cloud.cinder(&admin, Method::POST, "/qos-specs", Some(body.clone()), "3.0").await;
    assert_eq!(made.status, 200);
    assert_eq!(made.body["qos_specs"]["specs"], json!({"read_iops_sec": "2000"}));
    assert!(made.body["links"].is_array());
    let id = made.body["qos_specs"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.cinder(&admin, Method::POST, "/qos-specs", Some(body), "3.0").await.status, 409);
    let set = cloud
        .cinder(
            &admin,
            Method::PUT,
            &format!("/qos-specs/{id}"),
            Some(json!({"qos_specs": {"iops_bytes": "500"}})),
            "3.0",
        )
        .await;
    assert_eq!((set.status, set.body.clone()), (200, json!({"qos_specs": {"iops_bytes": "500"}})));
    let unset_path = format!("/qos-specs/{id}/delete_keys");
    let unset =
        |keys: Value| cloud.cinder(&admin, Method::PUT, &unset_path, Some(json!({"keys": keys})), "3.0");
    assert_eq!(unset(json!(["no-such-key"])).await.status, 404);
    assert_eq!(unset(json!(["iops_bytes"])).await.status, 202);
    let vtype = cloud
        .cinder(&admin, Method::POST, "/types", Some(json!({"volume_type": {"name": "qos-type"}})), "3.0")
        .await
        .body["volume_type"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let associate = cloud
        .cinder(&admin, Method::GET, &format!("/qos-specs/{id}/associate?vol_type_id={vtype}"), None, "3.0")
        .await;
    assert_eq!(associate.status, 202);
    let associations =
        cloud.cinder(&admin, Method::GET, &format!("/qos-specs/{id}/associations"), None, "3.0").await;
    assert_eq!(
        associations.body["qos_associations"],
        json!([{"association_type": "volume_type", "name": "qos-type", "id": vtype}])
    );
    let other = cloud
        .cinder(&admin, Method::POST, "/qos-specs", Some(json!({"qos_specs": {"name": "silver"}})), "3.0")
        .await;
    assert_eq!(other.body["qos_specs"]["consumer"], "back-end", "the default consumer");
    let other_id = other.body["qos_specs"]["id"].as_str().unwrap();
    let taken = cloud
        .cinder(
            &admin,
            Method::GET,
            &format!("/qos-specs/{other_id}/associate?vol_type_id={vtype}"),
            None,
            "3.0",
        )
        .await;
    assert_eq!(taken.status, 400, "a type carries one set of specs");
    let no_type = cloud.cinder(&admin, Method::GET, &format!("/qos-specs/{id}/associate"), None, "3.0").await;
    assert_eq!(no_type.status, 400);
    assert_eq!(
        cloud.cinder(&admin, Method::DELETE, &format!("/qos-specs/{id}"), None, "3.0").await.status,
        400,
        "in use"
    );
    let forced =
        cloud.cinder(&admin, Method::DELETE, &format!("/qos-specs/{id}?force=True"), None, "3.0").await;
    assert_eq!(forced.status, 202);
    assert_eq!(cloud.cinder(&admin, Method::GET, &format!("/qos-specs/{id}"), None, "3.0").await.status, 404);
}

#[tokio::test]
async fn a_type_shows_admins_the_qos_specs_associated_with_it_and_members_nothing() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let specs = cloud
        .cinder(&admin, Method::POST, "/qos-specs", Some(json!({"qos_specs": {"name": "bronze"}})), "3.0")
        .await;
    let qos = specs.body["qos_specs"]["id"].as_str().unwrap().to_string();
    let made = cloud
        .cinder(&admin, Method::POST, "/types", Some(json!({"volume_type": {"name": "metered"}})), "3.0")
        .await;
    let vtype = made.body["volume_type"]["id"].as_str().unwrap().to_string();
    let type_path = format!("/types/{vtype}");
    let shown = |who| cloud.cinder(who, Method::GET, &type_path, None, "3.0");
    assert_eq!(shown(&admin).await.body["volume_type"]["qos_specs_id"], Value::Null, "none yet");
    let path = format!("/qos-specs/{qos}/associate?vol_type_id={vtype}");
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.status, 202);
    assert_eq!(shown(&admin).await.body["volume_type"]["qos_specs_id"], json!(qos));
    let listed = cloud.cinder(&admin, Method::GET, "/types", None, "3.0").await;
    let entry =
        listed.body["volume_types"].as_array().unwrap().iter().find(|t| t["id"] == json!(vtype)).cloned();
    assert_eq!(entry.unwrap()["qos_specs_id"], json!(qos), "the list carries it too");
    let member_view = shown(&demo).await.body["volume_type"].clone();
    assert!(member_view.get("qos_specs_id").is_none(), "only admins see it: {member_view}");
    let path = format!("/qos-specs/{qos}/disassociate?vol_type_id={vtype}");
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.status, 202);
    assert_eq!(shown(&admin).await.body["volume_type"]["qos_specs_id"], Value::Null, "gone again");
}

#[tokio::test]
async fn qos_specs_with_a_bad_consumer_an_oversize_name_or_a_non_string_value_are_refused() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    for specs in [
        json!({"name": "a", "consumer": "everyone"}),
        json!({"name": "n".repeat(256)}),
        json!({"name": "   "}),
        json!({"name": "nul\u{0}name"}),
        json!({"name": "b", "read_iops_sec": 5}),
        json!({"name": "c", "k": "v".repeat(256)}),
        json!({"consumer": "both"}),
    ] {
        let reply = cloud
            .cinder(&admin, Method::POST, "/qos-specs", Some(json!({"qos_specs": specs.clone()})), "3.0")
            .await;
        assert_eq!(reply.status, 400, "{specs}: {:?}", reply.body);
    }
    let listed = cloud.cinder(&admin, Method::GET, "/qos-specs", None, "3.0").await;
    assert_eq!(listed.body["qos_specs"], json!([]));
}

#[tokio::test]
async fn the_default_quota_class_sets_new_projects_defaults_and_survives_a_restart() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let body = json!({"quota_class_set": {"volumes": 17, "not_a_quota": 3}});
    let updated = cloud.cinder(&admin, Method::PUT, "/os-quota-class-sets/default", Some(body), "3.0").await;
    assert_eq!(updated.status, 200);
    assert_eq!(updated.body["quota_class_set"]["volumes"], 17);
    assert!(!has(&updated.body["quota_class_set"], "not_a_quota"), "unknown keys are ignored");
    assert!(!has(&updated.body["quota_class_set"], "id"));
    let cloud = cloud.restart().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let path = format!("/os-quota-sets/{}/defaults", demo.project_id);
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.body["quota_set"]["volumes"], 17);
    let path = format!("/os-quota-sets/{}", demo.project_id);
    assert_eq!(cloud.cinder(&demo, Method::GET, &path, None, "3.0").await.body["quota_set"]["volumes"], 17);
    let shown = cloud.cinder(&admin, Method::GET, "/os-quota-class-sets/default", None, "3.0").await;
    assert_eq!(shown.body["quota_class_set"]["id"], "default");
    assert_eq!(shown.body["quota_class_set"]["volumes"], 17);
}

#[tokio::test]
async fn quota_class_limits_below_minus_one_non_integers_and_oversize_class_names_are_refused() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    for value in [json!(-2), json!("many"), json!(1.5), json!(3_000_000_000_i64)] {
        let body = json!({"quota_class_set": {"volumes": value.clone()}});
        let reply =
            cloud.cinder(&admin, Method::PUT, "/os-quota-class-sets/default", Some(body), "3.0").await;
        assert_eq!(reply.status, 400, "{value}");
    }
    let long = "c".repeat(256);
    let body = json!({"quota_class_set": {"volumes": 1}});
    let reply =
        cloud.cinder(&admin, Method::PUT, &format!("/os-quota-class-sets/{long}"), Some(body), "3.0").await;
    assert_eq!(reply.status, 400);
    let shown = cloud.cinder(&admin, Method::GET, "/os-quota-class-sets/default", None, "3.0").await;
    assert_eq!(shown.body["quota_class_set"]["volumes"], 10);
}

async fn offer(cloud: &TestCloud, s: &testkit::emulator::Session, volume: &str) -> (String, String) {
    let body = json!({"transfer": {"volume_id": volume, "name": "gift"}});
    let made = cloud.cinder(s, Method::POST, "/os-volume-transfer", Some(body), "3.0").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    let t = &made.body["transfer"];
    (t["id"].as_str().unwrap().to_string(), t["auth_key"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn an_accepted_transfer_moves_the_volume_its_snapshots_and_their_quota_usage() {
    let cloud = with_alt().await;
    let (demo, alt, admin) =
        (cloud.login("demo").await, cloud.login("alt").await, cloud.login("admin").await);
    let volume = cloud.available_volume(&demo, 2).await;
    let snap = cloud
        .cinder(&demo, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": volume}})), "3.0")
        .await;
    let snap_id = snap.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&demo, &format!("/snapshots/{snap_id}"), "snapshot", "available").await;
    let (id, key) = offer(&cloud, &demo, &volume).await;
    let shown = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(shown.body["volume"]["status"], "awaiting-transfer");
    let usage = |project: String| {
        let admin = &admin;
        let cloud = &cloud;
        async move {
            let path = format!("/os-quota-sets/{project}?usage=True");
            cloud.cinder(admin, Method::GET, &path, None, "3.0").await.body["quota_set"].clone()
        }
    };
    let accepted = cloud
        .cinder(
            &alt,
            Method::POST,
            &format!("/os-volume-transfer/{id}/accept"),
            Some(json!({"accept": {"auth_key": key}})),
            "3.0",
        )
        .await;
    assert_eq!(accepted.status, 202);
    assert_eq!(accepted.body["transfer"]["volume_id"], json!(volume));
    let moved = cloud.cinder(&alt, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(moved.body["volume"]["status"], "available");
    assert_eq!(moved.body["volume"]["os-vol-tenant-attr:tenant_id"], json!(alt.project_id));
    let alt_snap = cloud.cinder(&alt, Method::GET, &format!("/snapshots/{snap_id}"), None, "3.0").await;
    assert_eq!(alt_snap.status, 200, "the snapshot came along");
    assert_eq!(
        cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.status,
        404
    );
    let (donor, taker) = (usage(demo.project_id.clone()).await, usage(alt.project_id.clone()).await);
    assert_eq!(
        (donor["volumes"]["in_use"].clone(), donor["gigabytes"]["in_use"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(
        (taker["volumes"]["in_use"].clone(), taker["gigabytes"]["in_use"].clone()),
        (json!(1), json!(4))
    );
    assert_eq!(taker["snapshots"]["in_use"], 1);
    let gone = cloud.cinder(&demo, Method::GET, &format!("/os-volume-transfer/{id}"), None, "3.0").await;
    assert_eq!(gone.status, 404, "an accepted transfer is over");
    let again = json!({"accept": {"auth_key": key}});
    let twice = cloud
        .cinder(&admin, Method::POST, &format!("/os-volume-transfer/{id}/accept"), Some(again), "3.0")
        .await;
    assert_eq!(twice.status, 404, "a transfer is accepted once");
}

#[tokio::test]
async fn accepting_with_a_wrong_key_is_refused_and_moves_nothing() {
    let cloud = with_alt().await;
    let (demo, alt) = (cloud.login("demo").await, cloud.login("alt").await);
    let volume = cloud.available_volume(&demo, 1).await;
    let (id, key) = offer(&cloud, &demo, &volume).await;
    let path = format!("/os-volume-transfer/{id}/accept");
    let mut wrong = key.clone();
    wrong.replace_range(0..1, if key.starts_with('0') { "1" } else { "0" });
    for bad in [
        json!({"accept": {"auth_key": wrong}}),
        json!({"accept": {"auth_key": ""}}),
        json!({"accept": {"auth_key": format!("{key}\u{0}")}}),
        json!({"accept": {}}),
        json!({"accept": {"auth_key": 7}}),
    ] {
        let reply = cloud.cinder(&alt, Method::POST, &path, Some(bad.clone()), "3.0").await;
        assert_eq!(reply.status, 400, "{bad}: {:?}", reply.body);
    }
    let still = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(still.body["volume"]["status"], "awaiting-transfer");
    assert_eq!(still.body["volume"]["os-vol-tenant-attr:tenant_id"], json!(demo.project_id));
    assert_eq!(cloud.cinder(&alt, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.status, 404);
}

#[tokio::test]
async fn another_projects_transfer_is_invisible_and_cannot_be_withdrawn_by_it() {
    let cloud = with_alt().await;
    let (demo, alt) = (cloud.login("demo").await, cloud.login("alt").await);
    let volume = cloud.available_volume(&demo, 1).await;
    let (id, _) = offer(&cloud, &demo, &volume).await;
    assert_eq!(
        cloud.cinder(&alt, Method::GET, &format!("/os-volume-transfer/{id}"), None, "3.0").await.status,
        404
    );
    assert_eq!(
        cloud.cinder(&alt, Method::DELETE, &format!("/os-volume-transfer/{id}"), None, "3.0").await.status,
        404
    );
    let listed = cloud.cinder(&alt, Method::GET, "/os-volume-transfer/detail", None, "3.0").await;
    assert_eq!(listed.body["transfers"], json!([]));
    let own = cloud.cinder(&demo, Method::GET, &format!("/os-volume-transfer/{id}"), None, "3.0").await;
    assert_eq!(own.status, 200, "the offer stands");
    let theirs = json!({"transfer": {"volume_id": volume}});
    let stolen = cloud.cinder(&alt, Method::POST, "/os-volume-transfer", Some(theirs), "3.0").await;
    assert_eq!(stolen.status, 404, "another project's volume cannot be offered");
}

#[tokio::test]
async fn the_auth_key_is_shown_only_at_create_and_never_saved() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let (id, key) = offer(&cloud, &demo, &volume).await;
    assert_eq!(key.len(), 16);
    for path in [
        format!("/os-volume-transfer/{id}"),
        "/os-volume-transfer".into(),
        "/os-volume-transfer/detail".into(),
    ] {
        let reply = cloud.cinder(&demo, Method::GET, &path, None, "3.70").await;
        assert!(!reply.body.to_string().contains("auth_key"), "{path}: {:?}", reply.body);
    }
    let state = std::fs::read_to_string(cloud.dir.path().join("state.json")).unwrap();
    assert!(state.contains(&id) && !state.contains(&key), "only a salted hash of the key is kept");
}

#[tokio::test]
async fn a_transfer_is_refused_for_a_busy_volume_an_oversize_or_nul_name_or_unknown_fields() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    for body in [
        json!({"transfer": {"volume_id": volume, "name": "n".repeat(256)}}),
        json!({"transfer": {"volume_id": volume, "name": "a\u{0}b"}}),
        json!({"transfer": {"volume_id": volume, "owner": "me"}}),
        json!({"transfer": {"volume_id": volume, "no_snapshots": true}}),
        json!({"transfer": {"volume_id": "not-a-uuid"}}),
        json!({"transfer": {}}),
    ] {
        let reply = cloud.cinder(&demo, Method::POST, "/os-volume-transfer", Some(body.clone()), "3.0").await;
        assert_eq!(reply.status, 400, "{body}: {:?}", reply.body);
    }
    offer(&cloud, &demo, &volume).await;
    let again = json!({"transfer": {"volume_id": volume}});
    let twice = cloud.cinder(&demo, Method::POST, "/os-volume-transfer", Some(again), "3.0").await;
    assert_eq!(twice.status, 400, "a volume awaiting transfer is not available");
    let deleted = cloud.cinder(&demo, Method::DELETE, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(deleted.status, 400, "a volume awaiting transfer cannot be deleted");
}

#[tokio::test]
async fn withdrawing_a_transfer_makes_the_volume_available_again() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let (id, _) = offer(&cloud, &demo, &volume).await;
    assert_eq!(
        cloud.cinder(&demo, Method::DELETE, &format!("/os-volume-transfer/{id}"), None, "3.0").await.status,
        202
    );
    let shown = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(shown.body["volume"]["status"], "available");
}

#[tokio::test]
async fn a_pending_transfer_survives_a_restart_and_is_accepted_after_it() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let (id, key) = offer(&cloud, &demo, &volume).await;
    let cloud = cloud.restart().await;
    let admin = cloud.login("admin").await;
    let accepted = cloud
        .cinder(
            &admin,
            Method::POST,
            &format!("/os-volume-transfer/{id}/accept"),
            Some(json!({"accept": {"auth_key": key}})),
            "3.0",
        )
        .await;
    assert_eq!(accepted.status, 202, "{:?}", accepted.body);
    let moved = cloud.cinder(&admin, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(moved.body["volume"]["os-vol-tenant-attr:tenant_id"], json!(admin.project_id));
}

#[tokio::test]
async fn accepting_beyond_the_takers_quota_is_413_and_moves_nothing() {
    let cloud = with_alt().await;
    let (demo, alt, admin) =
        (cloud.login("demo").await, cloud.login("alt").await, cloud.login("admin").await);
    let limit = json!({"quota_set": {"gigabytes": 1}});
    let path = format!("/os-quota-sets/{}", alt.project_id);
    assert_eq!(cloud.cinder(&admin, Method::PUT, &path, Some(limit), "3.0").await.status, 200);
    let volume = cloud.available_volume(&demo, 2).await;
    let (id, key) = offer(&cloud, &demo, &volume).await;
    let accept = json!({"accept": {"auth_key": key}});
    let reply = cloud
        .cinder(&alt, Method::POST, &format!("/os-volume-transfer/{id}/accept"), Some(accept), "3.0")
        .await;
    assert_eq!(reply.status, 413);
    let still = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await;
    assert_eq!(still.body["volume"]["status"], "awaiting-transfer");
}

#[tokio::test]
async fn the_volume_transfers_route_needs_3_55_and_shows_history_fields_from_3_57() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    assert_eq!(cloud.cinder(&demo, Method::GET, "/volume-transfers", None, "3.54").await.status, 404);
    let body = json!({"transfer": {"volume_id": volume, "no_snapshots": true}});
    let made = cloud.cinder(&demo, Method::POST, "/volume-transfers", Some(body), "3.55").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    assert_eq!(made.body["transfer"]["no_snapshots"], true);
    assert!(!has(&made.body["transfer"], "accepted"), "history fields are 3.57+");
    let id = made.body["transfer"]["id"].as_str().unwrap();
    let shown = cloud.cinder(&demo, Method::GET, &format!("/volume-transfers/{id}"), None, "3.57").await;
    let t = &shown.body["transfer"];
    assert_eq!((t["accepted"].clone(), t["destination_project_id"].clone()), (json!(false), Value::Null));
    assert_eq!(t["source_project_id"], json!(demo.project_id));
    let listed = cloud.cinder(&demo, Method::GET, "/volume-transfers", None, "3.57").await;
    assert!(!has(&listed.body["transfers"][0], "created_at"), "the plain list is a summary");
}

#[tokio::test]
async fn only_an_admin_creates_and_deletes_keystone_projects() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let url = cloud.url("/identity/v3/projects");
    let body = json!({"project": {"name": "fresh", "description": "d", "domain_id": "default"}});
    let denied = cloud.send(Method::POST, &url, Some(&demo.token), Some(body.clone()), &[]).await;
    assert_eq!(denied.status, 403);
    let made = cloud.send(Method::POST, &url, Some(&admin.token), Some(body.clone()), &[]).await;
    assert_eq!(made.status, 201, "{:?}", made.body);
    let id = made.body["project"]["id"].as_str().unwrap().to_string();
    assert_eq!(cloud.send(Method::POST, &url, Some(&admin.token), Some(body), &[]).await.status, 409);
    let huge = json!({"project": {"name": "p".repeat(65)}});
    assert_eq!(cloud.send(Method::POST, &url, Some(&admin.token), Some(huge), &[]).await.status, 400);
    let defaults =
        cloud.cinder(&admin, Method::GET, &format!("/os-quota-sets/{id}/defaults"), None, "3.0").await;
    assert_eq!(defaults.body["quota_set"]["volumes"], 10);
    let domains = cloud
        .send(Method::GET, &cloud.url("/identity/v3/domains?name=Default"), Some(&admin.token), None, &[])
        .await;
    assert_eq!(domains.body["domains"][0]["id"], "default");
    let one = format!("{url}/{id}");
    assert_eq!(cloud.send(Method::DELETE, &one, Some(&demo.token), None, &[]).await.status, 403);
    assert_eq!(cloud.send(Method::DELETE, &one, Some(&admin.token), None, &[]).await.status, 204);
    assert_eq!(cloud.send(Method::DELETE, &one, Some(&admin.token), None, &[]).await.status, 404);
    let users = format!("{url}/{}", demo.project_id);
    assert_eq!(cloud.send(Method::DELETE, &users, Some(&admin.token), None, &[]).await.status, 403);
}

// ---- Issue 22's verbs: each attack first, then the behaviour Cinder gives. ----

/// A member of a second project, to attack the first project's resources.
async fn intruder(cloud: &TestCloud) -> testkit::emulator::Session {
    let body = json!({"name": "intruder", "password": "intruder-secret", "project": "intruder-project", "roles": ["member"]});
    assert_eq!(cloud.admin(Method::POST, "/users", Some(body)).await.status, 201);
    cloud.login("intruder").await
}

async fn private_type(cloud: &TestCloud, admin: &testkit::emulator::Session, name: &str) -> String {
    let body = json!({"volume_type": {"name": name, "os-volume-type-access:is_public": false}});
    let made = cloud.cinder(admin, Method::POST, "/types", Some(body), "3.0").await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    made.body["volume_type"]["id"].as_str().unwrap().to_string()
}

async fn type_action(
    cloud: &TestCloud,
    s: &testkit::emulator::Session,
    type_id: &str,
    verb: &str,
    project: &str,
) -> Reply {
    let body = json!({ verb: {"project": project} });
    cloud.cinder(s, Method::POST, &format!("/types/{type_id}/action"), Some(body), "3.0").await
}

#[tokio::test]
async fn another_projects_private_type_is_not_found_until_shared_and_again_once_unshared() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let id = private_type(&cloud, &admin, "private-gold").await;
    let create = json!({"volume": {"size": 1, "volume_type": id}});
    let refused = cloud.cinder(&demo, Method::POST, "/volumes", Some(create.clone()), "3.0").await;
    assert_eq!(refused.status, 404, "{:?}", refused.body);
    assert_eq!(cloud.cinder(&demo, Method::GET, &format!("/types/{id}"), None, "3.0").await.status, 404);
    let by_name = json!({"volume": {"size": 1, "volume_type": "private-gold"}});
    assert_eq!(cloud.cinder(&demo, Method::POST, "/volumes", Some(by_name), "3.0").await.status, 404);
    let listed = cloud.cinder(&demo, Method::GET, "/types", None, "3.0").await;
    assert!(!listed.body["volume_types"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()));
    let before = cloud.cinder(&demo, Method::GET, "/volumes", None, "3.0").await.body;
    assert_eq!(before["volumes"], json!([]), "the refused creates left nothing behind");

    assert_eq!(type_action(&cloud, &admin, &id, "addProjectAccess", &demo.project_id).await.status, 202);
    let made = cloud.cinder(&demo, Method::POST, "/volumes", Some(create.clone()), "3.0").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    let access =
        cloud.cinder(&admin, Method::GET, &format!("/types/{id}/os-volume-type-access"), None, "3.0").await;
    assert_eq!(
        access.body["volume_type_access"],
        json!([{"volume_type_id": id, "project_id": demo.project_id}])
    );
    let again = type_action(&cloud, &admin, &id, "addProjectAccess", &demo.project_id).await;
    assert_eq!(again.status, 409);
    for unknown in ["demo", "no-such-project", ""] {
        let reply = type_action(&cloud, &admin, &id, "addProjectAccess", unknown).await;
        assert!([400, 404].contains(&reply.status), "{unknown}: {:?}", reply.body);
    }

    assert_eq!(type_action(&cloud, &admin, &id, "removeProjectAccess", &demo.project_id).await.status, 202);
    assert_eq!(cloud.cinder(&demo, Method::POST, "/volumes", Some(create), "3.0").await.status, 404);
    let gone = type_action(&cloud, &admin, &id, "removeProjectAccess", &demo.project_id).await;
    assert_eq!(gone.status, 404);
}

#[tokio::test]
async fn a_member_cannot_share_a_private_type_or_read_its_access_list() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let id = private_type(&cloud, &admin, "private-silver").await;
    let shared = type_action(&cloud, &demo, &id, "addProjectAccess", &demo.project_id).await;
    assert_eq!(shared.status, 403);
    let path = format!("/types/{id}/os-volume-type-access");
    assert_eq!(cloud.cinder(&demo, Method::GET, &path, None, "3.0").await.status, 403);
    let access = cloud.cinder(&admin, Method::GET, &path, None, "3.0").await;
    assert_eq!(access.body["volume_type_access"], json!([]), "the refused share changed nothing");
    let create = json!({"volume": {"size": 1, "volume_type": id}});
    assert_eq!(cloud.cinder(&demo, Method::POST, "/volumes", Some(create), "3.0").await.status, 404);
}

#[tokio::test]
async fn a_public_type_has_no_access_list_and_cannot_be_shared() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let made = cloud
        .cinder(&admin, Method::POST, "/types", Some(json!({"volume_type": {"name": "open"}})), "3.0")
        .await;
    let id = made.body["volume_type"]["id"].as_str().unwrap().to_string();
    let path = format!("/types/{id}/os-volume-type-access");
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.status, 404);
    assert_eq!(type_action(&cloud, &admin, &id, "addProjectAccess", &admin.project_id).await.status, 400);
}

#[tokio::test]
async fn type_access_survives_a_restart() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let id = private_type(&cloud, &admin, "private-kept").await;
    assert_eq!(type_action(&cloud, &admin, &id, "addProjectAccess", &demo.project_id).await.status, 202);
    let cloud = cloud.restart().await;
    let demo = cloud.login("demo").await;
    let shown = cloud.cinder(&demo, Method::GET, &format!("/types/{id}"), None, "3.0").await;
    assert_eq!(shown.status, 200, "{:?}", shown.body);
}

#[tokio::test]
async fn force_delete_is_refused_to_members_and_leaves_the_volume_alone() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let other = intruder(&cloud).await;
    let id = cloud.available_volume(&demo, 1).await;
    let body = Some(json!({"os-force_delete": {}}));
    let path = format!("/volumes/{id}/action");
    // Another project's member, then the owner: both are members, so policy refuses first.
    let foreign = cloud.cinder(&other, Method::POST, &path, body.clone(), "3.0").await;
    assert_eq!(foreign.status, 403, "{:?}", foreign.body);
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, body.clone(), "3.0").await.status, 403);
    let still = cloud.cinder(&demo, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(still.body["volume"]["status"], "available");
    let admin = cloud.login("admin").await;
    assert_eq!(cloud.cinder(&admin, Method::POST, &path, body, "3.0").await.status, 202);
    cloud.wait_gone(&demo, &format!("/volumes/{id}")).await;
}

#[tokio::test]
async fn force_delete_still_refuses_a_volume_with_snapshots() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let id = cloud.available_volume(&demo, 1).await;
    let snap = cloud
        .cinder(&demo, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": id}})), "3.0")
        .await;
    assert_eq!(snap.status, 202);
    let path = format!("/volumes/{id}/action");
    let refused =
        cloud.cinder(&admin, Method::POST, &path, Some(json!({"os-force_delete": {}})), "3.0").await;
    assert_eq!(refused.status, 400, "{:?}", refused.body);
}

async fn available_backup(cloud: &TestCloud, s: &testkit::emulator::Session, volume: &str) -> String {
    let body = json!({"backup": {"volume_id": volume, "name": "b"}});
    let made = cloud.cinder(s, Method::POST, "/backups", Some(body), "3.43").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    let id = made.body["backup"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(s, &format!("/backups/{id}"), "backup", "available").await;
    cloud.wait_status(s, &format!("/volumes/{volume}"), "volume", "available").await;
    id
}

fn record(value: &Value) -> String {
    use base64_for_tests::encode;
    encode(value.to_string().as_bytes())
}

/// The test side's own base64, so the emulator's codec is checked against an independent one.
mod base64_for_tests {
    pub fn encode(data: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let n =
                (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
            for i in 0..4 {
                out.push(if i <= c.len() { A[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' });
            }
        }
        out
    }
}

#[tokio::test]
async fn import_record_refuses_hostile_records_and_members() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let backup = available_backup(&cloud, &demo, &volume).await;
    let service = "cinder.backup.drivers.posix.PosixBackupDriver";
    let import = |url: String| json!({"backup-record": {"backup_service": service, "backup_url": url}});
    let fresh = "7f1b3c2e-9a4d-4e5f-8a6b-1c2d3e4f5a6b";
    let hostile = [
        "A".repeat(200_000),
        "not base64 at all!".to_string(),
        record(&json!("a string, not a record")).replace('=', ""),
        base64_for_tests::encode(b"{ not json"),
        record(&json!({"id": fresh, "service_metadata": "../../../etc/passwd", "size": 1})),
        record(&json!({"id": "../x", "service_metadata": backup})),
        record(&json!({"id": backup, "service_metadata": backup})),
        record(&json!({"id": fresh, "service_metadata": "00000000-0000-4000-8000-000000000000"})),
    ];
    for url in hostile {
        let reply = cloud
            .cinder(&admin, Method::POST, "/backups/import_record", Some(import(url.clone())), "3.0")
            .await;
        assert_eq!(reply.status, 400, "{} -> {:?}", &url[..url.len().min(60)], reply.body);
    }
    let wrong_service = json!({"backup-record": {"backup_service": "x", "backup_url": record(&json!({}))}});
    let reply =
        cloud.cinder(&admin, Method::POST, "/backups/import_record", Some(wrong_service), "3.0").await;
    assert_eq!(reply.status, 404);
    let good = import(record(&json!({"id": fresh, "service_metadata": backup, "volume_id": volume})));
    let member = cloud.cinder(&demo, Method::POST, "/backups/import_record", Some(good), "3.0").await;
    assert_eq!(member.status, 403);
    let all = cloud.cinder(&admin, Method::GET, "/backups?all_tenants=1", None, "3.0").await;
    assert_eq!(all.body["backups"].as_array().unwrap().len(), 1, "nothing was imported: {:?}", all.body);
}

#[tokio::test]
async fn an_imported_record_naming_another_projects_volume_touches_that_volume_not_at_all() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let backup = available_backup(&cloud, &demo, &volume).await;
    let exported =
        cloud.cinder(&admin, Method::GET, &format!("/backups/{backup}/export_record"), None, "3.0").await;
    assert_eq!(exported.status, 200, "{:?}", exported.body);
    let member =
        cloud.cinder(&demo, Method::GET, &format!("/backups/{backup}/export_record"), None, "3.0").await;
    assert_eq!(member.status, 403);
    let before = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.body;
    let fresh = "0b9e2f4a-1c3d-4e5f-9a7b-2c4d6e8f0a1b";
    let url = record(
        &json!({"id": fresh, "service_metadata": backup, "volume_id": volume, "project_id": demo.project_id}),
    );
    let body = json!({"backup-record": {"backup_service": exported.body["backup-record"]["backup_service"], "backup_url": url}});
    let imported = cloud.cinder(&admin, Method::POST, "/backups/import_record", Some(body), "3.0").await;
    assert_eq!(imported.status, 201, "{:?}", imported.body);
    assert_eq!(imported.body["backup"]["id"], fresh);
    let shown = cloud.wait_status(&admin, &format!("/backups/{fresh}"), "backup", "available").await;
    assert_eq!(shown["id"], fresh);
    // The record's project_id is not obeyed: the backup is the importer's, invisible to demo.
    assert_eq!(cloud.cinder(&demo, Method::GET, &format!("/backups/{fresh}"), None, "3.0").await.status, 404);
    let after = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.body;
    assert_eq!(before, after);
}

#[tokio::test]
async fn backup_update_is_3_9_and_the_owners_only() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let other = intruder(&cloud).await;
    let volume = cloud.available_volume(&demo, 1).await;
    let backup = available_backup(&cloud, &demo, &volume).await;
    let path = format!("/backups/{backup}");
    let body = json!({"backup": {"name": "renamed", "metadata": {"k": "v"}}});
    assert_eq!(cloud.cinder(&demo, Method::PUT, &path, Some(body.clone()), "3.8").await.status, 404);
    assert_eq!(cloud.cinder(&other, Method::PUT, &path, Some(body.clone()), "3.43").await.status, 404);
    let extra = json!({"backup": {"status": "available"}});
    assert_eq!(cloud.cinder(&demo, Method::PUT, &path, Some(extra), "3.43").await.status, 400);
    let updated = cloud.cinder(&demo, Method::PUT, &path, Some(body), "3.43").await;
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let keys: Vec<&String> = updated.body["backup"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "links", "name"], "the summary view only");
    let shown = cloud.cinder(&demo, Method::GET, &path, None, "3.43").await;
    assert_eq!(shown.body["backup"]["name"], "renamed");
    assert_eq!(shown.body["backup"]["metadata"], json!({"k": "v"}));
}

#[tokio::test]
async fn a_backup_restored_to_a_new_volume_carries_the_source_volumes_metadata() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let volume = cloud.create_volume(&demo, json!({"size": 1, "metadata": {"vol-meta": "v1"}})).await;
    cloud.wait_status(&demo, &format!("/volumes/{volume}"), "volume", "available").await;
    let backup = available_backup(&cloud, &demo, &volume).await;
    let restored = cloud
        .cinder(
            &demo,
            Method::POST,
            &format!("/backups/{backup}/restore"),
            Some(json!({"restore": {}})),
            "3.0",
        )
        .await;
    assert_eq!(restored.status, 202, "{:?}", restored.body);
    let id = restored.body["restore"]["volume_id"].as_str().unwrap().to_string();
    let shown = cloud.wait_status(&demo, &format!("/volumes/{id}"), "volume", "available").await;
    assert_eq!(shown["metadata"]["vol-meta"], "v1");
}

#[tokio::test]
async fn snapshot_status_updates_follow_cinders_status_map_for_the_owner_only() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let other = intruder(&cloud).await;
    let volume = cloud.available_volume(&demo, 1).await;
    let made = cloud
        .cinder(&demo, Method::POST, "/snapshots", Some(json!({"snapshot": {"volume_id": volume}})), "3.0")
        .await;
    let id = made.body["snapshot"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&demo, &format!("/snapshots/{id}"), "snapshot", "available").await;
    let path = format!("/snapshots/{id}/action");
    let update =
        |status: &str| Some(json!({"os-update_snapshot_status": {"status": status, "progress": "80%"}}));
    // From available nothing may be reported.
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, update("error"), "3.0").await.status, 400);
    let reset = Some(json!({"os-reset_status": {"status": "creating"}}));
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, reset.clone(), "3.0").await.status, 403);
    assert_eq!(cloud.cinder(&admin, Method::POST, &path, reset, "3.0").await.status, 202);
    assert_eq!(cloud.cinder(&other, Method::POST, &path, update("error"), "3.0").await.status, 404);
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, update("deleting"), "3.0").await.status, 400);
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, update("error"), "3.0").await.status, 202);
    let shown = cloud.cinder(&demo, Method::GET, &format!("/snapshots/{id}"), None, "3.0").await;
    assert_eq!(shown.body["snapshot"]["status"], "error");
    assert_eq!(shown.body["snapshot"]["os-extended-snapshot-attributes:progress"], "80%");
}

#[tokio::test]
async fn manage_refuses_members_and_refs_that_name_a_managed_volume() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let admin = cloud.login("admin").await;
    let volume = cloud.available_volume(&demo, 1).await;
    let before = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.body;
    let manage =
        |name: String| json!({"volume": {"host": "emulator@lvm#pool", "ref": {"source-name": name}}});
    let member =
        cloud.cinder(&demo, Method::POST, "/os-volume-manage", Some(manage("x".into())), "3.0").await;
    assert_eq!(member.status, 403);
    for name in [format!("volume-{volume}"), volume.clone(), format!("../volumes/{volume}"), "..".into()] {
        let reply =
            cloud.cinder(&admin, Method::POST, "/os-volume-manage", Some(manage(name.clone())), "3.0").await;
        assert_eq!(reply.status, 400, "{name}: {:?}", reply.body);
        let v38 = cloud
            .cinder(&admin, Method::POST, "/manageable_volumes", Some(manage(name.clone())), "3.8")
            .await;
        assert_eq!(v38.status, 400, "{name}: {:?}", v38.body);
    }
    let old =
        cloud.cinder(&admin, Method::POST, "/manageable_volumes", Some(manage("x".into())), "3.7").await;
    assert_eq!(old.status, 404, "the 3.8 spelling does not exist before 3.8");
    let after = cloud.cinder(&demo, Method::GET, &format!("/volumes/{volume}"), None, "3.0").await.body;
    assert_eq!(before, after);
}

#[tokio::test]
async fn default_types_are_admin_3_62_and_steer_a_projects_untyped_volumes_across_a_restart() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let path = format!("/default-types/{}", demo.project_id);
    let body = json!({"default_type": {"volume_type": "fast"}});
    let member = cloud.cinder(&demo, Method::PUT, &path, Some(body.clone()), "3.62").await;
    assert_eq!(member.status, 403, "{:?}", member.body);
    assert_eq!(cloud.cinder(&admin, Method::PUT, &path, Some(body.clone()), "3.61").await.status, 404);
    let unknown =
        cloud.cinder(&admin, Method::PUT, "/default-types/no-such-project", Some(body.clone()), "3.62").await;
    assert_eq!(unknown.status, 404);
    let set = cloud.cinder(&admin, Method::PUT, &path, Some(body), "3.62").await;
    assert_eq!(set.status, 200, "{:?}", set.body);
    assert_eq!(set.body["default_type"]["project_id"], demo.project_id.as_str());
    let cloud = cloud.restart().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let listed = cloud.cinder(&admin, Method::GET, "/default-types", None, "3.62").await;
    assert_eq!(listed.body["default_types"].as_array().unwrap().len(), 1);
    let id = cloud.create_volume(&demo, json!({"size": 1})).await;
    let shown = cloud.cinder(&demo, Method::GET, &format!("/volumes/{id}"), None, "3.0").await;
    assert_eq!(shown.body["volume"]["volume_type"], "fast");
    assert_eq!(cloud.cinder(&admin, Method::DELETE, &path, None, "3.62").await.status, 204);
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.62").await.status, 404);
}

#[tokio::test]
async fn type_encryption_is_admin_only_and_answers_cinders_views() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let made = cloud
        .cinder(&admin, Method::POST, "/types", Some(json!({"volume_type": {"name": "enc"}})), "3.0")
        .await;
    let id = made.body["volume_type"]["id"].as_str().unwrap().to_string();
    let path = format!("/types/{id}/encryption");
    let spec = json!({"encryption": {"provider": "luks", "cipher": "aes-xts-plain64", "key_size": 256, "control_location": "front-end"}});
    assert_eq!(cloud.cinder(&demo, Method::POST, &path, Some(spec.clone()), "3.0").await.status, 403);
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.body, json!({}));
    let bad = json!({"encryption": {"provider": "luks", "control_location": "middle"}});
    assert_eq!(cloud.cinder(&admin, Method::POST, &path, Some(bad), "3.0").await.status, 400);
    let created = cloud.cinder(&admin, Method::POST, &path, Some(spec.clone()), "3.0").await;
    assert_eq!(created.status, 200, "{:?}", created.body);
    let encryption_id = created.body["encryption"]["encryption_id"].as_str().unwrap().to_string();
    assert_eq!(created.body["encryption"]["volume_type_id"], id.as_str());
    assert_eq!(cloud.cinder(&admin, Method::POST, &path, Some(spec), "3.0").await.status, 400);
    let update = json!({"encryption": {"key_size": 128, "control_location": "back-end"}});
    let item = format!("{path}/{encryption_id}");
    let updated = cloud.cinder(&admin, Method::PUT, &item, Some(update.clone()), "3.0").await;
    assert_eq!(updated.body, update);
    let cipher = cloud.cinder(&admin, Method::GET, &format!("{path}/cipher"), None, "3.0").await;
    assert_eq!(cipher.body, json!({"cipher": "aes-xts-plain64"}));
    let shown = cloud.cinder(&admin, Method::GET, &path, None, "3.0").await;
    assert_eq!(shown.body["key_size"], 128);
    assert_eq!(cloud.cinder(&demo, Method::DELETE, &item, None, "3.0").await.status, 403);
    assert_eq!(cloud.cinder(&admin, Method::DELETE, &item, None, "3.0").await.status, 202);
    assert_eq!(cloud.cinder(&admin, Method::GET, &path, None, "3.0").await.body, json!({}));
}

#[tokio::test]
async fn an_admin_lists_one_projects_volumes_and_resets_its_groups() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    let volume = cloud.available_volume(&demo, 1).await;
    cloud.available_volume(&admin, 1).await;
    let path = format!("/volumes/detail?all_tenants=1&project_id={}", demo.project_id);
    let listed = cloud.cinder(&admin, Method::GET, &path, None, "3.0").await;
    let ids: Vec<&str> =
        listed.body["volumes"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [volume.as_str()]);
    let member = cloud.cinder(&demo, Method::GET, "/volumes?all_tenants=1&project_id=x", None, "3.31").await;
    assert_eq!(member.status, 400, "a member may not filter by project");

    let body =
        json!({"group": {"group_type": "default_group_type", "volume_types": ["__DEFAULT__"], "name": "g"}});
    let group = cloud.cinder(&demo, Method::POST, "/groups", Some(body), "3.20").await;
    assert_eq!(group.status, 202, "{:?}", group.body);
    let gid = group.body["group"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&demo, &format!("/groups/{gid}"), "group", "available").await;
    let reset = |status: &str| Some(json!({"reset_status": {"status": status}}));
    let action = format!("/groups/{gid}/action");
    assert_eq!(cloud.cinder(&demo, Method::POST, &action, reset("error"), "3.20").await.status, 403);
    assert_eq!(cloud.cinder(&admin, Method::POST, &action, reset("bogus"), "3.20").await.status, 400);
    assert_eq!(cloud.cinder(&admin, Method::POST, &action, reset("error"), "3.20").await.status, 202);
    let shown = cloud.cinder(&demo, Method::GET, &format!("/groups/{gid}"), None, "3.20").await;
    assert_eq!(shown.body["group"]["status"], "error");
}

#[tokio::test]
async fn a_group_is_created_from_another_group_with_clones_of_its_volumes() {
    let cloud = TestCloud::start().await;
    let demo = cloud.login("demo").await;
    let other = intruder(&cloud).await;
    let body =
        json!({"group": {"group_type": "default_group_type", "volume_types": ["__DEFAULT__"], "name": "g"}});
    let group = cloud.cinder(&demo, Method::POST, "/groups", Some(body), "3.14").await;
    let gid = group.body["group"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&demo, &format!("/groups/{gid}"), "group", "available").await;
    let body = json!({"volume": {"size": 1, "group_id": gid, "volume_type": "__DEFAULT__"}});
    let made = cloud.cinder(&demo, Method::POST, "/volumes", Some(body), "3.14").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    let member = made.body["volume"]["id"].as_str().unwrap().to_string();
    cloud.wait_status(&demo, &format!("/volumes/{member}"), "volume", "available").await;
    let from = |src: &str| Some(json!({"create-from-src": {"name": "copy", "source_group_id": src}}));
    let stolen = cloud.cinder(&other, Method::POST, "/groups/action", from(&gid), "3.14").await;
    assert_eq!(stolen.status, 404, "another project's group is not a source");
    let both = json!({"create-from-src": {"source_group_id": gid, "group_snapshot_id": gid}});
    assert_eq!(cloud.cinder(&demo, Method::POST, "/groups/action", Some(both), "3.14").await.status, 400);
    assert_eq!(cloud.cinder(&demo, Method::POST, "/groups/action", from(&gid), "3.13").await.status, 404);
    let made = cloud.cinder(&demo, Method::POST, "/groups/action", from(&gid), "3.14").await;
    assert_eq!(made.status, 202, "{:?}", made.body);
    assert_eq!(made.body["group"]["name"], "copy");
    let new = made.body["group"]["id"].as_str().unwrap().to_string();
    let shown = cloud.wait_status(&demo, &format!("/groups/{new}"), "group", "available").await;
    assert_eq!(shown["source_group_id"], gid.as_str());
    let listed = cloud.cinder(&demo, Method::GET, "/volumes/detail", None, "3.14").await;
    let clones: Vec<&Value> =
        listed.body["volumes"].as_array().unwrap().iter().filter(|v| v["group_id"] == new.as_str()).collect();
    assert_eq!(clones.len(), 1, "{:?}", listed.body);
    assert_eq!(clones[0]["source_volid"], member.as_str());
    let theirs = cloud.cinder(&other, Method::GET, "/volumes", None, "3.0").await;
    assert_eq!(theirs.body["volumes"], json!([]));
}

#[tokio::test]
async fn group_type_lists_filter_by_is_public_and_sort_by_name() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let demo = cloud.login("demo").await;
    for (name, public) in [("b-private", false), ("a-public", true)] {
        let body = json!({"group_type": {"name": name, "is_public": public}});
        assert_eq!(cloud.cinder(&admin, Method::POST, "/group_types", Some(body), "3.11").await.status, 202);
    }
    let names = |reply: Reply| -> Vec<String> {
        reply.body["group_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let private =
        names(cloud.cinder(&admin, Method::GET, "/group_types?is_public=False", None, "3.11").await);
    assert_eq!(private, ["b-private"]);
    let all = names(
        cloud.cinder(&admin, Method::GET, "/group_types?is_public=None&sort=name:desc", None, "3.11").await,
    );
    assert!(all.iter().position(|n| n == "b-private") < all.iter().position(|n| n == "a-public"), "{all:?}");
    let seen = names(cloud.cinder(&demo, Method::GET, "/group_types?is_public=None", None, "3.11").await);
    assert!(!seen.contains(&"b-private".to_string()), "a member sees no private group type: {seen:?}");
    let bad = cloud.cinder(&admin, Method::GET, "/group_types?is_public=maybe", None, "3.11").await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn a_type_asking_for_a_protocol_no_pool_has_sends_the_volume_to_error_with_cinders_message() {
    let cloud = TestCloud::start().await;
    let admin = cloud.login("admin").await;
    let other = intruder(&cloud).await;
    let specs = json!({"storage_protocol": "tempest-bogus", "vendor_name": "nobody"});
    let body = json!({"volume_type": {"name": "bogus", "extra_specs": specs}});
    let made = cloud.cinder(&admin, Method::POST, "/types", Some(body), "3.0").await;
    let type_id = made.body["volume_type"]["id"].as_str().unwrap().to_string();
    let id = cloud.create_volume(&admin, json!({"size": 1, "volume_type": type_id})).await;
    cloud.wait_status(&admin, &format!("/volumes/{id}"), "volume", "error").await;
    let messages = cloud.cinder(&admin, Method::GET, "/messages", None, "3.3").await;
    let found: Vec<&Value> = messages.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["resource_uuid"] == id.as_str())
        .collect();
    assert_eq!(found.len(), 1, "{:?}", messages.body);
    assert_eq!(found[0]["event_id"], "VOLUME_VOLUME_001_003");
    let mid = found[0]["id"].as_str().unwrap().to_string();
    // Another project can neither read nor delete it.
    assert_eq!(
        cloud.cinder(&other, Method::DELETE, &format!("/messages/{mid}"), None, "3.3").await.status,
        404
    );
    assert_eq!(
        cloud.cinder(&admin, Method::DELETE, &format!("/messages/{mid}"), None, "3.3").await.status,
        204
    );
    assert_eq!(cloud.cinder(&admin, Method::GET, &format!("/messages/{mid}"), None, "3.3").await.status, 404);
}
