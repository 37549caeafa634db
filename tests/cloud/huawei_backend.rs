//! The Huawei backend end to end over HTTP against a small scripted fake of EVS and ECS that
//! checks every request's AK/SK signature independently.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cinder_evs_csi::cloud::Backend;
use cinder_evs_csi::cloud::error::CloudError;
use cinder_evs_csi::cloud::http::{HttpClient, HttpSettings};
use cinder_evs_csi::cloud::huawei::HuaweiBackend;
use cinder_evs_csi::cloud::huawei::auth::Client;
use cinder_evs_csi::cloud::huawei::tags::Tags;
use cinder_evs_csi::cloud::types::{VolumeSpec, VolumeStatus};
use cinder_evs_csi::cloud::wait::WaitSettings;
use cinder_evs_csi::config::model::Tls;
use cinder_evs_csi::config::{AuthMethod, Cloud, CloudKind, CloudsConfig, Named, Scope, Secret};
use serde_json::{Value, json};

use crate::huawei_fake::{AK, PROJECT, SK, Shared};

fn cid(text: &str) -> cinder_evs_csi::contract::CloudId {
    cinder_evs_csi::contract::CloudId::parse("id", text).unwrap()
}

const GUARD: Duration = Duration::from_secs(30);

fn volume(id: &str, status: &str, attachments: Value) -> Value {
    json!({"id": id, "name": "pvc-1", "size": 20, "status": status, "availability_zone": "cn-north-4a",
           "volume_type": "GPSSD", "multiattach": false, "attachments": attachments, "metadata": {}})
}

async fn client_with_key(cloud: &Shared, secret_key: &str) -> Arc<Client> {
    let url = crate::huawei_fake::start(cloud.clone()).await;
    let config = Cloud {
        name: "hw".into(),
        kind: CloudKind::Huawei,
        auth: AuthMethod::AkSk {
            access_key: AK.into(),
            secret_key: Secret::new(secret_key),
            security_token: None,
        },
        scope: Scope::Project(Named::Id(PROJECT.into())),
        endpoint_overrides: BTreeMap::from([("evs".to_string(), url.clone()), ("ecs".to_string(), url)]),
        ..Default::default()
    };
    let clouds = CloudsConfig { clouds: BTreeMap::from([("hw".to_string(), config)]), default: "hw".into() };
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(clouds));
    let http = Arc::new(HttpClient::new(&Tls::default(), HttpSettings::default(), None).unwrap());
    Arc::new(Client::new(http, rx, None).unwrap())
}

async fn backend_with_key(cloud: &Shared, secret_key: &str) -> HuaweiBackend {
    HuaweiBackend::new(client_with_key(cloud, secret_key).await, WaitSettings::default(), None)
}

async fn backend(cloud: &Shared) -> HuaweiBackend {
    backend_with_key(cloud, SK).await
}

fn spec() -> VolumeSpec {
    VolumeSpec {
        name: "pvc-1".into(),
        size_gib: 20,
        volume_type: Some("GPSSD".into()),
        zone: Some("cn-north-4a".into()),
        metadata: BTreeMap::from([("cinder-evs-csi/cluster-id".to_string(), "prod".to_string())]),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_follows_the_job_to_the_disk_and_waits_until_it_is_available() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.create_job = Some("job-create-1".into());
        c.jobs.insert(
            "job-create-1".into(),
            vec![
                json!({"status": "INIT", "job_id": "job-create-1", "job_type": "createVolume"}),
                json!({"status": "RUNNING", "job_id": "job-create-1", "job_type": "createVolume",
                       "entities": {"volume_id": "b0000000-0000-4000-8000-000000000001"}}),
            ],
        );
        c.volumes.insert(
            "b0000000-0000-4000-8000-000000000001".into(),
            vec![
                volume("b0000000-0000-4000-8000-000000000001", "creating", json!([])),
                volume("b0000000-0000-4000-8000-000000000001", "creating", json!([])),
                volume("b0000000-0000-4000-8000-000000000001", "available", json!([])),
            ],
        );
    }
    let backend = backend(&cloud).await;
    let created = tokio::time::timeout(GUARD, backend.create_volume(&spec())).await.unwrap().unwrap();
    assert_eq!(created.id, "b0000000-0000-4000-8000-000000000001");
    let ready = tokio::time::timeout(
        GUARD,
        backend.wait_volume_ready(&cid("b0000000-0000-4000-8000-000000000001"), GUARD),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(ready.status, VolumeStatus::Available);

    let c = cloud.lock().unwrap();
    assert!(c.rejected.is_empty(), "every request must verify: {:?}", c.rejected);
    let create = &c.bodies[&format!("POST /v2.1/{PROJECT}/cloudvolumes")];
    assert_eq!(create["volume"]["availability_zone"], "cn-north-4a");
    assert_eq!(create["volume"]["volume_type"], "GPSSD");
    assert_eq!(create["volume"]["size"], 20);
    assert_eq!(c.client_tokens.len(), 1, "the create carries an idempotency token");
    assert!(
        c.signed_headers.iter().any(|h| h == "content-type;host;x-project-id;x-sdk-date"),
        "{:?}",
        c.signed_headers
    );
    assert!(c.signed_headers.iter().all(|h| h.contains("host") && h.contains("x-sdk-date")));
}

#[tokio::test]
async fn create_sends_the_tags_in_its_body_and_makes_no_tag_call() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.create_job = Some("job-create-3".into());
        c.jobs.insert(
            "job-create-3".into(),
            vec![json!({"status": "RUNNING", "job_id": "job-create-3", "job_type": "createVolume",
                        "entities": {"volume_id": "b0000000-0000-4000-8000-000000000005"}})],
        );
    }
    let backend = backend(&cloud).await;
    tokio::time::timeout(GUARD, backend.create_volume(&spec())).await.unwrap().unwrap();
    let c = cloud.lock().unwrap();
    let create = &c.bodies[&format!("POST /v2.1/{PROJECT}/cloudvolumes")];
    assert_eq!(create["volume"]["tags"], json!({"cinder-evs-csi_cluster-id": "prod"}));
    assert!(!c.requests.iter().any(|r| r.contains("/tags")), "{:?}", c.requests);
}

