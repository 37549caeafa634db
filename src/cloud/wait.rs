//! The wait engine: one poller per resource kind for every in-flight wait, so that many
//! volumes waiting at once cost a few list calls per tick instead of one GET each.
//!
//! Each waited-on id is polled on its own schedule, which stretches with the time it has been
//! waiting (4% of it, between `min_interval` and `max_interval`): a wait therefore ends at most
//! ~4% after the cloud's transition, and a long wait costs a logarithmic number of polls.
//! Ids that fall due within `batch_window` of each other are fetched in one call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};

use super::error::CloudError;

/// Fetches the current state of resources.
#[async_trait::async_trait]
pub trait StatusSource: Send + Sync + 'static {
    /// The observed resource.
    type Item: Clone + Send + Sync + 'static;

    /// The state of each id that could be observed: `Some(item)`, or `None` when it is gone.
    /// Ids in `individually` must be fetched one by one; the others may come from a list of
    /// what changed since `since` (ids absent from the answer are taken as unchanged).
    async fn fetch(
        &self,
        ids: &[String],
        individually: &[String],
        since: SystemTime,
    ) -> Result<HashMap<String, Option<Self::Item>>, CloudError>;
}

/// What a waiter concludes from an observation.
#[derive(Debug)]
pub enum Check {
    /// The wait is over.
    Done,
    /// Keep waiting.
    Continue,
    /// The wait failed.
    Fail(CloudError),
}

/// Poll scheduling.
#[derive(Clone, Debug)]
pub struct WaitSettings {
    /// Shortest time between two polls of one id.
    pub min_interval: Duration,
    /// Longest time between two polls of one id.
    pub max_interval: Duration,
    /// Share of the time already waited used as the next interval.
    pub proportion: f64,
    /// Ids due within this window are fetched together.
    pub batch_window: Duration,
    /// An id not seen in a change list for this long is fetched individually.
    pub refresh_every: Duration,
}

impl Default for WaitSettings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(25),
            max_interval: Duration::from_secs(2),
            proportion: 0.04,
            batch_window: Duration::from_millis(40),
            refresh_every: Duration::from_secs(5),
        }
    }
}

type Observation<T> = Option<Result<Option<T>, CloudError>>;

struct Entry<T> {
    latest: watch::Sender<Observation<T>>,
    registered: Instant,
    registered_wall: SystemTime,
    next_due: Instant,
    last_fetched: Instant,
    needs_first_look: bool,
    waiters: usize,
}

struct Inner<S: StatusSource> {
    source: S,
    settings: WaitSettings,
    entries: Mutex<HashMap<String, Entry<S::Item>>>,
    wake: Arc<Notify>,
}

/// The engine for one resource kind; clones share it.
pub struct Waiter<S: StatusSource> {
    inner: Arc<Inner<S>>,
}

impl<S: StatusSource> Clone for Waiter<S> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone() }
    }
}

impl<S: StatusSource> std::fmt::Debug for Waiter<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").finish_non_exhaustive()
    }
}

/// Deregisters a waiter when its wait ends, however it ends.
struct Registration<S: StatusSource> {
    inner: Arc<Inner<S>>,
    id: String,
}

impl<S: StatusSource> Drop for Registration<S> {
    fn drop(&mut self) {
        let mut entries = self.inner.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get_mut(&self.id) {
            entry.waiters -= 1;
            if entry.waiters == 0 {
                entries.remove(&self.id);
            }
        }
    }
}

impl<S: StatusSource> Waiter<S> {
    /// Starts the engine's poller on the current runtime; it stops when the last clone drops.
    pub fn new(source: S, settings: WaitSettings) -> Self {
        let inner = Arc::new(Inner {
            source,
            settings,
            entries: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
        });
        tokio::spawn(run(Arc::downgrade(&inner)));
        Self { inner }
    }

