//! Fault injection: per-route error rates, dropped connections and slow responses, a request
//! rate limit, and stuck or failing state transitions. All randomness comes from one seeded
//! generator, so a run can be repeated.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One fault rule, matched against the method and route template of each request.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FaultRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Route template to match, e.g. `/volume/v3/{project_id}/volumes`; a trailing `*` matches
    /// a prefix; any route when absent.
    #[serde(default)]
    pub route: Option<String>,
    /// What happens to a matched request.
    pub action: FaultAction,
    /// Probability in [0, 1] that a matched request is hit.
    #[serde(default = "always")]
    pub rate: f64,
    /// How many more requests may be hit (unlimited when absent).
    #[serde(default)]
    pub count: Option<u64>,
}

fn always() -> f64 {
    1.0
}

/// What a fault does.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status and the family's error body.
    Error {
        /// The HTTP status (500, 503, 429, 413, ...).
        status: u16,
        /// Seconds for a `Retry-After` header.
        #[serde(default)]
        retry_after: Option<u64>,
        /// The message in the body.
        #[serde(default)]
        message: Option<String>,
    },
    /// Close the connection after the headers, before the body completes.
    Drop,
    /// Serve the request, then close the connection instead of answering: the change is made
    /// but the client never learns of it (a lost response).
    DropResponse,
    /// Delay the request, then serve it normally.
    Slow {
        /// The delay in milliseconds.
        delay_ms: u64,
    },
    /// Answer with this status and this raw body instead (truncated or mistyped JSON, a huge
    /// body): a hostile or broken server.
    Body {
        /// The HTTP status.
        status: u16,
        /// The body, sent as `application/json` whatever it holds.
        body: String,
    },
    /// Answer 200 at once, then send the body one byte every `delay_ms` (a slow loris).
    Trickle {
        /// The pause between bytes in milliseconds.
        delay_ms: u64,
    },
}

/// A token-bucket request rate limit over all API requests.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub requests_per_second: f64,
    /// Requests allowed in a burst.
    #[serde(default = "default_burst")]
    pub burst: u64,
    /// The status answered when over the limit (429 or 413).
    #[serde(default = "default_limit_status")]
    pub status: u16,
}

fn default_burst() -> u64 {
    1
}

fn default_limit_status() -> u16 {
    429
}

/// What a transition rule does to a resource in a given status.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransitionEffect {
    /// The resource never leaves the status while the rule exists.
    Stuck,
    /// The transition ends in the failure status (e.g. `error`, `error_extending`).
    Fail,
}

/// A rule holding or failing a state transition.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TransitionRule {
    /// `volume`, `snapshot`, `backup`, `group` or `group_snapshot`.
    pub resource: String,
    /// The status the rule applies in, e.g. `attaching`.
    pub status: String,
    /// Only this resource id (any when absent).
    #[serde(default)]
    pub id: Option<String>,
    /// Stuck or fail.
    pub effect: TransitionEffect,
    /// For `fail`: how many more transitions fail (unlimited when absent).
    #[serde(default)]
    pub count: Option<u64>,
}

/// The verdict on one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Serve it.
    Pass,
    /// Serve it after a delay.
    Delay(u64),
    /// Answer with an error.
    Error {
        /// The status.
        status: u16,
        /// Retry-After seconds.
        retry_after: Option<u64>,
        /// The message.
        message: String,
    },
    /// Drop the connection.
    Drop,
    /// Serve the request, then drop the connection.
    DropResponse,
    /// Answer with a raw body.
    Body {
        /// The status.
        status: u16,
        /// The body.
        body: String,
    },
    /// Answer with a body that trickles in.
    Trickle(u64),
}

/// The mutable fault state of a running emulator.
#[derive(Debug)]
pub struct Faults {
    inner: Mutex<FaultState>,
}

#[derive(Debug)]
struct FaultState {
    rules: Vec<FaultRule>,
    transitions: Vec<TransitionRule>,
    rate_limit: Option<(RateLimit, f64, Instant)>,
    rng: u64,
}

