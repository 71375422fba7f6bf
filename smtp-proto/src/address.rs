//! Mailboxes and the paths of MAIL and RCPT (RFC 5321 section 4.1.2, RFC 6531 for UTF-8).
//!
//! Invariants: a [`Mailbox`] only exists once its local part and host have passed the grammar
//! and the length limits of [`crate::limits`], so rendering one always yields a valid path.
//! Source routes (`<@a,@b:user@host>`) are accepted and stripped, as RFC 5321 appendix C asks.
//! A trailing dot in a domain (`user@example.com.`) is a grammar error, which also closes the
//! classic open-relay trick of a domain that compares unequal to ours only by that dot.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::AddressError;
use crate::limits::{MAX_DOMAIN, MAX_LOCAL_PART, MAX_PATH};

/// The part of a mailbox after the `@`: a domain name or an address literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host<'a> {
    /// A domain name as written (case preserved; compare with `eq_ignore_ascii_case`).
    Domain(Cow<'a, str>),
    /// An IPv4 address literal, `[192.0.2.1]`.
    Ipv4(Ipv4Addr),
    /// An IPv6 address literal, `[IPv6:2001:db8::1]`.
    Ipv6(Ipv6Addr),
}

impl Host<'_> {
    /// The domain name, if this host is one (not a literal).
    pub fn domain(&self) -> Option<&str> {
        match self {
            Host::Domain(d) => Some(d),
            _ => None,
        }
    }

    /// True when the host contains only ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            Host::Domain(d) => d.is_ascii(),
            _ => true,
        }
    }

    /// A copy that owns its text.
    pub fn into_owned(self) -> Host<'static> {
        match self {
            Host::Domain(d) => Host::Domain(Cow::Owned(d.into_owned())),
            Host::Ipv4(a) => Host::Ipv4(a),
            Host::Ipv6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "[{a}]"),
            Host::Ipv6(a) => write!(f, "[IPv6:{a}]"),
        }
    }
}

/// A validated mailbox: `local-part@host`.
///
/// The local part is kept exactly as written on the wire, quotes and backslashes included
/// (`"john doe"@example.com` keeps `"john doe"`), because that is what is sent on to the next
/// hop.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mailbox<'a> {
    local_part: Cow<'a, str>,
    host: Host<'a>,
}

impl<'a> Mailbox<'a> {
    /// Parses `local-part@host` (no angle brackets), as a configuration file or an API would
    /// give it. UTF-8 is accepted; check [`Mailbox::is_ascii`] where it is not allowed.
    pub fn parse(text: &'a str) -> Result<Mailbox<'a>, AddressError> {
        let (mailbox, end) = parse_mailbox(text, 0)?;
        if end != text.len() {
            return Err(AddressError::InvalidDomain);
        }
        Ok(mailbox)
    }

    /// The local part as written on the wire (quoted if it was quoted).
    pub fn local_part(&self) -> &str {
        &self.local_part
    }

    /// True if the local part is a quoted string.
    pub fn is_quoted(&self) -> bool {
        self.local_part.starts_with('"')
    }

    /// The host after the `@`.
    pub fn host(&self) -> &Host<'a> {
        &self.host
    }

    /// True when the whole mailbox is ASCII (needs no SMTPUTF8).
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.host.is_ascii()
    }

    /// A copy that owns its text, to keep beyond the input buffer.
    pub fn into_owned(self) -> Mailbox<'static> {
        Mailbox {
            local_part: Cow::Owned(self.local_part.into_owned()),
            host: self.host.into_owned(),
        }
    }
}

impl fmt::Display for Mailbox<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local_part, self.host)
    }
}

/// The argument of `MAIL FROM:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReversePath<'a> {
    /// `<>`: the null sender of bounces and auto-replies.
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox<'a>),
}

impl ReversePath<'_> {
    /// True when the path is ASCII (`<>` always is).
    pub fn is_ascii(&self) -> bool {
        match self {
            ReversePath::Null => true,
            ReversePath::Mailbox(m) => m.is_ascii(),
        }
    }

    /// A copy that owns its text.
    pub fn into_owned(self) -> ReversePath<'static> {
        match self {
            ReversePath::Null => ReversePath::Null,
            ReversePath::Mailbox(m) => ReversePath::Mailbox(m.into_owned()),
        }
    }
}

impl fmt::Display for ReversePath<'_> {
    /// The path with its angle brackets, as written on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The argument of `RCPT TO:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ForwardPath<'a> {
    /// `<postmaster>` without a domain: the postmaster of the receiving host.
    Postmaster,
    /// A recipient mailbox.
    Mailbox(Mailbox<'a>),
}

