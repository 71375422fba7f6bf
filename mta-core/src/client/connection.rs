//! Opening a client session: connect, greeting, EHLO, STARTTLS.
//!
//! Invariants: after `open` returns, the session has read the greeting and a successful EHLO
//! (or HELO) and, when TLS was negotiated, a second EHLO over TLS; the capabilities are those
//! of the last EHLO. A session that saw any error is not reused.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::BytesMut;
use rustls_pki_types::ServerName;
use smtp_proto::{Capabilities, Command, Extensions, ReplyParser};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::either::Either;

use super::error::{ClientError, Stage};
use super::reply::SmtpReply;
use super::{ClientTimeouts, tls};

type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// How STARTTLS is used towards a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Use TLS when offered; deliver in plaintext otherwise (or when the handshake fails).
    #[default]
    Opportunistic,
    /// Only deliver over TLS: a server without STARTTLS, or a failed handshake, is a
    /// temporary failure.
    Required,
    /// Never use TLS.
    Disabled,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectParams {
    /// The server's address and port.
    pub addr: SocketAddr,
    /// The MX host name (for TLS SNI and logs).
    pub mx_name: String,
    /// The local address to connect from (the egress source); `None`: the system's choice.
    pub source: Option<IpAddr>,
    /// The name to give in EHLO (the source's name).
    pub ehlo_name: String,
    /// STARTTLS policy.
    pub tls: TlsMode,
    /// Timeouts.
    pub timeouts: ClientTimeouts,
}

