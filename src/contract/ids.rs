//! Cloud ids: what Cinder, Nova, EVS and ECS issue (UUIDs), parsed once and typed.
//!
//! A request's id reaches a cloud URL only as a [`CloudId`], and only through [`UrlPath`],
//! which adds it as one percent-encoded path segment. So no `/`, `..`, `?`, `#` or `%` in a
//! request can change which resource or query a call hits, and two spellings of one id (case)
//! are one id, with one lock.

use std::fmt;

/// The longest id text an error message quotes (a hostile id may be megabytes).
const QUOTE_LIMIT: usize = 80;

/// Why a text is not a cloud id.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The field was empty.
    #[error("{what} is required")]
    Empty {
        /// The field, e.g. "volume_id".
        what: &'static str,
    },
    /// The text is not an id the cloud can issue.
    #[error("{what} {quoted} is not a cloud id (a UUID such as 0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f)")]
    Malformed {
        /// The field, e.g. "volume_id".
        what: &'static str,
        /// The text, quoted and cut short.
        quoted: String,
    },
}

/// An id the cloud issued: a UUID in its canonical lower-case 8-4-4-4-12 form.
///
/// Cinder, Nova, EVS and ECS all name volumes, snapshots, backups, groups and servers by
/// UUID. Upper-case input is folded, so that two spellings of one id are equal.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloudId(String);

impl CloudId {
    /// Parses `text` as the id in field `what`; anything but a UUID is refused.
    pub fn parse(what: &'static str, text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty { what });
        }
        if !is_uuid(text) {
            return Err(IdError::Malformed { what, quoted: quote(text) });
        }
        Ok(Self(text.to_ascii_lowercase()))
    }

    /// The id's text (always a canonical UUID).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh random id (for tests and emulated clouds).
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

impl fmt::Display for CloudId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// Reading a typed id as text is always safe (the reverse is what `parse` guards), and lets the
// cloud clients' helpers that take `&str` accept a `&CloudId` unchanged.
impl std::ops::Deref for CloudId {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for CloudId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for CloudId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::str::FromStr for CloudId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        Self::parse("id", text)
    }
}

/// The prefix that marks a CSI snapshot id as a backup (kept from the first release, so that
/// existing VolumeSnapshotContents stay valid).
pub const BACKUP_PREFIX: &str = "backup/";

/// What a CSI snapshot id names: a snapshot or a backup, each with its cloud id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SnapshotRef {
    /// A volume snapshot (kept on the volume's storage).
    Snapshot(CloudId),
    /// A backup (kept apart from the volume's storage), spelled `backup/<uuid>`.
    Backup(CloudId),
}

impl SnapshotRef {
    /// Parses `<uuid>` or `backup/<uuid>`; anything else is refused.
    pub fn parse(what: &'static str, text: &str) -> Result<Self, IdError> {
        match text.strip_prefix(BACKUP_PREFIX) {
            Some(backup) => CloudId::parse(what, backup).map(Self::Backup),
            None => CloudId::parse(what, text).map(Self::Snapshot),
        }
    }

    /// The cloud id, whichever kind it names.
    pub fn id(&self) -> &CloudId {
        match self {
            Self::Snapshot(id) | Self::Backup(id) => id,
        }
    }
}

impl fmt::Display for SnapshotRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Snapshot(id) => write!(f, "{id}"),
            Self::Backup(id) => write!(f, "{BACKUP_PREFIX}{id}"),
        }
    }
}

/// The longest CSI id the spec lets a CO send (128 bytes); longer text names nothing of ours.
pub const MAX_HANDLE: usize = 128;

/// A CSI volume, snapshot or group snapshot id: `[<cloud>:]<id>`, split at the last `:`.
///
/// The cloud is a configured cloud's name; `None` for a bare id (written by a driver with one
/// cloud, or before handles were always prefixed). Which cloud a name means is the
/// controller's business; this type only guarantees that `id` is what a cloud can issue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle<T> {
    /// The cloud's name, when the handle carries one.
    pub cloud: Option<String>,
    /// The id in that cloud.
    pub id: T,
}

impl<T> Handle<T> {
    fn split<'a>(what: &'static str, text: &'a str) -> Result<(Option<String>, &'a str), IdError> {
        if text.is_empty() {
            return Err(IdError::Empty { what });
        }
        if text.len() > MAX_HANDLE {
            return Err(IdError::Malformed { what, quoted: quote(text) });
        }
        match text.rsplit_once(':') {
            None => Ok((None, text)),
            Some((cloud, id)) if valid_cloud_name(cloud) => Ok((Some(cloud.to_string()), id)),
            Some(_) => Err(IdError::Malformed { what, quoted: quote(text) }),
        }
    }
}

