//! Nova volume attachments, the metadata service and loop devices of the emulator.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use testkit::emulator::TestCloud;

fn attach_body(id: &str) -> serde_json::Value {
    json!({"volumeAttachment": {"volumeId": id}})
}

#[tokio::test]
async fn attaching_assigns_virtio_device_names_and_ends_in_use() {
    let cloud = TestCloud::start_with(|c| {
        c.transition_latency.insert("volume.attaching".into(), Duration::from_millis(200));
    })
    .await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let a = cloud.available_volume(&s, 1).await;
    let b = cloud.available_volume(&s, 1).await;
    let path = format!("/servers/{server}/os-volume_attachments");
    let first = cloud.nova(&s, Method::POST, &path, Some(attach_body(&a)), "2.1").await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["volumeAttachment"]["device"], "/dev/vdb");
    let now = cloud.cinder(&s, Method::GET, &format!("/volumes/{a}"), None, "3.0").await;
    assert_eq!(now.body["volume"]["status"], "attaching");
    let second = cloud.nova(&s, Method::POST, &path, Some(attach_body(&b)), "2.1").await;
    assert_eq!(second.body["volumeAttachment"]["device"], "/dev/vdc");
    let v = cloud.wait_status(&s, &format!("/volumes/{a}"), "volume", "in-use").await;
    assert_eq!(v["attachments"][0]["server_id"], server.as_str());
    assert_eq!(v["attachments"][0]["device"], "/dev/vdb");
    let list = cloud.nova(&s, Method::GET, &path, None, "2.1").await;
    assert_eq!(list.body["volumeAttachments"].as_array().unwrap().len(), 2);
    let one = cloud.nova(&s, Method::GET, &format!("{path}/{a}"), None, "2.89").await;
    assert!(one.body["volumeAttachment"]["attachment_id"].is_string());
    let srv = cloud.nova(&s, Method::GET, &format!("/servers/{server}"), None, "2.1").await;
    assert_eq!(srv.body["server"]["os-extended-volumes:volumes_attached"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn detaching_returns_the_volume_to_available() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    let path = format!("/servers/{server}/os-volume_attachments");
    cloud.nova(&s, Method::POST, &path, Some(attach_body(&id)), "2.1").await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    let reply = cloud.nova(&s, Method::DELETE, &format!("{path}/{id}"), None, "2.1").await;
    assert_eq!(reply.status, 202);
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    let again = cloud.nova(&s, Method::DELETE, &format!("{path}/{id}"), None, "2.1").await;
    assert_eq!(again.status, 404);
    assert_eq!(again.body["itemNotFound"]["code"], 404);
}

#[tokio::test]
async fn attached_volumes_cannot_be_deleted_or_attached_twice() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let one = cloud.add_server("vm1", "demo").await;
    let two = cloud.add_server("vm2", "demo").await;
    let id = cloud.available_volume(&s, 1).await;
    cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{one}/os-volume_attachments"),
            Some(attach_body(&id)),
            "2.1",
        )
        .await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    assert_eq!(cloud.cinder(&s, Method::DELETE, &format!("/volumes/{id}"), None, "3.0").await.status, 400);
    let twice = cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{two}/os-volume_attachments"),
            Some(attach_body(&id)),
            "2.60",
        )
        .await;
    assert_eq!(twice.status, 400);
    assert_eq!(twice.body["badRequest"]["code"], 400);
}

#[tokio::test]
async fn multiattach_needs_compute_2_60() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let one = cloud.add_server("vm1", "demo").await;
    let two = cloud.add_server("vm2", "demo").await;
    let id = cloud.create_volume(&s, json!({"size": 1, "volume_type": "multiattach"})).await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{one}/os-volume_attachments"),
            Some(attach_body(&id)),
            "2.60",
        )
        .await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    let old = cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{two}/os-volume_attachments"),
            Some(attach_body(&id)),
            "2.59",
        )
        .await;
    assert_eq!(old.status, 400);
    let new = cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{two}/os-volume_attachments"),
            Some(attach_body(&id)),
            "2.60",
        )
        .await;
    assert_eq!(new.status, 200, "{:?}", new.body);
    let v = cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    assert_eq!(v["attachments"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unknown_servers_and_volumes_are_not_found() {
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.add_server("vm", "demo").await;
    let reply = cloud.nova(&s, Method::GET, "/servers/nope", None, "2.1").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.body["itemNotFound"]["code"], 404);
    let reply = cloud
        .nova(
            &s,
            Method::POST,
            &format!("/servers/{server}/os-volume_attachments"),
            Some(attach_body("nope")),
            "2.1",
        )
        .await;
    assert_eq!(reply.status, 404);
    let reply = cloud.nova(&s, Method::GET, "/servers", None, "2.97").await;
    assert_eq!(reply.status, 406);
}

#[tokio::test]
async fn the_metadata_service_reports_this_hosts_server_and_zone() {
    let cloud = TestCloud::start().await;
    let url = format!("{}/openstack/latest/meta_data.json", cloud.handle.metadata_url().unwrap());
    let reply = cloud.send(Method::GET, &url, None, None, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["uuid"], cloud.handle.this_host_server_id().unwrap().as_str());
    assert_eq!(reply.body["availability_zone"], "nova");
}

#[tokio::test]
async fn attaching_to_this_host_makes_a_loop_device_and_a_by_id_link() {
    if !testkit::root_or_skip("attaching_to_this_host_makes_a_loop_device_and_a_by_id_link") {
        return;
    }
    if !std::path::Path::new("/dev/loop-control").exists()
        || std::process::Command::new("losetup").arg("--version").output().is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "loop device tests need /dev/loop-control and losetup in CI"
        );
        eprintln!(
            "SKIPPED attaching_to_this_host_makes_a_loop_device_and_a_by_id_link: no loop devices or losetup"
        );
        return;
    }
    let cloud = TestCloud::start().await;
    let s = cloud.login("demo").await;
    let server = cloud.handle.this_host_server_id().unwrap();
    let id = cloud.available_volume(&s, 1).await;
    let path = format!("/servers/{server}/os-volume_attachments");
    assert_eq!(cloud.nova(&s, Method::POST, &path, Some(attach_body(&id)), "2.1").await.status, 200);
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "in-use").await;
    let link = cloud.dir.path().join("by-id").join(format!("virtio-{}", &id[..20]));
    let target = std::fs::read_link(&link).expect("by-id link");
    assert!(target.to_string_lossy().starts_with("/dev/loop"), "{target:?}");
    let size =
        std::fs::read_to_string(format!("/sys/block/{}/size", target.file_name().unwrap().to_string_lossy()))
            .unwrap();
    assert_eq!(size.trim().parse::<u64>().unwrap() * 512, 1 << 30);
    cloud.nova(&s, Method::DELETE, &format!("{path}/{id}"), None, "2.1").await;
    cloud.wait_status(&s, &format!("/volumes/{id}"), "volume", "available").await;
    assert!(std::fs::symlink_metadata(&link).is_err(), "the link outlived the detach");
    let backing = std::fs::read_to_string(format!(
        "/sys/block/{}/loop/backing_file",
        target.file_name().unwrap().to_string_lossy()
    ));
    assert!(backing.map_or(true, |b| !b.contains(&id)), "the loop device outlived the detach");
}
