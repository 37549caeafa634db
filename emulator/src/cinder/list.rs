//! Listing: filters, sorting, marker/offset/limit pagination, `*_links` and `count`, applied
//! to the JSON views of any resource.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::Ctx;
use crate::errors::{ApiError, ApiResult, Family};

const F: Family = Family::Volume;
/// Cinder's `osapi_max_limit`.
pub const MAX_LIMIT: usize = 1000;

/// The parsed query of a list request.
#[derive(Debug, Default)]
pub struct ListParams {
    /// Filters `(key, value)`.
    pub filters: Vec<(String, String)>,
    /// Page size.
    pub limit: Option<usize>,
    /// Start after this id.
    pub marker: Option<String>,
    /// Skip this many.
    pub offset: usize,
    /// Sort keys with ascending flags.
    pub sort: Vec<(String, bool)>,
    /// Answer the total count (3.45).
    pub with_count: bool,
    /// Admin: every project.
    pub all_tenants: bool,
    /// Admin: only this project (with `all_tenants`), for lists whose views cannot filter on it.
    pub project_id: Option<String>,
}

/// Parses the query; unknown filters are refused from 3.31 on, ignored before.
pub fn parse(
    ctx: &Ctx,
    query: &[(String, String)],
    filters: &[&str],
    sort_keys: &[&str],
) -> ApiResult<ListParams> {
    let mut params = ListParams::default();
    let (mut sort_key, mut sort_dir) = (None, None);
    for (key, value) in query {
        match key.as_str() {
            "limit" => {
                let n: i64 =
                    value.parse().map_err(|_| ApiError::bad_request(F, "limit param must be an integer"))?;
                if n < 0 {
                    return Err(ApiError::bad_request(F, "limit param must be positive"));
                }
                params.limit = Some((n as usize).min(MAX_LIMIT));
            }
            "marker" => params.marker = Some(value.clone()),
            "offset" => {
                let n: i64 =
                    value.parse().map_err(|_| ApiError::bad_request(F, "offset param must be an integer"))?;
                if n < 0 {
                    return Err(ApiError::bad_request(F, "offset param must be positive"));
                }
                params.offset = n as usize;
            }
            "sort" => {
                for part in value.split(',').filter(|p| !p.is_empty()) {
                    let (k, d) = part.split_once(':').unwrap_or((part, "desc"));
                    params.sort.push((sort_alias(k.trim()).to_string(), direction(d)?));
                }
            }
            "sort_key" => sort_key = Some(sort_alias(value).to_string()),
            "sort_dir" => sort_dir = Some(direction(value)?),
            "with_count" if ctx.version.at_least(3, 45) => {
                params.with_count = super::parse_bool(&json!(value)).unwrap_or(false)
            }
            "all_tenants" => {
                params.all_tenants = super::parse_bool(&json!(value)).unwrap_or(true) && ctx.auth.is_admin()
            }
            "project_id" if ctx.auth.is_admin() && !filters.contains(&"project_id") => {
                params.project_id = Some(value.clone())
            }
            other if filters.contains(&other) => params.filters.push((key.clone(), value.clone())),
            // 3.34: `name~=abc` is an inexact (SQL LIKE '%abc%') filter on any filterable key.
            other
                if ctx.version.at_least(3, 34)
                    && other
                        .strip_suffix('~')
                        .is_some_and(|base| base != "metadata" && filters.contains(&base)) =>
            {
                params.filters.push((key.clone(), value.clone()))
            }
            // 3.60: `created_at=gte:2026-11-23T12:00:00` style time comparisons.
            "created_at" | "updated_at" if ctx.version.at_least(3, 60) => {
                time_filter(value)?;
                params.filters.push((key.clone(), value.clone()));
            }
            other => {
                if ctx.version.at_least(3, 31) {
                    return Err(ApiError::bad_request(
                        F,
                        format!("Invalid filters {other} are found in query options."),
                    ));
                }
            }
        }
    }
    if params.sort.is_empty() {
        params.sort.push((sort_key.unwrap_or_else(|| "created_at".into()), sort_dir.unwrap_or(false)));
    } else if sort_key.is_some() || sort_dir.is_some() {
        return Err(ApiError::bad_request(
            F,
            "The 'sort_key' and 'sort_dir' parameters are deprecated and cannot be used with the 'sort' parameter.",
        ));
    }
    for (key, _) in &params.sort {
        if !sort_keys.contains(&key.as_str()) {
            return Err(ApiError::bad_request(F, format!("Invalid input received: Invalid sort key {key}")));
        }
    }
    Ok(params)
}

