//! The sink's decisions, shared by every session: the hidden rate limit (a GCRA per scope
//! key), the block that follows repeated violations, and the behaviour rules.
//!
//! Invariants:
//! - Time is passed in (`now`), never read here, so the limiter is tested with made-up
//!   instants and sessions can run under `tokio::time::pause`.
//! - A throttled transaction does not consume a slot (only conforming ones move the GCRA).
//! - State is bounded: at most [`MAX_LIMIT_KEYS`] rate-limit keys and [`MAX_ATTEMPT_KEYS`]
//!   per-recipient attempt counters; past that the table is cleared and counting restarts.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::config::{BlockRule, LimitScope, RateLimit, Rule, Select, SinkConfig, Stage};

/// Most rate-limit keys (client addresses) tracked at once.
pub(crate) const MAX_LIMIT_KEYS: usize = 65_536;
/// Most (rule, recipient) attempt counters kept at once.
pub(crate) const MAX_ATTEMPT_KEYS: usize = 1_000_000;

/// What the rate limiter says about a new transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Within the limit.
    Allowed,
    /// Over the limit: answer the throttle reply.
    Throttled,
    /// The client is blocked: answer the block reply.
    Blocked,
}

/// The limiter state of one scope key.
#[derive(Debug)]
struct KeyState {
    /// GCRA theoretical arrival time of the next conforming transaction.
    tat: Instant,
    /// Times of recent violations, oldest first, within the block window.
    violations: VecDeque<Instant>,
    blocked_until: Option<Instant>,
}

/// A GCRA rate limiter with an optional block rule, keyed by client address (or one global
/// key).
#[derive(Debug)]
pub(crate) struct Limiter {
    /// Time between conforming transactions.
    interval: Duration,
    /// How far ahead of `now` the TAT may run: `interval * (burst - 1)`.
    tolerance: Duration,
    scope: LimitScope,
    block: Option<BlockRule>,
    keys: Mutex<HashMap<IpAddr, KeyState>>,
}

