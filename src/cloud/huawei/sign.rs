//! AK/SK request signing as Huawei Cloud's API gateway checks it (`SDK-HMAC-SHA256`): a
//! canonical form of the request is hashed, the hash is signed with the secret key, and the
//! signature travels in `Authorization` with the signed header names and the access key.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::Url;
use reqwest::header::{HeaderName, HeaderValue};
use ring::{digest, hmac};

use crate::cloud::error::CloudError;
use crate::cloud::http::Call;

/// The algorithm name that opens the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The header carrying the signing time.
pub const DATE_HEADER: &str = "x-sdk-date";
/// The header carrying the project id.
pub const PROJECT_HEADER: &str = "x-project-id";
/// The header carrying the security token of temporary credentials.
pub const SECURITY_TOKEN_HEADER: &str = "x-security-token";

/// What signs a request: the access key pair and, for temporary credentials, its token.
pub struct Signer<'a> {
    /// Access key id (not secret; it names the key).
    pub access_key: &'a str,
    /// Secret access key.
    pub secret_key: &'a str,
    /// Security token of temporary credentials.
    pub security_token: Option<&'a str>,
    /// Project id sent as `X-Project-Id`.
    pub project_id: Option<&'a str>,
}

impl std::fmt::Debug for Signer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("access_key", &self.access_key).finish_non_exhaustive()
    }
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Undoes percent-encoding (the URL type stores paths encoded); malformed escapes stay as-is.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string in the encoding the signature assumes, so that what is sent and what is
/// signed cannot disagree about spaces or `+`.
pub fn query_string(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// `YYYYMMDDTHHMMSSZ` in UTC.
pub fn sdk_date(time: SystemTime) -> String {
    let seconds = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs();
    let text = prost_types::Timestamp { seconds: seconds as i64, nanos: 0 }.to_string();
    text.replace(['-', ':'], "")
}

/// The path with each segment encoded and a trailing `/`.
pub fn canonical_uri(url: &Url) -> String {
    let mut uri = url.path().split('/').map(|s| encode(&decode(s))).collect::<Vec<_>>().join("/");
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// Query pairs sorted by key then value, each encoded, joined by `&`.
pub fn canonical_query(url: &Url) -> String {
    let mut pairs: Vec<(String, String)> =
        url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    pairs.sort();
    query_string(&pairs)
}

/// The `Host` header value reqwest will send for `url`.
pub fn host(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    }
}

/// The canonical request of the method, URL, signed headers (lowercase name to value) and body.
pub fn canonical_request(method: &str, url: &Url, headers: &BTreeMap<String, String>, body: &[u8]) -> String {
    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
    let signed = headers.keys().cloned().collect::<Vec<_>>().join(";");
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed}\n{}",
        canonical_uri(url),
        canonical_query(url),
        sha256_hex(body)
    )
}

/// The string the secret key signs.
pub fn string_to_sign(date: &str, canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{date}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Lowercase hex HMAC-SHA256 of `text` under `key`.
pub fn signature(secret_key: &str, text: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret_key.as_bytes());
    hex(hmac::sign(&key, text.as_bytes()).as_ref())
}

