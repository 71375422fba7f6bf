//! The sink's configuration: what it offers after EHLO and how it treats each recipient and
//! message, as a plain struct with [`Default`] so a test names only what it changes.
//!
//! Invariants (checked by [`SinkConfig::validate`], which [`super::Sink::start`] calls):
//! fractions lie in `0.0..=1.0`; rule replies are 4xx or 5xx; a rate limit has a positive
//! rate and a burst of at least one; a block rule needs a rate limit; every limit is non-zero.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use smtp_proto::{EnhancedCode, Extensions, ReplyCode};

/// Largest message body the sink accepts unless told otherwise (advertised with SIZE).
pub const DEFAULT_MAX_MESSAGE_SIZE: u64 = 50 * 1024 * 1024;
/// Most recipients in one transaction unless told otherwise; more get `452 4.5.3`.
pub const DEFAULT_MAX_RECIPIENTS: usize = 1000;
/// Most concurrent sessions unless told otherwise; more get `421 4.3.2` and are closed.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;
/// Most messages kept by `record_messages` unless told otherwise; later ones are still
/// accepted and counted, but not kept.
pub const DEFAULT_RECORD_LIMIT: usize = 100_000;
/// Most 5xx replies to client mistakes in one session before the sink hangs up.
pub const MAX_ERRORS_PER_SESSION: u32 = 20;

/// Why a configuration (or a reply written as text) was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A fraction outside `0.0..=1.0` (or NaN).
    #[error("{field}: fraction {value} is not within 0..=1")]
    Fraction {
        /// The setting.
        field: &'static str,
        /// The value given.
        value: f64,
    },
    /// A reply text that does not start with a valid three-digit code.
    #[error("reply {0:?} does not start with a valid reply code (200..=599)")]
    ReplyCode(String),
    /// A rule whose reply is neither 4xx (defer) nor 5xx (bounce).
    #[error("rule reply {0} must be 4xx or 5xx")]
    RuleReplyClass(u16),
    /// A rate limit of zero (or negative, or NaN) messages per second, or a zero burst.
    #[error("rate limit must be positive with a burst of at least 1")]
    RateLimit,
    /// A block rule without a rate limit to count violations of.
    #[error("a block rule needs a rate limit")]
    BlockWithoutRateLimit,
    /// A limit set to zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
}

/// A reply the sink sends for a policy decision, e.g. `451 4.7.1 try later`.
///
/// The enhanced code is dropped on the wire when the sink does not offer
/// ENHANCEDSTATUSCODES. `text` may hold `\n` for a multi-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplySpec {
    /// The reply code.
    pub code: ReplyCode,
    /// The enhanced status code, if any (RFC 3463).
    pub enhanced: Option<EnhancedCode>,
    /// The text after the codes.
    pub text: String,
}

impl ReplySpec {
    /// Parses `"CODE [X.Y.Z] text"`. The enhanced code is taken only if its class matches the
    /// reply code's first digit, as RFC 3463 requires.
    pub fn parse(text: &str) -> Result<ReplySpec, ConfigError> {
        let refuse = || ConfigError::ReplyCode(text.to_owned());
        let code = text
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(ReplyCode::new)
            .ok_or_else(refuse)?;
        let rest = match text.as_bytes().get(3) {
            None => "",
            Some(b' ') | Some(b'-') => &text[4..],
            Some(_) => return Err(refuse()),
        };
        let (enhanced, rest) = match EnhancedCode::parse_prefix(rest.as_bytes()) {
            Some((e, used)) if e.class() == code.class() => (Some(e), rest[used..].trim_start()),
            _ => (None, rest),
        };
        Ok(ReplySpec {
            code,
            enhanced,
            text: rest.to_owned(),
        })
    }

    /// A reply from a literal known to be valid; for the defaults below.
    pub(crate) fn fixed(text: &'static str) -> ReplySpec {
        ReplySpec::parse(text).expect("built-in replies are valid")
    }

