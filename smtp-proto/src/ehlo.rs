//! EHLO capabilities: parsed from a server's EHLO reply (client side) and rendered for our
//! own EHLO reply (server side).

use bitflags::bitflags;

use crate::auth::{AuthMechanisms, Mechanism};
use crate::reply::Reply;

bitflags! {
    /// SMTP service extensions named in an EHLO reply.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Extensions: u16 {
        /// `PIPELINING` (RFC 2920).
        const PIPELINING = 1;
        /// `STARTTLS` (RFC 3207).
        const STARTTLS = 1 << 1;
        /// `8BITMIME` (RFC 6152).
        const EIGHT_BIT_MIME = 1 << 2;
        /// `SMTPUTF8` (RFC 6531).
        const SMTPUTF8 = 1 << 3;
        /// `CHUNKING` (RFC 3030): BDAT.
        const CHUNKING = 1 << 4;
        /// `BINARYMIME` (RFC 3030).
        const BINARY_MIME = 1 << 5;
        /// `ENHANCEDSTATUSCODES` (RFC 2034).
        const ENHANCED_STATUS_CODES = 1 << 6;
        /// `DSN` (RFC 3461).
        const DSN = 1 << 7;
        /// `REQUIRETLS` (RFC 8689).
        const REQUIRETLS = 1 << 8;
        /// `SIZE` (RFC 1870), with or without a limit.
        const SIZE = 1 << 9;
        /// `AUTH` (RFC 4954), with at least one mechanism.
        const AUTH = 1 << 10;
    }
}

/// The keyword of each value-less extension, in the order our server lists them.
const KEYWORDS: [(Extensions, &str); 9] = [
    (Extensions::PIPELINING, "PIPELINING"),
    (Extensions::EIGHT_BIT_MIME, "8BITMIME"),
    (Extensions::SMTPUTF8, "SMTPUTF8"),
    (Extensions::CHUNKING, "CHUNKING"),
    (Extensions::BINARY_MIME, "BINARYMIME"),
    (Extensions::ENHANCED_STATUS_CODES, "ENHANCEDSTATUSCODES"),
    (Extensions::DSN, "DSN"),
    (Extensions::REQUIRETLS, "REQUIRETLS"),
    (Extensions::STARTTLS, "STARTTLS"),
];

/// What a server offers after EHLO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The extensions offered.
    pub extensions: Extensions,
    /// The SIZE limit in octets; `None` when SIZE is absent or says 0 (no fixed limit).
    pub max_size: Option<u64>,
    /// SASL mechanisms offered with AUTH (unknown names are left out).
    pub auth: AuthMechanisms,
}

impl Capabilities {
    /// Reads the capabilities from an EHLO reply. The first line (the server's greeting) is
    /// skipped; unknown keywords are ignored, as RFC 5321 asks of clients.
    pub fn from_ehlo(reply: &Reply<'_>) -> Capabilities {
        let mut caps = Capabilities::default();
        for line in reply.lines().skip(1) {
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let mut words = line.split_ascii_whitespace();
            let Some(keyword) = words.next() else {
                continue;
            };
            if let Some((flag, _)) = KEYWORDS
                .iter()
                .find(|(_, k)| k.eq_ignore_ascii_case(keyword))
            {
                caps.extensions |= *flag;
            } else if keyword.eq_ignore_ascii_case("SIZE") {
                caps.extensions |= Extensions::SIZE;
                caps.max_size = words.next().and_then(|v| v.parse().ok()).filter(|&v| v > 0);
            } else if keyword.eq_ignore_ascii_case("AUTH") {
                for name in words {
                    if let Some(m) = Mechanism::from_name(name) {
                        caps.auth |= m.flag();
                    }
                }
                if !caps.auth.is_empty() {
                    caps.extensions |= Extensions::AUTH;
                }
            }
        }
        caps
    }

    /// True if every extension in `ext` is offered.
    pub fn has(&self, ext: Extensions) -> bool {
        self.extensions.contains(ext)
    }

