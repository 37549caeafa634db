//! The CSI protocol (generated from `proto/csi.proto`) and the gRPC services implementing it.
//!
//! Services talk to lower rooms only through their typed errors, which [`status`] turns into
//! gRPC statuses; every RPC goes through [`observe`] for its log line, span and metrics.

pub mod cancel;
pub mod context;
pub mod controller;
pub mod deadline;
pub mod identity;
pub mod locks;
pub mod node;
pub mod observe;
pub mod params;
pub mod readiness;
pub mod status;
pub mod validate;

/// Generated CSI v1 messages, clients and servers, with redacting `Debug` impls.
#[allow(clippy::all, missing_docs)]
pub mod pb {
    tonic::include_proto!("csi.v1");
    include!(concat!(env!("OUT_DIR"), "/csi_debug.rs"));
    include!(concat!(env!("OUT_DIR"), "/csi_rpc_fields.rs"));
}
