//! Source choice (weights, suspension, spill and wait), pools, warmup over simulated days,
//! the admin view and snapshots.

use super::*;
use crate::Rate;
use crate::config::IpwarmConfig;
use crate::throttle::{Limits, Permit};
use crate::time::Clock;
use crate::time::{DAY_MS, ManualClock, day_start_ms};

/// 2026-11-20T00:00:00Z.
const D0: u64 = 20_777 * DAY_MS;
const HOUR: u64 = 3_600_000;

fn config(overflow: &str, plan_a: Option<&str>, plan_b: Option<&str>) -> IpwarmConfig {
    let warmup = |plan: Option<&str>| {
        plan.map(|p| format!("warmup = \"{p}\""))
            .unwrap_or_default()
    };
    IpwarmConfig::from_toml(&format!(
        r#"
        [[source]]
        name = "ip-a"
        address = "192.0.2.10"
        ehlo = "a.mta.example.net"
        weight = 300
        {}
        [[source]]
        name = "ip-b"
        address = "192.0.2.11"
        ehlo = "b.mta.example.net"
        {}
        [[source]]
        name = "ip-c"
        address = "192.0.2.12"
        ehlo = "c.mta.example.net"
        [[pool]]
        name = "default"
        sources = ["ip-a", "ip-b"]
        overflow = "{overflow}"
        [[pool]]
        name = "transactional"
        sources = ["ip-c"]
        [[tenant]]
        name = "acme"
        pool = "transactional"
        [warmup.tiny]
        daily = [4, 8]
        burst_minutes = 1440
        [warmup.slow]
        daily = [24, 48, 96]
        [warmup.slow.provider.gmail]
        daily = [2, 4]
        "#,
        warmup(plan_a),
        warmup(plan_b)
    ))
    .unwrap()
}

fn egress(config: &IpwarmConfig) -> Egress {
    let limits = StartLimits::new(Limits {
        max_connections: 4,
        max_message_rate: Some(Rate {
            count: 6000,
            per: std::time::Duration::from_secs(60),
        }),
    });
    Egress::new(config, limits).unwrap()
}

fn name(decision: &Decision) -> &str {
    match decision {
        Decision::Use(source) => &source.name,
        Decision::WaitUntil { .. } => "wait",
    }
}

#[test]
fn pools_come_from_tenant_then_tag_then_default() {
    let e = egress(&config("wait", None, None));
    let table = [
        (Some("acme"), None, "transactional"),
        (Some("acme"), Some("default"), "transactional"),
        (Some("other"), Some("transactional"), "transactional"),
        (None, Some("transactional"), "transactional"),
        (None, Some("no-such-pool"), "default"),
        (Some("other"), None, "default"),
        (None, None, "default"),
    ];
    for (tenant, tag, pool) in table {
        assert_eq!(
            e.pool_name(e.pool_for(tenant, tag)),
            pool,
            "{tenant:?} {tag:?}"
        );
    }
    assert_eq!(
        e.pool("transactional"),
        Some(e.pool_for(Some("acme"), None))
    );
    assert_eq!(e.pool("nope"), None);
    assert_eq!(
        e.source("ip-b").unwrap().ehlo.as_deref(),
        Some("b.mta.example.net")
    );
    assert_eq!(e.sources().count(), 3);
}

#[test]
fn without_pools_mail_leaves_from_the_builtin_default_source() {
    let mut e = egress(&IpwarmConfig::default());
    let pool = e.pool_for(Some("acme"), Some("bulk"));
    assert_eq!(e.pool_name(pool), "default");
    let Decision::Use(source) = e.choose_source(pool, "gmail", D0) else {
        panic!("no source");
    };
    assert_eq!(&*source.name, "default");
    assert_eq!((source.address, source.ehlo.as_deref()), (None, None));
    assert_eq!(e.permit("default", "gmail", D0), Permit::Send);
}