    /// The default deferral: `451 4.7.1 Try again later`.
    pub fn default_defer() -> ReplySpec {
        ReplySpec::fixed("451 4.7.1 Try again later")
    }

    /// The default bounce: `550 5.1.1 No such user`.
    pub fn default_bounce() -> ReplySpec {
        ReplySpec::fixed("550 5.1.1 The email account that you tried to reach does not exist")
    }

    /// The default throttle reply, worded like Gmail's: `421 4.7.28 ... unusual rate ...`.
    pub fn default_throttle() -> ReplySpec {
        ReplySpec::fixed(
            "421 4.7.28 Our system has detected an unusual rate of unsolicited mail \
             originating from your IP address. To protect our users from spam, mail sent \
             from your IP address has been temporarily rate limited.",
        )
    }

    /// The default block reply: `550 5.7.1 ... blocked`.
    pub fn default_block() -> ReplySpec {
        ReplySpec::fixed(
            "550 5.7.1 Our system has detected that this message is likely unsolicited mail. \
             Your IP address has been blocked.",
        )
    }

    /// The default greeting refusal: `421 4.7.0 Try again later, closing connection`.
    pub fn default_greeting_refusal() -> ReplySpec {
        ReplySpec::fixed("421 4.7.0 Try again later, closing connection")
    }
}

impl FromStr for ReplySpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReplySpec::parse(s)
    }
}

impl fmt::Display for ReplySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(e) = self.enhanced {
            write!(f, " {e}")?;
        }
        if !self.text.is_empty() {
            write!(f, " {}", self.text)?;
        }
        Ok(())
    }
}

/// When a rule is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// At each RCPT: the reply refuses that recipient only.
    Rcpt,
    /// At the end of the message (end of DATA, or BDAT LAST): the reply refuses the whole
    /// message, for all of its recipients.
    Data,
}

/// Which attempts a rule applies to. Address comparisons ignore ASCII case.
#[derive(Debug, Clone, PartialEq)]
pub enum Select {
    /// Every attempt.
    All,
    /// A random fraction (`0.0..=1.0`) of attempts.
    Fraction(f64),
    /// The first N attempts per recipient address (counted across connections, for the
    /// sink's lifetime); later attempts pass. At [`Stage::Data`] a message matches while any
    /// of its recipients is within its first N.
    FirstAttempts(u32),
    /// These recipient addresses (`local@domain`). At [`Stage::Data`], a message with any of
    /// them.
    Recipients(Vec<String>),
    /// Recipients with these local parts (the part before `@`).
    LocalParts(Vec<String>),
    /// Recipients at these domains.
    Domains(Vec<String>),
}

/// A behaviour rule: at `stage`, attempts chosen by `select` get `reply`. A 4xx reply counts
/// as a deferral, a 5xx as a bounce. Rules are tried in order; the first that matches wins;
/// when none matches the attempt is accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// When the rule is looked at.
    pub stage: Stage,
    /// Which attempts it applies to.
    pub select: Select,
    /// What those attempts are told.
    pub reply: ReplySpec,
}

impl Rule {
    /// Defers a random `fraction` of recipients at RCPT with `451 4.7.1`.
    pub fn defer_fraction(fraction: f64) -> Rule {
        Rule {
            stage: Stage::Rcpt,
            select: Select::Fraction(fraction),
            reply: ReplySpec::default_defer(),
        }
    }

    /// Defers the first `attempts` tries of every recipient at RCPT with `451 4.7.1`
    /// (greylisting).
    pub fn defer_first_attempts(attempts: u32) -> Rule {
        Rule {
            stage: Stage::Rcpt,
            select: Select::FirstAttempts(attempts),
            reply: ReplySpec::default_defer(),
        }
    }

    /// Bounces a random `fraction` of recipients at RCPT with `550 5.1.1`.
    pub fn bounce_fraction(fraction: f64) -> Rule {
        Rule {
            stage: Stage::Rcpt,
            select: Select::Fraction(fraction),
            reply: ReplySpec::default_bounce(),
        }
    }

