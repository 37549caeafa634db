//! The wait engine: one poller per resource kind for every in-flight wait, so that many
//! volumes waiting at once cost a few list calls per tick instead of one GET each.
//!
//! Each waited-on id is polled on its own schedule, which stretches with the time it has been
//! waiting (4% of it, between `min_interval` and `max_interval`): a wait therefore ends at most
//! ~4% after the cloud's transition, and a long wait costs a logarithmic number of polls.
//! Ids that fall due within `batch_window` of each other are fetched in one call.
//!
//! A wait that names its kind (see [`WaitKind`]) uses and teaches the cloud's estimate of how
//! long such transitions take (src/cloud/wait_learn.rs): once warm, it sleeps until shortly
//! before the expected completion and polls densely around it, and falls back to the
//! stretching schedule when the estimate is missed. Planned polls still share batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{Notify, watch};

use super::error::CloudError;
use super::wait_learn::{Completion, Estimate, Plan};
pub use super::wait_learn::{Estimates, WaitKind};

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
    /// A learned wait's dense polls are at most this share of the expected time apart (plus
    /// two `min_interval`s): the bound on how late it sees a completion.
    pub dense_share: f64,
    /// What this cloud's waits have learned; shared by all its waiters.
    pub estimates: Estimates,
}

impl Default for WaitSettings {
    fn default() -> Self {
        Self {
            min_interval: Duration::from_millis(25),
            max_interval: Duration::from_secs(2),
            proportion: 0.04,
            batch_window: Duration::from_millis(40),
            refresh_every: Duration::from_secs(5),
            dense_share: 0.1,
            estimates: Estimates::default(),
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
    /// The learned plan this entry polls by, when its first waiter's kind had a warm estimate.
    learned: Option<Learned>,
}

struct Learned {
    kind: WaitKind,
    estimate: Estimate,
    plan: Plan,
    slow_logged: bool,
}

impl<T> Entry<T> {
    /// When to poll next, after a poll that finished at `done`.
    fn next_due(&self, done: Instant, settings: &WaitSettings) -> Instant {
        let waited = done.duration_since(self.registered);
        if let Some(at) = self.learned.as_ref().and_then(|l| l.plan.next_after(waited)) {
            return self.registered + at;
        }
        // Cold, or the estimate was missed: stretch with the time waited.
        done + waited.mul_f64(settings.proportion).clamp(settings.min_interval, settings.max_interval)
    }
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
        check: impl FnMut(Option<&S::Item>) -> Check,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<S::Item>, CloudError> {
        self.wait_as(None, id, seed, check, timeout, what).await
    }

    /// [`Waiter::wait`] for a transition of `kind`: polls by the cloud's estimate of such
    /// transitions once it is warm, and teaches it this one's completion time.
    pub async fn wait_as(
        &self,
        kind: Option<&WaitKind>,
        id: &str,
        seed: Option<S::Item>,
        mut check: impl FnMut(Option<&S::Item>) -> Check,
        timeout: Duration,
        what: &str,
    ) -> Result<Option<S::Item>, CloudError> {
        let started = Instant::now();
        let mut pending_at = None;
        let mut latest = self.register(id, seed, kind);
        let _registration = Registration { inner: self.inner.clone(), id: id.to_string() };
        self.inner.wake.notify_one();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let observation = latest.borrow_and_update().clone();
            match observation {
                None => {}
                Some(Ok(item)) => match check(item.as_ref()) {
                    Check::Done => {
                        if let Some(kind) = kind {
                            self.learn(kind, Completion { pending_at, done_at: started.elapsed() });
                        }
                        return Ok(item);
                    }
                    Check::Fail(e) => return Err(e),
                    Check::Continue => pending_at = Some(started.elapsed()),
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

    fn learn(&self, kind: &WaitKind, completion: Completion) {
        let settings = &self.inner.settings;
        let expected = settings.estimates.warm(kind).map(|e| e.mean);
        if let Some(sample) = completion.sample(settings.min_interval, expected) {
            settings.estimates.learn(kind, sample);
        }
    }

    fn register(
        &self,
        id: &str,
        seed: Option<S::Item>,
        kind: Option<&WaitKind>,
    ) -> watch::Receiver<Observation<S::Item>> {
        let settings = &self.inner.settings;
        let learned = kind.and_then(|kind| {
            let (estimate, plan) = settings.estimates.plan(
                kind,
                settings.min_interval,
                settings.max_interval,
                settings.dense_share,
            )?;
            Some(Learned { kind: kind.clone(), estimate, plan, slow_logged: false })
        });
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
            learned: None,
        });
        // A plan is for a fresh wait; one joining a running wait keeps its schedule.
        let planned = entry.waiters == 0 && learned.is_some();
        if entry.waiters == 0 {
            entry.learned = learned;
        }
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
                if planned {
                    entry.next_due = entry.next_due.max(entry.next_due(now, settings));
                }
                receiver.mark_changed();
            }
            None => {
                // A new waiter wants a fresh look, not one from before its operation; a learned
                // one takes it when the transition is due instead of right away.
                entry.next_due = if planned { entry.next_due(now, settings) } else { now };
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
                    e.needs_first_look || now.duration_since(e.last_fetched) >= inner.settings.refresh_every
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
            entry.next_due = entry.next_due(done, &inner.settings);
            if let Some(learned) = entry.learned.as_mut()
                && !learned.slow_logged
                && waited > learned.plan.slow_after
            {
                learned.slow_logged = true;
                inner.settings.estimates.slow(&learned.kind, learned.estimate.mean, waited);
            }
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
        looks: Mutex<HashMap<String, usize>>,
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
            let mut looks = self.looks.lock().unwrap();
            for id in ids {
                *looks.entry(id.clone()).or_default() += 1;
            }
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
            looks: Mutex::new(HashMap::new()),
        })
    }

    impl Fake {
        fn ready_in(&self, id: &str, after: Duration) {
            self.ready_at.lock().unwrap().insert(id.to_string(), Instant::now() + after);
        }

        fn looks(&self, id: &str) -> usize {
            self.looks.lock().unwrap().get(id).copied().unwrap_or(0)
        }
    }

    const TRANSITION: Duration = Duration::from_millis(300);

    fn create() -> WaitKind {
        WaitKind::new("volume.create", Some("SSD"))
    }

    /// Runs one wait of `kind` on a resource that becomes ready `after` from now; its wall time.
    async fn timed_wait(waiter: &Waiter<Arc<Fake>>, cloud: &Fake, id: &str, after: Duration) -> Duration {
        cloud.ready_in(id, after);
        let started = Instant::now();
        let kind = create();
        let item = waiter
            .wait_as(Some(&kind), id, Some("creating"), until_available, Duration::from_secs(20), id)
            .await
            .unwrap();
        assert_eq!(item, Some("available"));
        started.elapsed()
    }

    /// A waiter that has seen `warm_up` transitions of `TRANSITION`.
    async fn warmed(warm_up: usize) -> (Arc<Fake>, Waiter<Arc<Fake>>, WaitSettings) {
        let cloud = fake(&[]);
        let settings = WaitSettings::default();
        let waiter = Waiter::new(cloud.clone(), settings.clone());
        for i in 0..warm_up {
            timed_wait(&waiter, &cloud, &format!("warm{i}"), TRANSITION).await;
        }
        (cloud, waiter, settings)
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

    #[tokio::test]
    async fn a_cold_wait_polls_on_the_stretching_schedule() {
        let (cloud, waiter, settings) = warmed(0).await;
        let took = timed_wait(&waiter, &cloud, "v", TRANSITION).await;
        // 300 ms at one poll per 25 ms: about a dozen looks, and the end seen promptly.
        assert!(cloud.looks("v") >= 8, "cold start polls like before: {} looks", cloud.looks("v"));
        assert!(took < TRANSITION + Duration::from_millis(60), "{took:?}");
        assert!(settings.estimates.get(&create()).is_some(), "and it learns from the completion");
    }

    #[tokio::test]
    async fn a_learned_wait_sleeps_until_the_transition_is_due_then_polls_densely() {
        let (cloud, waiter, settings) = warmed(5).await;
        let estimate = settings.estimates.warm(&create()).expect("warm after five");
        assert!(
            estimate.mean > Duration::from_millis(250) && estimate.mean < Duration::from_millis(360),
            "{estimate:?}"
        );
        let took = timed_wait(&waiter, &cloud, "v", TRANSITION).await;
        assert!(cloud.looks("v") <= 3, "a learned wait takes a look or two, took {}", cloud.looks("v"));
        assert!(took < TRANSITION + Duration::from_millis(60), "and still sees the end promptly: {took:?}");
    }

    #[tokio::test]
    async fn a_learned_wait_without_a_seed_skips_the_immediate_look() {
        let (cloud, waiter, _) = warmed(5).await;
        cloud.ready_in("v", TRANSITION);
        let started = Instant::now();
        let kind = create();
        waiter.wait_as(Some(&kind), "v", None, until_available, Duration::from_secs(20), "v").await.unwrap();
        assert!(cloud.looks("v") <= 3, "{} looks", cloud.looks("v"));
        assert!(started.elapsed() < TRANSITION + Duration::from_millis(60), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn a_missed_estimate_falls_back_to_the_stretching_schedule() {
        let (cloud, waiter, _) = warmed(5).await;
        let slow = Duration::from_millis(1500);
        let took = timed_wait(&waiter, &cloud, "slow", slow).await;
        // Past the plan the schedule stretches (4 % of the time waited): the end is seen within
        // ~60 ms of it, at far fewer looks than one per 25 ms would take.
        assert!(took >= slow && took < slow + Duration::from_millis(120), "{took:?}");
        let looks = cloud.looks("slow");
        assert!((3..40).contains(&looks), "{looks} looks");
    }

    #[tokio::test]
    async fn learned_waits_that_fall_due_together_still_share_fetches() {
        let (cloud, waiter, _) = warmed(5).await;
        let before = cloud.calls.load(Ordering::SeqCst);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..100 {
            let (waiter, cloud) = (waiter.clone(), cloud.clone());
            tasks.spawn(async move { timed_wait(&waiter, &cloud, &format!("b{i}"), TRANSITION).await });
        }
        let mut slowest = Duration::ZERO;
        while let Some(took) = tasks.join_next().await {
            slowest = slowest.max(took.unwrap());
        }
        let calls = cloud.calls.load(Ordering::SeqCst) - before;
        assert!(calls <= 8, "100 learned waits took {calls} fetch calls");
        assert!(slowest < TRANSITION + Duration::from_millis(100), "{slowest:?}");
    }

    #[tokio::test]
    async fn a_transition_far_slower_than_learned_is_reported() {
        let metrics = crate::telemetry::metrics::Metrics::new();
        let cloud = fake(&[]);
        let settings =
            WaitSettings { estimates: Estimates::new("east", Some(metrics.clone())), ..Default::default() };
        let waiter = Waiter::new(cloud.clone(), settings);
        for i in 0..4 {
            timed_wait(&waiter, &cloud, &format!("w{i}"), Duration::from_millis(100)).await;
        }
        let text = metrics.render();
        assert!(!text.contains("cinder_evs_csi_wait_slow_total{"), "{text}");
        let labels = r#"{cloud="east",operation="volume.create",volume_type="SSD"}"#;
        assert!(text.contains(&format!("cinder_evs_csi_wait_expected_seconds{labels} 0.")), "{text}");
        // Far slower: past twice the learned time (plus a second).
        timed_wait(&waiter, &cloud, "sick", Duration::from_millis(1800)).await;
        let text = metrics.render();
        assert!(text.contains(&format!("cinder_evs_csi_wait_slow_total{labels} 1")), "{text}");
    }
}
