//! Private keys: loading from PEM, the key store, signing one canonical input.
//!
//! A [`LoadedKey`] is parsed once and then shared (`Arc`) by every signature made with it.
//! Supported: RSA of 1024 to 4096 bits in PKCS#1 (`BEGIN RSA PRIVATE KEY`) or PKCS#8 (`BEGIN
//! PRIVATE KEY`) PEM, and Ed25519 in PKCS#8 PEM (RFC 8463; v1 as written by `openssl genpkey`
//! or v2 with the public key). RSA keys of 2048 bits and more, and Ed25519 keys, are signed by
//! mail-auth's aws-lc-rs keys, the workspace's crypto provider. aws-lc-rs refuses RSA keys
//! below 2048 bits, so 1024 to 2047-bit keys (still published by many domains) are signed with
//! RustCrypto's `rsa`, with blinding; they are legacy and slower per bit, see `docs/dkim.md`.
//!
//! [`KeyStore`] maps `(domain, selector)` to a key. It remembers the SHA-256 of each key file's
//! bytes so that [`KeyStore::reload`] re-parses only the files that changed (an RSA-4096 key
//! costs milliseconds to parse and validate).
//!
//! Invariants: a `LoadedKey` always holds a usable private key and the matching public key;
//! its size is within the bounds above; a `KeyStore` never holds two keys for one
//! `(domain, selector)`.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::signature::{KeyPair as _, RsaKeyPair};
use mail_auth::common::crypto::{Ed25519Key, RsaKey, Sha256, SigningKey};
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::{DecodePrivateKey as _, EncodePublicKey as _};
use rsa::traits::PublicKeyParts as _;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

use crate::error::{CryptoFailure, DkimError};

/// Smallest RSA key accepted, in bits (RFC 8301: signers must use at least 1024).
pub const RSA_MIN_BITS: usize = 1024;
/// Largest RSA key accepted, in bits. Larger keys do not fit a DNS TXT record comfortably (a
/// 4096-bit record is already about 740 bytes) and cost 8 times a 2048-bit signature or more.
pub const RSA_MAX_BITS: usize = 4096;
/// Below this size aws-lc-rs refuses RSA keys; such keys are signed with RustCrypto.
const AWS_LC_RSA_MIN_BITS: usize = 2048;

/// DER value of the rsaEncryption object identifier (1.2.840.113549.1.1.1).
const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// DER value of the Ed25519 object identifier (1.3.101.112).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
/// DER `DigestInfo` prefix of a SHA-256 digest in a PKCS#1 v1.5 signature (RFC 8017, 9.2).
const SHA256_DIGEST_INFO: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The kind of a key, which decides the signature algorithm (`a=` tag) and the DNS record's
/// `k=` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA, signing `rsa-sha256`.
    Rsa,
    /// Ed25519, signing `ed25519-sha256` (RFC 8463).
    Ed25519,
}

impl KeyType {
    /// The DKIM signature algorithm of this key type: `rsa-sha256` or `ed25519-sha256`. Also
    /// the `algorithm` label of the signing metrics.
    pub fn signature_algorithm(self) -> &'static str {
        match self {
            Self::Rsa => "rsa-sha256",
            Self::Ed25519 => "ed25519-sha256",
        }
    }

    /// The `k=` tag of the DNS record: `rsa` or `ed25519`.
    pub fn dns_name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.dns_name())
    }
}

/// The signing half of a key.
enum Secret {
    /// RSA of 2048 bits or more, signed by aws-lc-rs through mail-auth.
    Rsa(RsaKey<Sha256>),
    /// RSA below 2048 bits, signed by RustCrypto (blinded).
    RsaLegacy(Box<rsa::RsaPrivateKey>),
    /// Ed25519, signed by aws-lc-rs through mail-auth.
    Ed25519(Ed25519Key),
}

/// A parsed private key, ready to sign. Cheap to share: the store hands out `Arc<LoadedKey>`.
pub struct LoadedKey {
    secret: Secret,
    key_type: KeyType,
    bits: usize,
    /// The public key as published in DNS (`p=`): SubjectPublicKeyInfo DER for RSA, the raw 32
    /// bytes for Ed25519 (RFC 8463, section 4.2).
    public_key: Vec<u8>,
    /// SHA-256 of the PEM text the key was parsed from (reload cache).
    source_digest: [u8; 32],
}

impl fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never prints the secret.
        f.debug_struct("LoadedKey")
            .field("key_type", &self.key_type)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