    /// Waits until `check` accepts an observation of `id`, fails, or `timeout` passes.
    /// `check` sees `None` when the resource is gone. `seed` is a state the caller has just
    /// seen (e.g. the answer to a create): it spares the first poll.
    pub async fn wait(
        &self,
        id: &str,
        seed: Option<S::Item>,
        mut check: impl FnMut(Option<&S::Item>) -> Check,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<S::Item>, CloudError> {
        let mut latest = self.register(id, seed);
        let _registration = Registration { inner: self.inner.clone(), id: id.to_string() };
        self.inner.wake.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let observation = latest.borrow_and_update().clone();
            match observation {
                None => {}
                Some(Ok(item)) => match check(item.as_ref()) {
                    Check::Done => return Ok(item),
                    Check::Fail(e) => return Err(e),
                    Check::Continue => {}
                },
                Some(Err(e)) if e.is_transient() => {
                    tracing::debug!(id, error = %e, "poll failed; still waiting");
                }
                Some(Err(e)) => return Err(e),
            }
            match tokio::time::timeout_at(deadline, latest.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(CloudError::Unavailable("wait engine stopped".into())),
                Err(_) => return Err(CloudError::Timeout(format!("{what} after {timeout:?}"))),
            }
        }
    }

    fn register(&self, id: &str, seed: Option<S::Item>) -> watch::Receiver<Observation<S::Item>> {
        let mut entries = self.inner.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let entry = entries.entry(id.to_string()).or_insert_with(|| Entry {
            latest: watch::channel(None).0,
            registered: now,
            registered_wall: SystemTime::now(),
            next_due: now,
            last_fetched: now,
            needs_first_look: true,
            waiters: 0,
        });
        entry.waiters += 1;
        let mut receiver = entry.latest.subscribe();
        receiver.mark_unchanged();
        match seed {
            Some(item) => {
                // A state seen just now counts as the first look.
                entry.latest.send_replace(Some(Ok(Some(item))));
                entry.last_fetched = now;
                entry.needs_first_look = false;
                entry.next_due = entry.next_due.max(now + self.inner.settings.min_interval);
                receiver.mark_changed();
            }
            None => {
                // A new waiter wants a fresh look, not one from before its operation.
                entry.next_due = now;
                entry.needs_first_look = true;
                entry.latest.send_replace(None);
            }
        }
        receiver
    }
}

/// Clock skew allowance for change lists: changes this much before registration still count.
const SKEW: Duration = Duration::from_secs(5);

