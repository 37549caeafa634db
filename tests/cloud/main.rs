//! The cloud layer in-process: the OpenStack and Huawei backends against the emulator and
//! against fakes, the shared HTTP transport, TLS to the cloud, the AK/SK signer's vectors and
//! the property tests of every parser.

mod http_transport;
mod huawei_backend;
mod huawei_emulator;
mod huawei_fake;
mod openstack_backend;
mod properties;
mod signer_vectors;
mod tls;
