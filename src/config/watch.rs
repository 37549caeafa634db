//! Reloads the configuration when its files change, so rotated credentials (a Kubernetes
//! Secret update swaps the mounted files) are picked up without a restart.
//!
//! Polling the content is deliberate: Secret volumes update through an atomic symlink swap
//! that inotify watches on the file itself miss, and one small read every few seconds is free.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{CloudsConfig, ConfigError, ConfigSource, load};

/// A live configuration: the current value, replaced whenever the files change and still load.
#[derive(Debug)]
pub struct ConfigWatch {
    receiver: watch::Receiver<Arc<CloudsConfig>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ConfigWatch {
    /// Loads the configuration (failing if it cannot) and starts watching it every `interval`.
    pub fn start(source: ConfigSource, interval: Duration) -> Result<Self, ConfigError> {
        // Fingerprint first: an edit racing the load is then seen as a change, never lost.
        let seen = fingerprint(&source);
        let initial = load(&source)?;
        let (sender, receiver) = watch::channel(Arc::new(initial));
        let task = tokio::spawn(poll(source, interval, seen, sender));
        Ok(Self { receiver, _task: task })
    }

    /// The configuration as of now.
    pub fn current(&self) -> Arc<CloudsConfig> {
        self.receiver.borrow().clone()
    }

    /// A receiver that is notified on every reload.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CloudsConfig>> {
        self.receiver.clone()
    }
}

impl Drop for ConfigWatch {
    fn drop(&mut self) {
        self._task.abort();
    }
}

fn fingerprint(source: &ConfigSource) -> u64 {
    let mut hasher = DefaultHasher::new();
    for file in source.files() {
        std::fs::read(&file).ok().hash(&mut hasher);
    }
    hasher.finish()
}

async fn poll(
    source: ConfigSource,
    interval: Duration,
    mut seen: u64,
    sender: watch::Sender<Arc<CloudsConfig>>,
) {
    loop {
        tokio::time::sleep(interval).await;
        let now = fingerprint(&source);
        if now == seen {
            continue;
        }
        seen = now;
        match load(&source) {
            Ok(config) => {
                tracing::info!("cloud configuration changed; reloaded");
                sender.send_replace(Arc::new(config));
            }
            // Keep serving with the last good configuration; the error names no secret.
            Err(e) => {
                tracing::error!(error = %e, "cloud configuration changed but does not load; keeping the previous one")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthMethod;

    fn token_of(config: &CloudsConfig) -> String {
        match &config.default_cloud().auth {
            AuthMethod::Token { token } => token.expose().to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn rotated_credentials_are_picked_up_and_bad_edits_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cloud.conf");
        std::fs::write(&path, "[Global]\nauth-url=http://k/v3\ntoken=first\n").unwrap();
        let watch = ConfigWatch::start(
            ConfigSource { path: Some(path.clone()), ..Default::default() },
            Duration::from_millis(20),
        )
        .unwrap();
        let mut changes = watch.subscribe();
        assert_eq!(token_of(&watch.current()), "first");

        std::fs::write(&path, "[Global]\nauth-url=http://k/v3\ntoken=second\n").unwrap();
        tokio::time::timeout(Duration::from_secs(10), changes.changed()).await.unwrap().unwrap();
        assert_eq!(token_of(&watch.current()), "second");

        std::fs::write(&path, "[Global]\nthis is not valid = \"\n").unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(token_of(&watch.current()), "second", "a broken edit keeps the last good config");
    }
}
