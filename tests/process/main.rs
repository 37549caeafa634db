//! The binary as kubelet, the sidecars and operators see it: start, stop and refusals, logs and
//! metrics, the secret scan, `drain-wait`, `sandbox` and the CSI wire format.

mod drain_wait;
mod lifecycle;
mod observability;
mod sandbox;
mod secret_scan;
mod wire_compat;
