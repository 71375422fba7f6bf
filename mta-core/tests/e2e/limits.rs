//! Every limit gets its reply, and the server stays up.

use std::time::Duration;

use crate::common::{Client, TestServer};

#[tokio::test]
async fn message_size_is_limited_by_declaration_and_by_content() {
    let server = TestServer::start_with("", "max_message_size = 2000").await;
    let mut c = server.client().await;
    assert!(c.cmd("EHLO client.test", 250).await.contains("SIZE 2000"));
    let text = c.cmd("MAIL FROM:<a@example.com> SIZE=2001", 552).await;
    assert!(text.contains("5.3.4"), "{text}");
    c.cmd("MAIL FROM:<a@example.com> SIZE=1000", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    let big = "x".repeat(80) + "\r\n";
    c.send(big.repeat(30)).await;
    c.send(b".\r\n").await;
    let text = c.expect(552).await;
    assert!(text.contains("5.3.4"), "{text}");
    // BDAT over the limit: refused, and the chunk is still consumed.
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.send(format!("BDAT 2500 LAST\r\n{}", "y".repeat(2500)))
        .await;
    c.expect(552).await;
    c.cmd("NOOP", 250).await;
    // A message within the limit still goes through.
    assert_eq!(
        c.send_message(
            "a@example.com",
            &["b@example.org"],
            b"Subject: s\r\n\r\nsmall\r\n"
        )
        .await
        .0,
        250
    );
    server.stop().await;
}

#[tokio::test]
async fn a_message_that_went_round_too_many_hops_is_refused() {
    let server = TestServer::start_with("[server]\nmax_hops = 5", "").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    let hops = |n: usize| {
        let mut message = "Received: from a by b; Thu, 26 Nov 2026 12:00:00 +0000\r\n".repeat(n);
        message.push_str("Subject: loop\r\n\r\nx\r\n");
        message
    };
    let (code, text) = c
        .send_message("a@example.com", &["b@example.org"], hops(6).as_bytes())
        .await;
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("5.4.6"), "{text}");
    let (code, text) = c
        .send_message("a@example.com", &["b@example.org"], hops(5).as_bytes())
        .await;
    assert_eq!(code, 250, "{text}");
    server.stop().await;
}

#[tokio::test]
async fn recipients_are_limited_with_452() {
    let server = TestServer::start_with("", "max_recipients = 3").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    for i in 0..3 {
        c.cmd(&format!("RCPT TO:<r{i}@example.org>"), 250).await;
    }
    let text = c.cmd("RCPT TO:<r3@example.org>", 452).await;
    assert!(text.contains("4.5.3"), "{text}");
    c.cmd("DATA", 354).await;
    c.send(b"Subject: x\r\n\r\n.\r\n").await;
    let queued = c.expect(250).await;
    assert_eq!(server.stored(&queued).0.recipients.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn overlong_lines_are_refused() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    let long_command = format!("NOOP {}", "x".repeat(600));
    let text = c.cmd(&long_command, 500).await;
    assert!(text.contains("5.5.6"), "{text}");
    // A line far beyond every limit, sent in pieces, is skipped and answered once.
    c.send("A".repeat(100_000)).await;
    c.send(b"\r\nNOOP\r\n").await;
    c.expect(500).await;
    c.expect(250).await;
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(format!("Subject: x\r\n\r\n{}\r\n.\r\n", "y".repeat(999)))
        .await;
    let text = c.expect(550).await;
    assert!(text.contains("5.5.6"), "{text}");
    c.cmd("NOOP", 250).await;
    server.stop().await;
}

#[tokio::test]
async fn bad_command_floods_are_disconnected() {
    let server = TestServer::start_with("", "max_errors = 3").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("BOGUS", 500).await;
    c.cmd("MAIL FROM:<bad", 553).await;
    c.send(b"ALSO BOGUS\r\n").await;
    c.expect(500).await;
    let text = c.expect(421).await;
    assert!(text.contains("4.7.0"), "{text}");
    assert!(c.is_closed().await);
    // The server is still up.
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    server.stop().await;
}

#[tokio::test]
async fn idle_and_slow_clients_time_out() {
    let server =
        TestServer::start_with("", "command_timeout = \"1s\"\ndata_timeout = \"1s\"").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    let text = c.expect(421).await;
    assert!(text.contains("4.4.2"), "{text}");
    assert!(c.is_closed().await);
    // Stalling in the middle of DATA.
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(b"Subject: partial\r\n\r\nhalf a messa").await;
    c.expect(421).await;
    assert!(c.is_closed().await);
    assert_eq!(server.spool.stats().writes, 0);
    server.stop().await;
}

#[tokio::test]
async fn connection_limits_refuse_with_421() {
    let server = TestServer::start_with(
        "[server]\nmax_connections = 2\n",
        "max_connections_per_ip = 5",
    )
    .await;
    let c1 = server.client().await;
    let mut c2 = server.client().await;
    let mut c3 = Client::connect(server.addr).await;
    let text = c3.expect(421).await;
    assert!(text.contains("4.3.2"), "{text}");
    assert!(c3.is_closed().await);
    drop(c1);
    c2.cmd("QUIT", 221).await;
    // Slots come back when sessions end.
    let mut ok = None;
    for _ in 0..50 {
        let mut c = Client::connect(server.addr).await;
        let (code, _) = c.reply().await;
        if code == 220 {
            ok = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok.is_some(), "a slot never came back");
    server.stop().await;

    let server = TestServer::start_with("", "max_connections_per_ip = 1").await;
    let _c1 = server.client().await;
    let mut c2 = Client::connect(server.addr).await;
    let text = c2.expect(421).await;
    assert!(text.contains("4.3.2"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn talking_before_the_greeting_is_refused() {
    let server = TestServer::start_with("", "greeting_delay = \"300ms\"").await;
    let mut eager = Client::connect(server.addr).await;
    eager.send(b"EHLO eager.test\r\n").await;
    let text = eager.expect(554).await;
    assert!(text.contains("5.5.1"), "{text}");
    assert!(eager.is_closed().await);
    let mut polite = Client::connect(server.addr).await;
    polite.expect(220).await;
    polite.cmd("EHLO polite.test", 250).await;
    server.stop().await;
}
