//! Readiness for the Identity `Probe`: the plugin is ready once every start-up gate (for
//! example "the cloud backend answered once") has opened.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Shared readiness state; clones see the same gates.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    gates: Arc<Mutex<BTreeMap<&'static str, bool>>>,
}

/// A handle that opens one gate.
#[derive(Clone, Debug)]
pub struct Gate {
    name: &'static str,
    readiness: Readiness,
}

impl Readiness {
    /// Readiness with no gates: ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a closed gate; the plugin reports not-ready until it is opened.
    pub fn gate(&self, name: &'static str) -> Gate {
        self.lock().insert(name, false);
        Gate { name, readiness: self.clone() }
    }

    /// True when every gate is open.
    pub fn is_ready(&self) -> bool {
        self.lock().values().all(|open| *open)
    }

    /// Names of the gates still closed, for logs.
    pub fn pending(&self) -> Vec<&'static str> {
        self.lock().iter().filter(|(_, open)| !**open).map(|(name, _)| *name).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, bool>> {
        self.gates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Gate {
    /// Opens the gate; idempotent.
    pub fn open(&self) {
        self.readiness.lock().insert(self.name, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_without_gates_is_ready() {
        assert!(Readiness::new().is_ready());
    }

    #[test]
    fn readiness_waits_for_every_gate() {
        let readiness = Readiness::new();
        let backend = readiness.gate("cloud backend");
        let host = readiness.gate("host tools");
        assert!(!readiness.is_ready());
        backend.open();
        assert!(!readiness.is_ready());
        assert_eq!(readiness.pending(), vec!["host tools"]);
        host.open();
        host.open();
        assert!(readiness.is_ready());
    }
}
