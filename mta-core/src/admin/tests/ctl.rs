//! Every `mta ctl` command against the server: readable output, `--json`, argument errors,
//! the daemon's refusals, and the error when no daemon runs.

use std::path::Path;

use clap::Parser;
use serde_json::Value;

use super::memory::now;
use super::{Harness, TOKEN};
use crate::admin::build_recorder;
use crate::admin::types::{ComponentHealth, Health, HealthStatus, PoolsView, QueueSummary};
use crate::ctl::{CtlArgs, CtlError, execute};

/// `mta` as the lead wires it: `Ctl(CtlArgs)` among the subcommands.
#[derive(Parser)]
#[command(name = "mta")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(clap::Subcommand)]
enum Cmd {
    Ctl(CtlArgs),
}

fn parse(line: &[&str]) -> Result<CtlArgs, clap::Error> {
    let argv = ["mta", "ctl"].iter().chain(line).copied();
    Cli::try_parse_from(argv).map(|cli| match cli.command {
        Cmd::Ctl(args) => args,
    })
}

/// Runs `mta ctl LINE` against `socket`.
async fn ctl_at(socket: &Path, line: &[&str]) -> Result<String, CtlError> {
    let args = parse(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let mut out = Vec::new();
    execute(&args, socket, &mut out).await?;
    Ok(String::from_utf8(out).unwrap())
}

async fn ctl(h: &Harness, line: &[&str]) -> Result<String, CtlError> {
    ctl_at(&h.socket, line).await
}

/// The line of `text` whose words are `words`, or a panic showing the text.
fn has_line(text: &str, words: &[&str]) {
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == words),
        "no line {words:?} in:\n{text}"
    );
}

