//! Flags of the `sandbox` mode.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::sandbox::SandboxOptions;
use crate::server::Endpoint;
use crate::wiring::ControllerOptions;

/// Flags of the `sandbox` mode.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct SandboxArgs {
    /// Where the emulator keeps its volumes and the node its mounts; a fresh directory that is
    /// removed at exit when unset.
    #[arg(long, env = "SANDBOX_STATE_DIR")]
    pub state_dir: Option<PathBuf>,

    /// How long each cloud state transition takes (creating, attaching, ...).
    #[arg(long, env = "SANDBOX_LATENCY", default_value = "200ms", value_parser = super::parse_duration)]
    pub latency: Duration,

    /// Walk one volume through the life of a PVC, print each step, clean up and exit.
    #[arg(long)]
    pub demo: bool,

    /// Quota limits of the sandbox's project, as NAME=LIMIT (-1: unlimited), comma separated.
    /// Generous by default, so that a conformance run that leaks a few volumes keeps going;
    /// names left out keep these defaults (the plain `emulator` keeps Cinder's own).
    #[arg(
        long,
        env = "SANDBOX_QUOTA",
        value_delimiter = ',',
        value_parser = parse_quota,
        default_value = "volumes=1000,snapshots=1000,gigabytes=100000,backups=1000,backup_gigabytes=100000,groups=1000"
    )]
    pub quota: Vec<(String, i64)>,
}

/// The quota resources the emulator knows.
const QUOTA_NAMES: &[&str] =
    &["volumes", "snapshots", "gigabytes", "backups", "backup_gigabytes", "groups", "per_volume_gigabytes"];

fn parse_quota(text: &str) -> Result<(String, i64), String> {
    let (name, limit) = text.split_once('=').ok_or_else(|| format!("{text:?} is not NAME=LIMIT"))?;
    let name = name.trim();
    if !QUOTA_NAMES.contains(&name) {
        return Err(format!("unknown quota {name:?}; one of {}", QUOTA_NAMES.join(", ")));
    }
    let limit: i64 = limit.trim().parse().map_err(|_| format!("quota {name}: {limit:?} is not a number"))?;
    if limit < -1 {
        return Err(format!("quota {name}: {limit} is below -1 (unlimited)"));
    }
    Ok((name.to_string(), limit))
}

/// The sandbox's quota limits: its generous defaults, overridden by what `--quota` names.
fn quotas(args: &SandboxArgs) -> BTreeMap<String, i64> {
    let mut out: BTreeMap<String, i64> = [
        ("volumes", 1000),
        ("snapshots", 1000),
        ("gigabytes", 100_000),
        ("backups", 1000),
        ("backup_gigabytes", 100_000),
        ("groups", 1000),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    out.extend(args.quota.iter().cloned());
    out
}

impl SandboxArgs {
    /// The sandbox's options: these flags, the endpoint when one was given, the controller's.
    pub fn options(&self, endpoint: Option<Endpoint>, controller: ControllerOptions) -> SandboxOptions {
        SandboxOptions {
            state_dir: self.state_dir.clone(),
            latency: self.latency,
            demo: self.demo,
            quotas: quotas(self),
            endpoint,
            controller,
        }
    }
}
