//! Warmup: a new IP sends a small daily volume per provider, growing day by day.
//!
//! **Day counting.** A (source, provider) key is on plan day `n + 1` after `n` completed days
//! *on which it sent* (a day counts when at least one message was recorded with
//! [`record_send`](crate::Egress::record_send)). A pause (weekend, incident, no mail) does not
//! skip steps: the day index advances only after a day with sends. Days are UTC calendar
//! days. Before the source's `warmup_start` date it sends nothing.
//!
//! **Allowance.** Plan day `n` allows `daily[n - 1]` messages to the provider (the provider's
//! own list if the plan has one, otherwise the plan's `daily`). After the last day of the
//! list the key is warm: no cap.
//!
//! **Spreading.** The allowance is spread over what is left of the day with a GCRA whose
//! interval is recomputed at every message as `time left until midnight UTC / messages
//! left`, with a burst of `burst_minutes` worth of the daily allowance (at least 1). So a
//! day that starts at midnight sends evenly over 24 hours, a day whose mail only arrives at
//! 18:00 spreads the whole allowance over the remaining 6 hours, and nothing ever leaves in a
//! burst bigger than a few minutes' worth (no midnight spike).
//!
//! Invariants: `taken` never exceeds the day's allowance; counters belong to one day and are
//! reset (after counting the day if it had sends) when the first call of a later day comes;
//! a clock going backwards does not reopen a past day.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::config::WarmupPlanConfig;
use crate::throttle::{Gcra, US_PER_MS, ceil_ms};
use crate::time::{DAY_MS, day_of, day_start_ms};

/// A compiled warmup plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) name: String,
    daily: Vec<u64>,
    providers: HashMap<String, Vec<u64>>,
    burst_minutes: u32,
}

impl Plan {
    pub(crate) fn new(name: &str, config: &WarmupPlanConfig) -> Plan {
        Plan {
            name: name.to_owned(),
            daily: config.daily.clone(),
            providers: config
                .provider
                .iter()
                .map(|(p, list)| (p.to_ascii_lowercase(), list.daily.clone()))
                .collect(),
            burst_minutes: config.burst_minutes,
        }
    }

    /// The allowance on plan day `index + 1` for `provider`; `None` once warm.
    pub(crate) fn allowance(&self, provider: &str, index: u32) -> Option<u64> {
        let list = self
            .providers
            .get(&provider.to_ascii_lowercase())
            .unwrap_or(&self.daily);
        list.get(index as usize).copied()
    }

    /// The number of days in the plan for `provider`.
    pub(crate) fn days(&self, provider: &str) -> usize {
        self.providers
            .get(&provider.to_ascii_lowercase())
            .unwrap_or(&self.daily)
            .len()
    }

    fn burst(&self, allowance: u64) -> u64 {
        (allowance.saturating_mul(u64::from(self.burst_minutes)) / 1440).max(1)
    }
}

/// Why a source may not take a message now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WaitReason {
    /// The day's allowance is spread: the next slot comes later today.
    WarmupPacing,
    /// The day's allowance is used up: tomorrow.
    WarmupDailyCap,
    /// The source's `warmup_start` date has not come.
    WarmupNotStarted,
    /// Every candidate source is suspended for this provider (or waits for a probe reply).
    Suspended,
}

/// Warmup counters of one (source, provider) key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Counter {
    /// Days with sends before `day`.
    pub(crate) completed_days: u32,
    /// The day the counters below are for.
    pub(crate) day: u32,
    /// Messages recorded as sent on `day`.
    pub(crate) sent: u64,
    /// Allowance taken on `day` (by source choice).
    pub(crate) taken: u64,
    /// Pacing within the day.
    gcra: Gcra,
}

