//! `dkim::author_domain` and `Signer::sign` on arbitrary messages, with one Ed25519 key for
//! `example.com`.
//!
//! Checked:
//! - neither panics, and they agree: a message error from `sign` exactly when
//!   `author_domain` fails; a signature exactly when the author domain is `example.com`;
//!   `needs_blocking` only for a signed message with a body over `INLINE_SIGN_MAX_BODY`;
//! - the signature fields are ASCII lines of at most `MAX_LINE_LEN` octets, each ending in
//!   CRLF, folded with white space, and prepending them leaves the author domain as it was;
//! - signing is deterministic (Ed25519, fixed time);
//! - for messages with no bare CR or LF (all the MTA signs), `bh=` is the SHA-256 of the body
//!   as the reference relaxed canonicalization of `smtp_proto_fuzz::dkim_relaxed_body`
//!   gives it (RFC 6376 section 3.4.4).

#![no_main]

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use dkim::{DkimConfig, INLINE_SIGN_MAX_BODY, MAX_LINE_LEN, Signer};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use smtp_proto_fuzz::{dkim_body, dkim_relaxed_body, has_bare_line_end};

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../dkim/tests/fixtures/keys/ed25519.pem"
        );
        Signer::from_config(
            &[DkimConfig::new("example.com", "fuzz", key)],
            Path::new("/"),
        )
        .expect("the fixture key loads")
    })
}

/// The value of tag `name` in a DKIM-Signature field (unfolded, white space removed).
fn tag(field: &[u8], name: &str) -> Option<String> {
    let text: String = String::from_utf8_lossy(field)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let value = text.split_once(':')?.1;
    value.split(';').find_map(|t| {
        let (n, v) = t.split_once('=')?;
        (n == name).then(|| v.to_owned())
    })
}

fuzz_target!(|data: &[u8]| {
    let signer = signer();
    let now = UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let author = dkim::author_domain(data);
    let signed = signer.sign(data, None, now);
    let blocking = signer.needs_blocking(data, None);
    let signed = match (&author, signed) {
        (Err(_), Err(error)) => {
            assert!(error.is_message_error(), "{error:?}");
            assert!(!blocking);
            return;
        }
        (Ok(domain), Ok(signed)) => {
            assert_eq!(
                signed.is_empty(),
                domain.as_deref() != Some("example.com"),
                "{domain:?}"
            );
            signed
        }
        (author, signed) => panic!("author_domain {author:?} but sign {signed:?}"),
    };
    if signed.is_empty() {
        assert!(!blocking);
        return;
    }
    let body = dkim_body(data);
    assert_eq!(blocking, body.len() > INLINE_SIGN_MAX_BODY);

    let header = signed.header();
    assert!(header.starts_with(b"DKIM-Signature:"));
    assert!(header.ends_with(b"\r\n"));
    for line in header.split_inclusive(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r\n").expect("every line ends in CRLF");
        assert!(
            line.len() <= MAX_LINE_LEN,
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert!(
            line.iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        );
    }
    for continuation in header.split_inclusive(|&b| b == b'\n').skip(1) {
        assert!(
            continuation.starts_with(b" ")
                || continuation.starts_with(b"\t")
                || continuation.starts_with(b"DKIM-Signature:"),
            "{:?}",
            String::from_utf8_lossy(header)
        );
    }
    let mut with_signature = header.to_vec();
    with_signature.extend_from_slice(data);
    assert_eq!(
        dkim::author_domain(&with_signature).ok(),
        author.ok(),
        "the signature changed the author domain"
    );
    let again = signer.sign(data, None, now).expect("signed once");
    assert_eq!(again.header(), header, "signing is not deterministic");

    if !has_bare_line_end(data) {
        let expected = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(dkim_relaxed_body(body)));
        assert_eq!(
            tag(header, "bh").as_deref(),
            Some(expected.as_str()),
            "body {:?}",
            String::from_utf8_lossy(body)
        );
    }
});
