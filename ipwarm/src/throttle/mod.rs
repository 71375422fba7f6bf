//! Reputation-aware throttling per (egress source, provider): a GCRA rate limit and a
//! concurrency limit that adapt to the classes of the replies, suspensions with expiry and a
//! probe before resuming, and a bounce-rate threshold per source.
//!
//! The life of a (source, provider) key:
//!
//! ```text
//!            delivered ×N: rate +x %, concurrency +1 (up to the shaping limits)
//!            rate_limited: rate ×½, concurrency ×½ (once per holdoff)
//!   ┌──────▶ ACTIVE (healthy at the limits, throttled below them) ──┐
//!   │                                                                │ reputation_block,
//!   │ probe delivered: resume at                                     │ blocklisted
//!   │ resume_share × the rate before                                 ▼
//! PROBING ◀──── suspension ends ──── SUSPENDED (1h, doubling on repeat, capped at 24h)
//!   │ (exactly one message)                    ▲
//!   └──── probe rate_limited/blocked ──────────┘ (longer)
//! ```
//!
//! Invariants:
//! - **Start limits are ceilings.** A key starts at the shaping limits the engine passes in
//!   ([`StartLimits`]: `max_connections`, `max_message_rate`) and never goes above them;
//!   additive increase only climbs back. A provider without a rate limit is unlimited until
//!   its first `rate_limited` reply, then limited from the rate measured at that moment.
//! - **Retry times are decisions.** [`Reaction::retry_at`] and the times in [`Permit`] are the
//!   throttle's; the engine uses them as they are (`RetryPolicy::next_attempt_ms(.., Some(t),
//!   ..)`), never replaced by a random backoff.
//! - **One decrease per round trip.** Replies to messages already in flight when a
//!   `rate_limited` came back (estimated from permits given and replies recorded) do not
//!   halve the rate again; a deferral of a message sent after the decrease does. The engine
//!   must record every permitted message's outcome (a connection failure as `transient`).
//! - **Exactly one probe.** After a suspension, [`Throttles::permit`] answers `Send` once;
//!   until that message's reply (or `probe_timeout`), every other call waits.
//! - **Bounded memory.** One entry per (source, provider); at most `max_providers` provider
//!   names are tracked, later ones share the entry of [`OTHER_PROVIDER`].
//! - **Time is injected** (`now_ms`), and the state survives restarts through
//!   [`Throttles::snapshot`] / [`Throttles::restore`] (JSON, versioned).

mod entry;
mod window;

pub(crate) use window::{Gcra, US_PER_MS, ceil_ms};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::classify::Class;
use crate::config::{Rate, duration};
use crate::{IpwarmError, snapshot};
use entry::{Entry, Mode};
use window::BounceWindow;

/// The provider name that unknown providers share once `max_providers` are tracked. The
/// engine should also pass it for sites that match no provider rule.
pub const OTHER_PROVIDER: &str = "other";