impl Handle<CloudId> {
    /// Parses a volume (or group snapshot) handle.
    pub fn parse(what: &'static str, text: &str) -> Result<Self, IdError> {
        let (cloud, id) = Self::split(what, text)?;
        let id = CloudId::parse(what, id).map_err(|_| IdError::Malformed { what, quoted: quote(text) })?;
        Ok(Self { cloud, id })
    }
}

impl Handle<SnapshotRef> {
    /// Parses a snapshot handle: `[<cloud>:]<uuid>` or `[<cloud>:]backup/<uuid>`.
    pub fn parse(what: &'static str, text: &str) -> Result<Self, IdError> {
        let (cloud, id) = Handle::<CloudId>::split(what, text)?;
        let id =
            SnapshotRef::parse(what, id).map_err(|_| IdError::Malformed { what, quoted: quote(text) })?;
        Ok(Self { cloud, id })
    }
}

impl<T: fmt::Display> fmt::Display for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cloud {
            Some(cloud) => write!(f, "{cloud}:{}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

/// Whether `name` can be a cloud's name inside a handle. The name is only ever looked up among
/// the configured clouds (never put into a URL), so only emptiness, length and control
/// characters are refused.
pub fn valid_cloud_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && !name.chars().any(char::is_control)
}

/// Whether `text` is a UUID in the 8-4-4-4-12 hex form (either case), and nothing else.
pub fn is_uuid(text: &str) -> bool {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return false;
    }
    let mut at = 0;
    for (i, len) in GROUPS.iter().enumerate() {
        if i > 0 {
            if bytes[at] != b'-' {
                return false;
            }
            at += 1;
        }
        if !bytes[at..at + len].iter().all(u8::is_ascii_hexdigit) {
            return false;
        }
        at += len;
    }
    true
}

/// `text` quoted for an error message: escaped, and cut at [`QUOTE_LIMIT`] characters.
pub fn quote(text: &str) -> String {
    let mut cut: String = text.chars().take(QUOTE_LIMIT).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    format!("{cut:?}")
}

/// A relative URL path built from fixed words and typed ids, each added as one
/// percent-encoded segment; the only way an id reaches a cloud URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPath {
    // `None` is the project placeholder, filled in only when the URL is built.
    segments: Vec<Option<String>>,
}

/// How the project placeholder of a [`UrlPath`] reads in [`UrlPath::segments`].
pub const PROJECT_PLACEHOLDER: &str = "{project_id}";

impl UrlPath {
    /// A path starting with the fixed word(s) `literal` (e.g. `"volumes"`, `"os-volume_attachments"`).
    ///
    /// `literal` is the driver's own text, never a request's; it may hold `/` between words.
    pub fn new(literal: &'static str) -> Self {
        Self { segments: literal.split('/').filter(|s| !s.is_empty()).map(|s| Some(s.to_string())).collect() }
    }

    /// Appends a fixed word (the driver's own text, e.g. `"action"`).
    pub fn word(mut self, literal: &'static str) -> Self {
        self.segments.extend(literal.split('/').filter(|s| !s.is_empty()).map(|s| Some(s.to_string())));
        self
    }

    /// Appends the project placeholder: the project id, known only once authenticated, goes
    /// there as one encoded segment when the URL is built ([`UrlPath::join_with_project`]).
    pub fn project(mut self) -> Self {
        self.segments.push(None);
        self
    }

    /// Appends a typed id as one segment.
    pub fn id(mut self, id: &CloudId) -> Self {
        self.segments.push(Some(id.as_str().to_string()));
        self
    }

    /// Appends a segment of the cloud's or the operator's text (e.g. a project id from the
    /// catalog), percent-encoded so that it stays one segment whatever it holds.
    ///
    /// Empty, `.` and `..` are refused: a URL library drops or folds them, which would change
    /// the path.
    pub fn segment(mut self, what: &'static str, text: &str) -> Result<Self, IdError> {
        if text.is_empty() {
            return Err(IdError::Empty { what });
        }
        if text == "." || text == ".." {
            return Err(IdError::Malformed { what, quoted: quote(text) });
        }
        self.segments.push(Some(text.to_string()));
        Ok(self)
    }

