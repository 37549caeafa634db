//! Values the backend saw a moment ago, keyed by resource id, handed to the next step of the
//! same operation once instead of asking the cloud again: the state a controller RPC has just
//! read before it attaches, or the kind of transition a create has just started.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A map whose entries are taken at most once and only while fresh.
#[derive(Debug)]
pub struct Recent<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V> Recent<V> {
    /// An empty map whose entries expire after `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Mutex::new(HashMap::new()) }
    }

    /// Remembers `value` for `id`, replacing what was there; stale entries are dropped.
    pub fn put(&self, id: &str, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
        entries.insert(id.to_string(), (now, value));
    }

    /// Remembers what a read of `id` found (if it found something) and hands the read back:
    /// the freshest state this RPC has, for its next step to take instead of asking again.
    pub fn remember<'a>(&self, id: &str, found: Option<&'a V>) -> Option<&'a V>
    where
        V: Clone,
    {
        if let Some(value) = found {
            self.put(id, value.clone());
        }
        found
    }

    /// The value for `id` if it is still fresh; it is gone afterwards either way.
    pub fn take(&self, id: &str) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(id).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_found_something_is_remembered_and_one_that_did_not_is_not() {
        let recent = Recent::new(Duration::from_secs(60));
        assert_eq!(recent.remember("a", Some(&1)), Some(&1));
        assert_eq!(recent.remember("b", None), None);
        assert_eq!(recent.take("a"), Some(1));
        assert_eq!(recent.take("b"), None);
    }

    #[test]
    fn a_value_is_taken_once() {
        let recent = Recent::new(Duration::from_secs(60));
        recent.put("a", 1);
        assert_eq!(recent.take("a"), Some(1));
        assert_eq!(recent.take("a"), None);
    }

    #[test]
    fn a_stale_value_is_never_taken() {
        let recent = Recent::new(Duration::from_millis(20));
        recent.put("a", 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(recent.take("a"), None);
    }

    #[test]
    fn ids_are_kept_apart() {
        let recent = Recent::new(Duration::from_secs(60));
        recent.put("a", 1);
        assert_eq!(recent.take("a?b"), None);
        assert_eq!(recent.take("A"), None);
        assert_eq!(recent.take("a"), Some(1));
    }
}
