//! The gRPC server: listens on the endpoint, serves the CSI services, and on SIGTERM/SIGINT
//! stops accepting, lets in-flight RPCs finish within a bound, and cleans up its socket.

pub mod endpoint;
pub mod socket;
pub mod too_large;

use std::future::Future;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::service::Routes;
use tonic::transport::Server;

pub use endpoint::Endpoint;

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The unix socket could not be prepared.
    #[error(transparent)]
    Socket(#[from] socket::SocketError),
    /// The TCP address could not be bound.
    #[error("binding {address}: {source}")]
    Tcp {
        /// The address asked for.
        address: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The transport failed while serving.
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` on `endpoint` until `shutdown` resolves, then drains for at most `drain`.
pub async fn serve(
    endpoint: &Endpoint,
    routes: Routes,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<(), ServeError> {
    let router = Server::builder().layer(too_large::layer()).add_routes(routes);
    let (stop, stopped) = oneshot::channel::<()>();
    let stop_signal = async {
        let _ = stopped.await;
    };
    match endpoint {
        Endpoint::Unix(path) => {
            let (listener, bound) = socket::bind(path)?;
            tracing::info!(%endpoint, "serving CSI");
            let incoming = UnixListenerStream::new(listener);
            let server = router.serve_with_incoming_shutdown(incoming, stop_signal);
            let result = run(server, stop, shutdown, drain).await;
            bound.remove();
            result
        }
        Endpoint::Tcp(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|source| ServeError::Tcp { address: address.clone(), source })?;
            let local = listener.local_addr().map_or_else(|_| address.clone(), |a| a.to_string());
            tracing::info!(endpoint = %format!("tcp://{local}"), "serving CSI");
            let incoming = TcpListenerStream::new(listener);
            let server = router.serve_with_incoming_shutdown(incoming, stop_signal);
            run(server, stop, shutdown, drain).await
        }
    }
}

/// Drives `server` until `shutdown`; then tells it to stop accepting and waits at most `drain`
/// for in-flight RPCs.
async fn run(
    server: impl Future<Output = Result<(), tonic::transport::Error>>,
    stop: oneshot::Sender<()>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<(), ServeError> {
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::from),
        () = shutdown => {}
    }
    tracing::info!(drain_seconds = drain.as_secs_f64(), "shutting down: draining in-flight RPCs");
    let _ = stop.send(());
    match tokio::time::timeout(drain, &mut server).await {
        Ok(result) => result?,
        Err(_) => tracing::warn!("drain timed out; abandoning remaining RPCs"),
    }
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
pub async fn termination_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = int.recv() => tracing::info!("received SIGINT"),
    }
}
