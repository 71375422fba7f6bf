//! Helpers shared by the fuzz targets: cutting an input into the chunks that reads would
//! deliver, and small, obviously-correct reference functions the targets compare the real
//! code against.
//!
//! Every structured target reads a fixed-size header (an `Arbitrary` struct made only of
//! fixed-size fields) from the front of the input and uses the rest as wire bytes, so a seed
//! file is "header octets, then a real SMTP exchange" (see `fuzz/README.md`).

use arbitrary::Arbitrary;

/// Where to cut an input into chunks. Cut points are taken modulo `len + 1`, so every value
/// is valid and empty chunks (a read that returned nothing new) happen too.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Cuts {
    /// First cut point.
    pub a: u16,
    /// Second cut point.
    pub b: u16,
    /// Third cut point.
    pub c: u16,
    /// Low two bits: how many cut points to use; bit 2: one octet per chunk instead.
    pub mode: u8,
}

impl Cuts {
    /// Size of the header this struct takes from the front of the input.
    pub const LEN: usize = 7;

    /// Splits `data` at one to `max_cuts` (at most 3) of the cut points, in order.
    pub fn split<'a>(&self, data: &'a [u8], max_cuts: usize) -> Vec<&'a [u8]> {
        let n = data.len();
        let count = 1 + usize::from(self.mode & 3) % max_cuts.clamp(1, 3);
        let mut cuts: Vec<usize> = [self.a, self.b, self.c][..count]
            .iter()
            .map(|&c| usize::from(c) % (n + 1))
            .collect();
        cuts.sort_unstable();
        let mut chunks = Vec::with_capacity(count + 1);
        let mut start = 0;
        for cut in cuts {
            chunks.push(&data[start..cut]);
            start = cut;
        }
        chunks.push(&data[start..]);
        chunks
    }

    /// Like [`Cuts::split`], but one octet per chunk when bit 2 of `mode` is set.
    pub fn split_or_bytewise<'a>(&self, data: &'a [u8], max_cuts: usize) -> Vec<&'a [u8]> {
        if self.mode & 4 != 0 {
            data.chunks(1).collect()
        } else {
            self.split(data, max_cuts)
        }
    }
}

/// True if `bytes` holds a CR not followed by LF or a LF not preceded by CR.
pub fn has_bare_line_end(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().any(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    })
}

/// True if `bytes` holds a LF not preceded by CR.
pub fn has_bare_lf(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'))
}

/// Every start index of `needle` in `haystack`, overlapping ones included.
pub fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

/// The body as a DATA receiver should store it after a sender stuffed it: every CRLF kept,
/// every other CR or LF turned into CRLF, and a final CRLF added to a non-empty body that
/// lacks one.
pub fn normalize_line_ends(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2);
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
            }
            b'\r' | b'\n' => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The body of a message with CRLF line ends: what follows its first empty line (or nothing,
/// when it has none).
pub fn dkim_body(message: &[u8]) -> &[u8] {
    if let Some(body) = message.strip_prefix(b"\r\n") {
        return body;
    }
    match find_all(message, b"\r\n\r\n").first() {
        Some(&at) => &message[at + 4..],
        None => &[],
    }
}

/// DKIM's relaxed body canonicalization (RFC 6376 section 3.4.4), written as the RFC reads,
/// for a body whose line ends are all CRLF: in each line, runs of SP and HTAB become one SP
/// and trailing ones go; empty lines at the end go; every remaining line ends in CRLF (so an
/// unterminated last line gets one, and an empty result stays empty).
pub fn dkim_relaxed_body(body: &[u8]) -> Vec<u8> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (line, next) = match find_all(rest, b"\r\n").first() {
            Some(&at) => (&rest[..at], &rest[at + 2..]),
            None => (rest, &rest[rest.len()..]),
        };
        let mut reduced = Vec::with_capacity(line.len());
        let mut in_space = false;
        for &b in line {
            if b == b' ' || b == b'\t' {
                in_space = true;
            } else {
                if in_space {
                    reduced.push(b' ');
                }
                in_space = false;
                reduced.push(b);
            }
        }
        lines.push(reduced);
        rest = next;
    }
    while lines.last().is_some_and(Vec::is_empty) {
        lines.pop();
    }
    let mut out = Vec::with_capacity(body.len() + 2);
    for line in lines {
        out.extend_from_slice(&line);
        out.extend_from_slice(b"\r\n");
    }
    out
}
