//! Throttle behaviour: AIMD steps, holdoff, suspensions and probes, the bounce-rate
//! threshold, limits, snapshots.

use super::*;

const T0: u64 = 1_795_000_000_000;
const MIN: u64 = 60_000;
const HOUR: u64 = 3_600_000;

fn limits(per_min: u32, connections: usize) -> Limits {
    Limits {
        max_connections: connections,
        max_message_rate: Some(Rate {
            count: per_min,
            per: Duration::from_secs(60),
        }),
    }
}

fn throttles() -> Throttles {
    Throttles::new(
        ReputationConfig::default(),
        StartLimits::new(limits(600, 8)).with("yahoo", limits(120, 4)),
    )
}

/// Sends and delivers `n` messages as fast as the limiter allows, from `now`; returns the
/// time after the last.
fn deliver(t: &mut Throttles, provider: &str, n: usize, mut now: u64) -> u64 {
    let mut done = 0;
    while done < n {
        match t.permit("ip-a", provider, now) {
            Permit::Send => {
                t.record("ip-a", provider, Class::Delivered, now);
                done += 1;
            }
            Permit::WaitUntil(at) => now = at,
            Permit::Suspended { until, .. } => panic!("suspended until {until}"),
        }
    }
    now
}

#[test]
fn keys_start_at_the_shaping_limits_and_the_rate_is_spread() {
    let mut t = throttles();
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(10.0));
    assert_eq!(t.current_rate("ip-a", "yahoo"), Some(2.0));
    assert_eq!(t.concurrency_limit("ip-a", "yahoo", T0), 4);
    assert_eq!(t.permit("ip-a", "gmail", T0), Permit::Send);
    assert_eq!(t.permit("ip-a", "gmail", T0), Permit::WaitUntil(T0 + 100));
    assert_eq!(
        t.permit("ip-a", "gmail", T0 + 99),
        Permit::WaitUntil(T0 + 100)
    );
    assert_eq!(t.permit("ip-a", "gmail", T0 + 100), Permit::Send);
    // 600 messages take a minute.
    let end = deliver(&mut t, "gmail", 600, T0 + 200);
    assert_eq!(end, T0 + 200 + 599 * 100);
    // Keys are independent.
    assert_eq!(t.permit("ip-b", "gmail", T0), Permit::Send);
    assert_eq!(t.permit("ip-a", "yahoo", T0), Permit::Send);
}

#[test]
fn rate_limited_halves_once_per_round_trip_and_gives_the_retry_time() {
    let mut t = throttles();
    // Four messages in flight.
    for i in 0..4 {
        assert_eq!(t.permit("ip-a", "gmail", T0 + i * 100), Permit::Send);
    }
    let r = t.record("ip-a", "gmail", Class::RateLimited, T0 + 400);
    assert_eq!(r.retry_at, Some(T0 + 400 + MIN), "rate_limited_retry");
    assert_eq!(
        r.change,
        Some(Change::Decreased {
            rate: 5.0,
            concurrency: 4
        })
    );
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(5.0));
    // The three other messages were sent before the decrease: their deferrals do not
    // halve the rate again ...
    for i in 0..3 {
        let r = t.record("ip-a", "gmail", Class::RateLimited, T0 + 500 + i);
        assert_eq!((r.retry_at, r.change), (Some(T0 + 500 + i + MIN), None));
    }
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(5.0));
    // ... the deferral of a message sent after it does.
    assert!(matches!(t.permit("ip-a", "gmail", T0 + 600), Permit::Send));
    t.record("ip-a", "gmail", Class::RateLimited, T0 + 800);
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(2.5));
    assert_eq!(t.concurrency_limit("ip-a", "gmail", T0 + 800), 2);
    // Replies that never come do not block decreases for longer than the holdoff (10 s).
    for i in 0..3 {
        t.permit("ip-a", "gmail", T0 + 2_000 + i * 400);
    }
    t.record("ip-a", "gmail", Class::RateLimited, T0 + 3_000);
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(1.25));
    t.record("ip-a", "gmail", Class::RateLimited, T0 + 3_001);
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(1.25), "in flight");
    t.record("ip-a", "gmail", Class::RateLimited, T0 + 13_000);
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(0.625), "holdoff over");
    // Never below min_rate (6/min) and one connection.
    for i in 2..20 {
        t.record(
            "ip-a",
            "gmail",
            Class::RateLimited,
            T0 + 10_000 + i * 10_000,
        );
    }
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(0.1));
    assert_eq!(t.concurrency_limit("ip-a", "gmail", T0 + 200_000), 1);
    // After a decrease the next message waits one interval (no burst).
    assert_eq!(
        t.permit("ip-a", "gmail", T0 + 200_000),
        Permit::WaitUntil(T0 + 210_000)
    );
    let health = &t.state(T0 + 200_000)[0].health;
    assert_eq!(
        *health,
        Health::Throttled {
            reason: Reason::Reply {
                class: Class::RateLimited
            }
        }
    );
}

