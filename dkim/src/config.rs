//! The `[[dkim]]` entries of the MTA's configuration file, and their validation.
//!
//! ```toml
//! [[dkim]]
//! domain = "example.com"      # signs mail whose From domain is this (or a subdomain, see below)
//! selector = "s2026"
//! key = "keys/example.com.s2026.pem"   # relative to the configuration file's directory
//! # optional:
//! subdomains = false          # also sign for any subdomain without entries of its own
//! headers = ["From", "To", ...]        # default: DEFAULT_SIGNED_HEADERS
//! oversign = ["From"]         # default: From
//! expire_after = "7d"         # x= tag; default: no expiry
//! tenant = "acme"             # ESP double signing, see below
//! ```
//!
//! The algorithm comes from the key. Several entries for one domain give several signatures
//! (RSA and Ed25519 dual signing, or two selectors during a key rotation). An entry with
//! `tenant` is a tenant entry: it signs every message tagged with that tenant, whatever its
//! From domain, in addition to the From domain's own signature, and it is not used for From
//! domain matching.
//!
//! Invariants of a validated entry (`Entry`, crate-private): domain and selector are host names in lower
//! case A-label form; the header list holds `From`, no field altered in transit, no duplicates;
//! every over-signed field is in the header list; the expiry is at least one second.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::DkimError;
use crate::key::LoadedKey;
use crate::message::{is_host_name, normalize_domain};

/// Header fields signed when an entry has no `headers`: those a receiver shows or acts on
/// (RFC 6376 section 5.4.1 recommendations, plus the bulk-mail fields Gmail and Yahoo check:
/// one-click unsubscribe, RFC 8058, and Gmail's Feedback-ID). A field absent from a message is
/// still listed in `h=`, so that it cannot be added afterwards.
pub const DEFAULT_SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "Content-Type",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
];

/// Fields over-signed when an entry has no `oversign`: listed in `h=` once more than they
/// occur, so a second one cannot be added without breaking the signature.
pub const DEFAULT_OVERSIGNED_HEADERS: &[&str] = &["From"];

/// Fields that are added or rewritten in transit: a signature over them breaks at the next hop.
const UNSIGNABLE_HEADERS: &[&str] = &[
    "Received",
    "Return-Path",
    "DKIM-Signature",
    "ARC-Seal",
    "ARC-Message-Signature",
    "ARC-Authentication-Results",
    "Authentication-Results",
    "Delivered-To",
    "X-Original-To",
];

/// Longest accepted `expire_after` (about 10 years): beyond it `x=` is meaningless.
const MAX_EXPIRE_AFTER: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

/// One `[[dkim]]` entry of the configuration file: a key, the domain and selector it signs
/// as, and its policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DkimConfig {
    /// The signing domain (`d=`). Without `tenant`, mail whose From domain is this domain is
    /// signed with this entry (and mail of its subdomains if `subdomains` is true).
    pub domain: String,
    /// The selector (`s=`): the key's public half is published at
    /// `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// The PEM private key file (RSA PKCS#1/PKCS#8 or Ed25519 PKCS#8); a relative path is
    /// relative to the base directory given to [`Signer::from_config`](crate::Signer::from_config).
    pub key: PathBuf,
    /// Also sign mail from subdomains of `domain` that have no entry of their own (the nearest
    /// parent with `subdomains = true` is used). DMARC relaxed alignment (the default, `adkim=r`)
    /// accepts such a signature; strict alignment does not. Default: false.
    #[serde(default)]
    pub subdomains: bool,
    /// The header fields to sign (`h=`), case-insensitive. Default: [`DEFAULT_SIGNED_HEADERS`].
    #[serde(default)]
    pub headers: Option<Vec<String>>,
    /// Fields over-signed (see [`DEFAULT_OVERSIGNED_HEADERS`]); each must be in `headers`.
    /// Default: `["From"]`.
    #[serde(default)]
    pub oversign: Option<Vec<String>>,
    /// Signature lifetime, written as `x=` (a `humantime` duration: `"7d"`, `"36h"`). Receivers
    /// ignore expired signatures, which limits replay of a captured message. Default: none.
    #[serde(default)]
    pub expire_after: Option<String>,
    /// ESP double signing: sign every message tagged with this tenant with this key too.
    #[serde(default)]
    pub tenant: Option<String>,
}

impl DkimConfig {
    /// An entry with the defaults: no subdomains, default headers and over-signing, no expiry,
    /// no tenant.
    pub fn new(
        domain: impl Into<String>,
        selector: impl Into<String>,
        key: impl Into<PathBuf>,
    ) -> Self {
        Self {
            domain: domain.into(),
            selector: selector.into(),
            key: key.into(),
            subdomains: false,
            headers: None,
            oversign: None,
            expire_after: None,
            tenant: None,
        }
    }
}