async fn run<S: StatusSource>(weak: Weak<Inner<S>>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let now = Instant::now();
        let plan = {
            let entries = inner.entries.lock().unwrap_or_else(|e| e.into_inner());
            let earliest = entries.values().map(|e| e.next_due).min();
            // Nothing is due until the earliest id is; then everything due soon rides along.
            let due: Vec<String> = match earliest {
                Some(first) if first <= now => {
                    let horizon = now + inner.settings.batch_window;
                    entries.iter().filter(|(_, e)| e.next_due <= horizon).map(|(id, _)| id.clone()).collect()
                }
                _ => Vec::new(),
            };
            let individually: Vec<String> = due
                .iter()
                .filter(|id| {
                    let e = &entries[*id];
                    e.next_due == e.registered
                        || now.duration_since(e.last_fetched) >= inner.settings.refresh_every
                })
                .cloned()
                .collect();
            let since = due.iter().map(|id| entries[id].registered_wall).min();
            (due, individually, since, earliest)
        };
        let (due, individually, since, next) = plan;
        if due.is_empty() {
            // Hold only the notifier while asleep, so dropping the last `Waiter` stops this task.
            let notify = inner.wake.clone();
            let sleep_until = next.map(tokio::time::Instant::from_std);
            drop(inner);
            let wake = notify.notified();
            match sleep_until {
                Some(at) => {
                    let _ = tokio::time::timeout_at(at, wake).await;
                }
                None => {
                    // Nothing to poll; wake up now and then to notice the engine being dropped.
                    let _ = tokio::time::timeout(Duration::from_secs(1), wake).await;
                }
            }
            continue;
        }
        let since = since.unwrap_or_else(SystemTime::now).checked_sub(SKEW).unwrap_or(SystemTime::UNIX_EPOCH);
        let result = inner.source.fetch(&due, &individually, since).await;
        let done = Instant::now();
        let mut entries = inner.entries.lock().unwrap_or_else(|e| e.into_inner());
        for id in &due {
            let Some(entry) = entries.get_mut(id) else { continue };
            let waited = done.duration_since(entry.registered);
            let interval = waited
                .mul_f64(inner.settings.proportion)
                .clamp(inner.settings.min_interval, inner.settings.max_interval);
            entry.next_due = done + interval;
            match &result {
                Ok(states) => {
                    if let Some(state) = states.get(id) {
                        entry.last_fetched = done;
                        entry.needs_first_look = false;
                        entry.latest.send_replace(Some(Ok(state.clone())));
                    } else if individually.contains(id) {
                        entry.last_fetched = done;
                        entry.needs_first_look = false;
                    }
                }
                Err(e) => {
                    entry.latest.send_replace(Some(Err(e.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake cloud where each resource becomes "ready" at a set time.
    struct Fake {
        ready_at: Mutex<HashMap<String, Instant>>,
        calls: AtomicUsize,
        individual: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl StatusSource for Arc<Fake> {
        type Item = &'static str;
        async fn fetch(
            &self,
            ids: &[String],
            individually: &[String],
            _since: SystemTime,
        ) -> Result<HashMap<String, Option<&'static str>>, CloudError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.individual.fetch_add(individually.len(), Ordering::SeqCst);
            let ready = self.ready_at.lock().unwrap();
            let now = Instant::now();
            Ok(ids
                .iter()
                .map(|id| {
                    let state = ready.get(id).map(|at| if now >= *at { "available" } else { "creating" });
                    (id.clone(), state)
                })
                .collect())
        }
    }

    fn fake(ready: &[(&str, Duration)]) -> Arc<Fake> {
        let now = Instant::now();
        Arc::new(Fake {
            ready_at: Mutex::new(ready.iter().map(|(id, d)| (id.to_string(), now + *d)).collect()),
            calls: AtomicUsize::new(0),
            individual: AtomicUsize::new(0),
        })
    }

    fn until_available(item: Option<&&str>) -> Check {
        match item {
            Some(&"available") => Check::Done,
            Some(_) => Check::Continue,
            None => Check::Fail(CloudError::NotFound { kind: "volume", id: "?".into() }),
        }
    }

    #[tokio::test]
    async fn a_wait_ends_once_the_resource_is_ready() {
        let cloud = fake(&[("v1", Duration::from_millis(200))]);
        let waiter = Waiter::new(cloud.clone(), WaitSettings::default());
        let item = waiter.wait("v1", None, until_available, Duration::from_secs(10), "v1").await.unwrap();
        assert_eq!(item, Some("available"));
    }

    #[tokio::test]
    async fn a_gone_resource_fails_the_wait_as_the_check_says() {
        let cloud = fake(&[]);
        let waiter = Waiter::new(cloud, WaitSettings::default());
        let err = waiter
            .wait("missing", None, until_available, Duration::from_secs(10), "missing")
            .await
            .unwrap_err();
        assert!(matches!(err, CloudError::NotFound { .. }));
    }

    #[tokio::test]
    async fn a_wait_times_out() {
        let cloud = fake(&[("slow", Duration::from_secs(3600))]);
        let waiter = Waiter::new(cloud, WaitSettings::default());
        let err = waiter
            .wait("slow", None, until_available, Duration::from_millis(200), "volume slow")
            .await
            .unwrap_err();
        assert!(matches!(err, CloudError::Timeout(m) if m.contains("volume slow")));
    }

    #[tokio::test]
    async fn many_concurrent_waits_share_few_fetches() {
        let ids: Vec<String> = (0..200).map(|i| format!("v{i}")).collect();
        let ready: Vec<(&str, Duration)> =
            ids.iter().map(|id| (id.as_str(), Duration::from_millis(500))).collect();
        let cloud = fake(&ready);
        let waiter = Waiter::new(cloud.clone(), WaitSettings::default());
        let mut tasks = tokio::task::JoinSet::new();
        for id in ids.clone() {
            let waiter = waiter.clone();
            tasks.spawn(async move {
                waiter.wait(&id, Some("creating"), until_available, Duration::from_secs(20), "v").await
            });
        }
        while let Some(result) = tasks.join_next().await {
            assert_eq!(result.unwrap().unwrap(), Some("available"));
        }
        let calls = cloud.calls.load(Ordering::SeqCst);
        assert!(calls < 60, "200 waits took {calls} fetch calls; they must be coalesced");
        assert!(
            cloud.individual.load(Ordering::SeqCst) <= 2 * ids.len(),
            "individual fetches are limited to first looks and refreshes"
        );
    }
}
