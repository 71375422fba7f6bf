//! The GCRA limiter that enforces rates as operators write them (`"600/min"`, the
//! [`Rate`] type shared with `ipwarm`).
//!
//! GCRA (generic cell rate algorithm) keeps one timestamp per limiter: the theoretical
//! arrival time of the next event. An event may go when `now >= tat - burst_tolerance`; it
//! then pushes `tat` one emission interval further. This spreads events evenly (no burst at
//! the start of each minute) while allowing a small burst (`burst` events back to back).

use std::time::Duration;

pub use ipwarm::{Rate, RateParseError};

/// Time between two events at `rate`.
fn interval(rate: Rate) -> Duration {
    rate.per / rate.count
}

/// A GCRA rate limiter over an injected clock (milliseconds or any monotonic unit in
/// `Duration` since an origin).
#[derive(Debug, Clone)]
pub struct Gcra {
    interval: Duration,
    tolerance: Duration,
    /// Theoretical arrival time of the next event, since the clock's origin.
    tat: Duration,
}

impl Gcra {
    /// A limiter for `rate` allowing `burst` events back to back (at least 1).
    pub fn new(rate: Rate, burst: u32) -> Gcra {
        let interval = interval(rate);
        Gcra {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            tat: Duration::ZERO,
        }
    }

    /// Takes one event at `now` if allowed; otherwise says how long to wait.
    pub fn try_acquire(&mut self, now: Duration) -> Result<(), Duration> {
        let tat = self.tat.max(now);
        let allowed_at = tat.saturating_sub(self.tolerance);
        if now < allowed_at {
            return Err(allowed_at - now);
        }
        self.tat = tat + self.interval;
        Ok(())
    }

    /// Replaces the rate, keeping the schedule (used when shaping changes at run time).
    pub fn set_rate(&mut self, rate: Rate, burst: u32) {
        self.interval = interval(rate);
        self.tolerance = self.interval * burst.max(1).saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_spreads_events_evenly_with_a_burst() {
        let rate: Rate = "60/min".parse().unwrap(); // one per second
        let mut gcra = Gcra::new(rate, 2);
        let t = |ms: u64| Duration::from_millis(ms);
        assert!(gcra.try_acquire(t(0)).is_ok());
        assert!(gcra.try_acquire(t(0)).is_ok(), "burst of 2");
        assert_eq!(gcra.try_acquire(t(0)), Err(t(1000)));
        assert_eq!(gcra.try_acquire(t(400)), Err(t(600)));
        assert!(gcra.try_acquire(t(1000)).is_ok());
        assert_eq!(gcra.try_acquire(t(1000)), Err(t(1000)));
        // Over a long run the rate holds: 100 events take 99 s after the burst.
        let mut gcra = Gcra::new(rate, 1);
        let mut now = t(0);
        let mut sent = 0;
        while sent < 100 {
            match gcra.try_acquire(now) {
                Ok(()) => sent += 1,
                Err(wait) => now += wait,
            }
        }
        assert_eq!(now, t(99_000));
    }
}
