//! The server's incremental command parser: framing, limits and pipelining.
//!
//! The server reads into a buffer and calls [`CommandParser::parse`] until it reports
//! [`Parsed::Incomplete`]; every call yields at most one command and says how many octets of
//! the buffer it used, so several pipelined commands in one read are answered in order. A
//! partial line is not an error. A line longer than its limit is skipped up to its end, in as
//! many reads as it takes, without growing the buffer, and is then reported once as
//! [`CommandError::LineTooLong`].

use memchr::memchr;

use crate::auth::{AuthResponse, is_base64};
use crate::command::{Command, line_verb, parse_command};
use crate::error::{CommandError, SyntaxError};
use crate::limits::CommandLimits;

/// The outcome of one parse step over the front of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A complete, valid line. The `usize` is the number of octets it used, CRLF included.
    Item(T, usize),
    /// A complete line that is invalid: answer the error, drop the `usize` octets, go on.
    Invalid(CommandError, usize),
    /// No complete line yet: drop the `usize` octets (non-zero only while an overlong line
    /// is being skipped) and read more.
    Incomplete(usize),
}

/// Incremental, pipelining-aware parser of SMTP command lines (sans-IO).
#[derive(Debug, Clone, Default)]
pub struct CommandParser {
    limits: CommandLimits,
    accept_bare_lf: bool,
    /// True while the rest of an overlong line is being dropped.
    skipping: bool,
}

impl CommandParser {
    /// A parser with the RFC 5321 limits that requires CRLF line endings.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the line limits.
    pub fn with_limits(mut self, limits: CommandLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Accepts command lines ending in a bare LF (many hand-typed sessions send them). Off by
    /// default. Message data is never affected: DATA always needs CRLF.CRLF.
    pub fn accept_bare_lf(mut self, accept: bool) -> Self {
        self.accept_bare_lf = accept;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &CommandLimits {
        &self.limits
    }

    /// Parses the command at the front of `buf`.
    pub fn parse<'a>(&mut self, buf: &'a [u8]) -> Parsed<Command<'a>> {
        let limits = self.limits;
        // A line that starts with AUTH may run to the AUTH limit; any other stops at the
        // parameter limit. An unknown verb is still bounded by the larger of the two.
        let max = match line_verb(&buf[..buf.len().min(9)]) {
            Some(verb) => verb.line_limit(&limits),
            None if buf.len() < 9 => limits.longest(),
            None => limits.command_line.max(limits.parameter_line),
        };
        match self.frame(buf, max) {
            Frame::Line(line, consumed) => match parse_command(line, consumed, &limits) {
                Ok(command) => Parsed::Item(command, consumed),
                Err(error) => Parsed::Invalid(error, consumed),
            },
            Frame::Invalid(error, consumed) => Parsed::Invalid(error, consumed),
            Frame::Incomplete(consumed) => Parsed::Incomplete(consumed),
        }
    }

    /// Parses a SASL response line at the front of `buf`, during an AUTH exchange
    /// (RFC 4954): base64 text, or `*` to cancel.
    pub fn parse_auth_response<'a>(&mut self, buf: &'a [u8]) -> Parsed<AuthResponse<'a>> {
        match self.frame(buf, self.limits.auth_line) {
            Frame::Line(line, consumed) => match std::str::from_utf8(line) {
                Ok("*") => Parsed::Item(AuthResponse::Cancel, consumed),
                Ok(text) if is_base64(text) => Parsed::Item(AuthResponse::Data(text), consumed),
                _ => Parsed::Invalid(SyntaxError::InvalidBase64.into(), consumed),
            },
            Frame::Invalid(error, consumed) => Parsed::Invalid(error, consumed),
            Frame::Incomplete(consumed) => Parsed::Incomplete(consumed),
        }
    }

    /// Finds the line at the front of `buf`, at most `max` octets long with its line end.
    fn frame<'a>(&mut self, buf: &'a [u8], max: usize) -> Frame<'a> {
        if self.skipping {
            return match memchr(b'\n', buf) {
                Some(lf) => {
                    self.skipping = false;
                    Frame::Invalid(CommandError::LineTooLong, lf + 1)
                }
                None => Frame::Incomplete(buf.len()),
            };
        }
        let window = &buf[..buf.len().min(max)];
        let Some(lf) = memchr(b'\n', window) else {
            if buf.len() >= max {
                // No line end within the limit: the line is too long. Drop it up to its end if
                // that is in the buffer, else drop what we have and the rest of it later.
                if let Some(lf) = memchr(b'\n', &buf[max..]) {
                    return Frame::Invalid(CommandError::LineTooLong, max + lf + 1);
                }
                self.skipping = true;
                return Frame::Incomplete(buf.len());
            }
            return Frame::Incomplete(0);
        };
        let consumed = lf + 1;
        let line = match lf.checked_sub(1).map(|i| buf[i]) {
            Some(b'\r') => &buf[..lf - 1],
            _ if self.accept_bare_lf => &buf[..lf],
            _ => return Frame::Invalid(CommandError::BareLineFeed, consumed),
        };
        if memchr(b'\r', line).is_some() {
            return Frame::Invalid(CommandError::BareCarriageReturn, consumed);
        }
        Frame::Line(line, consumed)
    }
}

enum Frame<'a> {
    Line(&'a [u8], usize),
    Invalid(CommandError, usize),
    Incomplete(usize),
}
