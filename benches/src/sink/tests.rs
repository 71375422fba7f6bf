//! End-to-end tests of the sink with a raw SMTP client over loopback TCP: each test starts
//! its own sink on `127.0.0.1:0` and checks exact replies and counters.

use std::time::Duration;

use smtp_proto::{Extensions, ReplyParser};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;

use super::*;

/// Longest wait for any single reply in these tests.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

type ClientStream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// A bare SMTP client: writes exactly what it is given, reads whole replies.
struct RawClient {
    stream: Option<ClientStream>,
    buf: Vec<u8>,
}

impl RawClient {
    async fn connect(addr: SocketAddr) -> RawClient {
        let tcp = TcpStream::connect(addr).await.expect("connect to sink");
        RawClient {
            stream: Some(Either::Left(tcp)),
            buf: Vec::new(),
        }
    }

    /// Connects and checks the greeting.
    async fn greeted(addr: SocketAddr) -> RawClient {
        let mut client = RawClient::connect(addr).await;
        let greeting = client.reply().await;
        assert!(greeting.starts_with("220 "), "{greeting}");
        client
    }

    fn stream(&mut self) -> &mut ClientStream {
        self.stream.as_mut().expect("connected")
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream().write_all(bytes).await.expect("write");
    }

    /// Reads one complete reply (all its lines), as text.
    async fn reply(&mut self) -> String {
        self.try_reply()
            .await
            .unwrap_or_else(|| panic!("connection closed, no reply; buffered {:?}", self.buf))
    }

