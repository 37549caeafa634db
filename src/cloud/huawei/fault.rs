//! Huawei Cloud error bodies and codes: `{"error": {"code": "EVS.xxxx", "message": ...}}`,
//! `{"error_code": ..., "error_msg": ...}` (gateway, ECS), Cinder-style typed faults
//! (`{"itemNotFound": {...}}`), or text; codes are mapped to [`CloudError`] kinds with the
//! cloud's message kept.

use reqwest::StatusCode;
use serde_json::Value;

use crate::cloud::error::CloudError;
use crate::cloud::http::Reply;

/// A failed reply, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// HTTP status.
    pub status: StatusCode,
    /// The service's error code, normalised (`EVS.1034`).
    pub code: Option<String>,
    /// The service's message, shortened.
    pub message: String,
}

/// Codes meaning the server (ECS) does not exist (ECS error table: `Ecs.0114`, 404, "ECS [%s]
/// could not be found"; `Ecs.0614`, the ECS does not exist).
pub const SERVER_MISSING: &[&str] = &["Ecs.0114", "Ecs.0614"];

/// Codes meaning the disk is not attached to the server (`Ecs.0111`, 400, "Disk %s is not in
/// the attachment list for ECS %s"): a detach that has nothing left to do.
pub const NOT_ATTACHED: &[&str] = &["Ecs.0111"];

/// Codes meaning the disk, snapshot or job does not exist.
const NOT_FOUND: &[&str] = &["EVS.5404", "Common.0011"];

/// Codes of exhausted quota or sold-out capacity.
const QUOTA: &[&str] = &["EVS.1034", "EVS.1042", "EVS.5413", "EVS.2071", "EVS.2072", "Ecs.0001"];

/// Codes of a resource whose state forbids the operation.
const CONFLICT: &[&str] = &[
    "EVS.1014", "EVS.1046", "EVS.1047", "EVS.1048", "EVS.1064", "EVS.1065", "EVS.1066", "EVS.2019",
    "EVS.2020", "EVS.2021", "EVS.2024", "EVS.2025", "EVS.2026", "EVS.2043", "EVS.2068", "EVS.2130",
];

/// Codes of refused credentials or permissions.
const UNAUTHORIZED: &[&str] = &[
    "EVS.0002",
    "EVS.0003",
    "EVS.1027",
    "EVS.2010",
    "EVS.2144",
    "EVS.2145",
    "EVS.5401",
    "EVS.5403",
    "Common.0013",
    "Common.0018",
    "APIGW.0301",
    "APIGW.0303",
    "APIGW.0305",
];

/// Codes of the API gateway not knowing the API: a wrong endpoint or region, not a missing
/// resource and not a refused credential.
const NO_SUCH_API: &[&str] = &["APIGW.0101", "APIG.0101"];

/// Codes of a temporarily failing service.
const UNAVAILABLE: &[&str] =
    &["EVS.2001", "EVS.2002", "EVS.2005", "EVS.2007", "EVS.2023", "EVS.5500", "EVS.5503", "APIGW.0308"];

/// Codes of features this cloud does not offer for the request.
const UNSUPPORTED: &[&str] = &["EVS.2093", "EVS.2094"];

/// `EVS. 1034` (as the reference's table prints it) becomes `EVS.1034`.
pub fn normalize_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace()).collect()
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Decodes a failed reply.
pub fn parse(reply: &Reply) -> Fault {
    let (code, message) = match serde_json::from_slice::<Value>(&reply.body) {
        Ok(Value::Object(map)) => {
            let flat = (text(map.get("error_code")), text(map.get("error_msg")));
            let nested = map.values().find(|v| v.is_object()).map(|inner| {
                (
                    text(inner.get("code")).or_else(|| text(inner.get("error_code"))),
                    text(inner.get("message")),
                )
            });
            match (flat, nested) {
                ((Some(c), m), _) => (Some(c), m),
                ((None, Some(m)), _) => (None, Some(m)),
                (_, Some((c, m))) => (c, m),
                _ => (None, text(map.get("message"))),
            }
        }
        _ => (None, Some(String::from_utf8_lossy(&reply.body).trim().to_string()).filter(|s| !s.is_empty())),
    };
    let message = message.unwrap_or_else(|| format!("HTTP {}", reply.status.as_u16()));
    Fault {
        status: reply.status,
        // Typed Cinder faults carry the status as their code; only service codes are kept.
        code: code.map(|c| normalize_code(&c)).filter(|c| c.contains('.')),
        message: message.chars().take(500).collect(),
    }
}

