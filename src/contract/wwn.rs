//! A SCSI WWN as the publish context carries it: the one rule by which the controller decides
//! what it may write and the node decides what it may search for.

/// A WWN that failed the rule; the text is quoted and cut short.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what} {quoted} is not a WWN (16 or 32 hex digits)")]
pub struct WwnError {
    /// The field, e.g. "publish_context wwn".
    pub what: &'static str,
    /// The text, quoted and cut short.
    pub quoted: String,
}

/// Parses a WWN: 16 or 32 hex digits, optionally after `0x` or `naa.`, with surrounding
/// whitespace trimmed (Huawei's own examples carry a leading space). The result is lower case
/// without prefix, the form by-id links and sysfs use; anything else is refused, never searched
/// for, so no path separator or `..` can reach a link name.
pub fn parse(what: &'static str, text: &str) -> Result<String, WwnError> {
    let lower = text.trim().to_ascii_lowercase();
    let digits = lower.strip_prefix("0x").or_else(|| lower.strip_prefix("naa.")).unwrap_or(&lower);
    if matches!(digits.len(), 16 | 32) && digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(digits.to_string())
    } else {
        Err(WwnError { what, quoted: super::ids::quote(text) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_or_thirty_two_hex_digits_are_a_wwn_in_lower_case_without_prefix() {
        assert_eq!(parse("wwn", "0x6888603000001234").unwrap(), "6888603000001234");
        assert_eq!(parse("wwn", "6888603000001234").unwrap(), "6888603000001234");
        assert_eq!(
            parse("wwn", "naa.6888603000001234ABCDEF0123456789").unwrap(),
            "6888603000001234abcdef0123456789"
        );
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(
            parse("wwn", " 68886030000D136FA16F48F05992360A\n").unwrap(),
            "68886030000d136fa16f48f05992360a"
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let oversize = "6".repeat(4096);
        for bad in [
            "",
            " ",
            "-",
            "0x",
            "1234",
            // Huawei's API example: 31 digits after the space.
            " 68886030000d136fa16f48f05992360",
            "zz88603000001234",
            "6888603000001234/../x",
            "../6888603000001234",
            "68886030/0001234",
            "6888603000001234 6888603000001234",
            "0x0x6888603000001234",
            "６888603000001234",
            &oversize,
        ] {
            assert!(parse("wwn", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_refusal_names_the_field_and_quotes_the_text_cut_short() {
        let message = parse("publish_context wwn", &"x".repeat(4096)).unwrap_err().to_string();
        assert!(message.starts_with("publish_context wwn "), "{message}");
        assert!(message.len() < 300, "{message}");
    }
}
