//! The byte format of an [`Envelope`]: hand-written, compact, versioned, canonical.
//!
//! # Why hand-written
//! An envelope is small (a few hundred bytes for a one-recipient message) and is rewritten after
//! every delivery attempt and read for every queued message on start, so size and decode speed
//! matter; it is also read back from disk after crashes, so decoding must be total: every
//! input gives an [`Envelope`] or a typed [`DecodeError`], never a panic or an allocation
//! larger than the input. A serde format (postcard) would be about as compact, but would add
//! two dependencies, tie the on-disk format to derive output (a renamed or reordered field
//! silently changes the format), accept non-canonical input, and only report untyped errors.
//! Thirty lines of varint and string helpers cost less.
//!
//! # Format, version 1
//! Integers are unsigned LEB128 varints (`v`), minimal length only. Strings (`s`) are a varint
//! byte length then UTF-8. Optional strings (`o`) are a byte `0` (absent) or `1` then `s`.
//!
//! ```text
//! u8  version = 1
//! v   created_ms, next_attempt_ms, attempts (u32), size
//! u8  priority (0 Bulk, 1 Normal, 2 High)
//! u8  body_type (0 7BIT, 1 8BITMIME, 2 BINARYMIME)
//! u8  flags (bit 0: smtputf8; other bits zero)
//! u8  dsn.ret (0 none, 1 FULL, 2 HDRS)
//! o   dsn.envid
//! s   sender, received_from
//! o   tags.tenant, tags.campaign, tags.pool
//! v   recipient count, then per recipient:
//!     s address; u8 state (0 Pending, 1 Delivered, 2 Failed, 3 Expired);
//!     u8 notify (bit set, see Notify); o orcpt; v attempts (u32); o last_reply
//! ```
//!
//! # Invariants
//! - Canonical: [`Envelope::decode`] accepts exactly the outputs of [`Envelope::encode`], so
//!   `encode(decode(b)?) == b` for every accepted `b` (overlong varints, unknown tag values,
//!   stray flag bits and trailing bytes are errors). This is what the round-trip fuzz target
//!   checks.
//! - `encode` is total: every `Envelope` value encodes and decodes back equal (unknown bits of
//!   a [`Notify`] built with `from_bits_retain` are dropped).
//! - Bounded: every length and count is checked against the bytes that remain before anything
//!   is allocated.
//! - Versioned: a new format gets a new version byte; the decoder keeps reading old ones.

use crate::envelope::{
    BodyType, DsnParams, DsnRet, Envelope, Notify, Priority, Recipient, RecipientState, Tags,
};
use crate::error::DecodeError;

/// The format version written by [`Envelope::encode`].
pub const FORMAT_VERSION: u8 = 1;

/// Smallest encoding of one recipient: empty address (1), state (1), notify (1), absent
/// orcpt (1), zero attempts (1), absent reply (1).
const MIN_RECIPIENT_LEN: usize = 6;

const FLAG_SMTPUTF8: u8 = 0b0000_0001;

