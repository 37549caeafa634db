//! The driver binary as a child process on a unix socket: start it, wait for a ready Probe,
//! read its memory from /proc, stop it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cinder_evs_csi::csi::pb;
use cinder_evs_csi::csi::pb::identity_client::IdentityClient;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The release binary cargo built next to this bench.
pub const BIN: &str = env!("CARGO_BIN_EXE_cinder-evs-csi");

/// A running driver; killed on drop. Its log goes to `<dir>/<name>.log`.
pub struct Driver {
    child: Child,
    /// The socket it serves on.
    pub socket: PathBuf,
}

impl Driver {
    /// Starts the binary with `args` (the endpoint is added) serving on `<dir>/<name>.sock`.
    pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--endpoint")
            .arg(format!("unix://{}", socket.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        for (key, _) in std::env::vars() {
            if key.starts_with("CSI_") || key.starts_with("OS_") {
                command.env_remove(key);
            }
        }
        let child = command.spawn().expect("spawn cinder-evs-csi");
        Self { child, socket }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the socket and a ready Probe (guarding against hangs only); returns a channel.
    pub async fn ready(&self) -> Channel {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(channel) = try_ready(&self.socket).await {
                return channel;
            }
            assert!(Instant::now() < deadline, "driver on {} never became ready", self.socket.display());
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Resident memory now (VmRSS), in bytes.
    pub fn rss(&self) -> u64 {
        status_bytes(self.pid(), "VmRSS:")
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        status_bytes(self.pid(), "VmHWM:")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One attempt: connect, Probe, and hand back the channel if the driver says it is ready.
async fn try_ready(socket: &Path) -> Option<Channel> {
    if !socket.exists() {
        return None;
    }
    let channel = unix_channel(socket.to_path_buf()).await.ok()?;
    let probe = IdentityClient::new(channel.clone()).probe(pb::ProbeRequest {}).await.ok()?;
    (probe.into_inner().ready != Some(false)).then_some(channel)
}

/// A gRPC channel over a unix socket.
pub async fn unix_channel(path: PathBuf) -> Result<Channel, tonic::transport::Error> {
    Endpoint::try_from("http://[::]:50051")
        .expect("static URI")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await
}

fn status_bytes(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/<pid>/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    kib * 1024
}
