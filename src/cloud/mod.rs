//! The cloud room: everything that talks to a cloud's HTTP APIs. CSI services reach it only
//! through the backend trait; nothing here knows about CSI.

pub mod backend;
pub mod cinder_json;
pub mod conditions;
pub mod error;
#[cfg(test)]
pub mod fake;
pub mod features;
pub mod http;
pub mod huawei;
pub mod lookup;
pub mod openstack;
pub mod recent;
pub mod retry;
pub mod types;
pub mod wait;
pub mod wait_learn;
pub mod waits;

pub use backend::Backend;
pub use error::CloudError;
