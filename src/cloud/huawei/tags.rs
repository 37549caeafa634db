//! EVS disk tags: the labels people filter and bill by (cluster, PVC namespace and name).
//! A new disk gets them in its v2.1 create request; tags can still go missing (disks made by an
//! older driver, or untagged by hand), so tags are never what ownership is judged by (metadata
//! is). Instead a repair pass asks the tag query which of the cluster's disks carry their tags
//! and adds the missing ones again.

use std::collections::BTreeMap;
use std::sync::Arc;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Client, Request};
use super::endpoints::Service;
use super::fault;
use crate::cloud::error::CloudError;
use crate::contract::UrlPath;

/// Most tags a disk may carry.
pub const MAX_TAGS: usize = 10;
/// Longest tag key.
const MAX_KEY_CHARS: usize = 36;
/// Longest tag value.
const MAX_VALUE_CHARS: usize = 43;
/// Largest page the tag query returns.
pub const MAX_QUERY_PAGE: u32 = 1000;
/// Bound on the pages one query walks (a million disks at the largest page).
const MAX_QUERY_PAGES: usize = 1000;

/// A metadata pair as a tag: EVS tag keys allow `A-Za-z0-9-_`, values also `.`; anything else
/// becomes `_` and the text is cut to the documented lengths.
pub fn tag_for(key: &str, value: &str) -> (String, String) {
    fn clean(text: &str, extra: &[char], max: usize) -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' || extra.contains(&c) { c } else { '_' }
            })
            .take(max)
            .collect()
    }
    (clean(key, &[], MAX_KEY_CHARS), clean(value, &['.'], MAX_VALUE_CHARS))
}

/// Tags for a disk from its metadata, skipping EVS's own keys; `first` (the owner key) leads, so
/// the tag the repair queries by survives the limit of [`MAX_TAGS`].
pub fn tags_for(metadata: &BTreeMap<String, String>, first: Option<&str>) -> Vec<(String, String)> {
    let leading = first.and_then(|key| metadata.get_key_value(key));
    leading
        .into_iter()
        .chain(metadata.iter().filter(|(k, _)| Some(k.as_str()) != first))
        .filter(|(k, _)| {
            !k.starts_with("__system__")
                && !k.starts_with("hw:")
                && !k.starts_with("evs:")
                && *k != "full_clone"
        })
        .map(|(k, v)| tag_for(k, v))
        .filter(|(k, _)| !k.is_empty())
        .take(MAX_TAGS)
        .collect()
}

/// The tags of `expected` that `actual` lacks or holds with another value.
pub fn missing_tags(
    expected: &[(String, String)],
    actual: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    expected.iter().filter(|(k, v)| actual.get(k) != Some(v)).cloned().collect()
}

/// A disk found by a tag query, with all the tags it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaggedDisk {
    /// The disk id.
    pub id: String,
    /// Its tags.
    pub tags: BTreeMap<String, String>,
}

/// The body of `resource_instances/action` for disks tagged `key` = `value`.
pub fn query_body(key: &str, value: &str, limit: u32, offset: u64) -> Value {
    json!({
        "action": "filter",
        "tags": [{ "key": key, "values": [value] }],
        "limit": limit.clamp(1, MAX_QUERY_PAGE),
        "offset": offset,
    })
}

#[derive(Debug, Deserialize)]
struct QueryJson {
    #[serde(default)]
    total_count: u64,
    #[serde(default)]
    resources: Vec<ResourceJson>,
}

#[derive(Debug, Deserialize)]
struct ResourceJson {
    resource_id: String,
    #[serde(default)]
    tags: Vec<TagJson>,
}

#[derive(Debug, Deserialize)]
struct TagJson {
    key: String,
    #[serde(default)]
    value: String,
}

/// One page of a tag query and the total number of matching disks.
pub fn tagged_page_from_json(body: &[u8]) -> Result<(Vec<TaggedDisk>, u64), CloudError> {
    let page: QueryJson = serde_json::from_slice(body)
        .map_err(|e| CloudError::Protocol(format!("malformed tag query answer: {e}")))?;
    let disks = page
        .resources
        .into_iter()
        .map(|r| TaggedDisk {
            id: r.resource_id,
            tags: r.tags.into_iter().map(|t| (t.key, t.value)).collect(),
        })
        .collect();
    Ok((disks, page.total_count))
}

/// The EVS tag API.
#[derive(Debug)]
pub struct Tags {
    client: Arc<Client>,
}

impl Tags {
    /// A client.
    pub fn new(client: Arc<Client>) -> Self {
        Self { client }
    }

    /// `POST /v2/{project_id}/cloudvolumes/{id}/tags/action` with `create`; a tag with the same
    /// key is overwritten, so sending it twice is harmless.
    pub async fn add(&self, id: &str, tags: &[(String, String)]) -> Result<(), CloudError> {
        if tags.is_empty() {
            return Ok(());
        }
        let tags: Vec<Value> = tags.iter().map(|(k, v)| json!({ "key": k, "value": v })).collect();
        let request = Request::new(
            "evs.volume.tag",
            Service::Evs,
            Method::POST,
            UrlPath::new("v2").project().word("cloudvolumes").segment("id", id)?.word("tags").word("action"),
        )
        .json(json!({ "action": "create", "tags": tags }))
        .repeatable();
        let reply = self.client.send(&request).await?;
        if reply.status.is_success() { Ok(()) } else { Err(fault::to_error(&reply, "volume", id)) }
    }

