//! One SMTP session: the state machine of a client connection, from greeting to QUIT.
//!
//! Flow: read into a buffer; parse every complete command in it; append each reply to the
//! output buffer; write all replies at once when the input holds no further complete command
//! (RFC 2920 pipelining), or before anything that waits on the client (354, 334, STARTTLS).
//!
//! Invariants:
//! - `250` to the end of DATA (or the last BDAT) is written only after the spool reports the
//!   message durable.
//! - After STARTTLS every byte the client sent in plaintext after the command is discarded
//!   (CVE-2011-0411), and the session forgets HELO, transaction and authentication.
//! - The input buffer stays bounded: the parser skips overlong lines, DATA and BDAT content
//!   moves straight into the message body, whose size is capped by `max_message_size`.
//! - A session that ends in any way releases its connection slot (held by the caller).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use queue::{MessageId, Spool};
use smtp_proto::{
    AuthMechanisms, AuthResponse, BdatReceiver, Body, Capabilities, Command, CommandParser,
    DataLimits, DataReceiver, DataStatus, Extensions, ForwardPath, MailFlags, MailParams,
    Mechanism, Parsed, RcptParams, ReversePath,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::auth;
use super::envelope::{EnvelopeInput, build_envelope};
use super::message::{ReceivedInfo, received_count, take_control_headers, write_received};
use super::reply::Reply;
use super::signing::{self, SignError};
use super::{ListenerContext, Shared};

/// How much to ask the socket for at a time.
const READ_CHUNK: usize = 64 * 1024;

type Stream = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum End {
    /// The client sent QUIT.
    Quit,
    /// The client closed the connection.
    Eof,
    /// We closed it (timeout, error limit, shutdown, policy): the last reply says why.
    Closed(&'static str),
    /// A socket or TLS error.
    Io(std::io::Error),
}

impl From<std::io::Error> for End {
    fn from(e: std::io::Error) -> Self {
        End::Io(e)
    }
}

/// What the loop must do after a command.
enum Step {
    Next,
    Quit,
    Close(&'static str),
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    StartTls,
    Auth {
        mechanism: Mechanism,
        initial: Option<String>,
    },
}

/// How the message body arrives in this transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    Data,
    Bdat,
}

/// A mail transaction: from MAIL to the end of data, or RSET.
struct Transaction {
    from: ReversePath<'static>,
    params: MailParams<'static>,
    rcpts: Vec<(ForwardPath<'static>, RcptParams<'static>)>,
    mode: Option<BodyMode>,
    /// BDAT: the id, the body so far, and where the client's message starts in it.
    bdat: Option<(MessageId, Vec<u8>, usize)>,
    /// BDAT: the reply every further chunk gets once the transaction has failed.
    failed: Option<Reply>,
}

/// One client connection.
pub(crate) struct Session<S: Spool> {
    shared: Arc<Shared<S>>,
    listener: Arc<ListenerContext>,
    peer: SocketAddr,
    stream: Option<Stream>,
    wbuf: Vec<u8>,
    parser: CommandParser,
    helo: Option<String>,
    esmtp: bool,
    /// TLS version and cipher once the handshake is done.
    tls: Option<String>,
    user: Option<String>,
    relay_network: bool,
    tx: Option<Transaction>,
    errors: u32,
    shutdown: CancellationToken,
}

impl<S: Spool> Session<S> {
    pub(crate) fn new(
        shared: Arc<Shared<S>>,
        listener: Arc<ListenerContext>,
        tcp: TcpStream,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> Self {
        let relay_network = listener
            .config
            .relay_networks
            .iter()
            .any(|net| net.contains(&peer.ip()));
        Session {
            shared,
            listener,
            peer,
            stream: Some(Either::Left(tcp)),
            wbuf: Vec::with_capacity(1024),
            parser: CommandParser::new(),
            helo: None,
            esmtp: false,
            tls: None,
            user: None,
            relay_network,
            tx: None,
            errors: 0,
            shutdown,
        }
    }

    /// Runs the session to its end.
    pub(crate) async fn run(mut self) {
        let mut rbuf = BytesMut::with_capacity(READ_CHUNK);
        let end = self.serve(&mut rbuf).await;
        match &end {
            Ok(()) | Err(End::Quit) | Err(End::Eof) => debug!(peer = %self.peer, "session ended"),
            Err(End::Closed(why)) => debug!(peer = %self.peer, why, "session closed"),
            Err(End::Io(e)) => debug!(peer = %self.peer, error = %e, "session I/O error"),
        }
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(Duration::from_secs(5), stream.shutdown()).await;
        }
    }

    async fn serve(&mut self, rbuf: &mut BytesMut) -> Result<(), End> {
        if self.talks_before_greeting().await? {
            metrics::counter!("smtp_sessions_refused_total", "reason" => "pregreet").increment(1);
            self.reply(Reply::pregreet());
            self.flush().await?;
            return Err(End::Closed("pregreet"));
        }
        self.reply(Reply::greeting(&self.shared.config.hostname));
        self.flush().await?;
        loop {
            while let Some(step) = self.next_command(rbuf) {
                match step {
                    Step::Next => {}
                    Step::Quit => {
                        self.flush().await?;
                        return Err(End::Quit);
                    }
                    Step::Close(why) => {
                        self.flush().await?;
                        return Err(End::Closed(why));
                    }
                    Step::Data => {
                        self.flush().await?;
                        self.receive_data(rbuf).await?;
                    }
                    Step::Bdat { size, last } => self.receive_bdat(rbuf, size, last).await?,
                    Step::StartTls => {
                        self.flush().await?;
                        // Anything pipelined after STARTTLS was sent in plaintext: drop it.
                        rbuf.clear();
                        self.start_tls().await?;
                    }
                    Step::Auth { mechanism, initial } => {
                        self.authenticate(rbuf, mechanism, initial).await?;
                    }
                }
            }
            self.flush().await?;
            let timeout = self.listener.config.command_timeout;
            // Between transactions a shutdown ends the session; inside one, the client may
            // finish (bounded by the shutdown grace period).
            let interruptible = self.tx.is_none();
            self.read_more(rbuf, timeout, interruptible).await?;
        }
    }

    /// Parses and handles the next complete command in `rbuf`, if any.
    fn next_command(&mut self, rbuf: &mut BytesMut) -> Option<Step> {
        match self.parser.parse(rbuf) {
            Parsed::Item(command, used) => {
                let step = self.command(command);
                rbuf.advance(used);
                Some(step)
            }
            Parsed::Invalid(error, used) => {
                let in_rcpt = rbuf.len() >= 4 && rbuf[..4].eq_ignore_ascii_case(b"RCPT");
                rbuf.advance(used);
                Some(self.reply(Reply::command_error(&error, in_rcpt)))
            }
            Parsed::Incomplete(used) => {
                rbuf.advance(used);
                None
            }
        }
    }

    /// Queues a reply; counts errors and closes the session when there are too many.
    fn reply(&mut self, reply: Reply) -> Step {
        reply.write_to(&mut self.wbuf);
        if reply.is_permanent() {
            self.errors += 1;
            if self.errors >= self.listener.config.max_errors {
                metrics::counter!("smtp_sessions_refused_total", "reason" => "errors").increment(1);
                Reply::too_many_errors().write_to(&mut self.wbuf);
                return Step::Close("too many errors");
            }
        }
        Step::Next
    }

    fn command(&mut self, command: Command<'_>) -> Step {
        match command {
            Command::Ehlo { host } => {
                self.helo = Some(host.into_owned());
                self.esmtp = true;
                self.tx = None;
                let caps = self.capabilities();
                caps.write_ehlo(&mut self.wbuf, &self.shared.config.hostname, "");
                Step::Next
            }
            Command::Helo { host } => {
                self.helo = Some(host.into_owned());
                self.esmtp = false;
                self.tx = None;
                self.reply(Reply::helo(&self.shared.config.hostname))
            }
            Command::Mail { from, params } => {
                let reply = self.mail(from, params);
                self.reply(reply)
            }
            Command::Rcpt { to, params } => {
                let reply = self.rcpt(to, params);
                self.reply(reply)
            }
            Command::Data => match self.check_body_start(BodyMode::Data) {
                Ok(()) => {
                    self.reply(Reply::start_data());
                    Step::Data
                }
                Err(reply) => self.reply(reply),
            },
            Command::Bdat { size, last } => Step::Bdat { size, last },
            Command::Rset => {
                self.tx = None;
                self.reply(Reply::ok())
            }
            Command::Noop => self.reply(Reply::ok()),
            Command::Quit => {
                self.reply(Reply::bye());
                Step::Quit
            }
            Command::Vrfy { .. } => self.reply(Reply::cannot_vrfy()),
            Command::Expn { .. } => self.reply(Reply::not_implemented()),
            Command::Help { .. } => self.reply(Reply::help()),
            Command::StartTls => {
                if self.tls.is_some() {
                    self.reply(Reply::bad_sequence())
                } else {
                    self.reply(Reply::ready_for_tls());
                    Step::StartTls
                }
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                let offered = matches!(mechanism, Mechanism::Plain | Mechanism::Login);
                if !self.shared.users.any() || !offered {
                    self.reply(Reply::auth_mechanism_unavailable())
                } else if self.tls.is_none() {
                    self.reply(Reply::auth_needs_tls())
                } else if self.user.is_some() || self.tx.is_some() || self.helo.is_none() {
                    self.reply(Reply::bad_sequence())
                } else {
                    Step::Auth {
                        mechanism,
                        initial: initial_response.map(|r| r.into_owned()),
                    }
                }
            }
        }
    }

    /// What we offer after EHLO, given the session's state.
    fn capabilities(&self) -> Capabilities {
        let mut extensions = Extensions::PIPELINING
            | Extensions::EIGHT_BIT_MIME
            | Extensions::SMTPUTF8
            | Extensions::CHUNKING
            | Extensions::ENHANCED_STATUS_CODES
            | Extensions::DSN
            | Extensions::SIZE;
        let mut auth = AuthMechanisms::empty();
        if self.tls.is_none() {
            extensions |= Extensions::STARTTLS;
        } else if self.shared.users.any() && self.user.is_none() {
            extensions |= Extensions::AUTH;
            auth = AuthMechanisms::PLAIN | AuthMechanisms::LOGIN;
        }
        Capabilities {
            extensions,
            max_size: Some(self.listener.config.max_message_size),
            auth,
        }
    }

    fn trusted(&self) -> bool {
        self.relay_network || self.user.is_some()
    }

    fn mail(&mut self, from: ReversePath<'_>, params: MailParams<'_>) -> Reply {
        if self.helo.is_none() {
            return Reply::need_helo();
        }
        if self.tx.is_some() {
            return Reply::nested_mail();
        }
        if self.listener.config.require_tls && self.tls.is_none() {
            return Reply::tls_required();
        }
        if self.shared.spool.refuses_writes() {
            // It would fail at the end of the data: say so before the client sends it.
            metrics::counter!("smtp_messages_refused_total", "reason" => "spool").increment(1);
            return Reply::spool_failure();
        }
        if params
            .size
            .is_some_and(|size| size > self.listener.config.max_message_size)
        {
            return Reply::message_too_big();
        }
        if params.body == Some(Body::BinaryMime) {
            return Reply::parameter_not_offered("BODY=BINARYMIME");
        }
        if params.flags.contains(MailFlags::REQUIRETLS) {
            return Reply::parameter_not_offered("REQUIRETLS");
        }
        self.tx = Some(Transaction {
            from: from.into_owned(),
            params: params.into_owned(),
            rcpts: Vec::new(),
            mode: None,
            bdat: None,
            failed: None,
        });
        Reply::sender_ok()
    }

    fn rcpt(&mut self, to: ForwardPath<'_>, params: RcptParams<'_>) -> Reply {
        let trusted = self.trusted();
        let max = self.listener.config.max_recipients;
        let Some(tx) = self.tx.as_mut() else {
            return Reply::need_mail();
        };
        if tx.mode.is_some() {
            return Reply::bad_sequence();
        }
        if tx.rcpts.len() >= max {
            return Reply::too_many_recipients();
        }
        if !to.is_ascii() && !tx.params.flags.contains(MailFlags::SMTPUTF8) {
            return Reply::utf8_not_permitted();
        }
        if !self.shared.relay.allows(trusted, &to) {
            metrics::counter!("smtp_recipients_refused_total", "reason" => "relay").increment(1);
            return Reply::relay_denied();
        }
        tx.rcpts.push((to.into_owned(), params.into_owned()));
        Reply::recipient_ok()
    }

    /// Checks that a body may start now, in this mode.
    fn check_body_start(&mut self, mode: BodyMode) -> Result<(), Reply> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(Reply::need_mail());
        };
        if tx.rcpts.is_empty() {
            return Err(Reply::no_valid_recipients());
        }
        if tx.mode.is_some_and(|m| m != mode) {
            return Err(Reply::data_bdat_mixed());
        }
        tx.mode = Some(mode);
        Ok(())
    }

    /// Starts a message body: a new id and our Received header.
    fn start_body(&self, tx: &Transaction, capacity: usize) -> (MessageId, Vec<u8>, usize) {
        let id = MessageId::generate();
        let mut body = Vec::with_capacity(capacity);
        let single = match tx.rcpts.as_slice() {
            [(ForwardPath::Mailbox(m), _)] => Some(m.to_string()),
            _ => None,
        };
        let id_text = id.to_string();
        let protocol = match (self.esmtp, self.tls.is_some(), self.user.is_some()) {
            (false, _, _) => "SMTP",
            (true, false, false) => "ESMTP",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, true, true) => "ESMTPSA",
        };
        write_received(
            &mut body,
            &ReceivedInfo {
                helo: self.helo.as_deref().unwrap_or("unknown"),
                peer: self.peer.ip(),
                hostname: &self.shared.config.hostname,
                protocol,
                tls: self.tls.as_deref(),
                id: &id_text,
                single_recipient: single.as_deref(),
            },
            SystemTime::now(),
        );
        let start = body.len();
        (id, body, start)
    }

    async fn receive_data(&mut self, rbuf: &mut BytesMut) -> Result<(), End> {
        let Some(tx) = self.tx.as_ref() else {
            return Ok(());
        };
        let config = &self.listener.config;
        let capacity = (tx.params.size.unwrap_or(0).min(config.max_message_size) as usize)
            .max(rbuf.len())
            + 1024;
        let (id, mut body, start) = self.start_body(tx, capacity);
        let mut receiver = DataReceiver::new(DataLimits {
            max_size: config.max_message_size,
            max_line: config.max_line_length,
        });
        let data_timeout = config.data_timeout;
        let result = loop {
            match receiver.feed(rbuf, &mut body) {
                DataStatus::Complete { consumed, result } => {
                    rbuf.advance(consumed);
                    break result;
                }
                DataStatus::Incomplete => {
                    rbuf.clear();
                    self.read_more(rbuf, data_timeout, false).await?;
                }
            }
        };
        let tx = self.tx.take().expect("checked at DATA");
        let reply = match result {
            Ok(()) => self.queue_message(tx, id, body, start).await,
            Err(error) => {
                metrics::counter!("smtp_messages_refused_total", "reason" => "data").increment(1);
                info!(peer = %self.peer, %error, "message refused");
                Reply::data_error(error)
            }
        };
        self.reply(reply);
        Ok(())
    }

    async fn receive_bdat(
        &mut self,
        rbuf: &mut BytesMut,
        size: u64,
        last: bool,
    ) -> Result<(), End> {
        // Decide first whether the chunk is wanted; it is read in any case, so the session
        // stays in step with the client.
        let mut refusal = self.check_body_start(BodyMode::Bdat).err();
        let max_size = self.listener.config.max_message_size;
        if refusal.is_none() {
            let tx = self.tx.as_ref().expect("checked above");
            if tx.bdat.is_none() {
                let capacity = (size.min(max_size) as usize) + 1024;
                let started = self.start_body(tx, capacity);
                self.tx.as_mut().expect("checked above").bdat = Some(started);
            }
            let tx = self.tx.as_mut().expect("checked above");
            if let Some(failed) = &tx.failed {
                refusal = Some(failed.clone());
            } else if let Some((_, body, start)) = &tx.bdat
                && (body.len() - start) as u64 + size > max_size
            {
                tx.failed = Some(Reply::message_too_big());
                refusal = tx.failed.clone();
            }
        }
        let mut chunk = BdatReceiver::new(size);
        let data_timeout = self.listener.config.data_timeout;
        loop {
            let taken = chunk.take(rbuf);
            let n = taken.len();
            if refusal.is_none()
                && let Some((_, body, _)) = self.tx.as_mut().and_then(|tx| tx.bdat.as_mut())
            {
                body.extend_from_slice(taken);
            }
            rbuf.advance(n);
            if chunk.is_done() {
                break;
            }
            self.read_more(rbuf, data_timeout, false).await?;
        }
        let reply = match refusal {
            Some(reply) => {
                // A refused last chunk ends the transaction.
                if last {
                    self.tx = None;
                }
                reply
            }
            None if last => {
                let mut tx = self.tx.take().expect("checked above");
                let (id, mut body, start) = tx.bdat.take().expect("started above");
                // BDAT carries the message as is: the line rules DATA enforces while
                // receiving are checked here, and a missing final CRLF is added.
                match smtp_proto::check_text(&body[start..], self.listener.config.max_line_length) {
                    Ok(()) => {
                        if body.len() > start && !body.ends_with(b"\r\n") {
                            body.extend_from_slice(b"\r\n");
                        }
                        self.queue_message(tx, id, body, start).await
                    }
                    Err(error) => {
                        metrics::counter!("smtp_messages_refused_total", "reason" => "data")
                            .increment(1);
                        info!(peer = %self.peer, %error, "message refused");
                        Reply::data_error(error)
                    }
                }
            }
            None => Reply::chunk_ok(size),
        };
        self.reply(reply);
        Ok(())
    }

    /// Takes the control headers, builds the envelope and waits until the spool has the
    /// message on stable storage. Returns the reply for the end of data.
    async fn queue_message(
        &mut self,
        tx: Transaction,
        id: MessageId,
        mut body: Vec<u8>,
        start: usize,
    ) -> Reply {
        let hops = received_count(&body, start);
        if hops > self.shared.config.server.max_hops {
            metrics::counter!("smtp_messages_refused_total", "reason" => "loop").increment(1);
            info!(peer = %self.peer.ip(), hops, "message refused: too many hops (mail loop)");
            return Reply::too_many_hops();
        }
        let tags = match take_control_headers(&mut body, start) {
            Ok(tags) if self.trusted() => tags,
            Ok(_) => Default::default(),
            Err(bad) => {
                metrics::counter!("smtp_messages_refused_total", "reason" => "control_header")
                    .increment(1);
                return Reply::bad_control_header(bad.0);
            }
        };
        let body = match signing::sign(&self.shared.signer, body, tags.tenant.as_deref()).await {
            Ok(body) => body,
            Err(SignError::Message(error)) => {
                metrics::counter!("smtp_messages_refused_total", "reason" => "dkim").increment(1);
                info!(peer = %self.peer.ip(), %error, "message refused: cannot be signed");
                return Reply::unsignable(&error.to_string());
            }
            Err(SignError::Internal) => return Reply::signing_failure(),
        };
        let recipients = tx.rcpts.len();
        let envelope = build_envelope(EnvelopeInput {
            from: &tx.from,
            params: &tx.params,
            rcpts: &tx.rcpts,
            tags: &tags,
            hostname: &self.shared.config.hostname,
            peer: self.peer.ip(),
            size: body.len() as u64,
        });
        let size = body.len();
        let id_text = id.to_string();
        match self.shared.spool.store(id, envelope.clone(), body).await {
            Ok(()) => {
                self.shared.submit.submit(id, &envelope);
                metrics::counter!("smtp_messages_received_total").increment(1);
                info!(
                    id = %id_text,
                    peer = %self.peer.ip(),
                    from = %tx.from,
                    recipients,
                    size,
                    tenant = tags.tenant.as_deref().unwrap_or(""),
                    campaign = tags.campaign.as_deref().unwrap_or(""),
                    "message queued"
                );
                Reply::queued(&id_text)
            }
            Err(error) => {
                metrics::counter!("smtp_messages_refused_total", "reason" => "spool").increment(1);
                warn!(id = %id_text, %error, "spool write failed");
                Reply::spool_failure()
            }
        }
    }

    async fn start_tls(&mut self) -> Result<(), End> {
        let Some(Either::Left(tcp)) = self.stream.take() else {
            return Err(End::Closed("STARTTLS on a TLS stream"));
        };
        let handshake = self.listener.tls.accept(tcp);
        let tls = match tokio::time::timeout(self.listener.config.command_timeout, handshake).await
        {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                metrics::counter!("smtp_tls_failures_total").increment(1);
                return Err(End::Io(e));
            }
            Err(_) => return Err(End::Closed("TLS handshake timeout")),
        };
        let (_, connection) = tls.get_ref();
        let version = connection
            .protocol_version()
            .and_then(|v| v.as_str())
            .unwrap_or("TLS");
        let cipher = connection
            .negotiated_cipher_suite()
            .and_then(|c| c.suite().as_str())
            .unwrap_or("unknown");
        self.tls = Some(format!("{version} {cipher}"));
        self.stream = Some(Either::Right(tls));
        // RFC 3207 4.2: forget everything learned before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.user = None;
        Ok(())
    }

    async fn authenticate(
        &mut self,
        rbuf: &mut BytesMut,
        mechanism: Mechanism,
        initial: Option<String>,
    ) -> Result<(), End> {
        let credentials = match mechanism {
            Mechanism::Plain => {
                let response = match initial {
                    Some(r) => Some(r),
                    None => self.challenge(rbuf, "").await?,
                };
                response
                    .and_then(|r| auth::decode(&r))
                    .map(|message| auth::parse_plain(&message))
            }
            _ => {
                // LOGIN: "Username:", then "Password:" (base64).
                let user = match initial {
                    Some(r) => Some(r),
                    None => self.challenge(rbuf, "VXNlcm5hbWU6").await?,
                };
                match user.and_then(|u| auth::decode(&u)) {
                    None => None,
                    Some(user) => self.challenge(rbuf, "UGFzc3dvcmQ6").await?.map(|password| {
                        let user = String::from_utf8(user).ok()?;
                        Some((user, auth::decode(&password)?))
                    }),
                }
            }
        };
        let reply = match credentials {
            None => Reply::auth_cancelled(),
            Some(None) => Reply::auth_failed(),
            Some(Some((user, password))) => {
                match self.shared.users.verify(user.clone(), password).await {
                    Ok(true) => {
                        info!(peer = %self.peer.ip(), user, "authenticated");
                        self.user = Some(user);
                        Reply::auth_ok()
                    }
                    Ok(false) => {
                        metrics::counter!("smtp_auth_failures_total").increment(1);
                        info!(peer = %self.peer.ip(), user, "authentication failed");
                        Reply::auth_failed()
                    }
                    Err(_) => Reply::auth_temporary_failure(),
                }
            }
        };
        if let Step::Close(why) = self.reply(reply) {
            self.flush().await?;
            return Err(End::Closed(why));
        }
        Ok(())
    }

    /// Sends a 334 challenge and reads the client's response: `None` if it cancels.
    async fn challenge(
        &mut self,
        rbuf: &mut BytesMut,
        challenge: &'static str,
    ) -> Result<Option<String>, End> {
        self.reply(Reply::auth_challenge(challenge));
        self.flush().await?;
        let timeout = self.listener.config.command_timeout;
        loop {
            match self.parser.parse_auth_response(rbuf) {
                Parsed::Item(response, used) => {
                    let response = match response {
                        AuthResponse::Cancel => None,
                        AuthResponse::Data(text) => Some(text.to_owned()),
                    };
                    rbuf.advance(used);
                    return Ok(response);
                }
                Parsed::Invalid(_, used) => {
                    rbuf.advance(used);
                    return Ok(None);
                }
                Parsed::Incomplete(used) => {
                    rbuf.advance(used);
                    self.read_more(rbuf, timeout, false).await?;
                }
            }
        }
    }

    /// Checks for a client that sends before our greeting: waits `greeting_delay` (if any)
    /// watching for input, or looks once without waiting.
    async fn talks_before_greeting(&mut self) -> Result<bool, End> {
        let Some(Either::Left(tcp)) = self.stream.as_mut() else {
            return Ok(false);
        };
        let delay = self.listener.config.greeting_delay;
        if !delay.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                ready = tcp.readable() => ready?,
            }
        }
        let mut probe = [0u8; 1];
        match tcp.try_read(&mut probe) {
            Ok(0) => Err(End::Eof),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(End::Io(e)),
        }
    }

    /// Reads more input into `rbuf`, within `timeout`. An interruptible read ends the
    /// session with `421` when the server shuts down.
    async fn read_more(
        &mut self,
        rbuf: &mut BytesMut,
        timeout: Duration,
        interruptible: bool,
    ) -> Result<(), End> {
        rbuf.reserve(READ_CHUNK);
        let shutdown = self.shutdown.clone();
        let stream = self.stream.as_mut().ok_or(End::Closed("no stream"))?;
        let read = tokio::time::timeout(timeout, stream.read_buf(rbuf));
        let outcome = if interruptible {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => None,
                outcome = read => Some(outcome),
            }
        } else {
            Some(read.await)
        };
        match outcome {
            None => {
                self.reply(Reply::shutting_down());
                self.flush().await?;
                Err(End::Closed("shutdown"))
            }
            Some(Err(_elapsed)) => {
                metrics::counter!("smtp_sessions_refused_total", "reason" => "timeout")
                    .increment(1);
                self.reply(Reply::timeout());
                // The client may not be reading either: do not wait long for this write.
                let _ = tokio::time::timeout(Duration::from_secs(5), self.flush()).await;
                Err(End::Closed("timeout"))
            }
            Some(Ok(Ok(0))) => Err(End::Eof),
            Some(Ok(Ok(_))) => Ok(()),
            Some(Ok(Err(e))) => Err(End::Io(e)),
        }
    }

    /// Writes all queued replies.
    async fn flush(&mut self) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let timeout = self.listener.config.command_timeout;
        let stream = self.stream.as_mut().ok_or(End::Closed("no stream"))?;
        let write = async {
            stream.write_all(&self.wbuf).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => result?,
            Err(_) => return Err(End::Closed("write timeout")),
        }
        self.wbuf.clear();
        Ok(())
    }
}
