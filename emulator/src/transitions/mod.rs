//! What a settled transition leaves in the world beyond the resource's own state: Cinder's user
//! messages and the Huawei jobs that wait on it. The store calls these as it settles; the API
//! faces only read what they recorded.

pub mod jobs;
pub mod messages;
