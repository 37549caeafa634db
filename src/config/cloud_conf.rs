//! The INI (`gcfg`) `cloud.conf` read by the Go cinder-csi-plugin and the OpenStack cloud
//! controller manager: `[Global]` (or `[Global "name"]` for more clouds), `[BlockStorage]`,
//! `[Metadata]`. Sections meant for other components of the same file are ignored.

use std::collections::BTreeMap;

use super::ConfigError;
use super::settings::Settings;

/// The name given to the cloud of a plain `[Global]` section.
pub const DEFAULT_CLOUD: &str = "default";

/// `[Global]` keys and their canonical names.
const GLOBAL_KEYS: &[(&str, &str)] = &[
    ("auth-url", "auth_url"),
    ("username", "username"),
    ("user-id", "user_id"),
    ("password", "password"),
    ("tenant-id", "project_id"),
    ("project-id", "project_id"),
    ("tenant-name", "project_name"),
    ("project-name", "project_name"),
    ("tenant-domain-id", "project_domain_id"),
    ("project-domain-id", "project_domain_id"),
    ("tenant-domain-name", "project_domain_name"),
    ("project-domain-name", "project_domain_name"),
    ("user-domain-id", "user_domain_id"),
    ("user-domain-name", "user_domain_name"),
    ("domain-id", "domain_id"),
    ("domain-name", "domain_name"),
    ("trust-id", "trust_id"),
    ("region", "region_name"),
    ("ca-file", "cacert"),
    ("cert-file", "cert"),
    ("key-file", "key"),
    ("tls-insecure", "insecure"),
    ("endpoint-type", "interface"),
    ("os-endpoint-type", "interface"),
    ("application-credential-id", "application_credential_id"),
    ("application-credential-name", "application_credential_name"),
    ("application-credential-secret", "application_credential_secret"),
    ("token", "token"),
    ("cloud-type", "cloud_type"),
    ("access-key", "access_key"),
    ("secret-key", "secret_key"),
    ("security-token", "security_token"),
    ("endpoint-template", "endpoint_template"),
    ("enterprise-project-id", "enterprise_project_id"),
    ("evs-endpoint-override", "evs_endpoint_override"),
    ("ecs-endpoint-override", "ecs_endpoint_override"),
];

/// `[BlockStorage]` keys and their canonical names.
const BLOCK_STORAGE_KEYS: &[(&str, &str)] = &[
    ("node-volume-attach-limit", "node_volume_attach_limit"),
    ("rescan-on-resize", "rescan_on_resize"),
    ("ignore-volume-az", "ignore_volume_az"),
    ("ignore-volume-microversion", "ignore_volume_microversion"),
];

/// Sections that belong to other components sharing cloud.conf.
const FOREIGN_SECTIONS: &[&str] = &["networking", "loadbalancer", "route", "metadata"];

/// A cloud.conf that asks to read clouds.yaml instead (`use-clouds = true`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct UseClouds {
    /// `clouds-file`, if given.
    pub file: Option<String>,
    /// `cloud`, the entry to use.
    pub cloud: Option<String>,
}

/// What a cloud.conf describes.
#[derive(Debug, Default)]
pub struct CloudConf {
    /// Settings per cloud name (`default` for a plain `[Global]`).
    pub clouds: BTreeMap<String, Settings>,
    /// `[BlockStorage]`, already merged into `clouds`; kept for clouds read from clouds.yaml.
    pub block_storage: Settings,
    /// Present when `[Global]` says `use-clouds = true`.
    pub use_clouds: Option<UseClouds>,
}

