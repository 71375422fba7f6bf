//! The signer: which keys apply to a message, and the DKIM-Signature fields they make.
//!
//! [`Signer::sign`] finds the message's author domain (its From field, see
//! [`author_domain`](crate::author_domain)), picks the entries of that domain (or of the
//! nearest parent domain with `subdomains = true`), adds the entries of the message's tenant,
//! and returns the DKIM-Signature header fields to prepend to the message, author signatures
//! first. The body hash is computed once and shared by all signatures of a message (they all
//! use relaxed body canonicalization and SHA-256).
//!
//! Invariants: a signature covers the message bytes exactly as given (the caller prepends the
//! returned fields and changes nothing else); `h=` never lists a field altered in transit
//! (`Received` included), always lists `From`, lists each over-signed field once more than it
//! occurs, and lists configured fields absent from the message (so they cannot be added);
//! header lines are at most 78 bytes; signing reads no clock (the time is passed in) and no
//! file (keys are loaded when the signer is built). A `Signer` is immutable: reloading builds a
//! new one.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mail_auth::common::crypto::{Algorithm, HashContext as _, HashImpl as _, Sha256};
use mail_auth::common::headers::{HeaderStream, Writable as _};
use mail_auth::dkim::{Canonicalization, Signature};

use crate::canon;
use crate::config::{self, DkimConfig, Entry};
use crate::error::DkimError;
use crate::key::{KeyStore, KeyType};
use crate::keygen::{DnsRecord, dns_record};
use crate::message::{self, Parsed};

/// Messages whose body is larger than this are signed on the blocking pool even with Ed25519
/// keys only: canonicalizing and hashing the body costs 0.8 (base64 lines) to 1.6 (prose) µs
/// per KiB here (see `docs/dkim.md`), so at this size an inline Ed25519 signature stays under
/// about 35 µs, and a tokio task should not run much longer between awaits.
pub const INLINE_SIGN_MAX_BODY: usize = 16 * 1024;

/// Longest header line written, in bytes without the CRLF (RFC 5322 recommends 78).
pub const MAX_LINE_LEN: usize = 78;

/// Why a signature was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureRole {
    /// A key of the message's From domain (or of a parent domain with `subdomains = true`):
    /// the signature DMARC aligns with.
    Author,
    /// A key configured for the message's tenant (ESP double signing).
    Tenant,
}

impl SignatureRole {
    /// `author` or `tenant`: the `role` label of `dkim_signatures_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Author => "author",
            Self::Tenant => "tenant",
        }
    }
}

/// One signature of a [`Signed`] message.
#[derive(Clone)]
pub struct SignatureInfo {
    entry: Arc<Entry>,
    role: SignatureRole,
}

impl SignatureInfo {
    /// The signing domain (`d=`).
    pub fn domain(&self) -> &str {
        &self.entry.domain
    }

    /// The selector (`s=`).
    pub fn selector(&self) -> &str {
        &self.entry.selector
    }

    /// The key's type; [`KeyType::signature_algorithm`] gives the `a=` value, the `algorithm`
    /// label of `dkim_signatures_total`.
    pub fn key_type(&self) -> KeyType {
        self.entry.key.key_type()
    }

    /// Author or tenant signature.
    pub fn role(&self) -> SignatureRole {
        self.role
    }
}

impl fmt::Debug for SignatureInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureInfo")
            .field("domain", &self.domain())
            .field("selector", &self.selector())
            .field("key_type", &self.key_type())
            .field("role", &self.role)
            .finish()
    }
}

/// The result of signing one message.
#[derive(Debug, Clone, Default)]
pub struct Signed {
    header: Vec<u8>,
    signatures: Vec<SignatureInfo>,
}

impl Signed {
    /// The DKIM-Signature header fields to prepend to the message: CRLF-terminated, folded,
    /// empty when no key applies.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// [`Signed::header`], owned.
    pub fn into_header(self) -> Vec<u8> {
        self.header
    }

    /// The signatures made, in the order of the fields in [`Signed::header`].
    pub fn signatures(&self) -> &[SignatureInfo] {
        &self.signatures
    }

    /// True when no key applied to the message.
    pub fn is_empty(&self) -> bool {
        self.signatures.is_empty()
    }
}

/// Signs messages with the keys of a DKIM configuration. `Send + Sync`; share it in an `Arc`.
#[derive(Debug, Default)]
pub struct Signer {
    store: KeyStore,
    /// Every entry, in configuration order.
    entries: Vec<Arc<Entry>>,
    /// Entries without tenant, by domain.
    by_domain: HashMap<String, Vec<Arc<Entry>>>,
    /// Tenant entries, by tenant.
    by_tenant: HashMap<String, Vec<Arc<Entry>>>,
}

