//! The `OS_*` environment variables of an openrc file.

use std::collections::HashMap;

use super::settings::Settings;

/// `OS_*` variables whose canonical key is not simply the lowercased rest of the name.
const ALIASES: &[(&str, &str)] = &[
    ("OS_TENANT_NAME", "project_name"),
    ("OS_TENANT_ID", "project_id"),
    ("OS_ENDPOINT_TYPE", "interface"),
    ("OS_INTERFACE", "interface"),
    ("OS_CLOUD_TYPE", "cloud_type"),
    ("OS_ACCESS_KEY", "access_key"),
    ("OS_SECRET_KEY", "secret_key"),
];

/// Variables of an openrc file that concern only other tools.
const IGNORED: &[&str] = &[
    "OS_CLOUD",
    "OS_IDENTITY_API_VERSION",
    "OS_VOLUME_API_VERSION",
    "OS_COMPUTE_API_VERSION",
    "OS_NO_CACHE",
    "OS_AUTH_VERSION",
];

/// True when the environment describes a cloud.
pub fn is_present(env: &HashMap<String, String>) -> bool {
    env.contains_key("OS_AUTH_URL") || env.contains_key("OS_ACCESS_KEY")
}

/// Reads every `OS_*` variable into settings.
pub fn parse(env: &HashMap<String, String>) -> Settings {
    let mut settings = Settings::default();
    let mut names: Vec<&String> = env.keys().filter(|k| k.starts_with("OS_")).collect();
    names.sort();
    for name in names {
        if IGNORED.contains(&name.as_str()) {
            continue;
        }
        let canonical = ALIASES
            .iter()
            .find(|(alias, _)| alias == name)
            .map_or_else(|| name["OS_".len()..].to_ascii_lowercase(), |(_, canon)| canon.to_string());
        settings.set(&canonical, env[name].clone());
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Named, Scope};

    #[test]
    fn tenant_variables_are_project_aliases() {
        let env = HashMap::from([
            ("OS_AUTH_URL".to_string(), "http://k/v3".to_string()),
            ("OS_TOKEN".to_string(), "t".to_string()),
            ("OS_TENANT_ID".to_string(), "p1".to_string()),
            ("OS_IDENTITY_API_VERSION".to_string(), "3".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ]);
        let cloud = parse(&env).resolve("envvars").unwrap();
        assert_eq!(cloud.scope, Scope::Project(Named::Id("p1".into())));
    }

    #[test]
    fn huawei_variables_make_an_aksk_cloud() {
        let env: HashMap<String, String> = [
            ("OS_CLOUD_TYPE", "huawei"),
            ("OS_ACCESS_KEY", "AK"),
            ("OS_SECRET_KEY", "SK"),
            ("OS_SECURITY_TOKEN", "ST"),
            ("OS_PROJECT_ID", "p1"),
            ("OS_REGION_NAME", "ap-southeast-1"),
            ("OS_ENTERPRISE_PROJECT_ID", "ep1"),
            ("OS_ENDPOINT_TEMPLATE", "https://{service}.{region}.example.com"),
            ("OS_ECS_ENDPOINT_OVERRIDE", "http://ecs.local"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert!(is_present(&env));
        let cloud = parse(&env).resolve("envvars").unwrap();
        assert_eq!(cloud.kind, crate::config::model::CloudKind::Huawei);
        assert!(
            matches!(cloud.auth, crate::config::model::AuthMethod::AkSk { ref security_token, .. } if security_token.is_some())
        );
        assert_eq!(cloud.region.as_deref(), Some("ap-southeast-1"));
        assert_eq!(cloud.huawei.enterprise_project_id.as_deref(), Some("ep1"));
        assert_eq!(cloud.huawei.endpoint_template.as_deref(), Some("https://{service}.{region}.example.com"));
        assert_eq!(cloud.endpoint_overrides["ecs"], "http://ecs.local");
    }
}
