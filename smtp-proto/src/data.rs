//! The DATA receiver: finds the end of message data, removes dot-stuffing, and refuses bare
//! CR and bare LF (SMTP smuggling defence).
//!
//! Invariants:
//! - Data ends only at `CRLF.CRLF` (the CRLF of the DATA command line counts for a message
//!   whose first line is the lone dot). `\n.\n`, `\n.\r\n`, `\r\n.\n`, `\r.\r` and the like
//!   never end it: they are bare line ends inside the body, an error reported when the real
//!   end arrives, so the session stays in step with the client and the smuggled command that
//!   follows is read as message text, never as a command.
//! - The output is the body as it will be stored: CRLF line ends, un-stuffed, ending in CRLF
//!   unless it is empty. Once an error is known no more output is produced.
//! - The result does not depend on how the input was cut into reads: when a body has several
//!   faults, the one reported is, in this order, a bare LF, a bare CR, a line too long, a body
//!   too large.
//! - Every input octet is looked at once; runs of ordinary text are found with `memchr2` and
//!   copied in one piece.

use memchr::memchr2;

use crate::error::DataError;
use crate::limits::MAX_TEXT_LINE;

/// Limits applied while receiving a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLimits {
    /// Largest body, in octets after un-stuffing.
    pub max_size: u64,
    /// Longest line on the wire, CRLF included.
    pub max_line: usize,
}

impl Default for DataLimits {
    fn default() -> Self {
        DataLimits {
            max_size: u64::MAX,
            max_line: MAX_TEXT_LINE,
        }
    }
}

/// Checks message text that arrived without DATA framing (BDAT chunks) by the rules
/// [`DataReceiver`] applies to DATA: no bare LF, no bare CR, no line longer than `max_line`
/// octets with its CRLF (an unterminated last line is measured as if it had one). Errors
/// by the same precedence as the receiver's verdict: bare LF, then bare CR, then length.
pub fn check_text(text: &[u8], max_line: usize) -> Result<(), DataError> {
    let (mut bare_lf, mut bare_cr, mut too_long) = (false, false, false);
    for line in text.split_inclusive(|&b| b == b'\n') {
        let content = match line.strip_suffix(b"\r\n") {
            Some(content) => content,
            None => match line.strip_suffix(b"\n") {
                Some(content) => {
                    bare_lf = true;
                    content
                }
                None => line,
            },
        };
        bare_cr |= content.contains(&b'\r');
        too_long |= content.len() + 2 > max_line;
    }
    if bare_lf {
        Err(DataError::BareLineFeed)
    } else if bare_cr {
        Err(DataError::BareCarriageReturn)
    } else if too_long {
        Err(DataError::LineTooLong)
    } else {
        Ok(())
    }
}

/// What [`DataReceiver::feed`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStatus {
    /// The end of data is not in the input yet; all of the input was used.
    Incomplete,
    /// The end of data was found after `consumed` octets of the input (the rest belongs to
    /// the next command). `result` says whether the body is acceptable.
    Complete {
        /// Octets of this input that belonged to the message data, terminator included.
        consumed: usize,
        /// `Ok` when the body may be queued, or the first error seen.
        result: Result<(), DataError>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line (after CRLF, or at the very start of the data).
    LineStart,
    /// Inside a line.
    Text,
    /// After a CR inside a line.
    Cr,
    /// After a dot at the start of a line.
    Dot,
    /// After a dot and a CR at the start of a line: a LF now ends the data.
    DotCr,
    /// The end of data has been seen.
    Done,
}

/// Incremental receiver of DATA content (sans-IO). One per message.
#[derive(Debug, Clone)]
pub struct DataReceiver {
    limits: DataLimits,
    state: State,
    /// Octets of output produced so far.
    size: u64,
    /// Octets of body seen so far, produced or not (decides `TooLarge`).
    seen: u64,
    /// Wire octets of the current line so far.
    line_len: usize,
    bare_lf: bool,
    bare_cr: bool,
    line_too_long: bool,
}