impl Signer {
    /// Validates the `[[dkim]]` entries and loads their keys (paths relative to `base_dir`,
    /// normally the configuration file's directory). Errors name the entry and field:
    /// `dkim[1].key` with the cause as `source()`.
    pub fn from_config(configs: &[DkimConfig], base_dir: &Path) -> Result<Self, DkimError> {
        Self::build(configs, base_dir, None)
    }

    /// Builds the signer of a new configuration, re-parsing only the key files whose bytes
    /// changed since `self` was built. `self` is not modified: on error keep using it; on
    /// success swap the new signer in (e.g. `ArcSwap` or `RwLock<Arc<Signer>>`).
    pub fn reload(&self, configs: &[DkimConfig], base_dir: &Path) -> Result<Self, DkimError> {
        Self::build(configs, base_dir, Some(&self.store))
    }

    fn build(
        configs: &[DkimConfig],
        base_dir: &Path,
        previous: Option<&KeyStore>,
    ) -> Result<Self, DkimError> {
        let mut signer = Signer::default();
        for (index, config) in configs.iter().enumerate() {
            let checked = config::check(index, config, base_dir)?;
            if signer
                .store
                .get(&checked.domain, &checked.selector)
                .is_some()
            {
                return Err(DkimError::DuplicateSelector {
                    domain: checked.domain,
                    selector: checked.selector,
                }
                .at(index, "selector"));
            }
            let key = signer
                .store
                .load_reusing(
                    &checked.domain,
                    &checked.selector,
                    &checked.key_path,
                    previous,
                )
                .map_err(|e| e.at(index, "key"))?;
            let entry = Arc::new(checked.with_key(key));
            let index = match &entry.tenant {
                Some(tenant) => signer.by_tenant.entry(tenant.clone()),
                None => signer.by_domain.entry(entry.domain.clone()),
            };
            index.or_default().push(Arc::clone(&entry));
            signer.entries.push(entry);
        }
        Ok(signer)
    }

    /// The loaded keys.
    pub fn key_store(&self) -> &KeyStore {
        &self.store
    }

    /// True when the configuration has no entry (nothing is ever signed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The DNS TXT record of every entry, in configuration order (for `mta dkim dns`).
    pub fn dns_records(&self) -> Vec<DnsRecord> {
        self.entries
            .iter()
            .map(|entry| DnsRecord {
                name: format!("{}._domainkey.{}.", entry.selector, entry.domain),
                txt: dns_record(&entry.key),
            })
            .collect()
    }

    /// True when [`Signer::sign`] would be too slow for an async task: some applicable key is
    /// RSA (0.3 ms or more per signature here), or the body is larger than
    /// [`INLINE_SIGN_MAX_BODY`]. Call `sign` through `tokio::task::spawn_blocking` then; else
    /// call it inline. False when nothing would be signed or the message would be refused (the
    /// error is cheap). Costs a scan of the header section (about a microsecond).
    pub fn needs_blocking(&self, message: &[u8], tenant: Option<&str>) -> bool {
        let parsed = message::parse(message);
        match self.select(&parsed.fields, tenant) {
            Ok(plan) => {
                !plan.is_empty()
                    && (parsed.body.len() > INLINE_SIGN_MAX_BODY
                        || plan.iter().any(|(entry, _)| entry.key.is_expensive()))
            }
            Err(_) => false,
        }
    }

