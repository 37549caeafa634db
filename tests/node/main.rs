//! The node service on real loop devices and mounts (root), hostile requests included, and the
//! node's identity and configuration isolation.

mod config_isolation;
mod harness;
mod hostile;
mod identity;
mod requests;
mod volumes;