#[test]
fn sources_are_chosen_by_weight_smoothly() {
    let mut e = egress(&config("wait", None, None));
    let pool = e.pool_for(None, None);
    let picks: Vec<String> = (0..8)
        .map(|i| name(&e.choose_source(pool, "gmail", D0 + i)).to_owned())
        .collect();
    // Weights 300:100, interleaved (not a a a b).
    assert_eq!(
        picks,
        [
            "ip-a", "ip-a", "ip-b", "ip-a", "ip-a", "ip-a", "ip-b", "ip-a"
        ]
    );
    // Over many choices the shares are exact.
    let mut counts = HashMap::new();
    for i in 0..4000 {
        *counts
            .entry(name(&e.choose_source(pool, "yahoo", D0 + i)).to_owned())
            .or_insert(0) += 1;
    }
    assert_eq!((counts["ip-a"], counts["ip-b"]), (3000, 1000));
}

#[test]
fn suspended_sources_are_skipped() {
    let mut e = egress(&config("wait", None, None));
    let pool = e.pool_for(None, None);
    e.record("ip-a", "gmail", Class::ReputationBlock, D0);
    for i in 0..10 {
        assert_eq!(name(&e.choose_source(pool, "gmail", D0 + i)), "ip-b");
    }
    // Another provider still uses both.
    let yahoo: Vec<String> = (0..4)
        .map(|i| name(&e.choose_source(pool, "yahoo", D0 + i)).to_owned())
        .collect();
    assert!(yahoo.contains(&"ip-a".to_owned()));
    // Both suspended: wait for the first to end.
    e.record("ip-b", "gmail", Class::Blocklisted, D0 + 10 * 60_000);
    assert_eq!(
        e.choose_source(pool, "gmail", D0 + 20 * 60_000),
        Decision::WaitUntil {
            until: D0 + HOUR,
            reason: WaitReason::Suspended
        }
    );
    // ip-a's suspension ends: it is chosen for its probe; while the probe is out it is
    // skipped again.
    assert_eq!(name(&e.choose_source(pool, "gmail", D0 + HOUR)), "ip-a");
    assert_eq!(e.permit("ip-a", "gmail", D0 + HOUR), Permit::Send);
    assert_eq!(
        e.choose_source(pool, "gmail", D0 + HOUR + 1),
        Decision::WaitUntil {
            until: D0 + HOUR + 120_000,
            reason: WaitReason::Suspended
        }
    );
    e.record("ip-a", "gmail", Class::Delivered, D0 + HOUR + 2);
    assert_eq!(name(&e.choose_source(pool, "gmail", D0 + HOUR + 3)), "ip-a");
}

#[test]
fn wait_keeps_the_weighted_choice_and_spill_moves_to_a_warm_source() {
    // ip-a warms up (4 today, all at once: burst is the whole day), ip-b is warm.
    let mut wait = egress(&config("wait", Some("tiny"), None));
    let mut spill = egress(&config("spill", Some("tiny"), None));
    let pool = wait.pool_for(None, None);
    let run = |e: &mut Egress| -> Vec<String> {
        (0..12)
            .map(|i| name(&e.choose_source(pool, "gmail", D0 + i)).to_owned())
            .collect()
    };
    // Wait: ip-a's turns after its 4 messages wait for tomorrow.
    assert_eq!(
        run(&mut wait),
        [
            "ip-a", "ip-a", "ip-b", "ip-a", "ip-a", "wait", "ip-b", "wait", "wait", "wait", "ip-b",
            "wait"
        ]
    );
    assert_eq!(
        wait.choose_source(pool, "gmail", D0 + 20),
        Decision::WaitUntil {
            until: D0 + DAY_MS,
            reason: WaitReason::WarmupDailyCap
        }
    );
    // Spill: ip-b takes them.
    assert_eq!(
        run(&mut spill),
        [
            "ip-a", "ip-a", "ip-b", "ip-a", "ip-a", "ip-b", "ip-b", "ip-b", "ip-b", "ip-b", "ip-b",
            "ip-b"
        ]
    );
    let state = spill.warmup_state("ip-a", "gmail", D0 + 20).unwrap();
    assert_eq!(
        (state.day, state.allowance, state.taken, state.sent),
        (1, Some(4), 4, 0)
    );
}

#[test]
fn spill_waits_when_no_source_has_allowance() {
    let mut e = egress(&config("spill", Some("tiny"), Some("tiny")));
    let pool = e.pool_for(None, None);
    let used: Vec<String> = (0..8)
        .map(|i| name(&e.choose_source(pool, "gmail", D0 + i)).to_owned())
        .collect();
    assert!(used.iter().all(|n| n != "wait"), "{used:?}");
    assert_eq!(
        e.choose_source(pool, "gmail", D0 + 9),
        Decision::WaitUntil {
            until: D0 + DAY_MS,
            reason: WaitReason::WarmupDailyCap
        }
    );
    // Released allowance can be chosen again.
    e.release("ip-b", "gmail", D0 + 10);
    assert_eq!(name(&e.choose_source(pool, "gmail", D0 + 11)), "ip-b");
}

