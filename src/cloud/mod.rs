//! The cloud room: everything that talks to a cloud's HTTP APIs. CSI services reach it only
//! through the backend trait; nothing here knows about CSI.

pub mod error;
pub mod http;
pub mod openstack;
pub mod retry;

pub use error::CloudError;
