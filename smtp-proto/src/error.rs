//! Typed errors of the wire layer.
//!
//! Every variant carries enough for the server to pick one reply code and one enhanced status
//! code (the mapping itself lives in the server's reply module, in one place). Errors are
//! owned (`'static`) so they can outlive the buffer they came from; building one may allocate,
//! which only happens on the error path.

use std::fmt;

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The line is longer than the limit for its command (a `500 5.5.6` in the server).
    #[error("line too long")]
    LineTooLong,
    /// The line ends in a bare LF instead of CRLF.
    #[error("command line not terminated by CRLF")]
    BareLineFeed,
    /// The line holds a CR that is not followed by LF.
    #[error("bare CR in command line")]
    BareCarriageReturn,
    /// The verb is not one we know (a `500 5.5.1`).
    #[error("command not recognized")]
    UnknownCommand,
    /// The verb is known but its arguments do not follow its grammar (a `501 5.5.4`).
    #[error("syntax error: {0}")]
    Syntax(#[from] SyntaxError),
    /// The path of MAIL or RCPT is malformed (a `553` or `501` with `5.1.7` / `5.1.3`).
    #[error("invalid address: {0}")]
    Address(#[from] AddressError),
    /// An ESMTP parameter is unknown, repeated or malformed (a `555 5.5.4`).
    #[error("invalid parameter: {0}")]
    Parameter(#[from] ParamError),
    /// A non-ASCII address was given without the SMTPUTF8 parameter (a `553 5.6.7`).
    #[error("non-ASCII address without SMTPUTF8")]
    Utf8NotPermitted,
    /// AUTH names a SASL mechanism we do not know (a `504 5.5.4`).
    #[error("unrecognized authentication mechanism")]
    UnknownMechanism,
}

/// Grammar errors in a command's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyntaxError {
    /// The command needs an argument and has none.
    #[error("missing argument")]
    MissingArgument,
    /// The command takes no argument (or fewer) and got one.
    #[error("unexpected argument")]
    UnexpectedArgument,
    /// MAIL without `FROM:` or RCPT without `TO:`.
    #[error("expected FROM: or TO:")]
    MissingPathKeyword,
    /// HELO/EHLO argument is neither a domain nor an address literal.
    #[error("invalid host name")]
    InvalidHost,
    /// A number (BDAT chunk size) is malformed or does not fit in 64 bits.
    #[error("invalid number")]
    InvalidNumber,
    /// A SASL initial response or response line is not base64.
    #[error("invalid base64")]
    InvalidBase64,
    /// The line is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
    /// Octets above 127 where only ASCII is allowed.
    #[error("non-ASCII octets")]
    NonAscii,
    /// A control character (other than the line's CRLF) in the line.
    #[error("control character")]
    ControlCharacter,
}

/// Errors in a reverse-path or forward-path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The path is not enclosed in `<` and `>`.
    #[error("path must be enclosed in <>")]
    MissingAngleBrackets,
    /// `<>` where a mailbox is required (RCPT).
    #[error("null path not allowed here")]
    NullPath,
    /// The local part exceeds 64 octets.
    #[error("local part too long")]
    LocalPartTooLong,
    /// The domain exceeds 255 octets, or one of its labels exceeds 63.
    #[error("domain too long")]
    DomainTooLong,
    /// The whole path exceeds 256 octets.
    #[error("path too long")]
    PathTooLong,
    /// The local part is not a dot-string nor a quoted string.
    #[error("invalid local part")]
    InvalidLocalPart,
    /// The mailbox has no `@domain`.
    #[error("missing domain")]
    MissingDomain,
    /// The domain does not follow RFC 5321's grammar (this includes a trailing dot).
    #[error("invalid domain")]
    InvalidDomain,
    /// An address literal that is neither IPv4 nor IPv6.
    #[error("invalid address literal")]
    InvalidAddressLiteral,
    /// A source route (`@a,@b:`) that is malformed.
    #[error("invalid source route")]
    InvalidSourceRoute,
    /// Characters after the closing `>` that are not parameters.
    #[error("unexpected characters after path")]
    TrailingCharacters,
}

/// The ESMTP parameters we know, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParamName {
    /// `SIZE=` (RFC 1870).
    Size,
    /// `BODY=` (RFC 6152, RFC 3030).
    Body,
    /// `SMTPUTF8` (RFC 6531).
    SmtpUtf8,
    /// `REQUIRETLS` (RFC 8689).
    RequireTls,
    /// `RET=` (RFC 3461).
    Ret,
    /// `ENVID=` (RFC 3461).
    EnvId,
    /// `AUTH=` (RFC 4954).
    Auth,
    /// `NOTIFY=` (RFC 3461).
    Notify,
    /// `ORCPT=` (RFC 3461).
    Orcpt,
}

impl ParamName {
    /// The keyword as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamName::Size => "SIZE",
            ParamName::Body => "BODY",
            ParamName::SmtpUtf8 => "SMTPUTF8",
            ParamName::RequireTls => "REQUIRETLS",
            ParamName::Ret => "RET",
            ParamName::EnvId => "ENVID",
            ParamName::Auth => "AUTH",
            ParamName::Notify => "NOTIFY",
            ParamName::Orcpt => "ORCPT",
        }
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors in ESMTP parameters of MAIL or RCPT.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParamError {
    /// A parameter this command does not take (its keyword, upper-cased, at most 32 octets kept).
    #[error("unknown parameter {0}")]
    Unknown(String),
    /// The same parameter twice.
    #[error("duplicate parameter {0}")]
    Duplicate(ParamName),
    /// A parameter with a value it must not have, without one it needs, or a malformed value.
    #[error("invalid value for {0}")]
    InvalidValue(ParamName),
    /// A keyword or value that breaks the `esmtp-param` grammar.
    #[error("malformed parameter")]
    Malformed,
}

/// Errors in a server reply, seen by the client. All of them are fatal for the connection:
/// the peer is not speaking SMTP and nothing after this point can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// A line does not start with a three-digit reply code followed by SP, `-` or the line end.
    #[error("malformed reply line")]
    Syntax,
    /// The lines of one multi-line reply carry different codes.
    #[error("reply code changes within a multi-line reply")]
    InconsistentCode,
    /// One line, or the whole reply, is longer than we accept.
    #[error("reply too long")]
    TooLong,
}

/// Why a message body received with DATA (or BDAT) was refused. The receiver reports these
/// only once the whole body has been consumed, so the session stays in step with the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A LF not preceded by CR in the body (SMTP smuggling defence; a `550 5.5.2` or `554`).
    #[error("bare LF in message body")]
    BareLineFeed,
    /// A CR not followed by LF in the body.
    #[error("bare CR in message body")]
    BareCarriageReturn,
    /// A line longer than the configured limit.
    #[error("message line too long")]
    LineTooLong,
    /// The body is larger than the configured limit (a `552 5.3.4`).
    #[error("message too large")]
    TooLarge,
}
