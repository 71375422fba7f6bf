//! Reputation in practice: a simulated ISP with a hidden rate limit (Gmail-style 421 4.7.28,
//! then a 550 5.7.1 block for a sender that keeps pushing), a pool of two sources with one
//! warming up, and suppression after a hard bounce.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use benches::dns::Records;
use benches::sink::{BlockRule, GreetingRefusal, RateLimit, ReplySpec, Rule, SinkConfig};
use queue::Spool;

use crate::world::{World, events};

const WAIT: Duration = Duration::from_secs(30);

/// Injects `n` messages to `recipient_domain` over `clients` connections, as fast as the MTA
/// accepts them.
async fn inject(world: &World, n: usize, clients: usize, recipient_domain: &str, headers: &str) {
    let per_client = n / clients;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = world.client().await;
        let domain = recipient_domain.to_owned();
        let headers = headers.to_owned();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_client {
                let body = format!("{headers}Subject: m{c}-{i}\r\n\r\nx\r\n");
                let (code, text) = client
                    .send_message(
                        "bulk@sender.test",
                        &[&format!("r{c}x{i}@{domain}")],
                        body.as_bytes(),
                    )
                    .await;
                assert_eq!(code, 250, "{text}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Warmup days are UTC calendar days: a test that counts one day's allowance must not
/// cross midnight. When fewer than `needed` remain of today, this waits for tomorrow.
async fn clear_of_midnight(needed: Duration) {
    const DAY: u64 = 86_400;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let left = Duration::from_secs(DAY - now.as_secs() % DAY);
    if left < needed {
        eprintln!("waiting {left:?} for 00:00 UTC: the test counts one warmup day");
        tokio::time::sleep(left + Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_converges_to_a_hidden_rate_without_being_blocked() {
    const HIDDEN: f64 = 10.0; // messages per second the ISP tolerates
    const RUN: Duration = Duration::from_secs(40);
    let mut r = Records::new();
    r.mx("gmail.test", 10, "mx.gmail.test")
        .a("mx.gmail.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let isp = Arc::new(
        world
            .sink(
                2,
                SinkConfig {
                    rate_limit: Some(RateLimit::per_second(HIDDEN)),
                    block: Some(BlockRule::after(30, Duration::from_secs(300))),
                    record_limit: 10_000,
                    ..Default::default()
                },
            )
            .await,
    );
    // The operator's starting limit is three times what the ISP tolerates. Two sources in
    // the pool, one of them warming up with 40 messages allowed today.
    clear_of_midnight(RUN + 2 * WAIT).await;
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let config = format!(
        "[[provider]]\nname = \"gmail-sim\"\nmx_suffixes = [\".gmail.test\"]\nmax_message_rate = \"1800/min\"\nmax_connections = 3\n\
         [[source]]\nname = \"warm\"\naddress = \"127.0.0.10\"\nehlo = \"warm.mta.test\"\n\
         [[source]]\nname = \"new\"\naddress = \"127.0.0.11\"\nehlo = \"new.mta.test\"\nwarmup = \"gentle\"\nwarmup_start = \"{}\"\n\
         [[pool]]\nname = \"default\"\nsources = [\"warm\", \"new\"]\noverflow = \"spill\"\n\
         [warmup.gentle]\ndaily = [40, 80]\n",
        &today[..10]
    );
    world.start(&config, "").await;
    let started = Instant::now();
    inject(&world, 800, 4, "gmail.test", "").await;
    // Sample the ISP's counters every second, for RUN and at least 30 samples after the
    // injection (however long it took: 800 messages are 80 s of the hidden rate, so the
    // backlog lasts beyond the run).
    let mut samples = Vec::new();
    while started.elapsed() < RUN || samples.len() < 31 {
        let c = isp.counters();
        samples.push((
            started.elapsed(),
            c.messages_accepted,
            c.throttled,
            c.blocked,
        ));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let last = isp.counters();
    let attempts = last.messages_accepted + last.throttled + last.blocked;
    let deferred_share = last.throttled as f64 / attempts.max(1) as f64;
    // The delivered rate once converged: the last 20 seconds.
    let (t0, a0, _, _) = samples[samples.len() - 21];
    let (t1, a1, _, _) = samples[samples.len() - 1];
    let converged_rate = (a1 - a0) as f64 / (t1 - t0).as_secs_f64();
    // Time to converge: the first second from which every 10-second window delivers >= 80%.
    let converge_at = samples
        .windows(11)
        .find(|w| (w[10].1 - w[0].1) as f64 / (w[10].0 - w[0].0).as_secs_f64() >= 0.8 * HIDDEN)
        .map(|w| w[0].0);
    eprintln!(
        "hidden {HIDDEN}/s: converged rate {converged_rate:.2}/s ({:.0}%), converged after {converge_at:?}, \
         attempts {attempts}, deferred {} ({:.1}%), blocked {}",
        100.0 * converged_rate / HIDDEN,
        last.throttled,
        100.0 * deferred_share,
        last.blocked
    );
    let from_new = isp
        .messages()
        .iter()
        .filter(|m| m.client.ip() == IpAddr::from([127, 0, 0, 11]))
        .count();
    eprintln!("the warming source sent {from_new} of its 40 allowed today");
    assert!(
        from_new <= 40,
        "the warming source exceeded its allowance: {from_new}"
    );
    assert_eq!(last.blocked, 0, "the ISP blocked us");
    assert!(
        converged_rate >= 0.8 * HIDDEN,
        "delivered only {converged_rate:.2}/s of {HIDDEN}/s"
    );
    assert!(
        deferred_share < 0.05,
        "{:.1}% of attempts deferred",
        100.0 * deferred_share
    );
    assert!(
        converge_at.is_some(),
        "no 10-second window delivered 80% of the hidden rate"
    );
    let log = world.log();
    assert!(
        log.iter().any(|r| r["class"] == "rate_limited"),
        "deferrals are classified"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warming_source_never_exceeds_its_allowance_and_the_pool_spills() {
    let mut r = Records::new();
    r.mx("isp.test", 10, "mx.isp.test")
        .a("mx.isp.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let sink = world
        .sink(
            2,
            SinkConfig {
                record_limit: 10_000,
                ..Default::default()
            },
        )
        .await;
    clear_of_midnight(2 * WAIT).await;
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let egress = format!(
        "[[source]]\nname = \"ip-a\"\naddress = \"127.0.0.10\"\nehlo = \"a.mta.test\"\n\
         [[source]]\nname = \"ip-b\"\naddress = \"127.0.0.11\"\nehlo = \"b.mta.test\"\nwarmup = \"tiny\"\nwarmup_start = \"{}\"\n\
         [[pool]]\nname = \"default\"\nsources = [\"ip-a\"]\n\
         [[pool]]\nname = \"bulk\"\nsources = [\"ip-a\", \"ip-b\"]\noverflow = \"spill\"\n\
         [[tenant]]\nname = \"acme\"\npool = \"bulk\"\n\
         [warmup.tiny]\ndaily = [10, 20]\n",
        &today[..10]
    );
    world.start(&egress, "").await;
    inject(&world, 100, 4, "isp.test", "X-MTA-Tenant: acme\r\n").await;
    let got = sink.wait_for_messages(100, WAIT).await.unwrap();
    let from = |ip: [u8; 4]| {
        got.iter()
            .filter(|m| m.client.ip() == IpAddr::from(ip))
            .count()
    };
    let (a, b) = (from([127, 0, 0, 10]), from([127, 0, 0, 11]));
    eprintln!("ip-a sent {a}, ip-b (warming, 10 today) sent {b}");
    assert!(
        b <= 10,
        "the warming source sent {b} messages, over its allowance of 10"
    );
    assert!(b >= 1, "the warming source was never used");
    assert_eq!(
        a + b,
        100,
        "every message left from one of the pool's sources"
    );
    assert!(
        got.iter()
            .filter(|m| m.client.ip() == IpAddr::from([127, 0, 0, 11]))
            .all(|m| m.helo == "b.mta.test")
    );
    let pools = world.running().admin.clone();
    let view = mta_core::admin::AdminBackend::pools(&*pools).await.unwrap();
    let ip_b = view
        .sources
        .iter()
        .find(|s| s.name == "ip-b")
        .expect("ip-b in the pools view");
    assert_eq!(ip_b.warmup.as_ref().map(|w| w.day), Some(1), "{view:?}");
    assert_eq!(ip_b.pool.as_deref(), Some("bulk"), "{view:?}");
    let ip_a = view.sources.iter().find(|s| s.name == "ip-a").unwrap();
    assert_eq!(ip_a.pool.as_deref(), Some("default, bulk"), "{view:?}");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hard_bounce_suppresses_the_address_for_its_tenant() {
    let mut r = Records::new();
    r.mx("isp.test", 10, "mx.isp.test")
        .a("mx.isp.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let sink = world
        .sink(
            2,
            SinkConfig {
                rules: vec![Rule::bounce_local_parts(["gone"])],
                ..Default::default()
            },
        )
        .await;
    world.start("", "bounces = false").await;
    let body = "X-MTA-Tenant: acme\r\nSubject: hi\r\n\r\nx\r\n";
    world
        .send("bulk@sender.test", &["gone@isp.test"], body)
        .await;
    let log = world
        .wait_log("bounce", |r| {
            r["type"] == "Bounce" && r["recipient"] == "gone@isp.test"
        })
        .await;
    assert_eq!(
        events(&log, "Bounce", "gone@isp.test")[0]["class"],
        "bad_mailbox"
    );
    let transactions = sink.counters().transactions;
    let second = world
        .send("bulk@sender.test", &["gone@isp.test"], body)
        .await;
    world.wait_removed(second).await;
    let log = world
        .wait_log("suppressed", |r| {
            r["class"] == "suppressed" && r["recipient"] == "gone@isp.test"
        })
        .await;
    let bounces = events(&log, "Bounce", "gone@isp.test");
    assert_eq!(bounces.len(), 2);
    // The suppressed bounce gives the first bounce's codes again.
    assert_eq!(
        (&bounces[1]["reply_code"], &bounces[1]["enhanced_code"]),
        (&serde_json::json!(550), &serde_json::json!("5.1.1")),
        "{:#?}",
        bounces[1]
    );
    let suppressions = crate::admin::ctl_json(&world, &["suppressions"]).await;
    let entry = &suppressions["entries"][0];
    assert_eq!(
        (
            &entry["address"],
            &entry["tenant"],
            &entry["origin"],
            &entry["reason"]
        ),
        (
            &serde_json::json!("gone@isp.test"),
            &serde_json::json!("acme"),
            &serde_json::json!("bounce"),
            &serde_json::json!("550 5.1.1")
        ),
        "{suppressions}"
    );
    assert_eq!(
        sink.counters().transactions,
        transactions,
        "a suppressed recipient is not attempted"
    );
    // Another tenant may still send to it.
    world
        .send(
            "other@sender.test",
            &["gone@isp.test"],
            "X-MTA-Tenant: other\r\n\r\nx\r\n",
        )
        .await;
    let deadline = Instant::now() + WAIT;
    while sink.counters().transactions == transactions {
        assert!(
            Instant::now() < deadline,
            "the other tenant's message was not attempted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    world.stop().await;
}

/// A 5xx block of the sending IP is the IP's problem, not the recipient's: the recipient is
/// retried after the suspension the block caused, and delivered, never bounced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_ip_block_is_retried_not_bounced() {
    let mut r = Records::new();
    r.mx("isp.test", 10, "mx.isp.test")
        .a("mx.isp.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let sink = world
        .sink(
            2,
            SinkConfig {
                rules: vec![
                    Rule::defer_first_attempts(1).with_reply(
                        ReplySpec::parse(
                            "550 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org",
                        )
                        .unwrap(),
                    ),
                ],
                ..Default::default()
            },
        )
        .await;
    world
        .start(
            "[reputation]\nsuspend_initial = \"1s\"\nsuspend_max = \"2s\"\n",
            "bounces = false",
        )
        .await;
    let id = world
        .send(
            "bulk@sender.test",
            &["someone@isp.test"],
            "Subject: blocked\r\n\r\nx\r\n",
        )
        .await;
    if sink.wait_for_messages(1, WAIT).await.is_err() {
        panic!(
            "not delivered after the block: {:#?} {:?}",
            world.log(),
            sink.counters()
        );
    }
    world.wait_removed(id).await;
    let log = world
        .wait_log("the delivery", |r| {
            r["type"] == "Delivery" && r["recipient"] == "someone@isp.test"
        })
        .await;
    let deferred = events(&log, "TransientFailure", "someone@isp.test");
    assert_eq!(deferred[0]["reply_code"], 550, "{log:#?}");
    assert!(
        ["reputation_block", "blocklisted"].contains(&deferred[0]["class"].as_str().unwrap()),
        "{log:#?}"
    );
    assert!(
        events(&log, "Bounce", "someone@isp.test").is_empty(),
        "{log:#?}"
    );
    world.stop().await;
}

/// A block at the greeting (before any recipient is named) is the IP's problem too: the
/// message is deferred, not bounced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_at_the_greeting_is_deferred_not_bounced() {
    let mut r = Records::new();
    r.mx("isp.test", 10, "mx.isp.test")
        .a("mx.isp.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let _sink = world
        .sink(
            2,
            SinkConfig {
                greeting_refusal: Some(GreetingRefusal {
                    fraction: 1.0,
                    reply: ReplySpec::parse(
                        "554 5.7.1 Service unavailable; Client host [127.0.0.1] blocked using zen.spamhaus.org",
                    )
                    .unwrap(),
                }),
                ..Default::default()
            },
        )
        .await;
    world.start("", "bounces = false").await;
    let id = world
        .send(
            "bulk@sender.test",
            &["someone@isp.test"],
            "Subject: blocked\r\n\r\nx\r\n",
        )
        .await;
    let log = world
        .wait_log("the deferral", |r| {
            r["type"] == "TransientFailure" && r["recipient"] == "someone@isp.test"
        })
        .await;
    let deferred = events(&log, "TransientFailure", "someone@isp.test");
    assert_eq!(deferred[0]["reply_code"], 554, "{log:#?}");
    assert_eq!(deferred[0]["class"], "blocklisted", "{log:#?}");
    assert!(
        events(&log, "Bounce", "someone@isp.test").is_empty(),
        "{log:#?}"
    );
    assert!(
        world.running().spool.envelope(id).is_ok(),
        "still queued for a retry"
    );
    world.stop().await;
}

/// Sites that match no provider rule are throttled one by one but share one warmup
/// allowance (provider `other`): a warming source does not get a full day's allowance for
/// every small domain it sends to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_without_a_provider_rule_share_one_warmup_allowance() {
    let mut r = Records::new();
    r.mx("one.test", 10, "mx.one.test")
        .a("mx.one.test", Ipv4Addr::new(127, 0, 0, 2))
        .mx("two.test", 10, "mx.two.test")
        .a("mx.two.test", Ipv4Addr::new(127, 0, 0, 3));
    let mut world = World::new(r).await;
    let one = world.sink(2, SinkConfig::default()).await;
    let two = world.sink(3, SinkConfig::default()).await;
    clear_of_midnight(2 * WAIT).await;
    let today = humantime::format_rfc3339(std::time::SystemTime::now()).to_string();
    let egress = format!(
        "[[source]]\nname = \"warm\"\naddress = \"127.0.0.10\"\nehlo = \"a.mta.test\"\n\
         [[source]]\nname = \"new\"\naddress = \"127.0.0.11\"\nehlo = \"b.mta.test\"\nwarmup = \"tiny\"\nwarmup_start = \"{}\"\n\
         [[pool]]\nname = \"default\"\nsources = [\"warm\", \"new\"]\noverflow = \"spill\"\n\
         [warmup.tiny]\ndaily = [10, 20]\nburst_minutes = 1440\n",
        &today[..10]
    );
    world.start(&egress, "").await;
    inject(&world, 40, 4, "one.test", "").await;
    inject(&world, 40, 4, "two.test", "").await;
    let mut got = one.wait_for_messages(40, WAIT).await.unwrap();
    got.extend(two.wait_for_messages(40, WAIT).await.unwrap());
    let from_new = got
        .iter()
        .filter(|m| m.client.ip() == IpAddr::from([127, 0, 0, 11]))
        .count();
    eprintln!("the warming source sent {from_new} of 80 (10 allowed today, for both sites)");
    assert!(
        from_new <= 10,
        "the warming source sent {from_new}: an allowance per site, not one for both"
    );
    assert!(from_new >= 1, "the warming source was never used");
    world.stop().await;
}
