//! Cloud configuration the way OpenStack users already write it: `clouds.yaml` (+
//! `secure.yaml`), the `OS_*` variables of an openrc file, or the Go plugin's `cloud.conf`.
//! Every format resolves to the same [`CloudsConfig`]; [`watch`] reloads it when it changes.

pub mod cloud_conf;
pub mod clouds_yaml;
pub mod env;
pub mod model;
pub mod secret;
pub mod settings;
pub mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use model::{AuthMethod, Cloud, CloudKind, CloudsConfig, Domain, Interface, Named, Scope};
pub use secret::Secret;
use settings::Settings;

/// Name openstacksdk gives the cloud described by `OS_*` variables.
pub const ENV_CLOUD: &str = "envvars";

/// Where clouds.yaml is looked for when only `OS_CLOUD` is given, as openstacksdk does.
const CLOUDS_YAML_LOCATIONS: &[&str] = &["clouds.yaml", "/etc/openstack/clouds.yaml"];

/// Why the configuration could not be loaded. Messages name keys and files, never values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is malformed.
    #[error("{origin}: {reason}")]
    Syntax {
        /// File (and line) of the problem.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A required setting is absent.
    #[error("cloud {cloud:?}: missing {what}")]
    Missing {
        /// The cloud.
        cloud: String,
        /// What is missing.
        what: String,
    },
    /// A setting has a value that cannot be used.
    #[error("cloud {cloud:?}: {key}: {reason}")]
    Invalid {
        /// The cloud.
        cloud: String,
        /// The setting.
        key: String,
        /// Why it is refused.
        reason: String,
    },
    /// Nothing describes a cloud.
    #[error(
        "no cloud configuration: pass --cloud-config (clouds.yaml or cloud.conf), or set OS_AUTH_URL and friends, or OS_CLOUD with a clouds.yaml in a standard place"
    )]
    NoConfig,
    /// The default cloud named does not exist.
    #[error("cloud {0:?} is not in the configuration (known: {1})")]
    UnknownCloud(String, String),
    /// Several clouds and none chosen as the default.
    #[error("several clouds are configured ({0}); choose the default with --cloud or OS_CLOUD")]
    AmbiguousDefault(String),
}

/// What to load: an explicit file, the default cloud's name, and the environment.
#[derive(Clone, Debug, Default)]
pub struct ConfigSource {
    /// clouds.yaml or cloud.conf; `None` falls back to the environment.
    pub path: Option<PathBuf>,
    /// The default cloud's name (`--cloud` / `OS_CLOUD`).
    pub cloud: Option<String>,
    /// The process environment (only `OS_*` is read).
    pub env: HashMap<String, String>,
}

impl ConfigSource {
    /// A source reading `path` (or the environment) with the current process environment.
    pub fn from_process(path: Option<PathBuf>, cloud: Option<String>) -> Self {
        let env: HashMap<String, String> = std::env::vars().filter(|(k, _)| k.starts_with("OS_")).collect();
        let cloud = cloud.or_else(|| env.get("OS_CLOUD").cloned());
        Self { path, cloud, env }
    }

    /// The files this source reads, for change detection.
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.path {
            Some(path) => vec![path.clone(), secure_yaml_beside(path)],
            None => Vec::new(),
        }
    }
}