#[test]
fn successes_climb_back_fast_then_slowly_up_to_the_ceiling() {
    let mut t = throttles();
    t.record("ip-a", "gmail", Class::RateLimited, T0);
    let mut rates = vec![t.current_rate("ip-a", "gmail").unwrap()];
    let mut now = T0 + 10_000;
    for _ in 0..12 {
        // One increase step: 20 successes and 2 s.
        now = deliver(&mut t, "gmail", 20, now).max(now + 2_000);
        rates.push((t.current_rate("ip-a", "gmail").unwrap() * 1000.0).round() / 1000.0);
    }
    // Fast recovery +25 % to 0.9 × 10, then +5 % to the ceiling of 10.
    assert_eq!(
        rates,
        [
            5.0, 6.25, 7.813, 9.0, 9.45, 9.923, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0
        ]
    );
    // Concurrency: 4 after the decrease, +1 per step up to 8.
    assert_eq!(t.concurrency_limit("ip-a", "gmail", now), 8);
    assert_eq!(t.state(now)[0].health, Health::Healthy);
}

#[test]
fn an_unlimited_provider_is_limited_from_its_measured_rate() {
    let mut t = Throttles::new(
        ReputationConfig::default(),
        StartLimits::new(Limits {
            max_connections: 10,
            max_message_rate: None,
        }),
    );
    assert_eq!(t.current_rate("ip-a", "comcast"), None);
    // 40 messages a second for 10 seconds.
    for i in 0..400 {
        assert_eq!(t.permit("ip-a", "comcast", T0 + i * 25), Permit::Send);
    }
    // Measured over the last 10 s: 40/s; halved.
    t.record("ip-a", "comcast", Class::RateLimited, T0 + 9_999);
    assert_eq!(t.current_rate("ip-a", "comcast"), Some(20.0));
    // It becomes unlimited again once the rate doubled past the trouble rate (80/s).
    let mut now = T0 + 20_000;
    let mut steps = 0;
    while t.current_rate("ip-a", "comcast").is_some() {
        now = deliver(&mut t, "comcast", 20, now).max(now + 2_000);
        steps += 1;
        assert!(steps < 100);
    }
    assert_eq!(t.state(now)[0].health, Health::Healthy);
}

#[test]
fn blocks_suspend_with_doubling_and_a_single_probe() {
    let mut t = throttles();
    let blocked = Reason::Reply {
        class: Class::ReputationBlock,
    };
    let r = t.record("ip-a", "gmail", Class::ReputationBlock, T0);
    assert_eq!(r.retry_at, Some(T0 + HOUR));
    assert_eq!(
        r.change,
        Some(Change::Suspended {
            until: T0 + HOUR,
            level: 1,
            reason: blocked.clone()
        })
    );
    // Suspended: nothing goes; late replies change nothing.
    assert_eq!(
        t.permit("ip-a", "gmail", T0 + 1),
        Permit::Suspended {
            until: T0 + HOUR,
            reason: blocked.clone()
        }
    );
    assert_eq!(t.concurrency_limit("ip-a", "gmail", T0 + 1), 0);
    let late = t.record("ip-a", "gmail", Class::Blocklisted, T0 + 2);
    assert_eq!((late.retry_at, late.change), (Some(T0 + HOUR), None));
    // Other providers and sources are not affected.
    assert_eq!(t.permit("ip-a", "yahoo", T0 + 1), Permit::Send);
    assert_eq!(t.permit("ip-b", "gmail", T0 + 1), Permit::Send);
    // The suspension ends: exactly one probe.
    let end = T0 + HOUR;
    assert_eq!(t.concurrency_limit("ip-a", "gmail", end), 1);
    assert_eq!(t.permit("ip-a", "gmail", end), Permit::Send);
    assert_eq!(
        t.permit("ip-a", "gmail", end + 5),
        Permit::WaitUntil(end + 2 * MIN)
    );
    assert!(matches!(
        t.state(end)[0].health,
        Health::Probing {
            probe_in_flight: true,
            ..
        }
    ));
    // The probe is blocked: suspended again, twice as long.
    let r = t.record("ip-a", "gmail", Class::ReputationBlock, end + 1_000);
    assert_eq!(r.retry_at, Some(end + 1_000 + 2 * HOUR));
    // A probe whose reply never comes: after probe_timeout another one may go.
    let end = end + 1_000 + 2 * HOUR;
    assert_eq!(t.permit("ip-a", "gmail", end), Permit::Send);
    assert_eq!(t.permit("ip-a", "gmail", end + 2 * MIN), Permit::Send);
    // An inconclusive (transient) reply allows another probe at once.
    t.record("ip-a", "gmail", Class::Transient, end + 2 * MIN + 1);
    assert_eq!(t.permit("ip-a", "gmail", end + 2 * MIN + 2), Permit::Send);
    // The probe is delivered: resume at a quarter of the rate before, one connection.
    let r = t.record("ip-a", "gmail", Class::Delivered, end + 3 * MIN);
    assert_eq!(r.change, Some(Change::Resumed { rate: Some(2.5) }));
    assert_eq!(t.concurrency_limit("ip-a", "gmail", end + 3 * MIN), 1);
    assert_eq!(t.state(end + 3 * MIN)[0].suspensions_in_a_row, 2);
    // Repeats double up to the cap (24 h); a day without blocks starts again at 1 h.
    let mut now = end + 4 * MIN;
    let mut lengths = Vec::new();
    for _ in 0..6 {
        let r = t.record("ip-a", "gmail", Class::Blocklisted, now);
        let until = r.retry_at.unwrap();
        lengths.push((until - now) / HOUR);
        assert_eq!(t.permit("ip-a", "gmail", until), Permit::Send, "probe");
        now = until + 1;
    }
    assert_eq!(lengths, [4, 8, 16, 24, 24, 24]);
    t.record("ip-a", "gmail", Class::Delivered, now);
    let r = t.record("ip-a", "gmail", Class::Blocklisted, now + 25 * HOUR);
    assert_eq!(
        r.retry_at,
        Some(now + 26 * HOUR),
        "forgotten after 24 h: 1 h again"
    );
}