/// `[reputation]`: how throttles react to replies. Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReputationConfig {
    /// Delivered replies needed for one increase step (default 20).
    pub increase_every: u32,
    /// Least time between two increase steps (default 2s): feedback from a receiver comes
    /// with a delay, so a fast sender does not climb faster than it can hear "slow down".
    #[serde(deserialize_with = "duration")]
    pub increase_interval: Duration,
    /// A step is also due this long after the previous one if at least one message was
    /// delivered since (default 10s): slow keys climb in time, not only in messages.
    #[serde(deserialize_with = "duration")]
    pub increase_after: Duration,
    /// Additive increase: each step raises the rate by this share (default 0.05 = +5 %).
    pub increase: f64,
    /// Faster increase while the rate is below `recovery_target` times the rate at the last
    /// decrease (default 0.25 = +25 % per step).
    pub recovery_increase: f64,
    /// Share of the rate at the last decrease that the fast recovery climbs back to
    /// (default 0.9); above it only `increase` applies.
    pub recovery_target: f64,
    /// Multiplicative decrease of rate and concurrency on `rate_limited` (default 0.5).
    pub decrease: f64,
    /// After a decrease, `rate_limited` replies to the messages that were in flight at that
    /// moment (the next `min(in flight, concurrency)` replies) do not decrease the rate
    /// again, for at most this long (default 10s).
    #[serde(deserialize_with = "duration")]
    pub decrease_holdoff: Duration,
    /// The rate never goes below this (default "6/min").
    pub min_rate: Rate,
    /// Retry time of a message deferred with `rate_limited` (default 60s).
    #[serde(deserialize_with = "duration")]
    pub rate_limited_retry: Duration,
    /// First suspension on `reputation_block` or `blocklisted` (default 1h).
    #[serde(deserialize_with = "duration")]
    pub suspend_initial: Duration,
    /// Longest suspension; each repeat doubles the previous one up to this (default 24h).
    #[serde(deserialize_with = "duration")]
    pub suspend_max: Duration,
    /// A block this long after the previous one starts again at `suspend_initial`
    /// (default 24h).
    #[serde(deserialize_with = "duration")]
    pub suspend_forget: Duration,
    /// How long the probe after a suspension may go without a reply before another probe
    /// is allowed (default 2min).
    #[serde(deserialize_with = "duration")]
    pub probe_timeout: Duration,
    /// After a successful probe, the rate resumes at this share of the rate before the
    /// suspension, with concurrency 1 (default 0.25).
    pub resume_share: f64,
    /// The bounce-rate window per source (default 1h).
    #[serde(deserialize_with = "duration")]
    pub bounce_window: Duration,
    /// Verdicts needed in the window before the bounce rate is judged (default 200).
    pub bounce_min_samples: u32,
    /// Bad-recipient share above which every provider of the source is throttled
    /// (multiplicative decrease; default 0.05).
    pub bounce_throttle: f64,
    /// Bad-recipient share above which the source is suspended (default 0.10; 1 disables).
    pub bounce_suspend: f64,
    /// How long a bounce-rate suspension lasts (default 1h).
    #[serde(deserialize_with = "duration")]
    pub bounce_suspend_for: Duration,
    /// Most provider names tracked (default 256); later ones share [`OTHER_PROVIDER`].
    pub max_providers: usize,
}

impl Default for ReputationConfig {
    fn default() -> Self {
        ReputationConfig {
            increase_every: 20,
            increase_interval: Duration::from_secs(2),
            increase_after: Duration::from_secs(10),
            increase: 0.05,
            recovery_increase: 0.25,
            recovery_target: 0.9,
            decrease: 0.5,
            decrease_holdoff: Duration::from_secs(10),
            min_rate: Rate {
                count: 6,
                per: Duration::from_secs(60),
            },
            rate_limited_retry: Duration::from_secs(60),
            suspend_initial: Duration::from_secs(3600),
            suspend_max: Duration::from_secs(24 * 3600),
            suspend_forget: Duration::from_secs(24 * 3600),
            probe_timeout: Duration::from_secs(120),
            resume_share: 0.25,
            bounce_window: Duration::from_secs(3600),
            bounce_min_samples: 200,
            bounce_throttle: 0.05,
            bounce_suspend: 0.10,
            bounce_suspend_for: Duration::from_secs(3600),
            max_providers: 256,
        }
    }
}

