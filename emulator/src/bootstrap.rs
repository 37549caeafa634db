//! Applies the config to a fresh or loaded world: domains, projects, users, application
//! credentials, servers, zones and quotas (config wins; ids already issued are kept), and the
//! devstack-like volume types on first start.

use super::clock::now_ms;
use super::config::{EmulatorConfig, cinder_default_quotas};
use super::errors::EmulatorError;
use super::model::*;
use super::world::World;

/// The name of the group type `GET /group_types/default` answers with.
pub const DEFAULT_GROUP_TYPE: &str = "default_group_type";

/// The quota class whose limits are the project defaults.
pub const DEFAULT_QUOTA_CLASS: &str = "default";

/// Puts the saved `default` quota class over the configured defaults (at start, after the
/// config is applied).
fn apply_default_quota_class(w: &mut World) {
    if let Some(limits) = w.quota_classes.get(DEFAULT_QUOTA_CLASS) {
        let limits = limits.clone();
        w.default_quotas.extend(limits);
    }
}

/// A Keystone-style id: 32 hex digits.
pub fn keystone_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// A resource id: a hyphenated UUID.
pub fn resource_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Brings the world in line with the config.
pub fn apply(world: &mut World, config: &EmulatorConfig) -> Result<(), EmulatorError> {
    if config.availability_zones.is_empty() {
        return Err(EmulatorError::Config("at least one availability zone is needed".into()));
    }
    world.availability_zones = config.availability_zones.clone();
    let mut quotas = cinder_default_quotas();
    quotas.extend(config.default_quotas.clone());
    world.default_quotas = quotas;
    apply_default_quota_class(world);
    for user in &config.users {
        ensure_user(world, user);
    }
    for server in &config.servers {
        let project_id = world.project(&server.project).map(|p| p.id.clone()).ok_or_else(|| {
            EmulatorError::Config(format!("server {} names unknown project {}", server.name, server.project))
        })?;
        let zone = server.availability_zone.clone().unwrap_or_else(|| config.availability_zones[0].clone());
        let existing = world
            .servers
            .values()
            .find(|s| server.id.as_ref().map_or(s.name == server.name, |id| &s.id == id))
            .map(|s| s.id.clone());
        let id = existing.or_else(|| server.id.clone()).unwrap_or_else(resource_id);
        let created_at_ms = world.servers.get(&id).map_or_else(now_ms, |s| s.created_at_ms);
        world.servers.insert(
            id.clone(),
            Server {
                id,
                name: server.name.clone(),
                project_id,
                availability_zone: zone,
                this_host: server.this_host,
                created_at_ms,
            },
        );
    }
    if world.volume_types.is_empty() {
        default_types(world);
    }
    huawei_types(world);
    world.access_keys.clear();
    for key in &config.access_keys {
        let user = world.users.values().find(|u| u.name == key.user).ok_or_else(|| {
            EmulatorError::Config(format!("access key {} names unknown user {}", key.access_key, key.user))
        })?;
        let record = AccessKey {
            secret: key.secret_key.clone(),
            user_id: user.id.clone(),
            security_token: None,
            expires_at_ms: None,
        };
        world.access_keys.insert(key.access_key.clone(), record);
    }
    if world.group_types.is_empty() {
        let id = resource_id();
        world.group_types.insert(
            id.clone(),
            GroupType {
                id,
                name: DEFAULT_GROUP_TYPE.into(),
                description: Some("Default group type".into()),
                is_public: true,
                group_specs: Default::default(),
            },
        );
    }
    Ok(())
}

