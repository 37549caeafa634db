//! The `OpenStack-API-Version` header: parsing, range checks (406 outside) and the echo.

use axum::http::{HeaderMap, HeaderValue, StatusCode};

use super::errors::{ApiError, ApiResult, Family};

/// A `major.minor` API microversion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microversion {
    /// Major version.
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Microversion {
    /// `major.minor`.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Whether this is at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Self::new(major, minor)
    }

    /// `3.42`.
    pub fn text(self) -> String {
        format!("{}.{}", self.major, self.minor)
    }
}

/// The range one service supports and the header names it reads.
pub struct Range {
    /// The service name in the header (`volume`, `compute`).
    pub service: &'static str,
    /// The legacy header some clients still send (`X-OpenStack-Nova-API-Version`).
    pub legacy_header: Option<&'static str>,
    /// Lowest supported.
    pub min: Microversion,
    /// Highest supported.
    pub max: Microversion,
    /// Whose error body to answer with.
    pub family: Family,
}

impl Range {
    /// The version a request asks for; the minimum when it asks for none.
    pub fn negotiate(&self, headers: &HeaderMap) -> ApiResult<Microversion> {
        let mut asked = None;
        for value in headers.get_all("openstack-api-version") {
            let Ok(value) = value.to_str() else { continue };
            for part in value.split(',') {
                let mut words = part.split_whitespace();
                if words.next().is_some_and(|s| s.eq_ignore_ascii_case(self.service)) {
                    asked = words.next().map(str::to_string);
                }
            }
        }
        if asked.is_none()
            && let Some(legacy) = self.legacy_header
        {
            asked = headers.get(legacy).and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string());
        }
        let Some(asked) = asked else { return Ok(self.min) };
        if asked.eq_ignore_ascii_case("latest") {
            return Ok(self.max);
        }
        let parsed = asked
            .split_once('.')
            .and_then(|(major, minor)| Some(Microversion::new(major.parse().ok()?, minor.parse().ok()?)));
        let Some(version) = parsed else {
            return Err(ApiError::bad_request(
                self.family,
                format!(
                    "API Version String {asked} is of invalid format. Must be of format MajorNum.MinorNum."
                ),
            ));
        };
        if version < self.min || version > self.max {
            return Err(ApiError::new(
                self.family,
                StatusCode::NOT_ACCEPTABLE,
                format!(
                    "Version {} is not supported by the API. Minimum is {} and maximum is {}.",
                    version.text(),
                    self.min.text(),
                    self.max.text()
                ),
            ));
        }
        Ok(version)
    }

    /// Adds the echo headers to a response.
    pub fn echo(&self, headers: &mut HeaderMap, version: Microversion) {
        if let Ok(value) = HeaderValue::from_str(&format!("{} {}", self.service, version.text())) {
            headers.insert("openstack-api-version", value);
        }
        if let Some(legacy) = self.legacy_header
            && let Ok(value) = HeaderValue::from_str(&version.text())
        {
            headers.insert(legacy, value);
        }
        let vary = match self.legacy_header {
            Some(legacy) => format!("OpenStack-API-Version, {legacy}"),
            None => "OpenStack-API-Version".to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&vary) {
            headers.insert("vary", value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOLUME: Range = Range {
        service: "volume",
        legacy_header: None,
        min: Microversion::new(3, 0),
        max: Microversion::new(3, 70),
        family: Family::Volume,
    };

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("openstack-api-version", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn versions_parse_and_default() {
        assert_eq!(VOLUME.negotiate(&HeaderMap::new()).unwrap(), Microversion::new(3, 0));
        assert_eq!(VOLUME.negotiate(&headers("volume 3.42")).unwrap(), Microversion::new(3, 42));
        assert_eq!(
            VOLUME.negotiate(&headers("compute 2.60, volume latest")).unwrap(),
            Microversion::new(3, 70)
        );
    }

    #[test]
    fn versions_outside_the_range_are_not_acceptable() {
        assert_eq!(VOLUME.negotiate(&headers("volume 3.71")).unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(VOLUME.negotiate(&headers("volume 2.0")).unwrap_err().status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(VOLUME.negotiate(&headers("volume three")).unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
