//! Protocol behaviour: the happy path, pipelining, BDAT, DSN parameters, control headers,
//! smuggling, STARTTLS injection.

use crate::common::{TestServer, queued_id};

#[tokio::test]
async fn a_message_is_queued_with_received_header_and_envelope() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    let ehlo = c.cmd("EHLO client.test", 250).await;
    for cap in [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "CHUNKING",
        "ENHANCEDSTATUSCODES",
        "DSN",
        "STARTTLS",
        "SIZE 52428800",
    ] {
        assert!(ehlo.contains(cap), "{cap} missing from {ehlo}");
    }
    assert!(
        !ehlo.contains("AUTH"),
        "AUTH must not be offered before TLS: {ehlo}"
    );
    c.cmd("MAIL FROM:<sender@example.com> RET=HDRS ENVID=abc+2B1", 250)
        .await;
    c.cmd(
        "RCPT TO:<rcpt@example.org> NOTIFY=FAILURE,DELAY ORCPT=rfc822;rcpt+40example.org",
        250,
    )
    .await;
    c.cmd("RCPT TO:<second@example.net>", 250).await;
    c.cmd("DATA", 354).await;
    c.send(b"Subject: hello\r\nX-MTA-Tenant: acme\r\nX-MTA-Campaign: spring\r\nX-MTA-Priority: high\r\n\r\n..dot line\r\nbody\r\n.\r\n").await;
    let reply = c.expect(250).await;
    assert!(reply.contains("2.0.0 Ok: queued as "), "{reply}");
    let (envelope, body) = server.stored(&reply);
    assert_eq!(envelope.sender, "sender@example.com");
    let rcpts: Vec<&str> = envelope
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(rcpts, ["rcpt@example.org", "second@example.net"]);
    assert_eq!(
        envelope.recipients[0].notify,
        queue::Notify::FAILURE | queue::Notify::DELAY
    );
    assert_eq!(
        envelope.recipients[0].orcpt.as_deref(),
        Some("rfc822;rcpt+40example.org")
    );
    assert_eq!(envelope.dsn.ret, Some(queue::DsnRet::Headers));
    assert_eq!(envelope.dsn.envid.as_deref(), Some("abc+2B1"));
    assert_eq!(envelope.tags.tenant.as_deref(), Some("acme"));
    assert_eq!(envelope.tags.campaign.as_deref(), Some("spring"));
    assert_eq!(envelope.priority, queue::Priority::High);
    assert_eq!(envelope.received_from, "127.0.0.1");
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(
        text.starts_with(
            "Received: from client.test ([127.0.0.1])\r\n\tby mta.test (mta) with ESMTP id "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("Subject: hello\r\n\r\n.dot line\r\nbody\r\n"),
        "{text}"
    );
    assert!(!text.contains("X-MTA-"), "{text}");
    assert_eq!(envelope.size, body.len() as u64);
    assert_eq!(
        server.submitted.ids(),
        [queued_id(&reply)],
        "handed to delivery once, after the 250's store"
    );
    c.cmd("QUIT", 221).await;
    server.stop().await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order_in_one_write() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    // Everything up to DATA in one segment (RFC 2920); the server answers all of it.
    c.send(b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<bad@>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    let (code, text) = c.reply().await;
    assert_eq!((code, text.starts_with("553 5.1.3")), (553, true), "{text}");
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 354);
    // Body, end of data, and the next transaction pipelined behind it.
    c.send(b"Subject: one\r\n\r\nhi\r\n.\r\nRSET\r\nNOOP\r\n")
        .await;
    let queued = c.expect(250).await;
    let (envelope, _) = server.stored(&queued);
    assert_eq!(envelope.recipients.len(), 2);
    c.expect(250).await;
    c.expect(250).await;
    server.stop().await;
}

#[tokio::test]
async fn bdat_chunks_build_one_message() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("MAIL FROM:<a@example.com> BODY=8BITMIME", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    let first = "Subject: chunked\r\n\r\n";
    c.send(format!("BDAT {}\r\n{first}", first.len())).await;
    assert!(c.expect(250).await.contains("20 octets"));
    // A chunk holding what looks like the end of DATA and a command: it is data.
    let last = ".\r\nMAIL FROM:<x@evil.test>\r\n";
    c.send(format!("BDAT {} LAST\r\n{last}", last.len())).await;
    let queued = c.expect(250).await;
    let (envelope, body) = server.stored(&queued);
    assert_eq!(envelope.body_type, queue::BodyType::EightBitMime);
    assert!(body.ends_with(b"Subject: chunked\r\n\r\n.\r\nMAIL FROM:<x@evil.test>\r\n"));
    // BDAT without a transaction is read (so the session stays in step) and refused.
    c.send(b"BDAT 5 LAST\r\nhello").await;
    c.expect(503).await;
    c.cmd("NOOP", 250).await;
    // DATA after BDAT in one transaction is refused.
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.send(b"BDAT 3\r\nabc").await;
    c.expect(250).await;
    c.cmd("DATA", 503).await;
    c.cmd("RSET", 250).await;
    // The line rules of DATA hold for BDAT: a bare LF (a smuggling sequence a later hop
    // could read as the end of data) and an overlong line are refused at LAST.
    for (text, code) in [
        (
            "Subject: x\r\n\r\na\n.\nMAIL FROM:<x@evil.test>\r\n".to_owned(),
            "5.5.2",
        ),
        (
            format!("Subject: x\r\n\r\n{}\r\n", "y".repeat(1200)),
            "5.5.6",
        ),
    ] {
        c.cmd("MAIL FROM:<a@example.com>", 250).await;
        c.cmd("RCPT TO:<b@example.org>", 250).await;
        c.send(format!("BDAT {} LAST\r\n{text}", text.len())).await;
        let reply = c.expect(550).await;
        assert!(reply.contains(code), "{reply}");
    }
    // A message without a final CRLF is stored with one.
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 250).await;
    c.send(b"BDAT 16 LAST\r\nSubject: x\r\n\r\nab").await;
    let queued = c.expect(250).await;
    let (_, body) = server.stored(&queued);
    assert!(
        body.ends_with(b"\r\n\r\nab\r\n"),
        "{:?}",
        String::from_utf8_lossy(&body)
    );
    drop(c);
    server.stop().await;
}

