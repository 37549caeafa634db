//! The middleware in front of every API route: counts the request by method and route
//! template, then applies the fault rules and the rate limit.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ADMIN_PREFIX;
use super::errors::{ApiError, Family};
use super::faults::Verdict;
use super::store::Cloud;

/// Counts, then injects faults; the admin API is neither counted nor faulted.
pub async fn observe(
    State(cloud): State<Cloud>,
    matched: MatchedPath,
    request: Request,
    next: Next,
) -> Response {
    let template = matched.as_str().to_owned();
    if template.starts_with(ADMIN_PREFIX) {
        return next.run(request).await;
    }
    let method = request.method().as_str().to_owned();
    cloud.counters().hit(&method, &template);
    match cloud.faults().judge(&method, &template) {
        Verdict::Pass => next.run(request).await,
        Verdict::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            next.run(request).await
        }
        Verdict::Error { status, retry_after, message } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::debug!(%method, %template, %status, "emulator: injected error");
            ApiError::new(Family::of_path(&template), status, message)
                .with_retry_after(retry_after)
                .into_response()
        }
        Verdict::Drop => {
            tracing::debug!(%method, %template, "emulator: injected dropped connection");
            dropped()
        }
        Verdict::DropResponse => {
            let served = next.run(request).await;
            tracing::debug!(%method, %template, status = %served.status(), "emulator: injected lost response");
            dropped()
        }
        Verdict::Body { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            tracing::debug!(%method, %template, %status, bytes = body.len(), "emulator: injected raw body");
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Verdict::Trickle(delay_ms) => {
            tracing::debug!(%method, %template, delay_ms, "emulator: injected slow loris body");
            trickle(Duration::from_millis(delay_ms))
        }
    }
}

/// A 200 whose JSON body arrives one byte per `pause`; it gives up once the client has gone.
fn trickle(pause: Duration) -> Response {
    const BODY: &[u8] = br#"{"volume": {"id": "trickled", "name": "................................"}}"#;
    let (bytes, stream) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
    tokio::spawn(async move {
        for byte in BODY {
            if bytes.send(Ok(Bytes::copy_from_slice(&[*byte]))).await.is_err() {
                return;
            }
            tokio::time::sleep(pause).await;
        }
    });
    let mut response = Response::new(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(stream)));
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// A response whose body fails after the headers: hyper then closes the connection, so the
/// client sees the connection drop mid-response.
fn dropped() -> Response {
    let stream = tokio_stream::once(Err::<Bytes, std::io::Error>(std::io::Error::other("injected drop")));
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(header::CONTENT_LENGTH, header::HeaderValue::from_static("64"));
    response
}

/// 404 for unknown paths, shaped like the family the path belongs to.
pub async fn not_found(uri: Uri) -> Response {
    let family = Family::of_path(uri.path());
    let error = ApiError::not_found(family, "The resource could not be found.");
    // An unknown Huawei route is the gateway's answer, never a "disk not found".
    match family {
        Family::Evs | Family::Ecs => error.with_code("APIGW.0101").into_response(),
        _ => error.into_response(),
    }
}