/// Loads and resolves every cloud the source describes.
pub fn load(source: &ConfigSource) -> Result<CloudsConfig, ConfigError> {
    let settings = match &source.path {
        Some(path) => read_file(path, source)?,
        None if env::is_present(&source.env) => {
            BTreeMap::from([(ENV_CLOUD.to_string(), env::parse(&source.env))])
        }
        None if source.cloud.is_some() => {
            let path = CLOUDS_YAML_LOCATIONS
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
                .ok_or(ConfigError::NoConfig)?;
            read_clouds_yaml(&path)?
        }
        None => return Err(ConfigError::NoConfig),
    };
    let mut clouds = BTreeMap::new();
    for (name, s) in &settings {
        clouds.insert(name.clone(), s.resolve(name)?);
    }
    let names = || clouds.keys().cloned().collect::<Vec<_>>().join(", ");
    let default = match &source.cloud {
        Some(name) if clouds.contains_key(name) => name.clone(),
        Some(name) => return Err(ConfigError::UnknownCloud(name.clone(), names())),
        None if clouds.len() == 1 => clouds.keys().next().cloned().unwrap_or_default(),
        None if clouds.contains_key(cloud_conf::DEFAULT_CLOUD) => cloud_conf::DEFAULT_CLOUD.to_string(),
        None => return Err(ConfigError::AmbiguousDefault(names())),
    };
    Ok(CloudsConfig { clouds, default })
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })
}

fn secure_yaml_beside(path: &Path) -> PathBuf {
    path.with_file_name("secure.yaml")
}

fn is_yaml(path: &Path, text: &str) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        || text.lines().any(|l| l.trim_end() == "clouds:")
}

fn read_clouds_yaml(path: &Path) -> Result<BTreeMap<String, Settings>, ConfigError> {
    let text = read(path)?;
    let secure_path = secure_yaml_beside(path);
    let secure = if secure_path.exists() && secure_path != path { Some(read(&secure_path)?) } else { None };
    clouds_yaml::parse(&text, secure.as_deref(), &path.display().to_string())
}

