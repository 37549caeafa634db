//! The resolved cloud configuration every format (clouds.yaml, `OS_*` environment, cloud.conf)
//! turns into, so the backends never care where a setting came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::secret::Secret;

/// Every configured cloud, by name, and the one used when a StorageClass names none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudsConfig {
    /// Clouds by name.
    pub clouds: BTreeMap<String, Cloud>,
    /// Name of the default cloud; always a key of `clouds`.
    pub default: String,
}

impl CloudsConfig {
    /// The cloud called `name`, or the default one for `None`.
    pub fn get(&self, name: Option<&str>) -> Option<&Cloud> {
        self.clouds.get(name.unwrap_or(&self.default))
    }

    /// The default cloud.
    pub fn default_cloud(&self) -> &Cloud {
        &self.clouds[&self.default]
    }
}

/// Which API family a cloud speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CloudKind {
    /// OpenStack: Keystone, Cinder, Nova.
    #[default]
    OpenStack,
    /// Huawei Cloud: IAM, EVS, ECS.
    Huawei,
}

/// One cloud: where to authenticate, how, and how to reach its services.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cloud {
    /// The cloud's name in the configuration.
    pub name: String,
    /// The API family.
    pub kind: CloudKind,
    /// Identity endpoint, e.g. `https://keystone.example.com/v3`.
    pub auth_url: String,
    /// How to authenticate.
    pub auth: AuthMethod,
    /// What the token is scoped to.
    pub scope: Scope,
    /// Region for catalog lookups; `None` accepts any region.
    pub region: Option<String>,
    /// Which catalog interface to use.
    pub interface: Interface,
    /// Service type -> URL replacing the catalog's endpoint.
    pub endpoint_overrides: BTreeMap<String, String>,
    /// TLS settings.
    pub tls: Tls,
    /// Block storage behaviour (cloud.conf `[BlockStorage]`).
    pub block_storage: BlockStorage,
    /// Huawei Cloud specifics (unused by OpenStack clouds).
    pub huawei: HuaweiOptions,
}

/// The public Huawei Cloud endpoint of a service in a region.
pub const DEFAULT_HUAWEI_ENDPOINT_TEMPLATE: &str = "https://{service}.{region}.myhuaweicloud.com";

/// Huawei Cloud settings that have no OpenStack counterpart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HuaweiOptions {
    /// Service URL template with `{service}` and `{region}`; `None` means the public default.
    pub endpoint_template: Option<String>,
    /// Enterprise project that new disks are created in.
    pub enterprise_project_id: Option<String>,
}

impl HuaweiOptions {
    /// The template in force.
    pub fn template(&self) -> &str {
        self.endpoint_template.as_deref().unwrap_or(DEFAULT_HUAWEI_ENDPOINT_TEMPLATE)
    }
}

/// A user, by id or by name within a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// By id.
    Id(String),
    /// By name, in the domain given by id or name.
    Name {
        /// The object's name.
        name: String,
        /// Its domain.
        domain: Domain,
    },
}

/// A Keystone domain by id or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domain {
    /// By id.
    Id(String),
    /// By name.
    Name(String),
}

impl Default for Domain {
    fn default() -> Self {
        Self::Id("default".into())
    }
}

/// The ways to prove who we are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AuthMethod {
    /// Not configured.
    #[default]
    None,
    /// User and password.
    Password {
        /// The user.
        user: Named,
        /// The password.
        password: Secret,
    },
    /// Keystone application credential, by id, or by name with its user.
    ApplicationCredential {
        /// The credential's id.
        id: Option<String>,
        /// The credential's name (needs `user`).
        name: Option<String>,
        /// The owning user, when the credential is named.
        user: Option<Named>,
        /// The credential secret.
        secret: Secret,
    },
    /// An existing token.
    Token {
        /// The token.
        token: Secret,
    },
    /// Huawei Cloud access key / secret key request signing.
    AkSk {
        /// Access key id.
        access_key: String,
        /// Secret access key.
        secret_key: Secret,
        /// Security token of temporary credentials.
        security_token: Option<Secret>,
    },
}

/// What a token is scoped to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// No explicit scope (application credentials carry their own).
    #[default]
    None,
    /// A project by id, or by name within a domain.
    Project(Named),
    /// A domain.
    Domain(Domain),
    /// A trust (acting on behalf of the trustor).
    Trust(String),
}

impl Scope {
    /// The project id when the scope names it directly.
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Self::Project(Named::Id(id)) => Some(id),
            _ => None,
        }
    }
}

/// Catalog interfaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interface {
    /// `public`.
    #[default]
    Public,
    /// `internal`.
    Internal,
    /// `admin`.
    Admin,
}

impl Interface {
    /// The catalog's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Admin => "admin",
        }
    }

    /// Parses `public`, `publicURL`, `internal`, ... as the OpenStack tools accept them.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().trim_end_matches("url") {
            "public" => Some(Self::Public),
            "internal" => Some(Self::Internal),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// TLS settings for every request to the cloud.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// Extra CA bundle (PEM) to trust.
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// Client key (PEM).
    pub client_key: Option<PathBuf>,
    /// Skip certificate verification; only when explicitly asked for.
    pub insecure: bool,
}

/// Block storage options (cloud.conf `[BlockStorage]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockStorage {
    /// Ignore the volume's availability zone when compute and volume zones differ.
    pub ignore_volume_az: bool,
    /// Do not negotiate microversions (old clouds with broken discovery).
    pub ignore_volume_microversion: bool,
    /// Maximum volumes per node to report; `None` derives it from the bus.
    pub node_volume_attach_limit: Option<u32>,
    /// Rescan the device after a resize.
    pub rescan_on_resize: bool,
}