    /// Bounces these recipient addresses at RCPT with `550 5.1.1`.
    pub fn bounce_recipients<I, S>(addresses: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rule {
            stage: Stage::Rcpt,
            select: Select::Recipients(addresses.into_iter().map(Into::into).collect()),
            reply: ReplySpec::default_bounce(),
        }
    }

    /// Bounces recipients with these local parts at RCPT with `550 5.1.1`.
    pub fn bounce_local_parts<I, S>(local_parts: I) -> Rule
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Rule {
            stage: Stage::Rcpt,
            select: Select::LocalParts(local_parts.into_iter().map(Into::into).collect()),
            reply: ReplySpec::default_bounce(),
        }
    }

    /// The same rule, looked at in `stage`.
    pub fn at(mut self, stage: Stage) -> Rule {
        self.stage = stage;
        self
    }

    /// The same rule, answering `reply`.
    pub fn with_reply(mut self, reply: ReplySpec) -> Rule {
        self.reply = reply;
        self
    }
}

/// Where a throttled transaction is told so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleAt {
    /// The MAIL reply.
    Mail,
    /// Every RCPT reply of the transaction.
    Rcpt,
    /// The reply to the end of the message, after the body was sent (the costliest for the
    /// client, as Gmail does it).
    Data,
}

/// Whose messages a rate limit counts together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// All messages, from every client address and connection.
    Global,
    /// Messages per client IP address (across that address's connections), as ISPs limit
    /// sending IPs.
    ClientIp,
}

/// A hidden rate limit (not advertised anywhere), enforced with a GCRA: a transaction
/// conforms when it arrives no earlier than `1/per_second` after the previous conforming one,
/// with up to `burst` back to back. Every MAIL asks for one slot; a MAIL that gets none makes
/// the transaction throttled, answered with `reply` at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimit {
    /// Messages per second allowed over time.
    pub per_second: f64,
    /// Messages allowed back to back.
    pub burst: u32,
    /// Whose messages are counted together.
    pub scope: LimitScope,
    /// Where the throttled transaction is refused.
    pub at: ThrottleAt,
    /// The reply.
    pub reply: ReplySpec,
    /// Close the connection after the reply (what a `421` announces).
    pub close: bool,
}

impl RateLimit {
    /// A global limit of `per_second` messages per second, a burst of one second's worth,
    /// throttled at RCPT with the Gmail-style `421 4.7.28`, closing the connection.
    pub fn per_second(per_second: f64) -> RateLimit {
        RateLimit {
            per_second,
            burst: (per_second.ceil() as u32).max(1),
            scope: LimitScope::Global,
            at: ThrottleAt::Rcpt,
            reply: ReplySpec::default_throttle(),
            close: true,
        }
    }
}

/// Blocking a client that keeps pushing: more than `after` throttled transactions within
/// `window` (per rate-limit scope) block it for `duration`, during which every transaction is
/// answered `reply` at MAIL.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockRule {
    /// Throttled transactions tolerated within the window.
    pub after: u32,
    /// The window the throttled transactions are counted in.
    pub window: Duration,
    /// How long the block lasts.
    pub duration: Duration,
    /// The reply to every transaction while blocked.
    pub reply: ReplySpec,
}

impl BlockRule {
    /// Blocks for `duration` after more than `after` throttled transactions within a
    /// minute, with `550 5.7.1 ... blocked`.
    pub fn after(after: u32, duration: Duration) -> BlockRule {
        BlockRule {
            after,
            window: Duration::from_secs(60),
            duration,
            reply: ReplySpec::default_block(),
        }
    }
}

/// Refusing some connections at the greeting.
#[derive(Debug, Clone, PartialEq)]
pub struct GreetingRefusal {
    /// The fraction of connections refused.
    pub fraction: f64,
    /// The reply instead of `220`; the connection is closed after it.
    pub reply: ReplySpec,
}