impl LoadedKey {
    /// Parses a PEM private key: RSA (PKCS#1 or PKCS#8, 1024 to 4096 bits) or Ed25519
    /// (PKCS#8). The first private key block of the text is used.
    pub fn from_pem(pem: &[u8]) -> Result<Self, DkimError> {
        let source_digest = sha256(pem);
        if contains(pem, b"-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(DkimError::UnsupportedKey {
                kind: "encrypted PKCS#8 (decrypt it, e.g. `openssl pkey -in KEY -out PLAIN`)",
            });
        }
        let der = PrivateKeyDer::from_pem_slice(pem).map_err(|_| DkimError::NoPrivateKey)?;
        let mut key = match &der {
            PrivateKeyDer::Pkcs1(_) => Self::rsa(der)?,
            PrivateKeyDer::Pkcs8(pkcs8) => match pkcs8_algorithm(pkcs8.secret_pkcs8_der()) {
                Some(OID_RSA_ENCRYPTION) => Self::rsa(der)?,
                Some(OID_ED25519) => Self::ed25519(pkcs8.secret_pkcs8_der())?,
                Some(_) => {
                    return Err(DkimError::UnsupportedKey {
                        kind: "PKCS#8 key of an algorithm other than RSA or Ed25519",
                    });
                }
                None => {
                    return Err(DkimError::InvalidKey {
                        kind: "PKCS#8",
                        source: CryptoFailure::new("malformed PrivateKeyInfo"),
                    });
                }
            },
            PrivateKeyDer::Sec1(_) => {
                return Err(DkimError::UnsupportedKey {
                    kind: "EC key (DKIM signs with RSA or Ed25519)",
                });
            }
            _ => {
                return Err(DkimError::UnsupportedKey {
                    kind: "unknown private key format",
                });
            }
        };
        key.source_digest = source_digest;
        Ok(key)
    }

    fn rsa(der: PrivateKeyDer<'_>) -> Result<Self, DkimError> {
        let invalid = |error: &dyn fmt::Display| DkimError::InvalidKey {
            kind: "RSA",
            source: CryptoFailure::new(error),
        };
        let parsed = match &der {
            PrivateKeyDer::Pkcs1(pkcs1) => RsaKeyPair::from_der(pkcs1.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(pkcs8) => RsaKeyPair::from_pkcs8(pkcs8.secret_pkcs8_der()),
            _ => unreachable!("only called with PKCS#1 or PKCS#8 keys"),
        };
        match parsed {
            Ok(pair) => {
                let public = pair.public_key();
                let modulus = public.modulus();
                let bits = bit_length(modulus.big_endian_without_leading_zero());
                if bits > RSA_MAX_BITS {
                    return Err(DkimError::RsaKeySize { bits });
                }
                let spki: PublicKeyX509Der<'static> = public.as_der().map_err(|e| invalid(&e))?;
                let public_key = spki.as_ref().to_vec();
                let secret = RsaKey::<Sha256>::from_key_der(der).map_err(|e| invalid(&e))?;
                Ok(Self {
                    secret: Secret::Rsa(secret),
                    key_type: KeyType::Rsa,
                    bits,
                    public_key,
                    source_digest: [0; 32],
                })
            }
            Err(rejected) if rejected.description_() == "TooSmall" => Self::rsa_legacy(&der),
            Err(rejected) => Err(invalid(&rejected)),
        }
    }

    fn rsa_legacy(der: &PrivateKeyDer<'_>) -> Result<Self, DkimError> {
        let invalid = |error: &dyn fmt::Display| DkimError::InvalidKey {
            kind: "RSA",
            source: CryptoFailure::new(error),
        };
        let key = match der {
            PrivateKeyDer::Pkcs1(pkcs1) => {
                rsa::RsaPrivateKey::from_pkcs1_der(pkcs1.secret_pkcs1_der())
                    .map_err(|e| invalid(&e))?
            }
            PrivateKeyDer::Pkcs8(pkcs8) => {
                rsa::RsaPrivateKey::from_pkcs8_der(pkcs8.secret_pkcs8_der())
                    .map_err(|e| invalid(&e))?
            }
            _ => unreachable!("only called with PKCS#1 or PKCS#8 keys"),
        };
        let bits = key.n().bits();
        if !(RSA_MIN_BITS..AWS_LC_RSA_MIN_BITS).contains(&bits) {
            return Err(DkimError::RsaKeySize { bits });
        }
        let public_key = key
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| invalid(&e))?
            .into_vec();
        Ok(Self {
            secret: Secret::RsaLegacy(Box::new(key)),
            key_type: KeyType::Rsa,
            bits,
            public_key,
            source_digest: [0; 32],
        })
    }

    fn ed25519(pkcs8: &[u8]) -> Result<Self, DkimError> {
        let secret = Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8).map_err(|e| {
            DkimError::InvalidKey {
                kind: "Ed25519",
                source: CryptoFailure::new(e),
            }
        })?;
        let public_key = secret.public_key();
        Ok(Self {
            secret: Secret::Ed25519(secret),
            key_type: KeyType::Ed25519,
            bits: 256,
            public_key,
            source_digest: [0; 32],
        })
    }

    /// RSA or Ed25519.
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// Key size in bits: the RSA modulus size, or 256 for Ed25519.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The public key as published in the DNS record's `p=` tag (before base64):
    /// SubjectPublicKeyInfo DER for RSA, the raw 32-byte key for Ed25519.
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    /// True when signing with this key is a slow (RSA) operation, see
    /// [`Signer::needs_blocking`](crate::Signer::needs_blocking).
    pub fn is_expensive(&self) -> bool {
        self.key_type == KeyType::Rsa
    }

    /// Signs `data`, the canonical header input of RFC 6376 section 3.7: RSASSA-PKCS1-v1_5
    /// with SHA-256, or Ed25519 over the SHA-256 of `data` (RFC 8463).
    pub(crate) fn sign(&self, data: &[u8]) -> Result<Vec<u8>, DkimError> {
        let failed = |error: &dyn fmt::Display| DkimError::Crypto(CryptoFailure::new(error));
        match &self.secret {
            Secret::Rsa(key) => key.sign(data).map_err(|e| failed(&e)),
            Secret::Ed25519(key) => key.sign(data).map_err(|e| failed(&e)),
            Secret::RsaLegacy(key) => {
                let digest = sha256(data);
                let mut digest_info = Vec::with_capacity(SHA256_DIGEST_INFO.len() + 32);
                digest_info.extend_from_slice(SHA256_DIGEST_INFO);
                digest_info.extend_from_slice(&digest);
                // The prefix is already in `digest_info`; blinding uses the OS generator.
                key.sign_with_rng(
                    &mut rsa::rand_core::OsRng,
                    rsa::Pkcs1v15Sign::new_unprefixed(),
                    &digest_info,
                )
                .map_err(|e| failed(&e))
            }
        }
    }

    /// SHA-256 of the PEM text this key was parsed from.
    pub(crate) fn source_digest(&self) -> [u8; 32] {
        self.source_digest
    }
}

