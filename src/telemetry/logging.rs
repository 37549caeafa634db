//! Structured logging with `tracing`: text for people, JSON for log pipelines.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span's fields (method, request id, ids) flattened in.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The `--log-level` directive did not parse.
    #[error("invalid log level {level:?}: {reason}")]
    InvalidLevel {
        /// The directive as given.
        level: String,
        /// What the filter parser said.
        reason: String,
    },
}

/// Installs the global subscriber writing to stderr; `level` takes `EnvFilter` directives
/// such as `info` or `info,cinder_evs_csi=debug`.
pub fn init(format: LogFormat, level: &str) -> Result<(), LoggingError> {
    let filter = EnvFilter::try_new(level)
        .map_err(|e| LoggingError::InvalidLevel { level: level.to_string(), reason: e.to_string() })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    // A second init (tests running the CLI in-process) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
        }
    };
    Ok(())
}