#[test]
fn recipient_replies_to_a_probe_count_as_success() {
    for class in [
        Class::BadMailbox,
        Class::MailboxFull,
        Class::ContentSpam,
        Class::Policy,
    ] {
        let mut t = throttles();
        t.record("ip-a", "gmail", Class::ReputationBlock, T0);
        assert_eq!(t.permit("ip-a", "gmail", T0 + HOUR), Permit::Send);
        let r = t.record("ip-a", "gmail", class, T0 + HOUR + 1);
        assert!(matches!(r.change, Some(Change::Resumed { .. })), "{class}");
    }
    // A rate limit on the probe is a failure.
    let mut t = throttles();
    t.record("ip-a", "gmail", Class::ReputationBlock, T0);
    t.permit("ip-a", "gmail", T0 + HOUR);
    let r = t.record("ip-a", "gmail", Class::RateLimited, T0 + HOUR + 1);
    assert!(matches!(r.change, Some(Change::Suspended { level: 2, .. })));
}

#[test]
fn bounce_rate_throttles_then_suspends_the_source() {
    let mut t = throttles();
    t.permit("ip-a", "gmail", T0);
    t.permit("ip-a", "yahoo", T0);
    // 190 good verdicts and 10 bad ones (5.0 %): not above the 5 % threshold.
    for i in 0..190 {
        t.record("ip-a", "gmail", Class::Delivered, T0 + i);
    }
    for i in 0..10 {
        let r = t.record("ip-a", "yahoo", Class::BadMailbox, T0 + 200 + i);
        assert_eq!(r.change, None);
    }
    // One more bad one: 11 / 201 = 5.5 %: every provider of the source slows down.
    let r = t.record("ip-a", "gmail", Class::BadMailbox, T0 + 300);
    let reason = Reason::BounceRate {
        permille: 55,
        verdicts: 201,
    };
    assert_eq!(
        r.change,
        Some(Change::SourceThrottled {
            reason: reason.clone()
        })
    );
    assert_eq!(reason.to_string(), "bounce rate 5.5 % of 201 recipients");
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(5.0));
    assert_eq!(t.current_rate("ip-a", "yahoo"), Some(1.0));
    assert_eq!(
        t.state(T0 + 300)[0].health,
        Health::Throttled {
            reason: reason.clone()
        }
    );
    // Transient and rate-limit replies are not recipient verdicts.
    for i in 0..1000 {
        t.record("ip-a", "gmail", Class::Transient, T0 + 400 + i);
    }
    // The window restarted: 150 good, 50 bad (25 %) → the source is suspended for 1 h.
    for i in 0..150 {
        t.record("ip-a", "gmail", Class::Delivered, T0 + 2_000 + i);
    }
    let mut change = None;
    for i in 0..50 {
        change = t
            .record("ip-a", "yahoo", Class::BadDomain, T0 + 3_000 + i)
            .change
            .or(change);
    }
    let until = T0 + 3_049 + HOUR;
    assert!(
        matches!(change, Some(Change::SourceSuspended { until: u, .. }) if u == until),
        "{change:?}"
    );
    for provider in ["gmail", "yahoo", "anything"] {
        assert!(matches!(
            t.permit("ip-a", provider, T0 + 4_000),
            Permit::Suspended { until: u, reason: Reason::BounceRate { .. } } if u == until
        ));
        assert_eq!(t.concurrency_limit("ip-a", provider, T0 + 4_000), 0);
    }
    assert!(matches!(
        t.state(T0 + 4_000)[0].health,
        Health::Suspended { .. }
    ));
    assert_eq!(t.permit("ip-b", "gmail", T0 + 4_000), Permit::Send);
    // It ends without a probe.
    assert_eq!(t.permit("ip-a", "gmail", until), Permit::Send);
    assert_eq!(t.permit("ip-a", "yahoo", until), Permit::Send);
}

