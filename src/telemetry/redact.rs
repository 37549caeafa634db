//! Wrappers whose `Debug` never shows a secret value, used by the generated CSI `Debug` impls
//! and by anything else that logs maps or credentials.

use std::collections::HashMap;
use std::fmt;

use super::secret_names::is_secret_name;

/// The text that stands in for every secret value.
pub const REDACTED: &str = "<redacted>";

/// A value that is shown as `<redacted>` whatever it holds.
pub struct Redacted<'a, T: ?Sized>(&'a T);

impl<'a, T: ?Sized> Redacted<'a, T> {
    /// Wraps a reference so that `Debug` hides it.
    pub fn of(value: &'a T) -> Self {
        Self(value)
    }
}

impl<T: ?Sized> fmt::Debug for Redacted<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A string map shown with its keys, and with the value of every secret-looking key hidden.
pub struct RedactedMap<'a>(pub &'a HashMap<String, String>);

impl fmt::Debug for RedactedMap<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut entries: Vec<_> = self.0.iter().collect();
        entries.sort();
        let mut map = f.debug_map();
        for (key, value) in entries {
            if is_secret_name(key) {
                map.entry(key, &Redacted::of(value));
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_hides_the_value() {
        assert_eq!(format!("{:?}", Redacted::of("hunter2")), "<redacted>");
    }

    #[test]
    fn redacted_map_hides_values_of_secret_keys_only() {
        let map = HashMap::from([
            ("csi.storage.k8s.io/pvc/name".to_string(), "data".to_string()),
            ("password".to_string(), "hunter2".to_string()),
            ("access_key".to_string(), "AKIDEXAMPLE".to_string()),
        ]);
        let shown = format!("{:?}", RedactedMap(&map));
        assert!(shown.contains("\"data\""), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("AKIDEXAMPLE"), "{shown}");
        assert!(shown.contains("\"password\""), "keys stay visible: {shown}");
    }

    #[test]
    fn secret_names_cover_credentials_but_not_ids() {
        for name in [
            "password",
            "secrets",
            "starting_token",
            "secret_key",
            "SK",
            "os-auth",
            "accessKey",
            "access-key",
        ] {
            assert!(is_secret_name(name), "{name} must be secret");
        }
        for name in ["volume_id", "name", "fs_type", "keyboard", "monkey", "kmsKeyId", "SKU"] {
            assert!(!is_secret_name(name), "{name} must not be secret");
        }
    }
}
