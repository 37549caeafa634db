//! The rules an EVS tag obeys, shared by the tag action and the v2.1 create that carries tags
//! in its body.

use serde_json::{Map, Value, json};

use super::evs_bad;
use crate::errors::{ApiError, ApiResult};

/// The most tags a disk carries.
pub(super) const MAX_TAGS: usize = 10;

/// A key: 1 to 36 letters, digits, `-`, `_` or CJK ideographs.
pub(super) fn valid_key(key: &str) -> bool {
    let ok =
        |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_' || ('\u{4E00}'..='\u{9FFF}').contains(&c);
    !key.is_empty() && key.chars().count() <= 36 && key.chars().all(ok)
}

/// A value: up to 43 letters, digits, `.`, `-`, `_` or CJK ideographs.
pub(super) fn valid_value(value: &str) -> bool {
    let ok = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') || ('\u{4E00}'..='\u{9FFF}').contains(&c)
    };
    value.chars().count() <= 43 && value.chars().all(ok)
}

/// The `volume.tags` map of a v2.1 create (`{"key": "value"}`), checked as the tag action checks
/// its pairs; absent or null is no tags.
pub(super) fn create_tags(map: &Map<String, Value>) -> ApiResult<Map<String, Value>> {
    let entries = match map.get("tags") {
        None | Some(Value::Null) => return Ok(Map::new()),
        Some(Value::Object(entries)) => entries,
        Some(_) => {
            return Err(evs_bad("EVS.1018", "Type conversion error , parameter type is unexpected: tags"));
        }
    };
    if entries.len() > MAX_TAGS {
        return Err(evs_bad("EVS.5400", format!("A disk carries at most {MAX_TAGS} tags.")));
    }
    let mut tags = Map::new();
    for (key, value) in entries {
        let Value::String(value) = value else {
            return Err(evs_bad("EVS.1018", "Type conversion error , parameter type is unexpected: tags"));
        };
        if !valid_key(key) {
            return Err(bad_key(key));
        }
        if !valid_value(value) {
            return Err(bad_value(key));
        }
        tags.insert(key.clone(), json!(value));
    }
    Ok(tags)
}

/// EVS's answer to a key outside the rules.
pub(super) fn bad_key(key: &str) -> ApiError {
    evs_bad("EVS.5400", format!("Invalid tag key {key:?}: 1 to 36 letters, digits, - or _."))
}

/// EVS's answer to a value outside the rules.
pub(super) fn bad_value(key: &str) -> ApiError {
    evs_bad("EVS.5400", format!("Invalid tag value for {key}: up to 43 letters, digits, ., - or _."))
}