/// An open SMTP session, ready for transactions.
pub struct Connection {
    /// `None` only while the TCP stream is inside the TLS handshake, or after it failed.
    pub(super) stream: Option<Stream>,
    pub(super) rbuf: BytesMut,
    pub(super) wbuf: Vec<u8>,
    pub(super) params: ConnectParams,
    pub(super) caps: Capabilities,
    /// The server's greeting text, for logs.
    greeting: SmtpReply,
    /// TLS protocol and cipher, when TLS is on.
    tls: Option<String>,
    /// False once anything went wrong: the connection must not be reused.
    pub(super) healthy: bool,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO and negotiates TLS as `params.tls` asks.
    pub async fn open(params: ConnectParams) -> Result<Connection, ClientError> {
        let addr = params.addr;
        let tcp = connect(&params).await?;
        let _ = tcp.set_nodelay(true);
        let mut conn = Connection {
            stream: Some(Either::Left(tcp)),
            rbuf: BytesMut::with_capacity(4096),
            wbuf: Vec::with_capacity(4096),
            caps: Capabilities::default(),
            greeting: SmtpReply::local(220, (2, 0, 0), ""),
            tls: None,
            healthy: true,
            params,
        };
        let greeting = conn
            .read_reply(Stage::Greeting, conn.params.timeouts.greeting)
            .await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused {
                addr,
                stage: Stage::Greeting,
                reply: greeting,
            });
        }
        conn.greeting = greeting;
        conn.ehlo().await?;
        match conn.params.tls {
            TlsMode::Disabled => {}
            mode => {
                if conn.caps.has(Extensions::STARTTLS) {
                    match conn.start_tls().await {
                        Ok(()) => conn.ehlo().await?,
                        Err(e) if mode == TlsMode::Required => return Err(e),
                        // The failed handshake left the TCP stream unusable: reconnect in
                        // plaintext rather than lose the delivery.
                        Err(_) => {
                            let mut plain = ConnectParams {
                                ..conn.params.clone()
                            };
                            plain.tls = TlsMode::Disabled;
                            return Box::pin(Connection::open(plain)).await;
                        }
                    }
                } else if mode == TlsMode::Required {
                    return Err(ClientError::Tls {
                        addr,
                        reason: "the server does not offer STARTTLS".into(),
                    });
                }
            }
        }
        Ok(conn)
    }

    /// The capabilities of the last EHLO.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// TLS version and cipher, when TLS is on.
    pub fn tls(&self) -> Option<&str> {
        self.tls.as_deref()
    }

    /// The server's greeting.
    pub fn greeting(&self) -> &SmtpReply {
        &self.greeting
    }

    /// Where this connection goes.
    pub fn params(&self) -> &ConnectParams {
        &self.params
    }

    /// True while the session can carry another message.
    pub fn is_healthy(&self) -> bool {
        self.healthy
    }

    /// Ends the session politely (QUIT), without waiting long. After the 221 the server
    /// closes the connection; we wait (briefly) for that close, so a pool never opens its
    /// next connection while the server still counts this one.
    pub async fn quit(mut self) {
        let quick = Duration::from_secs(5).min(self.params.timeouts.command);
        if self.healthy {
            self.wbuf.clear();
            Command::Quit.write_to(&mut self.wbuf);
            if self.flush(Stage::Quit, quick).await.is_ok() {
                let _ = self.read_reply(Stage::Quit, quick).await;
            }
        }
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(quick, stream.shutdown()).await;
            let mut sink = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
        }
    }

    async fn ehlo(&mut self) -> Result<(), ClientError> {
        let addr = self.params.addr;
        let timeout = self.params.timeouts.command;
        self.wbuf.clear();
        Command::Ehlo {
            host: self.params.ehlo_name.as_str().into(),
        }
        .write_to(&mut self.wbuf);
        self.flush(Stage::Ehlo, timeout).await?;
        let (caps, reply) = self.read_ehlo(timeout).await?;
        if reply.is_success() {
            self.caps = caps;
            return Ok(());
        }
        if reply.is_transient() {
            return Err(ClientError::Refused {
                addr,
                stage: Stage::Ehlo,
                reply,
            });
        }
        // A server that does not know EHLO: fall back to HELO, without extensions.
        self.wbuf.clear();
        Command::Helo {
            host: self.params.ehlo_name.as_str().into(),
        }
        .write_to(&mut self.wbuf);
        self.flush(Stage::Ehlo, timeout).await?;
        let reply = self.read_reply(Stage::Ehlo, timeout).await?;
        if !reply.is_success() {
            return Err(ClientError::Refused {
                addr,
                stage: Stage::Ehlo,
                reply,
            });
        }
        self.caps = Capabilities::default();
        Ok(())
    }

    /// Reads the EHLO reply and its capabilities.
    async fn read_ehlo(
        &mut self,
        timeout: Duration,
    ) -> Result<(Capabilities, SmtpReply), ClientError> {
        let addr = self.params.addr;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match ReplyParser::new().parse(&self.rbuf) {
                Ok(Some((reply, used))) => {
                    let caps = Capabilities::from_ehlo(&reply);
                    let owned = SmtpReply::from_reply(&reply);
                    let _ = self.rbuf.split_to(used);
                    return Ok((caps, owned));
                }
                Ok(None) => self.read_more(Stage::Ehlo, deadline).await?,
                Err(source) => {
                    self.healthy = false;
                    return Err(ClientError::Protocol {
                        addr,
                        stage: Stage::Ehlo,
                        source,
                    });
                }
            }
        }
    }

    async fn start_tls(&mut self) -> Result<(), ClientError> {
        let addr = self.params.addr;
        let timeout = self.params.timeouts.command;
        self.wbuf.clear();
        Command::StartTls.write_to(&mut self.wbuf);
        self.flush(Stage::StartTls, timeout).await?;
        let reply = self.read_reply(Stage::StartTls, timeout).await?;
        if reply.code != 220 {
            return Err(ClientError::Tls {
                addr,
                reason: format!("STARTTLS refused: {reply}"),
            });
        }
        if !self.rbuf.is_empty() {
            // Data after the 220 in plaintext would be read as if it came over TLS.
            self.healthy = false;
            return Err(ClientError::Tls {
                addr,
                reason: "server sent data after its 220 to STARTTLS".into(),
            });
        }
        let Some(Either::Left(tcp)) = self.stream.take() else {
            self.healthy = false;
            return Err(ClientError::Tls {
                addr,
                reason: "TLS is already on".into(),
            });
        };
        let name = ServerName::try_from(self.params.mx_name.clone())
            .or_else(|_| ServerName::try_from(addr.ip().to_string()))
            .map_err(|e| ClientError::Tls {
                addr,
                reason: e.to_string(),
            })?;
        let handshake = tls::connector().connect(name, tcp);
        let tls = match tokio::time::timeout(timeout, handshake).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                self.healthy = false;
                return Err(ClientError::Tls {
                    addr,
                    reason: e.to_string(),
                });
            }
            Err(_) => {
                self.healthy = false;
                return Err(ClientError::Timeout {
                    addr,
                    stage: Stage::StartTls,
                });
            }
        };
        let (_, session) = tls.get_ref();
        let version = session
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("TLS");
        let cipher = session
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown");
        self.tls = Some(format!("{version} {cipher}"));
        self.stream = Some(Either::Right(tls));
        Ok(())
    }

    /// Writes `wbuf` within `timeout`.
    pub(super) async fn flush(
        &mut self,
        stage: Stage,
        timeout: Duration,
    ) -> Result<(), ClientError> {
        let addr = self.params.addr;
        let Some(stream) = self.stream.as_mut() else {
            self.healthy = false;
            return Err(ClientError::Closed { addr, stage });
        };
        let write = async {
            stream.write_all(&self.wbuf).await?;
            stream.flush().await
        };
        let result = tokio::time::timeout(timeout, write).await;
        self.wbuf.clear();
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => {
                self.healthy = false;
                Err(ClientError::Io {
                    addr,
                    stage,
                    source,
                })
            }
            Err(_) => {
                self.healthy = false;
                Err(ClientError::Timeout { addr, stage })
            }
        }
    }

    /// Reads one reply within `timeout`.
    pub(super) async fn read_reply(
        &mut self,
        stage: Stage,
        timeout: Duration,
    ) -> Result<SmtpReply, ClientError> {
        let addr = self.params.addr;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match ReplyParser::new().parse(&self.rbuf) {
                Ok(Some((reply, used))) => {
                    let owned = SmtpReply::from_reply(&reply);
                    let _ = self.rbuf.split_to(used);
                    if owned.code == 421 {
                        // The server is closing the session.
                        self.healthy = false;
                    }
                    return Ok(owned);
                }
                Ok(None) => self.read_more(stage, deadline).await?,
                Err(source) => {
                    self.healthy = false;
                    return Err(ClientError::Protocol {
                        addr,
                        stage,
                        source,
                    });
                }
            }
        }
    }

    async fn read_more(
        &mut self,
        stage: Stage,
        deadline: tokio::time::Instant,
    ) -> Result<(), ClientError> {
        let addr = self.params.addr;
        self.rbuf.reserve(4096);
        let Some(stream) = self.stream.as_mut() else {
            self.healthy = false;
            return Err(ClientError::Closed { addr, stage });
        };
        match tokio::time::timeout_at(deadline, stream.read_buf(&mut self.rbuf)).await {
            Ok(Ok(0)) => {
                self.healthy = false;
                Err(ClientError::Closed { addr, stage })
            }
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => {
                self.healthy = false;
                Err(ClientError::Io {
                    addr,
                    stage,
                    source,
                })
            }
            Err(_) => {
                self.healthy = false;
                Err(ClientError::Timeout { addr, stage })
            }
        }
    }
}

/// Opens the TCP connection from the source address, if one is set.
async fn connect(params: &ConnectParams) -> Result<TcpStream, ClientError> {
    let addr = params.addr;
    let io = |source| ClientError::Io {
        addr,
        stage: Stage::Connect,
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(io)?;
    if let Some(source) = params.source {
        socket.bind(SocketAddr::new(source, 0)).map_err(io)?;
    }
    match tokio::time::timeout(params.timeouts.connect, socket.connect(addr)).await {
        Ok(Ok(tcp)) => Ok(tcp),
        Ok(Err(e)) => Err(io(e)),
        Err(_) => Err(ClientError::Timeout {
            addr,
            stage: Stage::Connect,
        }),
    }
}
