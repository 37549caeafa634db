//! The `is_public` filter and sort of the type lists, as Cinder's types and group_types
//! controllers read them: absent means public only, the string `None` means all (admins only),
//! anything else must be a strict boolean.

use serde_json::Value;

use crate::errors::{ApiError, ApiResult, Family};

const F: Family = Family::Volume;

/// Which types a list shows by their `is_public` flag: `None` for all.
pub fn is_public(query: &[(String, String)], admin: bool) -> ApiResult<Option<bool>> {
    if !admin {
        return Ok(Some(true));
    }
    match query.iter().find(|(k, _)| k == "is_public").map(|(_, v)| v.as_str()) {
        None => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "on" | "t" => Ok(Some(true)),
            "false" | "0" | "no" | "n" | "off" | "f" => Ok(Some(false)),
            _ => Err(ApiError::bad_request(F, format!("Invalid is_public filter [{v}]"))),
        },
    }
}

/// Sorts views by `sort=key[:dir],...` or `sort_key`/`sort_dir` (default: created order, as
/// the store keeps them); keys other than the views' own fields are refused.
pub fn sort(views: &mut [Value], query: &[(String, String)]) -> ApiResult<()> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "sort" => {
                for part in v.split(',').filter(|p| !p.is_empty()) {
                    let (key, dir) = part.split_once(':').unwrap_or((part, "asc"));
                    keys.push((key.trim().to_string(), direction(dir)?));
                }
            }
            "sort_key" => keys.push((v.clone(), true)),
            "sort_dir" => {
                let asc = direction(v)?;
                if let Some(last) = keys.last_mut() {
                    last.1 = asc;
                }
            }
            _ => {}
        }
    }
    for (key, _) in &keys {
        if !["id", "name", "description", "is_public"].contains(&key.as_str()) {
            return Err(ApiError::bad_request(F, format!("Invalid input received: Invalid sort key {key}")));
        }
    }
    views.sort_by(|a, b| {
        for (key, asc) in &keys {
            let order = text(&a[key]).cmp(&text(&b[key]));
            if order.is_ne() {
                return if *asc { order } else { order.reverse() };
            }
        }
        std::cmp::Ordering::Equal
    });
    Ok(())
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn direction(d: &str) -> ApiResult<bool> {
    match d.trim().to_ascii_lowercase().as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => {
            Err(ApiError::bad_request(F, format!("Invalid input received: Invalid sort direction {other}")))
        }
    }
}
