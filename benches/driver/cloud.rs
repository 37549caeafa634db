//! The clouds the bench runs against: where an emulator keeps its files, how it is configured,
//! and the clouds.yaml that points the driver at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cinder_evs_csi::emulator::{EmulatorConfig, EmulatorHandle};

/// A state directory for an emulator called `name`: on tmpfs when there is one (removed by
/// [`remove_state_dir`]), else under `dir`.
pub fn named_state_dir(dir: &Path, name: &str) -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let path = shm.join(format!("cinder-evs-csi-bench-{}", std::process::id())).join(name);
        if std::fs::create_dir_all(&path).is_ok() {
            return path;
        }
    }
    dir.join(name)
}

/// The emulator configuration every bench cloud uses: state in memory, no loop devices, no
/// quotas in the way, no latency until a row sets one.
pub fn emulator_config(state: PathBuf) -> EmulatorConfig {
    let mut config = EmulatorConfig::in_dir(state);
    config.persist = false;
    config.metadata_listen = None;
    config.loop_devices = false;
    config.release_loops_on_shutdown = true;
    config.latency = Duration::ZERO;
    config.default_quotas.insert("volumes".into(), -1);
    config.default_quotas.insert("gigabytes".into(), -1);
    config
}

/// Removes the tmpfs state directories, if they were used.
pub fn remove_state_dir() {
    let _ = std::fs::remove_dir_all(format!("/dev/shm/cinder-evs-csi-bench-{}", std::process::id()));
}

/// A clouds.yaml for the emulator's demo user, on its Cinder or (`evs`) its Huawei face.
pub fn clouds_yaml(cloud: &EmulatorHandle, evs: bool) -> String {
    let c = cloud.demo();
    match evs {
        false => format!(
            "clouds:\n  bench:\n    auth:\n      auth_url: {}\n      username: {}\n      password: {}\n      user_domain_name: {}\n      project_name: {}\n      project_domain_name: {}\n    region_name: {}\n",
            c.auth_url,
            c.username,
            c.password,
            c.user_domain_name,
            c.project_name,
            c.project_domain_name,
            c.region
        ),
        true => {
            let (ak, sk) = cloud.access_keys("demo").into_iter().next().expect("demo has an AK/SK pair");
            format!(
                "clouds:\n  hw:\n    cloud_type: huawei\n    auth_type: aksk\n    auth:\n      access_key: {ak}\n      secret_key: {sk}\n      project_id: {}\n    region_name: {}\n    evs_endpoint_override: {}\n    ecs_endpoint_override: {}\n",
                c.project_id,
                c.region,
                cloud.evs_url(),
                cloud.ecs_url()
            )
        }
    }
}
