//! Keystone v3 of the emulator, over HTTP.

use reqwest::Method;
use serde_json::json;
use testkit::emulator::TestCloud;

fn password_auth(user: serde_json::Value, scope: serde_json::Value) -> serde_json::Value {
    json!({"auth": {"identity": {"methods": ["password"], "password": {"user": user}}, "scope": scope}})
}

#[tokio::test]
async fn password_login_by_names_returns_a_token_and_a_catalog() {
    let cloud = TestCloud::start().await;
    let demo = cloud.handle.demo();
    let body = password_auth(
        json!({"name": "demo", "domain": {"name": "Default"}, "password": demo.password}),
        json!({"project": {"name": "demo", "domain": {"name": "Default"}}}),
    );
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201);
    assert!(reply.header("x-subject-token").is_some_and(|t| !t.is_empty()));
    let token = &reply.body["token"];
    assert!(token["expires_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(token["project"]["id"], demo.project_id);
    let types: Vec<&str> =
        token["catalog"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    for kind in ["identity", "block-storage", "volumev3", "compute", "evs", "ecs"] {
        assert!(types.contains(&kind), "catalog lacks {kind}: {types:?}");
    }
    let endpoint = &token["catalog"][1]["endpoints"][0];
    assert_eq!(endpoint["region"], "RegionOne");
    assert!(endpoint["url"].as_str().unwrap().ends_with(&format!("/volume/v3/{}", demo.project_id)));
}

#[tokio::test]
async fn password_login_by_ids_works() {
    let cloud = TestCloud::start().await;
    let demo = cloud.handle.demo();
    let body = password_auth(
        json!({"id": demo.user_id, "password": demo.password}),
        json!({"project": {"id": demo.project_id}}),
    );
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["token"]["user"]["id"], demo.user_id);
}

#[tokio::test]
async fn a_wrong_password_gets_a_keystone_401() {
    let cloud = TestCloud::start().await;
    let body = password_auth(
        json!({"name": "demo", "domain": {"id": "default"}, "password": "nope"}),
        json!({"project": {"name": "demo", "domain": {"id": "default"}}}),
    );
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"]["code"], 401);
    assert_eq!(reply.body["error"]["title"], "Unauthorized");
    assert!(!reply.body.to_string().contains("nope"), "the password leaked into the error");
}

#[tokio::test]
async fn a_user_without_a_role_in_the_project_cannot_scope_to_it() {
    let cloud = TestCloud::start().await;
    let demo = cloud.handle.demo();
    let body = password_auth(
        json!({"name": "demo", "domain": {"name": "Default"}, "password": demo.password}),
        json!({"project": {"name": "admin", "domain": {"name": "Default"}}}),
    );
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn application_credentials_log_in_to_their_project() {
    let cloud = TestCloud::start().await;
    let demo = cloud.handle.demo();
    let (id, _, secret) = demo.application_credential.clone().unwrap();
    let body = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": secret}}}});
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["token"]["project"]["id"], demo.project_id);
    assert_eq!(reply.body["token"]["application_credential"]["id"], id);
    let bad = json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": {"id": id, "secret": "wrong"}}}});
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(bad), &[]).await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn a_token_can_be_exchanged_validated_and_revoked() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let body = json!({"auth": {"identity": {"methods": ["token"], "token": {"id": s.token}}, "scope": {"project": {"id": s.project_id}}}});
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201);
    let second = reply.header("x-subject-token").unwrap();
    let url = cloud.url("/identity/v3/auth/tokens");
    let check = cloud.send(Method::GET, &url, Some(&s.token), None, &[("X-Subject-Token", &second)]).await;
    assert_eq!(check.status, 200);
    let revoke =
        cloud.send(Method::DELETE, &url, Some(&s.token), None, &[("X-Subject-Token", &second)]).await;
    assert_eq!(revoke.status, 204);
    let check = cloud.send(Method::GET, &url, Some(&s.token), None, &[("X-Subject-Token", &second)]).await;
    assert_eq!(check.status, 404);
    let use_revoked = cloud
        .cinder(
            &testkit::emulator::Session { token: second, ..s.clone() },
            Method::GET,
            "/volumes",
            None,
            "3.0",
        )
        .await;
    assert_eq!(use_revoked.status, 401);
}

#[tokio::test]
async fn expired_tokens_get_401() {
    let cloud = TestCloud::start_with(|c| c.token_ttl = std::time::Duration::from_millis(300)).await;
    let s = cloud.login("demo").await;
    assert_eq!(cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let reply = cloud.cinder(&s, Method::GET, "/volumes", None, "3.0").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body["error"]["title"], "Unauthorized");
}

#[tokio::test]
async fn requests_without_or_with_unknown_tokens_get_401() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let url = format!("{}/volumes", s.volume);
    assert_eq!(cloud.send(Method::GET, &url, None, None, &[]).await.status, 401);
    assert_eq!(cloud.send(Method::GET, &url, Some("bogus"), None, &[]).await.status, 401);
    let nova = format!("{}/servers", s.compute);
    assert_eq!(cloud.send(Method::GET, &nova, Some("bogus"), None, &[]).await.status, 401);
}

#[tokio::test]
async fn malformed_auth_bodies_get_400() {
    let cloud = TestCloud::start().await;
    let reply = cloud
        .send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(json!({"auth": {}})), &[])
        .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body["error"]["code"], 400);
}

