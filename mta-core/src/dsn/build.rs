//! Building the DSN message: RFC 3464 `multipart/report` (RFC 6522), or its internationalised
//! form (RFC 6533) for SMTPUTF8 originals.
//!
//! Invariants of every message built here:
//! - CRLF line ends only, no bare CR or LF (the returned original is normalised too);
//! - no header line or report field carries a CR or LF from the input (control characters
//!   in addresses, replies and ids are replaced by spaces), so input cannot inject fields;
//! - the MIME boundary occurs in no part;
//! - the output depends only on the [`DsnInput`] (no clock, no randomness).

use std::borrow::Cow;
use std::fmt::Write as _;

use memchr::memmem;
use queue::{BodyType, DsnRet};

use super::{Action, Diagnostic, DsnInput, Original, RecipientOutcome};
use crate::date::{from_unix_ms, rfc5322};

/// What kind of report a DSN is, from the actions it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportKind {
    /// At least one recipient failed: a bounce.
    Failure,
    /// No failure, at least one delay: a delay warning.
    Delay,
    /// Only successes (delivered, relayed, expanded).
    Success,
}

impl ReportKind {
    /// The kind of report for these outcomes.
    pub fn of(recipients: &[RecipientOutcome]) -> ReportKind {
        if recipients.iter().any(|r| r.action == Action::Failed) {
            ReportKind::Failure
        } else if recipients.iter().any(|r| r.action == Action::Delayed) {
            ReportKind::Delay
        } else {
            ReportKind::Success
        }
    }

    /// The `Subject:` of the DSN.
    pub fn subject(self) -> &'static str {
        match self {
            ReportKind::Failure => "Undelivered Mail Returned to Sender",
            ReportKind::Delay => "Delivery Status Notification (Delay)",
            ReportKind::Success => "Successful Mail Delivery Report",
        }
    }
}

/// A built DSN and what sending it requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsn {
    /// The message (RFC 5322, CRLF), to be queued with a null reverse-path to the original
    /// sender.
    pub message: Vec<u8>,
    /// What it reports.
    pub kind: ReportKind,
    /// It is internationalised (RFC 6533): the next hop must offer `SMTPUTF8`.
    pub smtputf8: bool,
    /// `BODY=8BITMIME` when it contains any 8-bit octet, else `7BIT`.
    pub body_type: BodyType,
    /// The original came back whole (`message/rfc822` or `message/global`); `false`: its
    /// headers only.
    pub returned_full: bool,
}

/// Builds the DSN for `input` (see [`build_dsn_message`] for what sending it needs).
pub fn build_dsn(input: &DsnInput<'_>) -> Vec<u8> {
    build_dsn_message(input).message
}

