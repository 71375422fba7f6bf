//! SASL mechanism names of AUTH (RFC 4954) and of the EHLO AUTH capability.

use bitflags::bitflags;

/// A SASL mechanism we can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mechanism {
    /// `PLAIN` (RFC 4616).
    Plain,
    /// `LOGIN` (draft-murchison-sasl-login).
    Login,
    /// `CRAM-MD5` (RFC 2195).
    CramMd5,
    /// `XOAUTH2` (Google, Microsoft).
    XOAuth2,
    /// `OAUTHBEARER` (RFC 7628).
    OAuthBearer,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `EXTERNAL` (RFC 4422 appendix A).
    External,
}

/// Every mechanism with its wire name and capability flag, in one table.
const MECHANISMS: [(Mechanism, &str, AuthMechanisms); 7] = [
    (Mechanism::Plain, "PLAIN", AuthMechanisms::PLAIN),
    (Mechanism::Login, "LOGIN", AuthMechanisms::LOGIN),
    (Mechanism::CramMd5, "CRAM-MD5", AuthMechanisms::CRAM_MD5),
    (Mechanism::XOAuth2, "XOAUTH2", AuthMechanisms::XOAUTH2),
    (
        Mechanism::OAuthBearer,
        "OAUTHBEARER",
        AuthMechanisms::OAUTHBEARER,
    ),
    (
        Mechanism::ScramSha256,
        "SCRAM-SHA-256",
        AuthMechanisms::SCRAM_SHA_256,
    ),
    (Mechanism::External, "EXTERNAL", AuthMechanisms::EXTERNAL),
];

impl Mechanism {
    /// Looks a mechanism up by its name, ignoring case.
    pub fn from_name(name: &str) -> Option<Mechanism> {
        MECHANISMS
            .iter()
            .find(|(_, n, _)| n.eq_ignore_ascii_case(name))
            .map(|(m, _, _)| *m)
    }

    /// The name as written on the wire.
    pub fn as_str(self) -> &'static str {
        MECHANISMS
            .iter()
            .find(|(m, _, _)| *m == self)
            .map_or("", |(_, n, _)| n)
    }

    /// The capability flag for this mechanism.
    pub fn flag(self) -> AuthMechanisms {
        MECHANISMS
            .iter()
            .find(|(m, _, _)| *m == self)
            .map_or(AuthMechanisms::empty(), |(_, _, f)| *f)
    }
}

bitflags! {
    /// A set of SASL mechanisms, as offered in the EHLO AUTH capability.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AuthMechanisms: u16 {
        /// `PLAIN`.
        const PLAIN = 1;
        /// `LOGIN`.
        const LOGIN = 1 << 1;
        /// `CRAM-MD5`.
        const CRAM_MD5 = 1 << 2;
        /// `XOAUTH2`.
        const XOAUTH2 = 1 << 3;
        /// `OAUTHBEARER`.
        const OAUTHBEARER = 1 << 4;
        /// `SCRAM-SHA-256`.
        const SCRAM_SHA_256 = 1 << 5;
        /// `EXTERNAL`.
        const EXTERNAL = 1 << 6;
    }
}

impl AuthMechanisms {
    /// The mechanisms in the set, in a fixed order.
    pub fn mechanisms(self) -> impl Iterator<Item = Mechanism> {
        MECHANISMS
            .into_iter()
            .filter(move |(_, _, f)| self.contains(*f))
            .map(|(m, _, _)| m)
    }
}

/// A SASL response line sent by the client during an AUTH exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResponse<'a> {
    /// `*`: the client cancels the exchange (a `501 5.7.0`).
    Cancel,
    /// Base64 text (possibly empty), not yet decoded.
    Data(&'a str),
}

/// True if `text` is base64 with correct padding (RFC 4648, no line breaks), or empty.
pub(crate) fn is_base64(text: &str) -> bool {
    let b = text.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let padding = b.iter().rev().take_while(|&&c| c == b'=').count();
    if padding > 2 {
        return false;
    }
    b[..b.len() - padding]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanism_names_round_trip() {
        for (m, name, flag) in MECHANISMS {
            assert_eq!(Mechanism::from_name(name), Some(m));
            assert_eq!(Mechanism::from_name(&name.to_ascii_lowercase()), Some(m));
            assert_eq!(m.as_str(), name);
            assert_eq!(m.flag(), flag);
        }
        assert_eq!(Mechanism::from_name("GSSAPI"), None);
        let set = AuthMechanisms::LOGIN | AuthMechanisms::PLAIN;
        assert_eq!(
            set.mechanisms().collect::<Vec<_>>(),
            vec![Mechanism::Plain, Mechanism::Login]
        );
    }

    #[test]
    fn base64_validation() {
        for ok in ["", "AGFwcABzZWNyZXQ=", "dXNlcg==", "YWJj"] {
            assert!(is_base64(ok), "{ok}");
        }
        for bad in ["a", "abc", "ab=c", "a===", "ab c", "YW*j"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
