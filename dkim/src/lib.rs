//! DKIM signing (RFC 6376; Ed25519 per RFC 8463) for the MTA.
//!
//! Gmail and Yahoo require bulk mail to carry a DKIM signature aligned with the From domain
//! (DMARC). This crate makes those signatures: the server builds a [`Signer`] from the
//! `[[dkim]]` entries of its configuration ([`DkimConfig`]) and, for each accepted message,
//! calls [`Signer::sign`] and prepends the returned DKIM-Signature fields before the message
//! is queued.
//!
//! - [`config`]: the `[[dkim]]` entries, their defaults and validation.
//! - [`key`]: PEM key loading ([`LoadedKey`]: RSA 1024–4096 bits PKCS#1/PKCS#8, Ed25519
//!   PKCS#8) and the [`KeyStore`] by `(domain, selector)`.
//! - [`message`]: header fields, body, and the author (From) domain of a message.
//! - [`signer`]: which keys sign a message (alignment, subdomains, tenant double signing) and
//!   the signatures themselves (relaxed/relaxed, SHA-256, over-signed From, `x=`).
//! - [`keygen`]: key generation and DNS records (`mta dkim keygen`, `mta dkim dns`).
//! - `canon` (private): relaxed body canonicalization, this crate's own (mail-auth 0.13's
//!   mishandles trailing white-space-only lines, and is slower on prose).
//! - [`error`]: the error type, [`DkimError`].
//!
//! Header canonicalization, the DKIM-Signature format and the RSA-2048+/Ed25519 operations are
//! mail-auth 0.13's, on aws-lc-rs (the workspace's crypto provider); mail-auth does not
//! appear in this crate's API, so upgrading it touches this crate only.
//!
//! Invariants: signing is a pure function of the message, the tenant, the time passed in and
//! the loaded keys (no I/O, no clock); a signature covers the message exactly as given; a
//! [`Signer`] never changes after it is built (reload builds a new one, and a failed reload
//! leaves the old one in use). This crate depends on no other crate of the workspace.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let key = dkim::generate_key(dkim::KeyAlgorithm::Ed25519).unwrap();
//! key.write_pem(&dir.path().join("ed.pem")).unwrap();
//! let config = [dkim::DkimConfig::new("example.com", "ed2026", "ed.pem")];
//! let signer = dkim::Signer::from_config(&config, dir.path()).unwrap();
//!
//! let message = b"From: News <news@example.com>\r\nSubject: hi\r\n\r\nHello\r\n";
//! assert!(!signer.needs_blocking(message, None)); // Ed25519 and a small body: sign inline
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
//! let signed = signer.sign(message, None, now).unwrap();
//! assert!(signed.header().starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256; s=ed2026; d=example.com;"));
//! assert_eq!(signed.signatures()[0].key_type().signature_algorithm(), "ed25519-sha256");
//! // The message to send: signed.header() followed by the message bytes, unchanged.
//! ```
//!
//! Operator documentation (configuration, DNS records, metrics, measured costs):
//! `docs/dkim.md`.

#![warn(missing_docs)]

mod canon;
pub mod config;
pub mod error;
pub mod key;
pub mod keygen;
pub mod message;
pub mod signer;

pub use config::{DEFAULT_OVERSIGNED_HEADERS, DEFAULT_SIGNED_HEADERS, DkimConfig};
pub use error::{CryptoFailure, DkimError};
pub use key::{KeyId, KeyStore, KeyType, LoadedKey, RSA_MAX_BITS, RSA_MIN_BITS};
pub use keygen::{
    DnsRecord, DnsTxt, GeneratedKey, KeyAlgorithm, UnknownAlgorithm, dns_record, generate_key,
};
pub use message::author_domain;
pub use signer::{
    INLINE_SIGN_MAX_BODY, MAX_LINE_LEN, SignatureInfo, SignatureRole, Signed, Signer,
};
