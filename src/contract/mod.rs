//! Values that cross layers, parsed once at the edge of the driver and typed from then on.
//!
//! Everything a CSI request names (volume, snapshot, backup, group and node ids) is hostile
//! until it has been parsed here. Nothing outside this module turns a request's text into a
//! cloud id, and nothing puts a cloud id into a URL except through [`ids::UrlPath`].

pub mod fs;
pub mod ids;
pub mod ownership;
pub mod provider_id;
pub mod publish;
pub mod size;
pub mod wwn;

pub use fs::FsType;
pub use ids::{CloudId, Handle, IdError, SnapshotRef, UrlPath};
pub use publish::PublishContext;
pub use size::GIB;