    /// Signs `message` (CRLF line ends, exactly as it will be sent) with the keys of its From
    /// domain and of `tenant`, at time `now` (`t=`, and `x=` with `expire_after`).
    ///
    /// Returns the DKIM-Signature fields to prepend (empty when no key applies or the message
    /// has no From field). Errors: [`DkimError::is_message_error`] ones when the From field
    /// names no single domain; [`DkimError::Crypto`] if a signing operation fails.
    pub fn sign(
        &self,
        message: &[u8],
        tenant: Option<&str>,
        now: SystemTime,
    ) -> Result<Signed, DkimError> {
        let parsed = message::parse(message);
        let plan = self.select(&parsed.fields, tenant)?;
        if plan.is_empty() {
            return Ok(Signed::default());
        }
        let t = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| DkimError::ClockBeforeEpoch)?
            .as_secs();
        let body_hash = body_hash(parsed.body);
        let mut header = Vec::with_capacity(plan.len() * 640);
        let mut signatures = Vec::with_capacity(plan.len());
        for (entry, role) in plan {
            sign_one(entry, &parsed, &body_hash, t, &mut header)?;
            signatures.push(SignatureInfo {
                entry: Arc::clone(entry),
                role,
            });
        }
        Ok(Signed { header, signatures })
    }

    /// The entries that sign a message with these header fields: author entries first, then
    /// tenant entries.
    fn select(
        &self,
        fields: &[(&[u8], &[u8])],
        tenant: Option<&str>,
    ) -> Result<Vec<(&Arc<Entry>, SignatureRole)>, DkimError> {
        let Some(domain) = message::from_domain(fields)? else {
            return Ok(Vec::new());
        };
        let mut plan = Vec::new();
        let mut candidate = domain.as_str();
        let mut exact = true;
        loop {
            if let Some(entries) = self.by_domain.get(candidate) {
                plan.extend(
                    entries
                        .iter()
                        .filter(|e| exact || e.subdomains)
                        .map(|e| (e, SignatureRole::Author)),
                );
                if !plan.is_empty() {
                    break;
                }
            }
            match candidate.split_once('.') {
                Some((_, parent)) => candidate = parent,
                None => break,
            }
            exact = false;
        }
        if let Some(entries) = tenant.and_then(|t| self.by_tenant.get(t)) {
            plan.extend(entries.iter().map(|e| (e, SignatureRole::Tenant)));
        }
        Ok(plan)
    }
}

/// SHA-256 of the relaxed-canonicalized body (RFC 6376, section 3.4.4), with this crate's
/// canonicalization ([`canon`](crate::canon): mail-auth's is wrong for trailing white-space
/// lines, and slower).
fn body_hash(body: &[u8]) -> Vec<u8> {
    let mut hasher = Sha256::hasher();
    canon::relaxed_body(body, &mut hasher);
    hasher.complete().as_ref().to_vec()
}

/// The header fields of a parsed message, as mail-auth's canonicalization reads them.
struct Fields<'a> {
    fields: std::slice::Iter<'a, (&'a [u8], &'a [u8])>,
    body: &'a [u8],
}

impl<'a> HeaderStream<'a> for Fields<'a> {
    fn next_header(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        self.fields.next().copied()
    }

    fn body(&mut self) -> &'a [u8] {
        self.body
    }
}

/// Appends the DKIM-Signature field of `entry` for the parsed message to `out`.
fn sign_one(
    entry: &Entry,
    parsed: &Parsed<'_>,
    body_hash: &[u8],
    t: u64,
    out: &mut Vec<u8>,
) -> Result<(), DkimError> {
    let template = Signature {
        h: entry.headers.clone(),
        ch: Canonicalization::Relaxed,
        cb: Canonicalization::Relaxed,
        ..Default::default()
    };
    // Picks the configured fields present in the message (bottom-up, every occurrence) and
    // appends the configured names that are absent.
    let (_, canonical_headers, mut h, _) = template.canonicalize(Fields {
        fields: parsed.fields.iter(),
        body: parsed.body,
    });
    for name in &entry.oversign {
        if parsed
            .fields
            .iter()
            .any(|(field, _)| field.eq_ignore_ascii_case(name.as_bytes()))
        {
            h.push(name.clone());
        }
    }
    let mut signature = Signature {
        v: 1,
        a: match entry.key.key_type() {
            KeyType::Rsa => Algorithm::RsaSha256,
            KeyType::Ed25519 => Algorithm::Ed25519Sha256,
        },
        d: entry.domain.clone(),
        s: entry.selector.clone(),
        h,
        bh: body_hash.to_vec(),
        t,
        x: entry.expire_after.map_or(0, |after| t + after),
        ch: Canonicalization::Relaxed,
        cb: Canonicalization::Relaxed,
        ..Default::default()
    };
    // RFC 6376, section 3.7: the selected header fields, then this DKIM-Signature field with
    // an empty b=, relaxed, without its final CRLF.
    let mut input = Vec::with_capacity(1024);
    canonical_headers.write(&mut input);
    let mut own = Vec::with_capacity(512);
    signature.write(&mut own, false);
    // mail-auth wraps the bh= value like the b= value; some verifiers (dkimpy among them)
    // compare bh= without removing the folding white space RFC 6376 allows there, so the
    // value is kept whole, in the signed form and in the field alike.
    input.extend_from_slice(&unwrap_tag_value(&own, b"bh=", b" "));
    signature.b = entry.key.sign(&input)?;

    let mut field = Vec::with_capacity(640);
    signature.write(&mut field, true);
    let field = unwrap_tag_value(&field, b"bh=", b"\r\n\t");
    fold_long_lines(&field, out);
    Ok(())
}

