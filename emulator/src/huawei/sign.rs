//! Verification of Huawei AK/SK request signatures (SDK-HMAC-SHA256), written from the
//! algorithm: canonical request, string to sign, HMAC-SHA256 with the secret key.

use axum::http::HeaderMap;
use ring::{digest, hmac};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// The largest accepted distance between `X-Sdk-Date` and the emulator's clock.
pub const MAX_SKEW_MS: u64 = 15 * 60 * 1000;

/// Why a signed request is refused (the message never carries a secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The `Authorization` header is not an SDK-HMAC-SHA256 one.
    #[error("the Authorization header is not a valid SDK-HMAC-SHA256 header")]
    Malformed,
    /// `X-Sdk-Date` is missing or not `YYYYMMDDTHHMMSSZ`.
    #[error("X-Sdk-Date is missing or malformed")]
    BadDate,
    /// The date is more than 15 minutes away from now.
    #[error("the request time is more than 15 minutes away from the server time")]
    Skewed,
    /// A header that must be signed is not.
    #[error("the signed headers must include host and x-sdk-date")]
    Unsigned,
    /// A signed header is absent from the request.
    #[error("signed header {0} is missing from the request")]
    MissingHeader(String),
    /// The access key is unknown.
    #[error("the access key is unknown")]
    UnknownKey,
    /// The signature does not match.
    #[error("the signature does not match")]
    Mismatch,
    /// The credential scope is not `<date>/<region>/<service>/sdk_request` of the request's day.
    #[error("the credential scope is malformed or not of the request's date")]
    BadScope,
    /// `X-Sdk-Content-Sha256` names a hash that is not the body's.
    #[error("X-Sdk-Content-Sha256 does not match the body")]
    BadContentHash,
}

/// The `X-Sdk-Content-Sha256` value by which a client leaves the body out of the signature.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parts of an `Authorization: SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key.
    pub access: String,
    /// The signed header names, lowercased, in the order given.
    pub signed_headers: Vec<String>,
    /// The hex signature.
    pub signature: String,
    /// The credential scope of the `Credential=<ak>/<scope>` form (golangsdk and the older Go
    /// SDK), `<yyyymmdd>/<region>/<service>/sdk_request`; `None` for the `Access=` form.
    pub scope: Option<String>,
}

/// Whether a request carries an AK/SK signature (rather than a token).
pub fn is_signed(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with(ALGORITHM))
}

/// Parses the `Authorization` header.
pub fn parse_authorization(value: &str) -> Result<Authorization, SignError> {
    let rest = value.trim().strip_prefix(ALGORITHM).ok_or(SignError::Malformed)?;
    let (mut access, mut signed, mut signature, mut scope) = (None, None, None, None);
    for part in rest.split(',') {
        let (key, value) = part.trim().split_once('=').ok_or(SignError::Malformed)?;
        match key.trim() {
            "Access" if access.is_none() => access = Some(value.trim().to_string()),
            "Credential" if access.is_none() => {
                let (ak, rest) = value.trim().split_once('/').ok_or(SignError::Malformed)?;
                access = Some(ak.to_string());
                scope = Some(rest.to_string());
            }
            "SignedHeaders" => signed = Some(value.trim().to_string()),
            "Signature" => signature = Some(value.trim().to_string()),
            _ => return Err(SignError::Malformed),
        }
    }
    let (Some(access), Some(signed), Some(signature)) = (access, signed, signature) else {
        return Err(SignError::Malformed);
    };
    if access.is_empty() || signature.is_empty() || signed.is_empty() {
        return Err(SignError::Malformed);
    }
    let signed_headers = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    Ok(Authorization { access, signed_headers, signature, scope })
}

/// Parses `YYYYMMDDTHHMMSSZ` into milliseconds since the epoch.
pub fn parse_sdk_date(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let seconds = days * 86_400 + h * 3600 + mi * 60 + s;
    u64::try_from(seconds).ok().map(|s| s * 1000)
}

