//! The shared cloud transport against a local HTTP server that is slow on purpose: the
//! per-request timeout, which requests it repeats after one, and the bound on concurrent
//! requests per endpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::routing::{get, post};
use cinder_evs_csi::cloud::CloudError;
use cinder_evs_csi::cloud::http::{Call, HttpClient, HttpSettings};
use cinder_evs_csi::cloud::retry::Backoff;
use cinder_evs_csi::config::model::Tls;
use reqwest::Method;

/// What the server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

/// A server whose `/slow` answers its first request after 3 s and later ones at once, whose
/// `/slow-post` always takes 3 s, and whose `/busy` takes 300 ms while counting concurrency.
async fn server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let (a, b, c) = (seen.clone(), seen.clone(), seen.clone());
    let app = axum::Router::new()
        .route(
            "/slow",
            get(move || async move {
                if a.requests.fetch_add(1, Ordering::SeqCst) == 0 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                "{}"
            }),
        )
        .route(
            "/slow-post",
            post(move || async move {
                b.requests.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(3)).await;
                "{}"
            }),
        )
        .route(
            "/busy",
            get(move || async move {
                c.requests.fetch_add(1, Ordering::SeqCst);
                let now = c.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                c.most_in_flight.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(300)).await;
                c.in_flight.fetch_sub(1, Ordering::SeqCst);
                "{}"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn client(timeout: Duration, per_endpoint: usize) -> Arc<HttpClient> {
    let settings = HttpSettings {
        request_timeout: timeout,
        max_concurrent_per_endpoint: per_endpoint,
        backoff: Backoff {
            initial: Duration::from_millis(10),
            factor: 2.0,
            max: Duration::from_millis(50),
            max_attempts: 3,
        },
        ..Default::default()
    };
    Arc::new(HttpClient::new(&Tls::default(), settings, None).unwrap())
}

fn call(method: Method, base: &str, path: &str) -> Call {
    Call::new("test.call", method, format!("{base}{path}").parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_that_outlives_the_request_timeout_is_abandoned_and_retried() {
    let (base, seen) = server().await;
    let http = client(Duration::from_millis(300), 8);
    let reply = http.send(&call(Method::GET, &base, "/slow")).await.expect("the retry succeeds");
    assert_eq!(reply.status, 200);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2, "one timed-out attempt, one answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_that_outlives_the_request_timeout_fails_and_is_not_repeated() {
    let (base, seen) = server().await;
    let http = client(Duration::from_millis(300), 8);
    let error = http.send(&call(Method::POST, &base, "/slow-post")).await.unwrap_err();
    assert!(matches!(error, CloudError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("/slow-post"), "{error}");
    // The server may have acted on it: repeating a create could make a second volume.
    assert_eq!(seen.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_one_endpoint_never_exceed_the_bound() {
    let (base, seen) = server().await;
    let http = client(Duration::from_secs(30), 3);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (http, call) = (http.clone(), call(Method::GET, &base, "/busy"));
        tasks.spawn(async move { http.send(&call).await.map(|r| r.status) });
    }
    for status in tasks.join_all().await {
        assert_eq!(status.expect("every request is answered"), 200);
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 12);
    // Exactly the bound: never more, and the bound is what limited them (not the test).
    assert_eq!(seen.most_in_flight.load(Ordering::SeqCst), 3);
}
