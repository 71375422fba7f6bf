//! Test harness shared by the end-to-end tests: an MTA on a loopback port with a spool in a
//! temporary directory (in-process or as a child process), and a raw SMTP client that sends
//! exact bytes and reads replies with the real reply parser.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mta_core::config::Config;
use mta_core::server::Server;
use queue::{MessageId, SledSpool, Spool};
use rustls::pki_types::ServerName;
use smtp_proto::ReplyParser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A whole bounded wait for any single reply in tests.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// An in-process MTA on 127.0.0.1 with its own spool.
pub struct TestServer {
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub spool: Arc<SledSpool>,
    /// Messages the server handed on for delivery, in order.
    pub submitted: Arc<Submitted>,
    pub dir: tempfile::TempDir,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    serving: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts an MTA whose configuration is `extra` (TOML) with the spool in a temporary
    /// directory. When `extra` has no `[[listener]]`, one listener on 127.0.0.1:0 is added
    /// with `listener_keys` appended to it.
    pub async fn start(extra: &str) -> TestServer {
        TestServer::start_with(extra, "").await
    }

    /// Like [`TestServer::start`], with keys for the default listener.
    pub async fn start_with(extra: &str, listener_keys: &str) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let spool_path = dir.path().join("spool");
        let mut text =
            format!("hostname = \"mta.test\"\n{extra}\n[spool]\npath = {spool_path:?}\n");
        if !extra.contains("[[listener]]") {
            text.push_str(&format!(
                "[[listener]]\naddress = \"127.0.0.1:0\"\n{listener_keys}\n"
            ));
        }
        let config = Arc::new(Config::from_toml(&text).unwrap_or_else(|e| panic!("{e}\n{text}")));
        let spool = mta_core::lifecycle::open_spool(&config)
            .await
            .expect("spool");
        let submitted = Arc::new(Submitted::default());
        let signer = mta_core::server::SignerHandle::new(config.signer().expect("DKIM keys"));
        let server = Server::bind(config, spool.clone(), submitted.clone(), signer)
            .await
            .expect("bind");
        let addrs = server.local_addrs();
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let serving = tokio::spawn(server.serve(shutdown.clone(), tracker.clone()));
        TestServer {
            addr: addrs[0],
            addrs,
            spool,
            submitted,
            dir,
            shutdown,
            tracker,
            serving,
        }
    }

    /// A connected client that has read the greeting.
    pub async fn client(&self) -> Client {
        let mut client = Client::connect(self.addr).await;
        client.expect(220).await;
        client
    }

    /// Stops accepting, waits for sessions, closes the spool.
    pub async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.serving.await;
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.tracker.wait()).await;
        self.spool.close().await.expect("close spool");
    }

    /// The stored body and envelope of a queued message, by the id from its 250 reply.
    pub fn stored(&self, reply_text: &str) -> (queue::Envelope, Vec<u8>) {
        let id = queued_id(reply_text);
        let envelope = self.spool.envelope(id).expect("envelope in spool");
        let body = self
            .spool
            .body(id)
            .expect("body in spool")
            .as_ref()
            .to_vec();
        (envelope, body)
    }
}

/// Records what the server hands to the delivery engine (the engine is not under test here).
#[derive(Default)]
pub struct Submitted(std::sync::Mutex<Vec<MessageId>>);

impl Submitted {
    pub fn ids(&self) -> Vec<MessageId> {
        self.0.lock().unwrap().clone()
    }
}

impl mta_core::delivery::Submit for Submitted {
    fn submit(&self, id: MessageId, _envelope: &queue::Envelope) {
        self.0.lock().unwrap().push(id);
    }
}

/// The id in a `250 2.0.0 Ok: queued as ID` reply.
pub fn queued_id(reply_text: &str) -> MessageId {
    let id = reply_text
        .rsplit(' ')
        .next()
        .unwrap_or_else(|| panic!("no id in {reply_text:?}"));
    id.trim()
        .parse()
        .unwrap_or_else(|_| panic!("bad id in {reply_text:?}"))
}

