//! The flat bag of canonical settings every format is read into, and its resolution into a
//! [`Cloud`]. Keeping one resolver is what makes the three formats agree.

use std::collections::BTreeMap;

use super::ConfigError;
use super::model::{
    AuthMethod, BlockStorage, Cloud, CloudKind, Domain, HuaweiOptions, Interface, Named, Scope, Tls,
};
use super::secret::Secret;

/// Canonical keys (the clouds.yaml spelling) with their values, for one cloud.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    values: BTreeMap<String, SettingValue>,
}

/// A value, remembering whether it is secret so that errors and logs never show it.
#[derive(Clone, PartialEq, Eq)]
struct SettingValue(String);

impl std::fmt::Debug for SettingValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(crate::telemetry::redact::REDACTED)
    }
}

/// Keys the resolver understands; anything else is reported, never silently dropped.
pub const KNOWN_KEYS: &[&str] = &[
    "auth_url",
    "auth_type",
    "cloud_type",
    "username",
    "user_id",
    "password",
    "user_domain_name",
    "user_domain_id",
    "project_name",
    "project_id",
    "project_domain_name",
    "project_domain_id",
    "domain_name",
    "domain_id",
    "application_credential_id",
    "application_credential_name",
    "application_credential_secret",
    "token",
    "trust_id",
    "access_key",
    "secret_key",
    "security_token",
    "region_name",
    "interface",
    "cacert",
    "cert",
    "key",
    "insecure",
    "ignore_volume_az",
    "ignore_volume_microversion",
    "node_volume_attach_limit",
    "rescan_on_resize",
    "endpoint_template",
    "enterprise_project_id",
];

