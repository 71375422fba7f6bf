//! A minimal SMTP client for load runs: greeting, EHLO, optional STARTTLS (no certificate
//! check), and transactions with or without pipelining, by DATA or BDAT.
//!
//! Invariants: every read waits at most the configured timeout; the reply buffer is bounded
//! by [`smtp_proto::ReplyParser`]'s limits; after a `421` or any error the connection is
//! given up (the caller drops it).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use rustls_pki_types::ServerName;
use smtp_proto::{Capabilities, Extensions, ReplyCode, ReplyError, ReplyParser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// How much to ask the socket for at a time.
const READ_CHUNK: usize = 8 * 1024;

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// A socket or TLS error.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// No reply within the timeout.
    #[error("timed out waiting for a reply")]
    Timeout,
    /// The server closed the connection.
    #[error("connection closed by the server")]
    Closed,
    /// The server sent something that is not an SMTP reply.
    #[error("bad reply: {0}")]
    Reply(#[from] ReplyError),
    /// The greeting was not `220`.
    #[error("greeting refused with {0}")]
    Greeting(u16),
    /// A reply other than the one expected at a step that must succeed (EHLO, STARTTLS).
    #[error("unexpected reply {0}")]
    Unexpected(u16),
    /// TLS was asked for, and the server does not offer STARTTLS.
    #[error("server does not offer STARTTLS")]
    NoStartTls,
}

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageResult {
    /// `250` at the end of data.
    Accepted,
    /// A 4xx at MAIL, for all recipients, or at the end of data.
    Deferred,
    /// A 5xx at MAIL, for all recipients, or at the end of data.
    Bounced,
}

/// What one transaction gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The message's fate.
    pub result: MessageResult,
    /// RCPT replies by class.
    pub rcpt_accepted: u32,
    /// RCPT replies that were 4xx.
    pub rcpt_deferred: u32,
    /// RCPT replies that were 5xx.
    pub rcpt_bounced: u32,
    /// The server said `421`: the connection is over.
    pub closing: bool,
    /// From the first command written to the final reply.
    pub latency: Duration,
}

/// A message to send: envelope and body (raw for BDAT, dot-stuffed for DATA).
#[derive(Debug, Clone, Copy)]
pub struct Envelope<'a> {
    /// The reverse-path, without brackets.
    pub from: &'a str,
    /// Recipients, without brackets.
    pub to: &'a [String],
    /// The body as stored (CRLF line ends), sent as is with BDAT.
    pub body: &'a [u8],
    /// The body dot-stuffed and terminated, sent after 354.
    pub wire: &'a [u8],
}

/// An open SMTP connection, past EHLO (and STARTTLS if asked).
pub struct Connection {
    stream: Stream,
    rbuf: Vec<u8>,
    caps: Capabilities,
    timeout: Duration,
    tls: bool,
}

