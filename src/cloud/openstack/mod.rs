//! The OpenStack backend: Keystone auth, Cinder v3 and Nova.

pub mod fault;
pub mod keystone;
pub mod microversion;