/// Cinder's sort keys accept the v1 spellings (`display_name`) for their v2 fields.
fn sort_alias(key: &str) -> &str {
    match key {
        "display_name" => "name",
        "display_description" => "description",
        other => other,
    }
}

fn direction(text: &str) -> ApiResult<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "asc" => Ok(true),
        "desc" => Ok(false),
        other => Err(ApiError::bad_request(
            F,
            format!("Invalid input received: Unknown sort direction, must be 'desc' or 'asc' (got {other})"),
        )),
    }
}

/// Whether a view passes every filter.
fn passes(item: &Value, filters: &[(String, String)]) -> ApiResult<bool> {
    for (key, wanted) in filters {
        let ok = match key.as_str() {
            "metadata" => {
                // Clients send JSON or, as Cinder parses it with literal_eval, a Python dict.
                let wanted: Value = serde_json::from_str(wanted)
                    .ok()
                    .or_else(|| super::pyliteral::dict(wanted))
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            F,
                            format!("Invalid input received: metadata filter {wanted} is not a JSON object"),
                        )
                    })?;
                let Value::Object(pairs) = wanted else {
                    return Err(ApiError::bad_request(
                        F,
                        "Invalid input received: metadata filter must be an object",
                    ));
                };
                pairs.iter().all(|(k, v)| item["metadata"].get(k) == Some(v))
            }
            "bootable" => {
                let want = super::parse_bool(&json!(wanted));
                want.is_some_and(|w| item[key.as_str()].as_str() == Some(if w { "true" } else { "false" }))
            }
            "size" => item["size"].as_u64().map(|s| s.to_string()).as_deref() == Some(wanted.as_str()),
            "created_at" | "updated_at" => {
                let (op, wanted) = time_filter(wanted)?;
                // A never-updated resource has no time and, as in SQL, matches no comparison.
                item[key.as_str()].as_str().map(normalise_time).is_some_and(|have| match op {
                    "gt" => have > wanted,
                    "gte" => have >= wanted,
                    "lt" => have < wanted,
                    "lte" => have <= wanted,
                    "neq" => have != wanted,
                    _ => have == wanted,
                })
            }
            like if like.ends_with('~') => {
                let base = like.trim_end_matches('~');
                let needle = wanted.to_lowercase();
                match &item[base] {
                    Value::String(s) => s.to_lowercase().contains(&needle),
                    Value::Null => false,
                    other => other.to_string().to_lowercase().contains(&needle),
                }
            }
            _ => match &item[key.as_str()] {
                Value::String(s) => s == wanted,
                Value::Null => false,
                other => wanted.as_str() == other.to_string().as_str(),
            },
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Splits `op:time` (op one of gt, gte, lt, lte, eq, neq; `eq` when absent) and normalises
/// the time so that string order is time order.
fn time_filter(value: &str) -> ApiResult<(&str, String)> {
    let (op, time) = match value.split_once(':') {
        Some((op, rest)) if ["gt", "gte", "lt", "lte", "eq", "neq"].contains(&op) => (op, rest),
        _ => ("eq", value),
    };
    let normal = normalise_time(time);
    let valid = normal.len() == 26
        && normal.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T',
            13 | 16 => b == b':',
            19 => b == b'.',
            _ => b.is_ascii_digit(),
        });
    if !valid {
        return Err(ApiError::bad_request(
            F,
            format!("Invalid input received: invalid time filter value {value}"),
        ));
    }
    Ok((op, normal))
}