impl Counter {
    /// Moves to the day of `now_ms`, counting the previous day if it had sends.
    fn roll(&mut self, now_ms: u64) {
        let today = day_of(now_ms);
        if today <= self.day {
            return;
        }
        if self.sent > 0 {
            self.completed_days = self.completed_days.saturating_add(1);
        }
        *self = Counter {
            completed_days: self.completed_days,
            day: today,
            sent: 0,
            taken: 0,
            gcra: Gcra {
                tat_us: day_start_ms(today).saturating_mul(US_PER_MS),
            },
        };
    }

    /// The allowance today (`None`: no cap), after rolling to `now_ms`'s day.
    pub(crate) fn allowance(&mut self, plan: &Plan, provider: &str, now_ms: u64) -> Option<u64> {
        self.roll(now_ms);
        plan.allowance(provider, self.completed_days)
    }

    /// The interval between messages for the rest of the day, in µs.
    fn interval_us(&self, allowance: u64, now_ms: u64) -> u64 {
        let left_ms = day_start_ms(self.day)
            .saturating_add(DAY_MS)
            .saturating_sub(now_ms);
        let left_messages = allowance.saturating_sub(self.taken).max(1);
        (left_ms.saturating_mul(US_PER_MS) / left_messages).max(1)
    }

    /// `Ok` if a message may be taken now; otherwise when, and why not.
    pub(crate) fn check(
        &mut self,
        plan: &Plan,
        provider: &str,
        start_day: Option<u32>,
        now_ms: u64,
    ) -> Result<(), (u64, WaitReason)> {
        if let Some(start) = start_day
            && day_of(now_ms) < start
        {
            return Err((day_start_ms(start), WaitReason::WarmupNotStarted));
        }
        let Some(allowance) = self.allowance(plan, provider, now_ms) else {
            return Ok(());
        };
        if self.taken >= allowance {
            return Err((
                day_start_ms(self.day.saturating_add(1)),
                WaitReason::WarmupDailyCap,
            ));
        }
        let now_us = now_ms.saturating_mul(US_PER_MS);
        let interval = self.interval_us(allowance, now_ms);
        self.gcra
            .check(now_us, interval, plan.burst(allowance))
            .map_err(|at_us| (ceil_ms(at_us), WaitReason::WarmupPacing))
    }

    /// Takes one message of today's allowance (after a successful [`check`](Self::check)).
    pub(crate) fn take(&mut self, plan: &Plan, provider: &str, now_ms: u64) {
        if let Some(allowance) = self.allowance(plan, provider, now_ms) {
            let interval = self.interval_us(allowance, now_ms);
            self.gcra.take(now_ms.saturating_mul(US_PER_MS), interval);
        }
        self.taken = self.taken.saturating_add(1);
    }

    /// Gives back a message taken today that did not leave from this source: the count and
    /// (approximately: the interval now) its pacing slot.
    pub(crate) fn release(&mut self, plan: &Plan, provider: &str, now_ms: u64) {
        if self.taken == 0 {
            self.roll(now_ms);
            return;
        }
        if let Some(allowance) = self.allowance(plan, provider, now_ms)
            && self.taken > 0
        {
            self.taken -= 1;
            let interval = self.interval_us(allowance, now_ms);
            let day_start_us = day_start_ms(self.day).saturating_mul(US_PER_MS);
            self.gcra.tat_us = self.gcra.tat_us.saturating_sub(interval).max(day_start_us);
        } else {
            self.taken = self.taken.saturating_sub(1);
        }
    }

    /// Records a message actually sent (day counting).
    pub(crate) fn record_send(&mut self, now_ms: u64) {
        self.roll(now_ms);
        self.sent = self.sent.saturating_add(1);
    }
}

