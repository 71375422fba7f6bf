//! Delivery end to end: MX resolution from a real DNS server, SMTP sinks as MX hosts, TLS,
//! retries, bounces as DSNs, expiry, null MX, connection reuse and limits.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use benches::dns::Records;
use benches::sink::{ReplySpec, Rule, SinkConfig};
use mta_core::admin::AdminBackend;
use queue::Spool;
use smtp_proto::Extensions;

use crate::world::{World, events};

const WAIT: Duration = Duration::from_secs(20);

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn message(subject: &str) -> String {
    format!("From: sender@sender.test\r\nTo: someone\r\nSubject: {subject}\r\n\r\nHello.\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_per_domain_in_mx_preference_order() {
    let mut r = Records::new();
    r.mx("a.test", 10, "mx1.a.test")
        .mx("a.test", 20, "mx2.a.test")
        .a("mx1.a.test", ip(2))
        .a("mx2.a.test", ip(3))
        .mx("b.test", 10, "mx.b.test")
        .a("mx.b.test", ip(3));
    let mut world = World::new(r).await;
    let primary = world.sink(2, SinkConfig::default()).await;
    let other = world.sink(3, SinkConfig::default()).await;
    world.start("", "").await;
    let id = world
        .send(
            "sender@sender.test",
            &["u1@a.test", "v@b.test", "u2@a.test"],
            &message("two domains"),
        )
        .await;
    let at_primary = primary.wait_for_messages(1, WAIT).await.unwrap();
    let at_other = other.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(at_primary[0].rcpt_to, ["u1@a.test", "u2@a.test"]);
    assert_eq!(at_other[0].rcpt_to, ["v@b.test"]);
    assert_eq!(at_primary[0].mail_from, "sender@sender.test");
    let body = String::from_utf8_lossy(&at_primary[0].body);
    assert!(
        body.contains("Subject: two domains\r\n") && body.starts_with("Received: "),
        "{body}"
    );
    world.wait_removed(id).await;
    // The log is written in batches: each record is waited for, not assumed from another.
    world
        .wait_log("delivery of v", |r| {
            r["type"] == "Delivery" && r["recipient"] == "v@b.test"
        })
        .await;
    let log = world
        .wait_log("delivery of u1", |r| {
            r["type"] == "Delivery" && r["recipient"] == "u1@a.test"
        })
        .await;
    let delivery = events(&log, "Delivery", "u1@a.test")[0];
    assert_eq!(delivery["mx_host"], "mx1.a.test");
    assert_eq!(delivery["mx_ip"], "127.0.0.2");
    assert_eq!(delivery["reply_code"], 250);
    assert!(
        log.iter()
            .any(|r| r["type"] == "Reception" && r["message_id"] == id.to_string())
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_to_the_next_mx_when_the_first_refuses_connections() {
    let mut r = Records::new();
    r.mx("a.test", 10, "dead.a.test")
        .mx("a.test", 20, "live.a.test")
        .a("dead.a.test", ip(9))
        .a("live.a.test", ip(2));
    let mut world = World::new(r).await;
    let live = world.sink(2, SinkConfig::default()).await;
    world.start("", "").await;
    world
        .send("sender@sender.test", &["u@a.test"], &message("failover"))
        .await;
    live.wait_for_messages(1, WAIT).await.unwrap();
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_after_a_4xx_and_then_delivers() {
    let mut r = Records::new();
    r.mx("a.test", 10, "mx.a.test").a("mx.a.test", ip(2));
    let mut world = World::new(r).await;
    let sink = world
        .sink(
            2,
            SinkConfig {
                rules: vec![Rule::defer_first_attempts(1)],
                ..Default::default()
            },
        )
        .await;
    world.start("", "").await;
    let id = world
        .send("sender@sender.test", &["u@a.test"], &message("retry"))
        .await;
    sink.wait_for_messages(1, WAIT).await.unwrap();
    world.wait_removed(id).await;
    let log = world
        .wait_log("delivery", |r| r["type"] == "Delivery")
        .await;
    // The sink deferred exactly once. (A loaded machine may add a failed attempt of its own,
    // a DNS or connect timeout: the counts below allow for it.)
    assert_eq!(sink.counters().recipients_deferred, 1);
    let transient = events(&log, "TransientFailure", "u@a.test");
    assert!(!transient.is_empty(), "{log:#?}");
    assert_eq!(transient[0]["attempt"], 1);
    assert!(
        transient
            .iter()
            .any(|t| t["reply_code"].as_u64().unwrap() / 100 == 4),
        "{log:#?}"
    );
    assert_eq!(
        events(&log, "Delivery", "u@a.test")[0]["attempt"],
        transient.len() as u64 + 1
    );
    world.stop().await;
}

/// DNS for `a.test` (MX 127.0.0.2) and `sender.test` (MX 127.0.0.3, where DSNs go).
fn isp_and_sender_records() -> Records {
    let mut r = Records::new();
    r.mx("a.test", 10, "mx.a.test")
        .a("mx.a.test", ip(2))
        .mx("sender.test", 10, "mx.sender.test")
        .a("mx.sender.test", ip(3));
    r
}

/// The MX of `a.test`: refuses `nouser@` with 550 5.1.1, accepts the rest.
async fn nouser_bouncing_isp(world: &World) -> benches::sink::Sink {
    world
        .sink(
            2,
            SinkConfig {
                rules: vec![Rule::bounce_local_parts(["nouser"])],
                ..Default::default()
            },
        )
        .await
}

/// The MX of `a.test` as [`nouser_bouncing_isp`], slow to answer (so an attempt is in
/// flight long enough to break the spool under it), with `rules` added.
async fn slow_isp(world: &World, mut rules: Vec<Rule>) -> benches::sink::Sink {
    rules.push(Rule::bounce_local_parts(["nouser"]));
    world
        .sink(
            2,
            SinkConfig {
                rules,
                command_delay: Duration::from_millis(300),
                ..Default::default()
            },
        )
        .await
}

/// Waits (bounded) until `sink` has a transaction from the MTA (MAIL accepted, the
/// recipients still to be answered), then breaks the spool under it: a commit fails, and
/// every later write is refused (new mail gets 451 at MAIL).
async fn break_spool_during_an_attempt(world: &World, sink: &benches::sink::Sink) {
    let deadline = std::time::Instant::now() + WAIT;
    while sink.counters().transactions == 0 {
        assert!(std::time::Instant::now() < deadline, "no attempt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_dir_all(world.dir.path().join("spool").join("blobs")).unwrap();
    // A commit now (a flush syncs like any commit) fails: the attempt's outcome comes after.
    let flushed = world.running().spool.flush().await;
    assert!(flushed.is_err(), "{flushed:?}");
    // New mail is refused from MAIL on, before its data is sent.
    let mut c = world.client().await;
    let text = c.cmd("MAIL FROM:<sender@sender.test>", 451).await;
    assert!(text.contains("4.3.0"), "{text}");
}

/// Parses a DSN with Python's email package (an independent parser) and returns its
/// per-recipient fields as JSON.
fn parse_dsn(message: &[u8]) -> serde_json::Value {
    let script = r#"
import email, json, sys
from email import policy
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)
out = {"content_type": msg.get_content_type(), "report_type": msg.get_param("report-type"),
       "auto_submitted": msg["Auto-Submitted"], "to": msg["To"], "parts": [], "recipients": []}
for part in msg.walk():
    out["parts"].append(part.get_content_type())
    if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
        blocks = part.get_payload()
        out["per_message"] = dict(blocks[0].items())
        for block in blocks[1:]:
            out["recipients"].append(dict(block.items()))
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(message).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_bounces_with_a_dsn_that_reaches_the_sender_domain() {
    let mut world = World::new(isp_and_sender_records()).await;
    let isp = nouser_bouncing_isp(&world).await;
    let sender_mx = world.sink(3, SinkConfig::default()).await;
    world.start("", "").await;
    let mut c = world.client().await;
    c.cmd("MAIL FROM:<sender@sender.test> ENVID=campaign-7", 250)
        .await;
    c.cmd("RCPT TO:<nouser@a.test> ORCPT=rfc822;nouser@a.test", 250)
        .await;
    c.cmd("RCPT TO:<ok@a.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(message("bounce me")).await;
    c.send(".\r\n").await;
    c.expect(250).await;
    let delivered = isp.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(delivered[0].rcpt_to, ["ok@a.test"]);
    let dsn = sender_mx.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(dsn[0].mail_from, "", "a DSN has the null sender");
    assert_eq!(dsn[0].rcpt_to, ["sender@sender.test"]);
    let parsed = parse_dsn(&dsn[0].body);
    assert_eq!(parsed["content_type"], "multipart/report");
    assert_eq!(parsed["report_type"], "delivery-status");
    assert_eq!(parsed["auto_submitted"], "auto-replied");
    assert_eq!(parsed["per_message"]["Original-Envelope-Id"], "campaign-7");
    let recipients = parsed["recipients"].as_array().unwrap();
    assert_eq!(recipients.len(), 1, "{parsed}");
    assert_eq!(recipients[0]["Final-Recipient"], "rfc822; nouser@a.test");
    assert_eq!(recipients[0]["Action"], "failed");
    assert_eq!(recipients[0]["Status"], "5.1.1");
    assert_eq!(recipients[0]["Remote-MTA"], "dns; mx.a.test");
    assert!(
        recipients[0]["Diagnostic-Code"]
            .as_str()
            .unwrap()
            .starts_with("smtp; 550"),
        "{parsed}"
    );
    assert!(
        parsed["parts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "message/rfc822"),
        "{parsed}"
    );
    let log = world.wait_log("bounce", |r| r["type"] == "Bounce").await;
    assert_eq!(events(&log, "Bounce", "nouser@a.test").len(), 1);
    world.stop().await;
}

/// A bounce is final only together with its DSN: when the spool cannot take the DSN (it
/// refuses every write after a failed commit), the recipient stays pending, and after a
/// restart on working storage it is tried again and bounces with exactly one DSN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_whose_dsn_the_spool_refuses_stays_pending_until_it_can_be_sent() {
    let mut world = World::new(isp_and_sender_records()).await;
    let sender_mx = world.sink(3, SinkConfig::default()).await;
    // Without bounce suppression, so the restarted MTA really tries the recipient again.
    let config = "[suppression]\nenabled = false\n";
    let isp = slow_isp(&world, Vec::new()).await;
    world.start(config, "").await;
    let id = world
        .send(
            "sender@sender.test",
            &["nouser@a.test"],
            &message("bounce me"),
        )
        .await;
    break_spool_during_an_attempt(&world, &isp).await;
    let log = world
        .wait_log("a 550 recorded as a deferral", |r| {
            r["type"] == "TransientFailure"
                && r["recipient"] == "nouser@a.test"
                && r["reply_code"] == 550
        })
        .await;
    assert!(
        events(&log, "Bounce", "nouser@a.test").is_empty(),
        "{log:#?}"
    );
    let still = world.running().spool.envelope(id);
    assert!(still.is_ok(), "{still:?}");
    let health = world.running().admin.health().await;
    assert_eq!(health.status.to_string(), "failing", "{health:?}");

    // Restart on mended storage: the recipient is still pending and now bounces, with a DSN.
    let mta = world.mta.take().unwrap();
    let _ = mta.stop().await; // closing a spool that failed a commit reports the failure
    std::fs::create_dir(world.dir.path().join("spool").join("blobs")).unwrap();
    world.start(config, "").await;
    let dsn = sender_mx.wait_for_messages(1, WAIT).await.unwrap();
    assert_eq!(dsn[0].mail_from, "");
    assert_eq!(dsn[0].rcpt_to, ["sender@sender.test"]);
    let log = world.wait_log("bounce", |r| r["type"] == "Bounce").await;
    assert_eq!(events(&log, "Bounce", "nouser@a.test").len(), 1);
    world.wait_removed(id).await;
    assert!(isp.counters().transactions >= 2, "{:?}", isp.counters());
    // Nothing else is queued (the refused message never got its 250): one DSN in all.
    let mut idle = false;
    for _ in 0..200 {
        let health = world.running().admin.health().await;
        idle = health.components[0].detail.as_deref() == Some("0 jobs queued");
        if idle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(idle, "delivery never went idle");
    assert_eq!(sender_mx.messages().len(), 1);
    world.stop().await;
}

/// An attempt whose outcome the spool refuses is not delivered again: the delivered and
/// bounced recipients wait (as one job) for their record, logged once; only the deferred one
/// is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_the_spool_refuses_is_never_delivered_again() {
    let mut world = World::new(isp_and_sender_records()).await;
    let config = "[suppression]\nenabled = false\n";
    let later = Rule::bounce_local_parts(["later"]).with_reply(ReplySpec::default_defer());
    let isp = slow_isp(&world, vec![later]).await;
    world.start(config, "spool_retry = \"1s\"").await;
    let id = world
        .send(
            "sender@sender.test",
            &["nouser@a.test", "ok@a.test", "later@a.test"],
            &message("mixed"),
        )
        .await;
    // The MX host answers 550 for nouser, 250 for ok, 451 for later, and the spool breaks
    // while it does.
    break_spool_during_an_attempt(&world, &isp).await;
    isp.wait_for_messages(1, WAIT).await.unwrap();
    world
        .wait_log("the 550 logged as a deferral", |r| {
            r["type"] == "TransientFailure"
                && r["recipient"] == "nouser@a.test"
                && r["reply_code"] == 550
        })
        .await;
    // Several spool_retry periods and retry times of `later`: while the spool refuses
    // writes nothing is attempted (it could not be recorded).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let counters = isp.counters();
    assert_eq!(counters.recipients_bounced, 1, "{counters:?}");
    assert_eq!(counters.messages_accepted, 1, "{counters:?}");
    assert_eq!(counters.recipients_deferred, 1, "{counters:?}");
    assert_eq!(counters.connections_total, 1, "{counters:?}");
    let log = world.log();
    let deferred_550 = events(&log, "TransientFailure", "nouser@a.test")
        .into_iter()
        .filter(|r| r["reply_code"] == 550)
        .count();
    assert_eq!(deferred_550, 1, "logged once: {log:#?}");
    assert_eq!(events(&log, "Delivery", "ok@a.test").len(), 1, "{log:#?}");
    assert!(
        events(&log, "Bounce", "nouser@a.test").is_empty(),
        "{log:#?}"
    );
    // In memory: the retry of `later` and the record owed for the other two.
    let health = world.running().admin.health().await;
    assert_eq!(
        health.components[0].detail.as_deref(),
        Some("2 jobs queued"),
        "{health:?}"
    );
    assert!(world.running().spool.envelope(id).is_ok());
    let _ = world.mta.take().unwrap().stop().await;
    world.dns.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_mx_bounces_at_once_and_a_null_sender_never_gets_a_dsn() {
    let mut r = Records::new();
    r.null_mx("nomail.test")
        .mx("sender.test", 10, "mx.sender.test")
        .a("mx.sender.test", ip(3));
    let mut world = World::new(r).await;
    let sender_mx = world.sink(3, SinkConfig::default()).await;
    world.start("", "").await;
    let bounced = world
        .send(
            "sender@sender.test",
            &["u@nomail.test"],
            &message("null mx"),
        )
        .await;
    let dsn = sender_mx.wait_for_messages(1, WAIT).await.unwrap();
    let parsed = parse_dsn(&dsn[0].body);
    assert_eq!(parsed["recipients"][0]["Status"], "5.1.10");
    world.wait_removed(bounced).await;
    // A bounce of a bounce: refused for good, and no DSN goes anywhere.
    let id = world
        .send("", &["u@nomail.test"], &message("null sender"))
        .await;
    world.wait_removed(id).await;
    let log = world
        .wait_log("second bounce", |r| {
            r["type"] == "Bounce" && r["message_id"] == id.to_string()
        })
        .await;
    assert_eq!(events(&log, "Bounce", "u@nomail.test").len(), 2);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sender_mx.messages().len(), 1, "no DSN for a null sender");
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_expire_with_a_dsn() {
    let mut world = World::new(isp_and_sender_records()).await;
    let isp = world
        .sink(
            2,
            SinkConfig {
                rules: vec![Rule::defer_fraction(1.0)],
                ..Default::default()
            },
        )
        .await;
    let sender_mx = world.sink(3, SinkConfig::default()).await;
    world.start("", "max_age = \"3s\"").await;
    let id = world
        .send("sender@sender.test", &["u@a.test"], &message("expire"))
        .await;
    let dsn = sender_mx.wait_for_messages(1, WAIT).await.unwrap();
    let parsed = parse_dsn(&dsn[0].body);
    assert_eq!(parsed["recipients"][0]["Status"], "5.4.7", "{parsed}");
    world.wait_removed(id).await;
    let log = world
        .wait_log("expiration", |r| r["type"] == "Expiration")
        .await;
    assert_eq!(events(&log, "Expiration", "u@a.test").len(), 1, "{log:#?}");
    assert!(isp.counters().recipients_deferred >= 1);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_reused_and_limits_are_held() {
    let mut r = Records::new();
    r.mx("limited.test", 10, "mx.limited.test")
        .a("mx.limited.test", ip(2));
    let mut world = World::new(r).await;
    let sink = world
        .sink(
            2,
            SinkConfig {
                command_delay: Duration::from_millis(20),
                ..Default::default()
            },
        )
        .await;
    let provider = "[[provider]]\nname = \"limited\"\nmx_suffixes = [\".limited.test\"]\nmax_connections = 2\nmax_deliveries_per_connection = 10\n";
    world.start(provider, "").await;
    let mut injectors = Vec::new();
    for i in 0..4 {
        let mut c = world.client().await;
        injectors.push(tokio::spawn(async move {
            for j in 0..10 {
                let (code, text) = c
                    .send_message(
                        "sender@sender.test",
                        &[&format!("u{i}-{j}@limited.test")],
                        b"Subject: x\r\n\r\nx\r\n",
                    )
                    .await;
                assert_eq!(code, 250, "{text}");
            }
        }));
    }
    for injector in injectors {
        injector.await.unwrap();
    }
    sink.wait_for_messages(40, WAIT).await.unwrap();
    let counters = sink.counters();
    assert!(
        counters.connections_max <= 2,
        "max_connections exceeded: {counters:?}"
    );
    assert!(
        counters.connections_total >= 4,
        "max_deliveries_per_connection not held: {counters:?}"
    );
    assert!(
        counters.connections_total <= 20,
        "connections not reused: {counters:?}"
    );
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_used_when_offered_and_required_tls_defers_without_it() {
    let mut r = Records::new();
    r.mx("tls.test", 10, "mx.tls.test")
        .a("mx.tls.test", ip(2))
        .mx("plain.test", 10, "mx.plain.test")
        .a("mx.plain.test", ip(3));
    let mut world = World::new(r).await;
    let tls_sink = world
        .sink(
            2,
            SinkConfig {
                extensions: SinkConfig::default().extensions | Extensions::STARTTLS,
                ..Default::default()
            },
        )
        .await;
    let plain_sink = world.sink(3, SinkConfig::default()).await;
    let provider =
        "[[provider]]\nname = \"plain\"\nmx_suffixes = [\".plain.test\"]\ntls = \"required\"\n";
    world.start(provider, "").await;
    world
        .send("sender@sender.test", &["u@tls.test"], &message("tls"))
        .await;
    let got = tls_sink.wait_for_messages(1, WAIT).await.unwrap();
    assert!(got[0].tls, "delivered without TLS");
    let log = world
        .wait_log("TLS delivery", |r| r["type"] == "Delivery")
        .await;
    assert!(
        events(&log, "Delivery", "u@tls.test")[0]["tls"]
            .as_str()
            .unwrap()
            .starts_with("TLSv1")
    );
    world
        .send(
            "sender@sender.test",
            &["u@plain.test"],
            &message("must not go in plaintext"),
        )
        .await;
    world
        .wait_log("TLS required", |r| {
            r["type"] == "TransientFailure" && r["recipient"] == "u@plain.test"
        })
        .await;
    assert_eq!(plain_sink.counters().messages_accepted, 0);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtputf8_messages_bounce_when_the_server_lacks_it_and_routes_win_over_mx() {
    let mut r = Records::new();
    r.mx("old.test", 10, "mx.old.test")
        .a("mx.old.test", ip(2))
        .mx("routed.test", 10, "mx.routed.test")
        .a("mx.routed.test", ip(9));
    let mut world = World::new(r).await;
    let old = world
        .sink(
            2,
            SinkConfig {
                extensions: SinkConfig::default().extensions - Extensions::SMTPUTF8,
                ..Default::default()
            },
        )
        .await;
    let smarthost = world.sink(4, SinkConfig::default()).await;
    let route = format!(
        "[[route]]\ndomains = [\"*.routed.test\", \"routed.test\"]\nsmarthost = \"127.0.0.4:{}\"\n",
        world.port
    );
    world.start(&route, "bounces = false").await;
    let mut c = world.client().await;
    c.cmd("MAIL FROM:<sender@sender.test> SMTPUTF8", 250).await;
    c.cmd("RCPT TO:<u@old.test>", 250).await;
    c.cmd("DATA", 354).await;
    c.send("Subject: caf\u{e9}\r\n\r\nx\r\n.\r\n").await;
    c.expect(250).await;
    let log = world
        .wait_log("5.6.7 bounce", |r| r["type"] == "Bounce")
        .await;
    assert_eq!(
        events(&log, "Bounce", "u@old.test")[0]["enhanced_code"],
        "5.6.7"
    );
    assert_eq!(old.counters().transactions, 0, "nothing was sent");
    world
        .send(
            "sender@sender.test",
            &["u@routed.test", "v@sub.routed.test"],
            &message("routed"),
        )
        .await;
    let got = smarthost.wait_for_messages(1, WAIT).await.unwrap();
    let mut rcpts = got
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect::<Vec<_>>();
    if rcpts.len() < 2 {
        rcpts.extend(
            smarthost.wait_for_messages(2, WAIT).await.unwrap()[1]
                .rcpt_to
                .clone(),
        );
    }
    rcpts.sort();
    assert_eq!(rcpts, ["u@routed.test", "v@sub.routed.test"]);
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_rate_is_spread_evenly() {
    let mut r = Records::new();
    r.mx("rate.test", 10, "mx.rate.test")
        .a("mx.rate.test", ip(2));
    let mut world = World::new(r).await;
    let sink = world.sink(2, SinkConfig::default()).await;
    let provider = "[[provider]]\nname = \"slow\"\nmx_suffixes = [\".rate.test\"]\nmax_message_rate = \"20/s\"\n";
    world.start(provider, "").await;
    let mut c = world.client().await;
    for i in 0..21 {
        let (code, text) = c
            .send_message(
                "sender@sender.test",
                &[&format!("u{i}@rate.test")],
                b"Subject: r\r\n\r\nx\r\n",
            )
            .await;
        assert_eq!(code, 250, "{text}");
    }
    let got = sink.wait_for_messages(21, WAIT).await.unwrap();
    let mut times: Vec<_> = got.iter().map(|m| m.received_at).collect();
    times.sort();
    let (second, last) = (times[1], times[times.len() - 1]);
    // 21 messages at 20/s: from the second to the last, at least 19 intervals of 50 ms (a
    // lower bound: never faster). Times are taken at the sink, so the first message (which
    // pays for the connection) is left out, and 700 ms leaves room for a slow second one
    // while still telling a paced stream from an unpaced burst (tens of milliseconds).
    assert!(
        last - second >= Duration::from_millis(700),
        "sent too fast: {:?}",
        last - second
    );
    world.stop().await;
}
