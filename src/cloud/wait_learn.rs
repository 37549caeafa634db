//! What the wait engine learns about a cloud: per operation kind and volume type, how long a
//! transition takes after the driver's action (an EWMA of the completions and of their spread).
//! A learned wait sleeps until shortly before the expected completion and then polls densely;
//! a cold or missed estimate falls back to the engine's stretching schedule. The point is the
//! cloud's rate limit: a blind poller pays one call per minimum interval, a learned one about two
//! per transition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::telemetry::metrics::Metrics;

/// Weight of the newest completion in the running mean and spread.
const ALPHA: f64 = 0.25;
/// Completions needed before an estimate is trusted to skip polls.
pub const WARM_AFTER: u32 = 3;
/// An estimate that has learned nothing for this long is stale: the next wait of its kind
/// probes early. A wait whose first look comes after the completion learns only that it was
/// done by then, so without an early look now and then an estimate would never notice the
/// cloud getting faster; but while transitions keep their time, a probe is a wasted call, and
/// steady waits teach nothing new. Staleness bounds how long a faster cloud goes unnoticed
/// (one probe per kind per period) without charging every tenth wait a call.
pub const STALE_AFTER: Duration = Duration::from_secs(300);
/// Kinds remembered per cloud; volume types come from the cloud's catalogue, but a bound keeps a
/// misconfigured cluster (thousands of types) from growing the table and the metrics.
const MAX_KINDS: usize = 128;
/// The fixed part of the latency a wait may add to a transition (the target is 1.05 × the
/// transition + 50 ms); the first look spends at most half of it.
const LATENCY_ALLOWANCE: Duration = Duration::from_millis(50);
/// The share of the transition a wait may add to it.
const LATENCY_SHARE: f64 = 0.05;

/// What a wait is for: the key of the estimate it uses and teaches.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WaitKind {
    /// The operation, e.g. `volume.create`, `volume.attach`, `job.attach`.
    pub operation: &'static str,
    /// The volume type, or empty when the cloud's default applies.
    pub volume_type: String,
}

impl WaitKind {
    /// A kind for `operation` on volumes of `volume_type` (`None`: the default type).
    pub fn new(operation: &'static str, volume_type: Option<&str>) -> Self {
        Self { operation, volume_type: volume_type.unwrap_or_default().to_string() }
    }
}

/// How long transitions of one kind took, as the engine saw them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Running mean of the completion times.
    pub mean: Duration,
    /// Running mean absolute deviation from the mean.
    pub spread: Duration,
    /// Completions learned from.
    pub samples: u32,
    /// The latest completion time.
    pub last: Duration,
}

impl Estimate {
    fn first(sample: Duration) -> Self {
        // One completion says little about the spread; start wide and let it narrow.
        Self { mean: sample, spread: sample / 8, samples: 1, last: sample }
    }

    fn learn(self, sample: Duration) -> Self {
        let (mean, x) = (self.mean.as_secs_f64(), sample.as_secs_f64());
        let deviation = (x - mean).abs();
        // The first few completions are averaged plainly (weight 1/n) before the EWMA takes over,
        // and the second replaces the first's wide prior spread with what the two show: an EWMA
        // from that prior would still be a tenth of a long transition wide after the warm-up
        // (about 300 ms at 5 s), and the first looks would land early and cost a call each.
        let weight = ALPHA.max(1.0 / f64::from(self.samples.saturating_add(1)));
        let spread = match self.samples {
            1 => deviation / 2.0,
            _ => self.spread.as_secs_f64() * (1.0 - weight) + weight * deviation,
        };
        Self {
            mean: Duration::from_secs_f64(mean + weight * (x - mean)),
            spread: Duration::from_secs_f64(spread),
            samples: self.samples.saturating_add(1),
            last: sample,
        }
    }