/// A validated entry with its key: what signing uses.
#[derive(Debug)]
pub(crate) struct Entry {
    /// Lower case A-label domain.
    pub(crate) domain: String,
    /// Lower case selector.
    pub(crate) selector: String,
    pub(crate) subdomains: bool,
    /// The `h=` template, as configured (case kept, as it is written into `h=`).
    pub(crate) headers: Vec<String>,
    /// Fields to list once more than they occur.
    pub(crate) oversign: Vec<String>,
    /// `x=` is `t=` plus this many seconds.
    pub(crate) expire_after: Option<u64>,
    pub(crate) tenant: Option<String>,
    pub(crate) key: Arc<LoadedKey>,
}

/// What an entry says once checked, before its key is loaded.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) domain: String,
    pub(crate) selector: String,
    pub(crate) key_path: PathBuf,
    pub(crate) subdomains: bool,
    pub(crate) headers: Vec<String>,
    pub(crate) oversign: Vec<String>,
    pub(crate) expire_after: Option<u64>,
    pub(crate) tenant: Option<String>,
}

impl Checked {
    pub(crate) fn with_key(self, key: Arc<LoadedKey>) -> Entry {
        Entry {
            domain: self.domain,
            selector: self.selector,
            subdomains: self.subdomains,
            headers: self.headers,
            oversign: self.oversign,
            expire_after: self.expire_after,
            tenant: self.tenant,
            key,
        }
    }
}

/// Validates entry number `index`; errors name the entry and field.
pub(crate) fn check(
    index: usize,
    config: &DkimConfig,
    base_dir: &Path,
) -> Result<Checked, DkimError> {
    let domain = normalize_domain(config.domain.as_bytes())
        .ok_or_else(|| DkimError::InvalidDomain(config.domain.clone()).at(index, "domain"))?;
    let selector = config.selector.to_ascii_lowercase();
    if !is_host_name(&selector) {
        return Err(DkimError::InvalidSelector(config.selector.clone()).at(index, "selector"));
    }
    let headers = match &config.headers {
        Some(list) => check_headers(list).map_err(|e| e.at(index, "headers"))?,
        None => DEFAULT_SIGNED_HEADERS
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    };
    let oversign = match &config.oversign {
        Some(list) => check_oversign(list, &headers).map_err(|e| e.at(index, "oversign"))?,
        None => DEFAULT_OVERSIGNED_HEADERS
            .iter()
            .map(|h| (*h).to_owned())
            .collect(),
    };
    let expire_after = config
        .expire_after
        .as_deref()
        .map(parse_expiry)
        .transpose()
        .map_err(|e| e.at(index, "expire_after"))?;
    let tenant = match &config.tenant {
        Some(t) if t.trim().is_empty() => return Err(DkimError::EmptyTenant.at(index, "tenant")),
        Some(t) => Some(t.clone()),
        None => None,
    };
    Ok(Checked {
        domain,
        selector,
        key_path: base_dir.join(&config.key),
        subdomains: config.subdomains,
        headers,
        oversign,
        expire_after,
        tenant,
    })
}

fn check_name(name: &str) -> Result<(), DkimError> {
    let valid = !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':');
    if valid {
        Ok(())
    } else {
        Err(DkimError::InvalidHeaderName(name.to_owned()))
    }
}

fn check_headers(list: &[String]) -> Result<Vec<String>, DkimError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        check_name(name)?;
        if UNSIGNABLE_HEADERS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            return Err(DkimError::UnsignableHeader(name.clone()));
        }
        // A duplicate would only over-sign by accident; over-signing is `oversign`'s job.
        if !out.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            out.push(name.clone());
        }
    }
    if !out.iter().any(|h| h.eq_ignore_ascii_case("from")) {
        return Err(DkimError::FromNotSigned);
    }
    Ok(out)
}

fn check_oversign(list: &[String], headers: &[String]) -> Result<Vec<String>, DkimError> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        check_name(name)?;
        if !headers.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            return Err(DkimError::OversignNotSigned(name.clone()));
        }
        if !out.iter().any(|h| h.eq_ignore_ascii_case(name)) {
            out.push(name.clone());
        }
    }
    Ok(out)
}

