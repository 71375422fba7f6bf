//! One (source, provider) throttle: AIMD on rate and concurrency, suspension, probe.
//!
//! Invariants: `rate`, when set, is in `[min_rate, ceiling]` (ceiling = the shaping rate, or
//! none); `concurrency` is in `[1, max_connections]`; a suspension's end never moves earlier
//! because of a late reply.

use serde::{Deserialize, Serialize};

use super::window::{Gcra, RateMeter, US_PER_MS, ceil_ms, interval_us};
use super::{Change, Health, Limits, Permit, Reaction, Reason, ReputationConfig, duration_ms};
use crate::classify::Class;

/// Sending state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub(crate) enum Mode {
    /// Sending, at `rate` and `concurrency`.
    Active,
    /// Nothing until `until`; then a probe.
    Suspended { until: u64, reason: Reason },
    /// One probe allowed; `sent` is when it went, if it has.
    Probing { sent: Option<u64>, reason: Reason },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Messages per second, `None` for unlimited.
    pub(crate) rate: Option<f64>,
    pub(crate) concurrency: usize,
    gcra: Gcra,
    /// Delivered replies since the last increase step.
    successes: u32,
    last_increase_ms: u64,
    /// The rate when it was last decreased: the fast recovery climbs back towards it.
    hint: Option<f64>,
    /// The rate at the last trouble (decrease or block): an unlimited key becomes unlimited
    /// again once its rate doubles past it.
    trouble_rate: Option<f64>,
    last_decrease_ms: Option<u64>,
    /// Permits given (messages sent) and replies recorded: their difference estimates the
    /// messages in flight.
    permits: u64,
    replies: u64,
    /// `rate_limited` replies are not acted on (within the holdoff) while `replies` is at most
    /// this: they answer messages that were already in flight at the last decrease.
    skip_until_replies: u64,
    pub(crate) mode: Mode,
    /// Suspensions in a row.
    pub(crate) level: u32,
    /// When the last suspension ended (or ends): a block within `suspend_forget` of it
    /// doubles the next suspension.
    last_suspension_end_ms: Option<u64>,
    /// Why the key is below its limits (cleared when it is back at them).
    throttle_reason: Option<Reason>,
    /// Replies recorded, by class index.
    pub(crate) counts: [u64; 12],
    #[serde(skip)]
    meter: RateMeter,
    /// The start limits: the ceiling of every increase (set by `new` and `cap`, so not
    /// persisted: a restore applies the limits of the current configuration).
    #[serde(skip)]
    ceiling: Limits,
}

impl Entry {
    pub(crate) fn new(limits: Limits, now_ms: u64) -> Entry {
        Entry {
            rate: limits.max_message_rate.map(|r| r.per_second()),
            concurrency: limits.max_connections.max(1),
            gcra: Gcra::default(),
            successes: 0,
            last_increase_ms: now_ms,
            hint: None,
            trouble_rate: None,
            last_decrease_ms: None,
            permits: 0,
            replies: 0,
            skip_until_replies: 0,
            mode: Mode::Active,
            level: 0,
            last_suspension_end_ms: None,
            throttle_reason: None,
            counts: [0; 12],
            meter: RateMeter::default(),
            ceiling: limits,
        }
    }

    /// Caps the limits at new ceilings (reload, restore).
    pub(crate) fn cap(&mut self, limits: Limits) {
        self.ceiling = limits;
        if let Some(ceiling) = limits.max_message_rate.map(|r| r.per_second()) {
            self.rate = Some(self.rate.map_or(ceiling, |r| r.min(ceiling)));
        }
        self.concurrency = self.concurrency.clamp(1, limits.max_connections.max(1));
    }

    pub(crate) fn gate(&mut self, config: &ReputationConfig, now_ms: u64, take: bool) -> Permit {
        if let Mode::Suspended { until, reason } = &self.mode {
            if now_ms < *until {
                return Permit::Suspended {
                    until: *until,
                    reason: reason.clone(),
                };
            }
            self.mode = Mode::Probing {
                sent: None,
                reason: reason.clone(),
            };
        }
        if let Mode::Probing { sent, .. } = &mut self.mode {
            let timeout = duration_ms(config.probe_timeout);
            return match *sent {
                Some(at) if now_ms < at.saturating_add(timeout) => {
                    Permit::WaitUntil(at.saturating_add(timeout))
                }
                _ => {
                    if take {
                        *sent = Some(now_ms);
                        self.meter.add(now_ms);
                        self.permits = self.permits.saturating_add(1);
                    }
                    Permit::Send
                }
            };
        }
        let now_us = now_ms.saturating_mul(US_PER_MS);
        if let Some(rate) = self.rate {
            let interval = interval_us(rate);
            if let Err(at_us) = self.gcra.check(now_us, interval, 1) {
                return Permit::WaitUntil(ceil_ms(at_us));
            }
            if take {
                self.gcra.take(now_us, interval);
            }
        }
        if take {
            self.meter.add(now_ms);
            self.permits = self.permits.saturating_add(1);
        }
        Permit::Send
    }