/// Howard Hinnant's civil-to-days conversion (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Percent-encodes everything but the RFC 3986 unreserved characters.
pub fn escape(text: &str) -> String {
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

/// Decodes `%XX` escapes (and, in queries, `+` as a space); invalid escapes stay as they are.
fn unescape(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_is_space => out.push(b' '),
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: every segment escaped, always ending in `/`.
pub fn canonical_uri(path: &str) -> String {
    let mut uri: Vec<String> = path.split('/').map(|segment| escape(&unescape(segment, false))).collect();
    if uri.last().is_some_and(|s| !s.is_empty()) {
        uri.push(String::new());
    }
    let joined = uri.join("/");
    if joined.starts_with('/') { joined } else { format!("/{joined}") }
}

/// The canonical query: pairs escaped, sorted, joined by `&`.
pub fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (escape(&unescape(k, true)), escape(&unescape(v, true)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The canonical request of a received request, over the headers the client signed, with
/// `payload_hash` (the body's hex SHA-256, or `UNSIGNED-PAYLOAD`) as its last line.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    signed: &[String],
    payload_hash: &str,
) -> Result<String, SignError> {
    let mut names: Vec<&String> = signed.iter().collect();
    names.sort();
    let mut canonical_headers = String::new();
    for name in &names {
        let value = headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SignError::MissingHeader(name.to_string()))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let signed_names = names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(";");
    Ok(format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{signed_names}\n{payload_hash}",
        canonical_uri(path),
        canonical_query(query)
    ))
}

/// The payload hashes a request may have been signed with: the body's own, and the literal
/// `UNSIGNED-PAYLOAD` when `X-Sdk-Content-Sha256` says so (the Python SDK still hashes an
/// empty body; the Go SDKs use the header's value as it is). A header naming any other hash
/// must name the body's.
pub fn payload_hashes(headers: &HeaderMap, body: &[u8]) -> Result<Vec<String>, SignError> {
    let real = hex(digest::digest(&digest::SHA256, body).as_ref());
    match headers.get("x-sdk-content-sha256").map(|v| v.to_str().map(str::trim)) {
        None => Ok(vec![real]),
        Some(Ok(UNSIGNED_PAYLOAD)) => Ok(vec![UNSIGNED_PAYLOAD.to_string(), real]),
        Some(Ok(claimed)) if claimed.eq_ignore_ascii_case(&real) => Ok(vec![real]),
        Some(_) => Err(SignError::BadContentHash),
    }
}

/// The string to sign of the `Credential=` form: the scope is a line of its own.
pub fn scoped_string_to_sign(date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    )
}

/// The signing key of the `Credential=` form: HMAC-SHA256 chained from `"SDK" + secret`
/// over the scope's date, region, service and `sdk_request`.
pub fn scoped_key(secret: &str, scope: &Scope<'_>) -> Vec<u8> {
    let mut key = format!("SDK{secret}").into_bytes();
    for part in [scope.date, scope.region, scope.service, "sdk_request"] {
        let k = hmac::Key::new(hmac::HMAC_SHA256, &key);
        key = hmac::sign(&k, part.as_bytes()).as_ref().to_vec();
    }
    key
}

/// The parts of a credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    /// `yyyymmdd`.
    pub date: &'a str,
    /// The region (golangsdk leaves it empty).
    pub region: &'a str,
    /// The service (golangsdk leaves it empty).
    pub service: &'a str,
}

/// Parses `<yyyymmdd>/<region>/<service>/sdk_request`, whose date must be `sdk_date`'s day.
pub fn parse_scope<'a>(scope: &'a str, sdk_date: &str) -> Result<Scope<'a>, SignError> {
    let parts: Vec<&str> = scope.split('/').collect();
    let [date, region, service, terminal] = parts.as_slice() else { return Err(SignError::BadScope) };
    if *terminal != "sdk_request" || date.len() != 8 || !sdk_date.starts_with(date) {
        return Err(SignError::BadScope);
    }
    Ok(Scope { date, region, service })
}

/// The string to sign for a canonical request made at `date`.
pub fn string_to_sign(date: &str, canonical: &str) -> String {
    format!("{ALGORITHM}\n{date}\n{}", hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref()))
}

/// A request as received, for verification.
pub struct Received<'a> {
    /// The method.
    pub method: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// The raw query.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