impl ReputationConfig {
    /// Checks ranges; error keys are `reputation.KEY`.
    pub fn validate(&self) -> Result<(), IpwarmError> {
        let bad = |key: &str, problem: &str| {
            Err(IpwarmError::config(format!("reputation.{key}"), problem))
        };
        let share = |v: f64| v > 0.0 && v < 1.0;
        if self.increase_every == 0 {
            return bad("increase_every", "must be at least 1");
        }
        if !(self.increase > 0.0 && self.increase <= 1.0) {
            return bad("increase", "must be in (0, 1]");
        }
        if !(self.recovery_increase >= self.increase && self.recovery_increase <= 10.0) {
            return bad("recovery_increase", "must be between increase and 10");
        }
        if !share(self.recovery_target) {
            return bad("recovery_target", "must be in (0, 1)");
        }
        if !share(self.decrease) {
            return bad("decrease", "must be in (0, 1)");
        }
        if self.increase_after < self.increase_interval {
            return bad("increase_after", "must be at least increase_interval");
        }
        if self.rate_limited_retry < Duration::from_secs(1) {
            return bad("rate_limited_retry", "must be at least 1s");
        }
        if self.suspend_initial < Duration::from_secs(1) {
            return bad("suspend_initial", "must be at least 1s");
        }
        if self.suspend_max < self.suspend_initial {
            return bad("suspend_max", "must be at least suspend_initial");
        }
        if self.probe_timeout < Duration::from_secs(1) {
            return bad("probe_timeout", "must be at least 1s");
        }
        if !(self.resume_share > 0.0 && self.resume_share <= 1.0) {
            return bad("resume_share", "must be in (0, 1]");
        }
        if self.bounce_window < Duration::from_secs(60) {
            return bad("bounce_window", "must be at least 1min");
        }
        if self.bounce_min_samples == 0 {
            return bad("bounce_min_samples", "must be at least 1");
        }
        if !share(self.bounce_throttle) {
            return bad("bounce_throttle", "must be in (0, 1)");
        }
        if !(self.bounce_suspend > self.bounce_throttle && self.bounce_suspend <= 1.0) {
            return bad(
                "bounce_suspend",
                "must be above bounce_throttle and at most 1",
            );
        }
        if self.max_providers == 0 {
            return bad("max_providers", "must be at least 1");
        }
        Ok(())
    }

    fn min_rate(&self) -> f64 {
        self.min_rate.per_second()
    }
}

/// The shaping limits of one provider: where a key starts and what it never exceeds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Connections at once per source (`max_connections`).
    pub max_connections: usize,
    /// Messages per source, if limited (`max_message_rate`).
    pub max_message_rate: Option<Rate>,
}

impl Default for Limits {
    /// 10 connections, no rate limit.
    fn default() -> Self {
        Limits {
            max_connections: 10,
            max_message_rate: None,
        }
    }
}

/// The start limits per provider, from the engine's shaping rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartLimits {
    /// For providers not listed.
    pub default: Limits,
    /// By provider name.
    pub providers: HashMap<String, Limits>,
}

impl StartLimits {
    /// The same limits for every provider.
    pub fn new(default: Limits) -> StartLimits {
        StartLimits {
            default,
            providers: HashMap::new(),
        }
    }

    /// Adds a provider's limits.
    pub fn with(mut self, provider: &str, limits: Limits) -> StartLimits {
        self.providers.insert(provider.to_owned(), limits);
        self
    }

    /// The limits of a provider.
    pub fn get(&self, provider: &str) -> Limits {
        self.providers
            .get(provider)
            .copied()
            .unwrap_or(self.default)
    }
}

/// Why a key or a source is throttled or suspended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// A reply of this class.
    Reply {
        /// The class.
        class: Class,
    },
    /// The share of bad recipients over the window.
    BounceRate {
        /// Bad recipients per thousand verdicts.
        permille: u32,
        /// Verdicts in the window.
        verdicts: u32,
    },
    /// An operator, through the admin interface.
    Operator,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Reply { class } => write!(f, "{class} reply"),
            Reason::BounceRate { permille, verdicts } => write!(
                f,
                "bounce rate {}.{} % of {verdicts} recipients",
                permille / 10,
                permille % 10
            ),
            Reason::Operator => f.write_str("operator"),
        }
    }
}

/// May a message go now from this source to this provider?
#[derive(Debug, Clone, PartialEq)]
pub enum Permit {
    /// Yes (the permit is taken: it counts against the rate).
    Send,
    /// Not before this time (Unix ms): the rate limit's next slot, or the reply of a probe.
    WaitUntil(u64),
    /// The source is suspended for this provider (or for all) until then.
    Suspended {
        /// End of the suspension (Unix ms); the engine retries then.
        until: u64,
        /// Why.
        reason: Reason,
    },
}

/// What [`Throttles::record`] decided.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reaction {
    /// The retry time the throttle chose for this message if it is retried (a
    /// `rate_limited` deferral, a suspension's end); `None`: the engine's usual backoff.
    pub retry_at: Option<u64>,
    /// A change of state worth a log line.
    pub change: Option<Change>,
}