impl ForwardPath<'_> {
    /// True when the path is ASCII.
    pub fn is_ascii(&self) -> bool {
        match self {
            ForwardPath::Postmaster => true,
            ForwardPath::Mailbox(m) => m.is_ascii(),
        }
    }

    /// A copy that owns its text.
    pub fn into_owned(self) -> ForwardPath<'static> {
        match self {
            ForwardPath::Postmaster => ForwardPath::Postmaster,
            ForwardPath::Mailbox(m) => ForwardPath::Mailbox(m.into_owned()),
        }
    }
}

impl fmt::Display for ForwardPath<'_> {
    /// The path with its angle brackets, as written on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// A path as it appears in MAIL or RCPT, before the command decides which kinds it allows.
#[derive(Debug)]
pub(crate) enum Path<'a> {
    Null,
    Postmaster,
    Mailbox(Mailbox<'a>),
}

/// Parses a bracketed path at the start of `text`. Returns the path and the rest of the text
/// after `>`, which is empty or starts with a space (the ESMTP parameters).
pub(crate) fn parse_path(text: &str) -> Result<(Path<'_>, &str), AddressError> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'<') {
        return Err(AddressError::MissingAngleBrackets);
    }
    let (path, close) = if bytes.get(1) == Some(&b'>') {
        (Path::Null, 1)
    } else if is_postmaster(&bytes[1..]) {
        (Path::Postmaster, 11)
    } else {
        let start = skip_source_route(text, 1)?;
        let (mailbox, end) = parse_mailbox(text, start)?;
        if bytes.get(end) != Some(&b'>') {
            return Err(AddressError::MissingAngleBrackets);
        }
        (Path::Mailbox(mailbox), end)
    };
    if close + 1 > MAX_PATH {
        return Err(AddressError::PathTooLong);
    }
    let rest = &text[close + 1..];
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(AddressError::TrailingCharacters);
    }
    Ok((path, rest))
}

fn is_postmaster(after_bracket: &[u8]) -> bool {
    after_bracket.len() >= 11 && after_bracket[..11].eq_ignore_ascii_case(b"postmaster>")
}

/// Skips an optional source route `@a,@b:` starting at `i`; returns where the mailbox starts.
fn skip_source_route(text: &str, mut i: usize) -> Result<usize, AddressError> {
    let bytes = text.as_bytes();
    if bytes.get(i) != Some(&b'@') {
        return Ok(i);
    }
    loop {
        // bytes[i] == '@'
        let start = i + 1;
        let len = bytes[start..]
            .iter()
            .position(|&b| b == b',' || b == b':' || b == b'>')
            .ok_or(AddressError::InvalidSourceRoute)?;
        validate_domain(&text[start..start + len], false)
            .map_err(|_| AddressError::InvalidSourceRoute)?;
        i = start + len;
        match bytes[i] {
            b',' if bytes.get(i + 1) == Some(&b'@') => i += 1,
            b':' => return Ok(i + 1),
            _ => return Err(AddressError::InvalidSourceRoute),
        }
    }
}

/// Parses `local-part@host` starting at `start`; the host ends at `>` or at the end of the
/// text. Returns the mailbox and the index just past it.
fn parse_mailbox(text: &str, start: usize) -> Result<(Mailbox<'_>, usize), AddressError> {
    let bytes = text.as_bytes();
    let at = if bytes.get(start) == Some(&b'"') {
        scan_quoted_local_part(bytes, start)?
    } else {
        scan_dot_string(bytes, start)?
    };
    if at - start > MAX_LOCAL_PART {
        return Err(AddressError::LocalPartTooLong);
    }
    if bytes.get(at) != Some(&b'@') {
        return Err(if at == bytes.len() || bytes[at] == b'>' {
            AddressError::MissingDomain
        } else {
            AddressError::InvalidLocalPart
        });
    }
    let host_start = at + 1;
    let (host, end) = parse_host(text, host_start)?;
    // Every mailbox must fit in a path: `<` + mailbox + `>`.
    if end - start + 2 > MAX_PATH {
        return Err(AddressError::PathTooLong);
    }
    Ok((
        Mailbox {
            local_part: Cow::Borrowed(&text[start..at]),
            host,
        },
        end,
    ))
}

/// Scans a dot-string local part; returns the index of the first octet after it.
fn scan_dot_string(bytes: &[u8], start: usize) -> Result<usize, AddressError> {
    let mut i = start;
    let mut after_dot = true; // at the start, a dot is as wrong as after a dot
    while let Some(&b) = bytes.get(i) {
        if b == b'.' {
            if after_dot {
                return Err(AddressError::InvalidLocalPart);
            }
            after_dot = true;
        } else if is_atext(b) {
            after_dot = false;
        } else {
            break;
        }
        i += 1;
    }
    if after_dot {
        // empty, or ends with a dot
        return Err(AddressError::InvalidLocalPart);
    }
    Ok(i)
}

