//! Validation of values the CSI spec constrains, shared by the services and the CLI.

/// Longest CSI driver name the spec allows.
const MAX_DRIVER_NAME: usize = 63;

/// Checks a CSI driver name: at most 63 characters, alphanumeric at both ends, and only
/// alphanumerics, `-` and `.` in between (domain-name notation, as the spec requires).
pub fn driver_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("driver name must not be empty".into());
    }
    if name.len() > MAX_DRIVER_NAME {
        return Err(format!(
            "driver name {name:?} is {} characters long; at most {MAX_DRIVER_NAME} are allowed",
            name.len()
        ));
    }
    let bytes = name.as_bytes();
    let alnum = |b: &u8| b.is_ascii_alphanumeric();
    if !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return Err(format!("driver name {name:?} must begin and end with a letter or digit"));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.')) {
        return Err(format!(
            "driver name {name:?} contains {bad:?}; only letters, digits, '-' and '.' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_name_accepts_domain_notation() {
        for name in ["csi.cinder-evs.io", "a", "x1.y-2.z", &"a".repeat(63)] {
            assert_eq!(driver_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn driver_name_rejects_what_the_spec_forbids() {
        for name in ["", "-a", "a-", ".a", "a.", "a_b", "a b", "ä.io", &"a".repeat(64)] {
            assert!(driver_name(name).is_err(), "{name:?} must be rejected");
        }
    }
}
