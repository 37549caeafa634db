//! A Kubernetes Node's `spec.providerID`, read by the node's identity and by the garbage
//! collector alike: `openstack:///<id>`, `openstack://<region>/<id>`, or a bare id.

/// The server id inside a `providerID` (its last path segment); `None` when it names none.
pub fn server_id(provider_id: &str) -> Option<&str> {
    let provider_id = provider_id.trim();
    let id = match provider_id.split_once("://") {
        Some((_, rest)) => rest.rsplit('/').next().unwrap_or(""),
        None => provider_id,
    };
    (!id.is_empty() && !id.contains(char::is_whitespace)).then_some(id)
}
