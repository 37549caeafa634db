//! The OpenStack backend against the emulator: every auth method, token life, re-auth,
//! catalog selection, retryable faults, error states, and coalesced waiting.

use std::collections::BTreeMap;
use std::time::Duration;

use cinder_evs_csi::cloud::types::{SnapshotSpec, VolumeSpec, VolumeStatus};
use cinder_evs_csi::cloud::{Backend, CloudError};
use cinder_evs_emulator::faults::{FaultAction, FaultRule, TransitionEffect, TransitionRule};
use testkit::cloud::{Auth, backend, clouds_yaml, count, emulator};

fn spec(name: &str, gib: u64) -> VolumeSpec {
    VolumeSpec {
        name: name.into(),
        size_gib: gib,
        metadata: BTreeMap::from([("k".into(), "v".into())]),
        ..Default::default()
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn password_auth_by_names_creates_and_waits_for_a_volume() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let created = b.backend.create_volume(&spec("pvc-a", 2)).await.unwrap();
    assert_eq!(created.status, VolumeStatus::Creating);
    let ready = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    assert_eq!(ready.status, VolumeStatus::Available);
    assert_eq!(ready.size_gib, 2);
    assert_eq!(ready.metadata["k"], "v");
    assert_eq!(b.backend.find_volumes_by_name("pvc-a").await.unwrap().len(), 1);
}

#[tokio::test]
async fn password_auth_by_ids_works() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordById, ""));
    b.backend.probe().await.unwrap();
}

#[tokio::test]
async fn application_credential_auth_works() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::ApplicationCredential, ""));
    b.backend.probe().await.unwrap();
    assert!(b.backend.list_volumes(None, None).await.unwrap().items.is_empty());
}

#[tokio::test]
async fn token_auth_uses_an_existing_token() {
    let cloud = emulator(|_| {}).await;
    let creds = cloud.handle.demo();
    let body = serde_json::json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {"id": creds.user_id, "password": creds.password}}},
        "scope": {"project": {"id": creds.project_id}}
    }});
    let response = reqwest::Client::new()
        .post(format!("{}/auth/tokens", creds.auth_url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let token = response.headers()["x-subject-token"].to_str().unwrap().to_string();
    let yaml = format!(
        "clouds:\n  test:\n    auth_type: token\n    auth:\n      auth_url: {}\n      token: {token}\n      project_id: {}\n",
        creds.auth_url, creds.project_id
    );
    let b = backend(&yaml);
    b.backend.probe().await.unwrap();
}

#[tokio::test]
async fn wrong_credentials_are_unauthorized_and_the_password_is_not_in_the_error() {
    let cloud = emulator(|_| {}).await;
    let mut creds = cloud.handle.demo();
    creds.password = "wrong-password-value".into();
    let b = backend(&clouds_yaml(&creds, Auth::PasswordByName, ""));
    let err = b.backend.probe().await.unwrap_err();
    assert!(matches!(err, CloudError::Unauthorized(_)), "{err}");
    assert!(!err.to_string().contains("wrong-password-value"));
}

#[tokio::test]
async fn one_token_serves_concurrent_callers() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let backend = b.backend.clone();
        tasks.spawn(async move { backend.list_volumes(None, None).await.map(|_| ()) });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(b.backend.session().auth_requests(), 1);
    assert_eq!(count(&cloud.handle, "POST", "auth/tokens"), 1);
}

#[tokio::test]
async fn the_token_is_refreshed_before_it_expires() {
    let cloud = emulator(|c| c.token_ttl = Duration::from_secs(2)).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.list_volumes(None, None).await.unwrap();
    b.backend.list_volumes(None, None).await.unwrap();
    assert_eq!(b.backend.session().auth_requests(), 1, "reused while fresh");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    b.backend.list_volumes(None, None).await.unwrap();
    assert_eq!(b.backend.session().auth_requests(), 2, "renewed in the last quarter of its life");
}

#[tokio::test]
async fn a_revoked_token_is_replaced_after_one_401() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let token = b.backend.session().token().await.unwrap();
    let admin = reqwest::Client::new();
    let revoked = admin
        .delete(format!("{}/auth/tokens", cloud.handle.auth_url()))
        .header("x-auth-token", token.id.expose())
        .header("x-subject-token", token.id.expose())
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    b.backend.list_volumes(None, None).await.expect("re-authenticated and retried");
    assert_eq!(b.backend.session().auth_requests(), 2);
}

