//! The crate's error type.
//!
//! [`DkimError`] is returned by every fallible function of the crate. Three groups of variants:
//! configuration and key loading (found at start-up or on reload: the configuration is refused
//! as a whole, a running [`Signer`](crate::Signer) is left as it was), problems of one message
//! ([`DkimError::is_message_error`]: its From header cannot be attributed to one domain), and
//! failures of the signing operation itself (not expected with a key that loaded).
//!
//! No variant is a catch-all string. Configuration errors name the entry and the field:
//! [`DkimError::Config`] displays as `dkim[1].key` and keeps the cause as its `source()`, so a
//! report that prints the chain reads `dkim[1].key: cannot read DKIM key keys/a.pem: No such
//! file or directory (os error 2)`. The crypto libraries' error types are kept out of the API:
//! their text is carried by [`CryptoFailure`].

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Errors of key loading, configuration, signing and key generation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DkimError {
    /// The entry `dkim[entry]` of the configuration is invalid in `field`; the cause is the
    /// `source()`.
    #[error("dkim[{entry}].{field}")]
    Config {
        /// Index of the `[[dkim]]` entry, from 0, in file order.
        entry: usize,
        /// The field of the entry (`domain`, `selector`, `key`, `headers`, ...).
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<DkimError>,
    },
    /// A key file could not be read.
    #[error("cannot read DKIM key {path}")]
    ReadKey {
        /// The path, as resolved against the configuration's base directory.
        path: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// The text holds no PEM private key block (`BEGIN PRIVATE KEY` or `BEGIN RSA PRIVATE
    /// KEY`).
    #[error(
        "no PEM private key found (expected PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)"
    )]
    NoPrivateKey,
    /// The key is of a kind DKIM cannot use or this crate does not load (EC keys, encrypted
    /// PKCS#8).
    #[error("unsupported private key: {kind}")]
    UnsupportedKey {
        /// What was found.
        kind: &'static str,
    },
    /// The key's bytes do not decode as a key of the kind its header announces.
    #[error("invalid {kind} private key")]
    InvalidKey {
        /// `RSA` or `Ed25519`.
        kind: &'static str,
        /// What the crypto library said.
        #[source]
        source: CryptoFailure,
    },
    /// An RSA key is shorter than 1024 or longer than 4096 bits.
    #[error("RSA key of {bits} bits: DKIM keys must have 1024 to 4096 bits (2048 recommended)")]
    RsaKeySize {
        /// The modulus size found.
        bits: usize,
    },
    /// A domain name (configuration) is not a valid host name.
    #[error("invalid domain name {0:?}")]
    InvalidDomain(String),
    /// A selector is not a valid DNS label sequence.
    #[error("invalid selector {0:?}")]
    InvalidSelector(String),
    /// A header field name in `headers` or `oversign` is empty or has characters outside
    /// printable ASCII, or contains `:`.
    #[error("invalid header field name {0:?}")]
    InvalidHeaderName(String),
    /// `headers` names a field that changes in transit (`Received`, `Return-Path`,
    /// `DKIM-Signature`, ...): signing it would break the signature at the next hop.
    #[error("header field {0:?} is added or changed in transit and must not be signed")]
    UnsignableHeader(String),
    /// `headers` does not include `From` (RFC 6376, section 5.4, requires it).
    #[error("the signed header list must include From")]
    FromNotSigned,
    /// `oversign` names a field that is not in `headers`.
    #[error("header field {0:?} is over-signed but not in the signed header list")]
    OversignNotSigned(String),
    /// `expire_after` is not a duration (`"7d"`, `"36h"`), is zero, or is too large.
    #[error("invalid duration {value:?} (expected for example \"7d\" or \"36h\", more than 0s)")]
    InvalidDuration {
        /// The text found.
        value: String,
    },
    /// `tenant` is empty.
    #[error("tenant must not be empty")]
    EmptyTenant,
    /// Two keys for the same domain and selector (one selector publishes one key).
    #[error("selector {selector:?} of domain {domain:?} is configured twice")]
    DuplicateSelector {
        /// The domain.
        domain: String,
        /// The selector.
        selector: String,
    },
    /// The message has more than one From header field (RFC 5322 allows one; receivers such as
    /// Gmail reject such messages and DMARC cannot evaluate them).
    #[error("the message has {count} From header fields")]
    MultipleFromFields {
        /// How many were found.
        count: usize,
    },
    /// The From field lists mailboxes of different domains: no single signing domain aligns
    /// with all of them.
    #[error("the From header field has mailboxes of different domains ({first}, {second})")]
    MultipleFromDomains {
        /// The first mailbox's domain.
        first: String,
        /// The first domain that differs from it.
        second: String,
    },
    /// The From field has no mailbox with a domain name (empty, a group without members,
    /// unparsable, or an address literal such as `[192.0.2.1]`).
    #[error("the From header field has no mailbox with a domain name")]
    InvalidFrom,
    /// The signing time is before 1970.
    #[error("the signing time is before the Unix epoch")]
    ClockBeforeEpoch,
    /// The crypto library failed to sign or to generate a key.
    #[error("DKIM signing failed")]
    Crypto(#[source] CryptoFailure),
}

impl DkimError {
    /// True when the error is a property of the message (its From header field), not of the
    /// configuration or the crypto: signing that message again will fail again. The server
    /// decides what to do with such a message (see `docs/dkim.md`).
    pub fn is_message_error(&self) -> bool {
        matches!(
            self,
            Self::MultipleFromFields { .. } | Self::MultipleFromDomains { .. } | Self::InvalidFrom
        )
    }

    /// A short stable label for metrics (`dkim_failures_total{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MultipleFromFields { .. } => "multiple_from_fields",
            Self::MultipleFromDomains { .. } => "multiple_from_domains",
            Self::InvalidFrom => "invalid_from",
            Self::ClockBeforeEpoch => "clock",
            Self::Crypto(_) => "crypto",
            _ => "config",
        }
    }

    /// Wraps `self` as the cause of an invalid field of configuration entry `entry`.
    pub(crate) fn at(self, entry: usize, field: &'static str) -> Self {
        Self::Config {
            entry,
            field,
            source: Box::new(self),
        }
    }
}

/// The text of an error of the crypto library (aws-lc-rs, mail-auth or RustCrypto `rsa`),
/// whose types are not part of this crate's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoFailure(String);

impl CryptoFailure {
    pub(crate) fn new(error: impl fmt::Display) -> Self {
        Self(error.to_string())
    }
}

impl fmt::Display for CryptoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CryptoFailure {}