type ClientStream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// A raw SMTP client: exact bytes out, parsed replies in.
pub struct Client {
    stream: Option<ClientStream>,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream: Some(Either::Left(tcp)),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        let stream = self.stream.as_mut().expect("stream");
        stream.write_all(bytes.as_ref()).await.expect("write");
        stream.flush().await.expect("flush");
    }

    /// Reads one reply: (code, text of all lines joined).
    pub async fn reply(&mut self) -> (u16, String) {
        self.try_reply()
            .await
            .expect("connection closed before a reply")
    }

    /// Reads one reply, or `None` if the server closed the connection first.
    pub async fn try_reply(&mut self) -> Option<(u16, String)> {
        let parser = ReplyParser::new();
        loop {
            if let Some((reply, used)) = parser.parse(&self.buf).expect("valid reply") {
                let out = (
                    reply.code().get(),
                    String::from_utf8_lossy(reply.raw()).into_owned(),
                );
                self.buf.drain(..used);
                return Some(out);
            }
            let stream = self.stream.as_mut().expect("stream");
            let mut chunk = [0u8; 16 * 1024];
            let n = tokio::time::timeout(REPLY_TIMEOUT, stream.read(&mut chunk))
                .await
                .expect("reply in time")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads a reply and checks its code; returns its text.
    pub async fn expect(&mut self, code: u16) -> String {
        let (got, text) = self.reply().await;
        assert_eq!(got, code, "expected {code}, got {text:?}");
        text
    }

    /// Sends a line (CRLF added) and checks the reply code.
    pub async fn cmd(&mut self, line: &str, code: u16) -> String {
        self.send(format!("{line}\r\n")).await;
        self.expect(code).await
    }

    /// True when the server has closed the connection (reads EOF within the timeout).
    pub async fn is_closed(&mut self) -> bool {
        self.try_reply().await.is_none()
    }

    /// STARTTLS and the handshake (any certificate accepted: tests use self-signed ones).
    pub async fn starttls(&mut self) {
        self.cmd("STARTTLS", 220).await;
        self.tls_handshake_only().await;
    }

    /// The TLS handshake after a 220 to STARTTLS was read.
    pub async fn tls_handshake_only(&mut self) {
        assert!(
            self.buf.is_empty(),
            "server sent data after 220 to STARTTLS"
        );
        let Some(Either::Left(tcp)) = self.stream.take() else {
            panic!("already TLS");
        };
        // The MTA's certificate is self-signed: any certificate, real handshake signatures.
        let connector = benches::tls::insecure_connector().expect("TLS connector");
        let name = ServerName::try_from("mta.test").expect("name");
        let tls = connector.connect(name, tcp).await.expect("TLS handshake");
        self.stream = Some(Either::Right(tls));
    }

    /// EHLO, MAIL, RCPT(s), DATA with `body`; returns the final reply.
    pub async fn send_message(&mut self, from: &str, to: &[&str], body: &[u8]) -> (u16, String) {
        self.cmd(&format!("MAIL FROM:<{from}>"), 250).await;
        for rcpt in to {
            self.cmd(&format!("RCPT TO:<{rcpt}>"), 250).await;
        }
        self.cmd("DATA", 354).await;
        self.send(body).await;
        self.send(b".\r\n").await;
        self.reply().await
    }
}

/// A cheap argon2 hash for tests (the default parameters are slow in debug builds).
pub fn cheap_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(256, 1, 1, None).expect("params");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"fixed-test-salt").expect("salt");
    argon
        .hash_password(password.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

/// The `mta` binary built for these tests.
pub fn mta_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mta"))
}

/// A free loopback port (bound then released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Waits until something listens on `addr` (bounded).
pub async fn wait_listening(addr: SocketAddr, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Writes a config file for a child-process MTA and returns its path. The delivery log goes
/// under `dir`; DNS and delivery stay on loopback: `extra` (top-level keys and sections,
/// written first) must route the mail, and `[dns]` points at a port where nothing answers
/// unless `extra` has its own `[dns]`.
pub fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("mta.toml");
    let spool = dir.join("spool");
    let log = dir.join("log").join("delivery.jsonl");
    let admin = dir.join("admin.sock");
    let dns = if extra.contains("[dns]") {
        String::new()
    } else {
        format!(
            "[dns]\nnameservers = [\"127.0.0.1:{}\"]\ntimeout = \"1s\"\n",
            free_port()
        )
    };
    let text = format!(
        "hostname = \"mta.test\"\n{extra}\n{dns}[delivery_log]\npath = {log:?}\n[admin]\nsocket = {admin:?}\n[spool]\npath = {spool:?}\n[[listener]]\naddress = \"127.0.0.1:{port}\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path
}