#[test]
fn a_small_sample_does_not_trigger_the_bounce_threshold() {
    let mut t = throttles();
    for i in 0..199 {
        let r = t.record("ip-a", "gmail", Class::BadMailbox, T0 + i);
        assert_eq!(r.change, None, "{i}");
    }
    // Verdicts older than the window (1 h) do not count.
    let r = t.record("ip-a", "gmail", Class::BadMailbox, T0 + 2 * HOUR);
    assert_eq!(r.change, None);
}

#[test]
fn operators_suspend_and_resume() {
    let mut t = throttles();
    t.suspend("ip-a", Some("gmail"), T0 + HOUR, T0);
    assert!(matches!(
        t.permit("ip-a", "gmail", T0),
        Permit::Suspended {
            reason: Reason::Operator,
            ..
        }
    ));
    t.resume("ip-a", Some("gmail"));
    assert_eq!(t.permit("ip-a", "gmail", T0), Permit::Send);
    t.suspend("ip-a", None, T0 + HOUR, T0);
    assert!(matches!(
        t.permit("ip-a", "yahoo", T0),
        Permit::Suspended { .. }
    ));
    t.resume("ip-a", None);
    assert_eq!(t.permit("ip-a", "yahoo", T0), Permit::Send);
}

#[test]
fn provider_names_are_bounded() {
    let config = ReputationConfig {
        max_providers: 3,
        ..ReputationConfig::default()
    };
    let mut t = Throttles::new(config, StartLimits::new(limits(600, 8)));
    for i in 0..100 {
        t.permit("ip-a", &format!("site-{i}"), T0);
    }
    let providers: Vec<String> = t.state(T0).into_iter().map(|s| s.provider).collect();
    assert_eq!(providers, ["other", "site-0", "site-1", "site-2"]);
    // Untracked names read the shared entry.
    t.record("ip-a", "site-50", Class::RateLimited, T0);
    assert_eq!(t.current_rate("ip-a", "site-99"), Some(5.0));
    assert_eq!(t.current_rate("ip-a", "site-1"), Some(10.0));
}

#[test]
fn new_limits_cap_existing_keys() {
    let mut t = throttles();
    t.permit("ip-a", "gmail", T0);
    t.set_limits(StartLimits::new(limits(120, 2)));
    assert_eq!(t.current_rate("ip-a", "gmail"), Some(2.0));
    assert_eq!(t.concurrency_limit("ip-a", "gmail", T0), 2);
}

#[test]
fn snapshots_round_trip() {
    let mut t = throttles();
    t.record("ip-a", "gmail", Class::RateLimited, T0);
    t.record("ip-a", "yahoo", Class::ReputationBlock, T0);
    t.record("ip-b", "gmail", Class::Delivered, T0);
    t.suspend("ip-c", None, T0 + HOUR, T0);
    let bytes = t.snapshot();
    let mut restored = throttles();
    assert_eq!(restored.restore(&bytes).unwrap(), 3);
    assert_eq!(restored.state(T0 + 1), t.state(T0 + 1));
    assert_eq!(restored.snapshot(), bytes, "stable encoding");
    assert!(matches!(
        restored.permit("ip-a", "yahoo", T0 + 1),
        Permit::Suspended { .. }
    ));
    assert!(matches!(
        restored.permit("ip-c", "gmail", T0 + 1),
        Permit::Suspended { .. }
    ));
    assert_eq!(restored.current_rate("ip-a", "gmail"), Some(5.0));
    // Restored under lower limits: capped.
    let mut lower = Throttles::new(ReputationConfig::default(), StartLimits::new(limits(60, 1)));
    lower.restore(&bytes).unwrap();
    assert_eq!(lower.current_rate("ip-a", "gmail"), Some(1.0));
    assert_eq!(lower.concurrency_limit("ip-b", "gmail", T0), 1);
    // Garbage and other versions are refused.
    assert!(matches!(
        restored.restore(b"{\"version\":0,\"state\":{}}"),
        Err(IpwarmError::SnapshotVersion { found: 0, .. })
    ));
    assert!(matches!(
        restored.restore(b"[]"),
        Err(IpwarmError::Snapshot { .. })
    ));
}