/// SMTP smuggling: none of the bogus end-of-data sequences ends the message, the smuggled
/// MAIL FROM never becomes a command, and the message is refused at the real end.
#[tokio::test]
async fn smuggling_variants_are_refused_and_never_split_the_message() {
    let server = TestServer::start("").await;
    let variants: [&[u8]; 5] = [b"\n.\n", b"\n.\r\n", b"\r\n.\n", b"\r.\r", b"\r\n.\r\r\n"];
    for variant in variants {
        let mut c = server.client().await;
        c.cmd("EHLO client.test", 250).await;
        c.cmd("MAIL FROM:<a@example.com>", 250).await;
        c.cmd("RCPT TO:<b@example.org>", 250).await;
        c.cmd("DATA", 354).await;
        let mut data = b"Subject: x\r\n\r\nhello".to_vec();
        data.extend_from_slice(variant);
        data.extend_from_slice(b"MAIL FROM:<admin@example.com>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nsmuggled\r\n.\r\n");
        c.send(&data).await;
        let (code, text) = c.reply().await;
        assert_eq!(code, 550, "{variant:?}: {text}");
        assert!(text.contains("5.5.2"), "{text}");
        // The session is in step: the next command gets its own reply, and nothing else came.
        c.cmd("NOOP", 250).await;
    }
    assert_eq!(
        server.spool.stats().writes,
        0,
        "nothing may have been queued"
    );
    server.stop().await;
}

#[tokio::test]
async fn plaintext_pipelined_after_starttls_is_discarded() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    c.cmd("EHLO client.test", 250).await;
    // CVE-2011-0411: a command injected behind STARTTLS in the same packet.
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        .await;
    c.expect(220).await;
    // Handshake by hand: the client helper's starttls sends its own STARTTLS, so do the
    // TLS part only.
    let mut c = c;
    c.tls_handshake_only().await;
    // The injected MAIL was dropped: after TLS the session needs EHLO again, and RCPT has
    // no transaction.
    c.cmd("EHLO client.test", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 503).await;
    let queued = c
        .send_message(
            "a@example.com",
            &["b@example.org"],
            b"Subject: tls\r\n\r\nx\r\n",
        )
        .await;
    assert_eq!(queued.0, 250, "{queued:?}");
    let (_, body) = server.stored(&queued.1);
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("with ESMTPS id"), "{text}");
    assert!(
        text.contains("\t(TLSv1_3 ") || text.contains("\t(TLSv1_2 "),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn sequence_errors_get_503_and_the_session_goes_on() {
    let server = TestServer::start("").await;
    let mut c = server.client().await;
    c.cmd("MAIL FROM:<a@example.com>", 503).await;
    c.cmd("EHLO client.test", 250).await;
    c.cmd("RCPT TO:<b@example.org>", 503).await;
    c.cmd("DATA", 503).await;
    c.cmd("MAIL FROM:<a@example.com>", 250).await;
    c.cmd("MAIL FROM:<a@example.com>", 503).await;
    c.cmd("DATA", 554).await;
    c.cmd("RSET", 250).await;
    c.cmd("VRFY someone", 252).await;
    c.cmd("EXPN list", 502).await;
    c.cmd("HELP", 214).await;
    c.cmd("XYZZY", 500).await;
    c.cmd("MAIL FROM:<a@example.com> BODY=BINARYMIME", 555)
        .await;
    c.cmd("MAIL FROM:<a@example.com> FOO=BAR", 555).await;
    c.cmd("MAIL FROM:<δ@example.com>", 553).await;
    c.cmd("MAIL FROM:<a@example.com> SMTPUTF8", 250).await;
    c.cmd("RCPT TO:<δοκιμή@παράδειγμα.δοκιμή>", 250).await;
    c.cmd("QUIT", 221).await;
    assert!(c.is_closed().await);
    server.stop().await;
}

#[test]
fn queued_id_parses_from_the_reply() {
    let id = queue::MessageId::generate();
    assert_eq!(queued_id(&format!("250 2.0.0 Ok: queued as {id}\r\n")), id);
}
