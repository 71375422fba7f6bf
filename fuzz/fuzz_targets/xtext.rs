//! `encode_xtext` / `decode_xtext` / `is_xtext` (RFC 3461 section 4).
//!
//! Checked:
//! - any non-empty text encodes to valid xtext (printable ASCII, no `=`, `+` only in `+XX`)
//!   that decodes back to it; the encoding borrows exactly when nothing needed escaping;
//! - any input that decodes is valid xtext, and its decoding re-encodes to xtext that
//!   decodes to the same text; decoding never makes text longer.

#![no_main]

use std::borrow::Cow;

use libfuzzer_sys::fuzz_target;
use smtp_proto::params::{decode_xtext, encode_xtext, is_xtext};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    let encoded = encode_xtext(&text);
    let needs_escape = text
        .bytes()
        .any(|b| b == b'+' || b == b'=' || !(33..=126).contains(&b));
    assert_eq!(matches!(encoded, Cow::Owned(_)), needs_escape);
    assert!(
        encoded
            .bytes()
            .all(|b| (33..=126).contains(&b) && b != b'=')
    );
    if text.is_empty() {
        assert_eq!(decode_xtext(&encoded), None, "empty xtext is invalid");
    } else {
        assert!(is_xtext(&encoded), "{encoded:?}");
        assert_eq!(
            decode_xtext(&encoded).as_deref(),
            Some(&*text),
            "{encoded:?}"
        );
    }

    if let Some(decoded) = decode_xtext(&text) {
        assert!(is_xtext(&text));
        assert!(decoded.len() <= text.len());
        let reencoded = encode_xtext(&decoded);
        assert_eq!(decode_xtext(&reencoded).as_deref(), Some(&*decoded));
    }
});