/// A change of a throttle's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Multiplicative decrease.
    Decreased {
        /// New rate, messages per second.
        rate: f64,
        /// New concurrency limit.
        concurrency: usize,
    },
    /// Suspended until then (`level` 1 for the first suspension in a row).
    Suspended {
        /// End of the suspension (Unix ms).
        until: u64,
        /// Suspensions in a row, this one included.
        level: u32,
        /// Why.
        reason: Reason,
    },
    /// The probe succeeded: sending resumes at this rate.
    Resumed {
        /// Messages per second (`None`: unlimited).
        rate: Option<f64>,
    },
    /// The source's bounce rate crossed `bounce_throttle`: all its providers slowed down.
    SourceThrottled {
        /// The bounce rate.
        reason: Reason,
    },
    /// The source's bounce rate crossed `bounce_suspend`: the source is suspended.
    SourceSuspended {
        /// End of the suspension (Unix ms).
        until: u64,
        /// The bounce rate.
        reason: Reason,
    },
}

/// A key's health, for the admin view.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Health {
    /// At the start limits.
    Healthy,
    /// Below the start limits after a decrease or a resume, climbing back.
    Throttled {
        /// The last reason for slowing down.
        reason: Reason,
    },
    /// Suspended.
    Suspended {
        /// End of the suspension (Unix ms).
        until_ms: u64,
        /// Why.
        reason: Reason,
    },
    /// Waiting for the reply to the probe after a suspension.
    Probing {
        /// Why it was suspended.
        reason: Reason,
        /// Whether the probe message is out (sent, no reply yet).
        probe_in_flight: bool,
    },
}

/// One (source, provider) throttle, for the admin view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThrottleState {
    /// The egress source.
    pub source: String,
    /// The provider.
    pub provider: String,
    /// Healthy, throttled, suspended or probing.
    pub health: Health,
    /// Current rate limit, messages per minute (`None`: unlimited).
    pub rate_per_min: Option<f64>,
    /// The start (and highest) rate, messages per minute (`None`: unlimited).
    pub max_rate_per_min: Option<f64>,
    /// Current concurrency limit (0 while suspended, 1 while probing).
    pub concurrency: usize,
    /// The start (and highest) concurrency.
    pub max_concurrency: usize,
    /// Suspensions in a row (the next one lasts `suspend_initial × 2^level`).
    pub suspensions_in_a_row: u32,
    /// Replies recorded since the state began, by class.
    pub replies: BTreeMap<&'static str, u64>,
}

/// Source-wide state: the bounce-rate window and a source-wide suspension.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct SourceState {
    window: BounceWindow,
    suspended: Option<(u64, Reason)>,
}

