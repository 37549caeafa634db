//! Which names mark a value as secret. Shared by `build.rs` (to generate redacting `Debug`
//! impls for CSI messages) and the runtime (to redact maps and configuration).

/// Word fragments that make a field or map key secret wherever they appear in its name.
const SECRET_FRAGMENTS: &[&str] = &["password", "passwd", "secret", "token", "credential", "private", "auth"];

/// True when a field or map key with this name may hold a secret and must never be logged.
pub fn is_secret_name(name: &str) -> bool {
    let lower = snake_case(name);
    SECRET_FRAGMENTS.iter().any(|f| lower.contains(f))
        || lower == "key"
        || lower == "sk"
        || lower == "ak"
        || lower.ends_with("_key")
}

/// `accessKey` and `access-key` read as `access_key`, so every spelling is caught.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut previous_lower = false;
    for c in name.chars() {
        let lower_or_digit = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_uppercase() {
            // An acronym (`SK`, `SKU`) stays one word; `accessKey` splits.
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else if c == '-' || c == '.' {
            out.push('_');
        } else {
            out.push(c);
        }
        previous_lower = lower_or_digit;
    }
    out
}
