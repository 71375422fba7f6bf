//! Helpers of the signing tests: fixtures, and the two verifiers the signatures are checked
//! with, dkimpy (independent, Python) and mail-auth's own, both answering DNS from a map
//! (no network).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mail_auth::common::parse::TxtRecordParser as _;
use mail_auth::common::verify::DomainKey;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

use dkim::{DkimConfig, Signer};

/// The fixture directory.
pub(crate) fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The test keys' directory (the base directory of test configurations).
pub(crate) fn keys_dir() -> PathBuf {
    fixtures().join("keys")
}

/// A fixture message.
pub(crate) fn message(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("messages").join(name)).unwrap()
}

/// Every fixture message, by name.
pub(crate) fn all_messages() -> Vec<(String, Vec<u8>)> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("messages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let m = message(&n);
            (n, m)
        })
        .collect()
}

/// A test configuration: `(domain, selector, key file in keys_dir)`, with an edit per entry.
pub(crate) fn config(entries: &[(&str, &str, &str)]) -> Vec<DkimConfig> {
    entries
        .iter()
        .map(|(domain, selector, key)| DkimConfig::new(*domain, *selector, *key))
        .collect()
}

/// The DNS zone of a configuration, from the OpenSSL-computed `<key>.dns.txt` fixtures (not
/// from the crate's own `dns_record`), so the verifiers check against independent records.
pub(crate) fn zone(configs: &[DkimConfig]) -> HashMap<String, String> {
    configs
        .iter()
        .map(|c| {
            let key = c.key.to_str().unwrap();
            let txt_file = keys_dir().join(key.replace(".pem", ".dns.txt"));
            let txt = std::fs::read_to_string(&txt_file)
                .unwrap_or_else(|e| panic!("{}: {e}", txt_file.display()));
            (
                format!(
                    "{}._domainkey.{}.",
                    c.selector,
                    c.domain.to_ascii_lowercase()
                ),
                txt,
            )
        })
        .collect()
}

/// Signs `message` and returns the signed message (fields prepended).
pub(crate) fn sign(
    signer: &Signer,
    message: &[u8],
    tenant: Option<&str>,
    now: SystemTime,
) -> Vec<u8> {
    let signed = signer.sign(message, tenant, now).unwrap();
    let mut out = signed.into_header();
    out.extend_from_slice(message);
    out
}

/// One signature's result from a verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// `d=`.
    pub domain: String,
    /// `s=`.
    pub selector: String,
    /// Passed.
    pub ok: bool,
    /// Why not.
    pub error: String,
}

/// Verifies every DKIM-Signature of each message with dkimpy: one verdict per signature,
/// top to bottom.
pub(crate) fn dkimpy(messages: &[&[u8]], zone: &HashMap<String, String>) -> Vec<Vec<Verdict>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dkimpy_verify.py");
    let request = serde_json::json!({
        "dns": zone,
        "messages": messages.iter().map(|m| BASE64.encode(m)).collect::<Vec<_>>(),
    });
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the dkimpy verification tests");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "dkimpy verifier failed (install it with `python3 -m pip install dkimpy pynacl`): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Vec<serde_json::Value>> = serde_json::from_slice(&output.stdout).unwrap();
    results
        .into_iter()
        .map(|sigs| {
            sigs.into_iter()
                .map(|v| Verdict {
                    domain: v["d"].as_str().unwrap().to_owned(),
                    selector: v["s"].as_str().unwrap().to_owned(),
                    ok: v["ok"].as_bool().unwrap(),
                    error: v["error"].as_str().unwrap().to_owned(),
                })
                .collect()
        })
        .collect()
}

/// A TXT cache answering from a fixed map; a miss is a miss (the resolver has no servers).
struct Zone(HashMap<Box<str>, Txt>);

impl ResolverCache<Box<str>, Txt> for Zone {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _: Box<str>, _: Txt, _: std::time::Instant) {}
}

/// Verifies every DKIM-Signature of `message` with mail-auth's verifier.
pub(crate) fn mail_auth(message: &[u8], zone: &HashMap<String, String>) -> Vec<Verdict> {
    let cache = Zone(
        zone.iter()
            .map(|(name, txt)| {
                let key = DomainKey::parse(txt.as_bytes()).unwrap();
                (name.clone().into_boxed_str(), Txt::DomainKey(Arc::new(key)))
            })
            .collect(),
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // No name servers: a record missing from the map fails, it is never looked up.
        let resolver = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .unwrap();
        let parsed = AuthenticatedMessage::parse(message).expect("mail-auth parses the message");
        let params = Parameters::new(&parsed).with_txt_cache(&cache);
        resolver
            .verify_dkim(params)
            .await
            .into_iter()
            .map(|output| {
                let (domain, selector) = output
                    .signature()
                    .map(|s| (s.d.clone(), s.s.clone()))
                    .unwrap_or_default();
                let ok = *output.result() == DkimResult::Pass;
                Verdict {
                    domain,
                    selector,
                    ok,
                    error: if ok {
                        String::new()
                    } else {
                        format!("{:?}", output.result())
                    },
                }
            })
            .collect()
    })
}

/// `(d, s)` of each verdict, for comparisons.
pub(crate) fn ids(verdicts: &[Verdict]) -> Vec<(String, String)> {
    verdicts
        .iter()
        .map(|v| (v.domain.clone(), v.selector.clone()))
        .collect()
}

/// Asserts that every verdict passed.
pub(crate) fn assert_all_pass(what: &str, verdicts: &[Verdict]) {
    assert!(!verdicts.is_empty(), "{what}: no signature verified");
    for v in verdicts {
        assert!(
            v.ok,
            "{what}: d={} s={} failed: {}",
            v.domain, v.selector, v.error
        );
    }
}

/// The tag `name` of the first DKIM-Signature field of `header`.
pub(crate) fn tag(header: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let first = text.split("DKIM-Signature:").nth(1)?;
    let unfolded: String = first
        .split("\r\n")
        .take_while(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("")
        .replace(['\t', ' '], "");
    unfolded.split(';').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}