impl Signer<'_> {
    /// The headers to sign (lowercase names) for a request to `url` at `date`.
    pub fn headers(&self, url: &Url, date: &str, has_body: bool) -> BTreeMap<String, String> {
        let mut headers =
            BTreeMap::from([("host".to_string(), host(url)), (DATE_HEADER.to_string(), date.to_string())]);
        if has_body {
            headers.insert("content-type".into(), "application/json".into());
        }
        if let Some(project) = self.project_id {
            headers.insert(PROJECT_HEADER.into(), project.to_string());
        }
        if let Some(token) = self.security_token {
            headers.insert(SECURITY_TOKEN_HEADER.into(), token.to_string());
        }
        headers
    }

    /// The `Authorization` value for a request with these signed headers.
    pub fn authorization(
        &self,
        method: &str,
        url: &Url,
        headers: &BTreeMap<String, String>,
        body: &[u8],
    ) -> String {
        let date = headers.get(DATE_HEADER).map(String::as_str).unwrap_or_default();
        let canonical = canonical_request(method, url, headers, body);
        let signed = headers.keys().cloned().collect::<Vec<_>>().join(";");
        let sig = signature(self.secret_key, &string_to_sign(date, &canonical));
        format!("{ALGORITHM} Access={}, SignedHeaders={signed}, Signature={sig}", self.access_key)
    }

    /// Adds the date, project, token and `Authorization` headers to `call`, signed at `now`.
    /// The transport adds `Host` and `Content-Type` itself, with the values signed here.
    pub fn sign(&self, call: &mut Call, now: SystemTime) -> Result<(), CloudError> {
        let body = call.body.as_deref().unwrap_or_default();
        let headers = self.headers(&call.url, &sdk_date(now), call.body.is_some());
        let authorization = self.authorization(call.method.as_str(), &call.url, &headers, body);
        let invalid = |name: &str| CloudError::Config(format!("the {name} is not valid header text"));
        for (name, value) in headers.iter().filter(|(k, _)| *k != "host" && *k != "content-type") {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(name))?;
            let value = HeaderValue::from_str(value).map_err(|_| invalid(name))?;
            call.headers.insert(header, value);
        }
        let mut value = HeaderValue::from_str(&authorization).map_err(|_| invalid("access key"))?;
        value.set_sensitive(true);
        call.headers.insert(reqwest::header::AUTHORIZATION, value);
        if let Some(token) = call.headers.get_mut(SECURITY_TOKEN_HEADER) {
            token.set_sensitive(true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The expected values were computed independently (Python's hashlib, hmac and
    //! urllib.parse.quote with safe="-_.~") from the algorithm's description.
    use super::*;
    use reqwest::Method;

    const AK: &str = "AKEXAMPLE0123456789";
    const SK: &str = "skExample/Secret+Key0123456789abcdefABCD";
    const PROJECT: &str = "0123456789abcdef0123456789abcdef";
    const DATE: &str = "20260301T120000Z";

    fn signer(token: Option<&'static str>) -> Signer<'static> {
        Signer { access_key: AK, secret_key: SK, security_token: token, project_id: Some(PROJECT) }
    }

    fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> Url {
        let mut url = Url::parse(base).unwrap();
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        url.set_query(Some(&query_string(&pairs)));
        url
    }

    #[test]
    fn the_sdk_date_is_compact_utc() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400);
        assert_eq!(sdk_date(t), DATE);
    }

    #[test]
    fn a_get_with_query_signs_as_the_reference_computation() {
        let url = url_with_query(
            &format!("https://evs.cn-north-4.myhuaweicloud.com/v2/{PROJECT}/cloudvolumes/detail"),
            &[("name", "pvc data+1"), ("limit", "10"), ("marker", "a/b")],
        );
        let s = signer(None);
        let headers = s.headers(&url, DATE, false);
        let canonical = canonical_request("GET", &url, &headers, b"");
        assert_eq!(
            canonical,
            format!(
                "GET\n/v2/{PROJECT}/cloudvolumes/detail/\nlimit=10&marker=a%2Fb&name=pvc%20data%2B1\n\
                 host:evs.cn-north-4.myhuaweicloud.com\nx-project-id:{PROJECT}\nx-sdk-date:{DATE}\n\n\
                 host;x-project-id;x-sdk-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            )
        );
        assert_eq!(
            string_to_sign(DATE, &canonical),
            "SDK-HMAC-SHA256\n20260301T120000Z\nc0b7160b428cbd6080c1f15901353ca8ddcba8a89deb0147ab90576ff898107e"
        );
        assert_eq!(
            s.authorization("GET", &url, &headers, b""),
            "SDK-HMAC-SHA256 Access=AKEXAMPLE0123456789, SignedHeaders=host;x-project-id;x-sdk-date, \
             Signature=bf8fa3940c8c9e76075731d05d9e77f6429e84e9c6c23acab36a8bda26045f30"
        );
    }

    #[test]
    fn a_post_with_a_json_body_signs_its_content_type_and_body_hash() {
        let url =
            Url::parse(&format!("https://evs.cn-north-4.myhuaweicloud.com/v2.1/{PROJECT}/cloudvolumes"))
                .unwrap();
        let body = br#"{"volume":{"availability_zone":"cn-north-4a","name":"pvc-1","size":10,"volume_type":"GPSSD"}}"#;
        let s = signer(None);
        let headers = s.headers(&url, DATE, true);
        let canonical = canonical_request("POST", &url, &headers, body);
        assert_eq!(
            canonical,
            format!(
                "POST\n/v2.1/{PROJECT}/cloudvolumes/\n\ncontent-type:application/json\n\
                 host:evs.cn-north-4.myhuaweicloud.com\nx-project-id:{PROJECT}\nx-sdk-date:{DATE}\n\n\
                 content-type;host;x-project-id;x-sdk-date\nfc9f38a1802a831095d977931e71f315c7fe2e38b85e49a9700b63375662a171"
            )
        );
        assert_eq!(
            string_to_sign(DATE, &canonical),
            "SDK-HMAC-SHA256\n20260301T120000Z\n87d829edc4c3ad55164858cdfd79ce244cb4cf74dc9e390c264087d861b96544"
        );
        assert_eq!(
            s.authorization("POST", &url, &headers, body),
            "SDK-HMAC-SHA256 Access=AKEXAMPLE0123456789, SignedHeaders=content-type;host;x-project-id;x-sdk-date, \
             Signature=404f659a32c3e4b83d8631388d8e25c32a8d258b3991613f879b0a14178045fe"
        );
    }

    #[test]
    fn a_security_token_and_a_non_default_port_are_signed() {
        let url =
            Url::parse(&format!("https://127.0.0.1:8443/v1/{PROJECT}/cloudservers/srv-1/detachvolume/vol-1"))
                .unwrap();
        let s = signer(Some("temporary-token"));
        let headers = s.headers(&url, DATE, false);
        assert_eq!(headers["host"], "127.0.0.1:8443");
        assert_eq!(
            s.authorization("DELETE", &url, &headers, b""),
            "SDK-HMAC-SHA256 Access=AKEXAMPLE0123456789, SignedHeaders=host;x-project-id;x-sdk-date;x-security-token, \
             Signature=11ddf7556e260ace498aa13d711621ab5a75f686cbfc07e78e9636484c75c918"
        );
    }

    #[test]
    fn signing_a_call_adds_the_headers_and_marks_secrets_sensitive() {
        let url = Url::parse("https://ecs.r.example.com/v1/p/cloudservers/s/block_device").unwrap();
        let mut call = Call::new("ecs.block_device", Method::GET, url);
        signer(Some("tok"))
            .sign(&mut call, SystemTime::UNIX_EPOCH + Duration::from_secs(1_772_366_400))
            .unwrap();
        assert_eq!(call.headers["x-sdk-date"], DATE);
        assert_eq!(call.headers["x-project-id"], PROJECT);
        assert!(call.headers["authorization"].is_sensitive());
        assert!(call.headers["x-security-token"].is_sensitive());
        assert!(
            call.headers["authorization"].to_str().unwrap().starts_with("SDK-HMAC-SHA256 Access=AKEXAMPLE")
        );
        assert!(!call.headers.contains_key("host"), "reqwest sets Host from the URL");
    }

    #[test]
    fn encoded_path_segments_are_not_encoded_twice() {
        let url = Url::parse("https://h/v2/p/a%20b/c").unwrap();
        assert_eq!(canonical_uri(&url), "/v2/p/a%20b/c/");
        assert_eq!(decode("100%"), "100%");
    }
}