impl Settings {
    /// Sets a canonical key; empty values count as unset.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        if !value.trim().is_empty() {
            self.values.insert(key.to_string(), SettingValue(value.trim().to_string()));
        }
    }

    /// Copies every key of `other` over this one.
    pub fn merge(&mut self, other: &Settings) {
        for (k, v) in &other.values {
            self.values.insert(k.clone(), v.clone());
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|v| v.0.as_str())
    }

    fn flag(&self, cloud: &str, key: &str) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) => parse_bool(v).ok_or_else(|| ConfigError::Invalid {
                cloud: cloud.to_string(),
                key: key.to_string(),
                reason: format!("expected true or false, got {v:?}"),
            }),
        }
    }

    /// Resolves the bag into a cloud named `name`.
    pub fn resolve(&self, name: &str) -> Result<Cloud, ConfigError> {
        if let Some(unknown) =
            self.values.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str()) && !is_override(k))
        {
            return Err(ConfigError::Invalid {
                cloud: name.to_string(),
                key: unknown.clone(),
                reason: "unknown setting".into(),
            });
        }
        let missing = |what: &str| ConfigError::Missing { cloud: name.to_string(), what: what.to_string() };
        let auth = self.auth_method(name)?;
        let kind = match (self.get("cloud_type"), &auth) {
            (Some(t), _) if t.eq_ignore_ascii_case("huawei") => CloudKind::Huawei,
            (Some(t), _) if t.eq_ignore_ascii_case("openstack") => CloudKind::OpenStack,
            (Some(t), _) => {
                return Err(ConfigError::Invalid {
                    cloud: name.into(),
                    key: "cloud_type".into(),
                    reason: format!("expected openstack or huawei, got {t:?}"),
                });
            }
            (None, AuthMethod::AkSk { .. }) => CloudKind::Huawei,
            (None, _) => CloudKind::OpenStack,
        };
        let huawei = HuaweiOptions {
            endpoint_template: self.get("endpoint_template").map(str::to_string),
            enterprise_project_id: self.get("enterprise_project_id").map(str::to_string),
        };
        let auth_url = match (self.get("auth_url"), kind, &auth) {
            (Some(url), _, _) => url.to_string(),
            (None, CloudKind::OpenStack, _) => return Err(missing("auth_url")),
            (None, CloudKind::Huawei, AuthMethod::AkSk { .. }) => String::new(),
            // IAM token auth defaults to the region's IAM endpoint, from the same template.
            (None, CloudKind::Huawei, _) => match self.get("region_name") {
                Some(region) => {
                    format!(
                        "{}/v3",
                        huawei.template().replace("{service}", "iam").replace("{region}", region)
                    )
                }
                None => return Err(missing("auth_url or region_name")),
            },
        };
        let interface = match self.get("interface") {
            None => Interface::Public,
            Some(v) => Interface::parse(v).ok_or_else(|| ConfigError::Invalid {
                cloud: name.into(),
                key: "interface".into(),
                reason: format!("expected public, internal or admin, got {v:?}"),
            })?,
        };
        let node_volume_attach_limit = match self.get("node_volume_attach_limit") {
            None => None,
            Some(v) => Some(v.parse::<u32>().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| {
                ConfigError::Invalid {
                    cloud: name.into(),
                    key: "node_volume_attach_limit".into(),
                    reason: format!("expected a number from 1 to 256, got {v:?}"),
                }
            })?),
        };
        let endpoint_overrides = self
            .values
            .iter()
            .filter_map(|(k, v)| {
                k.strip_suffix("_endpoint_override").map(|svc| (svc.replace('_', "-"), v.0.clone()))
            })
            .collect();
        Ok(Cloud {
            name: name.to_string(),
            kind,
            auth_url,
            auth,
            scope: self.scope(),
            region: self.get("region_name").map(str::to_string),
            interface,
            endpoint_overrides,
            tls: Tls {
                cacert: self.get("cacert").map(Into::into),
                client_cert: self.get("cert").map(Into::into),
                client_key: self.get("key").map(Into::into),
                insecure: self.flag(name, "insecure")?,
            },
            block_storage: BlockStorage {
                ignore_volume_az: self.flag(name, "ignore_volume_az")?,
                ignore_volume_microversion: self.flag(name, "ignore_volume_microversion")?,
                node_volume_attach_limit,
                rescan_on_resize: self.flag(name, "rescan_on_resize")?,
            },
            huawei,
        })
    }

    fn domain(&self, prefix: &str) -> Option<Domain> {
        let id = self.get(&format!("{prefix}domain_id"));
        let name = self.get(&format!("{prefix}domain_name"));
        id.map(|i| Domain::Id(i.into())).or_else(|| name.map(|n| Domain::Name(n.into())))
    }

    fn user(&self) -> Option<Named> {
        if let Some(id) = self.get("user_id") {
            return Some(Named::Id(id.into()));
        }
        let name = self.get("username")?;
        let domain = self.domain("user_").or_else(|| self.domain("")).unwrap_or_default();
        Some(Named::Name { name: name.into(), domain })
    }

    fn scope(&self) -> Scope {
        if let Some(trust) = self.get("trust_id") {
            return Scope::Trust(trust.into());
        }
        if let Some(id) = self.get("project_id") {
            return Scope::Project(Named::Id(id.into()));
        }
        if let Some(name) = self.get("project_name") {
            let domain = self.domain("project_").or_else(|| self.domain("")).unwrap_or_default();
            return Scope::Project(Named::Name { name: name.into(), domain });
        }
        match self.domain("") {
            Some(domain) => Scope::Domain(domain),
            None => Scope::None,
        }
    }

    fn auth_method(&self, cloud: &str) -> Result<AuthMethod, ConfigError> {
        let missing = |what: &str| ConfigError::Missing { cloud: cloud.to_string(), what: what.to_string() };
        let secret = |key: &str| self.get(key).map(Secret::new);
        let kind = match self.get("auth_type").map(str::to_ascii_lowercase) {
            Some(t) => t.trim_start_matches("v3").replace(['_', '-'], ""),
            None if self.get("application_credential_secret").is_some() => "applicationcredential".into(),
            None if self.get("access_key").is_some() => "aksk".into(),
            None if self.get("token").is_some() && self.get("password").is_none() => "token".into(),
            None => "password".into(),
        };
        match kind.as_str() {
            "password" => Ok(AuthMethod::Password {
                user: self.user().ok_or_else(|| missing("username or user_id"))?,
                password: secret("password").ok_or_else(|| missing("password"))?,
            }),
            "applicationcredential" => {
                let id = self.get("application_credential_id").map(str::to_string);
                let name = self.get("application_credential_name").map(str::to_string);
                let user = self.user();
                if id.is_none() && (name.is_none() || user.is_none()) {
                    return Err(missing(
                        "application_credential_id, or application_credential_name with username or user_id",
                    ));
                }
                Ok(AuthMethod::ApplicationCredential {
                    id,
                    name,
                    user,
                    secret: secret("application_credential_secret")
                        .ok_or_else(|| missing("application_credential_secret"))?,
                })
            }
            "token" => Ok(AuthMethod::Token { token: secret("token").ok_or_else(|| missing("token"))? }),
            "aksk" => Ok(AuthMethod::AkSk {
                access_key: self.get("access_key").ok_or_else(|| missing("access_key"))?.to_string(),
                secret_key: secret("secret_key").ok_or_else(|| missing("secret_key"))?,
                security_token: secret("security_token"),
            }),
            other => Err(ConfigError::Invalid {
                cloud: cloud.into(),
                key: "auth_type".into(),
                reason: format!(
                    "unsupported auth type {other:?}; use password, v3applicationcredential, token or aksk"
                ),
            }),
        }
    }
}