impl Envelope {
    /// Encodes the envelope in the current format ([`FORMAT_VERSION`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoding of the envelope to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(FORMAT_VERSION);
        put_varint(out, self.created_ms);
        put_varint(out, self.next_attempt_ms);
        put_varint(out, u64::from(self.attempts));
        put_varint(out, self.size);
        out.push(match self.priority {
            Priority::Bulk => 0,
            Priority::Normal => 1,
            Priority::High => 2,
        });
        out.push(match self.body_type {
            BodyType::SevenBit => 0,
            BodyType::EightBitMime => 1,
            BodyType::BinaryMime => 2,
        });
        out.push(if self.smtputf8 { FLAG_SMTPUTF8 } else { 0 });
        out.push(match self.dsn.ret {
            None => 0,
            Some(DsnRet::Full) => 1,
            Some(DsnRet::Headers) => 2,
        });
        put_opt_str(out, self.dsn.envid.as_deref());
        put_str(out, &self.sender);
        put_str(out, &self.received_from);
        put_opt_str(out, self.tags.tenant.as_deref());
        put_opt_str(out, self.tags.campaign.as_deref());
        put_opt_str(out, self.tags.pool.as_deref());
        put_varint(out, self.recipients.len() as u64);
        for r in &self.recipients {
            put_str(out, &r.address);
            out.push(match r.state {
                RecipientState::Pending => 0,
                RecipientState::Delivered => 1,
                RecipientState::Failed => 2,
                RecipientState::Expired => 3,
            });
            out.push(r.notify.intersection(Notify::all()).bits());
            put_opt_str(out, r.orcpt.as_deref());
            put_varint(out, u64::from(r.attempts));
            put_opt_str(out, r.last_reply.as_deref());
        }
    }

    /// Decodes an envelope written by [`encode`](Self::encode) (any supported version).
    ///
    /// Total: returns a typed error for every input that is not exactly an encoding.
    pub fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
        let (&version, rest) = bytes.split_first().ok_or(DecodeError::Empty)?;
        match version {
            1 => decode_v1(Reader { buf: rest }),
            other => Err(DecodeError::UnsupportedVersion(other)),
        }
    }

    fn encoded_len_hint(&self) -> usize {
        64 + self.sender.len()
            + self.received_from.len()
            + self
                .recipients
                .iter()
                .map(|r| 16 + r.address.len() + r.last_reply.as_ref().map_or(0, String::len))
                .sum::<usize>()
    }
}

fn decode_v1(mut r: Reader<'_>) -> Result<Envelope, DecodeError> {
    let created_ms = r.varint("created_ms")?;
    let next_attempt_ms = r.varint("next_attempt_ms")?;
    let attempts = r.varint_u32("attempts")?;
    let size = r.varint("size")?;
    let priority = match r.byte("priority")? {
        0 => Priority::Bulk,
        1 => Priority::Normal,
        2 => Priority::High,
        value => return Err(invalid("priority", value)),
    };
    let body_type = match r.byte("body_type")? {
        0 => BodyType::SevenBit,
        1 => BodyType::EightBitMime,
        2 => BodyType::BinaryMime,
        value => return Err(invalid("body_type", value)),
    };
    let flags = r.byte("flags")?;
    if flags & !FLAG_SMTPUTF8 != 0 {
        return Err(invalid("flags", flags));
    }
    let ret = match r.byte("dsn.ret")? {
        0 => None,
        1 => Some(DsnRet::Full),
        2 => Some(DsnRet::Headers),
        value => return Err(invalid("dsn.ret", value)),
    };
    let envid = r.opt_string("dsn.envid")?;
    let sender = r.string("sender")?;
    let received_from = r.string("received_from")?;
    let tags = Tags {
        tenant: r.opt_string("tags.tenant")?,
        campaign: r.opt_string("tags.campaign")?,
        pool: r.opt_string("tags.pool")?,
    };
    let count = r.varint("recipients")?;
    // Every recipient takes at least MIN_RECIPIENT_LEN bytes: a larger count is a lie, and
    // must not become a large allocation.
    let count = usize::try_from(count)
        .ok()
        .filter(|&n| n <= r.buf.len() / MIN_RECIPIENT_LEN)
        .ok_or(DecodeError::Truncated {
            field: "recipients",
        })?;
    let mut recipients = Vec::with_capacity(count);
    for _ in 0..count {
        let address = r.string("recipient.address")?;
        let state = match r.byte("recipient.state")? {
            0 => RecipientState::Pending,
            1 => RecipientState::Delivered,
            2 => RecipientState::Failed,
            3 => RecipientState::Expired,
            value => return Err(invalid("recipient.state", value)),
        };
        let bits = r.byte("recipient.notify")?;
        let notify = Notify::from_bits(bits).ok_or(invalid("recipient.notify", bits))?;
        let orcpt = r.opt_string("recipient.orcpt")?;
        let attempts = r.varint_u32("recipient.attempts")?;
        let last_reply = r.opt_string("recipient.last_reply")?;
        recipients.push(Recipient {
            address,
            state,
            notify,
            orcpt,
            attempts,
            last_reply,
        });
    }
    if !r.buf.is_empty() {
        return Err(DecodeError::TrailingBytes(r.buf.len()));
    }
    Ok(Envelope {
        sender,
        recipients,
        dsn: DsnParams { ret, envid },
        tags,
        created_ms,
        next_attempt_ms,
        attempts,
        priority,
        smtputf8: flags & FLAG_SMTPUTF8 != 0,
        body_type,
        size,
        received_from,
    })
}

