//! A minimal in-test stand-in for the EVS and ECS APIs: scripted answers per disk and job,
//! and a signature check written independently of the driver's signer (it rebuilds the
//! canonical request from what actually arrived on the wire). Not the emulator.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ring::{digest, hmac};
use serde_json::{Value, json};

/// The project every request must name.
pub const PROJECT: &str = "0123456789abcdef0123456789abcdef";
/// The access key the fake accepts.
pub const AK: &str = "AKFAKE000000000000";
/// The secret key the fake verifies with.
pub const SK: &str = "fake/secret+key=0000000000000000000000";

/// Everything the fake knows and saw.
#[derive(Default)]
pub struct Cloud {
    /// Per disk id: answers to GET, the last one repeating.
    pub volumes: HashMap<String, Vec<Value>>,
    /// Per job id: answers to GET, the last one repeating.
    pub jobs: HashMap<String, Vec<Value>>,
    /// Job id to hand out for the next create.
    pub create_job: Option<String>,
    /// Servers that do not exist.
    pub missing_servers: HashSet<String>,
    /// `METHOD path` of every request that passed the signature check.
    pub requests: Vec<String>,
    /// Bodies by `METHOD path`.
    pub bodies: HashMap<String, Value>,
    /// `X-Client-Token` values seen.
    pub client_tokens: Vec<String>,
    /// Requests whose signature did not verify, with the reason.
    pub rejected: Vec<String>,
    /// Signed header lists seen.
    pub signed_headers: Vec<String>,
    /// Answers to the tag query (`resource_instances/action`), the last one repeating.
    pub tag_pages: Vec<Value>,
}

/// Shared handle to the fake.
pub type Shared = Arc<Mutex<Cloud>>;

fn enc(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn dec(text: &str) -> String {
    let mut out = Vec::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `Authorization` against the request as received.
pub fn verify(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<String, String> {
    let auth = headers.get("authorization").ok_or("no Authorization")?.to_str().map_err(|e| e.to_string())?;
    let rest = auth.strip_prefix("SDK-HMAC-SHA256 ").ok_or("wrong algorithm")?;
    let fields: BTreeMap<&str, &str> = rest.split(", ").filter_map(|kv| kv.split_once('=')).collect();
    if fields.get("Access") != Some(&AK) {
        return Err(format!("unknown access key {:?}", fields.get("Access")));
    }
    let signed = *fields.get("SignedHeaders").ok_or("no SignedHeaders")?;
    let given = *fields.get("Signature").ok_or("no Signature")?;
    let mut path: String = uri.path().split('/').map(|s| enc(&dec(s))).collect::<Vec<_>>().join("/");
    if !path.ends_with('/') {
        path.push('/');
    }
    let mut pairs: Vec<(String, String)> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect();
    pairs.sort();
    let query = pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
    let mut canonical_headers = String::new();
    for name in signed.split(';') {
        let value = headers.get(name).ok_or(format!("signed header {name} not sent"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.to_str().unwrap().trim()));
    }
    let canonical = format!(
        "{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{}",
        hex(digest::digest(&digest::SHA256, body).as_ref())
    );
    let date = headers.get("x-sdk-date").ok_or("no X-Sdk-Date")?.to_str().unwrap();
    let to_sign = format!(
        "SDK-HMAC-SHA256\n{date}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let key = hmac::Key::new(hmac::HMAC_SHA256, SK.as_bytes());
    let expected = hex(hmac::sign(&key, to_sign.as_bytes()).as_ref());
    if expected != given {
        return Err(format!("signature mismatch for {method} {uri}"));
    }
    Ok(signed.to_string())
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn next(script: &mut Vec<Value>) -> Value {
    if script.len() > 1 { script.remove(0) } else { script[0].clone() }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json_reply(status, json!({"error": {"code": code, "message": message}}))
}

async fn handle(
    State(cloud): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut cloud = cloud.lock().unwrap();
    match verify(&method, &uri, &headers, &body) {
        Ok(signed) => cloud.signed_headers.push(signed),
        Err(reason) => {
            cloud.rejected.push(reason);
            return json_reply(
                StatusCode::UNAUTHORIZED,
                json!({"error_code": "APIGW.0301", "error_msg": "Incorrect IAM authentication information"}),
            );
        }
    }
    if headers.get("x-project-id").and_then(|v| v.to_str().ok()) != Some(PROJECT) {
        return error(StatusCode::BAD_REQUEST, "Common.0018", "project mismatch");
    }
    let key = format!("{method} {}", uri.path());
    cloud.requests.push(key.clone());
    if !body.is_empty() {
        cloud.bodies.insert(key.clone(), serde_json::from_slice(&body).unwrap());
    }
    if let Some(token) = headers.get("x-client-token") {
        cloud.client_tokens.push(token.to_str().unwrap().to_string());
    }
    let path = uri.path().strip_prefix('/').unwrap_or("");
    let parts: Vec<&str> = path.split('/').collect();
    match (method.as_str(), parts.as_slice()) {
        ("POST", ["v2.1", p, "cloudvolumes"]) if *p == PROJECT => match cloud.create_job.clone() {
            Some(job) => json_reply(StatusCode::OK, json!({"job_id": job})),
            None => error(StatusCode::BAD_REQUEST, "EVS.1009", "invalid volumeForCreate!"),
        },
        ("GET", ["v1", _, "jobs", job]) => match cloud.jobs.get_mut(*job) {
            Some(script) => json_reply(StatusCode::OK, next(script)),
            None => error(StatusCode::BAD_REQUEST, "Common.0011", "No jobs found."),
        },
        ("GET", ["v2", _, "cloudvolumes", id]) => match cloud.volumes.get_mut(*id) {
            Some(script) => json_reply(StatusCode::OK, json!({"volume": next(script)})),
            None => error(StatusCode::NOT_FOUND, "EVS.5404", "Resource could not be found."),
        },
        ("DELETE", ["v2", _, "cloudvolumes", id]) => match cloud.volumes.remove(*id) {
            Some(_) => json_reply(StatusCode::OK, json!({"job_id": format!("job-delete-{id}")})),
            None => error(StatusCode::NOT_FOUND, "EVS.5404", "Resource could not be found."),
        },
        ("POST", ["v2", _, "cloudvolumes", _, "tags", "action"]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["v2", _, "cloudvolumes", "resource_instances", "action"])
            if !cloud.tag_pages.is_empty() =>
        {
            json_reply(StatusCode::OK, next(&mut cloud.tag_pages))
        }
        ("POST", ["v1", _, "cloudservers", server, "attachvolume"])
        | ("DELETE", ["v1", _, "cloudservers", server, "detachvolume", _]) => {
            if cloud.missing_servers.contains(*server) {
                let message = format!("Instance[{server}] could not be found.");
                return json_reply(
                    StatusCode::NOT_FOUND,
                    json!({"error": {"code": "Ecs.0114", "message": message}}),
                );
            }
            let verb = if method == Method::POST { "attach" } else { "detach" };
            json_reply(StatusCode::OK, json!({"job_id": format!("job-{verb}-{server}")}))
        }
        _ => error(StatusCode::NOT_FOUND, "APIGW.0101", "The API does not exist or has not been published"),
    }
}

/// Starts the fake on a free port; returns its base URL.
pub async fn start(cloud: Shared) -> String {
    let app = Router::new().fallback(handle).with_state(cloud);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
