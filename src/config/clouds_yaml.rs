//! `clouds.yaml` (with `secure.yaml` merged over it), as openstacksdk and the `openstack` CLI
//! read it.

use std::collections::BTreeMap;

use serde_yaml_ng::{Mapping, Value};

use super::ConfigError;
use super::settings::Settings;

/// Top-level cloud keys that map to a canonical key of another name.
const CLOUD_KEY_ALIASES: &[(&str, &str)] = &[
    ("endpoint_type", "interface"),
    ("os_interface", "interface"),
    ("region", "region_name"),
    ("type", "cloud_type"),
    ("cloud_type", "cloud_type"),
];

/// Keys of a cloud entry that are ignored because they only concern other tools.
const IGNORED_KEYS: &[&str] =
    &["identity_api_version", "volume_api_version", "compute_api_version", "profile"];

/// Parses clouds.yaml text, with an optional secure.yaml merged over it.
pub fn parse(
    clouds_yaml: &str,
    secure_yaml: Option<&str>,
    origin: &str,
) -> Result<BTreeMap<String, Settings>, ConfigError> {
    let yaml_err = |reason: String| ConfigError::Syntax { origin: origin.to_string(), reason };
    let mut root: Value = serde_yaml_ng::from_str(clouds_yaml).map_err(|e| yaml_err(e.to_string()))?;
    if let Some(secure) = secure_yaml {
        let secure: Value =
            serde_yaml_ng::from_str(secure).map_err(|e| yaml_err(format!("secure.yaml: {e}")))?;
        merge(&mut root, secure);
    }
    let clouds = root
        .get("clouds")
        .and_then(Value::as_mapping)
        .ok_or_else(|| yaml_err("no `clouds:` mapping".into()))?;
    let mut out = BTreeMap::new();
    for (name, entry) in clouds {
        let name = name.as_str().ok_or_else(|| yaml_err("cloud names must be strings".into()))?;
        let entry = entry.as_mapping().ok_or_else(|| yaml_err(format!("cloud {name:?} is not a mapping")))?;
        out.insert(name.to_string(), cloud_settings(name, entry, origin)?);
    }
    Ok(out)
}

fn cloud_settings(name: &str, entry: &Mapping, origin: &str) -> Result<Settings, ConfigError> {
    let invalid = |key: &str, reason: &str| ConfigError::Invalid {
        cloud: name.to_string(),
        key: key.to_string(),
        reason: format!("{reason} (in {origin})"),
    };
    let mut settings = Settings::default();
    for (key, value) in entry {
        let key = key.as_str().ok_or_else(|| invalid("?", "keys must be strings"))?;
        match key {
            "auth" | "block_storage" => {
                let map = value.as_mapping().ok_or_else(|| invalid(key, "must be a mapping"))?;
                for (k, v) in map {
                    let k = k.as_str().ok_or_else(|| invalid(key, "keys must be strings"))?;
                    settings.set(k, scalar(v).ok_or_else(|| invalid(k, "must be a scalar"))?);
                }
            }
            "verify" => {
                let verify = value.as_bool().ok_or_else(|| invalid(key, "must be true or false"))?;
                settings.set("insecure", (!verify).to_string());
            }
            _ if IGNORED_KEYS.contains(&key) => {}
            _ => {
                let canonical = CLOUD_KEY_ALIASES
                    .iter()
                    .find(|(alias, _)| *alias == key)
                    .map_or(key, |(_, canon)| *canon);
                settings.set(canonical, scalar(value).ok_or_else(|| invalid(key, "must be a scalar"))?);
            }
        }
    }
    Ok(settings)
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

/// Deep-merges `over` into `base`, as openstacksdk merges secure.yaml.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (k, v) in over {
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, over) => *base = over,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{AuthMethod, Interface};

    const CLOUDS: &str = r#"
clouds:
  prod:
    auth:
      auth_url: https://keystone.example.com/v3
      username: csi
      project_name: k8s
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
    verify: false
  lab:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://lab/v3
      application_credential_id: ac-1
      application_credential_secret: s
    block_storage_endpoint_override: http://cinder.lab/v3
"#;

    const SECURE: &str = "clouds:\n  prod:\n    auth:\n      password: from-secure-yaml\n";

    #[test]
    fn secure_yaml_supplies_the_password() {
        let clouds = parse(CLOUDS, Some(SECURE), "test").unwrap();
        let prod = clouds["prod"].resolve("prod").unwrap();
        match prod.auth {
            AuthMethod::Password { password, .. } => assert_eq!(password.expose(), "from-secure-yaml"),
            other => panic!("{other:?}"),
        }
        assert_eq!(prod.interface, Interface::Internal);
        assert!(prod.tls.insecure);
        assert_eq!(prod.region.as_deref(), Some("RegionOne"));
    }

    #[test]
    fn endpoint_overrides_are_keyed_by_service_type() {
        let clouds = parse(CLOUDS, None, "test").unwrap();
        let lab = clouds["lab"].resolve("lab").unwrap();
        assert_eq!(lab.endpoint_overrides["block-storage"], "http://cinder.lab/v3");
    }

    #[test]
    fn a_file_without_clouds_is_a_syntax_error() {
        let err = parse("foo: 1", None, "clouds.yaml").unwrap_err();
        assert!(err.to_string().contains("clouds:"), "{err}");
    }

    #[test]
    fn malformed_yaml_is_a_syntax_error_naming_the_file() {
        let err = parse("clouds: [", None, "/etc/clouds.yaml").unwrap_err();
        assert!(err.to_string().contains("/etc/clouds.yaml"), "{err}");
    }

    const HUAWEI: &str = r#"
clouds:
  hw:
    cloud_type: huawei
    auth_type: aksk
    auth:
      access_key: AK
      secret_key: SK
      project_id: 0123456789abcdef0123456789abcdef
    region_name: cn-north-4
    enterprise_project_id: ep-1
    evs_endpoint_override: https://evs.internal.example.com
  hw-iam:
    cloud_type: huawei
    auth:
      username: csi
      password: pw
      user_domain_name: my-account
      project_id: p2
    region_name: ap-southeast-3
"#;

    #[test]
    fn a_huawei_aksk_cloud_resolves_with_its_options() {
        let clouds = parse(HUAWEI, None, "test").unwrap();
        let hw = clouds["hw"].resolve("hw").unwrap();
        assert_eq!(hw.kind, crate::config::model::CloudKind::Huawei);
        assert!(
            matches!(hw.auth, AuthMethod::AkSk { ref access_key, ref security_token, .. } if access_key == "AK" && security_token.is_none())
        );
        assert_eq!(hw.auth_url, "");
        assert_eq!(hw.scope.project_id(), Some("0123456789abcdef0123456789abcdef"));
        assert_eq!(hw.huawei.enterprise_project_id.as_deref(), Some("ep-1"));
        assert_eq!(hw.huawei.template(), crate::config::model::DEFAULT_HUAWEI_ENDPOINT_TEMPLATE);
        assert_eq!(hw.endpoint_overrides["evs"], "https://evs.internal.example.com");
    }

    #[test]
    fn a_huawei_iam_cloud_defaults_its_auth_url_to_the_regions_iam() {
        let clouds = parse(HUAWEI, None, "test").unwrap();
        let iam = clouds["hw-iam"].resolve("hw-iam").unwrap();
        assert_eq!(iam.kind, crate::config::model::CloudKind::Huawei);
        assert!(matches!(iam.auth, AuthMethod::Password { .. }));
        assert_eq!(iam.auth_url, "https://iam.ap-southeast-3.myhuaweicloud.com/v3");
    }
}
