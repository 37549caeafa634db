//! The node process never opens the cloud configuration, even when it is handed one: an
//! inotify watch on the file sees no open while a `node` process starts, answers Identity
//! and Node RPCs (a stage included) and stops. The watch itself is proven to work by the
//! controller, which must open the same file, and by opening it once ourselves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cinder_evs_csi::csi::pb;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::signal::Signal;
use testkit::cloud::{Auth, clouds_yaml, emulator};
use testkit::{Driver, start_node, unix_channel, wait_for_path};

/// An inotify watch for opens of one file.
struct OpenWatch {
    inotify: Inotify,
}

impl OpenWatch {
    fn on(path: &Path) -> Self {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        inotify.add_watch(path, AddWatchFlags::IN_OPEN | AddWatchFlags::IN_ACCESS).unwrap();
        Self { inotify }
    }

    /// Opens and reads seen since the last call.
    fn events(&self) -> usize {
        match self.inotify.read_events() {
            Ok(events) => events.len(),
            Err(nix::errno::Errno::EAGAIN) => 0,
            Err(e) => panic!("reading inotify events: {e}"),
        }
    }
}

/// A cloud configuration with real credentials, where the controller would read it.
async fn config_file(dir: &Path) -> (testkit::cloud::TestCloud, PathBuf) {
    let cloud = emulator(|_| {}).await;
    let path = dir.join("clouds.yaml");
    std::fs::write(&path, clouds_yaml(&cloud.handle.demo(), Auth::PasswordByName, "")).unwrap();
    (cloud, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_never_opens_the_cloud_config_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (_cloud, config) = config_file(dir.path()).await;
    let by_id = dir.path().join("by-id");
    std::fs::create_dir(&by_id).unwrap();
    let watch = OpenWatch::on(&config);
    let socket = dir.path().join("node.sock");
    let mut driver = start_node(
        &socket,
        &[
            "--cloud-config",
            config.to_str().unwrap(),
            "--device-search-dirs",
            by_id.to_str().unwrap(),
            "--device-wait-timeout",
            "100ms",
        ],
    );
    let channel = unix_channel(socket).await;
    let mut identity = pb::identity_client::IdentityClient::new(channel.clone());
    assert_eq!(identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner().ready, Some(true));
    let mut node = pb::node_client::NodeClient::new(channel);
    let info = node.node_get_info(pb::NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_id, "server-1");
    node.node_get_capabilities(pb::NodeGetCapabilitiesRequest {}).await.unwrap();
    // A stage runs the node's device lookup; the device never appears, so it ends in NotFound.
    let stage = pb::NodeStageVolumeRequest {
        volume_id: "0b7c2a4e-0000-4000-8000-00000000c0de".into(),
        staging_target_path: dir.path().join("staging").display().to_string(),
        volume_capability: Some(pb::VolumeCapability {
            access_mode: Some(pb::volume_capability::AccessMode { mode: 1 }),
            access_type: Some(pb::volume_capability::AccessType::Mount(Default::default())),
        }),
        ..Default::default()
    };
    let status = node.node_stage_volume(stage).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    driver.signal(Signal::SIGTERM);
    assert!(driver.wait(Duration::from_secs(20)).success());

    assert_eq!(watch.events(), 0, "the node process opened the cloud configuration");
    // The planted check: an open of the file is seen by this very watch.
    std::fs::read(&config).unwrap();
    assert!(watch.events() > 0, "the watch does not see opens, so it proves nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_watch_sees_the_controller_open_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let (_cloud, config) = config_file(dir.path()).await;
    let watch = OpenWatch::on(&config);
    let socket = dir.path().join("controller.sock");
    let endpoint = format!("unix://{}", socket.display());
    let driver =
        Driver::start(&["controller", "--endpoint", &endpoint, "--cloud-config", config.to_str().unwrap()]);
    wait_for_path(&socket, &driver);
    assert!(watch.events() > 0, "the controller's read of its configuration was not seen");
}