fn read_file(path: &Path, source: &ConfigSource) -> Result<BTreeMap<String, Settings>, ConfigError> {
    let text = read(path)?;
    if is_yaml(path, &text) {
        return read_clouds_yaml(path);
    }
    let conf = cloud_conf::parse(&text, &path.display().to_string())?;
    let Some(use_clouds) = &conf.use_clouds else { return Ok(conf.clouds) };
    // `use-clouds`: clouds.yaml supplies the cloud; cloud.conf's own keys still win.
    let file =
        use_clouds.file.as_deref().map_or_else(|| PathBuf::from("/etc/openstack/clouds.yaml"), PathBuf::from);
    let from_yaml = read_clouds_yaml(&file)?;
    let wanted =
        use_clouds.cloud.clone().or_else(|| source.cloud.clone()).unwrap_or_else(|| "openstack".into());
    let mut settings = from_yaml.get(&wanted).cloned().ok_or_else(|| {
        ConfigError::UnknownCloud(wanted.clone(), from_yaml.keys().cloned().collect::<Vec<_>>().join(", "))
    })?;
    if let Some(own) = conf.clouds.get(cloud_conf::DEFAULT_CLOUD) {
        settings.merge(own);
    }
    settings.merge(&conf.block_storage);
    Ok(BTreeMap::from([(wanted, settings)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// One cloud written in the three formats must resolve to the same settings.
    #[test]
    fn the_three_formats_resolve_to_the_same_cloud() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = write(
            dir.path(),
            "clouds.yaml",
            "clouds:\n  c:\n    auth:\n      auth_url: http://k:5000/v3\n      username: csi\n      password: pw\n      project_name: k8s\n      user_domain_name: Users\n      project_domain_id: default\n    region_name: R1\n    interface: internal\n    cacert: /etc/ca.pem\n    block_storage:\n      ignore_volume_az: true\n      node_volume_attach_limit: 20\n",
        );
        let conf = write(
            dir.path(),
            "cloud.conf",
            "[Global]\nauth-url = http://k:5000/v3\nusername = csi\npassword = \"pw\"\ntenant-name = k8s\nuser-domain-name = Users\ntenant-domain-id = default\nregion = R1\nos-endpoint-type = internal\nca-file = /etc/ca.pem\n[BlockStorage]\nignore-volume-az = true\nnode-volume-attach-limit = 20\n",
        );
        let env: HashMap<String, String> = [
            ("OS_AUTH_URL", "http://k:5000/v3"),
            ("OS_USERNAME", "csi"),
            ("OS_PASSWORD", "pw"),
            ("OS_PROJECT_NAME", "k8s"),
            ("OS_USER_DOMAIN_NAME", "Users"),
            ("OS_PROJECT_DOMAIN_ID", "default"),
            ("OS_REGION_NAME", "R1"),
            ("OS_INTERFACE", "internal"),
            ("OS_CACERT", "/etc/ca.pem"),
            ("OS_IGNORE_VOLUME_AZ", "true"),
            ("OS_NODE_VOLUME_ATTACH_LIMIT", "20"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();

        let from_yaml = load(&ConfigSource { path: Some(yaml), ..Default::default() }).unwrap();
        let from_conf = load(&ConfigSource { path: Some(conf), ..Default::default() }).unwrap();
        let from_env = load(&ConfigSource { env, ..Default::default() }).unwrap();
        let normalise = |c: &CloudsConfig| Cloud { name: String::new(), ..c.default_cloud().clone() };
        assert_eq!(normalise(&from_yaml), normalise(&from_conf));
        assert_eq!(normalise(&from_yaml), normalise(&from_env));
        let cloud = normalise(&from_yaml);
        assert_eq!(cloud.block_storage.node_volume_attach_limit, Some(20));
        assert!(cloud.block_storage.ignore_volume_az);
        assert_eq!(cloud.interface, Interface::Internal);
    }

    #[test]
    fn several_clouds_need_a_chosen_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "clouds.yaml",
            "clouds:\n  a:\n    auth: {auth_url: x, token: t}\n  b:\n    auth: {auth_url: y, token: t}\n",
        );
        let err = load(&ConfigSource { path: Some(path.clone()), ..Default::default() }).unwrap_err();
        assert!(matches!(err, ConfigError::AmbiguousDefault(_)), "{err}");
        let chosen =
            load(&ConfigSource { path: Some(path.clone()), cloud: Some("b".into()), ..Default::default() })
                .unwrap();
        assert_eq!(chosen.default_cloud().auth_url, "y");
        assert_eq!(chosen.get(Some("a")).unwrap().auth_url, "x");
        let unknown = load(&ConfigSource { path: Some(path), cloud: Some("z".into()), ..Default::default() });
        assert!(matches!(unknown, Err(ConfigError::UnknownCloud(..))));
    }

    #[test]
    fn cloud_conf_can_defer_to_clouds_yaml() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = write(
            dir.path(),
            "clouds.yaml",
            "clouds:\n  prod:\n    auth: {auth_url: http://k/v3, token: t}\n",
        );
        let conf = write(
            dir.path(),
            "cloud.conf",
            &format!(
                "[Global]\nuse-clouds = true\nclouds-file = {}\ncloud = prod\nregion = R9\n[BlockStorage]\nrescan-on-resize = true\n",
                yaml.display()
            ),
        );
        let config = load(&ConfigSource { path: Some(conf), ..Default::default() }).unwrap();
        let cloud = config.default_cloud();
        assert_eq!(cloud.name, "prod");
        assert_eq!(cloud.auth_url, "http://k/v3");
        assert_eq!(cloud.region.as_deref(), Some("R9"));
        assert!(cloud.block_storage.rescan_on_resize);
    }

    #[test]
    fn no_source_at_all_is_reported() {
        assert!(matches!(load(&ConfigSource::default()), Err(ConfigError::NoConfig)));
    }

    #[test]
    fn errors_never_show_secret_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "cloud.conf",
            "[Global]\nauth-url=a\nusername=u\npassword=hunter2\ninterface-typo=hunter3\n",
        );
        let err = load(&ConfigSource { path: Some(path), ..Default::default() }).unwrap_err().to_string();
        assert!(!err.contains("hunter2") && !err.contains("hunter3"), "{err}");
    }
}