#[test]
fn warmup_start_keeps_a_source_out_until_its_date() {
    let mut config = config("spill", Some("tiny"), None);
    config.sources[0].warmup_start = Some("2026-11-22".into());
    let mut e = egress(&config);
    let pool = e.pool_for(None, None);
    for i in 0..5 {
        assert_eq!(name(&e.choose_source(pool, "gmail", D0 + i)), "ip-b");
    }
    let mut wait_config = config.clone();
    wait_config.pools[0].overflow = Overflow::Wait;
    let mut e = egress(&wait_config);
    assert_eq!(
        e.choose_source(pool, "gmail", D0),
        Decision::WaitUntil {
            until: D0 + 2 * DAY_MS,
            reason: WaitReason::WarmupNotStarted
        }
    );
    assert_eq!(
        name(&e.choose_source(pool, "gmail", D0 + 2 * DAY_MS)),
        "ip-a"
    );
    assert_eq!(
        e.warmup_state("ip-a", "gmail", D0)
            .unwrap()
            .start
            .as_deref(),
        Some("2026-11-22")
    );
}

/// Simulates an engine sending, every active day of a schedule, up to 1,000 messages per
/// provider as fast as source choice and throttles allow, with a manual clock; returns the
/// messages sent per day from ip-a to gmail and to yahoo.
fn simulate_days(e: &mut Egress, clock: &ManualClock, days: &[bool]) -> Vec<(u64, u64)> {
    const BUDGET: u64 = 1_000;
    let pool = e.pool_for(None, None);
    let mut sent = Vec::new();
    for (d, &active) in days.iter().enumerate() {
        let day_start = D0 + d as u64 * DAY_MS;
        clock.set(day_start);
        let mut from_a = [0, 0];
        for (i, provider) in ["gmail", "yahoo"].into_iter().enumerate() {
            clock.set(day_start);
            let mut total = 0;
            while active && clock.now_ms() < day_start + DAY_MS && total < BUDGET {
                match e.choose_source(pool, provider, clock.now_ms()) {
                    Decision::Use(source) => {
                        loop {
                            match e.permit(&source.name, provider, clock.now_ms()) {
                                Permit::Send => break,
                                Permit::WaitUntil(t) => clock.set(t),
                                Permit::Suspended { .. } => panic!("suspended"),
                            }
                        }
                        e.record_send(&source.name, provider, clock.now_ms());
                        e.record(&source.name, provider, Class::Delivered, clock.now_ms());
                        total += 1;
                        if &*source.name == "ip-a" {
                            from_a[i] += 1;
                        }
                    }
                    Decision::WaitUntil { until, .. } => clock.set(until),
                }
            }
        }
        sent.push((from_a[0], from_a[1]));
    }
    sent
}

#[test]
fn warmup_days_count_only_days_with_sends() {
    // Only ip-a in the pool, on plan "slow": gmail 2, 4 then warm; others 24, 48, 96.
    let mut config = config("wait", Some("slow"), None);
    config.pools[0].sources = vec!["ip-a".into()];
    let mut e = egress(&config);
    let clock = ManualClock::new(D0);
    // Send, send, pause for two days, send, send. Gmail's own list has 2 days, so its third
    // sending day is warm (no cap: the simulation's budget of 1,000 a day); yahoo uses the
    // plan's list of 3 days.
    let days = [true, true, false, false, true, true];
    let sent = simulate_days(&mut e, &clock, &days);
    assert_eq!(
        sent,
        [
            (2, 24),
            (4, 48),
            (0, 0),
            (0, 0),
            (1_000, 96),
            (1_000, 1_000)
        ],
        "after the pause: plan day 3, not day 5"
    );
    // The admin view shows the day and allowance.
    let state = e.state(clock.now_ms() - 1);
    let yahoo = state.iter().find(|k| k.provider == "yahoo").unwrap();
    let warmup = yahoo.warmup.as_ref().unwrap();
    assert_eq!(
        (
            warmup.plan.as_str(),
            warmup.day,
            warmup.plan_days,
            warmup.allowance
        ),
        ("slow", 4, 3, None)
    );
    assert!(
        yahoo
            .throttle
            .as_ref()
            .is_some_and(|t| t.health == crate::Health::Healthy)
    );
}

