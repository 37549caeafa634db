//! One listener per Huawei service (EVS, ECS, IAM), each serving its API at the root, as
//! the real endpoints do: Huawei's SDKs keep only `scheme://host:port` of an endpoint, so an
//! SDK pointed at `http://127.0.0.1:PORT` must find `/v2/{project}/cloudvolumes` there.
//!
//! A request is routed by prefixing the service's path (`/evs`, `/ecs`, `/identity`) before
//! the shared router sees it; the path as the client sent (and signed) it travels along as
//! [`SignedPath`], which the AK/SK check uses instead of the routed one.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::Request;
use axum::http::Uri;
use tokio::net::TcpListener;

use super::{ECS_PREFIX, EVS_PREFIX, EmulatorError, IDENTITY_PREFIX};

/// The path and query a client sent, before the service prefix was added for routing.
#[derive(Clone, Debug)]
pub struct SignedPath {
    /// The path as sent.
    pub path: String,
    /// The raw query as sent.
    pub query: Option<String>,
}

/// A Huawei service served on its own listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Elastic Volume Service.
    Evs,
    /// Elastic Cloud Server.
    Ecs,
    /// Identity and Access Management (Keystone-compatible, plus the AK/SK catalog).
    Iam,
}

impl Service {
    /// Every service, in listener order.
    pub const ALL: [Service; 3] = [Service::Evs, Service::Ecs, Service::Iam];

    /// The path prefix the shared router serves this service under.
    pub fn prefix(self) -> &'static str {
        match self {
            Service::Evs => EVS_PREFIX,
            Service::Ecs => ECS_PREFIX,
            Service::Iam => IDENTITY_PREFIX,
        }
    }

    /// The lower-case name (as in `evs.<region>.<domain>`).
    pub fn name(self) -> &'static str {
        match self {
            Service::Evs => "evs",
            Service::Ecs => "ecs",
            Service::Iam => "iam",
        }
    }
}

/// Binds one listener per service on `address`'s IP: port 0 picks free ports, any other port
/// P gives EVS P, ECS P+1 and IAM P+2.
pub async fn bind(address: SocketAddr) -> Result<Vec<(Service, TcpListener)>, EmulatorError> {
    let mut out = Vec::new();
    for (offset, service) in Service::ALL.into_iter().enumerate() {
        let mut at = address;
        if address.port() != 0 {
            let port = address.port().checked_add(offset as u16).ok_or_else(|| {
                EmulatorError::Config(format!("no room for three Huawei ports above {address}"))
            })?;
            at.set_port(port);
        }
        let listener =
            TcpListener::bind(at).await.map_err(|source| EmulatorError::Bind { address: at, source })?;
        out.push((service, listener));
    }
    Ok(out)
}

/// The shared router behind `service`'s prefix, with the sent path kept for the signature.
pub fn router(service: Service, app: Router) -> Router {
    Router::new().fallback_service(tower::service_fn(move |mut request: Request| {
        let app = app.clone();
        async move {
            let sent = SignedPath {
                path: request.uri().path().to_string(),
                query: request.uri().query().map(str::to_string),
            };
            let routed = match &sent.query {
                Some(q) => format!("{}{}?{q}", service.prefix(), sent.path),
                None => format!("{}{}", service.prefix(), sent.path),
            };
            match routed.parse::<Uri>() {
                Ok(uri) => *request.uri_mut() = uri,
                Err(_) => {
                    return Ok(axum::http::Response::builder()
                        .status(axum::http::StatusCode::BAD_REQUEST)
                        .body(axum::body::Body::empty())
                        .expect("a static response"));
                }
            }
            request.extensions_mut().insert(sent);
            tower::ServiceExt::oneshot(app, request).await
        }
    }))
}
