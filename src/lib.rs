//! `cinder-evs-csi`: a Kubernetes CSI driver for block volumes on OpenStack Cinder and
//! Huawei Cloud EVS.
//!
//! The crate is laid out by architectural room:
//! - [`cli`]: the command line: each mode's flags, turned into the root's options;
//! - [`cloud`]: cloud API clients (OpenStack, Huawei) behind one backend trait;
//! - [`contract`]: the typed values that cross layers (ids, URL paths, filesystems, the publish
//!   context, ownership keys), parsed once;
//! - [`config`]: cloud configuration (clouds.yaml, `OS_*`, cloud.conf), resolved and watched;
//! - [`csi`]: the generated CSI protocol and the gRPC services that implement it;
//! - [`host`]: this machine's kernel: devices, filesystems and mounts;
//! - [`node_identity`]: who this node is (config drive, metadata service, Kubernetes Node);
//! - [`k8s`]: the driver's own Kubernetes calls (one client builder): the node's drain wait and
//!   the garbage collector;
//! - `emulator`: the embedded cloud (the `cinder-evs-emulator` crate) the tests and sandbox use,
//!   linked only with the default `emulator` feature;
//! - `sandbox`: emulator + controller + node in one process, and the `--demo` walkthrough
//!   (with the `emulator` feature);
//! - [`import`]: adopt existing cloud volumes as static PersistentVolumes;
//! - [`server`]: the gRPC endpoint (unix socket or TCP), start-up checks and graceful drain;
//! - [`wiring`]: the one composition root: builds the services of `controller`, `node`, `all`
//!   and `sandbox`;
//! - [`telemetry`]: logging, metrics and the redaction of secrets.

#![warn(missing_docs, unreachable_pub)]

pub mod cli;
pub mod cloud;
pub mod config;
pub mod contract;
pub mod csi;
pub mod host;
pub mod import;
pub mod k8s;
pub mod node_identity;
#[cfg(feature = "emulator")]
pub mod sandbox;
pub mod server;
pub mod telemetry;
pub mod tls;
pub mod wiring;

/// The embedded cloud emulator (its own crate), linked only with the `emulator` feature.
#[cfg(feature = "emulator")]
pub use cinder_evs_emulator as emulator;

/// The driver's version, as Cargo knows it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from, or "unknown" outside a checkout.
pub const GIT_COMMIT: &str = env!("CINDER_EVS_CSI_GIT_COMMIT");