/// Scans a quoted-string local part starting at its opening quote; returns the index after
/// the closing quote.
fn scan_quoted_local_part(bytes: &[u8], start: usize) -> Result<usize, AddressError> {
    let mut i = start + 1;
    loop {
        match bytes.get(i) {
            Some(b'"') => return Ok(i + 1),
            Some(b'\\') => match bytes.get(i + 1) {
                Some(32..=126) => i += 2,
                _ => return Err(AddressError::InvalidLocalPart),
            },
            // qtextSMTP: 32-33, 35-91, 93-126, and UTF-8 (the input is a valid &str)
            Some(&b) if (32..=126).contains(&b) || b >= 0x80 => i += 1,
            _ => return Err(AddressError::InvalidLocalPart),
        }
    }
}

/// `atext` of RFC 5322 plus the UTF-8 octets RFC 6531 adds.
#[inline]
fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

/// Parses a host (domain or address literal) from `start` up to `>` or the end of text.
fn parse_host(text: &str, start: usize) -> Result<(Host<'_>, usize), AddressError> {
    let bytes = text.as_bytes();
    if bytes.get(start) == Some(&b'[') {
        let len = bytes[start..]
            .iter()
            .position(|&b| b == b']')
            .ok_or(AddressError::InvalidAddressLiteral)?;
        let host = parse_address_literal(&text[start + 1..start + len])?;
        return Ok((host, start + len + 1));
    }
    let len = bytes[start..]
        .iter()
        .position(|&b| b == b'>')
        .unwrap_or(bytes.len() - start);
    let domain = &text[start..start + len];
    validate_domain(domain, false)?;
    Ok((Host::Domain(Cow::Borrowed(domain)), start + len))
}

/// Parses the inside of `[...]`: an IPv4 address or `IPv6:` and an IPv6 address.
/// General address literals (`[tag:...]`) are refused: nothing can deliver to them.
pub(crate) fn parse_address_literal(inner: &str) -> Result<Host<'static>, AddressError> {
    if inner.len() > 5 && inner.as_bytes()[..5].eq_ignore_ascii_case(b"IPv6:") {
        return inner[5..]
            .parse::<Ipv6Addr>()
            .map(Host::Ipv6)
            .map_err(|_| AddressError::InvalidAddressLiteral);
    }
    inner
        .parse::<Ipv4Addr>()
        .map(Host::Ipv4)
        .map_err(|_| AddressError::InvalidAddressLiteral)
}

