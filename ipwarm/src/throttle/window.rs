//! Small time-based counters: the [`Gcra`] limiter, a [`RateMeter`] of recent sends and a
//! [`BounceWindow`] of recent recipient verdicts.
//!
//! Invariants: fixed size (no growth with traffic); time only moves forward for them (a `now`
//! earlier than one already seen counts as that one); all arithmetic saturates.

use serde::{Deserialize, Serialize};

/// Microseconds in a millisecond.
pub(crate) const US_PER_MS: u64 = 1_000;

/// GCRA (generic cell rate algorithm): one timestamp, the theoretical arrival time (TAT) of
/// the next event. An event may go at `now >= tat - (burst - 1) * interval`; it then pushes
/// the TAT one interval further. Events are spread evenly; `burst` may go back to back.
/// The interval is passed on each call so that the rate can change between events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Gcra {
    /// Theoretical arrival time, microseconds since the epoch.
    pub(crate) tat_us: u64,
}

impl Gcra {
    /// `Ok` if an event may go at `now_us`; otherwise the time (µs) it may.
    pub(crate) fn check(&self, now_us: u64, interval_us: u64, burst: u64) -> Result<(), u64> {
        let tolerance = interval_us.saturating_mul(burst.max(1) - 1);
        let allowed_at = self.tat_us.saturating_sub(tolerance);
        if now_us >= allowed_at {
            Ok(())
        } else {
            Err(allowed_at)
        }
    }

    /// Records an event at `now_us`.
    pub(crate) fn take(&mut self, now_us: u64, interval_us: u64) {
        self.tat_us = self.tat_us.max(now_us).saturating_add(interval_us);
    }
}

/// The interval between events at `per_second`, in µs (at least 1).
pub(crate) fn interval_us(per_second: f64) -> u64 {
    if per_second <= 0.0 || per_second.is_nan() {
        return u64::MAX / 4;
    }
    ((1_000_000.0 / per_second).round() as u64).max(1)
}

/// A µs time as ms, rounded up (a wait never ends early).
pub(crate) fn ceil_ms(us: u64) -> u64 {
    us.div_ceil(US_PER_MS)
}

/// Sends in the last 10 seconds, in 1-second buckets: the rate actually achieved, used as
/// the starting point of a decrease when no rate limit was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RateMeter {
    buckets: [u32; 10],
    /// The second of the newest bucket.
    second: u64,
}

impl RateMeter {
    const SPAN: u64 = 10;

    fn advance(&mut self, now_ms: u64) {
        let second = now_ms / 1000;
        if second <= self.second {
            return;
        }
        let steps = (second - self.second).min(Self::SPAN);
        for step in 1..=steps {
            self.buckets[((self.second + step) % Self::SPAN) as usize] = 0;
        }
        self.second = second;
    }

    /// Counts one send.
    pub(crate) fn add(&mut self, now_ms: u64) {
        self.advance(now_ms);
        let slot = &mut self.buckets[(self.second % Self::SPAN) as usize];
        *slot = slot.saturating_add(1);
    }

    /// Sends per second over the last 10 seconds.
    pub(crate) fn rate(&mut self, now_ms: u64) -> f64 {
        self.advance(now_ms);
        let total: u64 = self.buckets.iter().map(|&b| u64::from(b)).sum();
        total as f64 / Self::SPAN as f64
    }
}

/// Recipient verdicts and bad ones over a sliding window, in 12 buckets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BounceWindow {
    /// (bucket number, verdicts, bad) for the 12 most recent buckets in use.
    buckets: [(u64, u32, u32); 12],
}

impl BounceWindow {
    const BUCKETS: u64 = 12;

    fn bucket_ms(window_ms: u64) -> u64 {
        (window_ms / Self::BUCKETS).max(1)
    }

    /// Counts a verdict at `now_ms`.
    pub(crate) fn add(&mut self, now_ms: u64, window_ms: u64, bad: bool) {
        let number = now_ms / Self::bucket_ms(window_ms);
        let slot = &mut self.buckets[(number % Self::BUCKETS) as usize];
        if slot.0 != number {
            *slot = (number, 0, 0);
        }
        slot.1 = slot.1.saturating_add(1);
        slot.2 = slot.2.saturating_add(u32::from(bad));
    }

    /// (verdicts, bad) within the window ending at `now_ms`.
    pub(crate) fn totals(&self, now_ms: u64, window_ms: u64) -> (u32, u32) {
        let current = now_ms / Self::bucket_ms(window_ms);
        self.buckets
            .iter()
            .filter(|(number, _, _)| *number + Self::BUCKETS > current && *number <= current)
            .fold((0u32, 0u32), |(v, b), &(_, verdicts, bad)| {
                (v.saturating_add(verdicts), b.saturating_add(bad))
            })
    }

    /// Forgets everything (after the window triggered an action).
    pub(crate) fn clear(&mut self) {
        *self = BounceWindow::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_spaces_events_and_allows_a_burst() {
        let mut g = Gcra::default();
        let interval = 1_000_000; // 1 s
        let now = 5_000_000;
        assert_eq!(g.check(now, interval, 2), Ok(()));
        g.take(now, interval);
        assert_eq!(g.check(now, interval, 2), Ok(()), "burst of 2");
        g.take(now, interval);
        assert_eq!(g.check(now, interval, 2), Err(now + 1_000_000));
        assert_eq!(g.check(now, interval, 1), Err(now + 2_000_000));
        // A long idle period does not store more than the burst.
        let later = now + 100_000_000;
        g.take(later, interval);
        g.take(later, interval);
        assert_eq!(g.check(later, interval, 2), Err(later + 1_000_000));
        assert_eq!(interval_us(4.0), 250_000);
        assert_eq!(interval_us(0.0), u64::MAX / 4);
        assert_eq!(ceil_ms(1_001), 2);
        assert_eq!(ceil_ms(1_000), 1);
    }

    #[test]
    fn meter_counts_the_last_ten_seconds() {
        let mut m = RateMeter::default();
        for i in 0..50 {
            m.add(100_000 + i * 100); // 10 per second for 5 s
        }
        assert_eq!(m.rate(104_999), 5.0);
        assert_eq!(m.rate(109_999), 5.0);
        assert_eq!(m.rate(112_000), 2.0); // seconds 100 and 101 dropped
        assert_eq!(m.rate(200_000), 0.0);
        // Time going backwards counts as the last second seen.
        m.add(150_000);
        assert_eq!(m.rate(200_000), 0.1);
    }

    #[test]
    fn bounce_window_slides() {
        let hour = 3_600_000;
        let mut w = BounceWindow::default();
        for i in 0..100 {
            w.add(i * 10_000, hour, i % 10 == 0); // 1,000 s, 10 % bad
        }
        assert_eq!(w.totals(990_000, hour), (100, 10));
        // An hour later the first buckets (5 min each) have left the window.
        assert_eq!(w.totals(hour, hour), (70, 7));
        assert_eq!(w.totals(hour + 300_000, hour), (40, 4));
        assert_eq!(w.totals(10 * hour, hour), (0, 0));
        w.clear();
        assert_eq!(w.totals(990_000, hour), (0, 0));
    }
}