    /// Every disk tagged `key` = `value`, through `POST .../cloudvolumes/resource_instances/action`
    /// in pages of `page_size`. The query pages by offset, so a disk deleted meanwhile can hide
    /// another from this answer; callers must treat an absent disk as "tags unknown".
    pub async fn disks_tagged(
        &self,
        key: &str,
        value: &str,
        page_size: u32,
    ) -> Result<Vec<TaggedDisk>, CloudError> {
        let mut found: Vec<TaggedDisk> = Vec::new();
        for _ in 0..MAX_QUERY_PAGES {
            let request = Request::new(
                "evs.volume.by_tag",
                Service::Evs,
                Method::POST,
                UrlPath::new("v2").project().word("cloudvolumes").word("resource_instances").word("action"),
            )
            .json(query_body(key, value, page_size, found.len() as u64))
            .repeatable();
            let reply = self.client.send(&request).await?;
            if !reply.status.is_success() {
                return Err(fault::to_error(&reply, "disk tag query", ""));
            }
            let (page, total) = tagged_page_from_json(&reply.body)?;
            // A short page ends the walk even when an answer leaves `total_count` out.
            let last = (page.len() as u32) < page_size.clamp(1, MAX_QUERY_PAGE);
            found.extend(page);
            if last || (total > 0 && found.len() as u64 >= total) {
                return Ok(found);
            }
        }
        Err(CloudError::Protocol(format!("the tag query did not end after {MAX_QUERY_PAGES} pages")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tags_are_cleaned_to_the_evs_character_set_and_skip_system_keys() {
        let metadata = metadata(&[
            ("cinder-evs-csi/cluster-id", "prod cluster"),
            ("cinder-evs-csi/pvc-namespace", "team-a"),
            ("cinder-evs-csi/pvc-name", "data.db-0"),
            ("hw:passthrough", "true"),
            ("__system__encrypted", "1"),
        ]);
        assert_eq!(
            tags_for(&metadata, None),
            pairs(&[
                ("cinder-evs-csi_cluster-id", "prod_cluster"),
                ("cinder-evs-csi_pvc-name", "data.db-0"),
                ("cinder-evs-csi_pvc-namespace", "team-a"),
            ])
        );
    }

    #[test]
    fn the_owner_tag_leads_and_survives_the_tag_limit() {
        let mut metadata: BTreeMap<String, String> =
            (0..12).map(|i| (format!("a-user-key-{i:02}"), "x".to_string())).collect();
        metadata.insert("z-owner".into(), "cluster-1".into());
        let tags = tags_for(&metadata, Some("z-owner"));
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(tags[0], ("z-owner".to_string(), "cluster-1".to_string()));
        assert_eq!(tags.iter().filter(|(k, _)| k == "z-owner").count(), 1, "not repeated");
    }

    #[test]
    fn long_keys_and_values_are_cut_to_the_documented_lengths() {
        let (key, value) = tag_for(&"k".repeat(50), &"v".repeat(50));
        assert_eq!((key.len(), value.len()), (36, 43));
    }

    #[test]
    fn a_tag_is_missing_when_absent_or_holding_another_value() {
        let expected = pairs(&[("cluster", "c1"), ("pvc", "data"), ("ns", "a")]);
        let actual = metadata(&[("cluster", "c1"), ("pvc", "old"), ("team", "x")]);
        assert_eq!(missing_tags(&expected, &actual), pairs(&[("pvc", "data"), ("ns", "a")]));
        assert!(
            missing_tags(&expected, &metadata(&[("cluster", "c1"), ("pvc", "data"), ("ns", "a")])).is_empty()
        );
    }

    #[test]
    fn the_query_asks_for_one_tag_value_in_bounded_pages() {
        let body = query_body("cluster", "c1", 5000, 2000);
        assert_eq!(body["action"], "filter");
        assert_eq!(body["tags"], json!([{"key": "cluster", "values": ["c1"]}]));
        assert_eq!(body["limit"], 1000);
        assert_eq!(body["offset"], 2000);
    }

    #[test]
    fn the_seed_query_answer_maps_to_disks_with_their_tags() {
        let body = br#"{"total_count": 3, "resources": [
            {"resource_id": "d1", "resource_name": "pvc-1", "resource_detail": {"id": "d1"},
             "tags": [{"key": "cluster", "value": "c1"}, {"key": "empty"}]}]}"#;
        let (disks, total) = tagged_page_from_json(body).unwrap();
        assert_eq!(total, 3);
        assert_eq!(
            disks,
            vec![TaggedDisk { id: "d1".into(), tags: metadata(&[("cluster", "c1"), ("empty", "")]) }]
        );
        assert!(matches!(tagged_page_from_json(b"{\"resources\": 7}"), Err(CloudError::Protocol(_))));
    }
}