impl DataReceiver {
    /// A receiver for one message body.
    pub fn new(limits: DataLimits) -> Self {
        DataReceiver {
            limits,
            state: State::LineStart,
            size: 0,
            seen: 0,
            line_len: 0,
            bare_lf: false,
            bare_cr: false,
            line_too_long: false,
        }
    }

    /// The body size produced so far, in octets.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Consumes `input`, appending body octets to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataStatus {
        let n = input.len();
        if self.state == State::Done {
            return DataStatus::Complete {
                consumed: 0,
                result: self.result(),
            };
        }
        if n == 0 {
            return DataStatus::Incomplete;
        }
        let mut i = 0;
        // Start of the run of input not yet copied to `out`.
        let mut run = 0;
        while i < n {
            match self.state {
                State::Text => match memchr2(b'\r', b'\n', &input[i..]) {
                    None => {
                        self.line_len += n - i;
                        i = n;
                    }
                    Some(k) => {
                        self.line_len += k + 1;
                        i += k + 1;
                        if input[i - 1] == b'\n' {
                            self.bare_lf = true;
                            self.line_len = 0;
                        } else if i < n && input[i] == b'\n' {
                            // CRLF: the common case, handled without a state change.
                            i += 1;
                            self.end_line();
                            // At the end of the input the next line's first octet is
                            // unknown: it may be a dot.
                            if i == n || input[i] == b'.' {
                                self.state = State::LineStart;
                            }
                        } else {
                            self.state = State::Cr;
                        }
                    }
                },
                State::Cr => {
                    if input[i] == b'\n' {
                        i += 1;
                        self.end_line();
                        self.state = State::LineStart;
                    } else {
                        self.bare_cr = true;
                        self.state = State::Text;
                    }
                }
                State::LineStart => {
                    if input[i] == b'.' {
                        // Copy up to the dot and leave the dot out.
                        self.emit(&input[run..i], out);
                        i += 1;
                        run = i;
                        self.line_len = 1;
                        self.state = State::Dot;
                    } else {
                        self.state = State::Text;
                    }
                }
                State::Dot => match input[i] {
                    b'\r' => {
                        i += 1;
                        self.line_len += 1;
                        self.state = State::DotCr;
                    }
                    b'\n' => {
                        self.bare_lf = true;
                        i += 1;
                        self.line_len = 0;
                        self.state = State::Text;
                    }
                    // A stuffed dot: the line goes on from here (a second dot is kept).
                    _ => self.state = State::Text,
                },
                State::DotCr => {
                    if input[i] == b'\n' {
                        // CRLF.CRLF: the end. The pending run holds only the CR after the dot.
                        self.state = State::Done;
                        return DataStatus::Complete {
                            consumed: i + 1,
                            result: self.result(),
                        };
                    }
                    self.bare_cr = true;
                    self.state = State::Text;
                }
                State::Done => unreachable!("returned when the end was found"),
            }
        }
        // A CR right after a line-start dot may be the start of the terminator: hold it back.
        let end = if self.state == State::DotCr { n - 1 } else { n };
        if run < end {
            self.emit(&input[run..end], out);
        }
        DataStatus::Incomplete
    }

    /// The verdict, by fixed precedence (independent of how the input was cut).
    fn result(&self) -> Result<(), DataError> {
        if self.bare_lf {
            Err(DataError::BareLineFeed)
        } else if self.bare_cr {
            Err(DataError::BareCarriageReturn)
        } else if self.line_too_long {
            Err(DataError::LineTooLong)
        } else if self.seen > self.limits.max_size {
            Err(DataError::TooLarge)
        } else {
            Ok(())
        }
    }

    #[inline]
    fn failed(&self) -> bool {
        self.bare_lf || self.bare_cr || self.line_too_long || self.seen > self.limits.max_size
    }

    #[inline]
    fn end_line(&mut self) {
        if self.line_len + 1 > self.limits.max_line {
            self.line_too_long = true;
        }
        self.line_len = 0;
    }

    #[inline]
    fn emit(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.seen += bytes.len() as u64;
        if self.failed() {
            return;
        }
        self.size += bytes.len() as u64;
        out.extend_from_slice(bytes);
    }
}