    /// Appends our EHLO reply: `250-hostname greeting`, then one line per capability.
    /// SIZE is listed with `max_size` (0 when `None`); AUTH with the mechanisms in `auth`
    /// (left out when `auth` is empty, whatever `extensions` says).
    pub fn write_ehlo(&self, out: &mut Vec<u8>, hostname: &str, greeting: &str) {
        let mut lines: Vec<String> = Vec::with_capacity(12);
        lines.push(if greeting.is_empty() {
            hostname.to_owned()
        } else {
            format!("{hostname} {greeting}")
        });
        for (flag, keyword) in KEYWORDS {
            if self.extensions.contains(flag) {
                lines.push(keyword.to_owned());
            }
        }
        if self.extensions.contains(Extensions::SIZE) {
            lines.push(format!("SIZE {}", self.max_size.unwrap_or(0)));
        }
        if !self.auth.is_empty() {
            let names: Vec<&str> = self.auth.mechanisms().map(Mechanism::as_str).collect();
            lines.push(format!("AUTH {}", names.join(" ")));
        }
        let count = lines.len();
        for (i, line) in lines.iter().enumerate() {
            out.extend_from_slice(b"250");
            out.push(if i + 1 == count { b' ' } else { b'-' });
            out.extend(
                line.bytes()
                    .map(|b| if b < 0x20 || b == 0x7f { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::ReplyParser;

    #[test]
    fn parses_a_real_world_ehlo_reply() {
        let wire = b"250-mx.google.com at your service, [192.0.2.1]\r\n\
250-SIZE 157286400\r\n\
250-8BITMIME\r\n\
250-STARTTLS\r\n\
250-ENHANCEDSTATUSCODES\r\n\
250-PIPELINING\r\n\
250-CHUNKING\r\n\
250-auth login PLAIN XOAUTH2 GSSAPI\r\n\
250 SMTPUTF8\r\n";
        let (reply, used) = ReplyParser::new().parse(wire).unwrap().unwrap();
        assert_eq!(used, wire.len());
        let caps = Capabilities::from_ehlo(&reply);
        assert_eq!(
            caps.extensions,
            Extensions::SIZE
                | Extensions::EIGHT_BIT_MIME
                | Extensions::STARTTLS
                | Extensions::ENHANCED_STATUS_CODES
                | Extensions::PIPELINING
                | Extensions::CHUNKING
                | Extensions::AUTH
                | Extensions::SMTPUTF8
        );
        assert_eq!(caps.max_size, Some(157_286_400));
        assert_eq!(
            caps.auth,
            AuthMechanisms::LOGIN | AuthMechanisms::PLAIN | AuthMechanisms::XOAUTH2
        );
    }

    #[test]
    fn size_zero_means_no_limit() {
        let (reply, _) = ReplyParser::new()
            .parse(b"250-host\r\n250 SIZE 0\r\n")
            .unwrap()
            .unwrap();
        let caps = Capabilities::from_ehlo(&reply);
        assert!(caps.has(Extensions::SIZE));
        assert_eq!(caps.max_size, None);
    }

    #[test]
    fn our_ehlo_reply_round_trips_through_the_client_parser() {
        let ours = Capabilities {
            extensions: Extensions::all(),
            max_size: Some(52_428_800),
            auth: AuthMechanisms::PLAIN | AuthMechanisms::LOGIN,
        };
        let mut out = Vec::new();
        ours.write_ehlo(&mut out, "mta.example.net", "at your service");
        assert!(out.starts_with(b"250-mta.example.net at your service\r\n250-PIPELINING\r\n"));
        assert!(out.ends_with(b"250 AUTH PLAIN LOGIN\r\n"));
        let (reply, used) = ReplyParser::new().parse(&out).unwrap().unwrap();
        assert_eq!(used, out.len());
        assert_eq!(Capabilities::from_ehlo(&reply), ours);
    }
}
