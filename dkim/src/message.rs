//! Reading what signing needs from a message: its header fields, its body, and the domain of
//! its author (the From header field, RFC 5322 section 3.6.2), which DMARC aligns the
//! signature with.
//!
//! The message is the exact byte string that will be sent: CRLF line ends, our `Received`
//! field at the top. The header section ends at the first empty line (RFC 5322 section 2.1); a
//! field is a line `name: value` and every following line that starts with a space or a tab
//! (folding). A line of the header section without a colon is skipped (it cannot be signed);
//! a message without an empty line has an empty body.
//!
//! Author domain rules (also in `docs/dkim.md`):
//! - no From field: no author domain (`Ok(None)`), the message is not signed;
//! - more than one From field: [`DkimError::MultipleFromFields`];
//! - a From field whose mailboxes are all in one domain (the usual single mailbox, or
//!   `a@example.com, b@example.com`): that domain;
//! - mailboxes in different domains: [`DkimError::MultipleFromDomains`] (DMARC receivers
//!   handle such messages inconsistently, often by rejecting them);
//! - no mailbox with a domain name (`From: undisclosed:;`, `From: <>`, address literal
//!   `[192.0.2.1]`): [`DkimError::InvalidFrom`].
//!
//! The address parser knows comments (nested, with quoted pairs), quoted strings (display
//! names and local parts, which may hold `@`, `,`, `<`), angle addresses with obsolete routes
//! (`<@relay:user@example.com>`), groups (`Team: a@example.com;`), folding, and 8-bit
//! display names. It is lenient where real mail is broken: an unquoted display name with a
//! comma (`Doe, John <j@example.com>`) yields one mailbox, as mail clients read it.
//!
//! Domains are compared in lower case A-label form (`bücher.example` and
//! `xn--bcher-kva.example` are one domain).

use std::borrow::Cow;

use memchr::memchr;

use crate::error::DkimError;

/// Longest domain name (RFC 1035, section 2.3.4, without the final dot).
const MAX_DOMAIN_LEN: usize = 253;
/// Longest DNS label.
const MAX_LABEL_LEN: usize = 63;

/// The header fields and the body of a message, borrowed from it.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    /// `(name, value)` in message order. `name` has no trailing white space; `value` is
    /// everything after the colon up to and including the field's final line end, folding
    /// included (the shape mail-auth's canonicalization expects).
    pub(crate) fields: Vec<(&'a [u8], &'a [u8])>,
    /// Everything after the empty line that ends the header section.
    pub(crate) body: &'a [u8],
}

/// Splits `message` into header fields and body. Fields are found by
/// [`smtp_proto::header::fields`] (the server's walker); one that starts with white space or
/// has no name is skipped.
pub(crate) fn parse(message: &[u8]) -> Parsed<'_> {
    let mut fields = Vec::with_capacity(24);
    let mut walker = smtp_proto::header::fields(message);
    for field in walker.by_ref() {
        if matches!(message[field.range.start], b' ' | b'\t') {
            continue;
        }
        let (Some(name), Some(value)) = (field.name(message), field.raw_value(message)) else {
            continue;
        };
        let name = trim_end(name);
        if !name.is_empty() {
            fields.push((name, value));
        }
    }
    // The section ends at its empty line (CRLF or a lone LF), or at the end of the message.
    let rest = &message[walker.section_end()..];
    let body = if let Some(body) = rest.strip_prefix(b"\r\n") {
        body
    } else if let Some(body) = rest.strip_prefix(b"\n") {
        body
    } else {
        &rest[rest.len()..]
    };
    Parsed { fields, body }
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(0, |i| i + 1);
    &bytes[..len]
}

/// The author domain of a message: the domain of the mailbox(es) of its From field, in lower
/// case A-label form. See the module documentation for the rules.
///
/// ```
/// let message = b"From: \"Doe, John\" <John.Doe@News.Example.COM>\r\nSubject: hi\r\n\r\nbody\r\n";
/// assert_eq!(dkim::author_domain(message).unwrap().as_deref(), Some("news.example.com"));
/// assert_eq!(dkim::author_domain(b"Subject: no author\r\n\r\n").unwrap(), None);
/// ```
pub fn author_domain(message: &[u8]) -> Result<Option<String>, DkimError> {
    from_domain(&parse(message).fields)
}

/// [`author_domain`] on already split header fields.
pub(crate) fn from_domain(fields: &[(&[u8], &[u8])]) -> Result<Option<String>, DkimError> {
    let mut froms = fields
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case(b"from"));
    let Some((_, value)) = froms.next() else {
        return Ok(None);
    };
    let others = froms.count();
    if others > 0 {
        return Err(DkimError::MultipleFromFields { count: others + 1 });
    }
    let mut domains = mailbox_domains(value).into_iter();
    let first = domains.next().ok_or(DkimError::InvalidFrom)?;
    let first = normalize_domain(&first).ok_or(DkimError::InvalidFrom)?;
    for other in domains {
        let other = normalize_domain(&other).ok_or(DkimError::InvalidFrom)?;
        if other != first {
            return Err(DkimError::MultipleFromDomains {
                first,
                second: other,
            });
        }
    }
    Ok(Some(first))
}

