//! `DotStuffer` over any body fed in chunks cut anywhere (or one octet at a time), then
//! `DataReceiver` over its output.
//!
//! Checked:
//! - the output equals `stuff(body)` whatever the chunks;
//! - the output has no bare CR or LF, and the only CRLF.CRLF in `CRLF + output` (the CRLF of
//!   the DATA line counts) is at its very end, so no body can end DATA early or smuggle a
//!   command;
//! - `DataReceiver` (no limits) fed the output, whole and in the same chunks, completes
//!   exactly at its end with `Ok` and gives the body with every bare CR or LF turned into
//!   CRLF and a final CRLF added to a non-empty body that lacks one;
//! - `check_text` refuses the body exactly when it has a bare CR or LF (a bare LF first),
//!   and passes the normalized body.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use smtp_proto::error::DataError;
use smtp_proto::{DataLimits, DataReceiver, DataStatus, DotStuffer, check_text, stuff};
use smtp_proto_fuzz::{Cuts, find_all, has_bare_lf, has_bare_line_end, normalize_line_ends};

#[derive(Debug, Arbitrary)]
struct Header {
    cuts: Cuts,
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(header) = Header::arbitrary(&mut u) else {
        return;
    };
    let body = u.take_rest();

    let mut stuffer = DotStuffer::new();
    let mut wire = Vec::new();
    for chunk in header.cuts.split_or_bytewise(body, 3) {
        stuffer.encode(chunk, &mut wire);
    }
    stuffer.finish(&mut wire);
    assert_eq!(wire, stuff(body), "chunked vs whole stuffing");

    assert!(!has_bare_line_end(&wire), "bare CR or LF in {wire:?}");
    let mut framed = b"\r\n".to_vec();
    framed.extend_from_slice(&wire);
    assert_eq!(
        find_all(&framed, b"\r\n.\r\n"),
        [framed.len() - 5],
        "CRLF.CRLF only at the end of CRLF + {wire:?}"
    );

    let expected = normalize_line_ends(body);
    let unlimited = DataLimits {
        max_size: u64::MAX,
        max_line: usize::MAX,
    };
    for reads in [vec![&wire[..]], header.cuts.split_or_bytewise(&wire, 3)] {
        let mut rx = DataReceiver::new(unlimited);
        let mut out = Vec::new();
        let mut offset = 0;
        let mut end = None;
        for read in reads {
            match rx.feed(read, &mut out) {
                DataStatus::Incomplete => offset += read.len(),
                DataStatus::Complete { consumed, result } => {
                    end = Some((offset + consumed, result));
                    break;
                }
            }
        }
        assert_eq!(end, Some((wire.len(), Ok(()))), "receiving {wire:?}");
        assert_eq!(out, expected, "received body vs normalized input");
    }

    // check_text (BDAT's rules) on the raw body: refused exactly for bare line ends, bare LF
    // first; the normalized body always passes.
    let verdict = check_text(body, usize::MAX);
    assert_eq!(verdict.is_ok(), !has_bare_line_end(body), "{body:?}");
    assert_eq!(
        verdict == Err(DataError::BareLineFeed),
        has_bare_lf(body),
        "{body:?}"
    );
    assert_eq!(check_text(&expected, usize::MAX), Ok(()));
});