/// All throttles. Single-threaded (`&mut self`); the engine wraps it in a mutex.
#[derive(Debug, Clone)]
pub struct Throttles {
    config: ReputationConfig,
    limits: StartLimits,
    /// Interned provider names (at most `max_providers`, plus [`OTHER_PROVIDER`]).
    providers: HashSet<Arc<str>>,
    entries: HashMap<Arc<str>, HashMap<Arc<str>, Entry>>,
    sources: HashMap<Arc<str>, SourceState>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct EntrySnapshot {
    source: String,
    provider: String,
    #[serde(flatten)]
    entry: Entry,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SourceSnapshot {
    source: String,
    #[serde(flatten)]
    state: SourceState,
}

/// The serialised form of [`Throttles`] (inside a versioned snapshot).
#[derive(Serialize, Deserialize, Default)]
pub(crate) struct ThrottlesSnapshot {
    entries: Vec<EntrySnapshot>,
    sources: Vec<SourceSnapshot>,
}

impl Throttles {
    /// Throttles reacting as `config` says, starting every key at `limits`. `config` should
    /// have been validated ([`ReputationConfig::validate`]).
    pub fn new(config: ReputationConfig, limits: StartLimits) -> Throttles {
        let mut providers = HashSet::new();
        providers.insert(Arc::from(OTHER_PROVIDER));
        Throttles {
            config,
            limits,
            providers,
            entries: HashMap::new(),
            sources: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ReputationConfig {
        &self.config
    }

    /// Replaces the start limits (configuration reload): every key's limits are capped at
    /// the new ceilings; keys below them keep climbing from where they are.
    pub fn set_limits(&mut self, limits: StartLimits) {
        self.limits = limits;
        for (provider, entry) in self
            .entries
            .values_mut()
            .flat_map(|by_provider| by_provider.iter_mut())
        {
            entry.cap(self.limits.get(provider));
        }
    }

    /// The provider name as tracked: itself, or [`OTHER_PROVIDER`] once `max_providers`
    /// names are tracked.
    pub(crate) fn intern(&mut self, provider: &str) -> Arc<str> {
        if let Some(known) = self.providers.get(provider) {
            return known.clone();
        }
        if self.providers.len() > self.config.max_providers {
            return self
                .providers
                .get(OTHER_PROVIDER)
                .expect("interned")
                .clone();
        }
        let name: Arc<str> = Arc::from(provider);
        self.providers.insert(name.clone());
        name
    }

    /// The name a provider is (or would be) tracked under, without adding it.
    fn tracked<'a>(&self, provider: &'a str) -> &'a str {
        if self.providers.contains(provider) || self.providers.len() <= self.config.max_providers {
            provider
        } else {
            OTHER_PROVIDER
        }
    }

    fn entry(&mut self, source: &str, provider: &str, now_ms: u64) -> &mut Entry {
        let provider = self.intern(provider);
        let limits = self.limits.get(&provider);
        let source: Arc<str> = match self.entries.get_key_value(source) {
            Some((name, _)) => name.clone(),
            None => Arc::from(source),
        };
        self.entries
            .entry(source)
            .or_default()
            .entry(provider)
            .or_insert_with(|| Entry::new(limits, now_ms))
    }

    fn source_state(&mut self, source: &str) -> &mut SourceState {
        if !self.sources.contains_key(source) {
            self.sources
                .insert(Arc::from(source), SourceState::default());
        }
        self.sources.get_mut(source).expect("inserted")
    }

    /// A source-wide suspension in force at `now_ms`, if any.
    fn source_suspension(&mut self, source: &str, now_ms: u64) -> Option<(u64, Reason)> {
        let state = self.sources.get_mut(source)?;
        match &state.suspended {
            Some((until, reason)) if now_ms < *until => Some((*until, reason.clone())),
            Some(_) => {
                state.suspended = None;
                None
            }
            None => None,
        }
    }

    /// May a message go now from `source` to `provider`? `Send` takes the permit (it counts
    /// against the rate, and after a suspension it is the probe).
    pub fn permit(&mut self, source: &str, provider: &str, now_ms: u64) -> Permit {
        self.gate(source, provider, now_ms, true)
    }

    /// Like [`permit`](Self::permit) without taking anything: what a permit would answer.
    pub(crate) fn peek(&mut self, source: &str, provider: &str, now_ms: u64) -> Permit {
        self.gate(source, provider, now_ms, false)
    }

    fn gate(&mut self, source: &str, provider: &str, now_ms: u64, take: bool) -> Permit {
        if let Some((until, reason)) = self.source_suspension(source, now_ms) {
            return Permit::Suspended { until, reason };
        }
        let config = self.config.clone();
        self.entry(source, provider, now_ms)
            .gate(&config, now_ms, take)
    }

    /// Whether the key is available to new messages (for source choice): not suspended, and
    /// not waiting for a probe's reply. `Err` is the time it may be again.
    pub(crate) fn available(
        &mut self,
        source: &str,
        provider: &str,
        now_ms: u64,
    ) -> Result<(), (u64, bool)> {
        match self.peek(source, provider, now_ms) {
            Permit::Suspended { until, .. } => Err((until, true)),
            Permit::WaitUntil(t) if self.is_probing(source, provider) => Err((t, true)),
            _ => Ok(()),
        }
    }

    fn is_probing(&self, source: &str, provider: &str) -> bool {
        self.get(source, provider)
            .is_some_and(|e| matches!(e.mode, Mode::Probing { .. }))
    }

    fn get(&self, source: &str, provider: &str) -> Option<&Entry> {
        self.entries.get(source)?.get(self.tracked(provider))
    }

    /// Connections allowed at once now: the adapted limit, 1 while probing, 0 while
    /// suspended.
    pub fn concurrency_limit(&self, source: &str, provider: &str, now_ms: u64) -> usize {
        if let Some(state) = self.sources.get(source)
            && state
                .suspended
                .as_ref()
                .is_some_and(|(until, _)| now_ms < *until)
        {
            return 0;
        }
        match self.get(source, provider) {
            None => self.limits.get(self.tracked(provider)).max_connections,
            Some(entry) => match entry.mode {
                Mode::Suspended { until, .. } if now_ms < until => 0,
                Mode::Suspended { .. } | Mode::Probing { .. } => 1,
                Mode::Active => entry.concurrency,
            },
        }
    }

    /// The current rate limit, messages per second (`None`: unlimited).
    pub fn current_rate(&self, source: &str, provider: &str) -> Option<f64> {
        match self.get(source, provider) {
            Some(entry) => entry.rate,
            None => self
                .limits
                .get(self.tracked(provider))
                .max_message_rate
                .map(|r| r.per_second()),
        }
    }

    /// Feeds the class of a reply to a message sent from `source` to `provider`, and says
    /// what follows: the retry time to use for this message, and any change of state.
    pub fn record(&mut self, source: &str, provider: &str, class: Class, now_ms: u64) -> Reaction {
        let config = self.config.clone();
        let mut reaction = self
            .entry(source, provider, now_ms)
            .record(&config, class, now_ms);
        // A recipient verdict is never a source-blaming class, so a bounce-rate action does
        // not change this message's retry time; it is the change worth logging.
        if class.is_recipient_verdict()
            && let Some(change) = self.note_verdict(source, class.is_bad_recipient(), now_ms)
        {
            reaction.change = Some(change);
        }
        reaction
    }

    /// Counts a recipient verdict in the source's bounce window and acts on the threshold.
    fn note_verdict(&mut self, source: &str, bad: bool, now_ms: u64) -> Option<Change> {
        let config = self.config.clone();
        let window_ms = duration_ms(config.bounce_window);
        let state = self.source_state(source);
        state.window.add(now_ms, window_ms, bad);
        if !bad {
            return None;
        }
        let (verdicts, bads) = state.window.totals(now_ms, window_ms);
        if verdicts < config.bounce_min_samples {
            return None;
        }
        let share = f64::from(bads) / f64::from(verdicts);
        let reason = Reason::BounceRate {
            permille: (share * 1000.0).round() as u32,
            verdicts,
        };
        if share > config.bounce_suspend {
            state.window.clear();
            let until = now_ms.saturating_add(duration_ms(config.bounce_suspend_for));
            state.suspended = Some((until, reason.clone()));
            return Some(Change::SourceSuspended { until, reason });
        }
        if share > config.bounce_throttle {
            state.window.clear();
            if let Some(by_provider) = self.entries.get_mut(source) {
                for entry in by_provider.values_mut() {
                    entry.force_decrease(&config, now_ms, reason.clone());
                }
            }
            return Some(Change::SourceThrottled { reason });
        }
        None
    }

    /// Suspends a source for one provider, or for all (`provider` `None`), until `until_ms`
    /// (admin). A per-provider suspension ends with a probe; a source-wide one does not.
    pub fn suspend(&mut self, source: &str, provider: Option<&str>, until_ms: u64, now_ms: u64) {
        match provider {
            Some(provider) => self
                .entry(source, provider, now_ms)
                .suspend_until(until_ms, Reason::Operator),
            None => self.source_state(source).suspended = Some((until_ms, Reason::Operator)),
        }
    }

    /// Lifts suspensions of a source (for one provider or all), without a probe, at the
    /// rate it had (admin).
    pub fn resume(&mut self, source: &str, provider: Option<&str>) {
        if provider.is_none()
            && let Some(state) = self.sources.get_mut(source)
        {
            state.suspended = None;
        }
        let tracked = provider.map(|p| self.tracked(p).to_owned());
        if let Some(by_provider) = self.entries.get_mut(source) {
            for (name, entry) in by_provider.iter_mut() {
                if tracked.as_deref().is_none_or(|p| p == &**name) {
                    entry.mode = Mode::Active;
                }
            }
        }
    }

    /// Every tracked key, sorted by source then provider.
    pub fn state(&self, now_ms: u64) -> Vec<ThrottleState> {
        let mut out = Vec::new();
        for (source, by_provider) in &self.entries {
            let source_suspension = self
                .sources
                .get(source)
                .and_then(|s| s.suspended.clone())
                .filter(|(until, _)| now_ms < *until);
            for (provider, entry) in by_provider {
                let limits = self.limits.get(provider);
                let mut view = entry.view(limits, now_ms);
                if let Some((until_ms, reason)) = &source_suspension {
                    view.0 = Health::Suspended {
                        until_ms: *until_ms,
                        reason: reason.clone(),
                    };
                    view.1 = 0;
                }
                out.push(ThrottleState {
                    source: source.to_string(),
                    provider: provider.to_string(),
                    health: view.0,
                    rate_per_min: entry.rate.map(|r| r * 60.0),
                    max_rate_per_min: limits.max_message_rate.map(|r| r.per_second() * 60.0),
                    concurrency: view.1,
                    max_concurrency: limits.max_connections,
                    suspensions_in_a_row: entry.level,
                    replies: Class::ALL
                        .iter()
                        .filter(|c| entry.counts[c.index()] > 0)
                        .map(|c| (c.as_str(), entry.counts[c.index()]))
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| (&a.source, &a.provider).cmp(&(&b.source, &b.provider)));
        out
    }

    pub(crate) fn to_snapshot(&self) -> ThrottlesSnapshot {
        let mut entries: Vec<EntrySnapshot> = self
            .entries
            .iter()
            .flat_map(|(source, by_provider)| {
                by_provider.iter().map(|(provider, entry)| EntrySnapshot {
                    source: source.to_string(),
                    provider: provider.to_string(),
                    entry: entry.clone(),
                })
            })
            .collect();
        entries.sort_by(|a, b| (&a.source, &a.provider).cmp(&(&b.source, &b.provider)));
        let mut sources: Vec<SourceSnapshot> = self
            .sources
            .iter()
            .map(|(source, state)| SourceSnapshot {
                source: source.to_string(),
                state: state.clone(),
            })
            .collect();
        sources.sort_by(|a, b| a.source.cmp(&b.source));
        ThrottlesSnapshot { entries, sources }
    }

    /// Replaces the state with a snapshot's, keeping only sources `keep` accepts. Returns
    /// the number of keys restored.
    pub(crate) fn restore_snapshot(
        &mut self,
        snapshot: ThrottlesSnapshot,
        keep: impl Fn(&str) -> bool,
    ) -> usize {
        self.entries.clear();
        self.sources.clear();
        let mut restored = 0;
        for EntrySnapshot {
            source,
            provider,
            mut entry,
        } in snapshot.entries
        {
            if !keep(&source) {
                continue;
            }
            let provider = self.intern(&provider);
            entry.cap(self.limits.get(&provider));
            self.entries
                .entry(Arc::from(source))
                .or_default()
                .insert(provider, entry);
            restored += 1;
        }
        for SourceSnapshot { source, state } in snapshot.sources {
            if keep(&source) {
                self.sources.insert(Arc::from(source), state);
            }
        }
        restored
    }

    /// The state as bytes (JSON, versioned), for the engine to persist.
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(&self.to_snapshot())
    }

    /// Replaces the state with a snapshot taken by [`snapshot`](Self::snapshot). Keys are
    /// capped at the current start limits. Returns the number of keys restored.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<usize, IpwarmError> {
        let snapshot: ThrottlesSnapshot = snapshot::decode(bytes, "reputation")?;
        Ok(self.restore_snapshot(snapshot, |_| true))
    }
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