/// The domain part (after the last `@` outside quotes) of every mailbox of an address list,
/// with comments and white space removed. Mailboxes without `@` are left out.
fn mailbox_domains(value: &[u8]) -> Vec<Vec<u8>> {
    let mut domains = Vec::new();
    // Text of the current list element outside and inside angle brackets, comments and white
    // space removed, quoted strings replaced by a single `"`.
    let mut outside = Vec::new();
    let mut angle: Option<Vec<u8>> = None;
    let mut in_angle = false;
    let mut i = 0;

    let mut finish = |outside: &mut Vec<u8>, angle: &mut Option<Vec<u8>>| {
        let addr = angle.take().unwrap_or_else(|| std::mem::take(outside));
        outside.clear();
        if let Some(at) = addr.iter().rposition(|&b| b == b'@') {
            domains.push(addr[at + 1..].to_vec());
        }
    };

    while i < value.len() {
        let b = value[i];
        i += 1;
        match b {
            b'(' => i = skip_comment(value, i),
            b'"' => {
                i = skip_quoted(value, i);
                push(&mut outside, &mut angle, in_angle, b'"');
            }
            b'\\' => i += 1,
            b'[' => {
                // Domain literal: copied whole, so that it is recognised and refused.
                let end = memchr(b']', &value[i..]).map_or(value.len(), |e| i + e + 1);
                push(&mut outside, &mut angle, in_angle, b'[');
                for &c in &value[i..end] {
                    push(&mut outside, &mut angle, in_angle, c);
                }
                i = end;
            }
            b'<' if !in_angle => {
                in_angle = true;
                angle = Some(Vec::new());
            }
            b'>' if in_angle => in_angle = false,
            b',' | b';' if !in_angle => finish(&mut outside, &mut angle),
            // `display-name ":"` opens a group: what came before is its name.
            b':' if !in_angle => outside.clear(),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => push(&mut outside, &mut angle, in_angle, b),
        }
    }
    finish(&mut outside, &mut angle);
    domains
}

fn push(outside: &mut Vec<u8>, angle: &mut Option<Vec<u8>>, in_angle: bool, b: u8) {
    match angle {
        Some(angle) if in_angle => angle.push(b),
        _ => outside.push(b),
    }
}

