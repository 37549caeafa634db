//! The AK/SK signer and verifier against vectors computed by Huawei's official Python SDK
//! (huaweicloudsdkcore, version named in the data file; regenerate with
//! tests/peer-clients/signer_vectors.py): the driver signs byte for byte as the SDK does, and
//! the emulator accepts what the SDK signs and nothing altered.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use cinder_evs_csi::cloud::huawei::sign::Signer;
use cinder_evs_emulator::huawei::sign::{self as verifier, Received, SignError};
use reqwest::Url;
use serde_json::Value;

const DATA: &str = include_str!("data/huawei_signer_vectors.json");

struct Vector {
    title: String,
    method: String,
    url: Url,
    headers: BTreeMap<String, String>,
    body: String,
    authorization: String,
}

fn data() -> Value {
    serde_json::from_str(DATA).expect("the vectors are JSON")
}

fn vectors() -> Vec<Vector> {
    let data = data();
    data["vectors"]
        .as_array()
        .expect("a vector list")
        .iter()
        .map(|v| Vector {
            title: v["title"].as_str().unwrap().to_string(),
            method: v["method"].as_str().unwrap().to_string(),
            url: Url::parse(v["url"].as_str().unwrap()).unwrap(),
            headers: v["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            body: v["body"].as_str().unwrap().to_string(),
            authorization: v["authorization"].as_str().unwrap().to_string(),
        })
        .collect()
}

fn keys() -> (String, String) {
    let data = data();
    (data["access_key"].as_str().unwrap().to_string(), data["secret_key"].as_str().unwrap().to_string())
}

fn header_map(v: &Vector) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, value) in &v.headers {
        map.insert(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
    }
    map.insert("authorization", HeaderValue::from_str(&v.authorization).unwrap());
    map
}

fn verify(v: &Vector, headers: &HeaderMap, path: &str, body: &[u8]) -> Result<String, SignError> {
    let (ak, sk) = keys();
    let now = verifier::parse_sdk_date(&v.headers["x-sdk-date"]).unwrap();
    let received = Received { method: &v.method, path, query: v.url.query(), headers, body };
    verifier::verify(&received, now, |access| (access == ak).then(|| sk.clone()))
}

#[test]
fn the_vectors_come_from_a_named_sdk_version() {
    let data = data();
    let sdk = data["sdk"].as_str().unwrap();
    assert!(sdk.starts_with("huaweicloudsdkcore 3."), "{sdk}");
    assert_eq!(vectors().len(), 5);
}

#[test]
fn the_driver_signs_as_the_official_sdk_does() {
    let (ak, sk) = keys();
    // The driver always signs the body's hash; the one vector signed as UNSIGNED-PAYLOAD
    // is for the verifier (below).
    let signed_bodies: Vec<Vector> =
        vectors().into_iter().filter(|v| !v.headers.contains_key("x-sdk-content-sha256")).collect();
    assert_eq!(signed_bodies.len(), 4);
    for v in signed_bodies {
        let project = v.headers.get("x-project-id").map(String::as_str);
        let token = v.headers.get("x-security-token").map(String::as_str);
        let signer = Signer { access_key: &ak, secret_key: &sk, security_token: token, project_id: project };
        let date = &v.headers["x-sdk-date"];
        let headers = signer.headers(&v.url, date, !v.body.is_empty());
        assert_eq!(headers, v.headers, "{}: the driver signs other headers than the SDK", v.title);
        let authorization = signer.authorization(&v.method, &v.url, &headers, v.body.as_bytes());
        assert_eq!(authorization, v.authorization, "{}", v.title);
    }
}

#[test]
fn the_emulator_accepts_every_request_the_official_sdk_signs() {
    let (ak, _) = keys();
    for v in vectors() {
        let headers = header_map(&v);
        assert_eq!(verify(&v, &headers, v.url.path(), v.body.as_bytes()), Ok(ak.clone()), "{}", v.title);
    }
}

#[test]
fn the_emulator_refuses_a_signed_request_with_a_changed_path_body_or_header() {
    for v in vectors() {
        let headers = header_map(&v);
        let other_path = format!("{}x", v.url.path());
        assert_eq!(
            verify(&v, &headers, &other_path, v.body.as_bytes()),
            Err(SignError::Mismatch),
            "{}",
            v.title
        );
        let mut changed = header_map(&v);
        changed.insert("x-project-id", HeaderValue::from_static("ffffffffffffffffffffffffffffffff"));
        assert_eq!(
            verify(&v, &changed, v.url.path(), v.body.as_bytes()),
            Err(SignError::Mismatch),
            "{}",
            v.title
        );
        if !v.headers.contains_key("x-sdk-content-sha256") {
            let body = format!("{} ", v.body);
            assert_eq!(
                verify(&v, &headers, v.url.path(), body.as_bytes()),
                Err(SignError::Mismatch),
                "{}",
                v.title
            );
        }
    }
}

#[test]
fn a_content_hash_header_must_be_unsigned_payload_or_the_bodys_own_hash() {
    let v =
        vectors().into_iter().find(|v| v.method == "POST" && v.headers.contains_key("content-type")).unwrap();
    let mut headers = header_map(&v);
    let wrong = "0".repeat(64);
    headers.insert("x-sdk-content-sha256", HeaderValue::from_str(&wrong).unwrap());
    assert_eq!(verify(&v, &headers, v.url.path(), v.body.as_bytes()), Err(SignError::BadContentHash));
}