    /// One complete reply, or `None` if the connection closes first.
    async fn try_reply(&mut self) -> Option<String> {
        loop {
            if let Some((reply, used)) = ReplyParser::new().parse(&self.buf).expect("valid reply") {
                let text = String::from_utf8_lossy(reply.raw()).into_owned();
                self.buf.drain(..used);
                return Some(text);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(REPLY_TIMEOUT, self.stream().read(&mut chunk))
                .await
                .expect("reply within the timeout")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends one command line (CRLF added) and returns the reply.
    async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// True once the server has closed the connection (after any pending replies).
    async fn closed(&mut self) -> bool {
        self.try_reply().await.is_none()
    }

    async fn ehlo(&mut self) -> String {
        let reply = self.cmd("EHLO client.example").await;
        assert!(reply.starts_with("250"), "{reply}");
        reply
    }

    async fn start_tls(&mut self) {
        let Some(Either::Left(tcp)) = self.stream.take() else {
            panic!("already TLS");
        };
        let connector = crate::tls::insecure_connector().expect("connector");
        let name = rustls_pki_types::ServerName::try_from("mx.sink.test").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        self.stream = Some(Either::Right(tls));
    }

    /// A full transaction without pipelining; returns the final reply.
    async fn message(&mut self, from: &str, to: &[&str], body: &[u8]) -> String {
        let reply = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        assert!(reply.starts_with("250 "), "MAIL: {reply}");
        for rcpt in to {
            let reply = self.cmd(&format!("RCPT TO:<{rcpt}>")).await;
            assert!(reply.starts_with("250 "), "RCPT: {reply}");
        }
        let reply = self.cmd("DATA").await;
        assert!(reply.starts_with("354 "), "DATA: {reply}");
        self.send(&smtp_proto::stuff(body)).await;
        self.reply().await
    }
}

fn assert_stream_is_usable<S: AsyncRead + AsyncWrite>(_: &S) {}

async fn start(config: SinkConfig) -> Sink {
    Sink::start(config).await.expect("sink starts")
}

fn recording() -> SinkConfig {
    SinkConfig {
        record_messages: true,
        ..SinkConfig::default()
    }
}

#[tokio::test]
async fn accepts_and_records_a_pipelined_message_exactly() {
    let sink = start(recording()).await;
    let mut c = RawClient::greeted(sink.addr()).await;
    let ehlo = c.ehlo().await;
    assert_eq!(
        ehlo,
        "250-mx.sink.test at your service\r\n250-PIPELINING\r\n250-8BITMIME\r\n\
         250-SMTPUTF8\r\n250-CHUNKING\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 52428800\r\n"
    );
    c.send(
        b"MAIL FROM:<bounce@esp.example> SIZE=100 BODY=8BITMIME\r\n\
          RCPT TO:<a@gmail.test>\r\nRCPT TO:<B@gmail.test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(c.reply().await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply().await, "354 End data with <CR><LF>.<CR><LF>\r\n");
    c.send(b"Subject: hi\r\n\r\n..dotted line\r\nlast\r\n.\r\n")
        .await;
    let done = c.reply().await;
    assert!(done.starts_with("250 2.0.0 Ok: queued as S"), "{done}");
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert!(c.closed().await);

    let messages = sink
        .wait_for_messages(1, Duration::from_secs(5))
        .await
        .expect("message");
    let m = &messages[0];
    assert_eq!(m.helo, "client.example");
    assert_eq!(m.mail_from, "bounce@esp.example");
    assert_eq!(m.mail_params.size, Some(100));
    assert_eq!(m.mail_params.body, Some(smtp_proto::Body::EightBitMime));
    assert_eq!(m.rcpt_to, ["a@gmail.test", "B@gmail.test"]);
    assert_eq!(m.body, b"Subject: hi\r\n\r\n.dotted line\r\nlast\r\n");
    assert!(!m.tls && !m.bdat);
    assert!(m.client.ip().is_loopback());
    let counters = sink.counters();
    assert_eq!(counters.transactions, 1);
    assert_eq!(counters.messages_accepted, 1);
    assert_eq!(counters.recipients_accepted, 2);
    assert_eq!(counters.recipients_delivered, 2);
    assert_eq!(counters.bytes_received, m.body.len() as u64);
    sink.stop().await;
}

#[tokio::test]
async fn defers_the_first_attempts_then_accepts() {
    let reply = ReplySpec::parse("451 4.7.1 try later").unwrap();
    let sink = start(SinkConfig {
        rules: vec![Rule::defer_first_attempts(2).with_reply(reply)],
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    assert_eq!(c.cmd("MAIL FROM:<s@esp.example>").await, "250 2.1.0 Ok\r\n");
    let table = [
        ("grey@yahoo.test", "451 4.7.1 try later\r\n"),
        ("grey@yahoo.test", "451 4.7.1 try later\r\n"),
        ("other@yahoo.test", "451 4.7.1 try later\r\n"),
        ("GREY@yahoo.test", "250 2.1.5 Ok\r\n"),
        ("grey@yahoo.test", "250 2.1.5 Ok\r\n"),
    ];
    for (rcpt, expected) in table {
        assert_eq!(
            c.cmd(&format!("RCPT TO:<{rcpt}>")).await,
            expected,
            "{rcpt}"
        );
    }
    let counters = sink.counters();
    assert_eq!(counters.recipients_deferred, 3);
    assert_eq!(counters.recipients_accepted, 2);
}

#[tokio::test]
async fn defers_a_fraction_of_messages_at_the_end_of_data() {
    let sink = start(SinkConfig {
        rules: vec![Rule::defer_fraction(1.0).at(Stage::Data)],
        ..recording()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    let reply = c
        .message("s@esp.example", &["a@b.test", "c@b.test"], b"x\r\n")
        .await;
    assert_eq!(reply, "451 4.7.1 Try again later\r\n");
    let counters = sink.counters();
    assert_eq!(counters.messages_deferred, 1);
    assert_eq!(counters.recipients_deferred, 2);
    assert_eq!(counters.messages_accepted, 0);
    assert!(sink.messages().is_empty());
}

#[tokio::test]
async fn bounces_chosen_recipients_and_refuses_data_without_any() {
    let sink = start(SinkConfig {
        rules: vec![
            Rule::bounce_local_parts(["nouser"])
                .with_reply(ReplySpec::parse("550 5.1.1 no such user").unwrap()),
            Rule::bounce_recipients(["gone@hotmail.test"]),
        ],
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    c.send(
        b"MAIL FROM:<s@esp.example>\r\nRCPT TO:<nouser@hotmail.test>\r\n\
          RCPT TO:<gone@HOTMAIL.test>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(c.reply().await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply().await, "550 5.1.1 no such user\r\n");
    assert!(c.reply().await.starts_with("550 5.1.1 The email account"));
    assert_eq!(c.reply().await, "554 5.5.1 No valid recipients\r\n");
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    let counters = sink.counters();
    assert_eq!(counters.recipients_bounced, 2);
    assert_eq!(counters.recipients_accepted, 0);
}

#[tokio::test]
async fn rate_limit_throttles_at_mail_and_closes() {
    let sink = start(SinkConfig {
        rate_limit: Some(RateLimit {
            at: ThrottleAt::Mail,
            burst: 2,
            ..RateLimit::per_second(0.1)
        }),
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    for _ in 0..2 {
        assert_eq!(c.cmd("MAIL FROM:<s@esp.example>").await, "250 2.1.0 Ok\r\n");
        assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    }
    let reply = c.cmd("MAIL FROM:<s@esp.example>").await;
    assert!(
        reply.starts_with("421 4.7.28 Our system has detected an unusual rate"),
        "{reply}"
    );
    assert!(c.closed().await);
    let counters = sink.counters();
    assert_eq!((counters.transactions, counters.throttled), (2, 1));
}

#[tokio::test]
async fn rate_limit_throttles_at_rcpt_or_data_without_closing() {
    for at in [ThrottleAt::Rcpt, ThrottleAt::Data] {
        let sink = start(SinkConfig {
            rate_limit: Some(RateLimit {
                at,
                burst: 1,
                close: false,
                reply: ReplySpec::parse("452 4.7.28 slow down").unwrap(),
                ..RateLimit::per_second(0.1)
            }),
            ..SinkConfig::default()
        })
        .await;
        let mut c = RawClient::greeted(sink.addr()).await;
        c.ehlo().await;
        let first = c.message("s@esp.example", &["a@b.test"], b"x\r\n").await;
        assert!(first.starts_with("250 2.0.0"), "{at:?}: {first}");
        assert_eq!(c.cmd("MAIL FROM:<s@esp.example>").await, "250 2.1.0 Ok\r\n");
        let rcpt = c.cmd("RCPT TO:<a@b.test>").await;
        match at {
            ThrottleAt::Rcpt => {
                assert_eq!(rcpt, "452 4.7.28 slow down\r\n");
                assert_eq!(c.cmd("DATA").await, "554 5.5.1 No valid recipients\r\n");
            }
            _ => {
                assert_eq!(rcpt, "250 2.1.5 Ok\r\n");
                assert!(c.cmd("DATA").await.starts_with("354"));
                c.send(b"x\r\n.\r\n").await;
                assert_eq!(c.reply().await, "452 4.7.28 slow down\r\n");
            }
        }
        assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n", "{at:?}");
        let counters = sink.counters();
        assert_eq!(counters.throttled, 1, "{at:?}");
        assert_eq!(counters.messages_accepted, 1, "{at:?}");
    }
}

#[tokio::test]
async fn clients_that_keep_pushing_get_blocked() {
    let sink = start(SinkConfig {
        rate_limit: Some(RateLimit {
            at: ThrottleAt::Mail,
            burst: 1,
            close: false,
            scope: LimitScope::ClientIp,
            ..RateLimit::per_second(0.01)
        }),
        block: Some(BlockRule::after(1, Duration::from_secs(60))),
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    assert_eq!(c.cmd("MAIL FROM:<s@esp.example>").await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.cmd("RSET").await, "250 2.0.0 Ok\r\n");
    for _ in 0..2 {
        let reply = c.cmd("MAIL FROM:<s@esp.example>").await;
        assert!(reply.starts_with("421 4.7.28 "), "{reply}");
    }
    // A new connection from the same address is blocked too.
    let mut d = RawClient::greeted(sink.addr()).await;
    d.ehlo().await;
    for client in [&mut c, &mut d] {
        let reply = client.cmd("MAIL FROM:<s@esp.example>").await;
        assert!(
            reply.starts_with("550 5.7.1 ") && reply.contains("blocked"),
            "{reply}"
        );
        assert_eq!(
            client.cmd("RCPT TO:<a@b.test>").await,
            "503 5.5.1 Need MAIL command first\r\n"
        );
    }
    let counters = sink.counters();
    assert_eq!((counters.throttled, counters.blocked), (2, 2));
    // A pipelining client keeps getting 550 and 503s, which do not count as its mistakes:
    // far more than MAX_ERRORS_PER_SESSION of them leave the connection open.
    for _ in 0..15 {
        d.send(b"MAIL FROM:<s@esp.example>\r\nRCPT TO:<a@b.test>\r\nDATA\r\n")
            .await;
        assert!(d.reply().await.starts_with("550 5.7.1 "));
        assert_eq!(d.reply().await, "503 5.5.1 Need MAIL command first\r\n");
        assert_eq!(d.reply().await, "503 5.5.1 Need MAIL command first\r\n");
    }
    assert_eq!(d.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
}

#[tokio::test]
async fn starttls_drops_plaintext_and_records_tls() {
    let sink = start(SinkConfig {
        extensions: SinkConfig::default().extensions | Extensions::STARTTLS,
        ..recording()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    assert!(c.ehlo().await.contains("250-STARTTLS\r\n"));
    // The NOOP rides in the same packet, in plaintext: it must never be answered.
    c.send(b"STARTTLS\r\nNOOP\r\n").await;
    assert_eq!(c.reply().await, "220 2.0.0 Ready to start TLS\r\n");
    c.start_tls().await;
    assert_stream_is_usable(c.stream());
    // HELO was forgotten.
    assert_eq!(
        c.cmd("MAIL FROM:<s@esp.example>").await,
        "503 5.5.1 Send HELO/EHLO first\r\n"
    );
    let ehlo = c.ehlo().await;
    assert!(!ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(c.cmd("STARTTLS").await, "503 5.5.1 TLS already active\r\n");
    let reply = c
        .message("s@esp.example", &["a@b.test"], b"secret\r\n")
        .await;
    assert!(reply.starts_with("250 2.0.0"), "{reply}");
    let messages = sink.wait_for_messages(1, REPLY_TIMEOUT).await.unwrap();
    assert!(messages[0].tls);
    assert_eq!(messages[0].body, b"secret\r\n");
    assert_eq!(sink.counters().tls_sessions, 1);
}

#[tokio::test]
async fn starttls_is_refused_when_not_offered() {
    let sink = start(SinkConfig::default()).await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    assert_eq!(
        c.cmd("STARTTLS").await,
        "502 5.5.1 STARTTLS not offered\r\n"
    );
}

#[tokio::test]
async fn bdat_chunks_make_one_message() {
    let sink = start(recording()).await;
    let mut c = RawClient::greeted(sink.addr()).await;
    c.ehlo().await;
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<a@b.test>\r\nBDAT 5\r\nhe.lo")
        .await;
    assert_eq!(c.reply().await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.1.5 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.0.0 5 octets received\r\n");
    // The second chunk arrives split across writes, with a bare LF BDAT does not care about.
    c.send(b"BDAT 9 LAST\r\n wo").await;
    c.send(b"rld\n\r\n").await;
    let done = c.reply().await;
    assert!(done.starts_with("250 2.0.0 Ok: queued"), "{done}");
    assert_eq!(
        c.cmd("DATA").await,
        "503 5.5.1 Need MAIL command first\r\n",
        "the transaction ended with LAST"
    );
    let messages = sink.wait_for_messages(1, REPLY_TIMEOUT).await.unwrap();
    let m = &messages[0];
    assert_eq!(m.body, b"he.lo world\n\r\n");
    assert_eq!(m.mail_from, "");
    assert!(m.bdat);
}

#[tokio::test]
async fn bdat_is_refused_but_read_when_chunking_is_off() {
    let sink = start(SinkConfig {
        extensions: SinkConfig::default().extensions - Extensions::CHUNKING,
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    let ehlo = c.ehlo().await;
    assert!(!ehlo.contains("CHUNKING"));
    c.send(b"MAIL FROM:<>\r\nRCPT TO:<a@b.test>\r\nBDAT 6 LAST\r\nNOOP\r\n")
        .await;
    assert_eq!(c.reply().await, "250 2.1.0 Ok\r\n");
    assert_eq!(c.reply().await, "250 2.1.5 Ok\r\n");
    // The chunk's "NOOP\r\n" is data, not a command.
    assert_eq!(c.reply().await, "502 5.5.1 BDAT not offered\r\n");
    assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
}

#[tokio::test]
async fn bare_line_feeds_are_refused_or_kept_as_configured() {
    let strict = start(recording()).await;
    let lenient = start(SinkConfig {
        bare_line_ends: BareLineEnds::Accept,
        ..recording()
    })
    .await;
    // "\n.\n" must not end the data: the smuggled MAIL is message text.
    let wire = b"a\n.\nMAIL FROM:<evil@x.test>\r\n..b\r\n.\r\n";
    for (sink, expected) in [
        (
            &strict,
            "550 5.5.2 Message text must use <CR><LF> line ends",
        ),
        (&lenient, "250 2.0.0 Ok"),
    ] {
        let mut c = RawClient::greeted(sink.addr()).await;
        c.ehlo().await;
        c.send(b"MAIL FROM:<s@esp.example>\r\nRCPT TO:<a@b.test>\r\nDATA\r\n")
            .await;
        for _ in 0..3 {
            c.reply().await;
        }
        c.send(wire).await;
        let reply = c.reply().await;
        assert!(reply.starts_with(expected), "{reply}");
        assert_eq!(c.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
    }
    assert_eq!(strict.counters().messages_refused, 1);
    let kept = lenient.wait_for_messages(1, REPLY_TIMEOUT).await.unwrap();
    assert_eq!(kept[0].body, b"a\n.\nMAIL FROM:<evil@x.test>\r\n.b\r\n");
}

#[tokio::test]
async fn size_limits_are_enforced() {
    let sink = start(SinkConfig {
        max_message_size: 10,
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    assert!(c.ehlo().await.contains("250 SIZE 10\r\n"));
    assert_eq!(
        c.cmd("MAIL FROM:<s@esp.example> SIZE=11").await,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    let reply = c
        .message("s@esp.example", &["a@b.test"], b"0123456789abc\r\n")
        .await;
    assert_eq!(
        reply,
        "552 5.3.4 Message size exceeds fixed maximum message size\r\n"
    );
    assert_eq!(sink.counters().messages_refused, 1);
}

#[tokio::test]
async fn enhanced_codes_follow_the_extension() {
    let sink = start(SinkConfig {
        extensions: Extensions::PIPELINING,
        rules: vec![Rule::bounce_fraction(1.0)],
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(sink.addr()).await;
    assert_eq!(
        c.cmd("EHLO c.example").await,
        "250-mx.sink.test at your service\r\n250 PIPELINING\r\n"
    );
    assert_eq!(c.cmd("MAIL FROM:<s@esp.example>").await, "250 Ok\r\n");
    let reply = c.cmd("RCPT TO:<a@b.test>").await;
    assert!(reply.starts_with("550 The email account"), "{reply}");
    // Extensions not offered are refused.
    assert_eq!(c.cmd("RSET").await, "250 Ok\r\n");
    assert_eq!(
        c.cmd("MAIL FROM:<s@esp.example> BODY=8BITMIME").await,
        "555 BODY=8BITMIME not offered\r\n"
    );
}

#[tokio::test]
async fn bad_clients_get_errors_then_are_disconnected() {
    let sink = start(SinkConfig::default()).await;
    let mut c = RawClient::greeted(sink.addr()).await;
    let table = [
        (
            "MAIL FROM:<s@esp.example>",
            "503 5.5.1 Send HELO/EHLO first\r\n",
        ),
        ("FOO", "500 5.5.1 Command not recognized\r\n"),
        ("HELO", "501 5.5.4 Syntax error in arguments\r\n"),
    ];
    for (line, expected) in table {
        assert_eq!(c.cmd(line).await, expected, "{line}");
    }
    assert_eq!(
        c.cmd("NOOP\nNOOP").await,
        "500 5.5.2 Command lines must end with <CR><LF>\r\n"
    );
    assert_eq!(c.reply().await, "250 2.0.0 Ok\r\n");
    let long = format!("NOOP {}", "x".repeat(2000));
    assert_eq!(c.cmd(&long).await, "500 5.5.6 Line too long\r\n");
    c.ehlo().await;
    assert_eq!(
        c.cmd("RCPT TO:<a@b.test>").await,
        "503 5.5.1 Need MAIL command first\r\n"
    );
    assert_eq!(
        c.cmd("MAIL FROM:<no-at-sign>").await,
        "553 5.1.7 Bad sender address syntax\r\n"
    );
    // Seven mistakes so far; the twentieth ends the session.
    for _ in 8..=20 {
        assert_eq!(c.cmd("XYZZY").await, "500 5.5.1 Command not recognized\r\n");
    }
    assert_eq!(
        c.reply().await,
        "421 4.7.0 Too many errors, closing connection\r\n"
    );
    assert!(c.closed().await);
    // Binary garbage and an abrupt close do not hurt the sink.
    let mut g = RawClient::connect(sink.addr()).await;
    g.send(&[0u8, 0xff, 0x80, b'\r', b'\n', 0x1b]).await;
    drop(g);
    let mut d = RawClient::greeted(sink.addr()).await;
    assert_eq!(d.cmd("NOOP").await, "250 2.0.0 Ok\r\n");
}

#[tokio::test]
async fn connection_limit_and_counters() {
    let sink = start(SinkConfig {
        max_connections: 2,
        ..SinkConfig::default()
    })
    .await;
    let a = RawClient::greeted(sink.addr()).await;
    let mut b = RawClient::greeted(sink.addr()).await;
    let mut c = RawClient::connect(sink.addr()).await;
    assert_eq!(
        c.reply().await,
        "421 4.3.2 Too many connections, try again later\r\n"
    );
    assert!(c.closed().await);
    let counters = sink.counters();
    assert_eq!(counters.connections_total, 3);
    assert_eq!(counters.connections_now, 2);
    assert_eq!(counters.connections_max, 2);
    assert_eq!(counters.connections_refused, 1);
    assert_eq!(b.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    drop(a);
    // Sessions end asynchronously: wait (bounded) for both slots to be released.
    let deadline = tokio::time::Instant::now() + REPLY_TIMEOUT;
    while sink.counters().connections_now > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "sessions did not end"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _d = RawClient::greeted(sink.addr()).await;
    assert_eq!(sink.counters().connections_max, 2);
}

#[tokio::test]
async fn greeting_refusal_and_command_delay() {
    let refusing = start(SinkConfig {
        greeting_refusal: Some(GreetingRefusal {
            fraction: 1.0,
            reply: ReplySpec::default_greeting_refusal(),
        }),
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::connect(refusing.addr()).await;
    assert_eq!(
        c.reply().await,
        "421 4.7.0 Try again later, closing connection\r\n"
    );
    assert!(c.closed().await);
    assert_eq!(refusing.counters().greetings_refused, 1);

    let slow = start(SinkConfig {
        command_delay: Duration::from_millis(60),
        ..SinkConfig::default()
    })
    .await;
    let mut c = RawClient::greeted(slow.addr()).await;
    let started = std::time::Instant::now();
    c.send(b"NOOP\r\nNOOP\r\n").await;
    c.reply().await;
    c.reply().await;
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn stop_ends_idle_sessions_with_421() {
    let sink = start(SinkConfig::default()).await;
    let addr = sink.addr();
    let mut c = RawClient::greeted(addr).await;
    c.ehlo().await;
    sink.stop().await;
    assert_eq!(
        c.reply().await,
        "421 4.3.2 Service shutting down, closing connection\r\n"
    );
    assert!(c.closed().await);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn waiting_times_out_with_the_count_so_far() {
    let sink = start(recording()).await;
    let err = sink
        .wait_for_messages(1, Duration::from_millis(20))
        .await
        .unwrap_err();
    assert!(
        matches!(err, SinkError::Timeout { wanted: 1, got: 0 }),
        "{err}"
    );
    let plain = start(SinkConfig::default()).await;
    assert!(matches!(
        plain.wait_for_messages(1, Duration::from_millis(1)).await,
        Err(SinkError::NotRecording)
    ));
}

#[tokio::test]
async fn binds_to_other_loopback_addresses() {
    let sink = start(SinkConfig {
        listen: "127.0.0.2:0".parse().unwrap(),
        ..SinkConfig::default()
    })
    .await;
    assert_eq!(sink.addr().ip().to_string(), "127.0.0.2");
    let mut c = RawClient::greeted(sink.addr()).await;
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
}