fn parse_expiry(text: &str) -> Result<u64, DkimError> {
    let invalid = || DkimError::InvalidDuration {
        value: text.to_owned(),
    };
    let duration = humantime::parse_duration(text).map_err(|_| invalid())?;
    if duration < Duration::from_secs(1) || duration > MAX_EXPIRE_AFTER {
        return Err(invalid());
    }
    Ok(duration.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason_chain(error: &DkimError) -> String {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    #[test]
    fn toml_entry_with_defaults() {
        let toml = r#"
            domain = "Example.COM"
            selector = "s2026"
            key = "keys/example.com.pem"
        "#;
        let config: DkimConfig = toml::from_str(toml).unwrap();
        assert_eq!(
            config,
            DkimConfig::new("Example.COM", "s2026", "keys/example.com.pem")
        );
        let checked = check(0, &config, Path::new("/etc/mta")).unwrap();
        assert_eq!(checked.domain, "example.com");
        assert_eq!(checked.key_path, Path::new("/etc/mta/keys/example.com.pem"));
        assert_eq!(checked.headers, DEFAULT_SIGNED_HEADERS);
        assert_eq!(checked.oversign, ["From"]);
        assert_eq!(checked.expire_after, None);
        assert!(!checked.subdomains);
    }

    #[test]
    fn toml_entry_with_every_key() {
        let toml = r#"
            domain = "example.com"
            selector = "ed"
            key = "/abs/key.pem"
            subdomains = true
            headers = ["from", "Subject", "Date", "subject"]
            oversign = ["From", "Subject"]
            expire_after = "7d"
            tenant = "acme"
        "#;
        let config: DkimConfig = toml::from_str(toml).unwrap();
        let checked = check(0, &config, Path::new("/etc/mta")).unwrap();
        assert_eq!(checked.key_path, Path::new("/abs/key.pem"));
        assert_eq!(checked.headers, ["from", "Subject", "Date"]);
        assert_eq!(checked.oversign, ["From", "Subject"]);
        assert_eq!(checked.expire_after, Some(7 * 24 * 3600));
        assert_eq!(checked.tenant.as_deref(), Some("acme"));
        assert!(checked.subdomains);
    }

    #[test]
    fn toml_unknown_key_is_refused() {
        let toml = "domain = \"a.test\"\nselector = \"s\"\nkey = \"k\"\nalgorithm = \"rsa\"\n";
        let err = toml::from_str::<DkimConfig>(toml).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `algorithm`"),
            "{err}"
        );
    }

    /// One field changed from a valid entry → the full error chain.
    #[test]
    fn validation_errors_name_the_entry() {
        type Edit = fn(&mut DkimConfig);
        let cases: &[(Edit, &str)] = &[
            (
                |c| c.domain = "bad domain".into(),
                "dkim[3].domain: invalid domain name \"bad domain\"",
            ),
            (
                |c| c.domain = String::new(),
                "dkim[3].domain: invalid domain name \"\"",
            ),
            (
                |c| c.selector = "a/b".into(),
                "dkim[3].selector: invalid selector \"a/b\"",
            ),
            (
                |c| c.headers = Some(vec!["From".into(), "Received".into()]),
                "dkim[3].headers: header field \"Received\" is added or changed in transit and must not be signed",
            ),
            (
                |c| c.headers = Some(vec!["dkim-signature".into(), "From".into()]),
                "dkim[3].headers: header field \"dkim-signature\" is added or changed in transit and must not be signed",
            ),
            (
                |c| c.headers = Some(vec!["To".into()]),
                "dkim[3].headers: the signed header list must include From",
            ),
            (
                |c| c.headers = Some(vec!["From".into(), "Bad Name".into()]),
                "dkim[3].headers: invalid header field name \"Bad Name\"",
            ),
            (
                |c| c.headers = Some(vec!["From:".into()]),
                "dkim[3].headers: invalid header field name \"From:\"",
            ),
            (
                |c| c.oversign = Some(vec!["X-Other".into()]),
                "dkim[3].oversign: header field \"X-Other\" is over-signed but not in the signed header list",
            ),
            (
                |c| c.expire_after = Some("soon".into()),
                "dkim[3].expire_after: invalid duration \"soon\" (expected for example \"7d\" or \"36h\", more than 0s)",
            ),
            (
                |c| c.expire_after = Some("0s".into()),
                "dkim[3].expire_after: invalid duration \"0s\" (expected for example \"7d\" or \"36h\", more than 0s)",
            ),
            (
                |c| c.expire_after = Some("100years".into()),
                "dkim[3].expire_after: invalid duration \"100years\" (expected for example \"7d\" or \"36h\", more than 0s)",
            ),
            (
                |c| c.tenant = Some(" ".into()),
                "dkim[3].tenant: tenant must not be empty",
            ),
        ];
        for (edit, expected) in cases {
            let mut config = DkimConfig::new("example.com", "s1", "k.pem");
            edit(&mut config);
            let err = check(3, &config, Path::new(".")).unwrap_err();
            assert_eq!(reason_chain(&err), *expected);
        }
    }

    #[test]
    fn empty_oversign_disables_it() {
        let mut config = DkimConfig::new("example.com", "s1", "k.pem");
        config.oversign = Some(vec![]);
        assert!(
            check(0, &config, Path::new("."))
                .unwrap()
                .oversign
                .is_empty()
        );
    }
}
