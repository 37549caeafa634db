//! The Huawei Cloud backend: AK/SK signing or IAM tokens, EVS for disks, ECS for attachments,
//! asynchronous jobs followed through the wait engine.

pub mod auth;
pub mod backend;
pub mod ecs;
pub mod endpoints;
pub mod evs;
pub mod fault;
pub mod jobs;
pub mod sign;
pub mod tags;

pub use backend::HuaweiBackend;
