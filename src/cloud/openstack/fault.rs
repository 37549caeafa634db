//! OpenStack error bodies: `{"itemNotFound": {"message": ..., "code": 404}}` (Cinder, Nova),
//! `{"error": {"message": ...}}` (Keystone), `{"error_msg": ...}` (gateways), or plain text.

use reqwest::StatusCode;
use serde_json::Value;

use crate::cloud::error::CloudError;
use crate::cloud::http::Reply;

/// The cloud's message for a failed reply, shortened to something loggable.
pub fn message(reply: &Reply) -> String {
    let text = match serde_json::from_slice::<Value>(&reply.body) {
        Ok(Value::Object(map)) => map
            .values()
            .find_map(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .or_else(|| map.get("error_msg").and_then(Value::as_str).map(str::to_string))
            .or_else(|| map.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default(),
        _ => String::from_utf8_lossy(&reply.body).trim().to_string(),
    };
    let text = if text.is_empty() { format!("HTTP {}", reply.status.as_u16()) } else { text };
    text.chars().take(500).collect()
}

/// The error for a failed reply about `kind` `id`.
pub fn to_error(reply: &Reply, kind: &'static str, id: &str) -> CloudError {
    let msg = message(reply);
    match reply.status {
        StatusCode::NOT_FOUND => CloudError::NotFound { kind, id: id.to_string() },
        StatusCode::BAD_REQUEST => CloudError::InvalidInput(msg),
        StatusCode::CONFLICT => CloudError::Conflict(msg),
        StatusCode::PAYLOAD_TOO_LARGE => CloudError::QuotaExceeded(msg),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => CloudError::Unauthorized(msg),
        StatusCode::NOT_ACCEPTABLE => CloudError::Unsupported(msg),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            CloudError::Unavailable(format!("HTTP {}: {msg}", s.as_u16()))
        }
        s => CloudError::Protocol(format!("HTTP {}: {msg}", s.as_u16())),
    }
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
    fn typed_fault_bodies_give_their_message() {
        let r = reply(404, r#"{"itemNotFound": {"message": "Volume v1 could not be found.", "code": 404}}"#);
        assert_eq!(message(&r), "Volume v1 could not be found.");
        assert_eq!(to_error(&r, "volume", "v1"), CloudError::NotFound { kind: "volume", id: "v1".into() });
        let k = reply(
            401,
            r#"{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}"#,
        );
        assert!(
            matches!(to_error(&k, "token", ""), CloudError::Unauthorized(m) if m.starts_with("The request"))
        );
    }

    #[test]
    fn statuses_map_to_error_kinds() {
        assert!(matches!(to_error(&reply(400, "{}"), "volume", ""), CloudError::InvalidInput(_)));
        assert!(matches!(to_error(&reply(409, "{}"), "volume", ""), CloudError::Conflict(_)));
        assert!(
            matches!(to_error(&reply(413, r#"{"overLimit": {"message": "VolumeLimitExceeded"}}"#), "volume", ""), CloudError::QuotaExceeded(m) if m == "VolumeLimitExceeded")
        );
        assert!(
            matches!(to_error(&reply(503, "busy"), "volume", ""), CloudError::Unavailable(m) if m.contains("busy"))
        );
    }

    #[test]
    fn unparseable_bodies_fall_back_to_text_or_status() {
        assert_eq!(message(&reply(500, "")), "HTTP 500");
        assert_eq!(message(&reply(500, "<html>oops</html>")), "<html>oops</html>");
    }
}