impl Faults {
    /// Fault state with the given rules, rate limit and seed.
    pub fn new(rules: Vec<FaultRule>, rate_limit: Option<RateLimit>, seed: u64) -> Self {
        let rate_limit = rate_limit.map(|r| {
            let burst = r.burst as f64;
            (r, burst, Instant::now())
        });
        Self { inner: Mutex::new(FaultState { rules, transitions: Vec::new(), rate_limit, rng: seed }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides what happens to a request for `method` on route `template`.
    pub fn judge(&self, method: &str, template: &str) -> Verdict {
        let mut state = self.state();
        if let Some((limit, tokens, last)) = &mut state.rate_limit {
            let now = Instant::now();
            let refill = now.duration_since(*last).as_secs_f64() * limit.requests_per_second;
            *tokens = (*tokens + refill).min(limit.burst.max(1) as f64);
            *last = now;
            if *tokens >= 1.0 {
                *tokens -= 1.0;
            } else {
                let wait = ((1.0 - *tokens) / limit.requests_per_second.max(f64::MIN_POSITIVE)).ceil();
                return Verdict::Error {
                    status: limit.status,
                    retry_after: Some((wait as u64).max(1)),
                    message: "This request was rate-limited.".into(),
                };
            }
        }
        let mut hit = None;
        for index in 0..state.rules.len() {
            let rule = &state.rules[index];
            if !matches(rule, method, template) || rule.count == Some(0) {
                continue;
            }
            let rate = rule.rate;
            let draw = next_unit(&mut state.rng);
            if draw < rate {
                hit = Some(index);
                break;
            }
        }
        let Some(index) = hit else { return Verdict::Pass };
        let rule = &mut state.rules[index];
        if let Some(count) = &mut rule.count {
            *count -= 1;
        }
        match &rule.action {
            FaultAction::Error { status, retry_after, message } => Verdict::Error {
                status: *status,
                retry_after: *retry_after,
                message: message.clone().unwrap_or_else(|| default_message(*status)),
            },
            FaultAction::Drop => Verdict::Drop,
            FaultAction::DropResponse => Verdict::DropResponse,
            FaultAction::Slow { delay_ms } => Verdict::Delay(*delay_ms),
            FaultAction::Body { status, body } => Verdict::Body { status: *status, body: body.clone() },
            FaultAction::Trickle { delay_ms } => Verdict::Trickle(*delay_ms),
        }
    }

    /// The request fault rules.
    pub fn rules(&self) -> Vec<FaultRule> {
        self.state().rules.clone()
    }

    /// Replaces the request fault rules.
    pub fn set_rules(&self, rules: Vec<FaultRule>) {
        self.state().rules = rules;
    }

    /// Adds a request fault rule.
    pub fn add_rule(&self, rule: FaultRule) {
        self.state().rules.push(rule);
    }

    /// Sets or clears the rate limit.
    pub fn set_rate_limit(&self, limit: Option<RateLimit>) {
        self.state().rate_limit = limit.map(|r| {
            let burst = r.burst.max(1) as f64;
            (r, burst, Instant::now())
        });
    }

    /// The rate limit in effect.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.state().rate_limit.as_ref().map(|(r, _, _)| r.clone())
    }

    /// Reseeds the generator.
    pub fn reseed(&self, seed: u64) {
        self.state().rng = seed;
    }

    /// The transition rules.
    pub fn transitions(&self) -> Vec<TransitionRule> {
        self.state().transitions.clone()
    }

    /// Replaces the transition rules.
    pub fn set_transitions(&self, rules: Vec<TransitionRule>) {
        self.state().transitions = rules;
    }

    /// Adds a transition rule.
    pub fn add_transition(&self, rule: TransitionRule) {
        self.state().transitions.push(rule);
    }

    /// What happens to `resource` `id` leaving `status`: None (complete), Stuck or Fail.
    /// A matched `fail` rule with a count uses one up.
    pub fn transition(&self, resource: &str, id: &str, status: &str) -> Option<TransitionEffect> {
        let mut state = self.state();
        let rule = state.transitions.iter_mut().find(|r| {
            r.resource == resource
                && r.status == status
                && r.id.as_deref().is_none_or(|i| i == id)
                && r.count != Some(0)
        })?;
        if rule.effect == TransitionEffect::Fail
            && let Some(count) = &mut rule.count
        {
            *count -= 1;
        }
        Some(rule.effect)
    }
}

fn matches(rule: &FaultRule, method: &str, template: &str) -> bool {
    let method_ok = rule.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method));
    let route_ok = match rule.route.as_deref() {
        None => true,
        Some(r) => match r.strip_suffix('*') {
            Some(prefix) => template.starts_with(prefix),
            None => r == template,
        },
    };
    method_ok && route_ok
}

fn default_message(status: u16) -> String {
    match status {
        413 | 429 => "This request was rate-limited.".into(),
        503 => "The service is temporarily unavailable.".into(),
        _ => "The server has either erred or is incapable of performing the requested operation.".into(),
    }
}

/// splitmix64 mapped to [0, 1).
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_rule(rate: f64) -> FaultRule {
        FaultRule {
            method: Some("GET".into()),
            route: Some("/volume/*".into()),
            action: FaultAction::Error { status: 503, retry_after: Some(2), message: None },
            rate,
            count: None,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let run = |seed| {
            let faults = Faults::new(vec![error_rule(0.5)], None, seed);
            (0..64).map(|_| faults.judge("GET", "/volume/v3/x") == Verdict::Pass).collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn rules_match_method_and_route_prefix() {
        let faults = Faults::new(vec![error_rule(1.0)], None, 1);
        assert!(matches!(faults.judge("GET", "/volume/v3/{project_id}/volumes"), Verdict::Error { .. }));
        assert_eq!(faults.judge("POST", "/volume/v3/{project_id}/volumes"), Verdict::Pass);
        assert_eq!(faults.judge("GET", "/compute/v2.1/servers/{server_id}"), Verdict::Pass);
    }

    #[test]
    fn counted_rules_run_out() {
        let mut rule = error_rule(1.0);
        rule.count = Some(2);
        let faults = Faults::new(vec![rule], None, 1);
        let hits = (0..5).filter(|_| faults.judge("GET", "/volume/a") != Verdict::Pass).count();
        assert_eq!(hits, 2);
    }

    #[test]
    fn the_rate_limit_refuses_beyond_the_burst() {
        let limit = RateLimit { requests_per_second: 0.001, burst: 3, status: 429 };
        let faults = Faults::new(Vec::new(), Some(limit), 1);
        let verdicts: Vec<_> = (0..4).map(|_| faults.judge("GET", "/x")).collect();
        assert!(verdicts[..3].iter().all(|v| *v == Verdict::Pass));
        assert!(matches!(verdicts[3], Verdict::Error { status: 429, retry_after: Some(_), .. }));
    }
}
