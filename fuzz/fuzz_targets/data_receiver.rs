//! `DataReceiver` over DATA content fed whole and in chunks cut anywhere (or one octet at a
//! time), with default limits or small ones derived from the input.
//!
//! Checked:
//! - whole and split agree on where the data ends (total octets consumed up to `Complete`),
//!   on whether the body is accepted, and, when it is, on the body;
//! - no `feed` consumes more than it was given; after `Complete` further input is not
//!   consumed and the result does not change; `size()` is the output length;
//! - against a reference decoder written here from RFC 5321 (end at the first CRLF.CRLF,
//!   counting the DATA line's CRLF; refuse bare CR/LF, long lines and large bodies; remove
//!   one leading dot per line): the same end, the same verdict, and the same body;
//! - an accepted body has no bare CR or LF, is empty or ends in CRLF, and is the un-stuffed
//!   form: `stuff(body)` received again gives the body back, ending exactly at its end.
//!
//! Not checked: the body of a refused message (the receiver only promises to stop producing
//! output once it knows of an error), and which error a message with several problems gets
//! (see `SAME_ERROR_WHEN_TOO_LARGE`).

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use smtp_proto::{DataError, DataLimits, DataReceiver, DataStatus, stuff};
use smtp_proto_fuzz::{Cuts, has_bare_line_end};

/// Whether whole and split feeding must report the same error when one of them is
/// `TooLarge`. Off: the receiver checks the size when it copies a run of text out, so a
/// message that is both too large and has a bare line end gets `TooLarge` or `BareLineFeed`
/// depending on where the reads were cut (see the fuzz README, "Findings").
const SAME_ERROR_WHEN_TOO_LARGE: bool = true;

#[derive(Debug, Arbitrary)]
struct Header {
    cuts: Cuts,
    /// Bit 0: small limits from the two fields below.
    small_limits: u8,
    max_size: u16,
    max_line: u16,
}

/// What feeding a message produced.
#[derive(Debug, PartialEq, Eq)]
struct Received {
    body: Vec<u8>,
    /// Octets used up to and including the terminator, and the result.
    end: Option<(usize, Result<(), DataError>)>,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(header) = Header::arbitrary(&mut u) else {
        return;
    };
    let input = u.take_rest();
    let limits = if header.small_limits & 1 == 1 {
        DataLimits {
            max_size: u64::from(header.max_size % 4096),
            max_line: usize::from(header.max_line % 1024),
        }
    } else {
        DataLimits::default()
    };

    let whole = receive(limits, &[input]);
    let split = receive(limits, &header.cuts.split_or_bytewise(input, 3));

    // Same end, same verdict.
    match (&whole.end, &split.end) {
        (None, None) => {}
        (Some((a, ra)), Some((b, rb))) => {
            assert_eq!(a, b, "consumed, whole vs split");
            assert_eq!(ra.is_ok(), rb.is_ok(), "{ra:?} vs {rb:?}");
            let too_large = [ra, rb].contains(&&Err(DataError::TooLarge));
            if SAME_ERROR_WHEN_TOO_LARGE || !too_large {
                assert_eq!(ra, rb, "result, whole vs split");
            }
        }
        _ => panic!("whole {:?} vs split {:?}", whole.end, split.end),
    }

    // The reference decoder.
    let reference = reference_decode(input, limits);
    assert_eq!(
        whole.end.map(|(n, r)| (n, r.is_ok())),
        reference.as_ref().map(|(n, body)| (*n, body.is_some())),
        "end and verdict vs the reference, limits {limits:?}"
    );

    if let Some((_, Ok(()))) = whole.end {
        let body = &whole.body;
        assert_eq!(body, &split.body, "accepted body, whole vs split");
        let expected = reference.and_then(|(_, body)| body).expect("checked above");
        assert_eq!(body, &expected, "body vs the reference");
        assert!(!has_bare_line_end(body), "bare CR or LF in {body:?}");
        assert!(body.is_empty() || body.ends_with(b"\r\n"));
        // Stuffing the body again and receiving that gives the body back.
        let wire = stuff(body);
        let again = receive(limits, &[&wire]);
        assert_eq!(again.end, Some((wire.len(), Ok(()))), "re-stuffed {wire:?}");
        assert_eq!(&again.body, body);
    }
});

/// Feeds the reads to one receiver, checking each call.
fn receive(limits: DataLimits, reads: &[&[u8]]) -> Received {
    let mut rx = DataReceiver::new(limits);
    let mut body = Vec::new();
    let mut offset = 0;
    for read in reads {
        let before = body.len();
        match rx.feed(read, &mut body) {
            DataStatus::Incomplete => offset += read.len(),
            DataStatus::Complete { consumed, result } => {
                assert!(
                    consumed <= read.len(),
                    "consumed {consumed} of {}",
                    read.len()
                );
                assert!(consumed > 0, "the terminator's LF is in this read");
                assert!(read[..consumed].ends_with(b"\n"));
                assert_eq!(rx.size(), body.len() as u64);
                // Done: nothing more is consumed or produced, the result stays.
                let len = body.len();
                let after = rx.feed(b".\r\nQUIT\r\n", &mut body);
                assert_eq!(
                    after,
                    DataStatus::Complete {
                        consumed: 0,
                        result
                    }
                );
                assert_eq!(body.len(), len);
                return Received {
                    body,
                    end: Some((offset + consumed, result)),
                };
            }
        }
        assert!(body.len() >= before);
        assert_eq!(rx.size(), body.len() as u64);
    }
    Received { body, end: None }
}

/// A plain reading of RFC 5321 4.1.1.4 and 4.5.2 plus our limits: the data ends at the first
/// CRLF.CRLF (the DATA line's CRLF counts); the content before the final ".CRLF" is lines
/// ending in CRLF. Returns the octets used and the body, or `None` for a refused body.
fn reference_decode(input: &[u8], limits: DataLimits) -> Option<(usize, Option<Vec<u8>>)> {
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(input);
    let at = framed.windows(5).position(|w| w == b"\r\n.\r\n")?;
    // `framed[at..at + 5]` is CRLF.CRLF: the content is input[..at] (the DATA line's CRLF
    // when `at` is 0, else ending with the CRLF at input[at - 2..at]).
    let consumed = at + 3;
    let content = &input[..at];
    if has_bare_line_end(content) {
        return Some((consumed, None));
    }
    let mut body = Vec::new();
    let mut rest = content;
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("no bare line ends, and the content ends with CRLF");
        let line = &rest[..end];
        if line.len() + 2 > limits.max_line {
            return Some((consumed, None));
        }
        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        body.extend_from_slice(b"\r\n");
        rest = &rest[end + 2..];
    }
    if body.len() as u64 > limits.max_size {
        return Some((consumed, None));
    }
    Some((consumed, Some(body)))
}
