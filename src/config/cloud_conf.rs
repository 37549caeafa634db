//! The INI (`gcfg`) `cloud.conf` read by the Go cinder-csi-plugin and the OpenStack cloud
//! controller manager: `[Global]` (or `[Global "name"]` for more clouds), `[BlockStorage]`,
//! `[Metadata]`. Sections meant for other components of the same file are ignored.
//!
//! Compatibility rule: every key cinder-csi or the OpenStack cloud provider documents is
//! accepted. The ones this driver does not use are named in one warning line. Any other key in a
//! section this driver reads (`[Global]`, `[BlockStorage]`) is refused, with the nearest key it
//! knows suggested: there, an unknown key is almost always a typo of a setting that would
//! otherwise silently not apply (the Go plugin ignores it; we do not).

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

/// `[Global]` keys cinder-csi or the cloud provider know that this driver does not use.
const IGNORED_GLOBAL_KEYS: &[&str] = &["trustee-id", "trustee-password", "kubeconfig-path"];

/// `[BlockStorage]` keys of cinder-csi or the in-tree provider that this driver does not use
/// (it always speaks Cinder v3 and finds devices by serial).
const IGNORED_BLOCK_STORAGE_KEYS: &[&str] = &["bs-version", "trust-device-path"];

/// `[Metadata]` keys: cinder-csi's node reads them; this driver takes `--node-id-sources`.
const METADATA_KEYS: &[&str] = &["search-order", "request-timeout"];

/// Sections that belong to other components sharing cloud.conf.
const FOREIGN_SECTIONS: &[&str] = &["networking", "loadbalancer", "loadbalancerclass", "route"];

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
    /// Known keys this driver does not use, as `[Section] key`, each once.
    pub ignored: Vec<String>,
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
                    _ if IGNORED_GLOBAL_KEYS.contains(&key.as_str()) => {
                        note_ignored(&mut conf, "Global", &key)
                    }
                    _ => {
                        let canonical = lookup(GLOBAL_KEYS, &key).ok_or_else(|| {
                            err(unknown_key(&key, "Global", GLOBAL_KEYS, IGNORED_GLOBAL_KEYS))
                        })?;
                        conf.clouds.entry(cloud).or_default().set(canonical, value);
                    }
                }
            }
            "blockstorage" if IGNORED_BLOCK_STORAGE_KEYS.contains(&key.as_str()) => {
                note_ignored(&mut conf, "BlockStorage", &key)
            }
            "blockstorage" => {
                let canonical = lookup(BLOCK_STORAGE_KEYS, &key).ok_or_else(|| {
                    err(unknown_key(&key, "BlockStorage", BLOCK_STORAGE_KEYS, IGNORED_BLOCK_STORAGE_KEYS))
                })?;
                block_storage.set(canonical, value);
            }
            // Not ours to judge, but a setting cinder-csi's node would have obeyed: say so.
            "metadata" if METADATA_KEYS.contains(&key.as_str()) => note_ignored(&mut conf, "Metadata", &key),
            "metadata" => {}
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
    if !conf.ignored.is_empty() {
        // Key names only: values may be secrets.
        tracing::warn!(origin, keys = %conf.ignored.join(", "), "cloud.conf keys this driver does not use are ignored");
    }
    Ok(conf)
}

fn note_ignored(conf: &mut CloudConf, section: &str, key: &str) {
    let entry = format!("[{section}] {key}");
    if !conf.ignored.contains(&entry) {
        conf.ignored.push(entry);
    }
}

/// The refusal of a key no documented cloud.conf has, naming the nearest known key when one is
/// close enough to be what was meant.
fn unknown_key(key: &str, section: &str, used: &[(&str, &str)], ignored: &[&str]) -> String {
    let nearest = used
        .iter()
        .map(|(k, _)| *k)
        .chain(ignored.iter().copied())
        .map(|known| (edit_distance(key, known), known))
        .min()
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 4));
    match nearest {
        Some((_, known)) => format!("unknown key {key:?} in [{section}] (did you mean {known:?}?)"),
        None => format!("unknown key {key:?} in [{section}]"),
    }
}

