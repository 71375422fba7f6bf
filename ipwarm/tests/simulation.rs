//! Deterministic simulation: the throttle against an ISP that defers above a hidden rate.
//!
//! The ISP accepts messages from one IP through a token bucket: `hidden` messages per
//! second, holding at most 10 seconds' worth. A message that finds the bucket empty gets
//! Gmail's documented deferral (`421-4.7.28 ... unusual rate of unsolicited mail ...`). An IP
//! that keeps pushing — more than 30 deferrals within 60 seconds — is blocked (`550-5.7.1
//! ... has been blocked`), which the test asserts never happens.
//!
//! The engine side is what the delivery engine does: it has an endless backlog for the
//! provider, opens as many transactions as `concurrency_limit` allows, asks `permit` before
//! each message, gets the reply one `latency` later, classifies it with the built-in table
//! and feeds the class to `record`. Time is a manual clock jumping from event to event, so
//! the run is exact and reproducible; ten simulated minutes take milliseconds.
//!
//! Measured (printed with `cargo test -p ipwarm --test simulation -- --nocapture`, and
//! recorded in docs/ipwarm.md): see `SCENARIOS`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::Duration;

use ipwarm::time::{Clock, ManualClock};
use ipwarm::{
    Class, Classifier, EnhancedCode, Limits, Permit, Rate, Reply, ReputationConfig, StartLimits,
    Throttles,
};

const SECOND: u64 = 1_000;
const MINUTE: u64 = 60_000;
const START: u64 = 1_795_000_000_000;

const DEFERRAL: &str = "[192.0.2.10] Our system has detected an unusual rate of\nunsolicited mail originating from your IP address. To protect our\nusers from spam, mail sent from your IP address has been temporarily\nrate limited. Please visit\nhttps://support.google.com/mail/?p=UnsolicitedRateLimitError to\nreview our Bulk Email Senders Guidelines. - gsmtp";
const BLOCK: &str = "[192.0.2.10] Our system has detected an unusual rate of\nunsolicited mail originating from your IP address. To protect our\nusers from spam, mail sent from your IP address has been blocked.";
/// Deferrals within a minute that make the ISP block the IP.
const BLOCK_AFTER: usize = 30;

/// The receiving side.
struct Isp {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last_ms: u64,
    recent_deferrals: VecDeque<u64>,
    blocked: bool,
}

impl Isp {
    fn new(rate: f64, now: u64) -> Isp {
        Isp {
            rate,
            capacity: rate * 10.0,
            tokens: rate * 10.0,
            last_ms: now,
            recent_deferrals: VecDeque::new(),
            blocked: false,
        }
    }

    fn receive(&mut self, now: u64) -> (u16, EnhancedCode, &'static str) {
        self.tokens =
            (self.tokens + (now - self.last_ms) as f64 / 1000.0 * self.rate).min(self.capacity);
        self.last_ms = now;
        if self.blocked {
            return (550, EnhancedCode::new(5, 7, 1), BLOCK);
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return (
                250,
                EnhancedCode::new(2, 0, 0),
                "OK 1795000000 x1si - gsmtp",
            );
        }
        self.recent_deferrals.push_back(now);
        while self
            .recent_deferrals
            .front()
            .is_some_and(|&t| t + MINUTE <= now)
        {
            self.recent_deferrals.pop_front();
        }
        if self.recent_deferrals.len() > BLOCK_AFTER {
            self.blocked = true;
        }
        (421, EnhancedCode::new(4, 7, 28), DEFERRAL)
    }
}

/// One scenario: the hidden rate, the shaping limits the engine starts from, the latency
/// of one SMTP transaction.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    hidden_per_s: f64,
    start_per_min: Option<u32>,
    connections: usize,
    latency_ms: u64,
}

#[derive(Debug, Default)]
struct Outcome {
    /// (send time, accepted) of every attempt.
    attempts: Vec<(u64, bool)>,
    blocked: bool,
    max_deferrals_per_minute: usize,
    final_rate_per_s: f64,
}