/// Demo delegates its `member` role in its project to admin; returns the trust id.
async fn demo_trusts_admin(cloud: &TestCloud, impersonation: bool) -> String {
    let demo = cloud.login("demo").await;
    let (demo_id, admin_id) = (cloud.handle.demo().user_id, cloud.handle.admin().user_id);
    let body = json!({"trust": {
        "trustor_user_id": demo_id, "trustee_user_id": admin_id, "project_id": demo.project_id,
        "impersonation": impersonation, "roles": [{"name": "member"}]}});
    let url = cloud.url("/identity/v3/OS-TRUST/trusts");
    let reply = cloud.send(Method::POST, &url, Some(&demo.token), Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["trust"]["id"].as_str().unwrap().to_string()
}

fn admin_by_name(cloud: &TestCloud) -> serde_json::Value {
    json!({"name": "admin", "domain": {"name": "Default"}, "password": cloud.handle.admin().password})
}

#[tokio::test]
async fn a_trustee_acts_in_the_trustors_project_until_the_trust_is_deleted() {
    let cloud = TestCloud::start().await;
    let trust = demo_trusts_admin(&cloud, false).await;
    let body = password_auth(admin_by_name(&cloud), json!({"OS-TRUST:trust": {"id": trust}}));
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = reply.header("x-subject-token").unwrap();
    let body = &reply.body["token"];
    let demo = cloud.handle.demo();
    assert_eq!(body["project"]["id"], demo.project_id.as_str());
    assert_eq!(body["user"]["id"], cloud.handle.admin().user_id.as_str(), "without impersonation");
    assert_eq!(body["OS-TRUST:trust"]["id"], trust.as_str());
    assert_eq!(body["roles"].as_array().unwrap().len(), 1, "only the delegated role");
    let volumes = cloud.url(&format!("/volume/v3/{}/volumes", demo.project_id));
    assert_eq!(cloud.send(Method::GET, &volumes, Some(&token), None, &[]).await.status, 200);

    let demo_session = cloud.login("demo").await;
    let url = cloud.url(&format!("/identity/v3/OS-TRUST/trusts/{trust}"));
    assert_eq!(cloud.send(Method::DELETE, &url, Some(&demo_session.token), None, &[]).await.status, 204);
    assert_eq!(cloud.send(Method::GET, &volumes, Some(&token), None, &[]).await.status, 401);
}

#[tokio::test]
async fn an_impersonating_trust_issues_tokens_as_the_trustor() {
    let cloud = TestCloud::start().await;
    let trust = demo_trusts_admin(&cloud, true).await;
    let body = password_auth(admin_by_name(&cloud), json!({"OS-TRUST:trust": {"id": trust}}));
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["token"]["user"]["id"], cloud.handle.demo().user_id.as_str());
}

#[tokio::test]
async fn only_the_trustee_may_use_a_trust_and_only_the_trustor_may_make_one() {
    let cloud = TestCloud::start().await;
    let trust = demo_trusts_admin(&cloud, false).await;
    let demo = cloud.handle.demo();
    let as_demo = password_auth(
        json!({"name": "demo", "domain": {"name": "Default"}, "password": demo.password}),
        json!({"OS-TRUST:trust": {"id": trust}}),
    );
    let reply =
        cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(as_demo), &[]).await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);

    let admin = cloud.login("admin").await;
    let body = json!({"trust": {
        "trustor_user_id": demo.user_id, "trustee_user_id": cloud.handle.admin().user_id,
        "project_id": demo.project_id, "roles": [{"name": "member"}]}});
    let url = cloud.url("/identity/v3/OS-TRUST/trusts");
    assert_eq!(cloud.send(Method::POST, &url, Some(&admin.token), Some(body), &[]).await.status, 403);
}

#[tokio::test]
async fn a_domain_scoped_token_names_the_domain_and_reaches_no_project_api() {
    let cloud = TestCloud::start().await;
    let body = password_auth(admin_by_name(&cloud), json!({"domain": {"name": "Default"}}));
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let token = reply.header("x-subject-token").unwrap();
    let body = &reply.body["token"];
    assert_eq!(body["domain"]["name"], "Default");
    assert!(body.get("project").is_none());
    let types: Vec<&str> =
        body["catalog"].as_array().unwrap().iter().map(|s| s["type"].as_str().unwrap()).collect();
    assert!(types.contains(&"identity") && !types.contains(&"block-storage"), "{types:?}");
    let volumes = cloud.url(&format!("/volume/v3/{}/volumes", cloud.handle.admin().project_id));
    let reply = cloud.send(Method::GET, &volumes, Some(&token), None, &[]).await;
    assert_eq!(
        reply.status, 400,
        "Cinder refuses a URL project the token has no scope for: {:?}",
        reply.body
    );

    // demo holds no role on the domain.
    let demo = cloud.handle.demo();
    let body = password_auth(
        json!({"name": "demo", "domain": {"name": "Default"}, "password": demo.password}),
        json!({"domain": {"name": "Default"}}),
    );
    let reply = cloud.send(Method::POST, &cloud.url("/identity/v3/auth/tokens"), None, Some(body), &[]).await;
    assert_eq!(reply.status, 401);
}
