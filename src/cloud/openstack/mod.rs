//! The OpenStack backend: Keystone auth, Cinder v3 and Nova.

pub mod backend;
pub mod cinder;
pub mod fault;
pub mod group_json;
pub mod keystone;
pub mod microversion;
pub mod nova;
pub mod reasons;
pub mod retype_guard;

pub use backend::OpenStackBackend;
