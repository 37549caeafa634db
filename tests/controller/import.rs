//! `cinder-evs-csi import`: existing cloud volumes and backend storage become static PVs.

use std::process::Command;

use cinder_evs_csi::cloud::Backend;
use cinder_evs_csi::cloud::types::VolumeSpec;
use testkit::cloud::{Auth, backend, clouds_yaml, emulator};

fn import(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(testkit::bin())
        .args(["import", "--cloud-config", config.to_str().unwrap(), "--driver-name", "csi.example.io"])
        .args(args)
        .env_remove("OS_CLOUD")
        .output()
        .unwrap();
    testkit::secrets::assert_clean("import", "stdout", &String::from_utf8_lossy(&output.stdout));
    testkit::secrets::assert_clean("import", "stderr", &String::from_utf8_lossy(&output.stderr));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into(),
        String::from_utf8_lossy(&output.stderr).into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_volume_is_printed_as_a_static_persistent_volume() {
    let cloud = emulator(|_| {}).await;
    let yaml = clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, "");
    let b = backend(&yaml);
    let created = b
        .backend
        .create_volume(&VolumeSpec { name: "legacy-data".into(), size_gib: 3, ..Default::default() })
        .await
        .unwrap();
    b.backend
        .wait_volume_ready(&testkit::cid(&created.id), std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let config = b.dir.path().join("clouds.yaml");

    let (ok, stdout, stderr) =
        import(&config, &["--volume-id", &created.id, "--pv-name", "legacy", "--storage-class", "standard"]);
    assert!(ok, "{stderr}");
    let pv: serde_json::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    assert_eq!(pv["kind"], "PersistentVolume");
    assert_eq!(pv["metadata"]["name"], "legacy");
    assert_eq!(pv["spec"]["csi"]["volumeHandle"], created.id.as_str());
    assert_eq!(pv["spec"]["capacity"]["storage"], "3Gi");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    let after = b.backend.get_volume(&testkit::cid(&created.id)).await.unwrap().unwrap();
    assert!(
        !after.metadata.contains_key("cinder-evs-csi/cluster-id"),
        "imported volumes stay out of gc's reach"
    );

    let (ok, _, stderr) = import(&config, &["--volume-id", "00000000-0000-0000-0000-000000000000"]);
    assert!(!ok);
    assert!(stderr.contains("not found"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_storage_is_managed_then_printed() {
    let cloud = emulator(|_| {}).await;
    let unmanaged = cloud.handle.cloud().config().state_dir.join("unmanaged");
    std::fs::create_dir_all(&unmanaged).unwrap();
    let lun = std::fs::File::create(unmanaged.join("lun-7.img")).unwrap();
    lun.set_len((3 << 30) / 2).unwrap();
    let yaml = clouds_yaml(&cloud.handle.admin(), Auth::PasswordByName, "");
    let b = backend(&yaml);
    let config = b.dir.path().join("clouds.yaml");

    let (ok, stdout, stderr) = import(
        &config,
        &["--source-name", "lun-7", "--host", "emulator@lvmdriver-1#pool", "--pv-name", "adopted"],
    );
    assert!(ok, "{stderr}");
    let pv: serde_json::Value = serde_yaml_ng::from_str(&stdout).unwrap();
    assert_eq!(pv["spec"]["capacity"]["storage"], "2Gi", "1.5 GiB rounds up to whole GiB");
    let id = pv["spec"]["csi"]["volumeHandle"].as_str().unwrap().to_string();
    let volume =
        b.backend.get_volume(&testkit::cid(&id)).await.unwrap().expect("the storage is now a volume");
    assert_eq!(volume.name, "adopted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_of_any_configured_cloud_is_imported_with_a_handle_naming_its_cloud() {
    use testkit::cloud::{HuaweiAuth, huawei_backend, huawei_yaml};
    let cloud = emulator(|_| {}).await;
    let openstack = clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, "");
    let huawei = huawei_yaml(&cloud.handle, HuaweiAuth::AkSk(None), "");
    let hw = huawei_backend(&huawei);
    let spec = VolumeSpec {
        name: "legacy-evs".into(),
        size_gib: 10,
        zone: Some("nova".into()),
        ..Default::default()
    };
    let created = hw.backend.create_volume(&spec).await.unwrap();
    hw.backend
        .wait_volume_ready(&testkit::cid(&created.id), std::time::Duration::from_secs(20))
        .await
        .unwrap();
    let config = hw.dir.path().join("two-clouds.yaml");
    std::fs::write(&config, format!("{openstack}{}", huawei.trim_start_matches("clouds:\n"))).unwrap();

    for volume_id in [format!("hw:{}", created.id), created.id.to_uppercase()] {
        let (ok, stdout, stderr) = import(&config, &["--cloud", "hw", "--volume-id", &volume_id]);
        assert!(ok, "{volume_id}: {stderr}");
        let pv: serde_json::Value = serde_yaml_ng::from_str(&stdout).unwrap();
        assert_eq!(pv["spec"]["csi"]["volumeHandle"], format!("hw:{}", created.id), "{volume_id}");
        assert_eq!(pv["spec"]["csi"]["volumeAttributes"]["cloudVolumeId"], created.id.as_str());
    }

    for hostile in [format!("nowhere:{}", created.id), format!("hw:../cloudvolumes/{}", created.id)] {
        let (ok, stdout, stderr) = import(&config, &["--cloud", "test", "--volume-id", &hostile]);
        assert!(!ok, "{hostile} was imported: {stdout}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(stderr.contains("not") || stderr.contains("UUID"), "{hostile}: {stderr}");
    }
}