/// Builds the DSN for `input`: the message and its transport requirements.
///
/// Content returned: for a failure report, the whole original when it was given whole,
/// `RET=HDRS` was not asked, it is not `BINARYMIME` and it fits in `return_limit`; otherwise
/// (and always for delay and success reports, RFC 3461 section 4.3) the header section only.
pub fn build_dsn_message(input: &DsnInput<'_>) -> Dsn {
    let envelope = input.envelope;
    let kind = ReportKind::of(input.recipients);
    let international = envelope.smtputf8
        || !envelope.sender.is_ascii()
        || input
            .recipients
            .iter()
            .any(|r| !r.address.is_ascii() || r.orcpt.as_deref().is_some_and(|o| !o.is_ascii()));

    let (headers, full) = match input.original {
        Original::Full(message) => (header_section(message), Some(message)),
        Original::Headers(headers) => (header_section(headers), None),
    };
    let returned = match full {
        Some(message)
            if kind == ReportKind::Failure
                && envelope.dsn.ret != Some(DsnRet::Headers)
                && envelope.body_type != BodyType::BinaryMime
                && message.len() <= input.return_limit =>
        {
            Some(message)
        }
        _ => None,
    };
    let returned_full = returned.is_some();
    let returned_content = crlf(returned.unwrap_or(headers));

    let text = notification_text(input, kind, returned_full);
    let status = delivery_status(input);

    let boundary = choose_boundary(
        input,
        &[text.as_bytes(), status.as_bytes(), &returned_content],
    );
    let mta = clean(input.reporting_mta);
    let mut out: Vec<u8> =
        Vec::with_capacity(returned_content.len() + text.len() + status.len() + 1024);
    let mut header = String::new();
    let _ = write!(
        header,
        "From: Mail Delivery System <MAILER-DAEMON@{mta}>\r\n\
         To: <{}>\r\n\
         Subject: {}\r\n\
         Date: {}\r\n\
         Message-ID: <{}.{}@{mta}>\r\n",
        clean(&envelope.sender),
        kind.subject(),
        rfc5322(input.now),
        unix_ms(input.now),
        id_token(input.id),
    );
    if let Some(original_id) = message_id(headers) {
        let _ = write!(
            header,
            "In-Reply-To: {original_id}\r\nReferences: {original_id}\r\n"
        );
    }
    let _ = write!(
        header,
        "Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type={};\r\n\tboundary=\"{boundary}\"\r\n",
        if international {
            "global-delivery-status"
        } else {
            "delivery-status"
        }
    );
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(b"\r\nThis is a MIME-encapsulated message.\r\n");

    // 1. The explanation for people.
    let text_8bit = !text.is_ascii();
    let _ = write_part_header(
        &mut out,
        &boundary,
        if text_8bit {
            "text/plain; charset=utf-8"
        } else {
            "text/plain; charset=us-ascii"
        },
        "Notification",
        text_8bit,
    );
    out.extend_from_slice(text.as_bytes());

    // 2. The report for programs.
    let status_type = if international {
        "message/global-delivery-status"
    } else {
        "message/delivery-status"
    };
    let _ = write_part_header(
        &mut out,
        &boundary,
        status_type,
        "Delivery report",
        !status.is_ascii(),
    );
    out.extend_from_slice(status.as_bytes());

    // 3. The original, or its headers.
    let (returned_type, description) = match (returned_full, international) {
        (true, false) => ("message/rfc822", "Undelivered Message"),
        (true, true) => ("message/global", "Undelivered Message"),
        (false, false) => ("text/rfc822-headers", "Undelivered Message Headers"),
        (false, true) => ("message/global-headers", "Undelivered Message Headers"),
    };
    let returned_8bit = !returned_content.is_ascii();
    let _ = write_part_header(
        &mut out,
        &boundary,
        returned_type,
        description,
        returned_8bit,
    );
    out.extend_from_slice(&returned_content);
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    let body_type = if out.is_ascii() {
        BodyType::SevenBit
    } else {
        BodyType::EightBitMime
    };
    Dsn {
        message: out,
        kind,
        smtputf8: international,
        body_type,
        returned_full,
    }
}

/// Appends a delimiter and a part's header. The delimiter starts with its own CRLF (RFC 2046
/// section 5.1.1), so the part before it keeps its final CRLF.
fn write_part_header(
    out: &mut Vec<u8>,
    boundary: &str,
    content_type: &str,
    description: &str,
    eight_bit: bool,
) -> std::fmt::Result {
    let mut part = String::new();
    write!(
        part,
        "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Description: {description}\r\n"
    )?;
    if eight_bit {
        part.push_str("Content-Transfer-Encoding: 8bit\r\n");
    }
    part.push_str("\r\n");
    out.extend_from_slice(part.as_bytes());
    Ok(())
}

/// The human-readable part, ending with CRLF.
fn notification_text(input: &DsnInput<'_>, kind: ReportKind, returned_full: bool) -> String {
    let mut text = String::new();
    let mta = clean(input.reporting_mta);
    let _ = write!(text, "This is the mail system at host {mta}.\r\n\r\n");
    match kind {
        ReportKind::Failure => {
            text.push_str(
                "I'm sorry to have to inform you that your message could not\r\n\
                 be delivered to one or more recipients. ",
            );
            text.push_str(if returned_full {
                "It is attached below.\r\n"
            } else {
                "Its headers are attached below.\r\n"
            });
        }
        ReportKind::Delay => {
            text.push_str(
                "Your message could not be delivered yet to one or more recipients.\r\n\
                 The mail system will keep trying; you do not need to send it again.\r\n",
            );
        }
        ReportKind::Success => {
            text.push_str(
                "Your message was successfully delivered to the destinations listed below.\r\n",
            );
        }
    }
    text.push_str("\r\nFor further assistance, please contact the postmaster.\r\n\r\n");
    for r in input.recipients {
        let what = match r.action {
            Action::Failed => "delivery failed",
            Action::Delayed => "delivery delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "delivered to a list or alias",
        };
        let _ = write!(text, "<{}>: {what} ({})\r\n", clean(&r.address), r.status);
        match (&r.diagnostic, &r.remote_mta) {
            (Some(Diagnostic::Smtp(reply)), Some(host)) => {
                let _ = write!(text, "    host {} said:\r\n", clean(host));
                for line in lines(reply) {
                    let _ = write!(text, "    {line}\r\n");
                }
            }
            (Some(Diagnostic::Smtp(reply) | Diagnostic::Mta(reply)), _) => {
                for line in lines(reply) {
                    let _ = write!(text, "    {line}\r\n");
                }
            }
            (None, Some(host)) => {
                let _ = write!(text, "    host {}\r\n", clean(host));
            }
            (None, None) => {}
        }
        if r.action == Action::Delayed
            && let Some(until) = r.will_retry_until
        {
            let _ = write!(text, "    will retry until {}\r\n", rfc5322(until));
        }
    }
    text
}