fn refused(result: Result<String, CtlError>) -> (u16, String) {
    match result {
        Err(CtlError::Refused { status, message }) => (status, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn queue_shows_the_shape() {
    let h = Harness::start().await;
    let out = ctl(&h, &["queue"]).await.unwrap();
    assert!(
        out.starts_with(
            "5 messages, 7 recipients queued (5 deferred), oldest 3d00h, at 2026-03-01T12:00:00Z\n\n"
        ),
        "{out}"
    );
    has_line(
        &out,
        &[
            "PROVIDER", "TOTAL", "DEFERRED", "OLDEST", "<5m", "5m-15m", "15m-1h", "1h-4h",
            "4h-12h", "12h-1d", "1d-2d", ">2d",
        ],
    );
    has_line(
        &out,
        &[
            "gmail", "4", "2", "1h30m", "2", "1", "0", "1", "0", "0", "0", "0",
        ],
    );
    has_line(
        &out,
        &[
            "other", "2", "2", "3d00h", "0", "0", "0", "0", "0", "0", "1", "1",
        ],
    );
    has_line(
        &out,
        &[
            "yahoo", "1", "1", "1d06h", "0", "0", "0", "0", "0", "0", "1", "0",
        ],
    );
    has_line(
        &out,
        &[
            "gmail.com",
            "3",
            "1",
            "1h30m",
            "2",
            "0",
            "0",
            "1",
            "0",
            "0",
            "0",
            "0",
        ],
    );
    has_line(
        &out,
        &[
            "(unassigned)",
            "1",
            "1",
            "3d00h",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "1",
        ],
    );
    has_line(
        &out,
        &[
            "acme", "3", "1", "1h30m", "2", "0", "0", "1", "0", "0", "0", "0",
        ],
    );
    for heading in ["DOMAIN", "SOURCE", "TENANT"] {
        assert!(out.contains(&format!("\n{heading} ")), "{heading}: {out}");
    }

    let out = ctl(&h, &["queue", "--provider", "gmail", "--top", "1"])
        .await
        .unwrap();
    assert!(out.contains("\nfilter: provider=gmail\n"), "{out}");
    assert!(
        out.contains("... 1 more, 1 recipients (use --top)\n"),
        "{out}"
    );

    let out = ctl(&h, &["queue", "--tenant", "nobody"]).await.unwrap();
    assert_eq!(out, "nothing queued matches tenant=nobody\n");

    let out = ctl(&h, &["queue", "--json"]).await.unwrap();
    let summary: QueueSummary = serde_json::from_str(&out).unwrap();
    assert_eq!(summary.total.recipients, 7);
    let (_, text) = refused(ctl(&h, &["queue", "--top", "0"]).await);
    assert_eq!(text, "top must be between 1 and 1000");
    h.stop().await;
}

#[tokio::test]
async fn message_shows_envelope_and_recipients() {
    let h = Harness::start().await;
    let id = h.backend.message_ids()[1].to_string();
    let out = ctl(&h, &["message", &id]).await.unwrap();
    assert!(out.starts_with(&format!("message {id}\n")), "{out}");
    for line in [
        "  sender        <sender@esp.example>\n",
        "  created       2026-03-01T10:30:00Z\n",
        "  attempts      3\n",
        "  tenant        acme\n",
        "  pool          -\n",
    ] {
        assert!(out.contains(line), "{line:?} in {out}");
    }
    has_line(
        &out,
        &[
            "RECIPIENT",
            "STATUS",
            "ATTEMPTS",
            "PROVIDER",
            "SOURCE",
            "LAST",
            "REPLY",
        ],
    );
    has_line(
        &out,
        &[
            "c@gmail.com",
            "pending",
            "3",
            "gmail",
            "ip-1",
            "451",
            "4.7.1",
            "Try",
            "again",
            "later",
        ],
    );
    let json: Value =
        serde_json::from_str(&ctl(&h, &["message", &id, "--json"]).await.unwrap()).unwrap();
    assert_eq!(json["recipients"][0]["status"], "pending");

    let err = ctl(&h, &["message", "0000000000000000000000000000abcd"])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the MTA refused (404): no message 0000000000000000000000000000abcd in the queue"
    );
    h.stop().await;
}

#[tokio::test]
async fn suspend_list_and_resume() {
    let h = Harness::start().await;
    let out = ctl(
        &h,
        &[
            "suspend",
            "--provider",
            "gmail",
            "--for",
            "1h",
            "--reason",
            "421 rate limited",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        "suspended provider gmail until 2026-03-01T13:00:00Z (id s1)\n"
    );
    let out = ctl(
        &h,
        &[
            "suspend",
            "--tenant",
            "acme",
            "--campaign",
            "spring",
            "--for",
            "30m",
            "--reason",
            "complaints",
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        "suspended tenant acme/spring until 2026-03-01T12:30:00Z (id s2)\n"
    );

    let out = ctl(&h, &["suspensions"]).await.unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let words = |l: &str| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(words(lines[0]), ["ID", "SCOPE", "UNTIL", "BY", "REASON"]);
    assert_eq!(
        words(lines[1])[..5],
        [
            "s2",
            "tenant",
            "acme/spring",
            "2026-03-01T12:30:00Z",
            words(lines[1])[4].as_str()
        ]
    );
    assert!(words(lines[1])[4].starts_with("unix:uid="), "{out}");
    assert!(lines[2].starts_with("s1  provider gmail"), "{out}");
    assert!(lines[2].ends_with("421 rate limited"), "{out}");
    let json: Value =
        serde_json::from_str(&ctl(&h, &["suspensions", "--json"]).await.unwrap()).unwrap();
    assert_eq!(
        json["suspensions"][1]["scope"],
        serde_json::json!({"provider": "gmail"})
    );

    assert_eq!(
        ctl(&h, &["resume", "s1"]).await.unwrap(),
        "resumed suspension s1\n"
    );
    let (status, text) = refused(ctl(&h, &["resume", "s1"]).await);
    assert_eq!((status, text.as_str()), (404, "no suspension s1"));
    assert_eq!(
        ctl(&h, &["resume", "s2"]).await.unwrap(),
        "resumed suspension s2\n"
    );
    assert_eq!(ctl(&h, &["suspensions"]).await.unwrap(), "no suspensions\n");

    let (status, text) = refused(
        ctl(
            &h,
            &[
                "suspend",
                "--domain",
                "example.com",
                "--for",
                "40d",
                "--reason",
                "x",
            ],
        )
        .await,
    );
    assert_eq!(
        (status, text.as_str()),
        (400, "duration must be between 1s and 30days")
    );
    h.stop().await;
}

#[test]
fn arguments_are_checked_before_anything_is_sent() {
    let bad: &[&[&str]] = &[
        &[
            "suspend",
            "--provider",
            "gmail",
            "--domain",
            "x.com",
            "--for",
            "1h",
            "--reason",
            "r",
        ],
        &["suspend", "--campaign", "c", "--for", "1h", "--reason", "r"],
        &[
            "suspend",
            "--provider",
            "gmail",
            "--campaign",
            "c",
            "--for",
            "1h",
            "--reason",
            "r",
        ],
        &["suspend", "--provider", "gmail", "--reason", "r"],
        &[
            "suspend",
            "--provider",
            "gmail",
            "--for",
            "soon",
            "--reason",
            "r",
        ],
        &["suspend", "--for", "1h", "--reason", "r"],
        &["flush"],
        &["flush", "--all", "--tenant", "acme"],
        &["bounce"],
        &["bounce", "--no-dsn"],
        &["bounce", "--all", "--domain", "x.com"],
        &["suppressions", "add"],
        &["message"],
        &["--socket", "a", "--tcp", "127.0.0.1:1", "health"],
    ];
    for line in bad {
        assert!(parse(line).is_err(), "{line:?} parsed");
    }
    let args = parse(&[
        "bounce", "--tenant", "t", "--no-dsn", "--json", "--config", "mta.toml",
    ])
    .unwrap();
    assert!(args.json);
    assert_eq!(args.config.as_deref(), Some(Path::new("mta.toml")));
}

#[tokio::test]
async fn flush_and_bounce_act_on_slices() {
    let h = Harness::start().await;
    let out = ctl(&h, &["flush", "--domain", "example.org"])
        .await
        .unwrap();
    assert_eq!(out, "2 recipients in 2 messages will be retried now\n");
    let out = ctl(&h, &["flush", "--all"]).await.unwrap();
    assert_eq!(out, "7 recipients in 5 messages will be retried now\n");
    let out = ctl(&h, &["bounce", "--tenant", "acme", "--no-dsn"])
        .await
        .unwrap();
    assert_eq!(out, "bounced 3 recipients in 2 messages, without DSNs\n");
    let out = ctl(&h, &["bounce", "--provider", "yahoo", "--json"])
        .await
        .unwrap();
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"messages": 1, "recipients": 1, "dsn": true})
    );
    let what: Vec<String> = h.backend.actions().into_iter().map(|a| a.what).collect();
    assert_eq!(
        what,
        [
            "domain=example.org",
            "everything",
            "tenant=acme dsn=false",
            "provider=yahoo dsn=true"
        ]
    );
    h.stop().await;
}

#[tokio::test]
async fn pools_show_sources_and_providers() {
    let h = Harness::start().await;
    let out = ctl(&h, &["pools"]).await.unwrap();
    has_line(&out, &["SOURCE", "ADDRESS", "POOL", "WARMUP"]);
    has_line(&out, &["ip-1", "192.0.2.10", "main", "day", "3/30"]);
    has_line(
        &out,
        &[
            "SOURCE",
            "PROVIDER",
            "ALLOWANCE",
            "USED",
            "CONNECTIONS",
            "QUEUED",
            "RATE",
            "THROTTLE",
        ],
    );
    has_line(
        &out,
        &[
            "ip-1",
            "gmail",
            "2000",
            "1500",
            "2/2",
            "3",
            "300/min",
            "slowed",
            "until",
            "2026-03-01T12:30:00Z:",
            "421",
            "4.7.28",
            "rate",
            "limited",
        ],
    );
    has_line(
        &out,
        &["ip-1", "other", "-", "10", "0/10", "0", "-", "open"],
    );
    h.backend.set_pools(PoolsView::default());
    assert_eq!(
        ctl(&h, &["pools"]).await.unwrap(),
        "no egress sources reported\n"
    );
    h.stop().await;
}

#[tokio::test]
async fn suppressions_add_list_and_remove() {
    let h = Harness::start().await;
    assert_eq!(
        ctl(&h, &["suppressions"]).await.unwrap(),
        "no suppressions\n"
    );
    let out = ctl(
        &h,
        &[
            "suppressions",
            "add",
            "U@Example.com",
            "example.net",
            "--tenant",
            "acme",
            "--reason",
            "asked",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "added 2 suppressions (0 already present)\n");
    let out = ctl(
        &h,
        &["suppressions", "add", "u@example.com", "--tenant", "acme"],
    )
    .await
    .unwrap();
    assert_eq!(out, "added 0 suppressions (1 already present)\n");
    let out = ctl(&h, &["suppressions"]).await.unwrap();
    has_line(&out, &["ADDRESS", "TENANT", "ORIGIN", "ADDED", "REASON"]);
    has_line(
        &out,
        &[
            "example.net",
            "acme",
            "manual",
            "2026-03-01T12:00:00Z",
            "asked",
        ],
    );
    has_line(
        &out,
        &[
            "u@example.com",
            "acme",
            "manual",
            "2026-03-01T12:00:00Z",
            "asked",
        ],
    );
    let out = ctl(&h, &["suppressions", "list", "--limit", "1"])
        .await
        .unwrap();
    assert!(
        out.ends_with("more: mta ctl suppressions list --after example.net\n"),
        "{out}"
    );
    let out = ctl(
        &h,
        &["suppressions", "list", "--tenant", "acme", "--limit", "1"],
    )
    .await
    .unwrap();
    assert!(
        out.ends_with("more: mta ctl suppressions list --tenant acme --after example.net\n"),
        "the hint keeps the tenant: {out}"
    );
    let out = ctl(&h, &["suppressions", "list", "--after", "example.net"])
        .await
        .unwrap();
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = ctl(
        &h,
        &[
            "suppressions",
            "remove",
            "u@example.com",
            "--tenant",
            "acme",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "removed the suppression of u@example.com\n");
    let (status, _) = refused(
        ctl(
            &h,
            &[
                "suppressions",
                "remove",
                "u@example.com",
                "--tenant",
                "acme",
            ],
        )
        .await,
    );
    assert_eq!(status, 404);
    let (status, text) = refused(ctl(&h, &["suppressions", "add", "not an address"]).await);
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            "entries[0]: address must not contain spaces or control characters"
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn quarantine_lists_and_prints_a_raw_body() {
    use super::memory::{QUARANTINED, QUARANTINED_BODY};
    let h = Harness::start().await;
    let out = ctl(&h, &["quarantine"]).await.unwrap();
    let size = QUARANTINED_BODY.len().to_string();
    let reason = ["undecodable", "envelope:", "truncated"];
    has_line(&out, &[&[QUARANTINED, "body", &size][..], &reason].concat());
    has_line(
        &out,
        &[&[QUARANTINED, "envelope", "17"][..], &reason].concat(),
    );
    let out = ctl(&h, &["quarantine", QUARANTINED]).await.unwrap();
    assert_eq!(out.as_bytes(), QUARANTINED_BODY);
    let (status, text) =
        refused(ctl(&h, &["quarantine", "0199ab12cd34ef560000aabbccddee00"]).await);
    assert_eq!(status, 404, "{text}");
    let out = ctl(&h, &["quarantine", QUARANTINED, "--discard"])
        .await
        .unwrap();
    assert_eq!(
        out,
        format!("discarded 2 quarantined entries of {QUARANTINED}\n")
    );
    assert_eq!(
        ctl(&h, &["quarantine"]).await.unwrap(),
        "the quarantine is empty\n"
    );
    assert!(
        parse(&["quarantine", "--discard"]).is_err(),
        "--discard needs an id"
    );
    h.stop().await;
}

#[tokio::test]
async fn reload_and_health() {
    let h = Harness::start().await;
    let out = ctl(&h, &["reload"]).await.unwrap();
    assert_eq!(
        out,
        "configuration reloaded\napplied:\n  route\n  provider\n  dkim\nneeds a restart to take effect:\n  listener\n"
    );
    h.backend
        .set_reload(Err("listener[0]: unknown field `adress`".to_owned()));
    let (status, text) = refused(ctl(&h, &["reload"]).await);
    assert_eq!(
        (status, text.as_str()),
        (422, "listener[0]: unknown field `adress`")
    );

    let out = ctl(&h, &["health"]).await.unwrap();
    assert_eq!(
        out,
        "ok (mta 0.1.0, started 2026-03-01T11:00:00Z)\n\n\
         COMPONENT     STATUS  DETAIL\n\
         delivery      ok      12 jobs queued\n\
         delivery_log  ok      -\n\
         queue_load    ok      4031 messages loaded at start\n\
         spool         ok      5120 commits, 0 failed\n"
    );
    h.backend.set_health(Health::from_components(
        "0.1.0",
        now(),
        vec![ComponentHealth {
            name: "spool".into(),
            status: HealthStatus::Failing,
            detail: Some("disk full".into()),
        }],
    ));
    let args = parse(&["health"]).unwrap();
    let mut out = Vec::new();
    let err = execute(&args, &h.socket, &mut out).await.unwrap_err();
    assert!(
        matches!(
            err,
            CtlError::Unhealthy {
                status: HealthStatus::Failing
            }
        ),
        "{err}"
    );
    assert_eq!(err.to_string(), "the MTA is failing");
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.starts_with("failing (mta 0.1.0"),
        "the report is printed too: {out}"
    );
    h.stop().await;
}

#[tokio::test]
async fn metrics_are_printed_as_is() {
    let recorder = build_recorder();
    metrics::with_local_recorder(&recorder, || {
        metrics::counter!("smtp_messages_received_total").increment(42);
    });
    let h = Harness::start_with(false, recorder.handle()).await;
    let out = ctl(&h, &["metrics"]).await.unwrap();
    assert_eq!(out, recorder.handle().render());
    assert!(out.contains("smtp_messages_received_total 42\n"), "{out}");
    h.stop().await;
}

#[tokio::test]
async fn a_missing_daemon_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("admin.sock");
    let err = ctl_at(&socket, &["queue"]).await.unwrap_err();
    assert!(matches!(err, CtlError::Unreachable { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot reach the MTA at {}: is `mta run` running?",
            socket.display()
        )
    );
    // A socket left by a daemon that died: same message.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let err = ctl_at(&socket, &["health"]).await.unwrap_err();
    assert!(matches!(err, CtlError::Unreachable { .. }), "{err:?}");

    // --socket overrides the configured path.
    let h = Harness::start().await;
    let line = ["--socket", h.socket.to_str().unwrap(), "health"];
    assert!(ctl_at(&socket, &line).await.unwrap().starts_with("ok "));
    h.stop().await;
}

#[test]
fn run_reports_a_missing_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("data/admin.sock");
    let err = crate::ctl::run(parse(&["reload"]).unwrap(), &socket).unwrap_err();
    assert_eq!(
        format!("{err}"),
        format!(
            "cannot reach the MTA at {}: is `mta run` running?",
            socket.display()
        )
    );
}

#[tokio::test]
async fn the_tcp_listener_can_be_used_with_tcp() {
    let h = Harness::start_tcp().await;
    let address = h.tcp.unwrap().to_string();
    let out = ctl(&h, &["--tcp", &address, "health"]).await.unwrap();
    assert!(out.starts_with("ok "), "{out}");
    // No MTA_ADMIN_TOKEN in the test environment: reads of mail data are refused.
    assert!(std::env::var(crate::ctl::TOKEN_VARIABLE).is_err());
    let (status, _) = refused(ctl(&h, &["--tcp", &address, "queue"]).await);
    assert_eq!(status, 401);
    assert!(!TOKEN.is_empty());
    h.stop().await;
}

/// The `$ mta ctl COMMAND` example of docs/admin.md: the lines after it up to the end of its
/// code block or the next `$` line.
fn documented_output(command: &str) -> String {
    let docs = include_str!("../../../../docs/admin.md");
    let start = docs
        .find(&format!("$ {command}\n"))
        .unwrap_or_else(|| panic!("docs/admin.md has no example of {command}"));
    let rest = &docs[start..];
    let rest = &rest[rest.find('\n').unwrap() + 1..];
    let mut out = String::new();
    for line in rest.lines() {
        if line.starts_with("```") || line.starts_with("$ ") {
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn the_documented_examples_are_real_output() {
    let h = Harness::start().await;
    for command in ["queue", "pools", "quarantine", "health", "reload"] {
        let out = ctl(&h, &[command]).await.unwrap();
        assert_eq!(
            out,
            documented_output(&format!("mta ctl {command}")),
            "mta ctl {command}"
        );
    }
    let err = parse(&["bounce"]).unwrap_err().to_string();
    let documented = documented_output("mta ctl bounce");
    assert!(
        err.starts_with(
            documented
                .lines()
                .next()
                .unwrap()
                .split(": <")
                .next()
                .unwrap()
        ),
        "{err}"
    );
    h.stop().await;
}
