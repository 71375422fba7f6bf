//! One sink session: the SMTP server state machine of a client connection, from greeting to
//! QUIT, acting like a strict ISP MX.
//!
//! Flow: read into a buffer; parse every complete command in it with
//! [`smtp_proto::CommandParser`]; append each reply to the output buffer (written with
//! [`smtp_proto::write_reply`]); write all replies at once when the input holds no further
//! complete command (RFC 2920), or before anything that waits on the client (354, STARTTLS).
//!
//! Invariants:
//! - A message is counted and recorded before its `250` is written.
//! - After STARTTLS every byte the client sent in plaintext after the command is dropped,
//!   and HELO and the transaction are forgotten (RFC 3207 4.2).
//! - The input buffer stays bounded: the parser skips overlong lines; DATA and BDAT content
//!   moves straight into the body, whose size is capped by `max_message_size` (content beyond
//!   it is read and dropped, so the session stays in step with the client).
//! - Every read waits at most `idle_timeout` and ends early when the sink stops; a client
//!   that makes `MAX_ERRORS_PER_SESSION` mistakes is disconnected.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use rand::Rng;
use rand::rngs::StdRng;
use smtp_proto::{
    Body, Capabilities, Command, CommandError, CommandParser, DataError, DataLimits, DataReceiver,
    DataStatus, EnhancedCode, Extensions, ForwardPath, MailFlags, MailParams, Parsed, ReplyCode,
    ReversePath, write_reply,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::config::{BareLineEnds, MAX_ERRORS_PER_SESSION, ReplySpec, Stage, ThrottleAt};
use super::policy::Admission;
use super::record::ReceivedMessage;
use super::stats::SinkStats;

/// How much to ask the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Longest wait for the last writes when a session ends.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

type Stream = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// Why a session ended.
#[derive(Debug)]
enum End {
    /// QUIT.
    Quit,
    /// The client closed the connection.
    Eof,
    /// We closed it; the last reply said why.
    Closed,
    /// A socket or TLS error (which one does not change what the sink does).
    Io,
}

impl From<io::Error> for End {
    fn from(_: io::Error) -> Self {
        End::Io
    }
}

/// What the read loop does after a command.
enum Step {
    Next,
    Quit,
    Close,
    Data,
    Bdat { size: u64, last: bool },
    StartTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Data,
    Bdat,
}

/// A transaction, from MAIL to the end of the message or RSET.
struct Transaction {
    from: String,
    params: MailParams<'static>,
    rcpts: Vec<String>,
    /// The rate limiter refused this transaction; it is told so at the configured stage.
    throttled: bool,
    mode: Option<Mode>,
    /// BDAT: the body so far.
    chunks: Vec<u8>,
    /// BDAT: the reply every further chunk gets once the message has failed.
    failed: Option<ReplySpec>,
}

/// The session's input: a buffer and how much of its front is used up.
struct InBuf {
    buf: Vec<u8>,
    start: usize,
}

impl InBuf {
    fn new() -> InBuf {
        InBuf {
            buf: Vec::with_capacity(READ_CHUNK),
            start: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start >= self.buf.len() {
            self.clear();
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.start = 0;
    }

    async fn read_from<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        if self.start > 0 {
            // What is left is at most a partial line: cheap to move.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.reserve(READ_CHUNK);
        stream.read_buf(&mut self.buf).await
    }
}

/// One client connection.
pub(crate) struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    stream: Option<Stream>,
    wbuf: Vec<u8>,
    parser: CommandParser,
    helo: Option<String>,
    tls: bool,
    tx: Option<Transaction>,
    /// The last MAIL was refused by policy (size, throttle, block): the RCPTs and DATA a
    /// pipelining client sent after it get `503` without counting as client mistakes.
    mail_refused: bool,
    rng: StdRng,
    errors: u32,
    shutdown: CancellationToken,
}

impl Session {
    pub(crate) fn new(
        shared: Arc<Shared>,
        tcp: TcpStream,
        peer: SocketAddr,
        rng: StdRng,
        shutdown: CancellationToken,
    ) -> Session {
        let parser = CommandParser::new().accept_bare_lf(shared.config.accept_bare_lf_commands);
        Session {
            shared,
            peer,
            stream: Some(Either::Left(tcp)),
            wbuf: Vec::with_capacity(512),
            parser,
            helo: None,
            tls: false,
            tx: None,
            mail_refused: false,
            rng,
            errors: 0,
            shutdown,
        }
    }

    /// Runs the session to its end.
    /// Serves the session. `connection` is released once the session is over and before
    /// the socket is closed, so `connections_now` never counts a connection the client may
    /// already see closed (limits measured here are never over-counted).
    pub(crate) async fn run(mut self, connection: super::stats::ConnectionGuard) {
        let mut rbuf = InBuf::new();
        // How it ended matters to no one: a sink serves whatever the client does.
        let _end: Result<(), End> = self.serve(&mut rbuf).await;
        drop(connection);
        if let Some(stream) = self.stream.as_mut() {
            let _ = tokio::time::timeout(CLOSE_GRACE, stream.shutdown()).await;
        }
    }

    fn stats(&self) -> &SinkStats {
        &self.shared.stats
    }

    async fn serve(&mut self, rbuf: &mut InBuf) -> Result<(), End> {
        let shared = self.shared.clone();
        let config = &shared.config;
        if let Some(refusal) = &config.greeting_refusal
            && self.rng.random_bool(refusal.fraction)
        {
            SinkStats::add(&self.stats().greetings_refused, 1);
            self.write_spec(&refusal.reply);
            self.flush().await?;
            return Err(End::Closed);
        }
        let greeting = format!("{} ESMTP sink ready", config.hostname);
        self.write(220, None, &greeting);
        self.flush().await?;
        loop {
            loop {
                let step = match self.parser.parse(rbuf.data()) {
                    Parsed::Item(command, used) => {
                        if !config.command_delay.is_zero() {
                            tokio::time::sleep(config.command_delay).await;
                        }
                        let step = self.command(command);
                        rbuf.consume(used);
                        step
                    }
                    Parsed::Invalid(error, used) => {
                        let data = rbuf.data();
                        let in_rcpt = data.len() >= 4 && data[..4].eq_ignore_ascii_case(b"RCPT");
                        rbuf.consume(used);
                        self.command_error(&error, in_rcpt)
                    }
                    Parsed::Incomplete(used) => {
                        rbuf.consume(used);
                        break;
                    }
                };
                match step {
                    Step::Next => {}
                    Step::Quit => {
                        self.flush().await?;
                        return Err(End::Quit);
                    }
                    Step::Close => {
                        self.flush().await?;
                        return Err(End::Closed);
                    }
                    Step::Data => {
                        self.flush().await?;
                        if let Step::Close = self.receive_data(rbuf).await? {
                            self.flush().await?;
                            return Err(End::Closed);
                        }
                    }
                    Step::Bdat { size, last } => {
                        if let Step::Close = self.receive_bdat(rbuf, size, last).await? {
                            self.flush().await?;
                            return Err(End::Closed);
                        }
                    }
                    Step::StartTls => {
                        self.flush().await?;
                        // Anything pipelined after STARTTLS came in plaintext: drop it.
                        rbuf.clear();
                        self.start_tls().await?;
                    }
                }
            }
            self.flush().await?;
            self.read_more(rbuf).await?;
        }
    }

    // ------------------------------------------------------------------ replies

    fn enhanced_codes(&self) -> bool {
        self.shared
            .config
            .extensions
            .contains(Extensions::ENHANCED_STATUS_CODES)
    }

    /// Queues a reply. The enhanced code is left out when ENHANCEDSTATUSCODES is not offered.
    fn write(&mut self, code: u16, enhanced: Option<(u8, u16, u16)>, text: &str) {
        let code = ReplyCode::new(code).expect("the sink's reply codes are valid");
        let enhanced = enhanced
            .filter(|_| self.enhanced_codes())
            .and_then(|(c, s, d)| EnhancedCode::new(c, s, d));
        write_reply(&mut self.wbuf, code, enhanced, text);
    }

    /// Queues a configured reply.
    fn write_spec(&mut self, reply: &ReplySpec) {
        let enhanced = reply.enhanced.filter(|_| self.enhanced_codes());
        write_reply(&mut self.wbuf, reply.code, enhanced, &reply.text);
    }

    /// Queues the reply to a client mistake; hangs up after too many.
    fn mistake(&mut self, code: u16, enhanced: (u8, u16, u16), text: &str) -> Step {
        self.write(code, Some(enhanced), text);
        self.errors += 1;
        if self.errors >= MAX_ERRORS_PER_SESSION {
            self.write(421, Some((4, 7, 0)), "Too many errors, closing connection");
            return Step::Close;
        }
        Step::Next
    }

    fn command_error(&mut self, error: &CommandError, in_rcpt: bool) -> Step {
        match error {
            CommandError::LineTooLong => self.mistake(500, (5, 5, 6), "Line too long"),
            CommandError::BareLineFeed => {
                self.mistake(500, (5, 5, 2), "Command lines must end with <CR><LF>")
            }
            CommandError::BareCarriageReturn => {
                self.mistake(500, (5, 5, 2), "Bare <CR> in command line")
            }
            CommandError::UnknownCommand => self.mistake(500, (5, 5, 1), "Command not recognized"),
            CommandError::Syntax(_) => self.mistake(501, (5, 5, 4), "Syntax error in arguments"),
            CommandError::Address(_) if in_rcpt => {
                self.mistake(553, (5, 1, 3), "Bad recipient address syntax")
            }
            CommandError::Address(_) => self.mistake(553, (5, 1, 7), "Bad sender address syntax"),
            CommandError::Parameter(_) => {
                self.mistake(555, (5, 5, 4), "Unsupported or malformed parameter")
            }
            CommandError::Utf8NotPermitted => {
                self.mistake(553, (5, 6, 7), "Non-ASCII address needs SMTPUTF8")
            }
            CommandError::UnknownMechanism => {
                self.mistake(504, (5, 5, 4), "Unrecognized authentication mechanism")
            }
            _ => self.mistake(500, (5, 5, 2), "Syntax error"),
        }
    }

    // ------------------------------------------------------------------ commands

    fn command(&mut self, command: Command<'_>) -> Step {
        match command {
            Command::Ehlo { host } => {
                self.helo = Some(host.into_owned());
                self.tx = None;
                let config = &self.shared.config;
                let mut extensions = config.extensions;
                if self.tls || self.shared.tls.is_none() {
                    extensions.remove(Extensions::STARTTLS);
                }
                // The sink has no AUTH: never offer it, whatever the flags say.
                extensions.remove(Extensions::AUTH);
                let caps = Capabilities {
                    extensions,
                    max_size: Some(config.max_message_size),
                    auth: Default::default(),
                };
                caps.write_ehlo(&mut self.wbuf, &config.hostname, "at your service");
                Step::Next
            }
            Command::Helo { host } => {
                self.helo = Some(host.into_owned());
                self.tx = None;
                let hostname = self.shared.config.hostname.clone();
                self.write(250, None, &hostname);
                Step::Next
            }
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, .. } => self.rcpt(to),
            Command::Data => self.data(),
            Command::Bdat { size, last } => Step::Bdat { size, last },
            Command::Rset => {
                self.tx = None;
                self.mail_refused = false;
                self.write(250, Some((2, 0, 0)), "Ok");
                Step::Next
            }
            Command::Noop => {
                self.write(250, Some((2, 0, 0)), "Ok");
                Step::Next
            }
            Command::Quit => {
                self.write(221, Some((2, 0, 0)), "Bye");
                Step::Quit
            }
            Command::Vrfy { .. } => {
                self.write(
                    252,
                    Some((2, 5, 0)),
                    "Cannot VRFY user, but will accept message and attempt delivery",
                );
                Step::Next
            }
            Command::Expn { .. } => self.mistake(502, (5, 5, 1), "EXPN not implemented"),
            Command::Help { .. } => {
                self.write(214, Some((2, 0, 0)), "This is a test sink; see RFC 5321");
                Step::Next
            }
            Command::StartTls => {
                let offered = self.shared.tls.is_some()
                    && self.shared.config.extensions.contains(Extensions::STARTTLS);
                if !offered {
                    self.mistake(502, (5, 5, 1), "STARTTLS not offered")
                } else if self.tls {
                    self.mistake(503, (5, 5, 1), "TLS already active")
                } else {
                    self.write(220, Some((2, 0, 0)), "Ready to start TLS");
                    Step::StartTls
                }
            }
            Command::Auth { .. } => self.mistake(502, (5, 5, 1), "AUTH not offered"),
        }
    }

    fn mail(&mut self, from: ReversePath<'_>, params: MailParams<'_>) -> Step {
        let shared = self.shared.clone();
        let config = &shared.config;
        let offered = config.extensions;
        if self.helo.is_none() {
            return self.mistake(503, (5, 5, 1), "Send HELO/EHLO first");
        }
        if self.tx.is_some() {
            return self.mistake(503, (5, 5, 1), "Nested MAIL command");
        }
        let not_offered = match params.body {
            Some(Body::EightBitMime) if !offered.contains(Extensions::EIGHT_BIT_MIME) => {
                Some("BODY=8BITMIME not offered")
            }
            Some(Body::BinaryMime) if !offered.contains(Extensions::BINARY_MIME) => {
                Some("BODY=BINARYMIME not offered")
            }
            _ if params.flags.contains(MailFlags::SMTPUTF8)
                && !offered.contains(Extensions::SMTPUTF8) =>
            {
                Some("SMTPUTF8 not offered")
            }
            _ if params.flags.contains(MailFlags::REQUIRETLS)
                && !(self.tls && offered.contains(Extensions::REQUIRETLS)) =>
            {
                Some("REQUIRETLS not offered")
            }
            _ if params.size.is_some() && !offered.contains(Extensions::SIZE) => {
                Some("SIZE not offered")
            }
            _ => None,
        };
        if let Some(text) = not_offered {
            return self.mistake(555, (5, 5, 4), text);
        }
        if !from.is_ascii() && !params.flags.contains(MailFlags::SMTPUTF8) {
            return self.mistake(553, (5, 6, 7), "Non-ASCII address needs SMTPUTF8");
        }
        if params
            .size
            .is_some_and(|size| size > config.max_message_size)
        {
            self.mail_refused = true;
            self.write(
                552,
                Some((5, 3, 4)),
                "Message size exceeds fixed maximum message size",
            );
            return Step::Next;
        }
        let mut throttled = false;
        if let Some(limiter) = &shared.limiter {
            match limiter.admit(self.peer.ip(), Instant::now()) {
                Admission::Allowed => {}
                Admission::Throttled => {
                    if self.throttle_at() == Some(ThrottleAt::Mail) {
                        self.mail_refused = true;
                        return self.throttle();
                    }
                    throttled = true;
                }
                Admission::Blocked => {
                    self.mail_refused = true;
                    SinkStats::add(&self.stats().blocked, 1);
                    let reply = &config
                        .block
                        .as_ref()
                        .expect("blocks need a block rule")
                        .reply;
                    self.write_spec(reply);
                    return Step::Next;
                }
            }
        }
        let from = match from {
            ReversePath::Null => String::new(),
            ReversePath::Mailbox(m) => m.to_string(),
        };
        self.tx = Some(Transaction {
            from,
            params: params.into_owned(),
            rcpts: Vec::new(),
            throttled,
            mode: None,
            chunks: Vec::new(),
            failed: None,
        });
        self.mail_refused = false;
        SinkStats::add(&self.stats().transactions, 1);
        self.write(250, Some((2, 1, 0)), "Ok");
        Step::Next
    }

    /// `503` to a command that needs a transaction; a mistake unless MAIL was just refused.
    fn need_mail(&mut self) -> Step {
        if self.mail_refused {
            self.write(503, Some((5, 5, 1)), "Need MAIL command first");
            return Step::Next;
        }
        self.mistake(503, (5, 5, 1), "Need MAIL command first")
    }

    fn throttle_at(&self) -> Option<ThrottleAt> {
        self.shared.config.rate_limit.as_ref().map(|l| l.at)
    }

    /// Queues the throttle reply; closes the connection if so configured.
    fn throttle(&mut self) -> Step {
        let shared = self.shared.clone();
        let limit = shared
            .config
            .rate_limit
            .as_ref()
            .expect("throttled by a limit");
        SinkStats::add(&self.stats().throttled, 1);
        self.write_spec(&limit.reply);
        if limit.close {
            self.tx = None;
            return Step::Close;
        }
        Step::Next
    }

    fn rcpt(&mut self, to: ForwardPath<'_>) -> Step {
        let shared = self.shared.clone();
        let config = &shared.config;
        let Some(tx) = self.tx.as_ref() else {
            return self.need_mail();
        };
        if tx.mode.is_some() {
            return self.mistake(503, (5, 5, 1), "Bad sequence of commands");
        }
        if tx.rcpts.len() >= config.max_recipients {
            self.write(452, Some((4, 5, 3)), "Too many recipients");
            return Step::Next;
        }
        if !to.is_ascii() && !tx.params.flags.contains(MailFlags::SMTPUTF8) {
            return self.mistake(553, (5, 6, 7), "Non-ASCII address needs SMTPUTF8");
        }
        if tx.throttled && self.throttle_at() == Some(ThrottleAt::Rcpt) {
            return self.throttle();
        }
        let address = match to {
            ForwardPath::Postmaster => "postmaster".to_owned(),
            ForwardPath::Mailbox(m) => m.to_string(),
        };
        match shared.rules.decide(Stage::Rcpt, &[&address], &mut self.rng) {
            Some(rule) => {
                let counter = if rule.reply.code.is_transient() {
                    &self.stats().recipients_deferred
                } else {
                    &self.stats().recipients_bounced
                };
                SinkStats::add(counter, 1);
                self.write_spec(&rule.reply);
            }
            None => {
                SinkStats::add(&self.stats().recipients_accepted, 1);
                if let Some(tx) = self.tx.as_mut() {
                    tx.rcpts.push(address);
                }
                self.write(250, Some((2, 1, 5)), "Ok");
            }
        }
        Step::Next
    }

    fn data(&mut self) -> Step {
        let Some(tx) = self.tx.as_mut() else {
            return self.need_mail();
        };
        if tx.mode == Some(Mode::Bdat) {
            return self.mistake(503, (5, 5, 1), "DATA after BDAT");
        }
        if tx.rcpts.is_empty() {
            // Normal in a pipelined transaction whose recipients were all refused.
            self.write(554, Some((5, 5, 1)), "No valid recipients");
            return Step::Next;
        }
        tx.mode = Some(Mode::Data);
        self.write(354, None, "End data with <CR><LF>.<CR><LF>");
        Step::Data
    }

    // ------------------------------------------------------------------ message content

    async fn receive_data(&mut self, rbuf: &mut InBuf) -> Result<Step, End> {
        let shared = self.shared.clone();
        let config = &shared.config;
        let max_size = config.max_message_size;
        let declared = self
            .tx
            .as_ref()
            .and_then(|tx| tx.params.size)
            .unwrap_or(0)
            .min(max_size);
        let mut body = Vec::with_capacity(usize::try_from(declared).unwrap_or(0) + 1024);
        let mut receiver = DataReceiver::new(DataLimits {
            max_size,
            max_line: config.max_line_length,
        });
        // For lenient line ends: the data as sent, to decode again if the strict decoder
        // finds bare line ends. Bounded by twice the size limit (stuffing at worst doubles).
        let keep_raw = config.bare_line_ends == BareLineEnds::Accept;
        let raw_limit = max_size.saturating_mul(2).saturating_add(16);
        let mut raw = Vec::new();
        let result = loop {
            let input = rbuf.data();
            let (status, used) = match receiver.feed(input, &mut body) {
                DataStatus::Complete { consumed, result } => (Some(result), consumed),
                DataStatus::Incomplete => (None, input.len()),
            };
            if keep_raw && (raw.len() as u64) < raw_limit {
                raw.extend_from_slice(&input[..used]);
            }
            rbuf.consume(used);
            if let Some(result) = status {
                break result;
            }
            self.read_more(rbuf).await?;
        };
        let result = match result {
            Err(DataError::BareLineFeed | DataError::BareCarriageReturn) if keep_raw => {
                lenient_unstuff(&raw, max_size, config.max_line_length)
            }
            other => other.map(|()| body),
        };
        let tx = self.tx.take().expect("DATA needs a transaction");
        Ok(self.finish_message(tx, result, Mode::Data).await)
    }

    async fn receive_bdat(&mut self, rbuf: &mut InBuf, size: u64, last: bool) -> Result<Step, End> {
        let shared = self.shared.clone();
        let config = &shared.config;
        // Decide first whether the chunk is wanted; it is read in any case. `mistake` marks
        // refusals that count as client errors.
        let (refusal, mistake) = if !config.extensions.contains(Extensions::CHUNKING) {
            (Some(ReplySpec::fixed("502 5.5.1 BDAT not offered")), true)
        } else {
            match self.tx.as_mut() {
                None => (
                    Some(ReplySpec::fixed("503 5.5.1 Need MAIL command first")),
                    !self.mail_refused,
                ),
                Some(tx) if tx.mode == Some(Mode::Data) => {
                    (Some(ReplySpec::fixed("503 5.5.1 BDAT after DATA")), true)
                }
                Some(tx) if tx.rcpts.is_empty() => (
                    Some(ReplySpec::fixed("554 5.5.1 No valid recipients")),
                    false,
                ),
                Some(tx) => {
                    tx.mode = Some(Mode::Bdat);
                    if tx.failed.is_none()
                        && (tx.chunks.len() as u64).saturating_add(size) > config.max_message_size
                    {
                        tx.failed = Some(ReplySpec::fixed(
                            "552 5.3.4 Message size exceeds fixed maximum message size",
                        ));
                    }
                    (tx.failed.clone(), false)
                }
            }
        };
        let mut chunk = smtp_proto::BdatReceiver::new(size);
        loop {
            let taken = chunk.take(rbuf.data());
            let n = taken.len();
            if refusal.is_none()
                && let Some(tx) = self.tx.as_mut()
            {
                tx.chunks.extend_from_slice(taken);
            }
            rbuf.consume(n);
            if chunk.is_done() {
                break;
            }
            self.read_more(rbuf).await?;
        }
        match refusal {
            Some(reply) => {
                if last
                    && self
                        .tx
                        .as_ref()
                        .is_some_and(|tx| tx.mode == Some(Mode::Bdat))
                {
                    // A refused last chunk ends the transaction.
                    self.tx = None;
                }
                if reply.code.get() == 552 {
                    SinkStats::add(&self.stats().messages_refused, u64::from(last));
                }
                if mistake {
                    let enhanced = reply.enhanced.map(|e| (e.class(), e.subject(), e.detail()));
                    let enhanced = enhanced.unwrap_or((5, 5, 1));
                    return Ok(self.mistake(reply.code.get(), enhanced, &reply.text));
                }
                self.write_spec(&reply);
                Ok(Step::Next)
            }
            None if last => {
                let mut tx = self.tx.take().expect("checked above");
                let body = std::mem::take(&mut tx.chunks);
                Ok(self.finish_message(tx, Ok(body), Mode::Bdat).await)
            }
            None => {
                self.write(250, Some((2, 0, 0)), &format!("{size} octets received"));
                Ok(Step::Next)
            }
        }
    }

    /// Decides on a complete message and queues the reply to its end.
    async fn finish_message(
        &mut self,
        tx: Transaction,
        body: Result<Vec<u8>, DataError>,
        mode: Mode,
    ) -> Step {
        let shared = self.shared.clone();
        let config = &shared.config;
        if !config.data_delay.is_zero() {
            tokio::time::sleep(config.data_delay).await;
        }
        let body = match body {
            Ok(body) => body,
            Err(error) => {
                SinkStats::add(&self.stats().messages_refused, 1);
                let (code, enhanced, text) = match error {
                    DataError::BareLineFeed | DataError::BareCarriageReturn => (
                        550,
                        (5, 5, 2),
                        "Message text must use <CR><LF> line ends (bare CR or LF refused)",
                    ),
                    DataError::LineTooLong => (550, (5, 5, 6), "Message line too long"),
                    DataError::TooLarge => (
                        552,
                        (5, 3, 4),
                        "Message size exceeds fixed maximum message size",
                    ),
                    _ => (550, (5, 6, 0), "Message refused"),
                };
                self.write(code, Some(enhanced), text);
                return Step::Next;
            }
        };
        if tx.throttled && self.throttle_at() == Some(ThrottleAt::Data) {
            return self.throttle();
        }
        let recipients: Vec<&str> = tx.rcpts.iter().map(String::as_str).collect();
        if let Some(rule) = shared.rules.decide(Stage::Data, &recipients, &mut self.rng) {
            let (messages, rcpts) = if rule.reply.code.is_transient() {
                (
                    &self.stats().messages_deferred,
                    &self.stats().recipients_deferred,
                )
            } else {
                (
                    &self.stats().messages_bounced,
                    &self.stats().recipients_bounced,
                )
            };
            SinkStats::add(messages, 1);
            SinkStats::add(rcpts, tx.rcpts.len() as u64);
            self.write_spec(&rule.reply);
            return Step::Next;
        }
        let stats = self.stats();
        SinkStats::add(&stats.messages_accepted, 1);
        SinkStats::add(&stats.recipients_delivered, tx.rcpts.len() as u64);
        SinkStats::add(&stats.bytes_received, body.len() as u64);
        let id = shared.message_seq.fetch_add(1, Relaxed) + 1;
        shared.log.accept(|| ReceivedMessage {
            client: self.peer,
            helo: self.helo.clone().unwrap_or_default(),
            mail_from: tx.from,
            mail_params: tx.params,
            rcpt_to: tx.rcpts,
            body,
            tls: self.tls,
            bdat: mode == Mode::Bdat,
            received_at: Instant::now(),
        });
        self.write(250, Some((2, 0, 0)), &format!("Ok: queued as S{id:012X}"));
        Step::Next
    }

    // ------------------------------------------------------------------ I/O

    async fn start_tls(&mut self) -> Result<(), End> {
        let Some(Either::Left(tcp)) = self.stream.take() else {
            return Err(End::Closed);
        };
        let acceptor = self.shared.tls.clone().ok_or(End::Closed)?;
        let timeout = self.shared.config.idle_timeout;
        let tls = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => return Err(End::Closed),
        };
        self.stream = Some(Either::Right(tls));
        self.tls = true;
        SinkStats::add(&self.stats().tls_sessions, 1);
        // RFC 3207 4.2: forget everything learned before TLS.
        self.helo = None;
        self.tx = None;
        self.parser =
            CommandParser::new().accept_bare_lf(self.shared.config.accept_bare_lf_commands);
        Ok(())
    }

    /// Reads more input, within the idle timeout; ends the session when the sink stops.
    async fn read_more(&mut self, rbuf: &mut InBuf) -> Result<(), End> {
        let timeout = self.shared.config.idle_timeout;
        let stream = self.stream.as_mut().ok_or(End::Closed)?;
        let outcome = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => None,
            read = tokio::time::timeout(timeout, rbuf.read_from(stream)) => Some(read),
        };
        match outcome {
            None => {
                self.write(
                    421,
                    Some((4, 3, 2)),
                    "Service shutting down, closing connection",
                );
                let _ = tokio::time::timeout(CLOSE_GRACE, self.flush()).await;
                Err(End::Closed)
            }
            Some(Err(_elapsed)) => {
                self.write(421, Some((4, 4, 2)), "Idle timeout, closing connection");
                let _ = tokio::time::timeout(CLOSE_GRACE, self.flush()).await;
                Err(End::Closed)
            }
            Some(Ok(Ok(0))) => Err(End::Eof),
            Some(Ok(Ok(_))) => Ok(()),
            Some(Ok(Err(e))) => Err(e.into()),
        }
    }

    /// Writes all queued replies.
    async fn flush(&mut self) -> Result<(), End> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let timeout = self.shared.config.idle_timeout;
        let stream = self.stream.as_mut().ok_or(End::Closed)?;
        let write = async {
            stream.write_all(&self.wbuf).await?;
            stream.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => result?,
            Err(_) => return Err(End::Closed),
        }
        self.wbuf.clear();
        Ok(())
    }
}

