//! `smtp_proto::header::fields` and `remove_fields` on arbitrary messages: how the server
//! finds and strips its `X-MTA-*` control headers from what a client sent.
//!
//! Checked:
//! - the fields are contiguous from 0 and cover exactly the header section, which a
//!   line-by-line reference finds to end at the same place; each field is a line plus the
//!   continuation lines after it; colons and names are where the reference says;
//! - `remove_fields` (from a fuzzer-chosen start) returns the named fields in order and
//!   leaves the message minus exactly those fields: the part before `start` and the body are
//!   untouched, and a second pass finds nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use smtp_proto::header::{fields, remove_fields};

const NAMES: [&str; 3] = ["X-MTA-Tenant", "X-MTA-Pool", "a"];

/// Lines of `message`, each with its LF (the last may lack one).
fn lines(message: &[u8]) -> Vec<&[u8]> {
    message.split_inclusive(|&b| b == b'\n').collect()
}

/// Reference: (field ranges, section end), from whole lines.
fn reference(message: &[u8]) -> (Vec<std::ops::Range<usize>>, usize) {
    let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
    let mut pos = 0;
    for line in lines(message) {
        if line == b"\r\n" || line == b"\n" {
            return (ranges, pos);
        }
        let continues = matches!(line[0], b' ' | b'\t');
        match ranges.last_mut() {
            Some(last) if continues => last.end = pos + line.len(),
            _ => ranges.push(pos..pos + line.len()),
        }
        pos += line.len();
    }
    (ranges, pos)
}

fuzz_target!(|data: &[u8]| {
    let (start_byte, message) = match data.split_first() {
        Some((&b, rest)) => (b as usize, rest),
        None => (0, data),
    };
    let (want, want_end) = reference(message);
    let mut iter = fields(message);
    let got: Vec<_> = iter.by_ref().collect();
    assert_eq!(
        got.iter().map(|f| f.range.clone()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(iter.section_end(), want_end);
    for field in &got {
        let text = &message[field.range.clone()];
        assert_eq!(
            field.colon.map(|c| c - field.range.start),
            text.iter().position(|&b| b == b':')
        );
    }

    // Remove from a start that is a field boundary (as the server's is, after Received:).
    let boundaries: Vec<usize> = std::iter::once(0)
        .chain(got.iter().map(|f| f.range.end))
        .collect();
    let start = boundaries[start_byte % boundaries.len()];
    let section = &message[start..];
    let expected: Vec<_> = fields(section)
        .filter(|f| {
            f.name(section)
                .is_some_and(|n| NAMES.iter().any(|w| w.as_bytes().eq_ignore_ascii_case(n)))
        })
        .collect();
    let mut kept = message[..start].to_vec();
    let mut from = 0;
    for f in &expected {
        kept.extend_from_slice(&section[from..f.range.start]);
        from = f.range.end;
    }
    kept.extend_from_slice(&section[from..]);

    let mut edited = message.to_vec();
    let found = remove_fields(&mut edited, start, &NAMES);
    assert_eq!(edited, kept);
    assert_eq!(found.len(), expected.len());
    for ((index, value), field) in found.iter().zip(&expected) {
        let name = field.name(section).expect("named");
        assert!(NAMES[*index].as_bytes().eq_ignore_ascii_case(name));
        assert_eq!(Some(value), field.value(section).as_ref());
        assert!(!value.contains(['\r', '\n']));
    }
    assert!(remove_fields(&mut edited, start, &NAMES).is_empty());
    assert_eq!(edited, kept);
});