/// Removes every `fold` inside the value of `tag` (up to its `;`), leaving the rest as is.
fn unwrap_tag_value(field: &[u8], tag: &[u8], fold: &[u8]) -> Vec<u8> {
    let Some(start) = field.windows(tag.len()).position(|w| w == tag) else {
        return field.to_vec();
    };
    let value_start = start + tag.len();
    let value_end = field[value_start..]
        .iter()
        .position(|&b| b == b';')
        .map_or(field.len(), |i| value_start + i);
    let mut out = Vec::with_capacity(field.len());
    out.extend_from_slice(&field[..value_start]);
    let mut value = &field[value_start..value_end];
    while let Some(i) = value.windows(fold.len()).position(|w| w == fold) {
        out.extend_from_slice(&value[..i]);
        value = &value[i + fold.len()..];
    }
    out.extend_from_slice(value);
    out.extend_from_slice(&field[value_end..]);
    out
}

/// Copies `field` to `out`, folding lines longer than [`MAX_LINE_LEN`] at their last space
/// within the limit. Replacing a single space by CRLF + tab leaves the relaxed canonical form
/// unchanged (unfolding removes the CRLF, the tab becomes one space), so the signature holds.
fn fold_long_lines(field: &[u8], out: &mut Vec<u8>) {
    for line in field.split_inclusive(|&b| b == b'\n') {
        let (mut text, end) = match line.strip_suffix(b"\r\n") {
            Some(text) => (text, &b"\r\n"[..]),
            None => (line, &b""[..]),
        };
        // Bytes already on the output line: the tab of a fold made here.
        let mut written = 0;
        while written + text.len() > MAX_LINE_LEN {
            // Index 0 is never a split point: a line keeps its first character.
            match text[1..=MAX_LINE_LEN - written]
                .iter()
                .rposition(|&b| b == b' ')
            {
                Some(space) => {
                    let space = space + 1;
                    out.extend_from_slice(&text[..space]);
                    out.extend_from_slice(b"\r\n\t");
                    text = &text[space + 1..];
                    written = 1;
                }
                None => break,
            }
        }
        out.extend_from_slice(text);
        out.extend_from_slice(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_long_lines_table() {
        let long = format!(
            "DKIM-Signature: {};\r\n",
            "tag=value; ".repeat(10).trim_end()
        );
        let cases: Vec<(String, String)> = vec![
            ("short\r\n".into(), "short\r\n".into()),
            ("a\r\n\tb\r\n".into(), "a\r\n\tb\r\n".into()),
            (format!("{}\r\n", "x".repeat(100)), format!("{}\r\n", "x".repeat(100))),
            (
                long.clone(),
                "DKIM-Signature: tag=value; tag=value; tag=value; tag=value; tag=value;\r\n\ttag=value; tag=value; tag=value; tag=value; tag=value;;\r\n".into(),
            ),
            // The continuation's tab counts: 1 + 77 bytes fit, 1 + 78 do not.
            (
                format!("{} {}\r\n", "a".repeat(70), "b".repeat(77)),
                format!("{}\r\n\t{}\r\n", "a".repeat(70), "b".repeat(77)),
            ),
            (
                format!("{} {} c\r\n", "a".repeat(70), "b".repeat(77)),
                format!("{}\r\n\t{}\r\n\tc\r\n", "a".repeat(70), "b".repeat(77)),
            ),
        ];
        for (input, expected) in cases {
            let mut out = Vec::new();
            fold_long_lines(input.as_bytes(), &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn unwrap_tag_value_joins_only_that_value() {
        let table: [(&[u8], &[u8]); 4] = [
            (
                b"t=1; bh=ab\r\n\tcd\r\n\tef=; b=x\r\n\ty;",
                b"t=1; bh=abcdef=; b=x\r\n\ty;",
            ),
            (b"bh=abc; b=d", b"bh=abc; b=d"),
            (b"a=1; b=2", b"a=1; b=2"),
            (b"bh=a\r\n\tb", b"bh=ab"),
        ];
        for (input, expected) in table {
            assert_eq!(
                unwrap_tag_value(input, b"bh=", b"\r\n\t"),
                expected.to_vec()
            );
        }
    }

    #[test]
    fn signer_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Signer>();
        check::<Signed>();
        check::<crate::KeyStore>();
    }
}