    pub(crate) fn record(
        &mut self,
        config: &ReputationConfig,
        class: Class,
        now_ms: u64,
    ) -> Reaction {
        self.counts[class.index()] = self.counts[class.index()].saturating_add(1);
        self.replies = self.replies.saturating_add(1);
        match &self.mode {
            Mode::Suspended { until, .. } => Reaction {
                // A late reply to a message sent before the suspension: nothing changes.
                retry_at: class.blames_source().then_some(*until),
                change: None,
            },
            Mode::Probing { sent: None, .. } => Reaction::default(),
            Mode::Probing {
                sent: Some(_),
                reason,
            } => {
                let reason = reason.clone();
                match class {
                    Class::RateLimited | Class::ReputationBlock | Class::Blocklisted => {
                        self.suspend(config, now_ms, Reason::Reply { class })
                    }
                    Class::Transient => {
                        // Inconclusive (connection trouble, greylisting): probe again.
                        self.mode = Mode::Probing { sent: None, reason };
                        Reaction::default()
                    }
                    _ => self.resume(config, now_ms, reason),
                }
            }
            Mode::Active => match class {
                Class::Delivered => {
                    self.on_success(config, now_ms);
                    Reaction::default()
                }
                Class::RateLimited => {
                    let change = self.decrease(config, now_ms, Reason::Reply { class }, false);
                    Reaction {
                        retry_at: Some(
                            now_ms.saturating_add(duration_ms(config.rate_limited_retry)),
                        ),
                        change,
                    }
                }
                Class::ReputationBlock | Class::Blocklisted => {
                    self.suspend(config, now_ms, Reason::Reply { class })
                }
                _ => Reaction::default(),
            },
        }
    }

    /// Additive increase: a step after `increase_every` successes, or after `increase_after`
    /// with at least one (slow senders), and never twice within `increase_interval`.
    fn on_success(&mut self, config: &ReputationConfig, now_ms: u64) {
        self.successes = self.successes.saturating_add(1);
        let since = now_ms.saturating_sub(self.last_increase_ms);
        let due =
            self.successes >= config.increase_every || since >= duration_ms(config.increase_after);
        if !due || since < duration_ms(config.increase_interval) {
            return;
        }
        self.successes = 0;
        self.last_increase_ms = now_ms;
        let ceiling = self.ceiling();
        if let Some(rate) = self.rate {
            let target = self.hint.map(|h| h * config.recovery_target);
            let next = match target {
                Some(t) if rate < t => (rate * (1.0 + config.recovery_increase)).min(t),
                _ => rate * (1.0 + config.increase),
            };
            self.rate = match ceiling.max_message_rate {
                Some(c) => Some(next.min(c.per_second())),
                // An unlimited key is unlimited again well past the trouble rate.
                None if self.trouble_rate.is_none_or(|t| next >= 2.0 * t) => None,
                None => Some(next),
            };
        }
        self.concurrency = (self.concurrency + 1).min(ceiling.max_connections);
        if self.at_limits() {
            self.throttle_reason = None;
            self.hint = None;
        }
    }

    fn ceiling(&self) -> Limits {
        self.ceiling
    }

    /// Whether rate and concurrency are back at the start limits.
    fn at_limits(&self) -> bool {
        let ceiling = self.ceiling();
        let rate_ok = match (self.rate, ceiling.max_message_rate) {
            (None, _) => true,
            (Some(r), Some(c)) => r >= c.per_second() * 0.999,
            (Some(_), None) => false,
        };
        rate_ok && self.concurrency >= ceiling.max_connections
    }

