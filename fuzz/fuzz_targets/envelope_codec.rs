//! `queue::Envelope::decode` and `MessageId`'s text form on arbitrary bytes: what the spool
//! reads back from disk after a crash.
//!
//! Checked:
//! - decoding never panics; an accepted input is canonical: encoding the envelope gives the
//!   input back, and decoding that gives an equal envelope;
//! - a message id parses only from its canonical text, which it prints back; any 128-bit
//!   value prints to text that parses back to it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use queue::{Envelope, MessageId};

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::decode(data) {
        let encoded = envelope.encode();
        assert_eq!(encoded, data, "decode accepted a non-canonical encoding");
        assert_eq!(Envelope::decode(&encoded).expect("re-decodes"), envelope);
    }

    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<MessageId>()
    {
        assert_eq!(id.to_string(), text);
    }
    if data.len() >= 16 {
        let value = u128::from_le_bytes(data[..16].try_into().expect("16 bytes"));
        let id = MessageId::from_u128(value);
        assert_eq!(id.to_string().parse::<MessageId>().ok(), Some(id));
        assert_eq!(id.as_u128(), value);
    }
});