/// `2026-11-23T12:00:00Z`, `...00.5` and `...00.000000` all become `...00.000000`-style text.
fn normalise_time(text: &str) -> String {
    let text = text.trim().trim_end_matches('Z').trim_end_matches("+00:00");
    let (base, fraction) = text.split_once('.').unwrap_or((text, ""));
    format!("{base}.{:0<6}", &fraction[..fraction.len().min(6)])
}

fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

/// One page of a listing.
pub struct Page {
    /// The items on the page.
    pub items: Vec<Value>,
    /// The id to continue after, when more may follow.
    pub next_marker: Option<String>,
    /// How many matched in all.
    pub total: usize,
}

/// Filters, sorts and pages views (which must carry `id`).
pub fn apply(mut items: Vec<Value>, params: &ListParams, marker_kind: &str) -> ApiResult<Page> {
    let mut kept = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if passes(&item, &params.filters)? {
            kept.push(item);
        }
    }
    kept.sort_by(|a, b| {
        for (key, asc) in &params.sort {
            let ord = compare(&a[key.as_str()], &b[key.as_str()]);
            let ord = if *asc { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        // Ties break on id, in the direction of the first key, as Cinder's paginate does.
        let ord = compare(&a["id"], &b["id"]);
        if params.sort.first().is_some_and(|(_, asc)| *asc) { ord } else { ord.reverse() }
    });
    let total = kept.len();
    let mut start = 0;
    if let Some(marker) = &params.marker {
        let at = kept
            .iter()
            .position(|v| v["id"].as_str() == Some(marker.as_str()))
            .ok_or_else(|| ApiError::not_found(F, format!("Marker {marker} could not be found.")))?;
        start = at + 1;
        let _ = marker_kind;
    }
    start += params.offset;
    let limit = params.limit.unwrap_or(MAX_LIMIT);
    let page: Vec<Value> = kept.into_iter().skip(start).take(limit).collect();
    let full = page.len() == limit && limit > 0 && (params.limit.is_some() || page.len() == MAX_LIMIT);
    let next_marker =
        if full { page.last().and_then(|v| v["id"].as_str()).map(str::to_string) } else { None };
    Ok(Page { items: page, next_marker, total })
}

/// The `*_links` list for a page that may have a next one.
pub fn links(url: &str, query: &[(String, String)], page: &Page, limit: Option<usize>) -> Option<Value> {
    let marker = page.next_marker.as_ref()?;
    let mut parts: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != "marker" && k != "limit" && k != "offset")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    parts.push(format!("limit={}", limit.unwrap_or(MAX_LIMIT)));
    parts.push(format!("marker={marker}"));
    Some(json!([{"rel": "next", "href": format!("{url}?{}", parts.join("&"))}]))
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b',' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Answers a list: the page under `key`, `key_links` when more follow, and `count` when asked.
pub fn respond(
    key: &str,
    url: &str,
    query: &[(String, String)],
    params: &ListParams,
    page: Page,
    summary: impl Fn(&Value) -> Value,
) -> Value {
    let mut body = serde_json::Map::new();
    let links = links(url, query, &page, params.limit);
    body.insert(key.into(), Value::Array(page.items.iter().map(summary).collect()));
    if let Some(links) = links {
        body.insert(format!("{key}_links"), links);
    }
    if params.with_count {
        body.insert("count".into(), json!(page.total));
    }
    Value::Object(body)
}

#[cfg(test)]
mod time_filter_tests {
    use super::*;

    #[test]
    fn time_filters_compare_times_not_strings() {
        let item = json!({"updated_at": "2026-11-23T12:00:00.500000", "created_at": null});
        let passes_with =
            |key: &str, value: &str| passes(&item, &[(key.to_string(), value.to_string())]).unwrap();
        assert!(passes_with("updated_at", "gte:2026-11-23T12:00:00"));
        assert!(passes_with("updated_at", "gt:2026-11-23T12:00:00Z"));
        assert!(!passes_with("updated_at", "gt:2026-11-23T12:00:00.5"));
        assert!(passes_with("updated_at", "lte:2026-11-23T12:00:00.500000"));
        assert!(!passes_with("created_at", "gte:2000-01-01T00:00:00"), "null times match nothing");
        assert!(time_filter("gte:yesterday").is_err());
    }
}
