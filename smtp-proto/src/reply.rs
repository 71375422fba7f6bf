//! SMTP replies: codes, enhanced status codes (RFC 3463), the client's incremental reply
//! parser and the server's reply writer.
//!
//! A parsed [`Reply`] borrows its lines from the input buffer; nothing is copied. Reply lines
//! from remote servers may end in a bare LF and may carry non-UTF-8 text: the client is liberal
//! in what it reads there, since no framing decision of ours depends on it beyond the line end.

use std::borrow::Cow;
use std::fmt;

use memchr::memchr;

use crate::error::ReplyError;
use crate::limits::MAX_REPLY;

/// Longest single reply line we read, CRLF included. RFC 5321 says 512; real servers send
/// longer ones (long 5xx explanations with URLs), so the client allows more.
pub const MAX_CLIENT_REPLY_LINE: usize = 4096;

/// A three-digit reply code, `200..=599` with a second digit `0..=5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(u16);

impl ReplyCode {
    /// `220` service ready.
    pub const READY: ReplyCode = ReplyCode(220);
    /// `221` closing.
    pub const CLOSING: ReplyCode = ReplyCode(221);
    /// `250` OK.
    pub const OK: ReplyCode = ReplyCode(250);
    /// `354` start mail input.
    pub const START_DATA: ReplyCode = ReplyCode(354);