/// The `message/delivery-status` body (RFC 3464 section 2), ending with CRLF.
fn delivery_status(input: &DsnInput<'_>) -> String {
    let envelope = input.envelope;
    let mut s = String::new();
    let _ = write!(s, "Reporting-MTA: dns; {}\r\n", clean(input.reporting_mta));
    if let Some(envid) = &envelope.dsn.envid {
        let _ = write!(
            s,
            "Original-Envelope-Id: {}\r\n",
            clean(&decode_xtext(envid))
        );
    }
    let _ = write!(
        s,
        "Arrival-Date: {}\r\n",
        rfc5322(from_unix_ms(envelope.created_ms))
    );
    for r in input.recipients {
        s.push_str("\r\n");
        if let Some(orcpt) = &r.orcpt {
            let (kind, address) = orcpt.split_once(';').unwrap_or(("rfc822", orcpt));
            let _ = write!(
                s,
                "Original-Recipient: {};{}\r\n",
                clean(kind.trim()),
                clean(&decode_xtext(address.trim()))
            );
        }
        let address_type = if r.address.is_ascii() {
            "rfc822"
        } else {
            "utf-8"
        };
        let _ = write!(
            s,
            "Final-Recipient: {address_type}; {}\r\n",
            clean(&r.address)
        );
        let _ = write!(s, "Action: {}\r\n", r.action.as_str());
        let _ = write!(s, "Status: {}\r\n", r.status);
        if let Some(host) = &r.remote_mta {
            let _ = write!(s, "Remote-MTA: dns; {}\r\n", clean(host));
        }
        if let Some(diagnostic) = &r.diagnostic {
            let (kind, text) = match diagnostic {
                Diagnostic::Smtp(text) => ("smtp", text),
                Diagnostic::Mta(text) => ("x-mta", text),
            };
            let _ = write!(s, "Diagnostic-Code: {kind};");
            // A multi-line reply is folded: one reply line per header line.
            for (i, line) in lines(text).enumerate() {
                s.push_str(if i == 0 { " " } else { "\r\n    " });
                s.push_str(&line);
            }
            s.push_str("\r\n");
        }
        if let Some(last) = r.last_attempt {
            let _ = write!(s, "Last-Attempt-Date: {}\r\n", rfc5322(last));
        }
        if r.action == Action::Delayed
            && let Some(until) = r.will_retry_until
        {
            let _ = write!(s, "Will-Retry-Until: {}\r\n", rfc5322(until));
        }
    }
    s
}

/// The lines of a reply or explanation, cleaned, without empty ones.
fn lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(clean)
}

/// `text` with every control character (CR and LF included) replaced by a space.
fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// The xtext-decoded form of an ENVID or ORCPT address; the raw text if it is not valid xtext.
fn decode_xtext(text: &str) -> Cow<'_, str> {
    smtp_proto::params::decode_xtext(text).unwrap_or(Cow::Borrowed(text))
}

/// The characters of `id` that may appear in a Message-ID and a boundary.
fn id_token(id: &str) -> String {
    let token: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if token.is_empty() {
        "dsn".to_owned()
    } else {
        token
    }
}

fn unix_ms(time: std::time::SystemTime) -> u128 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// A boundary found in none of the parts (RFC 2046: at most 70 characters). `=_` cannot
/// occur in quoted-printable text, so a clash is already unlikely; a counter settles it.
fn choose_boundary(input: &DsnInput<'_>, parts: &[&[u8]]) -> String {
    let base = format!("=_{:x}.{}", unix_ms(input.now), id_token(input.id));
    let base: String = base.chars().take(60).collect();
    let mut candidate = base.clone();
    let mut n = 0u32;
    while parts
        .iter()
        .any(|p| memmem::find(p, candidate.as_bytes()).is_some())
    {
        n += 1;
        candidate = format!("{base}.{n}");
    }
    candidate
}