/// Decodes DATA content leniently: bare CR and LF are kept as they came. As in the strict
/// [`DataReceiver`], only CRLF starts a line, so only a dot after CRLF (or at the very start)
/// is a stuffed dot and removed. `raw` ends with the terminator the strict decoder found
/// (`.CRLF`, the CRLF before it being the last line's end). Lines are measured between any
/// two LFs.
fn lenient_unstuff(raw: &[u8], max_size: u64, max_line: usize) -> Result<Vec<u8>, DataError> {
    let content = raw.strip_suffix(b".\r\n").unwrap_or(raw);
    let mut body = Vec::with_capacity(content.len());
    let mut at_line_start = true;
    let mut line_len = 0;
    for (i, &b) in content.iter().enumerate() {
        line_len += 1;
        if line_len > max_line {
            return Err(DataError::LineTooLong);
        }
        let stuffed = at_line_start && b == b'.';
        at_line_start = b == b'\n' && i > 0 && content[i - 1] == b'\r';
        if b == b'\n' {
            line_len = 0;
        }
        if !stuffed {
            body.push(b);
        }
    }
    if body.len() as u64 > max_size {
        return Err(DataError::TooLarge);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_unstuffing_keeps_bare_line_ends() {
        let table: &[(&[u8], &[u8])] = &[
            (b".\r\n", b""),
            (b"a\nb\r\n.\r\n", b"a\nb\r\n"),
            (b"..x\n..y\r\n..z\r\n.\r\n", b".x\n..y\r\n.z\r\n"),
            (b"a\rb\r\n.\r\n", b"a\rb\r\n"),
        ];
        for (raw, body) in table {
            assert_eq!(
                lenient_unstuff(raw, 1000, 1000).as_deref(),
                Ok(*body),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert_eq!(
            lenient_unstuff(b"abcdef\n.\r\n", 3, 1000),
            Err(DataError::TooLarge)
        );
        assert_eq!(
            lenient_unstuff(b"abcdef\n.\r\n", 100, 4),
            Err(DataError::LineTooLong)
        );
    }
}
