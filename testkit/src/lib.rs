//! The helpers the driver's test binaries share: the real `cinder-evs-csi` binary run as a
//! child process and reached over its socket, the way kubelet and the sidecars do; the emulator
//! started in-process ([`emulator`], [`cloud`]); CSI request builders ([`requests`]); a fake
//! Kubernetes API ([`fake_kube`]); the secret scan every process goes through ([`secrets`]);
//! the cloud a suite runs against ([`target`]); and the root check of tests that need loop
//! devices and mounts.

#![warn(missing_docs, unreachable_pub)]

pub mod cloud;
pub mod emulator;
pub mod fake_kube;
pub mod requests;
pub mod secrets;
pub mod target;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper_util::rt::TokioIo;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tonic::transport::{Channel, Endpoint, Uri};

/// The binary under test: `cinder-evs-csi` beside the running test binary's `deps/`
/// directory, where cargo builds it for the package's integration tests.
pub fn bin() -> PathBuf {
    let test_binary = std::env::current_exe().expect("the test binary's path");
    let profile_dir = test_binary.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("cinder-evs-csi");
    assert!(
        bin.is_file(),
        "no driver binary at {} (cargo builds it for the integration tests)",
        bin.display()
    );
    bin
}

/// True when the test may use loop devices and mounts (root); otherwise fails under CI, where
/// tests run as root, or prints `SKIPPED <test>: <reason>`.
pub fn root_or_skip(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(std::env::var_os("CI").is_none(), "{test} needs root (loop devices, mounts); CI runs as root");
    eprintln!("SKIPPED {test}: needs root for loop devices and mounts");
    false
}

/// The capability online ext4 resizing needs.
pub const CAP_SYS_RESOURCE: u32 = 24;

/// True when this process holds the capability numbered `cap` in its effective set (the
/// processes it starts inherit it).
pub fn has_capability(cap: u32) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap_or("0").trim();
    u64::from_str_radix(effective, 16).unwrap_or(0) & (1 << cap) != 0
}

/// A running driver process whose stderr (the log) and stdout are collected line by line.
/// Dropping it kills the process and fails the test if either output holds a secret value
/// (see [`secrets`]).
pub struct Driver {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    stdout: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// Collects the lines of `stream` into a shared list on a thread of its own.
fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
) -> (Arc<Mutex<Vec<String>>>, std::thread::JoinHandle<()>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (lines, reader)
}

impl Driver {
    /// Starts the binary with `args`; no `CSI_*` variable of the caller leaks in.
    pub fn start(args: &[&str]) -> Self {
        let mut command = Command::new(bin());
        command.args(args);
        Self::spawn(command)
    }

    /// Starts `command` (a driver run some other way, e.g. under chroot), with its outputs
    /// collected and scanned like [`Driver::start`]'s; no `CSI_*` or `OS_*` variable of the
    /// caller leaks in.
    pub fn spawn(mut command: Command) -> Self {
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (key, _) in std::env::vars() {
            if key.starts_with("CSI_") || key.starts_with("OS_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().expect("spawn cinder-evs-csi");
        let (log, log_reader) = collect_lines(child.stderr.take().unwrap());
        let (stdout, stdout_reader) = collect_lines(child.stdout.take().unwrap());
        Self { child, log, stdout, readers: vec![log_reader, stdout_reader] }
    }

    /// Every stdout line so far.
    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// The secret values found in the output so far.
    pub fn secret_leaks(&self) -> Vec<secrets::Leak> {
        let mut leaks = secrets::scan("stderr", &self.log());
        leaks.extend(secrets::scan("stdout", &self.stdout()));
        leaks
    }

    /// Every log line so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a log line satisfies `pred`, and returns it.
    pub fn wait_for_log(&self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| pred(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no matching log line within {timeout:?}; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).expect("send signal");
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "driver did not exit within {timeout:?}; log:\n{}",
                self.log().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Read to the end of both outputs, unless a grandchild still holds a pipe open.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.readers.iter().any(|r| !r.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(message) = secrets::report(&format!("driver {:?}", self.child.id()), &self.secret_leaks())
        {
            if std::thread::panicking() {
                eprintln!("{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// Waits until `path` exists (the driver has bound its socket).
pub fn wait_for_path(path: &Path, driver: &Driver) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "socket {} never appeared; log:\n{}",
            path.display(),
            driver.log().join("\n")
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A gRPC channel over a unix socket; retried for a while, since a loaded machine may take
/// a moment between the socket appearing and the server answering its handshake.
pub async fn unix_channel(path: PathBuf) -> Channel {
    unix_channel_within(&path, Duration::from_secs(20)).await
}

/// A gRPC channel over the unix socket at `path`, retried until `patience` has passed (a
/// restarted driver may take a while to bind it again).
pub async fn unix_channel_within(path: &Path, patience: Duration) -> Channel {
    let deadline = Instant::now() + patience;
    loop {
        let socket = path.to_path_buf();
        let attempt = Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let socket = socket.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
                }
            }))
            .await;
        match attempt {
            Ok(channel) => return channel,
            Err(e) if Instant::now() > deadline => panic!("{} never accepted: {e:?}", path.display()),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// A fresh temporary directory and the `unix://` endpoint of a socket inside it.
pub fn temp_socket() -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("csi.sock");
    let endpoint = format!("unix://{}", path.display());
    (dir, path, endpoint)
}

/// Starts `node` as server `server-1` on the unix socket at `socket` with `extra` flags, and
/// waits until the socket is bound.
pub fn start_node(socket: &Path, extra: &[&str]) -> Driver {
    let endpoint = format!("unix://{}", socket.display());
    let mut args = vec!["node", "--endpoint", &endpoint, "--node-id", "server-1"];
    args.extend_from_slice(extra);
    let driver = Driver::start(&args);
    wait_for_path(socket, &driver);
    driver
}

/// Starts `controller` on the clouds.yaml at `config` (cluster `test-cluster`, driver
/// `csi.example.io`, socket in `dir`) with `extra` flags, and waits until its Probe answers
/// ready.
pub async fn start_controller(
    dir: &Path,
    config: &Path,
    extra: &[&str],
    ready_within: Duration,
) -> (Driver, Channel) {
    use cinder_evs_csi::csi::pb;
    use cinder_evs_csi::csi::pb::identity_client::IdentityClient;
    let socket = dir.join("csi.sock");
    let endpoint = format!("unix://{}", socket.display());
    let mut args = vec![
        "controller",
        "--endpoint",
        &endpoint,
        "--cloud-config",
        config.to_str().unwrap(),
        "--cluster-id",
        "test-cluster",
        "--driver-name",
        "csi.example.io",
    ];
    args.extend_from_slice(extra);
    let driver = Driver::start(&args);
    wait_for_path(&socket, &driver);
    let channel = unix_channel(socket).await;
    let mut identity = IdentityClient::new(channel.clone());
    let deadline = Instant::now() + ready_within;
    while identity.probe(pb::ProbeRequest {}).await.unwrap().into_inner().ready != Some(true) {
        assert!(Instant::now() < deadline, "never ready; log:\n{}", driver.log().join("\n"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (driver, channel)
}

/// A plain HTTP/1.0 GET of `path` from `address` (host:port); the whole response as text.
pub fn http_get(address: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A cloud-issued id as the typed id the backends take (panics on anything but a UUID).
pub fn cid(text: &str) -> cinder_evs_csi::contract::CloudId {
    cinder_evs_csi::contract::CloudId::parse("id", text).unwrap_or_else(|e| panic!("{e}"))
}