impl Limiter {
    pub(crate) fn new(limit: &RateLimit, block: Option<BlockRule>) -> Limiter {
        let interval = Duration::from_secs_f64(1.0 / limit.per_second);
        Limiter {
            interval,
            tolerance: interval * limit.burst.saturating_sub(1),
            scope: limit.scope,
            block,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// Decides on a transaction from `client` at `now`.
    pub(crate) fn admit(&self, client: IpAddr, now: Instant) -> Admission {
        let key = match self.scope {
            LimitScope::Global => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            LimitScope::ClientIp => client,
        };
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if keys.len() >= MAX_LIMIT_KEYS && !keys.contains_key(&key) {
            keys.clear();
        }
        let state = keys.entry(key).or_insert_with(|| KeyState {
            tat: now,
            violations: VecDeque::new(),
            blocked_until: None,
        });
        if let Some(until) = state.blocked_until {
            if now < until {
                return Admission::Blocked;
            }
            state.blocked_until = None;
        }
        let tat = state.tat.max(now);
        if tat.duration_since(now) <= self.tolerance {
            state.tat = tat + self.interval;
            return Admission::Allowed;
        }
        if let Some(block) = &self.block {
            while state
                .violations
                .front()
                .is_some_and(|&t| now.duration_since(t) > block.window)
            {
                state.violations.pop_front();
            }
            state.violations.push_back(now);
            if state.violations.len() > block.after as usize {
                state.violations.clear();
                state.blocked_until = Some(now + block.duration);
            }
        }
        Admission::Throttled
    }
}

/// The behaviour rules, with their per-recipient attempt counters.
#[derive(Debug)]
pub(crate) struct Rules {
    rules: Vec<Rule>,
    attempts: Mutex<HashMap<(usize, String), u32>>,
}

impl Rules {
    pub(crate) fn new(config: &SinkConfig) -> Rules {
        Rules {
            rules: config.rules.clone(),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// The first rule of `stage` that applies to an attempt with these recipients (one at
    /// RCPT, all of the message's at the end of data), if any.
    pub(crate) fn decide<R: Rng>(
        &self,
        stage: Stage,
        recipients: &[&str],
        rng: &mut R,
    ) -> Option<&Rule> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| rule.stage == stage)
            .find(|(index, rule)| self.matches(*index, &rule.select, recipients, rng))
            .map(|(_, rule)| rule)
    }

    fn matches<R: Rng>(
        &self,
        index: usize,
        select: &Select,
        recipients: &[&str],
        rng: &mut R,
    ) -> bool {
        let any = |f: &dyn Fn(&str) -> bool| recipients.iter().any(|r| f(r));
        let in_list =
            |list: &[String], part: &str| list.iter().any(|x| x.eq_ignore_ascii_case(part));
        match select {
            Select::All => true,
            Select::Fraction(f) => rng.random_bool(f.clamp(0.0, 1.0)),
            Select::Recipients(list) => any(&|r| in_list(list, r)),
            Select::LocalParts(list) => any(&|r| in_list(list, split_address(r).0)),
            Select::Domains(list) => any(&|r| in_list(list, split_address(r).1)),
            Select::FirstAttempts(n) => {
                let mut attempts = self.attempts.lock().unwrap_or_else(|e| e.into_inner());
                if attempts.len() + recipients.len() > MAX_ATTEMPT_KEYS {
                    attempts.clear();
                }
                let mut within = false;
                for r in recipients {
                    let count = attempts.entry((index, r.to_ascii_lowercase())).or_insert(0);
                    *count = count.saturating_add(1);
                    within |= *count <= *n;
                }
                within
            }
        }
    }
}

/// Splits `local@domain` at its last `@` (a quoted local part may hold one).
fn split_address(address: &str) -> (&str, &str) {
    address.rsplit_once('@').unwrap_or((address, ""))
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::sink::config::{ReplySpec, ThrottleAt};

    fn limit(per_second: f64, burst: u32, scope: LimitScope) -> RateLimit {
        RateLimit {
            per_second,
            burst,
            scope,
            at: ThrottleAt::Mail,
            reply: ReplySpec::default_throttle(),
            close: false,
        }
    }

    #[test]
    fn gcra_allows_the_burst_then_one_per_interval() {
        use Admission::*;
        let limiter = Limiter::new(&limit(10.0, 3, LimitScope::Global), None);
        let t0 = Instant::now();
        let ip = IpAddr::from([127, 0, 0, 2]);
        let ms = |m: u64| t0 + Duration::from_millis(m);
        // (time in ms, expected)
        let table = [
            (0, Allowed),
            (0, Allowed),
            (0, Allowed),
            (0, Throttled),
            (50, Throttled),
            (100, Allowed),
            (150, Throttled),
            (200, Allowed),
            (1000, Allowed),
            (1000, Allowed),
            (1000, Allowed),
            (1000, Throttled),
        ];
        for (i, (at, expected)) in table.into_iter().enumerate() {
            assert_eq!(limiter.admit(ip, ms(at)), expected, "row {i} at {at} ms");
        }
    }

    #[test]
    fn scope_separates_client_addresses() {
        let t0 = Instant::now();
        let a = IpAddr::from([127, 0, 0, 2]);
        let b = IpAddr::from([127, 0, 0, 3]);
        let per_ip = Limiter::new(&limit(1.0, 1, LimitScope::ClientIp), None);
        assert_eq!(per_ip.admit(a, t0), Admission::Allowed);
        assert_eq!(per_ip.admit(b, t0), Admission::Allowed);
        assert_eq!(per_ip.admit(a, t0), Admission::Throttled);
        let global = Limiter::new(&limit(1.0, 1, LimitScope::Global), None);
        assert_eq!(global.admit(a, t0), Admission::Allowed);
        assert_eq!(global.admit(b, t0), Admission::Throttled);
    }

    #[test]
    fn repeated_violations_block_for_the_duration() {
        use Admission::*;
        let block = BlockRule {
            after: 2,
            window: Duration::from_secs(10),
            duration: Duration::from_secs(30),
            reply: ReplySpec::default_block(),
        };
        let limiter = Limiter::new(&limit(1.0, 1, LimitScope::ClientIp), Some(block));
        let ip = IpAddr::from([127, 0, 0, 9]);
        let t0 = Instant::now();
        let s = |secs: f64| t0 + Duration::from_secs_f64(secs);
        let table = [
            (0.0, Allowed),
            (0.1, Throttled),
            (0.2, Throttled),
            // The third violation within 10 s is one more than tolerated: blocked from here.
            (0.3, Throttled),
            (0.4, Blocked),
            (5.0, Blocked),
            (30.2, Blocked),
            (30.4, Allowed),
            (30.5, Throttled),
        ];
        for (i, (at, expected)) in table.into_iter().enumerate() {
            assert_eq!(limiter.admit(ip, s(at)), expected, "row {i} at {at} s");
        }
    }

    #[test]
    fn violations_outside_the_window_are_forgotten() {
        let block = BlockRule {
            after: 1,
            window: Duration::from_secs(1),
            duration: Duration::from_secs(30),
            reply: ReplySpec::default_block(),
        };
        let limiter = Limiter::new(&limit(0.1, 1, LimitScope::Global), Some(block));
        let ip = IpAddr::from([127, 0, 0, 1]);
        let t0 = Instant::now();
        assert_eq!(limiter.admit(ip, t0), Admission::Allowed);
        for i in 1..5 {
            // One violation every 2 s never makes two within a 1 s window.
            let at = t0 + Duration::from_secs(2 * i);
            assert_eq!(limiter.admit(ip, at), Admission::Throttled, "violation {i}");
        }
    }

    #[test]
    fn rules_select_as_documented() {
        let config = SinkConfig {
            rules: vec![
                Rule::bounce_local_parts(["nouser"]),
                Rule::bounce_recipients(["Gone@Example.com"]),
                Rule {
                    stage: Stage::Rcpt,
                    select: Select::Domains(vec!["defer.test".into()]),
                    reply: ReplySpec::default_defer(),
                },
                Rule::defer_first_attempts(2),
                Rule::defer_fraction(1.0).at(Stage::Data),
            ],
            ..SinkConfig::default()
        };
        let rules = Rules::new(&config);
        let mut rng = StdRng::seed_from_u64(1);
        let code = |stage, rcpts: &[&str], rng: &mut StdRng| {
            rules.decide(stage, rcpts, rng).map(|r| r.reply.code.get())
        };
        // (recipient, expected RCPT-stage reply code)
        let table: &[(&str, Option<u16>)] = &[
            ("nouser@example.com", Some(550)),
            ("NoUser@other.test", Some(550)),
            ("gone@example.com", Some(550)),
            ("x@defer.test", Some(451)),
            ("grey@example.com", Some(451)),
            ("grey@example.com", Some(451)),
            ("grey@example.com", None),
            ("GREY@example.com", None),
        ];
        for (rcpt, expected) in table {
            assert_eq!(code(Stage::Rcpt, &[rcpt], &mut rng), *expected, "{rcpt}");
        }
        assert_eq!(code(Stage::Data, &["a@b.test"], &mut rng), Some(451));
    }

    #[test]
    fn fractions_are_roughly_honoured() {
        let config = SinkConfig {
            rules: vec![Rule::bounce_fraction(0.25)],
            ..SinkConfig::default()
        };
        let rules = Rules::new(&config);
        let mut rng = StdRng::seed_from_u64(7);
        let hits = (0..10_000)
            .filter(|_| rules.decide(Stage::Rcpt, &["a@b.test"], &mut rng).is_some())
            .count();
        assert!((2_200..2_800).contains(&hits), "{hits}");
    }
}