/// Creates or updates a configured user (its domain, project, roles and application
/// credential); returns its id.
pub fn ensure_user(world: &mut World, user: &crate::config::UserConfig) -> String {
    let domain_id = domain(world, &user.domain);
    let project_id = project(world, &user.project, &domain_id);
    let user_id = match world.users.values().find(|u| u.name == user.name && u.domain_id == domain_id) {
        Some(u) => u.id.clone(),
        None => {
            let id = keystone_id();
            world.users.insert(
                id.clone(),
                User {
                    id: id.clone(),
                    name: user.name.clone(),
                    domain_id: domain_id.clone(),
                    password: String::new(),
                    default_project_id: None,
                    roles: Default::default(),
                    domain_roles: Default::default(),
                },
            );
            id
        }
    };
    let record = world.users.get_mut(&user_id).expect("just ensured");
    record.password = user.password.clone();
    record.default_project_id = Some(project_id.clone());
    record.roles.insert(project_id.clone(), user.roles.clone());
    // As devstack does for its admin: the project admin also administers the domain.
    if user.roles.iter().any(|r| r == "admin") {
        record.domain_roles.insert(domain_id.clone(), vec!["admin".into()]);
    }
    if let Some((name, secret)) = &user.app_credential {
        let existing = world.app_credentials.values_mut().find(|c| c.user_id == user_id && &c.name == name);
        match existing {
            Some(credential) => {
                credential.secret = secret.clone();
                credential.project_id = project_id.clone();
            }
            None => {
                let id = keystone_id();
                world.app_credentials.insert(
                    id.clone(),
                    AppCredential {
                        id,
                        name: name.clone(),
                        secret: secret.clone(),
                        user_id: user_id.clone(),
                        project_id: project_id.clone(),
                        expires_at_ms: None,
                    },
                );
            }
        }
    }
    world.store_mut(&project_id);
    user_id
}

fn domain(world: &mut World, name: &str) -> String {
    if let Some(d) = world.domains.values().find(|d| d.name == name) {
        return d.id.clone();
    }
    let id = if name == "Default" { "default".to_string() } else { keystone_id() };
    world.domains.insert(id.clone(), Domain { id: id.clone(), name: name.into() });
    id
}

fn project(world: &mut World, name: &str, domain_id: &str) -> String {
    if let Some(p) = world.projects.values().find(|p| p.name == name && p.domain_id == domain_id) {
        return p.id.clone();
    }
    let id = keystone_id();
    world
        .projects
        .insert(id.clone(), Project { id: id.clone(), name: name.into(), domain_id: domain_id.into() });
    id
}

/// The Huawei EVS disk types, added to any world that lacks them (also to state from before
/// they existed).
pub const HUAWEI_TYPES: &[(&str, &str)] = &[
    ("SAS", "High I/O"),
    ("SSD", "Ultra-high I/O"),
    ("GPSSD", "General purpose SSD"),
    ("ESSD", "Extreme SSD"),
    ("GPSSD2", "General purpose SSD V2 (provisioned IOPS and throughput)"),
    ("ESSD2", "Extreme SSD V2 (provisioned IOPS)"),
];

fn huawei_types(world: &mut World) {
    let zones = world.availability_zones.join(",");
    for (name, description) in HUAWEI_TYPES {
        let existing = world.volume_types.values_mut().find(|t| t.name == *name);
        if let Some(existing) = existing {
            existing.extra_specs.insert("RESKEY:availability_zones".into(), zones.clone());
            continue;
        }
        let id = resource_id();
        let extra_specs = [
            ("volume_backend_name".to_string(), format!("evs-{}", name.to_lowercase())),
            ("RESKEY:availability_zones".to_string(), zones.clone()),
        ]
        .into_iter()
        .collect();
        world.volume_types.insert(
            id.clone(),
            VolumeType {
                id,
                name: name.to_string(),
                description: Some(description.to_string()),
                is_public: true,
                extra_specs,
                projects: Default::default(),
                encryption: None,
            },
        );
    }
}

fn default_types(world: &mut World) {
    let specs = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let types = [
        ("__DEFAULT__", "Default Volume Type", specs(&[])),
        ("lvmdriver-1", "LVM volumes", specs(&[("volume_backend_name", "lvmdriver-1")])),
        (
            "multiattach",
            "Volumes that several servers may attach",
            specs(&[("volume_backend_name", "lvmdriver-1"), ("multiattach", "<is> True")]),
        ),
        ("fast", "Volumes on the fast backend", specs(&[("volume_backend_name", "fastdriver")])),
    ];
    for (name, description, extra_specs) in types {
        let id = resource_id();
        if name == "__DEFAULT__" {
            world.default_volume_type_id = id.clone();
        }
        world.volume_types.insert(
            id.clone(),
            VolumeType {
                id,
                name: name.into(),
                description: Some(description.into()),
                is_public: true,
                extra_specs,
                projects: Default::default(),
                encryption: None,
            },
        );
    }
}