/// Identifies a key: the signing domain (`d=`, lower case A-labels) and the selector (`s=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId {
    /// The signing domain.
    pub domain: String,
    /// The selector.
    pub selector: String,
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}._domainkey.{}", self.selector, self.domain)
    }
}

/// Parsed keys by `(domain, selector)`.
///
/// Built by [`Signer::from_config`](crate::Signer::from_config) (one store per signer); usable
/// alone, for example by a key-listing tool.
#[derive(Debug, Default, Clone)]
pub struct KeyStore {
    keys: HashMap<KeyId, Arc<LoadedKey>>,
    /// The same keys by the SHA-256 of their PEM text, for [`KeyStore::reload`].
    by_digest: HashMap<[u8; 32], Arc<LoadedKey>>,
}

impl KeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads and parses the PEM key at `path` and stores it as `(domain, selector)`.
    ///
    /// Fails if the file cannot be read or parsed, or if the pair is already in the store.
    pub fn load(
        &mut self,
        domain: &str,
        selector: &str,
        path: &Path,
    ) -> Result<Arc<LoadedKey>, DkimError> {
        self.load_reusing(domain, selector, path, None)
    }

    /// Builds a new store holding the keys `entries` name (`(domain, selector, path)`), reading
    /// every file again but re-parsing only those whose bytes differ from a key this store
    /// already holds. `self` is not changed: on error the caller keeps using it.
    pub fn reload<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a str, &'a Path)>,
    ) -> Result<KeyStore, DkimError> {
        let mut store = KeyStore::new();
        for (domain, selector, path) in entries {
            store.load_reusing(domain, selector, path, Some(self))?;
        }
        Ok(store)
    }

    /// [`KeyStore::load`], taking the parsed key from `previous` when its file is unchanged.
    pub(crate) fn load_reusing(
        &mut self,
        domain: &str,
        selector: &str,
        path: &Path,
        previous: Option<&KeyStore>,
    ) -> Result<Arc<LoadedKey>, DkimError> {
        let pem = std::fs::read(path).map_err(|source| DkimError::ReadKey {
            path: path.to_path_buf(),
            source,
        })?;
        let digest = sha256(&pem);
        let cached = [Some(&*self), previous]
            .into_iter()
            .flatten()
            .find_map(|store| store.by_digest.get(&digest).cloned());
        let key = match cached {
            Some(key) => key,
            None => Arc::new(LoadedKey::from_pem(&pem)?),
        };
        self.insert(domain, selector, Arc::clone(&key))?;
        Ok(key)
    }

    /// Stores an already parsed key as `(domain, selector)`. `domain` is used as given (the
    /// signer lower-cases and A-label-encodes it first).
    pub fn insert(
        &mut self,
        domain: &str,
        selector: &str,
        key: Arc<LoadedKey>,
    ) -> Result<(), DkimError> {
        let id = KeyId {
            domain: domain.to_owned(),
            selector: selector.to_owned(),
        };
        if self.keys.contains_key(&id) {
            return Err(DkimError::DuplicateSelector {
                domain: id.domain,
                selector: id.selector,
            });
        }
        self.by_digest
            .entry(key.source_digest())
            .or_insert_with(|| Arc::clone(&key));
        self.keys.insert(id, key);
        Ok(())
    }

    /// The key of `(domain, selector)`, if stored.
    pub fn get(&self, domain: &str, selector: &str) -> Option<&Arc<LoadedKey>> {
        self.keys.get(&KeyId {
            domain: domain.to_owned(),
            selector: selector.to_owned(),
        })
    }

    /// Number of `(domain, selector)` pairs.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The stored keys, sorted by domain then selector.
    pub fn iter(&self) -> impl Iterator<Item = (&KeyId, &Arc<LoadedKey>)> {
        let mut keys: Vec<_> = self.keys.iter().collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        keys.into_iter()
    }
}

