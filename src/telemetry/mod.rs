//! Logging, metrics and the redaction of secrets: what the driver tells its operators.

pub mod logging;
pub mod metrics;
pub mod reason;
pub mod redact;
pub mod secret_names;
pub mod wait_metrics;