impl Outcome {
    fn between(&self, from_s: u64, to_s: u64) -> (usize, usize) {
        let (from, to) = (START + from_s * SECOND, START + to_s * SECOND);
        let window = self.attempts.iter().filter(|(t, _)| (from..to).contains(t));
        let (mut accepted, mut deferred) = (0, 0);
        for (_, ok) in window {
            if *ok {
                accepted += 1;
            } else {
                deferred += 1;
            }
        }
        (accepted, deferred)
    }

    /// Delivered per second over [from, to) seconds, as a share of the hidden rate.
    fn utilisation(&self, s: &Scenario, from_s: u64, to_s: u64) -> f64 {
        let (accepted, _) = self.between(from_s, to_s);
        accepted as f64 / (to_s - from_s) as f64 / s.hidden_per_s
    }

    /// Deferred attempts as a share of attempts over [from, to) seconds.
    fn deferred_share(&self, from_s: u64, to_s: u64) -> f64 {
        let (accepted, deferred) = self.between(from_s, to_s);
        deferred as f64 / (accepted + deferred).max(1) as f64
    }

    /// The first second after which every minute (sliding, by the second) delivers at least
    /// 80 % of the hidden rate, until the end.
    fn converged_after_s(&self, s: &Scenario, end_s: u64) -> u64 {
        let mut per_second = vec![0u64; end_s as usize];
        for &(t, ok) in &self.attempts {
            let second = ((t - START) / SECOND) as usize;
            if ok && second < per_second.len() {
                per_second[second] += 1;
            }
        }
        let needed = 0.8 * s.hidden_per_s * 60.0;
        let mut since = 0;
        for t in 0..per_second.len().saturating_sub(60) {
            let delivered: u64 = per_second[t..t + 60].iter().sum();
            if (delivered as f64) < needed {
                since = t as u64 + 1;
            }
        }
        since
    }
}

fn run(s: Scenario, duration: Duration) -> Outcome {
    let clock = ManualClock::new(START);
    let limits = StartLimits::new(Limits {
        max_connections: s.connections,
        max_message_rate: s.start_per_min.map(|count| Rate {
            count,
            per: Duration::from_secs(60),
        }),
    });
    let mut throttles = Throttles::new(ReputationConfig::default(), limits);
    let classifier = Classifier::builtin();
    let mut isp = Isp::new(s.hidden_per_s, START);
    let end = START + duration.as_millis() as u64;
    // Replies on their way back: (arrival time, sequence, code, enhanced, text).
    let mut in_flight = BinaryHeap::new();
    let mut sequence = 0u64;
    let mut outcome = Outcome::default();
    let mut classes = HashMap::new();
    while clock.now_ms() < end {
        let now = clock.now_ms();
        while let Some(Reverse((at, _, code, enhanced, text))) = in_flight.peek().cloned()
            && at <= now
        {
            in_flight.pop();
            // The ISP has three replies: classify each once (the classifier is pure).
            let class = *classes.entry(text).or_insert_with(|| {
                let reply = Reply::new(code, Some(enhanced), text);
                classifier.classify(&reply, Some("gmail")).class
            });
            assert!(
                matches!(class, Class::Delivered | Class::RateLimited),
                "the throttle must never reach the block: {class}"
            );
            throttles.record("ip-a", "gmail", class, at);
        }
        let mut wake = None;
        while in_flight.len() < throttles.concurrency_limit("ip-a", "gmail", now) {
            match throttles.permit("ip-a", "gmail", now) {
                Permit::Send => {
                    let (code, enhanced, text) = isp.receive(now);
                    outcome.attempts.push((now, code == 250));
                    sequence += 1;
                    in_flight.push(Reverse((
                        now + s.latency_ms,
                        sequence,
                        code,
                        enhanced,
                        text,
                    )));
                }
                Permit::WaitUntil(at) => {
                    wake = Some(at);
                    break;
                }
                Permit::Suspended { until, .. } => {
                    wake = Some(until);
                    break;
                }
            }
        }
        outcome.max_deferrals_per_minute = outcome
            .max_deferrals_per_minute
            .max(isp.recent_deferrals.len());
        let next_reply = in_flight.peek().map(|Reverse((at, ..))| *at);
        let next = [wake, next_reply]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(end);
        clock.set(next.max(now + 1));
    }
    outcome.blocked = isp.blocked;
    outcome.final_rate_per_s = throttles
        .current_rate("ip-a", "gmail")
        .unwrap_or(f64::INFINITY);
    outcome
}

