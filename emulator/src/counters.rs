//! Request counters by method and route template, read by tests and benchmarks.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Counts requests by `"<METHOD> <route template>"`.
#[derive(Debug, Default)]
pub struct Counters {
    counts: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    /// Counts one request.
    pub fn hit(&self, method: &str, template: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(format!("{method} {template}")).or_default() += 1;
    }

    /// The counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
