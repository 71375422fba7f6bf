//! [`RetryPolicy`]: when to try again after a temporary failure.
//!
//! After `n` attempts the delay is `initial * 2^(n-1)`, capped at `max`, then multiplied by
//! a random factor drawn uniformly from `[1 - jitter, 1 + jitter]` and capped at `max`
//! again. The jitter spreads retries of messages that failed together (a throttled burst)
//! so they do not come back together.
//!
//! Invariants: the delay is never more than `max` and never negative; a retry time that a
//! throttle asked for is returned exactly (no backoff, no jitter); nothing reads the clock
//! (`now_ms` is passed in) and the randomness comes from the caller's generator, so a seeded
//! generator makes the result reproducible.

use std::time::Duration;

use rand::Rng;

use super::SchedulerError;

/// Exponential backoff with jitter, capped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt (`[delivery] retry_initial`).
    pub initial: Duration,
    /// Longest delay between two attempts (`[delivery] retry_max`).
    pub max: Duration,
    /// Relative spread of each delay, in `[0, 1]` (`[delivery] retry_jitter`): `0.2` means
    /// plus or minus 20 %. Values outside are clamped.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    /// 5 minutes, doubling up to 4 hours, plus or minus 20 %.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(5 * 60),
            max: Duration::from_secs(4 * 60 * 60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// Checks the values as the configuration loader should: `initial` at least 1 ms,
    /// `max` at least `initial`, `jitter` in `[0, 1]`.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        let invalid = |key, requirement| Err(SchedulerError::InvalidConfig { key, requirement });
        if self.initial < Duration::from_millis(1) {
            return invalid("retry_initial", "must be at least 1ms");
        }
        if self.max < self.initial {
            return invalid("retry_max", "must be at least retry_initial");
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return invalid("retry_jitter", "must be between 0 and 1");
        }
        Ok(())
    }

    /// The delay after `attempts` failed attempts, before jitter: `initial * 2^(attempts-1)`
    /// capped at `max` (`attempts` 0 counts as 1).
    pub fn backoff(&self, attempts: u32) -> Duration {
        let max_ms = duration_ms(self.max);
        let initial_ms = duration_ms(self.initial).min(max_ms);
        let doublings = attempts.saturating_sub(1).min(63);
        Duration::from_millis(initial_ms.saturating_mul(1 << doublings).min(max_ms))
    }

    /// The time of the next attempt after `attempts_so_far` attempts, the last of which
    /// failed temporarily at `now_ms`.
    ///
    /// `requested` is a retry time a throttle asked for (for example "suspended until"): it
    /// is returned exactly, even if it is further than `max` or already past (then the job
    /// is due at once). Otherwise: `now_ms` plus [`backoff`](Self::backoff) times a random
    /// factor in `[1 - jitter, 1 + jitter]`, capped at `max`.
    ///
    /// The delay queue still fires a job at its expiry if that comes first.
    pub fn next_attempt_ms<R: Rng + ?Sized>(
        &self,
        attempts_so_far: u32,
        now_ms: u64,
        requested: Option<u64>,
        rng: &mut R,
    ) -> u64 {
        if let Some(at) = requested {
            return at;
        }
        let base_ms = duration_ms(self.backoff(attempts_so_far));
        let jitter = if self.jitter.is_nan() {
            0.0
        } else {
            self.jitter.clamp(0.0, 1.0)
        };
        let delay_ms = if jitter == 0.0 {
            base_ms
        } else {
            let factor = rng.random_range(1.0 - jitter..=1.0 + jitter);
            // `as` saturates for floats; the product is at most 2 * max.
            ((base_ms as f64 * factor).round() as u64).min(duration_ms(self.max))
        };
        now_ms.saturating_add(delay_ms)
    }
}

