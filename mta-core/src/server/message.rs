//! What the server does to a message between the end of DATA and the spool: the `Received:`
//! header it prepends, and the `X-MTA-*` control headers it turns into envelope tags.
//!
//! Invariants: the control headers are removed from every message, whoever sent it, but only
//! a trusted (relay) client's values become tags. The body is edited in place, once, and only
//! when a control header is present.

use std::time::SystemTime;

/// Longest tag value we accept from an `X-MTA-*` header.
const MAX_TAG_LEN: usize = 128;

/// The envelope tags a relay client sets with headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ControlTags {
    /// `X-MTA-Tenant`.
    pub(crate) tenant: Option<String>,
    /// `X-MTA-Campaign`.
    pub(crate) campaign: Option<String>,
    /// `X-MTA-Pool`.
    pub(crate) pool: Option<String>,
    /// `X-MTA-Priority` (`high`, `normal`, `bulk`), as written; checked when taken.
    pub(crate) priority: Option<String>,
}

/// A control header that cannot be used: its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadControlHeader(pub(crate) &'static str);

const CONTROL_HEADERS: [&str; 4] = [
    "X-MTA-Tenant",
    "X-MTA-Campaign",
    "X-MTA-Pool",
    "X-MTA-Priority",
];

/// Finds the control headers in the header section of `body[start..]`, removes them, and
/// returns their values. A header given twice, empty, too long, or with characters outside
/// visible ASCII is refused.
pub(crate) fn take_control_headers(
    body: &mut Vec<u8>,
    start: usize,
) -> Result<ControlTags, BadControlHeader> {
    let mut tags = ControlTags::default();
    for (index, value) in smtp_proto::header::remove_fields(body, start, &CONTROL_HEADERS) {
        let header = CONTROL_HEADERS[index];
        let mut valid = !value.is_empty()
            && value.len() <= MAX_TAG_LEN
            && value.bytes().all(|b| b.is_ascii_graphic());
        let slot = match index {
            0 => &mut tags.tenant,
            1 => &mut tags.campaign,
            2 => &mut tags.pool,
            _ => {
                valid &= ["high", "normal", "bulk"]
                    .iter()
                    .any(|p| p.eq_ignore_ascii_case(&value));
                &mut tags.priority
            }
        };
        if !valid || slot.is_some() {
            return Err(BadControlHeader(header));
        }
        *slot = Some(value);
    }
    Ok(tags)
}

/// How many `Received:` fields the header section of `body[start..]` has (each MTA on the
/// way adds one: a count past the hop limit means a mail loop).
pub(crate) fn received_count(body: &[u8], start: usize) -> usize {
    let section = &body[start..];
    smtp_proto::header::fields(section)
        .filter(|f| {
            f.name(section)
                .is_some_and(|n| n.eq_ignore_ascii_case(b"Received"))
        })
        .count()
}

/// What a `Received:` header says about the session.
pub(crate) struct ReceivedInfo<'a> {
    /// The client's HELO/EHLO name.
    pub(crate) helo: &'a str,
    /// The client's address.
    pub(crate) peer: std::net::IpAddr,
    /// Our host name.
    pub(crate) hostname: &'a str,
    /// RFC 3848 protocol: SMTP, ESMTP, ESMTPS, ESMTPA or ESMTPSA.
    pub(crate) protocol: &'a str,
    /// TLS version and cipher, when TLS is on.
    pub(crate) tls: Option<&'a str>,
    /// The queue id.
    pub(crate) id: &'a str,
    /// The recipient, when there is exactly one.
    pub(crate) single_recipient: Option<&'a str>,
}