fn invalid(field: &'static str, value: u8) -> DecodeError {
    DecodeError::InvalidValue { field, value }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s);
        }
    }
}

/// A cursor over the bytes still to decode.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn byte(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        let (&b, rest) = self
            .buf
            .split_first()
            .ok_or(DecodeError::Truncated { field })?;
        self.buf = rest;
        Ok(b)
    }

    fn take(&mut self, len: u64, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= self.buf.len())
            .ok_or(DecodeError::Truncated { field })?;
        let (head, rest) = self.buf.split_at(len);
        self.buf = rest;
        Ok(head)
    }

    /// A minimal-length LEB128 `u64`.
    fn varint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let b = self.byte(field)?;
            let payload = u64::from(b & 0x7f);
            // The tenth byte holds only the top bit of a u64.
            if i == 9 && payload > 1 {
                return Err(DecodeError::BadVarint { field });
            }
            value |= payload << (7 * i);
            if b & 0x80 == 0 {
                // A zero last byte (other than the first) means the encoding was padded.
                if i > 0 && b == 0 {
                    return Err(DecodeError::BadVarint { field });
                }
                return Ok(value);
            }
        }
        Err(DecodeError::BadVarint { field })
    }

    fn varint_u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        u32::try_from(self.varint(field)?).map_err(|_| DecodeError::BadVarint { field })
    }

    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let len = self.varint(field)?;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|source| DecodeError::InvalidUtf8 { field, source })
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, DecodeError> {
        match self.byte(field)? {
            0 => Ok(None),
            1 => self.string(field).map(Some),
            value => Err(invalid(field, value)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Envelope {
        Envelope {
            sender: "bounces+42@mail.example.com".into(),
            recipients: vec![
                Recipient {
                    address: "jörg@exämple.de".into(),
                    state: RecipientState::Pending,
                    notify: Notify::FAILURE | Notify::DELAY,
                    orcpt: Some("rfc822;j+C3+B6rg@ex+C3+A4mple.de".into()),
                    attempts: 3,
                    last_reply: Some("451 4.7.1 Try again later".into()),
                },
                Recipient {
                    address: "b@example.org".into(),
                    state: RecipientState::Expired,
                    notify: Notify::NEVER,
                    orcpt: None,
                    attempts: u32::MAX,
                    last_reply: None,
                },
            ],
            dsn: DsnParams {
                ret: Some(DsnRet::Headers),
                envid: Some("QQ314159".into()),
            },
            tags: Tags {
                tenant: Some("acme".into()),
                campaign: Some("black-friday".into()),
                pool: Some("shared-1".into()),
            },
            created_ms: 1_764_000_000_000,
            next_attempt_ms: u64::MAX,
            attempts: 7,
            priority: Priority::High,
            smtputf8: true,
            body_type: BodyType::BinaryMime,
            size: 104_857_600,
            received_from: "2001:db8::1".into(),
        }
    }

    /// Minimal envelope, and the exact bytes expected for it.
    fn minimal() -> (Envelope, Vec<u8>) {
        let mut env = Envelope::new("", vec![Recipient::new("a@b")], 300);
        env.size = 5;
        let bytes = vec![
            1, // version
            0xac, 0x02, // created_ms = 300
            0xac, 0x02, // next_attempt_ms = 300
            0,    // attempts
            5,    // size
            1,    // priority Normal
            0,    // 7BIT
            0,    // flags
            0,    // ret
            0,    // envid absent
            0,    // sender ""
            0,    // received_from ""
            0, 0, 0, // tags
            1, // one recipient
            3, b'a', b'@', b'b', 0, 0, 0, 0, 0,
        ];
        (env, bytes)
    }

    #[test]
    fn encodes_exact_bytes() {
        let (env, bytes) = minimal();
        assert_eq!(env.encode(), bytes);
        assert_eq!(Envelope::decode(&bytes), Ok(env));
    }

    #[test]
    fn round_trip_table() {
        let mut many = full();
        many.recipients = (0..1_000)
            .map(|i| Recipient::new(format!("user{i}@example.net")))
            .collect();
        let mut zeroes = Envelope::new("", Vec::new(), 0);
        zeroes.priority = Priority::Bulk;
        let mut eight_bit = full();
        eight_bit.body_type = BodyType::EightBitMime;
        eight_bit.dsn.ret = Some(DsnRet::Full);
        eight_bit.smtputf8 = false;
        eight_bit.recipients[0].state = RecipientState::Delivered;
        eight_bit.recipients[1].state = RecipientState::Failed;
        eight_bit.recipients[1].notify = Notify::SUCCESS;
        let table = [
            ("minimal", minimal().0),
            ("full", full()),
            ("no recipients", zeroes),
            ("1000 recipients", many),
            ("other enum values", eight_bit),
        ];
        for (name, env) in table {
            let bytes = env.encode();
            assert_eq!(bytes[0], FORMAT_VERSION, "{name}");
            assert_eq!(Envelope::decode(&bytes).as_ref(), Ok(&env), "{name}");
        }
    }

    #[test]
    fn unknown_notify_bits_are_dropped_on_encode() {
        let mut env = minimal().0;
        env.recipients[0].notify = Notify::from_bits_retain(0xf2);
        let decoded = Envelope::decode(&env.encode()).unwrap();
        assert_eq!(decoded.recipients[0].notify, Notify::FAILURE);
    }

    #[test]
    fn decode_error_table() {
        let (_, good) = minimal();
        let with = |at: usize, value: u8| {
            let mut b = good.clone();
            b[at] = value;
            b
        };
        let table: Vec<(&str, Vec<u8>, DecodeError)> = vec![
            ("empty", vec![], DecodeError::Empty),
            ("version 0", vec![0], DecodeError::UnsupportedVersion(0)),
            ("version 2", with(0, 2), DecodeError::UnsupportedVersion(2)),
            (
                "only version",
                vec![1],
                DecodeError::Truncated {
                    field: "created_ms",
                },
            ),
            (
                "overlong varint",
                vec![1, 0x80, 0x00],
                DecodeError::BadVarint {
                    field: "created_ms",
                },
            ),
            (
                "eleven-byte varint",
                [&[1u8][..], &[0xff; 11]].concat(),
                DecodeError::BadVarint {
                    field: "created_ms",
                },
            ),
            (
                "varint above u64",
                [&[1u8][..], &[0xff; 9], &[0x02]].concat(),
                DecodeError::BadVarint {
                    field: "created_ms",
                },
            ),
            (
                "attempts above u32",
                [&[1u8, 0, 0][..], &[0xff, 0xff, 0xff, 0xff, 0x10]].concat(),
                DecodeError::BadVarint { field: "attempts" },
            ),
            ("priority 3", with(7, 3), invalid("priority", 3)),
            ("body type 3", with(8, 3), invalid("body_type", 3)),
            ("flag bit 1", with(9, 2), invalid("flags", 2)),
            ("ret 3", with(10, 3), invalid("dsn.ret", 3)),
            ("option tag 2", with(11, 2), invalid("dsn.envid", 2)),
            (
                "string past end",
                with(12, 100),
                DecodeError::Truncated { field: "sender" },
            ),
            (
                "recipient count past end",
                with(17, 100),
                DecodeError::Truncated {
                    field: "recipients",
                },
            ),
            ("state 4", with(22, 4), invalid("recipient.state", 4)),
            (
                "notify bit 4",
                with(23, 0x10),
                invalid("recipient.notify", 0x10),
            ),
            (
                "truncated recipient",
                good[..good.len() - 1].to_vec(),
                DecodeError::Truncated {
                    field: "recipient.last_reply",
                },
            ),
            (
                "trailing bytes",
                [&good[..], &[0, 0]].concat(),
                DecodeError::TrailingBytes(2),
            ),
        ];
        for (name, bytes, expected) in table {
            assert_eq!(Envelope::decode(&bytes), Err(expected), "{name}");
        }
        // Invalid UTF-8 (checked apart: the source error has no public constructor).
        let mut bad_utf8 = good.clone();
        bad_utf8[19] = 0xff;
        assert!(matches!(
            Envelope::decode(&bad_utf8),
            Err(DecodeError::InvalidUtf8 {
                field: "recipient.address",
                ..
            })
        ));
    }

    /// A small deterministic generator (xorshift64*), so failures replay.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn int(&mut self) -> u64 {
            // Spread over all varint lengths, including the edges.
            match self.below(4) {
                0 => self.below(128),
                1 => u64::MAX - self.below(3),
                _ => self.next() >> self.below(64),
            }
        }
        fn text(&mut self) -> String {
            const PIECES: [&str; 6] = ["a", "@", "é", "\u{1F4E7}", "\0", "example.com"];
            (0..self.below(6))
                .map(|_| PIECES[self.below(6) as usize])
                .collect()
        }
        fn opt_text(&mut self) -> Option<String> {
            (self.below(2) == 1).then(|| self.text())
        }
    }

    fn random_envelope(rng: &mut Rng) -> Envelope {
        let states = [
            RecipientState::Pending,
            RecipientState::Delivered,
            RecipientState::Failed,
            RecipientState::Expired,
        ];
        Envelope {
            sender: rng.text(),
            recipients: (0..rng.below(5))
                .map(|_| Recipient {
                    address: rng.text(),
                    state: states[rng.below(4) as usize],
                    notify: Notify::from_bits_truncate(rng.below(16) as u8),
                    orcpt: rng.opt_text(),
                    attempts: rng.int() as u32,
                    last_reply: rng.opt_text(),
                })
                .collect(),
            dsn: DsnParams {
                ret: [None, Some(DsnRet::Full), Some(DsnRet::Headers)][rng.below(3) as usize],
                envid: rng.opt_text(),
            },
            tags: Tags {
                tenant: rng.opt_text(),
                campaign: rng.opt_text(),
                pool: rng.opt_text(),
            },
            created_ms: rng.int(),
            next_attempt_ms: rng.int(),
            attempts: rng.int() as u32,
            priority: [Priority::Bulk, Priority::Normal, Priority::High][rng.below(3) as usize],
            smtputf8: rng.below(2) == 1,
            body_type: [
                BodyType::SevenBit,
                BodyType::EightBitMime,
                BodyType::BinaryMime,
            ][rng.below(3) as usize],
            size: rng.int(),
            received_from: rng.text(),
        }
    }

    /// Property: every envelope round-trips; every mutation of a valid encoding either fails
    /// with a typed error or decodes to something that re-encodes to the same bytes.
    #[test]
    fn property_round_trip_and_canonical_decoding() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000 {
            let env = random_envelope(&mut rng);
            let bytes = env.encode();
            assert_eq!(Envelope::decode(&bytes).as_ref(), Ok(&env));

            for _ in 0..8 {
                let mut mutated = bytes.clone();
                match rng.below(4) {
                    0 => {
                        let at = rng.below(mutated.len() as u64) as usize;
                        mutated[at] ^= 1 << rng.below(8);
                    }
                    1 => mutated.truncate(rng.below(mutated.len() as u64) as usize),
                    2 => {
                        let at = rng.below(mutated.len() as u64 + 1) as usize;
                        mutated.insert(at, rng.next() as u8);
                    }
                    _ => {
                        let at = rng.below(mutated.len() as u64) as usize;
                        mutated[at] = rng.next() as u8;
                    }
                }
                if let Ok(decoded) = Envelope::decode(&mutated) {
                    assert_eq!(decoded.encode(), mutated, "not canonical");
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(42);
        for _ in 0..20_000 {
            let len = rng.below(48) as usize;
            let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Some(first) = bytes.first_mut() {
                *first = 1;
            }
            if let Ok(env) = Envelope::decode(&bytes) {
                assert_eq!(env.encode(), bytes);
            }
        }
    }
}