/// (name, scenario). Hidden rates from 1 to 50 messages a second; start limits from 2× to
/// 5× too high, and unlimited.
const SCENARIOS: [(&str, Scenario); 5] = [
    (
        "5/s hidden, start 600/min (2x)",
        Scenario {
            hidden_per_s: 5.0,
            start_per_min: Some(600),
            connections: 10,
            latency_ms: 200,
        },
    ),
    (
        "5/s hidden, start 1200/min (4x)",
        Scenario {
            hidden_per_s: 5.0,
            start_per_min: Some(1200),
            connections: 10,
            latency_ms: 200,
        },
    ),
    (
        "1/s hidden, start 300/min (5x)",
        Scenario {
            hidden_per_s: 1.0,
            start_per_min: Some(300),
            connections: 5,
            latency_ms: 300,
        },
    ),
    (
        "50/s hidden, start 6000/min (2x)",
        Scenario {
            hidden_per_s: 50.0,
            start_per_min: Some(6000),
            connections: 20,
            latency_ms: 100,
        },
    ),
    (
        "5/s hidden, no start rate (10 connections)",
        Scenario {
            hidden_per_s: 5.0,
            start_per_min: None,
            connections: 10,
            latency_ms: 200,
        },
    ),
];

#[test]
fn aimd_converges_below_the_hidden_rate_without_being_blocked() {
    let minutes = 10;
    for (name, scenario) in SCENARIOS {
        let outcome = run(scenario, Duration::from_secs(minutes * 60));
        let end = minutes * 60;
        let steady = outcome.utilisation(&scenario, 120, end);
        let first_two = outcome.utilisation(&scenario, 0, 120);
        let deferred_all = outcome.deferred_share(0, end);
        let deferred_first_two = outcome.deferred_share(0, 120);
        let deferred_steady = outcome.deferred_share(120, end);
        let converged = outcome.converged_after_s(&scenario, end);
        #[allow(clippy::print_stdout)]
        {
            println!(
                "{name}: delivered {:.1} % of the hidden rate in minutes 2-{minutes} ({:.1} % in \
                 minutes 0-2), converged after {converged} s; deferred {:.2} % of attempts \
                 overall ({:.2} % in minutes 0-2, {:.2} % after); at most {} deferrals in a \
                 minute (block at {}); final rate {:.2}/s; {} attempts",
                steady * 100.0,
                first_two * 100.0,
                deferred_all * 100.0,
                deferred_first_two * 100.0,
                deferred_steady * 100.0,
                outcome.max_deferrals_per_minute,
                BLOCK_AFTER + 1,
                outcome.final_rate_per_s,
                outcome.attempts.len(),
            );
        }
        assert!(!outcome.blocked, "{name}: blocked");
        assert!(converged <= 120, "{name}: converged after {converged} s");
        assert!(steady >= 0.8, "{name}: {steady}");
        assert!(steady <= 1.01, "{name}: above the hidden rate? {steady}");
        assert!(deferred_all < 0.05, "{name}: {deferred_all}");
        assert!(deferred_steady < 0.05, "{name}: {deferred_steady}");
    }
}

#[test]
fn the_simulation_is_deterministic() {
    let (_, scenario) = SCENARIOS[0];
    let a = run(scenario, Duration::from_secs(120));
    let b = run(scenario, Duration::from_secs(120));
    assert_eq!(a.attempts, b.attempts);
    assert!(!a.attempts.is_empty());
}

#[test]
fn without_the_throttle_the_isp_blocks() {
    // The same ISP against a sender that ignores deferrals: the block condition is real.
    let mut isp = Isp::new(5.0, START);
    let mut now = START;
    while !isp.blocked && now < START + 10 * MINUTE {
        isp.receive(now);
        now += 100; // 10/s, twice the hidden rate
    }
    assert!(isp.blocked);
    assert!(
        now < START + MINUTE,
        "blocked within a minute: {}",
        now - START
    );
    let classifier = Classifier::builtin();
    let (code, enhanced, text) = isp.receive(now);
    let class = classifier.classify(&Reply::new(code, Some(enhanced), text), Some("gmail"));
    assert_eq!(class.class, Class::ReputationBlock);
}