#[tokio::test]
async fn the_catalog_is_filtered_by_region_and_an_override_wins() {
    let cloud = emulator(|_| {}).await;
    let mut creds = cloud.handle.demo();
    creds.region = "NoSuchRegion".into();
    let b = backend(&clouds_yaml(&creds, Auth::PasswordByName, ""));
    let err = b.backend.list_volumes(None, None).await.unwrap_err();
    assert!(matches!(&err, CloudError::Config(m) if m.contains("NoSuchRegion")), "{err}");

    let creds = cloud.handle.demo();
    let override_url = format!("{}/volume/v3/{}", cloud.handle.base_url(), creds.project_id);
    let b = backend(&clouds_yaml(
        &creds,
        Auth::PasswordByName,
        &format!("    block_storage_endpoint_override: {override_url}\n"),
    ));
    b.backend.list_volumes(None, None).await.unwrap();
}

fn fault(method: &str, route: &str, action: FaultAction, count: u64) -> FaultRule {
    FaultRule {
        method: Some(method.into()),
        route: Some(route.into()),
        action,
        rate: 1.0,
        count: Some(count),
    }
}

#[tokio::test]
async fn idempotent_requests_are_retried_through_5xx_and_dropped_connections() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    let faults = cloud.handle.cloud().faults();
    faults.add_rule(fault(
        "GET",
        "/volume/v3/{project_id}/volumes/detail",
        FaultAction::Error { status: 503, retry_after: None, message: None },
        2,
    ));
    faults.add_rule(fault(
        "GET",
        "/volume/v3/{project_id}/volumes/detail",
        FaultAction::Error { status: 500, retry_after: None, message: None },
        1,
    ));
    faults.add_rule(fault("GET", "/volume/v3/{project_id}/volumes/detail", FaultAction::Drop, 1));
    b.backend.list_volumes(None, None).await.expect("retried until it worked");
    assert_eq!(count(&cloud.handle, "GET", "volumes/detail"), 5);
}

#[tokio::test]
async fn rate_limits_are_honoured_with_retry_after() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    cloud.handle.cloud().faults().add_rule(fault(
        "POST",
        "/volume/v3/{project_id}/volumes",
        FaultAction::Error { status: 429, retry_after: Some(1), message: None },
        1,
    ));
    let started = std::time::Instant::now();
    b.backend.create_volume(&spec("pvc-limited", 1)).await.expect("a 429 means the POST was not processed");
    assert!(started.elapsed() >= Duration::from_millis(900), "waited for Retry-After");
    assert_eq!(count(&cloud.handle, "POST", "/volumes"), 2);
    assert_eq!(b.backend.find_volumes_by_name("pvc-limited").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_500_on_create_is_not_retried() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    cloud.handle.cloud().faults().add_rule(fault(
        "POST",
        "/volume/v3/{project_id}/volumes",
        FaultAction::Error { status: 500, retry_after: None, message: Some("boom".into()) },
        5,
    ));
    let err = b.backend.create_volume(&spec("pvc-500", 1)).await.unwrap_err();
    assert!(matches!(err, CloudError::Unavailable(_)), "{err}");
    assert_eq!(
        count(&cloud.handle, "POST", "/volumes"),
        1,
        "a POST that may have been processed is never repeated"
    );
}

#[tokio::test]
async fn a_volume_that_fails_to_create_ends_the_wait_with_its_error_state() {
    let cloud = emulator(|_| {}).await;
    cloud.handle.cloud().faults().add_transition(TransitionRule {
        resource: "volume".into(),
        status: "creating".into(),
        id: None,
        effect: TransitionEffect::Fail,
        count: Some(1),
    });
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let created = b.backend.create_volume(&spec("pvc-err", 1)).await.unwrap();
    let err = b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap_err();
    assert!(matches!(&err, CloudError::ErrorState { status, .. } if status == "error"), "{err}");
}