/// Appends a `Received:` header (RFC 5321 4.4) for this message.
pub(crate) fn write_received(out: &mut Vec<u8>, info: &ReceivedInfo<'_>, now: SystemTime) {
    use std::fmt::Write;
    let mut h = String::with_capacity(256);
    let _ = write!(h, "Received: from {} ([{}])\r\n", info.helo, info.peer);
    if let Some(tls) = info.tls {
        let _ = write!(h, "\t({tls})\r\n");
    }
    let _ = write!(
        h,
        "\tby {} (mta) with {} id {}",
        info.hostname, info.protocol, info.id
    );
    if let Some(rcpt) = info.single_recipient {
        let _ = write!(h, "\r\n\tfor <{rcpt}>");
    }
    let _ = write!(h, "; {}\r\n", crate::date::rfc5322(now));
    out.extend_from_slice(h.as_bytes());
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn received_fields_are_counted_in_the_header_section_only() {
        let body = b"Received: by us\r\nreceived: from a\r\n\tby b\r\nReceived-SPF: pass\r\nSubject: x\r\nRECEIVED:from c\r\n\r\nReceived: in the body\r\n";
        assert_eq!(received_count(body, 0), 3);
        assert_eq!(received_count(body, 17), 2, "after our own");
        assert_eq!(received_count(b"Subject: none\r\n\r\n", 0), 0);
    }

    #[test]
    fn control_headers_become_tags_and_leave_the_message() {
        let mut body = b"Received: by us\r\nFrom: a@example.com\r\nX-MTA-Tenant: acme\r\nSubject: hi\r\nx-mta-campaign:\r\n  spring-2026\r\nX-MTA-Pool: bulk\r\nX-MTA-Priority: High\r\n\r\nX-MTA-Tenant: in the body stays\r\n".to_vec();
        let tags = take_control_headers(&mut body, 17).unwrap();
        assert_eq!(
            tags,
            ControlTags {
                tenant: Some("acme".into()),
                campaign: Some("spring-2026".into()),
                pool: Some("bulk".into()),
                priority: Some("High".into()),
            }
        );
        assert_eq!(
            body,
            b"Received: by us\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\nX-MTA-Tenant: in the body stays\r\n"
        );
    }

    #[test]
    fn bad_control_headers_are_refused() {
        let cases: [(&[u8], &str); 5] = [
            (b"X-MTA-Priority: urgent\r\n\r\n", "X-MTA-Priority"),
            (
                b"X-MTA-Tenant: a\r\nX-MTA-Tenant: b\r\n\r\n",
                "X-MTA-Tenant",
            ),
            (b"X-MTA-Pool:\r\n\r\n", "X-MTA-Pool"),
            (b"X-MTA-Campaign: two words\r\n\r\n", "X-MTA-Campaign"),
            (b"X-MTA-Pool: caf\xc3\xa9\r\n\r\n", "X-MTA-Pool"),
        ];
        for (input, name) in cases {
            let mut body = input.to_vec();
            assert_eq!(
                take_control_headers(&mut body, 0),
                Err(BadControlHeader(name))
            );
        }
        let mut plain = b"Subject: x\r\n\r\nbody\r\n".to_vec();
        assert_eq!(
            take_control_headers(&mut plain, 0),
            Ok(ControlTags::default())
        );
        assert_eq!(plain, b"Subject: x\r\n\r\nbody\r\n");
    }

    #[test]
    fn received_header_is_folded_and_complete() {
        let mut out = Vec::new();
        write_received(
            &mut out,
            &ReceivedInfo {
                helo: "client.example",
                peer: "192.0.2.1".parse().unwrap(),
                hostname: "mta.example.net",
                protocol: "ESMTPS",
                tls: Some("TLSv1.3 TLS13_AES_256_GCM_SHA384"),
                id: "0123",
                single_recipient: Some("b@example.org"),
            },
            UNIX_EPOCH + Duration::from_secs(1_795_715_262),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Received: from client.example ([192.0.2.1])\r\n\t(TLSv1.3 TLS13_AES_256_GCM_SHA384)\r\n\tby mta.example.net (mta) with ESMTPS id 0123\r\n\tfor <b@example.org>; Thu, 26 Nov 2026 17:47:42 +0000\r\n"
        );
    }
}