/// Levenshtein distance, for suggesting the key a typo meant.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
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

    /// The documented example files of cinder-csi and the cloud provider, written from their
    /// documented keys.
    const FIXTURES: &[(&str, &str)] = &[
        ("multi-region.conf", include_str!("../../tests/fixtures/cloud-conf/multi-region.conf")),
        ("password.conf", include_str!("../../tests/fixtures/cloud-conf/password.conf")),
        (
            "application-credential.conf",
            include_str!("../../tests/fixtures/cloud-conf/application-credential.conf"),
        ),
        ("occm-full.conf", include_str!("../../tests/fixtures/cloud-conf/occm-full.conf")),
        ("use-clouds.conf", include_str!("../../tests/fixtures/cloud-conf/use-clouds.conf")),
    ];

    #[test]
    fn every_documented_cinder_csi_example_file_is_accepted() {
        for (name, text) in FIXTURES {
            let conf = parse(text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            for (cloud, settings) in &conf.clouds {
                settings.resolve(cloud).unwrap_or_else(|e| panic!("{name} [{cloud}]: {e}"));
            }
        }
    }

    #[test]
    fn the_multi_region_example_defines_three_clouds_and_names_its_ignored_key() {
        let conf = parse(FIXTURES[0].1, "multi-region.conf").unwrap();
        assert_eq!(conf.clouds.keys().collect::<Vec<_>>(), vec!["default", "zone-one", "zone-two"]);
        assert_eq!(conf.ignored, vec!["[BlockStorage] bs-version".to_string()]);
    }

    #[test]
    fn known_keys_this_driver_does_not_use_are_listed_once_without_their_values() {
        let conf = parse(
            "[Global]\nauth-url=a\ntoken=t\ntrustee-id=tid\ntrustee-password=hunter2\n[Global \"b\"]\n\
             auth-url=b\ntoken=t\ntrustee-password=hunter3\n[Metadata]\nsearch-order=configDrive\n",
            "c",
        )
        .unwrap();
        assert_eq!(
            conf.ignored,
            vec!["[Global] trustee-id", "[Global] trustee-password", "[Metadata] search-order"]
        );
        assert!(!format!("{:?}", conf.ignored).contains("hunter"));
    }

    #[test]
    fn a_typo_of_a_key_this_driver_reads_is_refused_with_the_key_it_meant() {
        for (text, typo, meant) in [
            ("[Global]\nauth_url=a\n", "auth_url", "auth-url"),
            ("[Global]\nauth-url=a\ntenant-nme=p\n", "tenant-nme", "tenant-name"),
            (
                "[Global]\nauth-url=a\ntoken=t\n[BlockStorage]\nignore-volume-zone=true\n",
                "ignore-volume-zone",
                "ignore-volume-az",
            ),
            (
                "[Global]\nauth-url=a\ntoken=t\n[BlockStorage]\nrescan-on-resise=true\n",
                "rescan-on-resise",
                "rescan-on-resize",
            ),
        ] {
            let error = parse(text, "cloud.conf").unwrap_err().to_string();
            assert!(
                error.contains(&format!("{typo:?}")) && error.contains(&format!("did you mean {meant:?}")),
                "{error}"
            );
        }
    }

    #[test]
    fn an_unknown_key_far_from_any_known_one_is_refused_without_a_guess() {
        let error =
            parse("[Global]\nauth-url=a\nfavourite-colour=blue\n", "cloud.conf").unwrap_err().to_string();
        assert!(error.contains("favourite-colour") && !error.contains("did you mean"), "{error}");
    }

    #[test]
    fn sections_of_other_components_are_ignored_but_unknown_keys_are_not() {
        let ok = parse(
            "[Global]\nauth-url=a\ntoken=t\n[LoadBalancer]\nlb-provider=octavia\n[LoadBalancerClass \"x\"]\nsubnet-id=s\n",
            "c",
        )
        .unwrap();
        assert_eq!(ok.clouds.len(), 1);
        assert!(ok.ignored.is_empty(), "{:?}", ok.ignored);
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
