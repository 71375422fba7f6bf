//! criterion benches of DKIM signing, beside the raw costs it is made of.
//!
//! Run with `cargo bench -p benches --bench dkim`. Groups:
//! - `dkim_sign`: [`dkim::Signer::sign`] on a 4 KiB and a 100 KiB message (with our Received
//!   field on top), RSA-2048, Ed25519, and both (dual signing); on the 4 KiB message also
//!   RSA-1024 (RustCrypto fallback), RSA-4096, and `needs_blocking`; and Ed25519 on a 100 KiB
//!   prose body (more white space for relaxed canonicalization than the base64-like lines of
//!   the others). One element = one message.
//! - `dkim_raw`: what a signature cannot avoid, through rustls' aws-lc-rs provider (the same
//!   library and calls the signer uses): the RSA-2048 PKCS#1 v1.5 SHA-256 signature of a
//!   600-byte input (the size of the canonical header input), the Ed25519 signature of a
//!   32-byte hash, and SHA-256 over the whole message.
//!
//! `dkim_sign/rsa2048` divided by (`dkim_raw/rsa2048_sign` + `dkim_raw/sha256`) is the
//! signer's overhead over "raw RSA + hashing"; the figures are recorded in `docs/dkim.md`.
//! Keys are the dkim crate's test fixtures.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use benches::message_body;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dkim::{DkimConfig, Signer};
use rustls::crypto::aws_lc_rs::{cipher_suite, sign::any_supported_type};
use rustls::crypto::hash::Hash;
use rustls::{SignatureScheme, SupportedCipherSuite};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject as _;

/// The dkim crate's test keys.
fn keys_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dkim/tests/fixtures/keys")
}

/// A bulk-mail message of about `size` bytes as the server stores it: Received on top.
fn message(size: usize) -> Vec<u8> {
    let mut message = b"Received: from client.example.net (client.example.net [192.0.2.10])\r\n\
\tby mta.esp.example with ESMTPS id 01JDX5Q3G8ZK4M2V7N\r\n\
\tfor <customer@recipient-domain.example>; Thu, 26 Nov 2026 12:00:00 +0000\r\n"
        .to_vec();
    message.extend_from_slice(&message_body(size - message.len()));
    message
}

/// The same message with a prose body (words, spaces, punctuation): relaxed canonicalization
/// has more to do on it than on the base64-like lines of [`message`].
fn prose_message(size: usize) -> Vec<u8> {
    let head = message(1024);
    let end = head
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end")
        + 4;
    let mut message = head[..end].to_vec();
    let line: &[u8] =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    while message.len() + line.len() <= size {
        message.extend_from_slice(line);
    }
    message
}

fn signer(entries: &[(&str, &str)]) -> Signer {
    let configs: Vec<DkimConfig> = entries
        .iter()
        .map(|(selector, key)| DkimConfig::new("mail.example.com", *selector, *key))
        .collect();
    Signer::from_config(&configs, &keys_dir()).expect("fixture keys load")
}

fn signing(c: &mut Criterion) {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
    let signers = [
        ("rsa2048", signer(&[("rsa", "rsa2048.pkcs8.pem")])),
        ("ed25519", signer(&[("ed", "ed25519.pem")])),
        (
            "rsa2048+ed25519",
            signer(&[("rsa", "rsa2048.pkcs8.pem"), ("ed", "ed25519.pem")]),
        ),
    ];
    // Other key sizes, on the small message only (the body costs the same for every key).
    let others = [
        ("rsa1024-legacy", signer(&[("rsa", "rsa1024.pkcs8.pem")])),
        ("rsa4096", signer(&[("rsa", "rsa4096.pkcs8.pem")])),
    ];
    let mut group = c.benchmark_group("dkim_sign");
    group.throughput(Throughput::Elements(1));
    for (size_name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let message = message(size);
        for (name, signer) in &signers {
            assert!(!signer.sign(&message, None, now).unwrap().is_empty());
            group.bench_function(format!("{name}/{size_name}"), |b| {
                b.iter(|| signer.sign(black_box(&message), None, now).unwrap())
            });
        }
        if size_name == "4KiB" {
            for (name, signer) in &others {
                group.bench_function(format!("{name}/{size_name}"), |b| {
                    b.iter(|| signer.sign(black_box(&message), None, now).unwrap())
                });
            }
            let (_, ed) = &signers[1];
            group.bench_function(format!("needs_blocking/{size_name}"), |b| {
                b.iter(|| ed.needs_blocking(black_box(&message), None))
            });
        }
    }
    let prose = prose_message(100 * 1024);
    let (_, ed) = &signers[1];
    group.bench_function("ed25519/100KiB-prose", |b| {
        b.iter(|| ed.sign(black_box(&prose), None, now).unwrap())
    });
    group.finish();
}

fn raw(c: &mut Criterion) {
    let key = |file: &str| {
        let der = PrivateKeyDer::from_pem_file(keys_dir().join(file)).expect("fixture key");
        any_supported_type(&der).expect("aws-lc-rs loads the key")
    };
    let rsa = key("rsa2048.pkcs8.pem")
        .choose_scheme(&[SignatureScheme::RSA_PKCS1_SHA256])
        .expect("RSA PKCS#1 SHA-256");
    let ed = key("ed25519.pem")
        .choose_scheme(&[SignatureScheme::ED25519])
        .expect("Ed25519");
    // aws-lc-rs's SHA-256, reached through the TLS 1.3 suite that uses it.
    let sha256: &dyn Hash = match cipher_suite::TLS13_AES_128_GCM_SHA256 {
        SupportedCipherSuite::Tls13(suite) => suite.common.hash_provider,
        SupportedCipherSuite::Tls12(_) => unreachable!("a TLS 1.3 suite"),
    };
    let header_input = vec![b'h'; 600];
    let hash = [7u8; 32];

    let mut group = c.benchmark_group("dkim_raw");
    group.throughput(Throughput::Elements(1));
    group.bench_function("rsa2048_sign", |b| {
        b.iter(|| rsa.sign(black_box(&header_input)).unwrap())
    });
    group.bench_function("ed25519_sign", |b| {
        b.iter(|| ed.sign(black_box(&hash)).unwrap())
    });
    for (size_name, size) in [("4KiB", 4 * 1024), ("100KiB", 100 * 1024)] {
        let message = message(size);
        group.throughput(Throughput::Bytes(message.len() as u64));
        group.bench_function(format!("sha256/{size_name}"), |b| {
            b.iter(|| sha256.hash(black_box(&message)))
        });
    }
    group.finish();
}

criterion_group!(benches, signing, raw);
criterion_main!(benches);
