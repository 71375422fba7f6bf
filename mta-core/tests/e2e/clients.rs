//! Conformance with independent clients: swaks and Python's smtplib.

use std::process::Command;

use crate::common::{TestServer, cheap_hash};

/// Runs a blocking command off the runtime and returns (success, stdout, stderr).
async fn run(mut command: Command) -> (bool, String, String) {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("the client must be installed (scripts/test installs it)");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn swaks(server: &TestServer) -> Command {
    let mut command = Command::new("swaks");
    command
        .arg("--server")
        .arg(server.addr.ip().to_string())
        .arg("--port")
        .arg(server.addr.port().to_string())
        .args([
            "--helo",
            "swaks.test",
            "--from",
            "sender@example.com",
            "--timeout",
            "20",
        ]);
    command
}

fn queued_ids(transcript: &str) -> Vec<String> {
    transcript
        .lines()
        .filter_map(|l| l.split("queued as ").nth(1))
        .map(|id| id.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn swaks_sends_plain_pipelined_and_over_tls_with_auth() {
    let extra = format!(
        "[[user]]\nname = \"app\"\npassword_hash = \"{}\"\n",
        cheap_hash("s3cret")
    );
    let server = TestServer::start_with(&extra, "relay_networks = []").await;

    // Untrusted and unauthenticated: refused for a foreign domain.
    let mut plain = swaks(&server);
    plain.args(["--to", "rcpt@example.org"]);
    let (ok, out, _) = run(plain).await;
    assert!(!ok, "relay must be refused: {out}");
    assert!(out.contains("554 5.7.1"), "{out}");

    // STARTTLS + AUTH PLAIN, pipelined, with a custom header and an attachment-sized body.
    let mut tls = swaks(&server);
    tls.args([
        "--to",
        "rcpt@example.org,second@example.net",
        "--tls",
        "--auth",
        "PLAIN",
    ])
    .args([
        "--auth-user",
        "app",
        "--auth-password",
        "s3cret",
        "--pipeline",
    ])
    .args(["--header", "X-MTA-Campaign: swaks-campaign"])
    .args([
        "--body",
        &format!("{}\n", "0123456789abcdef".repeat(4)).repeat(1000),
    ]);
    let (ok, out, err) = run(tls).await;
    assert!(ok, "swaks failed:\n{out}\n{err}");
    let ids = queued_ids(&out);
    assert_eq!(ids.len(), 1, "{out}");
    let (envelope, body) = server.stored(&format!("queued as {}", ids[0]));
    assert_eq!(envelope.recipients.len(), 2);
    assert_eq!(envelope.tags.campaign.as_deref(), Some("swaks-campaign"));
    assert!(String::from_utf8_lossy(&body).contains("with ESMTPSA id"));

    // AUTH LOGIN too.
    let mut login = swaks(&server);
    login
        .args(["--to", "rcpt@example.org", "--tls", "--auth", "LOGIN"])
        .args(["--auth-user", "app", "--auth-password", "s3cret"]);
    let (ok, out, err) = run(login).await;
    assert!(ok, "swaks LOGIN failed:\n{out}\n{err}");
    server.stop().await;
}

#[tokio::test]
async fn python_smtplib_plain_utf8_and_tls_auth() {
    let extra = format!(
        "[[user]]\nname = \"app\"\npassword_hash = \"{}\"\n",
        cheap_hash("s3cret")
    );
    let server = TestServer::start(&extra).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/smtplib_client.py"
    );
    let host = server.addr.ip().to_string();
    let port = server.addr.port().to_string();

    let mut plain = Command::new("python3");
    plain.args([script, &host, &port, "plain"]);
    let (ok, out, err) = run(plain).await;
    assert!(ok, "smtplib failed:\n{out}\n{err}");
    assert!(out.contains("\"refused\": {}"), "{out}");
    assert!(out.contains("\"refused_utf8\": {}"), "{out}");
    assert!(out.contains("\"bare_lf\": 550"), "{out}");
    assert!(out.contains("\"smtputf8\""), "{out}");

    let mut tls = Command::new("python3");
    tls.args([script, &host, &port, "tls", "app", "s3cret"]);
    let (ok, out, err) = run(tls).await;
    assert!(ok, "smtplib TLS failed:\n{out}\n{err}");
    assert!(out.contains("\"auth\": 235"), "{out}");
    assert!(out.contains("\"starttls\": 220"), "{out}");
    assert_eq!(server.spool.stats().writes, 3, "{out}");
    server.stop().await;
}