#[tokio::test]
async fn a_failed_create_job_reports_the_clouds_error() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.create_job = Some("job-create-2".into());
        c.jobs.insert(
            "job-create-2".into(),
            vec![json!({"status": "FAIL", "job_id": "job-create-2", "job_type": "createVolume", "entities": {},
                        "error_code": "EVS.2072", "fail_reason": "Volume type [GPSSD] in availability zone [cn-north-4a] is sold out !"})],
        );
    }
    let backend = backend(&cloud).await;
    let error = tokio::time::timeout(GUARD, backend.create_volume(&spec())).await.unwrap().unwrap_err();
    assert!(matches!(&error, CloudError::QuotaExceeded(m) if m.contains("sold out")), "{error:?}");
}

#[tokio::test]
async fn attach_answers_when_the_ecs_job_succeeds_without_reading_the_disk_again() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.jobs.insert(
            "job-attach-5e000000-0000-4000-8000-000000000001".into(),
            vec![
                json!({"status": "RUNNING", "job_id": "job-attach-5e000000-0000-4000-8000-000000000001", "job_type": "attachVolume"}),
                json!({"status": "SUCCESS", "job_id": "job-attach-5e000000-0000-4000-8000-000000000001", "job_type": "attachVolume"}),
            ],
        );
        c.volumes.insert(
            "b0000000-0000-4000-8000-000000000002".into(),
            vec![
                volume("b0000000-0000-4000-8000-000000000002", "available", json!([])),
                volume(
                    "b0000000-0000-4000-8000-000000000002",
                    "in-use",
                    json!([{"server_id": "5e000000-0000-4000-8000-000000000001", "device": "/dev/vdb", "attachment_id": "a1"}]),
                ),
            ],
        );
    }
    let backend = backend(&cloud).await;
    let attached = tokio::time::timeout(
        GUARD,
        backend.attach(
            &cid("b0000000-0000-4000-8000-000000000002"),
            &cid("5e000000-0000-4000-8000-000000000001"),
            GUARD,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(attached.device_hint, None, "the node finds an EVS disk by its serial");
    let c = cloud.lock().unwrap();
    assert!(c.rejected.is_empty(), "{:?}", c.rejected);
    let disk_reads = c
        .requests
        .iter()
        .filter(|r| r.ends_with("cloudvolumes/b0000000-0000-4000-8000-000000000002"))
        .count();
    assert_eq!(disk_reads, 1, "the read before the attach only: {:?}", c.requests);
    assert_eq!(
        c.bodies
            [&format!("POST /v1/{PROJECT}/cloudservers/5e000000-0000-4000-8000-000000000001/attachvolume")],
        json!({"volumeAttachment": {"volumeId": "b0000000-0000-4000-8000-000000000002"}})
    );
    assert!(
        c.requests
            .contains(&format!("GET /v1/{PROJECT}/jobs/job-attach-5e000000-0000-4000-8000-000000000001"))
    );
}

#[tokio::test]
async fn attaching_an_already_attached_disk_sends_nothing_to_ecs() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    cloud.lock().unwrap().volumes.insert(
        "b0000000-0000-4000-8000-000000000003".into(),
        vec![volume(
            "b0000000-0000-4000-8000-000000000003",
            "in-use",
            json!([{"server_id": "5e000000-0000-4000-8000-000000000001", "device": "/dev/vdc"}]),
        )],
    );
    let backend = backend(&cloud).await;
    let attached = tokio::time::timeout(
        GUARD,
        backend.attach(
            &cid("b0000000-0000-4000-8000-000000000003"),
            &cid("5e000000-0000-4000-8000-000000000001"),
            GUARD,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(attached.device_hint, None);
    assert!(!cloud.lock().unwrap().requests.iter().any(|r| r.contains("attachvolume")));
}

#[tokio::test]
async fn detaching_from_a_deleted_server_is_success() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.missing_servers.insert("5e000000-0000-4000-8000-00000000dead".into());
        c.volumes.insert(
            "b0000000-0000-4000-8000-000000000004".into(),
            vec![volume(
                "b0000000-0000-4000-8000-000000000004",
                "in-use",
                json!([{"server_id": "5e000000-0000-4000-8000-00000000dead"}]),
            )],
        );
    }
    let backend = backend(&cloud).await;
    tokio::time::timeout(
        GUARD,
        backend.detach(
            &cid("b0000000-0000-4000-8000-000000000004"),
            &cid("5e000000-0000-4000-8000-00000000dead"),
            GUARD,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        cloud
            .lock()
            .unwrap()
            .requests
            .iter()
            .any(|r| r.contains("detachvolume/b0000000-0000-4000-8000-000000000004"))
    );
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_as_unauthorized_without_showing_the_key() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    let backend = backend_with_key(&cloud, "not-the-secret-key").await;
    let error = tokio::time::timeout(GUARD, backend.get_volume(&cid("b0000000-0000-4000-8000-000000000001")))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(&error, CloudError::Unauthorized(m) if m.contains("APIGW.0301")), "{error:?}");
    assert!(!error.to_string().contains("not-the-secret-key"));
    assert_eq!(cloud.lock().unwrap().rejected.len(), 1, "the fake's check rejected the signature");
}

