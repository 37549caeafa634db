//! Everything the emulator knows, as persisted: identity, one resource store per project,
//! types, servers and jobs, with the lookups every part of the emulator shares. Plain data: the
//! store ([`crate::store`]) holds it behind its lock and moves it through its transitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::*;

/// Everything the emulator knows, as persisted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct World {
    /// Keystone domains by id.
    pub domains: BTreeMap<String, Domain>,
    /// Keystone projects by id.
    pub projects: BTreeMap<String, Project>,
    /// Keystone users by id.
    pub users: BTreeMap<String, User>,
    /// Application credentials by id.
    pub app_credentials: BTreeMap<String, AppCredential>,
    /// Issued tokens by token id.
    pub tokens: BTreeMap<String, Token>,
    /// Trusts by id.
    #[serde(default)]
    pub trusts: BTreeMap<String, Trust>,
    /// One resource store per project id, shared by every API view.
    pub stores: BTreeMap<String, ProjectStore>,
    /// Volume types by id.
    pub volume_types: BTreeMap<String, VolumeType>,
    /// The id of the default volume type.
    pub default_volume_type_id: String,
    /// Group types by id.
    pub group_types: BTreeMap<String, GroupType>,
    /// Compute servers by id.
    pub servers: BTreeMap<String, Server>,
    /// Default quota limits.
    pub default_quotas: BTreeMap<String, i64>,
    /// Availability zones; the first is the default.
    pub availability_zones: Vec<String>,
    /// Huawei AK/SK pairs by access key.
    #[serde(default)]
    pub access_keys: BTreeMap<String, AccessKey>,
    /// Huawei jobs (EVS and ECS) by id.
    #[serde(default)]
    pub jobs: BTreeMap<String, Job>,
    /// Cinder QoS specs by id.
    #[serde(default)]
    pub qos_specs: BTreeMap<String, QosSpec>,
    /// Cinder volume transfers offered and not yet accepted, by id.
    #[serde(default)]
    pub transfers: BTreeMap<String, Transfer>,
    /// Cinder quota classes set through the API: class name, then resource, then limit.
    #[serde(default)]
    pub quota_classes: BTreeMap<String, BTreeMap<String, i64>>,
    /// Cinder services an admin disabled or froze, keyed `<binary>@<host>`.
    #[serde(default)]
    pub service_states: BTreeMap<String, ServiceState>,
    /// Cinder 3.62 per-project default volume types: project id to type id.
    #[serde(default)]
    pub project_default_types: BTreeMap<String, String>,
}

/// The resources of one project.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ProjectStore {
    /// Volumes by id.
    pub volumes: BTreeMap<String, Volume>,
    /// Snapshots by id.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// Backups by id.
    pub backups: BTreeMap<String, Backup>,
    /// Groups by id.
    pub groups: BTreeMap<String, Group>,
    /// Group snapshots by id.
    pub group_snapshots: BTreeMap<String, GroupSnapshot>,
    /// Quota limits set for this project (others fall back to the defaults).
    pub quotas: BTreeMap<String, i64>,
    /// User messages by id (why an operation failed).
    #[serde(default)]
    pub messages: BTreeMap<String, Message>,
}

impl World {
    /// The store of a project, created on first use.
    pub fn store_mut(&mut self, project_id: &str) -> &mut ProjectStore {
        self.stores.entry(project_id.to_string()).or_default()
    }

    /// The project owning volume `id`.
    pub fn volume_owner(&self, id: &str) -> Option<String> {
        self.stores.iter().find(|(_, s)| s.volumes.contains_key(id)).map(|(p, _)| p.clone())
    }

    /// The project owning snapshot `id`.
    pub fn snapshot_owner(&self, id: &str) -> Option<String> {
        self.stores.iter().find(|(_, s)| s.snapshots.contains_key(id)).map(|(p, _)| p.clone())
    }

    /// A volume, wherever it lives.
    pub fn volume(&self, id: &str) -> Option<&Volume> {
        self.stores.values().find_map(|s| s.volumes.get(id))
    }

    /// A volume by id, mutable, wherever it lives.
    pub fn volume_mut(&mut self, id: &str) -> Option<&mut Volume> {
        self.stores.values_mut().find_map(|s| s.volumes.get_mut(id))
    }

    /// A volume type by id or name.
    pub fn volume_type(&self, name_or_id: &str) -> Option<&VolumeType> {
        self.volume_types
            .get(name_or_id)
            .or_else(|| self.volume_types.values().find(|t| t.name == name_or_id))
    }

    /// A project by id or name.
    pub fn project(&self, name_or_id: &str) -> Option<&Project> {
        self.projects.get(name_or_id).or_else(|| self.projects.values().find(|p| p.name == name_or_id))
    }

    /// The limit of `resource` for a project; -1 is unlimited.
    pub fn quota_limit(&self, project_id: &str, resource: &str) -> i64 {
        self.stores
            .get(project_id)
            .and_then(|s| s.quotas.get(resource))
            .or_else(|| self.default_quotas.get(resource))
            .copied()
            .unwrap_or(-1)
    }

    /// What a project uses, by quota resource name (snapshots count towards `gigabytes`, as
    /// in Cinder).
    pub fn usage(&self, project_id: &str) -> BTreeMap<String, i64> {
        let mut usage: BTreeMap<String, i64> = BTreeMap::new();
        for key in ["volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "groups"] {
            usage.insert(key.into(), 0);
        }
        for t in self.volume_types.values() {
            for key in ["volumes", "gigabytes", "snapshots"] {
                usage.insert(format!("{key}_{}", t.name), 0);
            }
        }
        let Some(store) = self.stores.get(project_id) else { return usage };
        let mut add = |key: String, n: i64| *usage.entry(key).or_default() += n;
        for v in store.volumes.values() {
            let type_name = self.volume_types.get(&v.volume_type_id).map(|t| t.name.clone());
            add("volumes".into(), 1);
            add("gigabytes".into(), v.size as i64);
            if let Some(name) = type_name {
                add(format!("volumes_{name}"), 1);
                add(format!("gigabytes_{name}"), v.size as i64);
            }
        }
        for s in store.snapshots.values() {
            add("snapshots".into(), 1);
            add("gigabytes".into(), s.size as i64);
            let type_name = store
                .volumes
                .get(&s.volume_id)
                .and_then(|v| self.volume_types.get(&v.volume_type_id))
                .map(|t| t.name.clone());
            if let Some(name) = type_name {
                add(format!("snapshots_{name}"), 1);
                add(format!("gigabytes_{name}"), s.size as i64);
            }
        }
        for b in store.backups.values() {
            add("backups".into(), 1);
            add("backup_gigabytes".into(), b.size as i64);
        }
        add("groups".into(), store.groups.len() as i64);
        usage
    }
}