/// Parses cloud.conf text.
pub fn parse(text: &str, origin: &str) -> Result<CloudConf, ConfigError> {
    let mut conf = CloudConf::default();
    let mut block_storage = Settings::default();
    let mut use_clouds = UseClouds::default();
    let mut use_clouds_on = false;
    let mut section: Option<(String, Option<String>)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let err = |reason: String| ConfigError::Syntax { origin: format!("{origin}:{line_no}"), reason };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.strip_suffix(']').ok_or_else(|| err("unclosed section header".into()))?;
            section = Some(parse_header(header).map_err(err)?);
            continue;
        }
        let (name, sub) = section.clone().ok_or_else(|| err("setting outside of any section".into()))?;
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), parse_value(v).map_err(&err)?),
            None => (line.to_ascii_lowercase(), "true".to_string()),
        };
        match name.as_str() {
            "global" => {
                let cloud = sub.unwrap_or_else(|| DEFAULT_CLOUD.to_string());
                match key.as_str() {
                    "use-clouds" => use_clouds_on = super::settings::parse_bool(&value).unwrap_or(false),
                    "clouds-file" => use_clouds.file = Some(value),
                    "cloud" => use_clouds.cloud = Some(value),
                    _ => {
                        let canonical = lookup(GLOBAL_KEYS, &key)
                            .ok_or_else(|| err(format!("unknown key {key:?} in [Global]")))?;
                        conf.clouds.entry(cloud).or_default().set(canonical, value);
                    }
                }
            }
            "blockstorage" => {
                let canonical = lookup(BLOCK_STORAGE_KEYS, &key)
                    .ok_or_else(|| err(format!("unknown key {key:?} in [BlockStorage]")))?;
                block_storage.set(canonical, value);
            }
            n if FOREIGN_SECTIONS.contains(&n) => {}
            other => return Err(err(format!("unknown section [{other}]"))),
        }
    }
    if use_clouds_on {
        conf.use_clouds = Some(use_clouds);
    }
    for settings in conf.clouds.values_mut() {
        settings.merge(&block_storage);
    }
    conf.block_storage = block_storage;
    if conf.clouds.is_empty() && conf.use_clouds.is_none() {
        return Err(ConfigError::Syntax { origin: origin.into(), reason: "no [Global] section".into() });
    }
    Ok(conf)
}

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, c)| *c)
}

/// `Global` or `Global "name"`. Errors never quote the line: a mangled header may hold the
/// text of a setting (a password) that lost its line break.
fn parse_header(header: &str) -> Result<(String, Option<String>), String> {
    let header = header.trim();
    let (name, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("malformed section header: a name of letters, digits, '-' or '_' is expected".into());
    }
    match rest.trim() {
        "" => Ok((name.to_ascii_lowercase(), None)),
        rest => {
            let sub = rest
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .ok_or_else(|| format!("subsection of [{name}] must be quoted"))?;
            Ok((name.to_ascii_lowercase(), Some(sub.replace("\\\"", "\"").replace("\\\\", "\\"))))
        }
    }
}