#[tokio::test]
async fn a_stuck_volume_times_out() {
    let cloud = emulator(|_| {}).await;
    cloud.handle.cloud().faults().add_transition(TransitionRule {
        resource: "volume".into(),
        status: "creating".into(),
        id: None,
        effect: TransitionEffect::Stuck,
        count: None,
    });
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let created = b.backend.create_volume(&spec("pvc-stuck", 1)).await.unwrap();
    let err = b
        .backend
        .wait_volume_ready(&testkit::cid(&created.id), Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(matches!(err, CloudError::Timeout(_)), "{err}");
}

#[tokio::test]
async fn attach_and_detach_through_nova_are_idempotent() {
    let cloud = emulator(|_| {}).await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let volume = b.backend.create_volume(&spec("pvc-attach", 1)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    let attached = b.backend.attach(&testkit::cid(&volume.id), &testkit::cid(&server), WAIT).await.unwrap();
    assert!(attached.device_hint.as_deref().is_some_and(|d| d.starts_with("/dev/")), "{attached:?}");
    assert_eq!(
        b.backend.attach(&testkit::cid(&volume.id), &testkit::cid(&server), WAIT).await.unwrap(),
        attached,
        "attaching again is success"
    );
    assert_eq!(b.backend.attached_count(&testkit::cid(&server)).await.unwrap(), 1);
    b.backend.detach(&testkit::cid(&volume.id), &testkit::cid(&server), WAIT).await.unwrap();
    b.backend
        .detach(&testkit::cid(&volume.id), &testkit::cid(&server), WAIT)
        .await
        .expect("detaching again is success");
    let after = b.backend.get_volume(&testkit::cid(&volume.id)).await.unwrap().unwrap();
    assert_eq!(after.status, VolumeStatus::Available);
    assert!(after.attachments.is_empty());
}

#[tokio::test]
async fn snapshots_restore_and_extend_round_trip() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let volume = b.backend.create_volume(&spec("pvc-src", 1)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    let snapshot = b
        .backend
        .create_snapshot(&SnapshotSpec {
            name: "snap-1".into(),
            volume_id: testkit::cid(&volume.id),
            force: true,
            metadata: BTreeMap::new(),
        })
        .await
        .unwrap();
    let ready = b.backend.wait_snapshot_ready(&testkit::cid(&snapshot.id), WAIT).await.unwrap();
    assert!(ready.created_at.is_some());
    let mut restore = spec("pvc-restored", 2);
    restore.source = Some(cinder_evs_csi::cloud::types::VolumeSource::Snapshot(testkit::cid(&snapshot.id)));
    let restored = b.backend.create_volume(&restore).await.unwrap();
    let restored = b.backend.wait_volume_ready(&testkit::cid(&restored.id), WAIT).await.unwrap();
    assert_eq!(restored.source_snapshot_id.as_deref(), Some(snapshot.id.as_str()));
    let err = b.backend.delete_volume(&testkit::cid(&volume.id)).await.unwrap_err();
    assert!(matches!(err, CloudError::Conflict(_)), "a volume with snapshots cannot go: {err}");
    b.backend.extend_volume(&testkit::cid(&restored.id), 3).await.unwrap();
    let grown = b.backend.wait_volume_extended(&testkit::cid(&restored.id), 3, WAIT).await.unwrap();
    assert_eq!(grown.size_gib, 3);
    let listed = b.backend.list_snapshots(Some(&testkit::cid(&volume.id)), None, None).await.unwrap();
    assert_eq!(listed.items.len(), 1);
}

#[tokio::test]
async fn capacity_comes_from_the_quota_usage() {
    let cloud = emulator(|c| {
        c.default_quotas.insert("gigabytes".into(), 50);
    })
    .await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let before = b.backend.capacity(None).await.unwrap().available_gib.unwrap();
    let volume = b.backend.create_volume(&spec("pvc-q", 5)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    let after = b.backend.capacity(None).await.unwrap().available_gib.unwrap();
    assert_eq!(before, 50);
    assert_eq!(after, 45);
}

#[tokio::test]
async fn many_concurrent_waits_are_coalesced_into_few_calls() {
    let cloud = emulator(|c| {
        c.latency = Duration::from_millis(800);
        c.default_quotas.insert("volumes".into(), -1);
        c.default_quotas.insert("gigabytes".into(), -1);
    })
    .await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    cloud.handle.cloud().counters().reset();
    let n = 60;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let backend = b.backend.clone();
        tasks.spawn(async move {
            let v = backend.create_volume(&spec(&format!("pvc-{i}"), 1)).await?;
            backend.wait_volume_ready(&testkit::cid(&v.id), WAIT).await
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.unwrap().unwrap().status, VolumeStatus::Available);
    }
    let calls = cloud.handle.cloud().counters().snapshot().values().sum::<u64>();
    let per_volume = calls as f64 / n as f64;
    assert!(per_volume <= 1.5, "{calls} API calls for {n} volumes ({per_volume:.2} per volume)");
}

#[tokio::test]
async fn per_volume_iops_encryption_and_scsi_are_refused_before_asking_cinder() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    let asks = [
        VolumeSpec { iops: Some(3000), ..spec("pvc-iops", 1) },
        VolumeSpec { encryption: Some(Default::default()), ..spec("pvc-enc", 1) },
        VolumeSpec { scsi: true, ..spec("pvc-scsi", 1) },
    ];
    for ask in asks {
        let err = b.backend.create_volume(&ask).await.unwrap_err();
        assert!(matches!(&err, CloudError::InvalidInput(_)), "{}: {err}", ask.name);
    }
    assert_eq!(count(&cloud.handle, "POST", "/volumes"), 0, "nothing reached Cinder");
}

#[tokio::test]
async fn an_over_limit_413_with_retry_after_is_retried_once_the_limit_allows() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    b.backend.probe().await.unwrap();
    cloud.handle.cloud().faults().add_rule(fault(
        "POST",
        "/volume/v3/{project_id}/volumes",
        FaultAction::Error { status: 413, retry_after: Some(1), message: Some("rate limited".into()) },
        1,
    ));
    b.backend
        .create_volume(&spec("pvc-413", 1))
        .await
        .expect("413 with Retry-After is a rate limit, not a quota");
    assert_eq!(count(&cloud.handle, "POST", "/volumes"), 2);
}

fn fail_transition(status: &str) -> TransitionRule {
    TransitionRule {
        resource: "volume".into(),
        status: status.into(),
        id: None,
        effect: TransitionEffect::Fail,
        count: Some(1),
    }
}

#[tokio::test]
async fn a_failed_extension_ends_the_wait_with_error_extending() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let volume = b.backend.create_volume(&spec("pvc-ext", 1)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    cloud.handle.cloud().faults().add_transition(fail_transition("extending"));
    b.backend.extend_volume(&testkit::cid(&volume.id), 2).await.unwrap();
    let err = b.backend.wait_volume_extended(&testkit::cid(&volume.id), 2, WAIT).await.unwrap_err();
    assert!(matches!(&err, CloudError::ErrorState { status, .. } if status == "error_extending"), "{err}");
}

#[tokio::test]
async fn a_failed_deletion_ends_the_wait_with_error_deleting() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let volume = b.backend.create_volume(&spec("pvc-del", 1)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&volume.id), WAIT).await.unwrap();
    cloud.handle.cloud().faults().add_transition(fail_transition("deleting"));
    b.backend.delete_volume(&testkit::cid(&volume.id)).await.unwrap();
    let err = b.backend.wait_volume_deleted(&testkit::cid(&volume.id), WAIT).await.unwrap_err();
    assert!(matches!(&err, CloudError::ErrorState { status, .. } if status == "error_deleting"), "{err}");
}

