//! Where each Huawei Cloud service lives: an override from the configuration, else the
//! endpoint template filled in with the service and region.

use reqwest::Url;

use super::sign;
use crate::cloud::error::CloudError;
use crate::config::model::Cloud;
use crate::contract::UrlPath;

/// The services this backend calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// Elastic Volume Service.
    Evs,
    /// Elastic Cloud Server.
    Ecs,
}

impl Service {
    /// The name used in templates and override keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Evs => "evs",
            Self::Ecs => "ecs",
        }
    }
}

/// The base URL of `service` for `cloud`.
pub fn base_url(cloud: &Cloud, service: Service) -> Result<Url, CloudError> {
    let name = service.as_str();
    let text = match cloud.endpoint_overrides.get(name) {
        Some(url) => url.clone(),
        None => {
            let template = cloud.huawei.template();
            let mut url = template.replace("{service}", name);
            if url.contains("{region}") {
                let region = cloud.region.as_deref().ok_or_else(|| {
                    CloudError::Config(format!(
                        "cloud {:?} needs region_name (or {name}_endpoint_override)",
                        cloud.name
                    ))
                })?;
                url = url.replace("{region}", region);
            }
            url
        }
    };
    Url::parse(&text).map_err(|e| CloudError::Config(format!("{name} endpoint {text:?}: {e}")))
}

/// `base` joined with `path` (one encoded segment each, `project` in its placeholder), with
/// `query` encoded the way the signature expects.
pub fn join(
    base: &Url,
    path: &UrlPath,
    project: &str,
    query: &[(String, String)],
) -> Result<Url, CloudError> {
    if base.cannot_be_a_base() {
        return Err(CloudError::Config(format!("endpoint {base} cannot hold a path")));
    }
    let mut url = path.join_with_project(base, project)?;
    if !query.is_empty() {
        url.set_query(Some(&sign::query_string(query)));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(region: Option<&str>) -> Cloud {
        Cloud { name: "hw".into(), region: region.map(Into::into), ..Default::default() }
    }

    #[test]
    fn the_default_template_names_service_and_region() {
        let url = base_url(&cloud(Some("cn-north-4")), Service::Evs).unwrap();
        assert_eq!(url.as_str(), "https://evs.cn-north-4.myhuaweicloud.com/");
    }

    #[test]
    fn a_custom_template_is_filled_in() {
        let mut c = cloud(Some("eu-west-101"));
        c.huawei.endpoint_template = Some("https://{service}.{region}.myhuaweicloud.eu".into());
        assert_eq!(base_url(&c, Service::Ecs).unwrap().as_str(), "https://ecs.eu-west-101.myhuaweicloud.eu/");
    }

    #[test]
    fn an_override_wins_and_needs_no_region() {
        let mut c = cloud(None);
        c.endpoint_overrides.insert("evs".into(), "http://127.0.0.1:9000/evs".into());
        assert_eq!(base_url(&c, Service::Evs).unwrap().as_str(), "http://127.0.0.1:9000/evs");
        let err = base_url(&c, Service::Ecs).unwrap_err();
        assert!(err.to_string().contains("region_name"), "{err}");
    }

    #[test]
    fn join_keeps_the_base_path_and_encodes_the_query() {
        let base = Url::parse("http://h:1/evs/").unwrap();
        let path = UrlPath::new("v2").project().word("cloudvolumes/detail");
        let url = join(&base, &path, "p", &[("name".into(), "a b+c".into())]).unwrap();
        assert_eq!(url.as_str(), "http://h:1/evs/v2/p/cloudvolumes/detail?name=a%20b%2Bc");
    }
}