/// Index after the comment whose `(` is just before `i` (comments nest).
fn skip_comment(value: &[u8], mut i: usize) -> usize {
    let mut depth = 1;
    while i < value.len() {
        match value[i] {
            b'\\' => i += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    value.len()
}

/// Index after the quoted string whose `"` is just before `i`.
fn skip_quoted(value: &[u8], mut i: usize) -> usize {
    while i < value.len() {
        match value[i] {
            b'\\' => i += 1,
            b'"' => return i + 1,
            _ => {}
        }
        i += 1;
    }
    value.len()
}

/// A domain name in the form used for comparisons and in `d=`: lower case, A-labels, no final
/// dot. `None` when it is not a host name (empty label, address literal, bad characters).
pub(crate) fn normalize_domain(domain: &[u8]) -> Option<String> {
    let domain = domain.strip_suffix(b".").unwrap_or(domain);
    let text = std::str::from_utf8(domain).ok()?;
    let ascii: Cow<'_, str> = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        mail_auth::common::to_a_label(text)
    };
    let lower = ascii.to_ascii_lowercase();
    is_host_name(&lower).then_some(lower)
}

/// Letters, digits, `-` and `_` in labels of 1 to 63 characters, at most 253 in all.
/// (`_` is not in host names, but appears in DKIM selectors and some sending domains.)
pub(crate) fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_DOMAIN_LEN
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From field value → expected author domain or error reason.
    #[test]
    fn author_domain_table() {
        let ok = |d: &str| Ok::<_, &str>(Some(d.to_owned()));
        let cases: &[(&str, Result<Option<String>, &str>)] = &[
            ("user@example.com", ok("example.com")),
            ("User@Example.COM", ok("example.com")),
            ("<user@example.com>", ok("example.com")),
            ("John Doe <john@example.com>", ok("example.com")),
            ("\"Doe, John\" <john@example.com>", ok("example.com")),
            ("\"john@evil.test\" <john@example.com>", ok("example.com")),
            ("\"a@b\"@example.com", ok("example.com")),
            (
                "\"very.(),:;<>[]\\\".VERY.\\\"very@\\\\ \\\"very\\\".unusual\"@strange.example.com",
                ok("strange.example.com"),
            ),
            ("john@example.com (John Doe)", ok("example.com")),
            (
                "(comment (nested) @x.test) john@example.com",
                ok("example.com"),
            ),
            (
                "John <john@example.com> (comment with <angle@other.test>)",
                ok("example.com"),
            ),
            ("john@ (comment) example.com", ok("example.com")),
            (
                "\r\n John Doe\r\n <john@example.com>\r\n",
                ok("example.com"),
            ),
            (
                "=?utf-8?q?J=C3=B6rg?= <joerg@example.com>",
                ok("example.com"),
            ),
            ("Jörg Müller <joerg@example.com>", ok("example.com")),
            ("user@bücher.example", ok("xn--bcher-kva.example")),
            ("user@example.com.", ok("example.com")),
            (
                "<@relay.test,@other.test:user@example.com>",
                ok("example.com"),
            ),
            ("john@example.com <john@example.com>", ok("example.com")),
            ("Doe, John <john@example.com>", ok("example.com")),
            ("a@example.com, B <b@EXAMPLE.com>", ok("example.com")),
            ("Team: a@example.com, b@example.com;", ok("example.com")),
            ("a@example.com, b@other.test", Err("multiple_from_domains")),
            (
                "Team: a@example.com, b@other.test;",
                Err("multiple_from_domains"),
            ),
            ("", Err("invalid_from")),
            ("<>", Err("invalid_from")),
            ("undisclosed-recipients:;", Err("invalid_from")),
            ("John Doe", Err("invalid_from")),
            ("user@[192.0.2.1]", Err("invalid_from")),
            ("user@", Err("invalid_from")),
            ("user@exa mple", ok("example")),
            ("user@exa_mple.com", ok("exa_mple.com")),
            ("user@-bad..com", Err("invalid_from")),
            ("\"unterminated <user@example.com>", Err("invalid_from")),
            ("<user@example.com", ok("example.com")),
        ];
        for (value, expected) in cases {
            for line_end in ["\r\n", "\n"] {
                let message = format!(
                    "Received: from x\r\nFrom: {value}{line_end}To: a@b.test\r\n\r\nbody\r\n"
                );
                let got = author_domain(message.as_bytes()).map_err(|e| e.reason());
                assert_eq!(&got, expected, "From: {value:?}");
            }
        }
    }

    #[test]
    fn no_from_and_several_from_fields() {
        assert_eq!(
            author_domain(b"Subject: x\r\n\r\nFrom: a@b.test\r\n").unwrap(),
            None
        );
        assert_eq!(author_domain(b"").unwrap(), None);
        let err = author_domain(b"From: a@x.test\r\nfrom: a@x.test\r\n\r\n").unwrap_err();
        assert!(
            matches!(err, DkimError::MultipleFromFields { count: 2 }),
            "{err:?}"
        );
        assert!(err.is_message_error());
    }

    #[test]
    fn parse_table() {
        type Case<'a> = (&'a [u8], &'a [(&'a [u8], &'a [u8])], &'a [u8]);
        let cases: &[Case<'_>] = &[
            (
                b"A: 1\r\nB: 2\r\n\r\nbody",
                &[(b"A", b" 1\r\n"), (b"B", b" 2\r\n")],
                b"body",
            ),
            (
                b"A: 1\r\n folded\r\n\tagain\r\nB:2\r\n\r\n",
                &[(b"A", b" 1\r\n folded\r\n\tagain\r\n"), (b"B", b"2\r\n")],
                b"",
            ),
            (
                b"Subject : x\r\n\r\n\r\n",
                &[(b"Subject", b" x\r\n")],
                b"\r\n",
            ),
            (
                b"A: 1\r\nno colon line\r\nB: 2\r\n\r\nb",
                &[(b"A", b" 1\r\n"), (b"B", b" 2\r\n")],
                b"b",
            ),
            (b"A: no body\r\n", &[(b"A", b" no body\r\n")], b""),
            (
                b"A: no final line end",
                &[(b"A", b" no final line end")],
                b"",
            ),
            (b"\r\nbody only", &[], b"body only"),
            (
                b" leading continuation\r\nA: 1\r\n\r\n",
                &[(b"A", b" 1\r\n")],
                b"",
            ),
            (b"A: 1\n\nbare lf", &[(b"A", b" 1\n")], b"bare lf"),
            (b"", &[], b""),
        ];
        for (message, fields, body) in cases {
            let parsed = parse(message);
            assert_eq!(
                parsed.fields.as_slice(),
                *fields,
                "{:?}",
                String::from_utf8_lossy(message)
            );
            assert_eq!(parsed.body, *body, "{:?}", String::from_utf8_lossy(message));
        }
    }

    #[test]
    fn host_name_table() {
        let long_label = "a".repeat(64);
        let long_name = format!("{}.com", "a.".repeat(125));
        let cases: &[(&str, bool)] = &[
            ("example.com", true),
            ("a", true),
            ("s2026", true),
            ("x-1._sub", true),
            ("", false),
            ("a..b", false),
            (".a", false),
            ("a b", false),
            ("a/b", false),
            (&long_label, false),
            (&long_name, false),
        ];
        for (name, valid) in cases {
            assert_eq!(is_host_name(name), *valid, "{name:?}");
        }
    }
}