/// What to do with bare CR or LF in a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BareLineEnds {
    /// Refuse the message with `550 5.5.2`, as strict receivers do (SMTP smuggling defence).
    #[default]
    Reject,
    /// Accept it and record the body with its bare line ends kept. The end of data is still
    /// only `CRLF.CRLF`.
    Accept,
}

/// Everything the sink does, in one place. Start from [`Default`] and change what matters.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    /// The address to listen on; port 0 picks a free port. Default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// The name in the greeting and the EHLO reply.
    pub hostname: String,
    /// What EHLO offers. STARTTLS makes the sink create a self-signed certificate for
    /// `hostname` at start. SIZE is advertised with `max_message_size`. Extensions not offered
    /// are refused when used (BDAT, `BODY=8BITMIME`, `SMTPUTF8`).
    pub extensions: Extensions,
    /// Largest message body accepted, in octets; larger ones get `552 5.3.4`.
    pub max_message_size: u64,
    /// Longest message line accepted on the wire, CRLF included.
    pub max_line_length: usize,
    /// Most recipients per transaction.
    pub max_recipients: usize,
    /// Most concurrent sessions; one more is answered `421 4.3.2` and closed.
    pub max_connections: usize,
    /// A session idle this long (no complete command, or no data) is closed with `421 4.4.2`.
    pub idle_timeout: Duration,
    /// Behaviour rules for recipients and messages, tried in order.
    pub rules: Vec<Rule>,
    /// A hidden rate limit, if any.
    pub rate_limit: Option<RateLimit>,
    /// Blocking clients that keep exceeding the rate limit, if wanted.
    pub block: Option<BlockRule>,
    /// Refusing a fraction of connections at the greeting, if wanted.
    pub greeting_refusal: Option<GreetingRefusal>,
    /// Delay before each command's reply (network and server latency).
    pub command_delay: Duration,
    /// Extra delay before the reply to the end of a message (content scanning).
    pub data_delay: Duration,
    /// Keep every accepted message (envelope and body) for the test to inspect.
    pub record_messages: bool,
    /// Most messages kept when recording.
    pub record_limit: usize,
    /// Bare CR or LF in a body.
    pub bare_line_ends: BareLineEnds,
    /// Accept command lines ending in a bare LF (hand-typed sessions). Off: `500 5.5.2`.
    pub accept_bare_lf_commands: bool,
    /// Seed for the random choices (fractions), for repeatable runs; `None` seeds from the
    /// operating system.
    pub seed: Option<u64>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            hostname: "mx.sink.test".to_owned(),
            extensions: Extensions::PIPELINING
                | Extensions::EIGHT_BIT_MIME
                | Extensions::SMTPUTF8
                | Extensions::CHUNKING
                | Extensions::ENHANCED_STATUS_CODES
                | Extensions::SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            max_line_length: smtp_proto::limits::MAX_TEXT_LINE,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            idle_timeout: Duration::from_secs(60),
            rules: Vec::new(),
            rate_limit: None,
            block: None,
            greeting_refusal: None,
            command_delay: Duration::ZERO,
            data_delay: Duration::ZERO,
            record_messages: false,
            record_limit: DEFAULT_RECORD_LIMIT,
            bare_line_ends: BareLineEnds::Reject,
            accept_bare_lf_commands: false,
            seed: None,
        }
    }
}

