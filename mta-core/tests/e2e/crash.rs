//! The durability promise: kill -9 under load, restart, and every message that got a 250 is
//! in the spool with its exact content; graceful shutdown exits 0.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use queue::{SledSpool, Spool};
use smtp_proto::ReplyParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Client, free_port, mta_binary, queued_id, wait_listening, write_config};

/// Acknowledged messages: (queue id text, the unique marker in the body).
type Acked = Arc<Mutex<Vec<(String, String)>>>;

fn spawn_mta(config: &std::path::Path) -> Child {
    Command::new(mta_binary())
        .args(["run", "--config"])
        .arg(config)
        .env("MTA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn mta")
}

/// Sends messages on one connection until the connection fails or `max` are acknowledged.
/// Every 250 is recorded, with the marker of the message it acknowledged.
async fn inject(addr: SocketAddr, client: usize, max: usize, acked: Acked) {
    inject_to(addr, client, max, "example.org", acked).await
}

/// Like [`inject`], to recipients at `domain`.
async fn inject_to(addr: SocketAddr, client: usize, max: usize, domain: &str, acked: Acked) {
    let Ok(mut tcp) = TcpStream::connect(addr).await else {
        return;
    };
    let mut buf = Vec::new();
    let parser = ReplyParser::new();
    // Reads one reply; None when the connection is gone.
    async fn reply(
        tcp: &mut TcpStream,
        buf: &mut Vec<u8>,
        parser: &ReplyParser,
    ) -> Option<(u16, String)> {
        loop {
            if let Ok(Some((r, used))) = parser.parse(buf) {
                let out = (
                    r.code().get(),
                    String::from_utf8_lossy(r.raw()).into_owned(),
                );
                buf.drain(..used);
                return Some(out);
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_secs(20), tcp.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }
    if reply(&mut tcp, &mut buf, &parser).await.map(|r| r.0) != Some(220) {
        return;
    }
    if tcp.write_all(b"EHLO loader.test\r\n").await.is_err()
        || reply(&mut tcp, &mut buf, &parser).await.is_none()
    {
        return;
    }
    let filler = "The quick brown fox jumps over the lazy dog. 0123456789\r\n".repeat(60);
    for seq in 0..max {
        let marker = format!("client-{client}-message-{seq}");
        let transaction =
            format!("MAIL FROM:<loader@example.com>\r\nRCPT TO:<r{seq}@{domain}>\r\nDATA\r\n");
        if tcp.write_all(transaction.as_bytes()).await.is_err() {
            return;
        }
        for expected in [250, 250, 354] {
            match reply(&mut tcp, &mut buf, &parser).await {
                Some((code, _)) if code == expected => {}
                _ => return,
            }
        }
        let body = format!("Subject: {marker}\r\nX-Marker: {marker}\r\n\r\n{filler}.\r\n");
        if tcp.write_all(body.as_bytes()).await.is_err() {
            return;
        }
        match reply(&mut tcp, &mut buf, &parser).await {
            Some((250, text)) => acked
                .lock()
                .unwrap()
                .push((queued_id(&text).to_string(), marker)),
            _ => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_message_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Deliveries go to a port where nothing listens: every message stays queued. The port
    // is held (bound, not listening) for the whole test, so no other test can take it.
    let refusing = tokio::net::TcpSocket::new_v4().unwrap();
    refusing.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let route = format!(
        "[[route]]\ndomains = [\"*\"]\nsmarthost = \"127.0.0.1:{}\"\n",
        refusing.local_addr().unwrap().port()
    );
    let config = write_config(dir.path(), port, &route);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = spawn_mta(&config);
    assert!(
        wait_listening(addr, Duration::from_secs(30)).await,
        "mta did not start"
    );

    let acked: Acked = Arc::default();
    let clients: Vec<_> = (0..8)
        .map(|i| tokio::spawn(inject(addr, i, 5_000, acked.clone())))
        .collect();
    // Let the load run until a good number of messages are acknowledged, then kill -9 in
    // the middle of it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    for client in clients {
        let _ = client.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} messages acknowledged before the deadline",
        acked.len()
    );

    // Every acknowledged message is in the spool, with its own body.
    let spool_path = dir.path().join("spool");
    let (spool, recovery) =
        SledSpool::open(&spool_path, queue::SpoolConfig::default()).expect("reopen");
    assert!(
        recovery.quarantined.is_empty(),
        "{:?}",
        recovery.quarantined
    );
    for (id, marker) in &acked {
        let id = id.parse().unwrap();
        let body = spool
            .body(id)
            .unwrap_or_else(|e| panic!("acknowledged {id} lost: {e}"));
        let text = String::from_utf8_lossy(body.as_ref());
        assert!(
            text.contains(&format!("X-Marker: {marker}\r\n")),
            "{id} has the wrong body"
        );
        let envelope = spool.envelope(id).expect("envelope");
        assert_eq!(envelope.recipients.len(), 1);
    }
    assert!(recovery.pending.len() >= acked.len());
    spool.close().await.unwrap();
    drop(spool);

    // The MTA starts again on the same spool and accepts mail.
    let mut child = spawn_mta(&config);
    assert!(
        wait_listening(addr, Duration::from_secs(30)).await,
        "mta did not restart"
    );
    let mut c = Client::connect(addr).await;
    c.expect(220).await;
    c.cmd("EHLO again.test", 250).await;
    let (code, text) = c
        .send_message(
            "a@example.com",
            &["b@example.org"],
            b"Subject: after\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(code, 250, "{text}");
    c.cmd("QUIT", 221).await;

    // SIGTERM: a clean exit with status 0.
    unsafe_free_sigterm(&child);
    let status =
        wait_exit(&mut child, Duration::from_secs(30)).expect("mta did not exit after SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    let (spool, recovery) =
        SledSpool::open(&spool_path, queue::SpoolConfig::default()).expect("reopen");
    assert!(recovery.pending.len() > acked.len());
    spool.close().await.unwrap();
}

#[tokio::test]
async fn validate_checks_a_config_and_reports_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), free_port(), "");
    let out = Command::new(mta_binary())
        .args(["run", "--validate", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[listener]]\naddress = \"127.0.0.1:2525\"\nmax_mesage_size = 10\n",
    )
    .unwrap();
    let out = Command::new(mta_binary())
        .args(["run", "--validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listener[0]") && err.contains("max_mesage_size"),
        "{err}"
    );
    // What the daemon would refuse at start is refused here too, with the cause.
    let good_text = std::fs::read_to_string(&good).unwrap();
    for (extra, key, cause) in [
        (
            "[[dkim]]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = \"missing.pem\"\n",
            "dkim[0].key",
            "No such file",
        ),
        ("[spool]\nmax_batch = 0\n", "spool.max_batch", "at least 1"),
    ] {
        // A [spool] key goes into the good file's own section; other sections go at the end.
        let text = if extra.starts_with("[spool]") {
            good_text.replacen("[spool]\n", extra, 1)
        } else {
            format!("{good_text}{extra}")
        };
        let file = dir.path().join("refused.toml");
        std::fs::write(&file, text).unwrap();
        let out = Command::new(mta_binary())
            .args(["run", "--validate", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{extra}: {err}");
        assert!(err.contains(key) && err.contains(cause), "{extra}: {err}");
    }
}

/// Sends SIGTERM to a child process.
fn unsafe_free_sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + within;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    None
}

/// At-least-once delivery across kill -9: every acknowledged message reaches the sink after
/// a restart; duplicates are limited to what was in flight (delivered but not yet recorded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_resumes_after_sigkill_with_nothing_lost() {
    use benches::dns::{Records, TestDns};
    use benches::sink::{Sink, SinkConfig};

    const MAX_CONNECTIONS: usize = 4;
    let mut records = Records::new();
    records
        .mx("dest.test", 10, "mx.dest.test")
        .a("mx.dest.test", std::net::Ipv4Addr::new(127, 0, 0, 2));
    let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), records)
        .await
        .unwrap();
    let sink_port = std::net::TcpListener::bind("127.0.0.2:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sink = Sink::start(SinkConfig {
        listen: format!("127.0.0.2:{sink_port}").parse().unwrap(),
        record_messages: true,
        record_limit: 100_000,
        command_delay: Duration::from_millis(2),
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\n[delivery]\nsmtp_port = {sink_port}\nmax_connections = {MAX_CONNECTIONS}\nretry_initial = \"1s\"\nretry_max = \"1s\"\n",
        dns.addr()
    );
    let config = write_config(dir.path(), port, &extra);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = spawn_mta(&config);
    assert!(
        wait_listening(addr, Duration::from_secs(30)).await,
        "mta did not start"
    );

    let acked: Acked = Arc::default();
    let clients: Vec<_> = (0..4)
        .map(|i| tokio::spawn(inject_to(addr, i, 150, "dest.test", acked.clone())))
        .collect();
    // Kill while deliveries are under way.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while sink.messages().len() < 100 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    for client in clients {
        let _ = client.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        sink.messages().len() >= 100 && acked.len() >= 100,
        "too little happened before the kill"
    );

    let mut child = spawn_mta(&config);
    assert!(
        wait_listening(addr, Duration::from_secs(30)).await,
        "mta did not restart"
    );
    let markers = |sink: &Sink| -> Vec<String> {
        sink.messages()
            .iter()
            .filter_map(|m| {
                let body = String::from_utf8_lossy(&m.body).into_owned();
                body.lines()
                    .find_map(|l| l.strip_prefix("X-Marker: ").map(str::to_owned))
            })
            .collect()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let seen: std::collections::HashSet<String> = markers(&sink).into_iter().collect();
        let missing = acked.iter().filter(|(_, m)| !seen.contains(m)).count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} acknowledged messages never delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = markers(&sink);
    let unique: std::collections::HashSet<&String> = all.iter().collect();
    let duplicates = all.len() - unique.len();
    // In flight at the kill: per connection, the message being sent plus the outcomes
    // waiting for their spool write (at most 32, see delivery/pool.rs).
    assert!(
        duplicates <= 33 * MAX_CONNECTIONS,
        "{duplicates} duplicates: more than the messages in flight at the kill"
    );
    unsafe_free_sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(30)).expect("exit after SIGTERM");
    assert!(status.success());
    sink.stop().await;
    dns.stop().await;
}