    /// Multiplicative decrease of rate and concurrency. Unless `force`d (bounce rate), a
    /// `rate_limited` reply that answers a message sent before the last decrease (estimated:
    /// one of the next `min(in flight, concurrency)` replies after it) does not decrease
    /// again, for at most `decrease_holdoff`.
    fn decrease(
        &mut self,
        config: &ReputationConfig,
        now_ms: u64,
        reason: Reason,
        force: bool,
    ) -> Option<Change> {
        let holdoff = duration_ms(config.decrease_holdoff);
        if !force
            && self.replies <= self.skip_until_replies
            && self
                .last_decrease_ms
                .is_some_and(|t| now_ms < t.saturating_add(holdoff))
        {
            return None;
        }
        // The replies still to come for messages sent before this decrease.
        let in_flight = self.permits.saturating_sub(self.replies);
        self.skip_until_replies = self
            .replies
            .saturating_add(in_flight.min(self.concurrency as u64));
        let current = self
            .rate
            .unwrap_or_else(|| self.meter.rate(now_ms))
            .max(config.min_rate());
        let rate = (current * config.decrease).max(config.min_rate());
        self.hint = Some(current);
        self.trouble_rate = Some(current);
        self.rate = Some(rate);
        self.concurrency = ((self.concurrency as f64 * config.decrease) as usize).max(1);
        self.last_decrease_ms = Some(now_ms);
        self.successes = 0;
        self.last_increase_ms = now_ms;
        self.throttle_reason = Some(reason);
        // The next message waits one interval at the new rate: no burst after a deferral.
        let now_us = now_ms.saturating_mul(US_PER_MS);
        self.gcra.tat_us = self.gcra.tat_us.max(now_us);
        self.gcra.take(now_us, interval_us(rate));
        Some(Change::Decreased {
            rate,
            concurrency: self.concurrency,
        })
    }

    /// The bounce-rate decrease of every provider of a source (ignores the holdoff).
    pub(crate) fn force_decrease(
        &mut self,
        config: &ReputationConfig,
        now_ms: u64,
        reason: Reason,
    ) {
        if self.mode == Mode::Active {
            self.decrease(config, now_ms, reason, true);
        }
    }

    /// Suspends after a block: `suspend_initial`, doubling for each block in a row, capped.
    fn suspend(&mut self, config: &ReputationConfig, now_ms: u64, reason: Reason) -> Reaction {
        let recent = self
            .last_suspension_end_ms
            .is_some_and(|t| now_ms < t.saturating_add(duration_ms(config.suspend_forget)));
        self.level = if recent {
            self.level.saturating_add(1)
        } else {
            1
        };
        if self.mode == Mode::Active {
            // The rate to come back from (limit, or what was measured when unlimited).
            let rate = self.rate.unwrap_or_else(|| self.meter.rate(now_ms));
            self.trouble_rate = Some(rate.max(config.min_rate()));
        }
        let initial = duration_ms(config.suspend_initial);
        let length = initial
            .saturating_mul(1u64 << (self.level - 1).min(32))
            .min(duration_ms(config.suspend_max));
        let until = now_ms.saturating_add(length);
        self.last_suspension_end_ms = Some(until);
        self.mode = Mode::Suspended {
            until,
            reason: reason.clone(),
        };
        self.successes = 0;
        Reaction {
            retry_at: Some(until),
            change: Some(Change::Suspended {
                until,
                level: self.level,
                reason,
            }),
        }
    }

    /// An operator's suspension: until then, then a probe.
    pub(crate) fn suspend_until(&mut self, until_ms: u64, reason: Reason) {
        self.mode = Mode::Suspended {
            until: until_ms,
            reason,
        };
    }

    /// The probe was answered: send again, at `resume_share` of the rate before, one
    /// connection, climbing by additive increase.
    fn resume(&mut self, config: &ReputationConfig, now_ms: u64, reason: Reason) -> Reaction {
        let before = self
            .trouble_rate
            .or(self.rate)
            .unwrap_or_else(|| config.min_rate());
        let rate = (before * config.resume_share).max(config.min_rate());
        self.rate = Some(match self.ceiling().max_message_rate {
            Some(c) => rate.min(c.per_second()),
            None => rate,
        });
        self.hint = None;
        self.concurrency = 1;
        self.mode = Mode::Active;
        self.successes = 0;
        self.last_increase_ms = now_ms;
        self.throttle_reason = Some(reason);
        Reaction {
            retry_at: None,
            change: Some(Change::Resumed { rate: self.rate }),
        }
    }

    /// Health and concurrency for the admin view.
    pub(crate) fn view(&self, limits: Limits, now_ms: u64) -> (Health, usize) {
        match &self.mode {
            Mode::Suspended { until, reason } if now_ms < *until => (
                Health::Suspended {
                    until_ms: *until,
                    reason: reason.clone(),
                },
                0,
            ),
            Mode::Suspended { reason, .. } => (
                Health::Probing {
                    reason: reason.clone(),
                    probe_in_flight: false,
                },
                1,
            ),
            Mode::Probing { sent, reason } => (
                Health::Probing {
                    reason: reason.clone(),
                    probe_in_flight: sent.is_some(),
                },
                1,
            ),
            Mode::Active => {
                let below = !self.at_limits() || self.concurrency < limits.max_connections;
                let health = match (&self.throttle_reason, below) {
                    (Some(reason), true) => Health::Throttled {
                        reason: reason.clone(),
                    },
                    _ => Health::Healthy,
                };
                (health, self.concurrency)
            }
        }
    }
}