impl SinkConfig {
    /// Checks the invariants listed in the module documentation.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fraction = |field: &'static str, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::Fraction { field, value })
            }
        };
        for rule in &self.rules {
            if let Select::Fraction(f) = rule.select {
                fraction("rule fraction", f)?;
            }
            if !(rule.reply.code.is_transient() || rule.reply.code.is_permanent()) {
                return Err(ConfigError::RuleReplyClass(rule.reply.code.get()));
            }
        }
        if let Some(limit) = &self.rate_limit
            && (limit.per_second.is_nan() || limit.per_second <= 0.0 || limit.burst == 0)
        {
            return Err(ConfigError::RateLimit);
        }
        if self.block.is_some() && self.rate_limit.is_none() {
            return Err(ConfigError::BlockWithoutRateLimit);
        }
        if let Some(refusal) = &self.greeting_refusal {
            fraction("greeting refusal fraction", refusal.fraction)?;
        }
        for (name, value) in [
            ("max_message_size", self.max_message_size as usize),
            ("max_line_length", self.max_line_length),
            ("max_recipients", self.max_recipients),
            ("max_connections", self.max_connections),
            ("record_limit", self.record_limit),
        ] {
            if value == 0 {
                return Err(ConfigError::ZeroLimit(name));
            }
        }
        if self.idle_timeout.is_zero() {
            return Err(ConfigError::ZeroLimit("idle_timeout"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_exactly() {
        type Row = (
            &'static str,
            Option<(u16, Option<&'static str>, &'static str)>,
        );
        let table: &[Row] = &[
            (
                "451 4.7.1 try later",
                Some((451, Some("4.7.1"), "try later")),
            ),
            (
                "550 5.1.1 no such user",
                Some((550, Some("5.1.1"), "no such user")),
            ),
            ("421 4.7.28", Some((421, Some("4.7.28"), ""))),
            ("250 ok", Some((250, None, "ok"))),
            ("550", Some((550, None, ""))),
            // An enhanced code of another class is text, not a code.
            ("550 4.1.1 odd", Some((550, None, "4.1.1 odd"))),
            ("55 x", None),
            ("650 x", None),
            ("abc", None),
            ("550x", None),
            ("", None),
        ];
        for (input, expected) in table {
            let got = ReplySpec::parse(input).ok().map(|r| {
                (
                    r.code.get(),
                    r.enhanced.map(|e| e.to_string()),
                    r.text.clone(),
                )
            });
            let expected = expected.map(|(c, e, t)| (c, e.map(str::to_owned), t.to_owned()));
            assert_eq!(got, expected, "input {input:?}");
        }
        let reply = ReplySpec::default_throttle();
        assert_eq!(reply.code.get(), 421);
        assert_eq!(
            reply.enhanced.map(|e| e.to_string()).as_deref(),
            Some("4.7.28")
        );
        assert!(reply.text.contains("unusual rate"));
        assert_eq!(
            ReplySpec::parse("451 4.7.1 try later").unwrap().to_string(),
            "451 4.7.1 try later"
        );
    }

    #[test]
    fn validation_catches_each_invariant() {
        let ok = SinkConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let cases: Vec<(SinkConfig, ConfigError)> = vec![
            (
                SinkConfig {
                    rules: vec![Rule::defer_fraction(1.5)],
                    ..SinkConfig::default()
                },
                ConfigError::Fraction {
                    field: "rule fraction",
                    value: 1.5,
                },
            ),
            (
                SinkConfig {
                    rules: vec![Rule::bounce_fraction(0.5).with_reply(ReplySpec::fixed("250 ok"))],
                    ..SinkConfig::default()
                },
                ConfigError::RuleReplyClass(250),
            ),
            (
                SinkConfig {
                    rate_limit: Some(RateLimit::per_second(0.0)),
                    ..SinkConfig::default()
                },
                ConfigError::RateLimit,
            ),
            (
                SinkConfig {
                    block: Some(BlockRule::after(3, Duration::from_secs(1))),
                    ..SinkConfig::default()
                },
                ConfigError::BlockWithoutRateLimit,
            ),
            (
                SinkConfig {
                    max_connections: 0,
                    ..SinkConfig::default()
                },
                ConfigError::ZeroLimit("max_connections"),
            ),
        ];
        for (config, expected) in cases {
            assert_eq!(config.validate(), Err(expected));
        }
    }
}