#[tokio::test]
async fn a_missing_disk_is_none_and_deleting_it_is_success() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    let backend = backend(&cloud).await;
    assert_eq!(backend.get_volume(&cid("00000000-0000-4000-8000-00000000e0e0")).await.unwrap(), None);
    backend.delete_volume(&cid("00000000-0000-4000-8000-00000000e0e0")).await.unwrap();
    assert!(
        cloud
            .lock()
            .unwrap()
            .requests
            .contains(&format!("DELETE /v2/{PROJECT}/cloudvolumes/00000000-0000-4000-8000-00000000e0e0"))
    );
}

#[tokio::test]
async fn a_tag_query_answer_without_total_count_ends_at_its_short_page() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    let disk =
        |id: &str| json!({"resource_id": id, "resource_name": id, "tags": [{"key": "k", "value": "v"}]});
    cloud.lock().unwrap().tag_pages =
        vec![json!({"resources": [disk("d1"), disk("d2")]}), json!({"resources": [disk("d3")]})];
    let tags = Tags::new(client_with_key(&cloud, SK).await);
    let found = tokio::time::timeout(GUARD, tags.disks_tagged("k", "v", 2)).await.unwrap().unwrap();
    assert_eq!(found.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d1", "d2", "d3"]);
    let queries = cloud.lock().unwrap().requests.iter().filter(|r| r.contains("resource_instances")).count();
    assert_eq!(queries, 2, "a full page asks for more, the short one ends it");
    let body = cloud.lock().unwrap().bodies
        [&format!("POST /v2/{PROJECT}/cloudvolumes/resource_instances/action")]
        .clone();
    assert_eq!(body["offset"], 2, "the second page starts after the first");
}

#[tokio::test]
async fn detach_answers_when_the_ecs_job_succeeds_without_reading_the_disk_again() {
    let cloud: Shared = Arc::new(Mutex::new(Default::default()));
    {
        let mut c = cloud.lock().unwrap();
        c.jobs.insert(
            "job-detach-5e000000-0000-4000-8000-000000000001".into(),
            vec![
                json!({"status": "RUNNING", "job_id": "job-detach-5e000000-0000-4000-8000-000000000001", "job_type": "detachVolume"}),
                json!({"status": "SUCCESS", "job_id": "job-detach-5e000000-0000-4000-8000-000000000001", "job_type": "detachVolume"}),
            ],
        );
        c.volumes.insert(
            "b0000000-0000-4000-8000-000000000006".into(),
            vec![volume(
                "b0000000-0000-4000-8000-000000000006",
                "in-use",
                json!([{"server_id": "5e000000-0000-4000-8000-000000000001", "attachment_id": "a1"}]),
            )],
        );
    }
    let backend = backend(&cloud).await;
    tokio::time::timeout(
        GUARD,
        backend.detach(
            &cid("b0000000-0000-4000-8000-000000000006"),
            &cid("5e000000-0000-4000-8000-000000000001"),
            GUARD,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    let c = cloud.lock().unwrap();
    assert!(c.requests.contains(&format!(
        "DELETE /v1/{PROJECT}/cloudservers/5e000000-0000-4000-8000-000000000001/detachvolume/b0000000-0000-4000-8000-000000000006"
    )));
    assert!(
        c.requests
            .contains(&format!("GET /v1/{PROJECT}/jobs/job-detach-5e000000-0000-4000-8000-000000000001"))
    );
    let disk_reads = c
        .requests
        .iter()
        .filter(|r| r.ends_with("cloudvolumes/b0000000-0000-4000-8000-000000000006"))
        .count();
    assert_eq!(disk_reads, 1, "the read before the detach only: {:?}", c.requests);
}