/// Verifies a signed request; `secret_of` looks up the secret of an access key. Returns the
/// access key on success.
pub fn verify(
    request: &Received<'_>,
    now_ms: u64,
    secret_of: impl FnOnce(&str) -> Option<String>,
) -> Result<String, SignError> {
    let value =
        request.headers.get("authorization").and_then(|v| v.to_str().ok()).ok_or(SignError::Malformed)?;
    let auth = parse_authorization(value)?;
    if !auth.signed_headers.iter().any(|h| h == "host")
        || !auth.signed_headers.iter().any(|h| h == "x-sdk-date")
    {
        return Err(SignError::Unsigned);
    }
    let date = request.headers.get("x-sdk-date").and_then(|v| v.to_str().ok()).ok_or(SignError::BadDate)?;
    let at = parse_sdk_date(date.trim()).ok_or(SignError::BadDate)?;
    if at.abs_diff(now_ms) > MAX_SKEW_MS {
        return Err(SignError::Skewed);
    }
    let date = date.trim();
    let scope = auth.scope.as_deref().map(|s| parse_scope(s, date)).transpose()?;
    let hashes = payload_hashes(request.headers, request.body)?;
    let secret = secret_of(&auth.access).ok_or(SignError::UnknownKey)?;
    let tag = unhex(&auth.signature.to_ascii_lowercase()).ok_or(SignError::Mismatch)?;
    let key = match &scope {
        Some(scope) => hmac::Key::new(hmac::HMAC_SHA256, &scoped_key(&secret, scope)),
        None => hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
    };
    for payload_hash in &hashes {
        let canonical = canonical_request(
            request.method,
            request.path,
            request.query,
            request.headers,
            &auth.signed_headers,
            payload_hash,
        )?;
        let to_sign = match (&scope, &auth.scope) {
            (Some(_), Some(text)) => scoped_string_to_sign(date, text, &canonical),
            _ => string_to_sign(date, &canonical),
        };
        if hmac::verify(&key, to_sign.as_bytes(), &tag).is_ok() {
            return Ok(auth.access);
        }
    }
    Err(SignError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_to_epoch_milliseconds() {
        assert_eq!(parse_sdk_date("19700101T000000Z"), Some(0));
        assert_eq!(parse_sdk_date("20240229T235959Z"), Some(1_709_251_199_000));
        assert_eq!(parse_sdk_date("2024-02-29T23:59:59Z"), None);
        assert_eq!(parse_sdk_date("20241301T000000Z"), None);
    }

    #[test]
    fn the_canonical_uri_escapes_segments_and_ends_in_a_slash() {
        assert_eq!(canonical_uri("/v2/p/cloudvolumes"), "/v2/p/cloudvolumes/");
        assert_eq!(canonical_uri("/v2/p/"), "/v2/p/");
        assert_eq!(canonical_uri("/a%20b/c:d"), "/a%20b/c%3Ad/");
    }

    #[test]
    fn the_canonical_query_is_sorted_and_escaped() {
        assert_eq!(canonical_query(Some("limit=2&a=x%20y&flag")), "a=x%20y&flag=&limit=2");
        assert_eq!(canonical_query(None), "");
    }

    #[test]
    fn authorization_headers_parse_and_lowercase_names() {
        let auth =
            parse_authorization("SDK-HMAC-SHA256 Access=AK, SignedHeaders=Host;x-sdk-date, Signature=ab")
                .unwrap();
        assert_eq!(auth.access, "AK");
        assert_eq!(auth.signed_headers, vec!["host", "x-sdk-date"]);
        assert_eq!(parse_authorization("Bearer x"), Err(SignError::Malformed));
    }

    /// A golangsdk-style request (`Credential=<ak>/<date>///sdk_request`, every header
    /// signed, `X-Sdk-Content-Sha256: UNSIGNED-PAYLOAD`); the signature was computed
    /// independently (Python's hashlib and hmac) from the Go SDK's algorithm: the scope is a
    /// line of the string to sign and the key is chained from "SDK" + secret.
    fn golangsdk_request(scope: &str, signature: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let project = "0123456789abcdef0123456789abcdef";
        for (k, v) in [
            ("content-type", "application/json"),
            ("host", "127.0.0.1:8780"),
            ("x-project-id", project),
            ("x-sdk-content-sha256", UNSIGNED_PAYLOAD),
            ("x-sdk-date", "20260301T120000Z"),
        ] {
            headers.insert(k, v.parse().unwrap());
        }
        let auth = format!(
            "SDK-HMAC-SHA256 Credential=AKEXAMPLE0123456789/{scope}, \
             SignedHeaders=content-type;host;x-project-id;x-sdk-content-sha256;x-sdk-date, Signature={signature}"
        );
        headers.insert("authorization", auth.parse().unwrap());
        headers
    }

    const GOLANGSDK_SIGNATURE: &str = "84be2c7a6e3655484910dccde4bea6ee41ec11e3bacf728ae6c818f43adb864a";

    fn verify_golangsdk(headers: &HeaderMap, body: &[u8]) -> Result<String, SignError> {
        let path = "/v2/0123456789abcdef0123456789abcdef/cloudvolumes/vol-1/action";
        let received = Received { method: "POST", path, query: None, headers, body };
        let now = parse_sdk_date("20260301T120000Z").unwrap();
        verify(&received, now, |ak| {
            (ak == "AKEXAMPLE0123456789").then(|| "skExample/Secret+Key0123456789abcdefABCD".to_string())
        })
    }

    #[test]
    fn the_golangsdk_credential_form_with_an_unsigned_payload_is_accepted() {
        let headers = golangsdk_request("20260301///sdk_request", GOLANGSDK_SIGNATURE);
        let body = br#"{"os-extend":{"new_size":20}}"#;
        assert_eq!(verify_golangsdk(&headers, body), Ok("AKEXAMPLE0123456789".to_string()));
    }

    #[test]
    fn a_credential_scope_of_another_day_or_shape_is_refused() {
        for scope in ["20260302///sdk_request", "20260301//sdk_request", "20260301///aws4_request", "///"] {
            let headers = golangsdk_request(scope, GOLANGSDK_SIGNATURE);
            assert_eq!(verify_golangsdk(&headers, b"{}"), Err(SignError::BadScope), "{scope}");
        }
    }

    #[test]
    fn a_credential_form_signed_with_another_scope_region_does_not_verify() {
        let headers = golangsdk_request("20260301/cn-north-4//sdk_request", GOLANGSDK_SIGNATURE);
        assert_eq!(verify_golangsdk(&headers, b"{}"), Err(SignError::Mismatch));
    }

    #[test]
    fn an_authorization_with_both_access_and_credential_is_malformed() {
        let value = "SDK-HMAC-SHA256 Access=AK, Credential=AK/20260301///sdk_request, SignedHeaders=host, Signature=ab";
        assert_eq!(parse_authorization(value), Err(SignError::Malformed));
    }
}
