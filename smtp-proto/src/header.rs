//! The header section of a received message (RFC 5322 section 2.2): its fields, for a server
//! that reads or removes some of them between the end of DATA and the spool.
//!
//! A field is a line and the continuation lines after it (lines that start with SP or HTAB);
//! the section ends at the first empty line (`CRLF`, or a lone `LF`) or at the end of the
//! input. Lines end at LF; the CR before it, if any, belongs to the line.
//!
//! Invariants:
//! - [`fields`] yields contiguous ranges that start at 0 and together cover exactly the
//!   header section ([`Fields::section_end`] once exhausted); each ends after an LF or at the
//!   end of the input; only the first may start with white space (a continuation with no
//!   field before it).
//! - A field's name is the octets before its first colon, as written (no trimming: `Name :`
//!   is not `Name`); a field without a colon has no name.
//! - [`remove_fields`] removes exactly the named fields of the header section, with their
//!   line ends, and nothing else; the body is never read.

use std::ops::Range;

use memchr::memchr;

/// One header field: where it is in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The whole field: its first line, continuation lines and their line ends.
    pub range: Range<usize>,
    /// The position of the first colon, if the field has one.
    pub colon: Option<usize>,
}

impl Field {
    /// The name (the octets before the first colon), if the field has a colon.
    pub fn name<'m>(&self, message: &'m [u8]) -> Option<&'m [u8]> {
        self.colon.map(|colon| &message[self.range.start..colon])
    }

    /// The value as written: after the colon, with its folding and final line end.
    pub fn raw_value<'m>(&self, message: &'m [u8]) -> Option<&'m [u8]> {
        self.colon.map(|colon| &message[colon + 1..self.range.end])
    }

    /// The value unfolded (CR and LF dropped) and trimmed of surrounding white space;
    /// invalid UTF-8 is replaced.
    pub fn value(&self, message: &[u8]) -> Option<String> {
        let raw = self.raw_value(message)?;
        let unfolded: Vec<u8> = raw
            .iter()
            .copied()
            .filter(|&b| b != b'\r' && b != b'\n')
            .collect();
        Some(String::from_utf8_lossy(&unfolded).trim().to_owned())
    }
}

/// The fields of the header section at the start of `message`.
pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields {
        message,
        pos: 0,
        done: false,
    }
}

/// Iterator over the fields of a header section; see [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'m> {
    message: &'m [u8],
    pos: usize,
    done: bool,
}

impl Fields<'_> {
    /// Where the header section ends (the start of the empty line, or the end of the
    /// input): meaningful once the iterator has returned `None`.
    pub fn section_end(&self) -> usize {
        self.pos
    }

    fn line_end(&self, from: usize) -> usize {
        memchr(b'\n', &self.message[from..]).map_or(self.message.len(), |i| from + i + 1)
    }
}

impl Iterator for Fields<'_> {
    type Item = Field;

    fn next(&mut self) -> Option<Field> {
        let message = self.message;
        if self.done || self.pos >= message.len() {
            self.done = true;
            return None;
        }
        let start = self.pos;
        let first_end = self.line_end(start);
        let line = &message[start..first_end];
        if line == b"\r\n" || line == b"\n" {
            self.done = true;
            return None;
        }
        let mut end = first_end;
        while end < message.len() && matches!(message[end], b' ' | b'\t') {
            end = self.line_end(end);
        }
        self.pos = end;
        let colon = memchr(b':', &message[start..end]).map(|i| start + i);
        Some(Field {
            range: start..end,
            colon,
        })
    }
}

/// Removes from the header section of `message[start..]` every field whose name is one of
/// `names` (compared without ASCII case) and returns them in message order, as
/// `(index in names, value)` with the value as [`Field::value`] gives it. One pass of moves.
pub fn remove_fields(message: &mut Vec<u8>, start: usize, names: &[&str]) -> Vec<(usize, String)> {
    let section = &message[start..];
    let mut found = Vec::new();
    let mut ranges: Vec<Range<usize>> = Vec::new();
    for field in fields(section) {
        let Some(name) = field.name(section) else {
            continue;
        };
        if let Some(index) = names
            .iter()
            .position(|n| n.as_bytes().eq_ignore_ascii_case(name))
        {
            found.push((index, field.value(section).unwrap_or_default()));
            ranges.push(start + field.range.start..start + field.range.end);
        }
    }
    remove_ranges(message, &ranges);
    found
}

/// Removes the sorted, disjoint `ranges` from `bytes` with one pass of moves.
fn remove_ranges(bytes: &mut Vec<u8>, ranges: &[Range<usize>]) {
    let Some(first) = ranges.first() else {
        return;
    };
    let mut write = first.start;
    for (i, range) in ranges.iter().enumerate() {
        let next = ranges.get(i + 1).map_or(bytes.len(), |r| r.start);
        bytes.copy_within(range.end..next, write);
        write += next - range.end;
    }
    bytes.truncate(write);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(message: &[u8]) -> Vec<String> {
        fields(message)
            .map(|f| String::from_utf8_lossy(f.name(message).unwrap_or(b"-")).into_owned())
            .collect()
    }

    #[test]
    fn fields_fold_and_stop_at_the_empty_line() {
        let message = b"From: a@example.com\r\nSubject: one\r\n two\r\n\tthree\r\nNo colon\r\nX: y\r\n\r\nBody: not a field\r\n";
        assert_eq!(names(message), ["From", "Subject", "-", "X"]);
        let subject = fields(message).nth(1).unwrap();
        assert_eq!(subject.value(message).as_deref(), Some("one two\tthree"));
        let mut iter = fields(message);
        iter.by_ref().for_each(drop);
        assert_eq!(
            &message[iter.section_end()..iter.section_end() + 2],
            b"\r\n"
        );
    }

    #[test]
    fn sections_without_an_empty_line_and_odd_starts() {
        let table: [(&[u8], &[&str], usize); 6] = [
            (b"", &[], 0),
            (b"\r\nBody: x\r\n", &[], 0),
            (b"\nBody\n", &[], 0),
            (b"A: 1\r\nB: 2", &["A", "B"], 10),
            (b" leading: white\r\nA: 1\r\n\r\n", &[" leading", "A"], 23),
            (b"A: 1\n\nB: 2\n", &["A"], 5),
        ];
        for (message, want, end) in table {
            let mut iter = fields(message);
            let got: Vec<String> = iter
                .by_ref()
                .map(|f| String::from_utf8_lossy(f.name(message).unwrap()).into_owned())
                .collect();
            assert_eq!(got, want, "{message:?}");
            assert_eq!(iter.section_end(), end, "{message:?}");
        }
    }

    #[test]
    fn remove_fields_takes_exactly_the_named_ones() {
        let mut message = b"Received: by us\r\nx-mta-tenant: acme\r\nSubject: hi\r\nX-MTA-Pool:\r\n  bulk\r\nX-MTA-Tenant : spaced\r\n\r\nX-MTA-Tenant: body\r\n".to_vec();
        let found = remove_fields(&mut message, 17, &["X-MTA-Tenant", "X-MTA-Pool"]);
        assert_eq!(found, [(0, "acme".to_owned()), (1, "bulk".to_owned())]);
        assert_eq!(
            message,
            b"Received: by us\r\nSubject: hi\r\nX-MTA-Tenant : spaced\r\n\r\nX-MTA-Tenant: body\r\n"
        );
        let before = message.clone();
        assert!(remove_fields(&mut message, 0, &["X-Absent"]).is_empty());
        assert_eq!(message, before);
    }
}