/// SHA-256 with the workspace's crypto provider.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Number of significant bits of a big-endian integer without leading zero bytes.
fn bit_length(be: &[u8]) -> usize {
    match be.first() {
        Some(&first) => be.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// The algorithm object identifier of a PKCS#8 `PrivateKeyInfo`:
/// `SEQUENCE { INTEGER version, SEQUENCE { OBJECT IDENTIFIER, ... }, ... }`.
fn pkcs8_algorithm(der: &[u8]) -> Option<&[u8]> {
    let (info, _) = der_element(der, 0x30)?;
    let (_version, rest) = der_element(info, 0x02)?;
    let (algorithm, _) = der_element(rest, 0x30)?;
    let (oid, _) = der_element(algorithm, 0x06)?;
    Some(oid)
}

/// Splits one DER element of tag `tag` off `input`: its contents and what follows it.
fn der_element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let (bytes, rest) = rest.split_at(count);
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_element_table() {
        /// Input, tag → contents and rest.
        type Case<'a> = (&'a [u8], u8, Option<(&'a [u8], &'a [u8])>);
        let cases: &[Case<'_>] = &[
            (&[0x02, 0x01, 0x05, 0xff], 0x02, Some((&[0x05], &[0xff]))),
            (&[0x02, 0x01, 0x05], 0x30, None),
            (&[0x02, 0x02, 0x05], 0x02, None),
            (&[0x04, 0x81, 0x01, 0x07], 0x04, Some((&[0x07], &[]))),
            (&[0x04, 0x80], 0x04, None),
            (&[], 0x04, None),
        ];
        for (input, tag, expected) in cases {
            assert_eq!(der_element(input, *tag), *expected, "input {input:02x?}");
        }
    }

    #[test]
    fn bit_length_table() {
        let cases: &[(&[u8], usize)] = &[(&[], 0), (&[1], 1), (&[0x80, 0], 16), (&[0x7f], 7)];
        for (input, bits) in cases {
            assert_eq!(bit_length(input), *bits, "input {input:02x?}");
        }
    }

    #[test]
    fn pkcs8_algorithm_of_garbage_is_none() {
        assert_eq!(pkcs8_algorithm(b"not der"), None);
        assert_eq!(pkcs8_algorithm(&[0x30, 0x03, 0x02, 0x01, 0x00]), None);
    }
}