/// Warmup of one (source, provider) key, for the admin view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WarmupState {
    /// The plan's name.
    pub plan: String,
    /// The plan day (1 for the first day with sends); past the plan's length once warm.
    pub day: u32,
    /// Days in the plan for this provider.
    pub plan_days: u32,
    /// Today's allowance (`None`: warm, no cap).
    pub allowance: Option<u64>,
    /// Allowance taken today by source choice.
    pub taken: u64,
    /// Messages recorded as sent today.
    pub sent: u64,
    /// The first day the source may send (`YYYY-MM-DD`), if set.
    pub start: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderPlanConfig;

    const DAY: u64 = DAY_MS;
    /// 2026-11-20T00:00:00Z.
    const D0: u64 = 20_777 * DAY_MS;
    const H: u64 = 3_600_000;

    fn plan() -> Plan {
        let mut provider = std::collections::BTreeMap::new();
        provider.insert(
            "gmail".to_owned(),
            ProviderPlanConfig {
                daily: vec![10, 20],
            },
        );
        Plan::new(
            "standard",
            &WarmupPlanConfig {
                daily: vec![50, 100, 500],
                provider,
                burst_minutes: 5,
            },
        )
    }

    /// Takes everything allowed between `from` and `to`, waiting as told; returns the times.
    fn drain(c: &mut Counter, plan: &Plan, provider: &str, from: u64, to: u64) -> Vec<u64> {
        let mut now = from;
        let mut times = Vec::new();
        while now < to {
            match c.check(plan, provider, None, now) {
                Ok(()) => {
                    c.take(plan, provider, now);
                    c.record_send(now);
                    times.push(now);
                }
                Err((at, _)) => now = at,
            }
        }
        times
    }

    #[test]
    fn allowance_comes_from_the_provider_list_or_the_default() {
        let p = plan();
        let table = [
            ("gmail", 0, Some(10)),
            ("GMail", 1, Some(20)),
            ("gmail", 2, None),
            ("yahoo", 0, Some(50)),
            ("yahoo", 2, Some(500)),
            ("yahoo", 3, None),
            ("other", 1, Some(100)),
        ];
        for (provider, index, allowance) in table {
            assert_eq!(
                p.allowance(provider, index),
                allowance,
                "{provider} {index}"
            );
        }
        assert_eq!(p.days("gmail"), 2);
        assert_eq!(p.days("yahoo"), 3);
    }

    #[test]
    fn day_index_advances_only_after_days_with_sends() {
        let p = plan();
        let mut c = Counter::default();
        // Day 1: sends.
        assert_eq!(c.allowance(&p, "yahoo", D0 + H), Some(50));
        c.record_send(D0 + H);
        // Three idle days: still plan day 2 afterwards, not day 5.
        for d in 1..4 {
            assert_eq!(
                c.allowance(&p, "yahoo", D0 + d * DAY + H),
                Some(100),
                "idle day {d}"
            );
        }
        c.record_send(D0 + 4 * DAY);
        assert_eq!(c.completed_days, 1);
        // Taken-but-never-sent does not count as a sending day.
        c.take(&p, "yahoo", D0 + 5 * DAY);
        assert_eq!(c.allowance(&p, "yahoo", D0 + 5 * DAY), Some(500));
        assert_eq!(c.allowance(&p, "yahoo", D0 + 6 * DAY), Some(500));
        c.record_send(D0 + 6 * DAY);
        assert_eq!(
            c.allowance(&p, "yahoo", D0 + 7 * DAY),
            None,
            "warm after the list"
        );
        // The clock going back does not reopen a day.
        assert_eq!(c.allowance(&p, "yahoo", D0), None);
    }

    #[test]
    fn the_daily_allowance_is_spread_over_the_day() {
        let p = plan();
        let mut c = Counter::default();
        let times = drain(&mut c, &p, "yahoo", D0, D0 + DAY);
        assert_eq!(times.len(), 50, "exactly the allowance");
        // No burst at midnight: burst is max(1, 50 * 5 / 1440) = 1.
        assert_eq!(times[0], D0);
        assert!(
            times[1] - times[0] >= 28 * 60_000,
            "{}",
            times[1] - times[0]
        );
        // Evenly: 24 h / 50 = 28.8 min apart; the last one in the last hour.
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(
            gaps.iter()
                .all(|&g| (28 * 60_000..=29 * 60_000).contains(&g)),
            "{gaps:?}"
        );
        assert!(times[49] > D0 + 23 * H);
        // Per hour never more than 3 (50 / 24 rounded up, plus the burst).
        for h in 0..24 {
            let n = times
                .iter()
                .filter(|&&t| t >= D0 + h * H && t < D0 + (h + 1) * H)
                .count();
            assert!(n <= 3, "hour {h}: {n}");
        }
        // Day cap: the next message waits for midnight.
        assert_eq!(
            c.check(&p, "yahoo", None, D0 + DAY - 1),
            Err((D0 + DAY, WaitReason::WarmupDailyCap))
        );
    }

    #[test]
    fn a_late_start_spreads_the_allowance_over_what_is_left() {
        let p = plan();
        let mut c = Counter {
            completed_days: 2, // 500 a day
            ..Counter::default()
        };
        let start = D0 + 18 * H;
        let times = drain(&mut c, &p, "yahoo", start, D0 + DAY);
        assert_eq!(times.len(), 500);
        // Burst: 500 * 5 / 1440 = 1 → nothing back to back; 6 h / 500 = 43.2 s apart.
        let first_minute = times.iter().filter(|&&t| t < start + 60_000).count();
        assert!(first_minute <= 2, "{first_minute}");
        for h in 18..24 {
            let n = times
                .iter()
                .filter(|&&t| t >= D0 + h * H && t < D0 + (h + 1) * H)
                .count();
            assert!((80..=90).contains(&n), "hour {h}: {n}");
        }
    }

    #[test]
    fn bursts_are_a_few_minutes_worth() {
        let mut config = WarmupPlanConfig {
            daily: vec![288_000],
            provider: Default::default(),
            burst_minutes: 5,
        };
        let p = Plan::new("big", &config);
        let mut c = Counter::default();
        // 288,000 a day = 200 a minute; burst 5 minutes' worth = 1,000.
        let mut now = D0 + 12 * H;
        let mut back_to_back = 0;
        while c.check(&p, "x", None, now).is_ok() {
            c.take(&p, "x", now);
            back_to_back += 1;
        }
        // 1,000, give or take the rounding of the interval that grows as the day's
        // remaining allowance shrinks.
        assert!((1_000..=1_001).contains(&back_to_back), "{back_to_back}");
        now += 60_000;
        let mut next_minute = 0;
        while c.check(&p, "x", None, now).is_ok() {
            c.take(&p, "x", now);
            next_minute += 1;
        }
        // About 288,000 - 1,000 left over 12 h: ~398 a minute.
        assert!((390..=410).contains(&next_minute), "{next_minute}");
        config.burst_minutes = 1440;
        assert_eq!(Plan::new("all", &config).burst(288_000), 288_000);
    }

    #[test]
    fn start_date_and_release() {
        let p = plan();
        let mut c = Counter::default();
        let start = day_of(D0) + 2;
        assert_eq!(
            c.check(&p, "yahoo", Some(start), D0 + H),
            Err((D0 + 2 * DAY, WaitReason::WarmupNotStarted))
        );
        assert_eq!(c.check(&p, "yahoo", Some(start), D0 + 2 * DAY), Ok(()));
        c.take(&p, "yahoo", D0 + 2 * DAY);
        assert_eq!(c.taken, 1);
        c.release(&p, "yahoo", D0 + 2 * DAY + 1);
        assert_eq!(c.taken, 0);
        // The pacing slot comes back too: the next message may go at once.
        assert_eq!(c.check(&p, "yahoo", Some(start), D0 + 2 * DAY + 2), Ok(()));
        c.release(&p, "yahoo", D0 + 2 * DAY + 3);
        assert_eq!(c.taken, 0, "never below zero");
    }
}