    /// The poll plan for a wait that starts now, under the engine's limits; a `probe` looks
    /// early, to learn the completion time from both sides.
    ///
    /// The first look aims at the upper edge of the steady completions (mean + 2 spread), not
    /// the mean: a look that lands a few milliseconds before the completion costs a whole call
    /// more, one that lands a few after costs a few milliseconds. The margin is capped at half
    /// the latency allowance (2.5 % of the expected time + 25 ms), so a wait still answers
    /// within 1.05 × the transition + 50 ms.
    pub fn plan(
        &self,
        min_interval: Duration,
        max_interval: Duration,
        dense_share: f64,
        probe: bool,
    ) -> Plan {
        // Dense polls are as far apart as the spread says completions scatter, but never so far
        // that a completion waits more than `dense_share` of the expected time (plus a little)
        // to be seen.
        let ceiling = (self.mean.mul_f64(dense_share) + 2 * min_interval).min(max_interval);
        let dense = self.spread.clamp(min_interval, ceiling.max(min_interval));
        // Steady completions: one look just after the expected time nearly always finds the
        // transition done. Scattered ones: start early enough to catch the fast ones; the
        // spread the look interval itself causes (half an interval) is not scatter.
        let scatter = self.spread.saturating_sub(min_interval / 2);
        let allowance = self.mean.mul_f64(LATENCY_SHARE) + LATENCY_ALLOWANCE;
        let margin = (2 * self.spread + min_interval / 2).min(allowance / 2);
        let first = (self.mean + margin).saturating_sub(scatter.mul_f64(1.5));
        // Halfway: a cloud that got much faster shows at once, one that did not costs one look.
        let probe_at = probe.then_some(first / 2).filter(|p| !p.is_zero());
        let until = self.mean + 3 * self.spread + 2 * dense;
        // "Far slower" is twice the time by which nearly every completion has come.
        let slow_after = 2 * (self.mean + 2 * self.spread) + Duration::from_secs(1);
        Plan { probe_at, first, dense, until, slow_after }
    }
}

/// When a learned wait polls, measured from its registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// An early look before `first`, now and then, to learn whether the cloud got faster.
    pub probe_at: Option<Duration>,
    /// The first poll (after the probe, if any).
    pub first: Duration,
    /// Interval between polls until `until`.
    pub dense: Duration,
    /// After this the estimate is missed and the stretching schedule takes over.
    pub until: Duration,
    /// A wait still running after this is logged as far slower than expected.
    pub slow_after: Duration,
}

impl Plan {
    /// The next poll after one at `waited`, or `None` when the plan is over (missed).
    pub fn next_after(&self, waited: Duration) -> Option<Duration> {
        if let Some(probe) = self.probe_at.filter(|p| waited < *p) {
            return Some(probe);
        }
        if waited < self.first {
            return Some(self.first);
        }
        let next = waited + self.dense;
        (next <= self.until).then_some(next)
    }
}

/// What a finished wait saw: the last time the transition was still under way and the time
/// it was seen complete, both from the wait's registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// Elapsed at the last observation that was not yet done, if there was one.
    pub pending_at: Option<Duration>,
    /// Elapsed at the observation that ended the wait.
    pub done_at: Duration,
}

impl Completion {
    /// The completion time to learn, or `None` when the observation says nothing about it.
    /// The transition ended between the two looks. A learned wait's looks are a dense interval
    /// apart, so just before the look that saw it is close; the middle would not do, since the
    /// pending look may be a seed taken at registration, long before. Without a pending look
    /// the wait ended at its first look, which bounds the time from above (and pulls a too-late
    /// estimate earlier); a first look right at registration (the resource was already there,
    /// e.g. a retried create) teaches nothing.
    /// A first look at or after the `expected` time that finds the transition done says
    /// nothing new.
    pub fn sample(&self, min_interval: Duration, expected: Option<Duration>) -> Option<Duration> {
        match self.pending_at {
            Some(pending) if pending <= self.done_at => {
                Some(self.done_at - (min_interval / 2).min(self.done_at - pending))
            }
            Some(_) => None,
            None if self.done_at < min_interval => None,
            None if expected.is_some_and(|e| self.done_at >= e) => None,
            None => Some(self.done_at),
        }
    }
}

