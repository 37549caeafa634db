//! The HTTP transport every cloud client shares: TLS, per-request timeouts, a bound on
//! concurrent requests per endpoint, retries with jittered backoff that honour `Retry-After`
//! (only where repeating is safe), body size limits, request-id logging and metrics.
//! It knows nothing about authentication or any API's JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use tokio::sync::Semaphore;

use super::error::CloudError;
use super::retry::{self, Backoff, Verdict};
use crate::config::model::Tls;
use crate::telemetry::metrics::Metrics;

/// Headers in which OpenStack services return the id of a request, for correlating logs.
const REQUEST_ID_HEADERS: &[&str] = &["x-openstack-request-id", "x-compute-request-id", "x-request-id"];

/// Tunables of the transport.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Time allowed for one attempt, response body included.
    pub request_timeout: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Retry schedule.
    pub backoff: Backoff,
    /// Requests in flight per endpoint (scheme, host and port).
    pub max_concurrent_per_endpoint: usize,
    /// Largest response body accepted; a larger one fails the call.
    pub max_body_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            max_concurrent_per_endpoint: 64,
            max_body_bytes: 16 << 20,
        }
    }
}

/// One request to a cloud API.
#[derive(Debug)]
pub struct Call {
    /// Metrics and log label, e.g. `cinder.volume.create`.
    pub operation: &'static str,
    /// HTTP method.
    pub method: Method,
    /// Full URL.
    pub url: Url,
    /// Extra headers (authentication, microversions).
    pub headers: HeaderMap,
    /// JSON body.
    pub body: Option<Vec<u8>>,
    /// Whether sending it twice does no harm, so a failure that may have reached the server
    /// can be retried (true for GET, PUT, DELETE; a POST that only reads can opt in).
    pub repeatable: bool,
}

impl Call {
    /// A call without body or extra headers.
    pub fn new(operation: &'static str, method: Method, url: Url) -> Self {
        let repeatable = retry::is_idempotent(&method);
        Self { operation, method, url, headers: HeaderMap::new(), body: None, repeatable }
    }

    /// Marks a call that is safe to send twice although its method is not (a POST query).
    pub fn repeatable(mut self) -> Self {
        self.repeatable = true;
        self
    }

    /// Adds a JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.body = Some(body.to_string().into_bytes());
        self
    }

    /// Adds a header; values that are not valid header text are a programming error upstream
    /// and are reported as a configuration error by [`HttpClient::send`].
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(HeaderName::from_static(name), v);
        }
        self
    }
}

/// A complete response.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body, at most `max_body_bytes`.
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, CloudError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| CloudError::Protocol(format!("malformed JSON body: {e}")))
    }
}

/// The shared transport.
#[derive(Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    settings: HttpSettings,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    metrics: Option<Arc<Metrics>>,
}

impl HttpClient {
    /// A transport with the cloud's TLS settings.
    pub fn new(tls: &Tls, settings: HttpSettings, metrics: Option<Arc<Metrics>>) -> Result<Self, CloudError> {
        crate::tls::install_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .user_agent(concat!("cinder-evs-csi/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(path) = &tls.cacert {
            let pem = std::fs::read(path)
                .map_err(|e| CloudError::Config(format!("reading CA bundle {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| CloudError::Config(format!("CA bundle {}: {e}", path.display())))?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        match (&tls.client_cert, &tls.client_key) {
            (Some(cert), Some(key)) => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    CloudError::Config(format!("reading client certificate {}: {e}", cert.display()))
                })?;
                pem.extend(
                    std::fs::read(key).map_err(|e| {
                        CloudError::Config(format!("reading client key {}: {e}", key.display()))
                    })?,
                );
                let identity = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| CloudError::Config(format!("client certificate/key: {e}")))?;
                builder = builder.identity(identity);
            }
            (None, None) => {}
            _ => return Err(CloudError::Config("a client certificate needs both cert and key".into())),
        }
        if tls.insecure {
            tracing::warn!("TLS certificate verification is disabled by configuration (insecure)");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let client = builder.build().map_err(|e| CloudError::Config(format!("HTTP client: {e}")))?;
        Ok(Self { client, settings, limits: Mutex::new(HashMap::new()), metrics })
    }

    fn limit_for(&self, url: &Url) -> Arc<Semaphore> {
        let key = format!(
            "{}://{}:{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut limits = self.limits.lock().unwrap_or_else(|e| e.into_inner());
        limits
            .entry(key)
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.max_concurrent_per_endpoint)))
            .clone()
    }

    /// Sends `call`, retrying where safe; returns the last response whatever its status.
    pub async fn send(&self, call: &Call) -> Result<Reply, CloudError> {
        let limit = self.limit_for(&call.url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let outcome = {
                let _permit =
                    limit.acquire().await.map_err(|_| CloudError::Unavailable("client closed".into()))?;
                self.attempt(call).await
            };
            let elapsed = started.elapsed();
            let last = attempt >= self.settings.backoff.max_attempts;
            match outcome {
                Ok(reply) => {
                    self.observe(call, &reply.status.as_u16().to_string(), elapsed);
                    let request_id = REQUEST_ID_HEADERS.iter().find_map(|h| reply.header(h)).unwrap_or("-");
                    tracing::debug!(
                        operation = call.operation,
                        method = %call.method,
                        url = %call.url,
                        status = reply.status.as_u16(),
                        request_id,
                        attempt,
                        duration_ms = elapsed.as_secs_f64() * 1000.0,
                        "cloud call"
                    );
                    let wait_hint = retry::retry_after(reply.header("retry-after"));
                    if last
                        || retry::verdict(call.repeatable, reply.status, wait_hint.is_some())
                            == Verdict::Accept
                    {
                        return Ok(reply);
                    }
                    let delay =
                        wait_hint.unwrap_or_else(|| self.settings.backoff.delay(attempt, retry::jitter()));
                    tracing::info!(
                        operation = call.operation,
                        status = reply.status.as_u16(),
                        request_id,
                        delay_ms = delay.as_millis() as u64,
                        "retrying cloud call"
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    self.observe(call, "error", elapsed);
                    // A refused connection never reached the server; a reset or timeout may have.
                    let safe = error.is_connect() || call.repeatable;
                    let message = describe(&error);
                    if last || !safe {
                        return Err(CloudError::Unavailable(format!(
                            "{} {}: {message}",
                            call.method,
                            call.url.path()
                        )));
                    }
                    let delay = self.settings.backoff.delay(attempt, retry::jitter());
                    tracing::info!(operation = call.operation, error = %message, delay_ms = delay.as_millis() as u64, "retrying cloud call");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    async fn attempt(&self, call: &Call) -> Result<Reply, reqwest::Error> {
        let mut request =
            self.client.request(call.method.clone(), call.url.clone()).headers(call.headers.clone());
        if let Some(body) = &call.body {
            request = request.header(reqwest::header::CONTENT_TYPE, "application/json").body(body.clone());
        }
        request = request.header(reqwest::header::ACCEPT, "application/json");
        let mut response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.settings.max_body_bytes {
                // Too large to be a real answer: treat it as a broken response, not data.
                return Ok(Reply { status: StatusCode::BAD_GATEWAY, headers, body: b"{}".to_vec() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, headers, body })
    }

    fn observe(&self, call: &Call, outcome: &str, elapsed: Duration) {
        if let Some(metrics) = &self.metrics {
            metrics.record_cloud_call(call.operation, outcome, elapsed);
        }
    }
}

/// An error's message with its sources, which carry the useful detail in reqwest.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