/// Checks a domain against RFC 5321's grammar: dot-separated labels of letters, digits and
/// inner hyphens, 1 to 63 octets each, 255 in all, no trailing dot. Non-ASCII characters
/// count as letters (U-labels, RFC 6531). `allow_underscore` relaxes the grammar for HELO
/// names, where hosts in the wild use underscores.
pub(crate) fn validate_domain(domain: &str, allow_underscore: bool) -> Result<(), AddressError> {
    if domain.is_empty() {
        return Err(AddressError::InvalidDomain);
    }
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    for label in domain.split('.') {
        let bytes = label.as_bytes();
        if bytes.is_empty() {
            return Err(AddressError::InvalidDomain);
        }
        if bytes.len() > 63 {
            return Err(AddressError::DomainTooLong);
        }
        let let_dig = |b: u8| b.is_ascii_alphanumeric() || b >= 0x80;
        let inner = |b: u8| let_dig(b) || b == b'-' || (allow_underscore && b == b'_');
        let edge = |b: u8| let_dig(b) || (allow_underscore && b == b'_');
        if !edge(bytes[0]) || !edge(bytes[bytes.len() - 1]) || !bytes.iter().all(|&b| inner(b)) {
            return Err(AddressError::InvalidDomain);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(text: &str) -> Result<String, AddressError> {
        match parse_path(text)? {
            (Path::Mailbox(m), "") => Ok(m.to_string()),
            (Path::Null, "") => Ok("<>".into()),
            (Path::Postmaster, "") => Ok("postmaster".into()),
            (_, rest) => Ok(format!("rest:{rest}")),
        }
    }

    #[test]
    fn paths_parse_to_exact_values() {
        let table: &[(&str, Result<&str, AddressError>)] = &[
            ("<>", Ok("<>")),
            ("<postmaster>", Ok("postmaster")),
            ("<PostMaster>", Ok("postmaster")),
            ("<postmaster@example.com>", Ok("postmaster@example.com")),
            ("<user@example.com>", Ok("user@example.com")),
            (
                "<first.last+tag@sub.example.co.uk>",
                Ok("first.last+tag@sub.example.co.uk"),
            ),
            ("<u%evil@ours.example>", Ok("u%evil@ours.example")),
            ("<\"u@evil\"@ours.example>", Ok("\"u@evil\"@ours.example")),
            ("<\"john doe\"@example.com>", Ok("\"john doe\"@example.com")),
            ("<\"a\\\"b\"@example.com>", Ok("\"a\\\"b\"@example.com")),
            (
                "<@relay.example,@b.example:user@example.com>",
                Ok("user@example.com"),
            ),
            ("<user@[192.0.2.1]>", Ok("user@[192.0.2.1]")),
            ("<user@[IPv6:2001:db8::1]>", Ok("user@[IPv6:2001:db8::1]")),
            ("<用户@例子.广告>", Ok("用户@例子.广告")),
            ("<user@example.com.>", Err(AddressError::InvalidDomain)),
            ("<user@.example.com>", Err(AddressError::InvalidDomain)),
            ("<user@-example.com>", Err(AddressError::InvalidDomain)),
            ("<user@exa_mple.com>", Err(AddressError::InvalidDomain)),
            ("<user@>", Err(AddressError::InvalidDomain)),
            ("<user>", Err(AddressError::MissingDomain)),
            ("<.user@example.com>", Err(AddressError::InvalidLocalPart)),
            ("<user.@example.com>", Err(AddressError::InvalidLocalPart)),
            ("<us..er@example.com>", Err(AddressError::InvalidLocalPart)),
            ("<us er@example.com>", Err(AddressError::InvalidLocalPart)),
            (
                "<\"unterminated@example.com>",
                Err(AddressError::InvalidLocalPart),
            ),
            ("user@example.com", Err(AddressError::MissingAngleBrackets)),
            ("<user@example.com", Err(AddressError::MissingAngleBrackets)),
            (
                "<user@[300.1.1.1]>",
                Err(AddressError::InvalidAddressLiteral),
            ),
            (
                "<user@[tag:content]>",
                Err(AddressError::InvalidAddressLiteral),
            ),
            ("<@relay.example:>", Err(AddressError::InvalidLocalPart)),
            (
                "<@relay..example:user@example.com>",
                Err(AddressError::InvalidSourceRoute),
            ),
            (
                "<@relay.example,user@example.com>",
                Err(AddressError::InvalidSourceRoute),
            ),
            ("<user@example.com>x", Err(AddressError::TrailingCharacters)),
            ("<user@example.com> SIZE=1", Ok("rest: SIZE=1")),
        ];
        for (input, expected) in table {
            let got = mailbox(input);
            let expected = (*expected).map(str::to_owned);
            assert_eq!(got, expected, "input {input:?}");
        }
    }

    #[test]
    fn length_limits_are_enforced_at_the_boundary() {
        let local64 = "a".repeat(64);
        let local65 = "a".repeat(65);
        assert!(mailbox(&format!("<{local64}@example.com>")).is_ok());
        assert_eq!(
            mailbox(&format!("<{local65}@example.com>")),
            Err(AddressError::LocalPartTooLong)
        );
        let label63 = "b".repeat(63);
        let label64 = "b".repeat(64);
        assert!(validate_domain(&format!("{label63}.com"), false).is_ok());
        assert_eq!(
            validate_domain(&format!("{label64}.com"), false),
            Err(AddressError::DomainTooLong)
        );
        // 4 labels of 63 plus 3 dots = 255: the longest legal domain
        let domain255 = [label63.as_str(); 4].join(".");
        assert_eq!(domain255.len(), 255);
        assert!(validate_domain(&domain255, false).is_ok());
        assert_eq!(
            validate_domain(&format!("a{domain255}"), false),
            Err(AddressError::DomainTooLong)
        );
        // path: '<' + local + '@' + domain + '>' must stay within 256
        let domain = format!("{}.{}.{}.{}", label63, label63, label63, "c".repeat(60));
        let ok = format!("<{}@{}>", "a".repeat(256 - 3 - domain.len()), domain);
        assert_eq!(ok.len(), 256);
        assert!(mailbox(&ok).is_ok());
        let too_long = format!("<{}@{}>", "a".repeat(257 - 3 - domain.len()), domain);
        assert_eq!(mailbox(&too_long), Err(AddressError::PathTooLong));
    }

    #[test]
    fn mailbox_parse_without_brackets() {
        let m = Mailbox::parse("user@example.com").unwrap();
        assert_eq!(m.local_part(), "user");
        assert_eq!(m.host().domain(), Some("example.com"));
        assert!(m.is_ascii());
        assert!(!Mailbox::parse("用户@example.com").unwrap().is_ascii());
        assert!(Mailbox::parse("user@example.com>").is_err());
    }
}
