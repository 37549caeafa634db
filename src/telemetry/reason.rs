//! A cloud's own failure reason (Cinder's `fail_reason` and user messages, EVS job
//! `fail_reason`) made fit for a gRPC message and a log line: one line, no control characters,
//! no credential, bounded. Cinder puts whole tracebacks into `fail_reason`; backends quote
//! connection strings and command lines, which may carry passwords.

use super::redact::REDACTED;
use super::secret_names::is_secret_name;

/// The longest reason kept, in characters.
pub const MAX_REASON: usize = 300;

/// The reason as the driver reports it, or `None` when nothing useful is left.
pub fn cloud_reason(text: &str) -> Option<String> {
    // Everything from a traceback on is the service's internals, not the reason.
    let head = text.split("Traceback (most recent call last)").next().unwrap_or_default();
    let line = head.lines().map(str::trim).find(|l| !l.is_empty())?;
    let printable: String = line.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let words: Vec<String> = printable.split_whitespace().map(redact_word).collect();
    let mut out = redact_assignments(&words).join(" ");
    if out.chars().count() > MAX_REASON {
        out = out.chars().take(MAX_REASON).collect::<String>() + "…";
    }
    (!out.is_empty()).then_some(out)
}

/// `scheme://user:password@host` loses its user information; `key=value` with a secret key
/// loses its value.
fn redact_word(word: &str) -> String {
    if let Some(scheme_end) = word.find("://") {
        let rest = &word[scheme_end + 3..];
        if let Some(at) = rest.find('@')
            && !rest[..at].contains('/')
        {
            return format!("{}://{REDACTED}@{}", &word[..scheme_end], &rest[at + 1..]);
        }
    }
    for separator in ['=', ':'] {
        if let Some((key, value)) = word.split_once(separator)
            && !value.is_empty()
            && is_secret_name(key.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '-'))
        {
            return format!("{key}{separator}{REDACTED}");
        }
    }
    word.to_string()
}

/// `password: hunter2`, `--password hunter2`, `token hunter2`: the word after a secret name
/// that ends with `:` or is an option.
fn redact_assignments(words: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut hide_next = false;
    for word in words {
        if hide_next {
            out.push(REDACTED.to_string());
            hide_next = false;
            continue;
        }
        let bare = word.trim_start_matches('-').trim_end_matches(':');
        let names_secret = !bare.is_empty() && is_secret_name(bare) && !word.contains(REDACTED);
        hide_next = names_secret && (word.ends_with(':') || word.starts_with("--"));
        out.push(word.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_reason_is_kept_as_it_is() {
        assert_eq!(
            cloud_reason("Connector doesn't have required information: initiator").as_deref(),
            Some("Connector doesn't have required information: initiator")
        );
    }

    #[test]
    fn a_traceback_after_the_reason_is_cut_off() {
        let text = "Invalid input received: Connector doesn't have required information: initiator\n\
                    Traceback (most recent call last):\n  File \"/venv/cinder/volume/manager.py\", line 1974";
        assert_eq!(
            cloud_reason(text).as_deref(),
            Some("Invalid input received: Connector doesn't have required information: initiator")
        );
    }

    #[test]
    fn credentials_in_urls_and_assignments_are_hidden() {
        let text = "cannot reach mysql+pymysql://cinder:s3cr3t@db/cinder with password=hunter2 and token: abc123 --os-password pw9";
        let reason = cloud_reason(text).unwrap();
        for secret in ["s3cr3t", "hunter2", "abc123", "pw9"] {
            assert!(!reason.contains(secret), "{secret} leaked: {reason}");
        }
        assert!(reason.contains("mysql+pymysql://<redacted>@db/cinder"), "{reason}");
        assert!(reason.contains("password=<redacted>"), "{reason}");
    }

    #[test]
    fn control_characters_become_spaces_and_whitespace_collapses() {
        assert_eq!(cloud_reason("\u{1b}[31mdisk\tfull\r").as_deref(), Some("[31mdisk full"));
    }

    #[test]
    fn a_huge_reason_is_bounded() {
        let reason = cloud_reason(&"x".repeat(10_000)).unwrap();
        assert_eq!(reason.chars().count(), MAX_REASON + 1);
    }

    #[test]
    fn an_empty_or_blank_reason_is_none() {
        assert_eq!(cloud_reason(""), None);
        assert_eq!(cloud_reason(" \n\t "), None);
        assert_eq!(cloud_reason("Traceback (most recent call last):\n boom"), None);
    }
}
