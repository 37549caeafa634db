//! The driver processes of a chaos run, the killer that SIGKILLs and restarts them, and the
//! CSI sidecars' retry rule for every RPC the workload sends.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

use super::Rng;
use testkit::Driver;

/// How the driver is deployed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topology {
    /// Controller and node as two processes on two sockets.
    Split,
    /// One process in `all` mode serving both.
    All,
}

/// Which service an RPC goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Controller RPCs.
    Controller,
    /// Node RPCs.
    Node,
}

struct Process {
    name: &'static str,
    args: Vec<String>,
    driver: Driver,
}

/// The running driver processes.
pub struct Fleet {
    processes: Mutex<Vec<Process>>,
    controller_socket: PathBuf,
    node_socket: PathBuf,
    /// SIGKILLs sent so far.
    pub kills: AtomicU64,
    /// RPC attempts that failed and were retried.
    pub retries: AtomicU64,
}

fn start(args: &[String]) -> Driver {
    Driver::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

impl Fleet {
    /// Starts the processes; `controller` and `node` are the mode-specific flags.
    pub fn start(topology: Topology, dir: &Path, controller: &[String], node: &[String]) -> Self {
        let socket = |name: &str| dir.join(format!("{name}.sock"));
        let endpoint = |path: &Path| format!("unix://{}", path.display());
        let with = |mode: &str, endpoint: String, extra: &[&[String]]| {
            let mut args = vec![mode.to_string(), "--endpoint".into(), endpoint];
            for flags in extra {
                args.extend(flags.iter().cloned());
            }
            args
        };
        let (processes, controller_socket, node_socket) = match topology {
            Topology::Split => {
                let c = with("controller", endpoint(&socket("controller")), &[controller]);
                let n = with("node", endpoint(&socket("node")), &[node]);
                (
                    vec![
                        Process { name: "controller", driver: start(&c), args: c },
                        Process { name: "node", driver: start(&n), args: n },
                    ],
                    socket("controller"),
                    socket("node"),
                )
            }
            Topology::All => {
                let a = with("all", endpoint(&socket("all")), &[controller, node]);
                (vec![Process { name: "all", driver: start(&a), args: a }], socket("all"), socket("all"))
            }
        };
        Self {
            processes: Mutex::new(processes),
            controller_socket,
            node_socket,
            kills: AtomicU64::new(0),
            retries: AtomicU64::new(0),
        }
    }

    /// The socket serving `role`.
    pub fn socket(&self, role: Role) -> &Path {
        match role {
            Role::Controller => &self.controller_socket,
            Role::Node => &self.node_socket,
        }
    }

    /// SIGKILLs one process (chosen by `pick`), waits `pause`, and starts it again. The old
    /// process's output goes through the secret scan when its `Driver` is dropped here.
    pub fn kill_and_restart(&self, pick: u64, pause: Duration) -> &'static str {
        let mut processes = self.processes.lock().unwrap();
        let index = (pick % processes.len() as u64) as usize;
        let process = &mut processes[index];
        process.driver.signal(Signal::SIGKILL);
        process.driver.wait(Duration::from_secs(30));
        self.kills.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(pause);
        let fresh = start(&process.args);
        drop(std::mem::replace(&mut process.driver, fresh));
        process.name
    }

    /// Stops every process with SIGTERM and checks they exit successfully.
    pub fn stop(&self) {
        let mut processes = self.processes.lock().unwrap();
        for process in processes.iter_mut() {
            process.driver.signal(Signal::SIGTERM);
            let status = process.driver.wait(Duration::from_secs(60));
            assert!(
                status.success(),
                "{} exited with {status:?}; log:\n{}",
                process.name,
                process.driver.log().join("\n")
            );
        }
    }
}

/// Kills a random process at random intervals (drawn from `rng`) until `stop` is set.
pub async fn killer(
    fleet: std::sync::Arc<Fleet>,
    mut rng: Rng,
    every: (Duration, Duration),
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::Relaxed) {
        let wait = rng.duration(every.0, every.1);
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (pick, pause) = (rng.next(), rng.duration(Duration::ZERO, Duration::from_millis(300)));
        let fleet = fleet.clone();
        let name = tokio::task::spawn_blocking(move || fleet.kill_and_restart(pick, pause)).await.unwrap();
        eprintln!("chaos: SIGKILL {name} after {wait:?}, restarted");
    }
}

/// A fresh connection to `socket`, waiting (up to a guard) for a restarted driver to bind it.
async fn connect(socket: &Path) -> Channel {
    testkit::unix_channel_within(socket, Duration::from_secs(60)).await
}

/// Codes the workload retries, as the sidecars do: the driver died or was busy, the cloud
/// failed, or the cloud is still finishing an earlier step (snapshots being deleted or taken).
/// A code outside this list (InvalidArgument, NotFound, AlreadyExists, OutOfRange, ...) is a
/// bug under this workload and fails the run at once.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::Unknown
            | Code::Aborted
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Internal
            | Code::ResourceExhausted
            | Code::FailedPrecondition
    )
}

/// How long one operation may keep failing before the run gives up on it (a hang guard).
const OPERATION_GUARD: Duration = Duration::from_secs(240);
/// How long one attempt may take before it is abandoned and retried (as a sidecar's timeout).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

impl Fleet {
    /// Sends an RPC to `role` over a fresh connection until it succeeds, retrying as above.
    pub async fn call<T, F, Fut>(&self, role: Role, what: &str, mut rpc: F) -> T
    where
        F: FnMut(Channel) -> Fut,
        Fut: Future<Output = Result<Response<T>, Status>>,
    {
        let deadline = Instant::now() + OPERATION_GUARD;
        let mut delay = Duration::from_millis(50);
        loop {
            let channel = connect(self.socket(role)).await;
            let outcome = match tokio::time::timeout(ATTEMPT_TIMEOUT, rpc(channel)).await {
                Ok(outcome) => outcome,
                Err(_) => Err(Status::deadline_exceeded("the attempt timed out")),
            };
            match outcome {
                Ok(response) => return response.into_inner(),
                Err(status) if retryable(status.code()) => {
                    assert!(
                        Instant::now() < deadline,
                        "{what} kept failing for {OPERATION_GUARD:?}: {status:?}"
                    );
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
                Err(status) => panic!("{what} failed with a code that is not retryable: {status:?}"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }
}