/// The header section of a message: up to and including the CRLF before the empty line
/// (the whole input if there is no empty line).
fn header_section(message: &[u8]) -> &[u8] {
    if message.starts_with(b"\r\n") || message.starts_with(b"\n") {
        return &[];
    }
    let crlf = memmem::find(message, b"\r\n\r\n").map(|i| i + 2);
    let lf = memmem::find(message, b"\n\n").map(|i| i + 1);
    match (crlf, lf) {
        (Some(a), Some(b)) => &message[..a.min(b)],
        (Some(a), None) | (None, Some(a)) => &message[..a],
        (None, None) => message,
    }
}

/// `bytes` with every line ending made CRLF, ending with CRLF (unless empty).
fn crlf(bytes: &[u8]) -> Cow<'_, [u8]> {
    let clean = bytes.windows(2).all(|w| w[1] != b'\n' || w[0] == b'\r')
        && bytes.first() != Some(&b'\n')
        && !bytes
            .iter()
            .enumerate()
            .any(|(i, &b)| b == b'\r' && bytes.get(i + 1) != Some(&b'\n'));
    if clean && (bytes.is_empty() || bytes.ends_with(b"\r\n")) {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + 64);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    Cow::Owned(out)
}

/// The original's `Message-ID` (unfolded, `<...>`), if it has a plausible one.
fn message_id(headers: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(headers);
    let mut lines = text.split("\r\n").peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("message-id") || line.starts_with([' ', '\t']) {
            continue;
        }
        let mut value = value.trim().to_owned();
        while let Some(next) = lines.peek()
            && next.starts_with([' ', '\t'])
        {
            value.push_str(next.trim());
            lines.next();
        }
        let plausible = value.starts_with('<')
            && value.ends_with('>')
            && value.len() <= 250
            && !value.chars().any(|c| c.is_control() || c.is_whitespace());
        return plausible.then_some(value);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_section_table() {
        let table: [(&[u8], &[u8]); 6] = [
            (b"A: 1\r\nB: 2\r\n\r\nbody\r\n", b"A: 1\r\nB: 2\r\n"),
            (b"A: 1\r\n\r\n", b"A: 1\r\n"),
            (b"A: 1\r\n", b"A: 1\r\n"),
            (b"\r\nbody only\r\n", b""),
            (b"A: 1\nB: 2\n\nbody\n", b"A: 1\nB: 2\n"),
            (b"", b""),
        ];
        for (message, headers) in table {
            assert_eq!(
                header_section(message),
                headers,
                "{}",
                String::from_utf8_lossy(message)
            );
        }
    }

    #[test]
    fn crlf_table() {
        let table: [(&[u8], &[u8]); 6] = [
            (b"a\r\nb\r\n", b"a\r\nb\r\n"),
            (b"a\nb\n", b"a\r\nb\r\n"),
            (b"a\rb", b"a\r\nb\r\n"),
            (b"a\r\nb", b"a\r\nb\r\n"),
            (b"\n", b"\r\n"),
            (b"", b""),
        ];
        for (input, output) in table {
            assert_eq!(
                &*crlf(input),
                output,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn message_id_table() {
        let table: [(&[u8], Option<&str>); 5] = [
            (
                b"Subject: x\r\nMessage-ID: <a.1@example.com>\r\n",
                Some("<a.1@example.com>"),
            ),
            (
                b"message-id:\r\n  <folded@example.com>\r\nX: y\r\n",
                Some("<folded@example.com>"),
            ),
            (b"Message-ID: no brackets\r\n", None),
            (b"X-Message-ID: <not@this.one>\r\n", None),
            (b"Subject: none\r\n", None),
        ];
        for (headers, id) in table {
            assert_eq!(
                message_id(headers).as_deref(),
                id,
                "{}",
                String::from_utf8_lossy(headers)
            );
        }
    }

    #[test]
    fn clean_and_tokens() {
        assert_eq!(clean("a\r\nInjected: yes"), "a  Injected: yes");
        assert_eq!(clean("plain"), "plain");
        assert_eq!(id_token("0199ab<>\r\n"), "0199ab");
        assert_eq!(id_token("<>"), "dsn");
        assert_eq!(decode_xtext("a+2Bb"), "a+b");
        assert_eq!(decode_xtext("bad+zz"), "bad+zz");
    }
}