fn class(code: ReplyCode) -> MessageResult {
    if code.is_success() {
        MessageResult::Accepted
    } else if code.is_transient() {
        MessageResult::Deferred
    } else {
        MessageResult::Bounced
    }
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, and with `tls` does STARTTLS and EHLO again.
    pub async fn open(
        server: SocketAddr,
        helo: &str,
        tls: Option<&TlsConnector>,
        timeout: Duration,
    ) -> Result<Connection, ClientError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(server))
            .await
            .map_err(|_| ClientError::Timeout)??;
        tcp.set_nodelay(true)?;
        let mut conn = Connection {
            stream: Either::Left(tcp),
            rbuf: Vec::with_capacity(READ_CHUNK),
            caps: Capabilities::default(),
            timeout,
            tls: false,
        };
        let greeting = conn.read_code().await?;
        if greeting != ReplyCode::READY {
            return Err(ClientError::Greeting(greeting.get()));
        }
        conn.ehlo(helo).await?;
        if let Some(connector) = tls {
            if !conn.caps.has(Extensions::STARTTLS) {
                return Err(ClientError::NoStartTls);
            }
            conn.write(b"STARTTLS\r\n").await?;
            let code = conn.read_code().await?;
            if code != ReplyCode::READY {
                return Err(ClientError::Unexpected(code.get()));
            }
            let Either::Left(tcp) = conn.stream else {
                return Err(ClientError::Unexpected(code.get()));
            };
            let name = ServerName::try_from("sink.invalid").expect("a valid name");
            let tls = tokio::time::timeout(timeout, connector.connect(name, tcp))
                .await
                .map_err(|_| ClientError::Timeout)??;
            conn.stream = Either::Right(tls);
            conn.rbuf.clear();
            conn.tls = true;
            conn.ehlo(helo).await?;
        }
        Ok(conn)
    }

    /// True after STARTTLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// What the server offered after the last EHLO.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    async fn ehlo(&mut self, helo: &str) -> Result<(), ClientError> {
        self.write(format!("EHLO {helo}\r\n").as_bytes()).await?;
        self.fill_reply().await?;
        let (reply, used) = ReplyParser::new()
            .parse(&self.rbuf)?
            .expect("fill_reply leaves a whole reply");
        let code = reply.code();
        if !code.is_success() {
            return Err(ClientError::Unexpected(code.get()));
        }
        self.caps = Capabilities::from_ehlo(&reply);
        self.rbuf.drain(..used);
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| ClientError::Timeout)??;
        Ok(())
    }

    /// Reads until the buffer starts with a whole reply.
    async fn fill_reply(&mut self) -> Result<(), ClientError> {
        while ReplyParser::new().parse(&self.rbuf)?.is_none() {
            self.rbuf.reserve(READ_CHUNK);
            let n = tokio::time::timeout(self.timeout, self.stream.read_buf(&mut self.rbuf))
                .await
                .map_err(|_| ClientError::Timeout)??;
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
        Ok(())
    }

    /// Reads one reply and returns its code.
    async fn read_code(&mut self) -> Result<ReplyCode, ClientError> {
        self.fill_reply().await?;
        let (reply, used) = ReplyParser::new()
            .parse(&self.rbuf)?
            .expect("fill_reply leaves a whole reply");
        let code = reply.code();
        self.rbuf.drain(..used);
        Ok(code)
    }

    /// Sends one message. With `pipelining` (and the server offering it) MAIL, the RCPTs
    /// and DATA (or BDAT with the body) go in one write; otherwise one command at a time.
    /// With `chunking` (and the server offering it) the body goes by `BDAT n LAST`.
    pub async fn send(
        &mut self,
        envelope: Envelope<'_>,
        pipelining: bool,
        chunking: bool,
    ) -> Result<Outcome, ClientError> {
        let pipelining = pipelining && self.caps.has(Extensions::PIPELINING);
        let chunking = chunking && self.caps.has(Extensions::CHUNKING);
        let started = Instant::now();
        let mut mail = format!("MAIL FROM:<{}>", envelope.from);
        if self.caps.has(Extensions::SIZE) {
            mail.push_str(&format!(" SIZE={}", envelope.body.len()));
        }
        mail.push_str("\r\n");
        let rcpts: Vec<String> = envelope
            .to
            .iter()
            .map(|r| format!("RCPT TO:<{r}>\r\n"))
            .collect();
        let bdat = format!("BDAT {} LAST\r\n", envelope.body.len());
        let mut outcome = Outcome {
            result: MessageResult::Accepted,
            rcpt_accepted: 0,
            rcpt_deferred: 0,
            rcpt_bounced: 0,
            closing: false,
            latency: Duration::ZERO,
        };
        if pipelining {
            let mut burst = Vec::with_capacity(64 * (rcpts.len() + 2) + envelope.body.len());
            burst.extend_from_slice(mail.as_bytes());
            for rcpt in &rcpts {
                burst.extend_from_slice(rcpt.as_bytes());
            }
            if chunking {
                burst.extend_from_slice(bdat.as_bytes());
                burst.extend_from_slice(envelope.body);
            } else {
                burst.extend_from_slice(b"DATA\r\n");
            }
            self.write(&burst).await?;
        } else {
            self.write(mail.as_bytes()).await?;
        }
        let mail_code = self.read_code().await?;
        if mail_code.get() == 421 || (!mail_code.is_success() && !pipelining) {
            // With 421 the server hangs up: the pipelined replies will not come.
            outcome.closing = mail_code.get() == 421;
            outcome.result = class(mail_code);
            return Ok(outcome);
        }
        for rcpt in &rcpts {
            if !pipelining {
                self.write(rcpt.as_bytes()).await?;
            }
            let code = self.read_code().await?;
            // Replies to RCPTs pipelined after a refused MAIL say nothing of them.
            if mail_code.is_success() {
                match class(code) {
                    MessageResult::Accepted => outcome.rcpt_accepted += 1,
                    MessageResult::Deferred => outcome.rcpt_deferred += 1,
                    MessageResult::Bounced => outcome.rcpt_bounced += 1,
                }
            }
            if code.get() == 421 {
                outcome.closing = true;
                break;
            }
        }
        let refused = if !mail_code.is_success() {
            Some(class(mail_code))
        } else if outcome.rcpt_accepted == 0 {
            Some(if outcome.rcpt_deferred > 0 || outcome.closing {
                MessageResult::Deferred
            } else {
                MessageResult::Bounced
            })
        } else {
            None
        };
        if outcome.closing {
            outcome.result = refused.unwrap_or(MessageResult::Deferred);
            return Ok(outcome);
        }
        if let Some(result) = refused {
            outcome.result = result;
            if pipelining {
                // The DATA or BDAT reply is still due (a refusal).
                let code = self.read_code().await?;
                if code == ReplyCode::START_DATA && !chunking {
                    // A server that starts data anyway gets a message and its reply read.
                    self.write(envelope.wire).await?;
                    self.read_code().await?;
                }
            }
            // The server may keep the transaction open after refusing DATA: end it.
            self.write(b"RSET\r\n").await?;
            outcome.closing |= self.read_code().await?.get() == 421;
            return Ok(outcome);
        }
        let final_code = if chunking {
            if !pipelining {
                let mut chunk = Vec::with_capacity(bdat.len() + envelope.body.len());
                chunk.extend_from_slice(bdat.as_bytes());
                chunk.extend_from_slice(envelope.body);
                self.write(&chunk).await?;
            }
            self.read_code().await?
        } else {
            if !pipelining {
                self.write(b"DATA\r\n").await?;
            }
            let code = self.read_code().await?;
            if code != ReplyCode::START_DATA {
                code
            } else {
                self.write(envelope.wire).await?;
                self.read_code().await?
            }
        };
        outcome.closing |= final_code.get() == 421;
        outcome.result = class(final_code);
        outcome.latency = started.elapsed();
        Ok(outcome)
    }

    /// Says QUIT and closes, without waiting long.
    pub async fn quit(mut self) {
        let timeout = self.timeout.min(Duration::from_secs(1));
        let _ = tokio::time::timeout(timeout, async {
            self.write(b"QUIT\r\n").await?;
            self.read_code().await?;
            self.stream.shutdown().await?;
            Ok::<(), ClientError>(())
        })
        .await;
    }
}