    /// This path joined under `base` (whose own path is kept): every segment is encoded. A
    /// project placeholder, if any, stays as its literal (encoded) text: paths with one are
    /// built with [`UrlPath::join_with_project`].
    pub fn join_to(&self, base: &reqwest::Url) -> reqwest::Url {
        self.build(base, PROJECT_PLACEHOLDER)
    }

    /// This path joined under `base`, with `project` (the catalog's or token's project id) as
    /// the placeholder's one encoded segment. Empty, `.` and `..` projects are refused.
    pub fn join_with_project(&self, base: &reqwest::Url, project: &str) -> Result<reqwest::Url, IdError> {
        let checked = Self::default().segment("project_id", project)?;
        let project = checked.segments[0].as_deref().unwrap_or_default();
        Ok(self.build(base, project))
    }

    fn build(&self, base: &reqwest::Url, project: &str) -> reqwest::Url {
        let mut url = base.clone();
        {
            // A base that cannot be a base (e.g. `mailto:`) was refused when configured.
            let mut path = url.path_segments_mut().expect("cloud endpoints are http(s) URLs");
            path.pop_if_empty();
            path.extend(self.segments.iter().map(|s| s.as_deref().unwrap_or(project)));
        }
        url
    }

    /// The segments, in order, the project placeholder as [`PROJECT_PLACEHOLDER`] (for tests
    /// and logging).
    pub fn segments(&self) -> Vec<&str> {
        self.segments.iter().map(|s| s.as_deref().unwrap_or(PROJECT_PLACEHOLDER)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f";

    #[test]
    fn a_canonical_uuid_is_an_id() {
        assert_eq!(CloudId::parse("volume_id", ID).unwrap().as_str(), ID);
    }

    #[test]
    fn two_spellings_of_one_uuid_are_one_id() {
        assert_eq!(
            CloudId::parse("volume_id", &ID.to_uppercase()).unwrap(),
            CloudId::parse("volume_id", ID).unwrap()
        );
    }

    #[test]
    fn traversal_query_and_short_ids_are_refused() {
        for hostile in [
            "",
            "-",
            "disk",
            "../volumes/0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f",
            "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f?cascade=true",
            "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7",
            "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7f0",
            "0b8e2f3c5d6a4c1b9e7f2a3b4c5d6e7f",
            "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e7g",
            "0b8e2f3c-5d6a-4c1b-9e7f-2a3b4c5d6e\0f",
            "0b8e2f3c/5d6a-4c1b-9e7f-2a3b4c5d6e7f",
        ] {
            assert!(CloudId::parse("volume_id", hostile).is_err(), "{hostile:?} was taken as an id");
        }
    }

    #[test]
    fn an_error_quotes_a_long_id_cut_short() {
        let long = "x".repeat(10_000);
        let message = CloudId::parse("snapshot_id", &long).unwrap_err().to_string();
        assert!(message.len() < 300, "{message}");
        assert!(message.starts_with("snapshot_id \"xxx"));
    }

    #[test]
    fn an_empty_id_is_reported_as_required() {
        assert_eq!(CloudId::parse("node_id", "").unwrap_err().to_string(), "node_id is required");
    }

    #[test]
    fn url_paths_encode_every_segment_under_the_base_path() {
        let base = reqwest::Url::parse("http://cloud:8776/v3/project/").unwrap();
        let id = CloudId::parse("volume_id", ID).unwrap();
        let url = UrlPath::new("volumes").id(&id).word("action").join_to(&base);
        assert_eq!(url.as_str(), format!("http://cloud:8776/v3/project/volumes/{ID}/action"));
        let hostile = UrlPath::new("servers").segment("name", "../x?y=1#z%2F").unwrap().join_to(&base);
        assert_eq!(hostile.as_str(), "http://cloud:8776/v3/project/servers/..%2Fx%3Fy=1%23z%252F");
        assert_eq!(hostile.query(), None);
    }

    #[test]
    fn dot_segments_are_refused_not_folded() {
        for dots in ["", ".", ".."] {
            assert!(UrlPath::new("servers").segment("name", dots).is_err(), "{dots:?}");
        }
    }

    #[test]
    fn snapshot_refs_keep_the_backup_spelling() {
        let snapshot = SnapshotRef::parse("snapshot_id", ID).unwrap();
        assert_eq!(snapshot, SnapshotRef::Snapshot(CloudId::parse("id", ID).unwrap()));
        let backup = SnapshotRef::parse("snapshot_id", &format!("backup/{ID}")).unwrap();
        assert_eq!(backup.to_string(), format!("backup/{ID}"));
        for hostile in ["backup/", "backup/../volumes/x", &format!("backup/{ID}/x"), &format!("backup//{ID}")]
        {
            assert!(SnapshotRef::parse("snapshot_id", hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn handles_split_at_the_last_colon_and_name_their_cloud() {
        let h = Handle::<CloudId>::parse("volume_id", &format!("hw:{ID}")).unwrap();
        assert_eq!((h.cloud.as_deref(), h.id.as_str()), (Some("hw"), ID));
        assert_eq!(h.to_string(), format!("hw:{ID}"));
        let bare = Handle::<CloudId>::parse("volume_id", ID).unwrap();
        assert_eq!((bare.to_string(), bare.cloud), (ID.to_string(), None));
        for hostile in
            [format!(":{ID}"), format!("hw:{ID}:"), format!("hw:../{ID}"), format!("{}{ID}", "a".repeat(100))]
        {
            assert!(Handle::<CloudId>::parse("volume_id", &hostile).is_err(), "{hostile:?}");
        }
    }

    #[test]
    fn the_project_placeholder_is_one_encoded_segment() {
        let base = reqwest::Url::parse("https://evs.example.com/").unwrap();
        let path = UrlPath::new("v2").project().word("cloudvolumes");
        assert_eq!(
            path.join_with_project(&base, "p1").unwrap().as_str(),
            "https://evs.example.com/v2/p1/cloudvolumes"
        );
        let odd = path.join_with_project(&base, "a/b?c").unwrap();
        assert_eq!(odd.path(), "/v2/a%2Fb%3Fc/cloudvolumes");
        assert_eq!(odd.query(), None);
        assert!(path.join_with_project(&base, "..").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_text_is_a_canonical_uuid_or_refused(text in "(?s).{0,64}") {
            match CloudId::parse("volume_id", &text) {
                Ok(id) => {
                    proptest::prop_assert_eq!(id.as_str(), text.to_ascii_lowercase());
                    proptest::prop_assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
                    proptest::prop_assert_eq!(id.as_str().len(), 36);
                }
                Err(_) => proptest::prop_assert!(!is_uuid(&text)),
            }
        }

        #[test]
        fn uuid_like_text_parses_exactly_when_it_is_a_uuid(text in "[0-9a-fA-F/.?#%-]{36}") {
            let parsed = CloudId::parse("volume_id", &text).is_ok();
            let hyphenated = text.len() == 36 && uuid::Uuid::try_parse(&text).is_ok() && text.as_bytes()[8] == b'-';
            proptest::prop_assert_eq!(parsed, hyphenated, "{:?}", text);
        }

        #[test]
        fn any_handle_text_parses_to_a_uuid_or_is_refused(text in "(?s).{0,200}") {
            if let Ok(h) = Handle::<CloudId>::parse("volume_id", &text) {
                proptest::prop_assert!(is_uuid(h.id.as_str()));
                proptest::prop_assert!(text.to_ascii_lowercase().ends_with(h.id.as_str()));
            }
            if let Ok(h) = Handle::<SnapshotRef>::parse("snapshot_id", &text) {
                proptest::prop_assert!(is_uuid(h.id.id().as_str()));
            }
        }

        #[test]
        fn a_built_url_has_exactly_its_segments_and_no_query(
            texts in proptest::collection::vec("(?s).{1,40}", 0..4),
            base_path in "(/[a-z0-9]{1,8}){0,3}/?",
        ) {
            let base = reqwest::Url::parse(&format!("http://cloud:8776{base_path}")).unwrap();
            let base_segments = base.path_segments().unwrap().filter(|s| !s.is_empty()).count();
            let mut path = UrlPath::new("volumes");
            let mut expected = 1;
            for text in &texts {
                if let Ok(next) = path.clone().segment("id", text) {
                    path = next;
                    expected += 1;
                }
            }
            let url = path.word("action").join_to(&base);
            expected += 1;
            proptest::prop_assert_eq!(url.query(), None);
            proptest::prop_assert_eq!(url.fragment(), None);
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            proptest::prop_assert_eq!(segments.len(), base_segments + expected, "{}", url);
            proptest::prop_assert!(!segments.iter().any(|s| *s == ".." || *s == "."), "{}", url);
            // Reparsing the text gives the same URL: nothing folds or moves on the way out.
            proptest::prop_assert_eq!(reqwest::Url::parse(url.as_str()).unwrap(), url.clone());
        }
    }
}