impl Fault {
    /// True when the code says the server does not exist.
    pub fn server_missing(&self) -> bool {
        self.code.as_deref().is_some_and(|c| SERVER_MISSING.contains(&c))
    }

    /// True when the code says the disk is not attached to the server.
    pub fn not_attached(&self) -> bool {
        self.code.as_deref().is_some_and(|c| NOT_ATTACHED.contains(&c))
    }

    /// `code: message`, or the message alone.
    pub fn describe(&self) -> String {
        match &self.code {
            Some(code) => format!("{code}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The error for this fault about `kind` `id`.
    pub fn to_error(&self, kind: &'static str, id: &str) -> CloudError {
        if let Some(code) = self.code.as_deref()
            && let Some(error) = error_for_code(code, &self.describe(), kind, id)
        {
            return error;
        }
        let msg = self.describe();
        match self.status {
            StatusCode::NOT_FOUND => CloudError::NotFound { kind, id: id.to_string() },
            StatusCode::BAD_REQUEST => CloudError::InvalidInput(msg),
            StatusCode::CONFLICT => CloudError::Conflict(msg),
            StatusCode::PAYLOAD_TOO_LARGE => CloudError::QuotaExceeded(msg),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CloudError::Unauthorized(msg),
            s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                CloudError::Unavailable(format!("HTTP {}: {msg}", s.as_u16()))
            }
            s => CloudError::Protocol(format!("HTTP {}: {msg}", s.as_u16())),
        }
    }
}

/// The error a known service code stands for; `None` leaves the choice to the HTTP status.
pub fn error_for_code(code: &str, message: &str, kind: &'static str, id: &str) -> Option<CloudError> {
    let code = normalize_code(code);
    let code = code.as_str();
    let message = message.to_string();
    Some(if NO_SUCH_API.contains(&code) {
        CloudError::Config(format!(
            "the endpoint does not serve this API (check the region and endpoint overrides): {message}"
        ))
    } else if SERVER_MISSING.contains(&code) {
        CloudError::NotFound { kind: "server", id: id.to_string() }
    } else if NOT_FOUND.contains(&code) {
        CloudError::NotFound { kind, id: id.to_string() }
    } else if QUOTA.contains(&code) {
        CloudError::QuotaExceeded(message)
    } else if CONFLICT.contains(&code) {
        CloudError::Conflict(message)
    } else if UNAUTHORIZED.contains(&code) {
        CloudError::Unauthorized(message)
    } else if UNAVAILABLE.contains(&code) {
        CloudError::Unavailable(message)
    } else if UNSUPPORTED.contains(&code) {
        CloudError::Unsupported(message)
    } else if code.starts_with("EVS.1") || code.starts_with("EVS.20") || code == "EVS.5400" {
        // The remaining 1xxx and 20xx codes reject parameters (size, type, AZ, source).
        CloudError::InvalidInput(message)
    } else {
        return None;
    })
}

/// The error of a reply about `kind` `id`.
pub fn to_error(reply: &Reply, kind: &'static str, id: &str) -> CloudError {
    parse(reply).to_error(kind, id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap(),
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn nested_error_bodies_give_code_and_message() {
        let f = parse(&reply(
            400,
            r#"{"error": {"message": "volume count exceeded volume count quota!", "code": "EVS.1034"}}"#,
        ));
        assert_eq!(f.code.as_deref(), Some("EVS.1034"));
        assert_eq!(f.message, "volume count exceeded volume count quota!");
        assert_eq!(
            f.to_error("volume", ""),
            CloudError::QuotaExceeded("EVS.1034: volume count exceeded volume count quota!".into())
        );
    }

    #[test]
    fn flat_error_bodies_give_code_and_message() {
        let f = parse(&reply(
            404,
            r#"{"error_code": "Ecs.0114", "error_msg": "Instance[abc] could not be found."}"#,
        ));
        assert!(f.server_missing());
        assert_eq!(f.to_error("server", "abc"), CloudError::NotFound { kind: "server", id: "abc".into() });
    }

    #[test]
    fn the_reference_tables_stray_space_is_removed_from_codes() {
        assert_eq!(normalize_code("EVS. 1034"), "EVS.1034");
        let f = parse(&reply(400, r#"{"error": {"message": "m", "code": "EVS. 1042"}}"#));
        assert_eq!(f.code.as_deref(), Some("EVS.1042"));
    }

    #[test]
    fn codes_map_to_error_kinds() {
        type Expectation = fn(&CloudError) -> bool;
        let cases: &[(&str, Expectation)] = &[
            ("EVS.5404", |e| matches!(e, CloudError::NotFound { kind: "volume", .. })),
            ("EVS.5413", |e| matches!(e, CloudError::QuotaExceeded(_))),
            ("EVS.2072", |e| matches!(e, CloudError::QuotaExceeded(_))),
            ("EVS.1046", |e| matches!(e, CloudError::Conflict(_))),
            ("EVS.2068", |e| matches!(e, CloudError::Conflict(_))),
            ("EVS.1065", |e| matches!(e, CloudError::Conflict(_))),
            ("EVS.1010", |e| matches!(e, CloudError::InvalidInput(_))),
            ("EVS.2096", |e| matches!(e, CloudError::InvalidInput(_))),
            ("EVS.1043", |e| matches!(e, CloudError::InvalidInput(_))),
            ("EVS.5403", |e| matches!(e, CloudError::Unauthorized(_))),
            ("Common.0013", |e| matches!(e, CloudError::Unauthorized(_))),
            ("APIGW.0301", |e| matches!(e, CloudError::Unauthorized(_))),
            ("APIGW.0101", |e| matches!(e, CloudError::Config(_))),
            ("EVS.5503", |e| matches!(e, CloudError::Unavailable(_))),
            ("EVS.2093", |e| matches!(e, CloudError::Unsupported(_))),
            ("Ecs.0114", |e| matches!(e, CloudError::NotFound { kind: "server", .. })),
            ("Ecs.0614", |e| matches!(e, CloudError::NotFound { kind: "server", .. })),
        ];
        for (code, check) in cases {
            let error = error_for_code(code, "m", "volume", "v1").unwrap();
            assert!(check(&error), "{code} mapped to {error:?}");
        }
        assert_eq!(error_for_code("XYZ.1", "m", "volume", "v1"), None);
    }

    #[test]
    fn ecs_0111_is_a_disk_not_attached_not_a_missing_server() {
        let fault = Fault {
            status: StatusCode::BAD_REQUEST,
            code: Some("Ecs.0111".into()),
            message: "Disk d is not in the attachment list for ECS s.".into(),
        };
        assert!(fault.not_attached());
        assert!(!fault.server_missing());
        let missing =
            Fault { status: StatusCode::NOT_FOUND, code: Some("Ecs.0114".into()), message: String::new() };
        assert!(missing.server_missing() && !missing.not_attached());
    }

    #[test]
    fn the_status_decides_for_unknown_codes() {
        let f = parse(&reply(409, r#"{"error": {"message": "busy", "code": "EVS.9999"}}"#));
        assert_eq!(f.to_error("volume", "v1"), CloudError::Conflict("EVS.9999: busy".into()));
        let typed = parse(&reply(
            404,
            r#"{"itemNotFound": {"message": "Snapshot s1 could not be found.", "code": 404}}"#,
        ));
        assert_eq!(typed.code, None);
        assert_eq!(typed.message, "Snapshot s1 could not be found.");
        assert_eq!(
            typed.to_error("snapshot", "s1"),
            CloudError::NotFound { kind: "snapshot", id: "s1".into() }
        );
        assert!(
            matches!(parse(&reply(502, "<html>bad gateway</html>")).to_error("v", ""), CloudError::Unavailable(m) if m.contains("bad gateway"))
        );
        assert_eq!(parse(&reply(500, "")).message, "HTTP 500");
    }
}