fn is_override(key: &str) -> bool {
    key.ends_with("_endpoint_override")
}

/// Parses the boolean spellings the OpenStack tools accept.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut s = Settings::default();
        for (k, v) in pairs {
            s.set(k, *v);
        }
        s
    }

    #[test]
    fn password_auth_with_names_defaults_domains_to_default() {
        let cloud = settings(&[
            ("auth_url", "http://k/v3"),
            ("username", "u"),
            ("password", "p"),
            ("project_name", "proj"),
        ])
        .resolve("c")
        .unwrap();
        assert_eq!(
            cloud.auth,
            AuthMethod::Password {
                user: Named::Name { name: "u".into(), domain: Domain::Id("default".into()) },
                password: Secret::new("p"),
            }
        );
        assert_eq!(
            cloud.scope,
            Scope::Project(Named::Name { name: "proj".into(), domain: Domain::Id("default".into()) })
        );
    }

    #[test]
    fn application_credential_is_inferred_from_its_secret() {
        let cloud = settings(&[
            ("auth_url", "http://k/v3"),
            ("application_credential_id", "ac1"),
            ("application_credential_secret", "s"),
        ])
        .resolve("c")
        .unwrap();
        assert!(
            matches!(cloud.auth, AuthMethod::ApplicationCredential { id: Some(ref i), .. } if i == "ac1")
        );
        assert_eq!(cloud.scope, Scope::None);
    }

    #[test]
    fn a_trust_id_scopes_to_the_trust() {
        let cloud = settings(&[
            ("auth_url", "http://k/v3"),
            ("user_id", "u1"),
            ("password", "p"),
            ("trust_id", "t1"),
            ("project_id", "ignored"),
        ])
        .resolve("c")
        .unwrap();
        assert_eq!(cloud.scope, Scope::Trust("t1".into()));
    }

    #[test]
    fn missing_password_is_named_without_showing_values() {
        let err = settings(&[("auth_url", "http://k/v3"), ("username", "u")]).resolve("prod").unwrap_err();
        assert_eq!(err.to_string(), "cloud \"prod\": missing password");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err =
            settings(&[("auth_url", "a"), ("token", "t"), ("colour", "blue")]).resolve("c").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
    }

    #[test]
    fn aksk_credentials_make_a_huawei_cloud_without_an_auth_url() {
        let cloud = settings(&[("access_key", "AK"), ("secret_key", "SK"), ("project_id", "p1")])
            .resolve("hw")
            .unwrap();
        assert_eq!(cloud.kind, CloudKind::Huawei);
        assert_eq!(cloud.scope.project_id(), Some("p1"));
    }

    #[test]
    fn interface_accepts_the_url_suffixed_spelling() {
        let cloud = settings(&[("auth_url", "a"), ("token", "t"), ("interface", "internalURL")])
            .resolve("c")
            .unwrap();
        assert_eq!(cloud.interface, Interface::Internal);
    }

    #[test]
    fn a_huawei_iam_cloud_without_region_or_auth_url_is_refused() {
        let err = settings(&[("cloud_type", "huawei"), ("username", "u"), ("password", "p")])
            .resolve("hw")
            .unwrap_err();
        assert!(err.to_string().contains("auth_url or region_name"), "{err}");
    }
}