    /// Makes a code from its number, if it is a valid reply code.
    pub const fn new(code: u16) -> Option<ReplyCode> {
        let first = code / 100;
        let second = (code / 10) % 10;
        if first >= 2 && first <= 5 && second <= 5 {
            Some(ReplyCode(code))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u16 {
        self.0
    }

    /// The first digit: 2 success, 3 intermediate, 4 transient failure, 5 permanent failure.
    pub const fn class(self) -> u8 {
        (self.0 / 100) as u8
    }

    /// True for 2xx.
    pub const fn is_success(self) -> bool {
        self.class() == 2
    }

    /// True for 3xx.
    pub const fn is_intermediate(self) -> bool {
        self.class() == 3
    }

    /// True for 4xx (retry later).
    pub const fn is_transient(self) -> bool {
        self.class() == 4
    }

    /// True for 5xx (do not retry).
    pub const fn is_permanent(self) -> bool {
        self.class() == 5
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An enhanced status code `class.subject.detail` (RFC 3463), e.g. `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedCode {
    class: u8,
    subject: u16,
    detail: u16,
}

impl EnhancedCode {
    /// Makes a code if `class` is 2, 4 or 5 and subject and detail fit in three digits.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Option<EnhancedCode> {
        if (class == 2 || class == 4 || class == 5) && subject <= 999 && detail <= 999 {
            Some(EnhancedCode {
                class,
                subject,
                detail,
            })
        } else {
            None
        }
    }

    /// The class digit: 2, 4 or 5.
    pub const fn class(self) -> u8 {
        self.class
    }

    /// The subject (the middle number).
    pub const fn subject(self) -> u16 {
        self.subject
    }

    /// The detail (the last number).
    pub const fn detail(self) -> u16 {
        self.detail
    }

    /// Parses `X.Y.Z` at the start of `text`; returns the code and the octets it used.
    pub fn parse_prefix(text: &[u8]) -> Option<(EnhancedCode, usize)> {
        let (class, i) = parse_number(text, 0, 1)?;
        if text.get(i) != Some(&b'.') {
            return None;
        }
        let (subject, j) = parse_number(text, i + 1, 3)?;
        if text.get(j) != Some(&b'.') {
            return None;
        }
        let (detail, k) = parse_number(text, j + 1, 3)?;
        // The code must stand alone: followed by the end or a space.
        if !matches!(text.get(k), None | Some(b' ')) {
            return None;
        }
        let code = EnhancedCode::new(u8::try_from(class).ok()?, subject, detail)?;
        Some((code, k))
    }
}

fn parse_number(text: &[u8], start: usize, max_digits: usize) -> Option<(u16, usize)> {
    let digits = text[start.min(text.len())..]
        .iter()
        .take(max_digits + 1)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if digits == 0 || digits > max_digits {
        return None;
    }
    let value = text[start..start + digits]
        .iter()
        .fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
    Some((value, start + digits))
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A complete reply (one or more lines) read by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    code: ReplyCode,
    enhanced: Option<EnhancedCode>,
    /// Octets the enhanced code takes at the start of the first line's text, as written
    /// (`5.01.001` is 8, though it prints as `5.1.1`).
    enhanced_len: usize,
    /// All lines as received, line ends included.
    raw: &'a [u8],
}

impl<'a> Reply<'a> {
    /// The reply code.
    pub fn code(&self) -> ReplyCode {
        self.code
    }

    /// The enhanced status code at the start of the first line's text, if any.
    pub fn enhanced(&self) -> Option<EnhancedCode> {
        self.enhanced
    }

    /// The reply exactly as received, line ends included.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The text of each line, after the code and its separator, without line end.
    pub fn lines(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.raw
            .split_inclusive(|&b| b == b'\n')
            .map(|line| trim_line_end(line).get(4..).unwrap_or(&[]))
    }

    /// The text of all lines joined with a space, the enhanced code of the first line left
    /// out, invalid UTF-8 replaced. For logs and bounces.
    pub fn message(&self) -> Cow<'a, str> {
        let skip = if self.enhanced.is_some() {
            self.enhanced_len + 1
        } else {
            0
        };
        let mut lines = self.lines();
        let first = lines.next().unwrap_or(&[]);
        let first = first.get(skip..).unwrap_or(&[]);
        if self.raw.iter().filter(|&&b| b == b'\n').count() <= 1 {
            return String::from_utf8_lossy(first);
        }
        let mut text = String::from_utf8_lossy(first).into_owned();
        for line in lines {
            text.push(' ');
            text.push_str(&String::from_utf8_lossy(line));
        }
        Cow::Owned(text)
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Incremental parser of server replies for the client (sans-IO).
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplyParser;

impl ReplyParser {
    /// A parser.
    pub fn new() -> Self {
        ReplyParser
    }

    /// Parses the reply at the front of `buf`. `Ok(None)` means the reply is not complete
    /// yet; `Ok(Some((reply, n)))` means it used `n` octets. Errors are fatal for the session.
    pub fn parse<'a>(&self, buf: &'a [u8]) -> Result<Option<(Reply<'a>, usize)>, ReplyError> {
        let mut pos = 0;
        let mut code = None;
        loop {
            let window = &buf[pos..buf.len().min(pos + MAX_CLIENT_REPLY_LINE)];
            let Some(lf) = memchr(b'\n', window) else {
                if window.len() >= MAX_CLIENT_REPLY_LINE {
                    return Err(ReplyError::TooLong);
                }
                return Ok(None);
            };
            let line = trim_line_end(&window[..=lf]);
            let this = parse_code(line)?;
            if code.is_some_and(|c| c != this) {
                return Err(ReplyError::InconsistentCode);
            }
            code = Some(this);
            let last = match line.get(3) {
                None | Some(b' ') => true,
                Some(b'-') => false,
                Some(_) => return Err(ReplyError::Syntax),
            };
            pos += lf + 1;
            if pos > MAX_REPLY {
                return Err(ReplyError::TooLong);
            }
            if last {
                let raw = &buf[..pos];
                let first_text = trim_line_end(raw.split(|&b| b == b'\n').next().unwrap_or(&[]));
                let (enhanced, enhanced_len) = first_text
                    .get(4..)
                    .and_then(EnhancedCode::parse_prefix)
                    .filter(|(e, _)| e.class() == this.class())
                    .map_or((None, 0), |(e, len)| (Some(e), len));
                return Ok(Some((
                    Reply {
                        code: this,
                        enhanced,
                        enhanced_len,
                        raw,
                    },
                    pos,
                )));
            }
        }
    }
}

fn parse_code(line: &[u8]) -> Result<ReplyCode, ReplyError> {
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) {
        return Err(ReplyError::Syntax);
    }
    let n = line[..3]
        .iter()
        .fold(0u16, |v, &d| v * 10 + u16::from(d - b'0'));
    ReplyCode::new(n).ok_or(ReplyError::Syntax)
}

/// Appends a reply as a server sends it. `text` may hold several lines separated by `\n`;
/// each becomes one reply line, with the enhanced code repeated on each (RFC 2034). CR and
/// other control characters in `text` are replaced by spaces, so a reply can never be split
/// or ended early by its text.
pub fn write_reply(out: &mut Vec<u8>, code: ReplyCode, enhanced: Option<EnhancedCode>, text: &str) {
    let mut lines = text.split('\n').peekable();
    let code = code.get().to_string();
    let enhanced = enhanced.map(|e| e.to_string());
    while let Some(line) = lines.next() {
        out.extend_from_slice(code.as_bytes());
        out.push(if lines.peek().is_some() { b'-' } else { b' ' });
        if let Some(e) = &enhanced {
            out.extend_from_slice(e.as_bytes());
            if !line.is_empty() {
                out.push(b' ');
            }
        }
        out.extend(
            line.bytes()
                .map(|b| if b < 0x20 || b == 0x7f { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enhanced_codes_parse_exactly() {
        type Row = (&'static str, Option<(u8, u16, u16, usize)>);
        let table: &[Row] = &[
            ("2.1.0 Ok", Some((2, 1, 0, 5))),
            ("5.7.26 Unauthenticated", Some((5, 7, 26, 6))),
            ("4.7.28", Some((4, 7, 28, 6))),
            ("5.999.999 x", Some((5, 999, 999, 9))),
            ("5.1000.1 x", None),
            ("3.1.1 x", None),
            ("5.1. x", None),
            ("5.1.1x", None),
            ("55.1.1 x", None),
            ("", None),
        ];
        for (input, expected) in table {
            let got = EnhancedCode::parse_prefix(input.as_bytes())
                .map(|(e, n)| (e.class(), e.subject(), e.detail(), n));
            assert_eq!(got, *expected, "input {input:?}");
        }
    }

    #[test]
    fn reply_code_validation() {
        assert!(ReplyCode::new(250).is_some());
        assert!(ReplyCode::new(599).is_none());
        assert!(ReplyCode::new(199).is_none());
        assert!(ReplyCode::new(600).is_none());
        assert!(ReplyCode::new(421).unwrap().is_transient());
    }

    #[test]
    fn write_reply_renders_lines_and_neutralises_control_characters() {
        let mut out = Vec::new();
        write_reply(
            &mut out,
            ReplyCode::OK,
            EnhancedCode::new(2, 0, 0),
            "first\nsecond\rline",
        );
        assert_eq!(out, b"250-2.0.0 first\r\n250 2.0.0 second line\r\n");
        let mut out = Vec::new();
        write_reply(
            &mut out,
            ReplyCode::START_DATA,
            None,
            "End data with <CR><LF>.<CR><LF>",
        );
        assert_eq!(out, b"354 End data with <CR><LF>.<CR><LF>\r\n");
    }
}
