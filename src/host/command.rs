//! Running the system tools (mkfs, blkid, resize2fs, ...) with their output captured, so that a
//! failure reaches the CO with the tool's own words.

use std::process::{Output, Stdio};

use super::{Error, Result};

/// How much of a tool's standard error is kept in an error message.
const STDERR_TAIL: usize = 600;

/// Runs `program` with `args` (stdin closed) and returns its output whatever its exit status.
pub async fn output(program: &str, args: &[&str]) -> Result<Output> {
    tracing::debug!(program, ?args, "running");
    tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(super::io_error("running", program))
}

/// Runs `program` with `args` and fails unless it exits 0.
pub async fn run(program: &str, args: &[&str]) -> Result<Output> {
    let out = output(program, args).await?;
    if out.status.success() { Ok(out) } else { Err(failure(program, args, &out)) }
}

/// The error describing a tool's failed run.
pub fn failure(program: &str, args: &[&str], out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    let start = stderr.len().saturating_sub(STDERR_TAIL);
    let start = (start..stderr.len()).find(|i| stderr.is_char_boundary(*i)).unwrap_or(stderr.len());
    Error::Command {
        program: program.to_string(),
        args: args.join(" "),
        status: out.status.to_string(),
        stderr: stderr[start..].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failing_tool_reports_its_status_and_stderr() {
        let error = run("sh", &["-c", "echo boom >&2; exit 3"]).await.unwrap_err();
        let text = error.to_string();
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }

    #[tokio::test]
    async fn a_missing_tool_is_an_io_error() {
        assert!(matches!(run("/nonexistent/tool", &[]).await, Err(Error::Io { .. })));
    }
}