#[derive(Default)]
struct Table {
    estimates: HashMap<WaitKind, Estimate>,
    /// Per kind, when its estimate last learned and whether the next wait must probe.
    freshness: HashMap<WaitKind, Freshness>,
}

/// Whether an estimate still describes the cloud.
#[derive(Clone, Copy, Debug)]
struct Freshness {
    /// When the estimate last learned a completion.
    learned_at: Instant,
    /// The last completion came well before the estimate: probe again until one finds the
    /// transition still under way, so that a faster cloud is followed down in a few waits.
    chasing: bool,
}

impl Freshness {
    fn wants_probe(&self, now: Instant) -> bool {
        self.chasing || now.saturating_duration_since(self.learned_at) >= STALE_AFTER
    }
}

struct Shared {
    cloud: String,
    table: Mutex<Table>,
    metrics: Option<Arc<Metrics>>,
}

/// The estimates of one cloud, shared by all its waiters; clones share them.
#[derive(Clone)]
pub struct Estimates {
    shared: Arc<Shared>,
}

impl Default for Estimates {
    fn default() -> Self {
        Self::new("", None)
    }
}

impl std::fmt::Debug for Estimates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Estimates").field("cloud", &self.shared.cloud).finish_non_exhaustive()
    }
}

impl Estimates {
    /// An empty table for the cloud named `cloud`, reporting to `metrics` when given.
    pub fn new(cloud: &str, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            shared: Arc::new(Shared {
                cloud: cloud.to_string(),
                table: Mutex::new(Table::default()),
                metrics,
            }),
        }
    }

    /// The cloud these estimates are of.
    pub fn cloud(&self) -> &str {
        &self.shared.cloud
    }

    /// The estimate of `kind`, once it has learned from enough completions to be used.
    pub fn warm(&self, kind: &WaitKind) -> Option<Estimate> {
        self.get(kind).filter(|e| e.samples >= WARM_AFTER)
    }

    /// The estimate and poll plan for a wait of `kind` starting now, once the estimate is warm.
    pub fn plan(
        &self,
        kind: &WaitKind,
        min_interval: Duration,
        max_interval: Duration,
        dense_share: f64,
    ) -> Option<(Estimate, Plan)> {
        self.plan_at(kind, min_interval, max_interval, dense_share, Instant::now())
    }

    /// [`Estimates::plan`] at `now`: a stale estimate probes, and one probe per staleness is
    /// enough (the probing wait's completion refreshes it, or the next wait would probe too).
    fn plan_at(
        &self,
        kind: &WaitKind,
        min_interval: Duration,
        max_interval: Duration,
        dense_share: f64,
        now: Instant,
    ) -> Option<(Estimate, Plan)> {
        let mut table = self.shared.table.lock().unwrap_or_else(|e| e.into_inner());
        let estimate = table.estimates.get(kind).copied().filter(|e| e.samples >= WARM_AFTER)?;
        let freshness = table.freshness.get_mut(kind)?;
        let probe = freshness.wants_probe(now);
        if probe && !freshness.chasing {
            // Another probe only after another period, unless this one finds the cloud faster.
            freshness.learned_at = now;
        }
        Some((estimate, estimate.plan(min_interval, max_interval, dense_share, probe)))
    }

    /// The estimate of `kind`, however young.
    pub fn get(&self, kind: &WaitKind) -> Option<Estimate> {
        let table = self.shared.table.lock().unwrap_or_else(|e| e.into_inner());
        table.estimates.get(kind).copied()
    }

    /// Learns one completion of `kind`.
    pub fn learn(&self, kind: &WaitKind, sample: Duration) {
        self.learn_at(kind, sample, Instant::now());
    }

    /// [`Estimates::learn`] at `now`.
    fn learn_at(&self, kind: &WaitKind, sample: Duration, now: Instant) {
        let updated = {
            let mut table = self.shared.table.lock().unwrap_or_else(|e| e.into_inner());
            if !table.estimates.contains_key(kind) && table.estimates.len() >= MAX_KINDS {
                return;
            }
            let previous = table.estimates.get(kind).copied();
            let updated = match previous {
                Some(e) => e.learn(sample),
                None => Estimate::first(sample),
            };
            // Well before the old estimate (beyond its spread and a poll interval's rounding)
            // means the cloud got faster than the estimate can see from late first looks.
            let chasing = previous
                .filter(|e| e.samples >= WARM_AFTER)
                .is_some_and(|e| sample + 2 * e.spread + LATENCY_ALLOWANCE / 2 < e.mean);
            table.estimates.insert(kind.clone(), updated);
            table.freshness.insert(kind.clone(), Freshness { learned_at: now, chasing });
            updated
        };
        if let Some(metrics) = &self.shared.metrics {
            metrics.record_wait(&self.shared.cloud, kind.operation, &kind.volume_type, updated.mean, sample);
        }
    }

    /// Notes a wait that ran far past its estimate: a log line and a counter.
    pub fn slow(&self, kind: &WaitKind, expected: Duration, waited: Duration) {
        tracing::warn!(
            cloud = %self.shared.cloud,
            operation = kind.operation,
            volume_type = %kind.volume_type,
            expected_ms = expected.as_millis() as u64,
            waited_ms = waited.as_millis() as u64,
            "a transition is taking far longer than this cloud's recent ones; the backend may be sick"
        );
        if let Some(metrics) = &self.shared.metrics {
            metrics.record_slow_wait(&self.shared.cloud, kind.operation, &kind.volume_type);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn kind() -> WaitKind {
        WaitKind::new("volume.create", Some("SSD"))
    }

    fn learned(samples: &[u64]) -> Estimates {
        let estimates = Estimates::default();
        for s in samples {
            estimates.learn(&kind(), Duration::from_millis(*s));
        }
        estimates
    }

    #[test]
    fn a_cold_kind_has_no_usable_estimate() {
        let estimates = learned(&[1000, 1000]);
        assert!(estimates.get(&kind()).is_some());
        assert_eq!(estimates.warm(&kind()), None, "two completions are not enough to skip polls");
        assert_eq!(estimates.warm(&WaitKind::new("volume.create", None)), None, "types are learned apart");
    }

    #[test]
    fn steady_completions_converge_on_their_time_with_a_narrow_spread() {
        let estimate = learned(&[1000; 12]).warm(&kind()).unwrap();
        assert_eq!(estimate.mean.as_millis(), 1000);
        assert!(estimate.spread < 10 * MS, "{estimate:?}");
        assert_eq!(estimate.samples, 12);
    }

    #[test]
    fn a_long_transition_seen_through_coarse_cold_polls_is_first_looked_at_after_it_ends() {
        // A 5 s transition seen by the cold schedule's looks, about 200 ms apart at that age:
        // every sample is the true time plus up to one look interval, never less.
        let estimate = learned(&[5150, 5030, 5190]).warm(&kind()).unwrap();
        let plan = estimate.plan(25 * MS, Duration::from_secs(2), 0.1, false);
        assert!(plan.first > 5000 * MS, "the first learned look lands after the transition: {plan:?}");
        assert!(plan.first <= 5300 * MS, "within the latency allowance: {plan:?}");
    }

    #[test]
    fn the_second_completion_replaces_the_first_ones_wide_prior_spread() {
        let estimate = learned(&[5000, 5100]).get(&kind()).unwrap();
        assert_eq!(estimate.mean, 5050 * MS);
        assert_eq!(estimate.spread, 50 * MS, "half the distance between the two: {estimate:?}");
    }

    #[test]
    fn a_learned_plan_sleeps_until_the_expected_completion_then_polls_densely() {
        let estimate = learned(&[1000; 12]).warm(&kind()).unwrap();
        let plan = estimate.plan(25 * MS, Duration::from_secs(2), 0.1, false);
        assert!(plan.first > 1000 * MS && plan.first <= 1050 * MS, "one look just after: {plan:?}");
        assert_eq!(plan.dense, 25 * MS, "a narrow spread polls at the engine's shortest interval");
        assert!(plan.until > 1000 * MS && plan.until < 1100 * MS, "{plan:?}");
    }

    #[test]
    fn scattered_completions_poll_earlier_and_farther_apart_but_within_the_latency_share() {
        // ±30 % around one second.
        let estimate =
            learned(&[700, 1300, 1000, 850, 1150, 700, 1300, 1000, 1200, 800]).warm(&kind()).unwrap();
        let plan = estimate.plan(25 * MS, Duration::from_secs(2), 0.1, false);
        assert!(plan.first < 900 * MS, "{plan:?} from {estimate:?}");
        assert!(plan.dense > 25 * MS, "{plan:?}");
        assert!(plan.dense <= 150 * MS, "never more than 10 % of the mean + 50 ms apart: {plan:?}");
        assert!(plan.until >= 1300 * MS, "the dense phase covers the slow end: {plan:?}");
    }

    fn plan_at(estimates: &Estimates, now: Instant) -> Plan {
        estimates.plan_at(&kind(), 25 * MS, Duration::from_secs(2), 0.1, now).unwrap().1
    }

    #[test]
    fn a_fresh_estimate_never_probes() {
        let estimates = Estimates::default();
        let start = Instant::now();
        for _ in 0..12 {
            estimates.learn_at(&kind(), 1000 * MS, start);
        }
        let plans: Vec<Plan> =
            (0..50).map(|i| plan_at(&estimates, start + i * Duration::from_secs(5))).collect();
        assert!(plans.iter().all(|p| p.probe_at.is_none()), "{plans:?}");
    }

    #[test]
    fn a_stale_estimate_probes_once_per_period_halfway_to_the_expected_time() {
        let estimates = Estimates::default();
        let start = Instant::now();
        for _ in 0..12 {
            estimates.learn_at(&kind(), 1000 * MS, start);
        }
        let stale = start + STALE_AFTER;
        let probing = plan_at(&estimates, stale);
        let probe = probing.probe_at.expect("a stale estimate probes");
        assert!(probe <= 530 * MS, "halfway to the first look: {probing:?}");
        assert_eq!(probing.next_after(probe), Some(probing.first), "then the usual first look");
        assert_eq!(plan_at(&estimates, stale + MS).probe_at, None, "one probe per period");
        assert!(plan_at(&estimates, stale + STALE_AFTER).probe_at.is_some(), "and again a period later");
    }

    #[test]
    fn a_completion_well_before_the_estimate_keeps_probing_until_one_finds_it_under_way() {
        let estimates = Estimates::default();
        let start = Instant::now();
        for _ in 0..12 {
            estimates.learn_at(&kind(), 1000 * MS, start);
        }
        // A probe found the transition done at 500 ms: the cloud got faster.
        estimates.learn_at(&kind(), 500 * MS, start + MS);
        assert!(plan_at(&estimates, start + 2 * MS).probe_at.is_some(), "chase it");
        assert!(plan_at(&estimates, start + 3 * MS).probe_at.is_some(), "until a probe says otherwise");
        // A probe that found it pending, then a completion near the estimate.
        let mean = estimates.warm(&kind()).unwrap().mean;
        estimates.learn_at(&kind(), mean, start + 4 * MS);
        assert_eq!(plan_at(&estimates, start + 5 * MS).probe_at, None, "caught up");
    }

    #[test]
    fn the_first_look_aims_past_steady_completions_within_half_the_latency_allowance() {
        // Completions that scatter by a few milliseconds (poll rounding, HTTP jitter).
        let estimate =
            learned(&[1000, 1010, 990, 1005, 995, 1000, 1010, 990, 1000, 1005]).warm(&kind()).unwrap();
        let plan = estimate.plan(25 * MS, Duration::from_secs(2), 0.1, false);
        assert!(
            plan.first >= estimate.mean + 2 * estimate.spread,
            "past the upper edge: {plan:?} {estimate:?}"
        );
        assert!(plan.first <= estimate.mean + 50 * MS, "half of 5 % + 50 ms at most: {plan:?}");
        let short = learned(&[200, 260, 140, 230, 170, 200, 260, 140]).warm(&kind()).unwrap();
        let margin = (short.mean + 2 * short.spread).saturating_sub(short.mean);
        assert!(margin > 30 * MS, "a wide spread would ask for more: {short:?}");
        let plan = short.plan(25 * MS, Duration::from_secs(2), 0.1, false);
        assert!(plan.first <= short.mean + 30 * MS, "but the margin stops at 2.5 % + 25 ms: {plan:?}");
    }

    #[test]
    fn a_plan_polls_first_then_densely_then_gives_up() {
        let plan =
            Plan { probe_at: None, first: 900 * MS, dense: 50 * MS, until: 1000 * MS, slow_after: 3000 * MS };
        assert_eq!(plan.next_after(Duration::ZERO), Some(900 * MS));
        assert_eq!(plan.next_after(900 * MS), Some(950 * MS));
        assert_eq!(plan.next_after(950 * MS), Some(1000 * MS));
        assert_eq!(plan.next_after(1000 * MS), None, "past the estimate the stretching schedule decides");
    }

    #[test]
    fn a_completion_between_two_looks_is_learned_as_just_before_the_look_that_saw_it() {
        let c = Completion { pending_at: Some(975 * MS), done_at: 1000 * MS };
        assert_eq!(c.sample(25 * MS, None), Some(987_500 * Duration::from_micros(1)));
        let seeded = Completion { pending_at: Some(Duration::ZERO), done_at: 1000 * MS };
        assert!(seeded.sample(25 * MS, None).unwrap() > 980 * MS, "a seed at registration does not halve it");
        let close = Completion { pending_at: Some(995 * MS), done_at: 1000 * MS };
        assert_eq!(close.sample(25 * MS, None), Some(995 * MS), "never before the pending look");
    }

    #[test]
    fn a_completion_seen_at_the_first_look_bounds_the_time_from_above() {
        let c = Completion { pending_at: None, done_at: 1000 * MS };
        assert_eq!(c.sample(25 * MS, None), Some(1000 * MS));
        assert_eq!(c.sample(25 * MS, Some(1200 * MS)), Some(1000 * MS), "sooner than expected teaches");
        assert_eq!(c.sample(25 * MS, Some(990 * MS)), None, "done by the expected time is no news");
    }

    #[test]
    fn a_resource_already_there_at_registration_teaches_nothing() {
        let c = Completion { pending_at: None, done_at: 2 * MS };
        assert_eq!(c.sample(25 * MS, None), None);
    }

    #[test]
    fn the_table_is_bounded() {
        let estimates = Estimates::default();
        for i in 0..(MAX_KINDS + 10) {
            estimates.learn(&WaitKind { operation: "volume.create", volume_type: format!("t{i}") }, MS);
        }
        let table = estimates.shared.table.lock().unwrap();
        assert_eq!(table.estimates.len(), MAX_KINDS);
    }

    #[test]
    fn a_slower_backend_moves_the_estimate_within_a_few_completions() {
        let estimates = learned(&[200; 10]);
        for _ in 0..6 {
            estimates.learn(&kind(), 1000 * MS);
        }
        let estimate = estimates.warm(&kind()).unwrap();
        assert!(estimate.mean > 800 * MS, "{estimate:?}");
    }
}