/// A duration in whole milliseconds, saturating.
fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    const MIN: u64 = 60_000;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(5 * 60),
            max: Duration::from_secs(4 * 60 * 60),
            jitter,
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let table = [
            (0, 5 * MIN),
            (1, 5 * MIN),
            (2, 10 * MIN),
            (3, 20 * MIN),
            (4, 40 * MIN),
            (5, 80 * MIN),
            (6, 160 * MIN),
            (7, 240 * MIN), // 320 capped
            (8, 240 * MIN),
            (64, 240 * MIN),
            (65, 240 * MIN),
            (u32::MAX, 240 * MIN),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        let now = 1_764_000_000_000;
        for (attempts, delay) in table {
            assert_eq!(policy(0.0).backoff(attempts), Duration::from_millis(delay));
            // Without jitter the next attempt is exactly now + backoff.
            let at = policy(0.0).next_attempt_ms(attempts, now, None, &mut rng);
            assert_eq!(at, now + delay, "attempts {attempts}");
        }
        // initial above max: max.
        let inverted = RetryPolicy {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        assert_eq!(inverted.backoff(1), Duration::from_secs(1));
        // No overflow at the end of time.
        assert_eq!(
            policy(0.5).next_attempt_ms(3, u64::MAX - 1, None, &mut rng),
            u64::MAX
        );
    }

    #[test]
    fn jitter_stays_in_bounds_and_spreads() {
        let mut rng = StdRng::seed_from_u64(7);
        let now = 1_000_000;
        // (attempts, low, high): +-20 % of the backoff, capped at max.
        let table = [
            (1, 4 * MIN, 6 * MIN),
            (3, 16 * MIN, 24 * MIN),
            (6, 128 * MIN, 192 * MIN),
            (7, 192 * MIN, 240 * MIN),
            (20, 192 * MIN, 240 * MIN),
        ];
        for (attempts, low, high) in table {
            let delays: Vec<u64> = (0..2_000)
                .map(|_| policy(0.2).next_attempt_ms(attempts, now, None, &mut rng) - now)
                .collect();
            let (min, max) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
            assert!(*min >= low && *max <= high, "{attempts}: {min}..{max}");
            // Spread over (nearly) the whole range: jitter is applied.
            let span = high - low;
            assert!(*min < low + span / 20, "{attempts}: min {min}");
            assert!(*max > high - span / 20, "{attempts}: max {max}");
        }
        // Capped runs pile up at max (the factor above 1 is cut), never above.
        let at_cap = (0..1_000)
            .filter(|_| policy(0.2).next_attempt_ms(30, now, None, &mut rng) == now + 240 * MIN)
            .count();
        assert!((300..700).contains(&at_cap), "{at_cap}");
    }

    #[test]
    fn jitter_is_reproducible_with_a_seed() {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (1..10)
                .map(|n| policy(0.2).next_attempt_ms(n, 0, None, &mut rng))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn requested_time_is_used_exactly() {
        let now = 1_000_000;
        // (attempts, requested): past, now, sooner than backoff, beyond max.
        let table = [
            (1, now - 5_000),
            (1, now),
            (5, now + 1),
            (1, now + 10 * 240 * MIN),
        ];
        for jitter in [0.0, 0.2, 1.0] {
            let mut rng = StdRng::seed_from_u64(11);
            for (attempts, requested) in table {
                let at = policy(jitter).next_attempt_ms(attempts, now, Some(requested), &mut rng);
                assert_eq!(at, requested, "jitter {jitter}, attempts {attempts}");
            }
        }
    }

    #[test]
    fn out_of_range_jitter_is_clamped() {
        let mut rng = StdRng::seed_from_u64(5);
        for jitter in [f64::NAN, -1.0, 0.0] {
            let at = policy(jitter).next_attempt_ms(2, 0, None, &mut rng);
            assert_eq!(at, 10 * MIN, "{jitter}");
        }
        for _ in 0..1_000 {
            let at = policy(7.0).next_attempt_ms(1, 0, None, &mut rng);
            assert!(at <= 10 * MIN, "{at}");
        }
    }

    #[test]
    fn validation_table() {
        let ok = RetryPolicy::default();
        let table = [
            (ok, None),
            (RetryPolicy { jitter: 0.0, ..ok }, None),
            (RetryPolicy { jitter: 1.0, ..ok }, None),
            (
                RetryPolicy {
                    max: ok.initial,
                    ..ok
                },
                None,
            ),
            (
                RetryPolicy {
                    initial: Duration::ZERO,
                    ..ok
                },
                Some("retry_initial"),
            ),
            (
                RetryPolicy {
                    max: Duration::from_secs(1),
                    ..ok
                },
                Some("retry_max"),
            ),
            (RetryPolicy { jitter: 1.5, ..ok }, Some("retry_jitter")),
            (RetryPolicy { jitter: -0.1, ..ok }, Some("retry_jitter")),
            (
                RetryPolicy {
                    jitter: f64::NAN,
                    ..ok
                },
                Some("retry_jitter"),
            ),
        ];
        for (policy, key) in table {
            let got = policy.validate().err().map(|e| match e {
                SchedulerError::InvalidConfig { key, .. } => key,
            });
            assert_eq!(got, key, "{policy:?}");
        }
    }
}
