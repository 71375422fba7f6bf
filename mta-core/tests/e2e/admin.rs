//! The admin API and `mta ctl` against a running MTA: every command, the socket's
//! permissions, `/metrics` through a real Prometheus parser, and suspensions taking effect
//! within a second.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use benches::dns::Records;
use benches::sink::{Rule, SinkConfig};

use crate::common::mta_binary;
use crate::world::World;

const WAIT: Duration = Duration::from_secs(20);

/// Runs `mta ctl --socket S ARGS` off the runtime; returns (success, stdout, stderr).
async fn ctl(world: &World, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(mta_binary());
    command
        .arg("ctl")
        .arg("--socket")
        .arg(world.admin_socket())
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("run mta ctl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Waits (bounded) until `mta ctl queue ARGS` counts `messages`: a job being delivered or
/// having its outcome written is in neither the scheduler nor a ready queue, so the count
/// settles only once every job is back waiting.
async fn wait_queued(world: &World, args: &[&str], messages: u64) -> serde_json::Value {
    let deadline = Instant::now() + WAIT;
    let mut full = vec!["queue"];
    full.extend_from_slice(args);
    loop {
        let queue = ctl_json(world, &full).await;
        if queue["messages"] == messages {
            return queue;
        }
        assert!(
            Instant::now() < deadline,
            "expected {messages} queued messages: {queue}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn ctl_json(world: &World, args: &[&str]) -> serde_json::Value {
    let mut full = vec!["--json"];
    full.extend_from_slice(args);
    let (ok, out, err) = ctl(world, &full).await;
    assert!(ok, "mta ctl {args:?} failed:\n{out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ctl_command_works_against_a_running_mta() {
    let mut r = Records::new();
    r.mx("stuck.test", 10, "mx.stuck.test")
        .a("mx.stuck.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    // Everything is deferred: messages stay queued for the commands to see.
    let sink = world
        .sink(
            2,
            SinkConfig {
                rules: vec![Rule::defer_fraction(1.0)],
                ..Default::default()
            },
        )
        .await;
    world
        .start("", "retry_initial = \"1h\"\nretry_max = \"2h\"")
        .await;
    let mode = std::fs::metadata(world.admin_socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the admin socket must be private");

    let mut ids = Vec::new();
    for i in 0..3 {
        let body = format!("Subject: {i}\r\nX-MTA-Tenant: acme\r\n\r\nx\r\n");
        ids.push(
            world
                .send("sender@sender.test", &[&format!("u{i}@stuck.test")], &body)
                .await,
        );
    }
    for i in 0..3 {
        let recipient = format!("u{i}@stuck.test");
        world
            .wait_log("three deferrals", |r| {
                r["type"] == "TransientFailure" && r["recipient"] == recipient.as_str()
            })
            .await;
    }

    wait_queued(&world, &[], 3).await;
    // stuck.test matches no provider rule: its provider is `other`.
    wait_queued(&world, &["--provider", "other"], 3).await;
    let (ok, table, _) = ctl(&world, &["queue"]).await;
    assert!(
        ok && table.contains("stuck.test") && table.contains("acme"),
        "{table}"
    );

    let message = ctl_json(&world, &["message", &ids[0].to_string()]).await;
    assert_eq!(message["recipients"][0]["address"], "u0@stuck.test");
    assert_eq!(message["recipients"][0]["status"], "pending");
    assert!(
        message["recipients"][0]["last_reply"]
            .as_str()
            .unwrap()
            .starts_with("4"),
        "{message}"
    );

    // Resuming another domain's suspension leaves stuck.test's deferred messages waiting
    // for their retry time.
    let other = ctl_json(
        &world,
        &[
            "suspend",
            "--domain",
            "other.test",
            "--for",
            "1h",
            "--reason",
            "testing",
        ],
    )
    .await;
    let before = sink.counters().transactions;
    let (ok, _, err) = ctl(&world, &["resume", other["id"].as_str().unwrap()]).await;
    assert!(ok, "{err}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sink.counters().transactions,
        before,
        "resuming other.test retried stuck.test's messages"
    );

    let suspension = ctl_json(
        &world,
        &[
            "suspend",
            "--domain",
            "stuck.test",
            "--for",
            "1h",
            "--reason",
            "testing",
        ],
    )
    .await;
    let id = suspension["id"].as_str().unwrap().to_owned();
    let list = ctl_json(&world, &["suspensions"]).await;
    assert!(list.to_string().contains(&id), "{list}");
    let before = sink.counters().transactions;
    let (ok, _, err) = ctl(&world, &["resume", &id]).await;
    assert!(ok, "{err}");
    assert!(
        !ctl_json(&world, &["suspensions"])
            .await
            .to_string()
            .contains(&id)
    );
    // The suspension held none of them (they wait for their retry): resuming it releases none.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        sink.counters().transactions,
        before,
        "resuming stuck.test's suspension cut its retry waits short"
    );

    let transactions = sink.counters().transactions;
    let flushed = ctl_json(&world, &["flush", "--domain", "stuck.test"]).await;
    assert_eq!(flushed["messages"], 3, "{flushed}");
    let deadline = Instant::now() + WAIT;
    while sink.counters().transactions < transactions + 3 {
        assert!(
            Instant::now() < deadline,
            "flushed messages were not retried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each retry is deferred again and goes back to wait (1 h) before the bounce below.
    for i in 0..3 {
        let recipient = format!("u{i}@stuck.test");
        world
            .wait_log("the flushed retries' deferrals", |r| {
                r["type"] == "TransientFailure"
                    && r["recipient"] == recipient.as_str()
                    && r["attempt"] == 2
            })
            .await;
    }
    wait_queued(&world, &[], 3).await;

    let pools = ctl_json(&world, &["pools"]).await;
    assert_eq!(pools["sources"][0]["name"], "default", "{pools}");
    assert_eq!(pools["sources"][0]["pool"], "default", "{pools}");

    let (ok, _, err) = ctl(
        &world,
        &[
            "suppressions",
            "add",
            "blocked@stuck.test",
            "--tenant",
            "acme",
            "--reason",
            "asked to stop",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let suppressions = ctl_json(&world, &["suppressions"]).await;
    let entry = &suppressions["entries"][0];
    assert_eq!(entry["address"], "blocked@stuck.test", "{suppressions}");
    assert_eq!(entry["origin"], "manual", "{suppressions}");
    assert_eq!(entry["reason"], "asked to stop", "{suppressions}");
    // One address suppressed for two tenants is never split across pages.
    for tenant in ["acme", "beta"] {
        let (ok, _, err) = ctl(
            &world,
            &["suppressions", "add", "dup@stuck.test", "--tenant", tenant],
        )
        .await;
        assert!(ok, "{err}");
    }
    let page = ctl_json(
        &world,
        &[
            "suppressions",
            "list",
            "--after",
            "blocked@stuck.test",
            "--limit",
            "1",
        ],
    )
    .await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2, "{page}");
    for tenant in ["acme", "beta"] {
        let (ok, _, err) = ctl(
            &world,
            &[
                "suppressions",
                "remove",
                "dup@stuck.test",
                "--tenant",
                tenant,
            ],
        )
        .await;
        assert!(ok, "{err}");
    }
    // On disk before the answer: a crash right after it keeps the entry.
    let saved = std::fs::read_to_string(world.dir.path().join("spool").join("suppressions.state"))
        .expect("the suppression list is saved");
    assert!(saved.contains("blocked@stuck.test"), "{saved}");
    let (ok, _, err) = ctl(
        &world,
        &[
            "suppressions",
            "remove",
            "blocked@stuck.test",
            "--tenant",
            "acme",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        !ctl_json(&world, &["suppressions"])
            .await
            .to_string()
            .contains("blocked@stuck.test")
    );

    let bounced = ctl_json(&world, &["bounce", "--tenant", "acme", "--no-dsn"]).await;
    assert_eq!(bounced["messages"], 3, "{bounced}");
    for id in &ids {
        world.wait_removed(*id).await;
    }

    let reload = ctl_json(&world, &["reload"]).await;
    assert!(reload["applied"].is_array(), "{reload}");
    let health = ctl_json(&world, &["health"]).await;
    assert_eq!(health["status"], "ok", "{health}");
    let queue_load = health["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "queue_load")
        .unwrap_or_else(|| panic!("no queue_load component: {health}"));
    assert!(
        queue_load["detail"]
            .as_str()
            .unwrap()
            .ends_with("messages loaded at start"),
        "{health}"
    );

    // /metrics through promtool, the Prometheus project's own parser.
    let (ok, metrics, err) = ctl(&world, &["metrics"]).await;
    assert!(ok, "{err}");
    assert!(
        metrics.contains("smtp_messages_received_total"),
        "{metrics}"
    );
    assert!(metrics.contains("delivery_recipients_total"), "{metrics}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; scripts/test installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    let log = world
        .wait_log("the reload's AdminAction", |r| {
            r["type"] == "AdminAction"
                && r["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("reload"))
        })
        .await;
    let actions: Vec<&str> = log
        .iter()
        .filter(|r| r["type"] == "AdminAction")
        .filter_map(|r| r["action"].as_str())
        .collect();
    for action in ["suspend", "resume", "flush", "suppress", "bounce", "reload"] {
        assert!(
            actions.iter().any(|a| a.starts_with(action)),
            "no AdminAction {action}: {actions:?}"
        );
    }
    world.stop().await;
}

/// A domain suspension holds mail before DNS: a domain whose zone is broken (here: no such
/// domain) does not bounce while suspended, and does once resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_domain_whose_dns_fails_is_held_not_bounced() {
    let mut world = World::new(Records::new()).await;
    world.start("", "").await;
    let suspension = ctl_json(
        &world,
        &[
            "suspend",
            "--domain",
            "broken.test",
            "--for",
            "1h",
            "--reason",
            "zone broken",
        ],
    )
    .await;
    let id = world
        .send(
            "sender@sender.test",
            &["u@broken.test"],
            "Subject: wait\r\n\r\nx\r\n",
        )
        .await;
    // Longer than the world's retry interval: any attempt would have happened.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let message = ctl_json(&world, &["message", &id.to_string()]).await;
    assert_eq!(message["recipients"][0]["status"], "pending", "{message}");
    assert!(
        !world.log().iter().any(|r| r["type"] == "Bounce"),
        "{:#?}",
        world.log()
    );
    let (ok, _, err) = ctl(&world, &["resume", suspension["id"].as_str().unwrap()]).await;
    assert!(ok, "{err}");
    let log = world
        .wait_log("the bounce after resume", |r| {
            r["type"] == "Bounce" && r["recipient"] == "u@broken.test"
        })
        .await;
    let bounce = log.iter().find(|r| r["type"] == "Bounce").unwrap();
    assert_eq!(bounce["enhanced_code"], "5.1.2", "{bounce}");
    world.stop().await;
}

/// Opens the spool's storage engine directly (the MTA stopped a moment ago: its lock may
/// still be held briefly).
fn open_storage(dir: &std::path::Path) -> sled::Db {
    let deadline = Instant::now() + WAIT;
    loop {
        match sled::Config::new()
            .path(dir)
            .segment_size(queue::SpoolConfig::default().segment_size)
            .open()
        {
            Ok(db) => return db,
            Err(error) if Instant::now() > deadline => panic!("{error}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_message_is_quarantined_listed_fetched_and_discarded() {
    let mut world = World::new(Records::new()).await;
    world.start("", "").await;
    // Held, so it is still in the spool when the MTA stops.
    let (ok, _, err) = ctl(
        &world,
        &[
            "suspend",
            "--domain",
            "held.test",
            "--for",
            "1h",
            "--reason",
            "testing",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let id = world
        .send(
            "sender@sender.test",
            &["u@held.test"],
            "Subject: quarantine me\r\n\r\nBody.\r\n",
        )
        .await;
    let (ok, table, _) = ctl(&world, &["quarantine"]).await;
    assert!(ok && table == "the quarantine is empty\n", "{table}");
    world.mta.take().unwrap().stop().await.unwrap();

    // Damage its envelope behind the MTA's back.
    {
        let db = open_storage(&world.dir.path().join("spool"));
        let key = [&b"E"[..], &id.to_bytes()].concat();
        let messages = db.open_tree("messages").unwrap();
        eprintln!(
            "keys: {:?}",
            messages
                .iter()
                .keys()
                .map(|k| k.unwrap().to_vec())
                .collect::<Vec<_>>()
        );
        messages
            .insert(key, &b"\x01\x80 not an envelope"[..])
            .unwrap();
        db.flush().unwrap();
    }
    world.start("", "").await;
    world.running().recovered().await;
    let list = ctl_json(&world, &["quarantine"]).await;
    assert_eq!(list["total"], 2, "{list}");
    let kinds: Vec<_> = list["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["id"] == id.to_string().as_str())
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["body", "envelope"], "{list}");
    let (ok, raw, err) = ctl(&world, &["quarantine", &id.to_string()]).await;
    assert!(ok, "{err}");
    assert!(
        raw.contains("Subject: quarantine me\r\n\r\nBody.\r\n"),
        "{raw}"
    );
    let (ok, _, err) = ctl(&world, &["quarantine", "0199ab12cd34ef560000aabbccddee00"]).await;
    assert!(!ok && err.contains("404"), "{err}");
    let discarded = ctl_json(&world, &["quarantine", &id.to_string(), "--discard"]).await;
    assert_eq!(discarded["entries"], 2, "{discarded}");
    let list = ctl_json(&world, &["quarantine"]).await;
    assert_eq!(list["total"], 0, "{list}");
    world
        .wait_log("the discard's AdminAction", |r| {
            r["type"] == "AdminAction"
                && r["action"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("discard quarantined"))
        })
        .await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_provider_gets_nothing_within_a_second_until_resumed() {
    let mut r = Records::new();
    r.mx("isp.test", 10, "mx.isp.test")
        .mx("fresh.test", 10, "mx.isp.test")
        .a("mx.isp.test", Ipv4Addr::new(127, 0, 0, 2));
    let mut world = World::new(r).await;
    let sink = world.sink(2, SinkConfig::default()).await;
    let provider = "[[provider]]\nname = \"isp\"\nmx_suffixes = [\".isp.test\"]\n";
    world.start(provider, "").await;
    world
        .send(
            "sender@sender.test",
            &["first@isp.test"],
            "Subject: 1\r\n\r\nx\r\n",
        )
        .await;
    sink.wait_for_messages(1, WAIT).await.unwrap();

    let (ok, _, err) = ctl(
        &world,
        &[
            "suspend",
            "--provider",
            "isp",
            "--for",
            "1h",
            "--reason",
            "complaints",
        ],
    )
    .await;
    assert!(ok, "{err}");
    for i in 0..5 {
        world
            .send(
                "sender@sender.test",
                &[&format!("held{i}@isp.test")],
                "Subject: held\r\n\r\nx\r\n",
            )
            .await;
    }
    // A domain never routed before is held too, and shows under its provider.
    world
        .send(
            "sender@sender.test",
            &["first@fresh.test"],
            "Subject: held\r\n\r\nx\r\n",
        )
        .await;
    wait_queued(&world, &["--provider", "isp"], 6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "delivered while suspended");

    let list = ctl_json(&world, &["suspensions"]).await;
    let id = list["suspensions"][0]["id"].as_str().unwrap().to_owned();
    let (ok, _, err) = ctl(&world, &["resume", &id]).await;
    assert!(ok, "{err}");
    sink.wait_for_messages(7, WAIT).await.unwrap();
    world.stop().await;
}

#[tokio::test]
async fn ctl_says_clearly_when_the_daemon_is_not_running() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let output = Command::new(mta_binary())
        .args(["ctl", "--socket"])
        .arg(&socket)
        .arg("queue")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("cannot reach the MTA"), "{err}");
}

/// A reload applies what differs from what is in force, not from the boot configuration:
/// changing a route and then changing it back routes by the original again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_changes_against_the_last_reload() {
    let mut world = World::new(Records::new()).await;
    let first = world.sink(3, SinkConfig::default()).await;
    let second = world.sink(4, SinkConfig::default()).await;
    let route = |last: u8| {
        format!(
            "[[route]]\ndomains = [\"routed.test\"]\nsmarthost = \"127.0.0.{last}:{}\"\n",
            world.port
        )
    };
    let (to_first, to_second) = (route(3), route(4));
    world.start_from_file(&to_first, "").await;

    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(reload["applied"], serde_json::json!([]), "{reload}");
    assert_eq!(reload["needs_restart"], serde_json::json!([]), "{reload}");

    world.write_config(&to_second, "");
    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(reload["applied"], serde_json::json!(["route"]), "{reload}");
    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(reload["applied"], serde_json::json!([]), "{reload}");

    // Back to the boot configuration's route: it differs from the one in force.
    world.write_config(&to_first, "");
    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(reload["applied"], serde_json::json!(["route"]), "{reload}");
    world
        .send(
            "sender@sender.test",
            &["u@routed.test"],
            "Subject: routed\r\n\r\nx\r\n",
        )
        .await;
    first
        .wait_for_messages(1, WAIT)
        .await
        .expect("routed by the restored route");
    assert_eq!(second.counters().transactions, 0);

    // Sections that need a restart are reported against the running (boot) configuration,
    // and a live default_shaping change is not one of them.
    world.write_config(&to_first, "default_shaping = false\nmax_age = \"2d\"");
    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(
        reload["applied"],
        serde_json::json!(["provider"]),
        "{reload}"
    );
    assert_eq!(
        reload["needs_restart"],
        serde_json::json!(["delivery"]),
        "{reload}"
    );
    world.write_config(&to_first, "default_shaping = false");
    let reload = ctl_json(&world, &["reload"]).await;
    assert_eq!(reload["applied"], serde_json::json!([]), "{reload}");
    assert_eq!(reload["needs_restart"], serde_json::json!([]), "{reload}");
    world.stop().await;
}