#[test]
fn the_day_allowance_is_spread_through_the_day() {
    let mut config = config("wait", Some("slow"), None);
    config.pools[0].sources = vec!["ip-a".into()];
    let mut e = egress(&config);
    let pool = e.pool_for(None, None);
    let mut now = D0;
    let mut times = Vec::new();
    while now < D0 + DAY_MS {
        match e.choose_source(pool, "yahoo", now) {
            Decision::Use(_) => times.push(now),
            Decision::WaitUntil { until, reason } => {
                assert_ne!(reason, WaitReason::Suspended);
                now = until;
            }
        }
    }
    // 24 on day 1: one an hour.
    assert_eq!(times.len(), 24);
    for (h, t) in times.iter().enumerate() {
        assert_eq!(*t, D0 + h as u64 * HOUR);
    }
}

#[test]
fn snapshots_round_trip_warmup_and_throttles() {
    let config = config("spill", Some("slow"), None);
    let mut e = egress(&config);
    let clock = ManualClock::new(D0);
    simulate_days(&mut e, &clock, &[true, true]);
    e.record("ip-b", "gmail", Class::RateLimited, clock.now_ms());
    e.record("ip-a", "yahoo", Class::ReputationBlock, clock.now_ms());
    let bytes = e.snapshot();
    let mut restored = egress(&config);
    let counts = restored.restore(&bytes).unwrap();
    assert_eq!(counts.warmup, 2);
    assert_eq!(counts.throttles, 4);
    let now = clock.now_ms() + 1;
    assert_eq!(restored.state(now), e.state(now));
    assert_eq!(restored.snapshot(), bytes);
    // The restored warmup continues: day 3 for yahoo.
    let w = restored
        .warmup_state("ip-a", "yahoo", D0 + 2 * DAY_MS)
        .unwrap();
    assert_eq!((w.day, w.allowance), (3, Some(96)));
    // A source removed from the configuration is dropped.
    let mut smaller = config.clone();
    smaller.sources.remove(1);
    smaller.pools[0].sources = vec!["ip-a".into()];
    let mut e = egress(&smaller);
    let counts = e.restore(&bytes).unwrap();
    assert_eq!((counts.warmup, counts.throttles), (2, 2));
    assert!(e.state(now).iter().all(|k| k.source == "ip-a"));
}

#[test]
fn the_admin_view_serialises_to_json() {
    let mut e = egress(&config("wait", Some("slow"), None));
    let pool = e.pool_for(None, None);
    e.choose_source(pool, "gmail", D0);
    e.record_send("ip-a", "gmail", D0);
    e.permit("ip-a", "gmail", D0);
    e.record("ip-a", "gmail", Class::Delivered, D0);
    e.record("ip-b", "gmail", Class::Blocklisted, D0);
    let json = serde_json::to_string(&e.state(D0 + 1)).unwrap();
    assert_eq!(
        json,
        concat!(
            r#"[{"source":"ip-a","provider":"gmail","#,
            r#""warmup":{"plan":"slow","day":1,"plan_days":2,"allowance":2,"taken":1,"sent":1,"start":null},"#,
            r#""throttle":{"source":"ip-a","provider":"gmail","health":{"state":"healthy"},"rate_per_min":6000.0,"max_rate_per_min":6000.0,"concurrency":4,"max_concurrency":4,"suspensions_in_a_row":0,"replies":{"delivered":1}}},"#,
            r#"{"source":"ip-b","provider":"gmail","warmup":null,"#,
            r#""throttle":{"source":"ip-b","provider":"gmail","health":{"state":"suspended","until_ms":1795136400000,"reason":{"kind":"reply","class":"blocklisted"}},"rate_per_min":6000.0,"max_rate_per_min":6000.0,"concurrency":0,"max_concurrency":4,"suspensions_in_a_row":1,"replies":{"blocklisted":1}}}]"#
        )
    );
    assert_eq!(day_start_ms(20_777) + HOUR, 1_795_136_400_000);
}