/// A value: quoted parts keep spaces and `#`/`;`, escapes `\" \\ \n \t` are honoured, and an
/// unquoted `#` or `;` starts a comment.
fn parse_value(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.trim().chars();
    let mut pending_space = String::new();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                out.push_str(&pending_space);
                pending_space.clear();
            }
            '\\' => {
                let escaped = match chars.next() {
                    Some('"') => '"',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(other) => return Err(format!("unknown escape \\{other}")),
                    None => return Err("dangling backslash".into()),
                };
                out.push_str(&pending_space);
                pending_space.clear();
                out.push(escaped);
            }
            '#' | ';' if !quoted => break,
            c if c.is_whitespace() && !quoted => pending_space.push(c),
            c => {
                out.push_str(&pending_space);
                pending_space.clear();
                out.push(c);
            }
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{AuthMethod, Named};

    #[test]
    fn values_honour_quotes_escapes_and_comments() {
        assert_eq!(parse_value(" plain value # comment").unwrap(), "plain value");
        assert_eq!(parse_value(r#""p#ss;word \"x\"" ; c"#).unwrap(), "p#ss;word \"x\"");
        assert!(parse_value("\"open").is_err());
    }

    #[test]
    fn a_mangled_header_is_refused_without_quoting_what_it_holds() {
        let error =
            parse("[BlockStorage]password=s3cret [Global \"]\n", "cloud.conf").unwrap_err().to_string();
        assert!(error.starts_with("cloud.conf:1"), "{error}");
        assert!(!error.contains("s3cret") && !error.contains("password"), "{error}");
        let error = parse("[Global east]\n", "cloud.conf").unwrap_err().to_string();
        assert!(error.contains("must be quoted"), "{error}");
    }

    #[test]
    fn global_subsections_define_more_clouds() {
        let conf = parse(
            "[Global]\nauth-url=http://a/v3\ntoken=t\n[Global \"east\"]\nauth-url=http://e/v3\ntoken=u\n",
            "cloud.conf",
        )
        .unwrap();
        assert_eq!(conf.clouds.keys().collect::<Vec<_>>(), vec!["default", "east"]);
    }

    #[test]
    fn block_storage_applies_to_every_cloud() {
        let conf = parse(
            "[Global]\nauth-url=a\ntoken=t\n[Global \"b\"]\nauth-url=b\ntoken=t\n[BlockStorage]\nignore-volume-az=true\n",
            "cloud.conf",
        )
        .unwrap();
        for (name, settings) in &conf.clouds {
            assert!(settings.resolve(name).unwrap().block_storage.ignore_volume_az, "{name}");
        }
    }

    #[test]
    fn sections_of_other_components_are_ignored_but_unknown_keys_are_not() {
        let ok = parse("[Global]\nauth-url=a\ntoken=t\n[LoadBalancer]\nlb-provider=octavia\n", "c").unwrap();
        assert_eq!(ok.clouds.len(), 1);
        let err = parse("[Global]\nauth-url=a\nfavourite-colour=blue\n", "cloud.conf").unwrap_err();
        assert!(
            err.to_string().contains("cloud.conf:3") && err.to_string().contains("favourite-colour"),
            "{err}"
        );
    }

    #[test]
    fn tenant_keys_map_to_the_project_scope() {
        let conf =
            parse("[Global]\nauth-url=a\nusername=u\npassword=p\ntenant-id=t1\n# comment\n; comment\n", "c")
                .unwrap();
        let cloud = conf.clouds["default"].resolve("default").unwrap();
        assert!(matches!(cloud.auth, AuthMethod::Password { .. }));
        assert_eq!(cloud.scope, crate::config::model::Scope::Project(Named::Id("t1".into())));
    }

    #[test]
    fn use_clouds_is_reported() {
        let conf = parse("[Global]\nuse-clouds=true\nclouds-file=/etc/c.yaml\ncloud=prod\n", "c").unwrap();
        assert_eq!(
            conf.use_clouds,
            Some(UseClouds { file: Some("/etc/c.yaml".into()), cloud: Some("prod".into()) })
        );
    }

    #[test]
    fn a_huawei_global_section_resolves_to_an_aksk_cloud_with_its_options() {
        let conf = parse(
            "[Global]\ncloud-type=huawei\naccess-key=AK\nsecret-key=SK\nsecurity-token=ST\nproject-id=p1\n\
             region=cn-north-4\nenterprise-project-id=ep1\nendpoint-template=https://{service}.{region}.example.eu\n\
             evs-endpoint-override=http://127.0.0.1:9000\n",
            "cloud.conf",
        )
        .unwrap();
        let cloud = conf.clouds[DEFAULT_CLOUD].resolve(DEFAULT_CLOUD).unwrap();
        assert_eq!(cloud.kind, crate::config::model::CloudKind::Huawei);
        match &cloud.auth {
            AuthMethod::AkSk { access_key, secret_key, security_token } => {
                assert_eq!(access_key, "AK");
                assert_eq!(secret_key.expose(), "SK");
                assert_eq!(security_token.as_ref().map(|t| t.expose()), Some("ST"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(cloud.scope.project_id(), Some("p1"));
        assert_eq!(cloud.huawei.enterprise_project_id.as_deref(), Some("ep1"));
        assert_eq!(cloud.huawei.template(), "https://{service}.{region}.example.eu");
        assert_eq!(cloud.endpoint_overrides["evs"], "http://127.0.0.1:9000");
    }
}
