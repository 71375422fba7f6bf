//! Where things live inside the sled database of a [`SledSpool`](crate::SledSpool).
//!
//! - Tree `messages`: a message's body under `b'B' ++ id` and its envelope under
//!   `b'E' ++ id`, the id as 16 big-endian bytes (so each half sorts by arrival time). Both
//!   halves of a message live in one tree so that one `apply_batch` writes them together:
//!   sled makes a batch on one tree atomic across crashes, which a pair of trees would only
//!   get from a (slower) transaction.
//! - Tree `quarantine`: entries moved out of `messages` on open, under their original key,
//!   bytes untouched; tree `quarantine.reasons`: the reason text under the same key.
//! - Default tree, key `spool.layout`: one byte, [`LAYOUT_VERSION`].
//!
//! Invariant: every key in `messages` is 17 bytes, a known prefix then an id; anything else is
//! quarantined on open as [`EntryKind::Unknown`].

use crate::id::MessageId;
use crate::spool::EntryKind;

/// Version of this layout, recorded on creation and checked on open.
pub(crate) const LAYOUT_VERSION: u8 = 1;
/// Key of the layout version in the default tree.
pub(crate) const LAYOUT_KEY: &[u8] = b"spool.layout";
/// Tree of live messages.
pub(crate) const MESSAGES_TREE: &str = "messages";
/// Tree of quarantined entries.
pub(crate) const QUARANTINE_TREE: &str = "quarantine";
/// Tree of the reasons for quarantined entries.
pub(crate) const REASONS_TREE: &str = "quarantine.reasons";

/// Prefix of body keys.
pub(crate) const BODY: u8 = b'B';
/// Prefix of envelope keys.
pub(crate) const ENVELOPE: u8 = b'E';

/// A key of the `messages` tree.
pub(crate) type Key = [u8; 1 + MessageId::BYTES_LEN];

/// The key of a message's body.
pub(crate) fn body_key(id: MessageId) -> Key {
    key(BODY, id)
}

/// The key of a message's envelope.
pub(crate) fn envelope_key(id: MessageId) -> Key {
    key(ENVELOPE, id)
}

fn key(prefix: u8, id: MessageId) -> Key {
    let mut k = [0; 17];
    k[0] = prefix;
    k[1..].copy_from_slice(&id.to_bytes());
    k
}

/// What a key of the `messages` tree (or of the quarantine trees) names.
pub(crate) fn parse_key(key: &[u8]) -> (EntryKind, Option<MessageId>) {
    let Ok(key) = <&Key>::try_from(key) else {
        return (EntryKind::Unknown, None);
    };
    let mut id = [0; MessageId::BYTES_LEN];
    id.copy_from_slice(&key[1..]);
    let id = MessageId::from_bytes(id);
    match key[0] {
        BODY => (EntryKind::Body, Some(id)),
        ENVELOPE => (EntryKind::Envelope, Some(id)),
        _ => (EntryKind::Unknown, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_table() {
        let id = MessageId::from_u128(0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10);
        let mut seventeen_unknown = body_key(id);
        seventeen_unknown[0] = b'X';
        type Row<'a> = (&'a [u8], (EntryKind, Option<MessageId>));
        let table: [Row<'_>; 5] = [
            (&body_key(id), (EntryKind::Body, Some(id))),
            (&envelope_key(id), (EntryKind::Envelope, Some(id))),
            (&seventeen_unknown, (EntryKind::Unknown, None)),
            (b"B123", (EntryKind::Unknown, None)),
            (b"", (EntryKind::Unknown, None)),
        ];
        for (key, expected) in table {
            assert_eq!(parse_key(key), expected, "{key:?}");
        }
        assert_eq!(&body_key(id)[1..], &id.to_bytes());
        // Bodies sort before envelopes, each half by id.
        let later = MessageId::from_u128(id.as_u128() + 1);
        assert!(body_key(later) < envelope_key(id));
        assert!(envelope_key(id) < envelope_key(later));
    }
}