/// Demo delegates its `member` role to admin; returns the trust id.
async fn demo_trusts_admin(cloud: &testkit::emulator::TestCloud) -> String {
    let demo = cloud.login("demo").await;
    let body = serde_json::json!({"trust": {
        "trustor_user_id": cloud.handle.demo().user_id, "trustee_user_id": cloud.handle.admin().user_id,
        "project_id": demo.project_id, "roles": [{"name": "member"}]}});
    let url = cloud.url("/identity/v3/OS-TRUST/trusts");
    let reply = cloud.send(reqwest::Method::POST, &url, Some(&demo.token), Some(body), &[]).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["trust"]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn trust_auth_creates_volumes_in_the_trustors_project() {
    let cloud = emulator(|_| {}).await;
    let trust = demo_trusts_admin(&cloud).await;
    let admin = cloud.handle.admin();
    let yaml = format!(
        "clouds:\n  test:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      user_domain_name: Default\n      trust_id: {trust}\n    region_name: {}\n",
        admin.auth_url, admin.password, admin.region
    );
    let b = backend(&yaml);
    let created = b.backend.create_volume(&spec("trusted", 1)).await.unwrap();
    b.backend.wait_volume_ready(&testkit::cid(&created.id), WAIT).await.unwrap();
    let demo = cloud.login("demo").await;
    let reply =
        cloud.cinder(&demo, reqwest::Method::GET, &format!("/volumes/{}", created.id), None, "3.0").await;
    assert_eq!(reply.status, 200, "the volume is in demo's project: {:?}", reply.body);
}

#[tokio::test]
async fn domain_scoped_auth_gets_a_token_but_no_volume_service() {
    let cloud = emulator(|_| {}).await;
    let admin = cloud.handle.admin();
    let yaml = format!(
        "clouds:\n  test:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {}\n      user_domain_name: Default\n      domain_name: Default\n    region_name: {}\n",
        admin.auth_url, admin.password, admin.region
    );
    let b = backend(&yaml);
    b.backend.session().token().await.expect("a domain-scoped token");
    let error = b.backend.probe().await.unwrap_err();
    let text = error.to_string();
    assert!(text.contains("block-storage") || text.contains("volume"), "{text}");
    assert!(!text.contains(&admin.password), "{text}");
    assert_eq!(count(&cloud.handle, "POST", "auth/tokens"), 1, "no re-auth loop");
}

const SHOW_VOLUME: &str = "/volume/v3/{project_id}/volumes/{volume_id}";

#[tokio::test]
async fn truncated_or_mistyped_json_fails_the_one_call_cleanly() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let id = b.backend.create_volume(&spec("hostile", 1)).await.unwrap().id;
    b.backend.wait_volume_ready(&testkit::cid(&id), WAIT).await.unwrap();
    let faults = cloud.handle.cloud().faults();
    for body in
        [r#"{"volume": {"id": "x", "size": "#, r#"{"volume": {"id": 7, "size": "big", "status": []}}"#]
    {
        faults.add_rule(fault("GET", SHOW_VOLUME, FaultAction::Body { status: 200, body: body.into() }, 1));
        let error = b.backend.get_volume(&testkit::cid(&id)).await.unwrap_err();
        assert!(matches!(error, CloudError::Protocol(_)), "{body}: {error:?}");
        let again =
            b.backend.get_volume(&testkit::cid(&id)).await.unwrap().expect("the next call is unaffected");
        assert_eq!(again.id, id);
    }
}

#[tokio::test]
async fn a_body_past_the_size_limit_fails_the_one_call_cleanly() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let id = b.backend.create_volume(&spec("huge", 1)).await.unwrap().id;
    b.backend.wait_volume_ready(&testkit::cid(&id), WAIT).await.unwrap();
    // 17 MiB of valid JSON: over the 16 MiB the transport accepts, on every retry.
    let huge = format!(r#"{{"volume": {{"id": "{id}", "name": "{}"}}}}"#, "x".repeat(17 << 20));
    let attempts = 6;
    cloud.handle.cloud().faults().add_rule(fault(
        "GET",
        SHOW_VOLUME,
        FaultAction::Body { status: 200, body: huge },
        attempts,
    ));
    let error = b.backend.get_volume(&testkit::cid(&id)).await.unwrap_err();
    assert!(!error.to_string().contains("xxxx"), "none of the body is quoted: {error}");
    assert_eq!(
        b.backend.get_volume(&testkit::cid(&id)).await.unwrap().unwrap().id,
        id,
        "the next call is unaffected"
    );
}

#[tokio::test]
async fn a_slow_loris_body_is_abandoned_at_the_request_timeout_and_retried() {
    let cloud = emulator(|_| {}).await;
    let b = backend(&clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, ""));
    let id = b.backend.create_volume(&spec("loris", 1)).await.unwrap().id;
    b.backend.wait_volume_ready(&testkit::cid(&id), WAIT).await.unwrap();
    let before = count(&cloud.handle, "GET", "volumes/{volume_id}");
    // One byte a second: the body would take over a minute, the transport gives up at 5 s.
    cloud.handle.cloud().faults().add_rule(fault(
        "GET",
        SHOW_VOLUME,
        FaultAction::Trickle { delay_ms: 1000 },
        1,
    ));
    let volume = b.backend.get_volume(&testkit::cid(&id)).await.unwrap().expect("the retry is answered");
    assert_eq!(volume.id, id);
    assert_eq!(count(&cloud.handle, "GET", "volumes/{volume_id}") - before, 2, "one abandoned, one answered");
}
