//! The DATA sender's encoder: dot-stuffing, line-end repair and the terminator.
//!
//! Invariant: the output never holds a bare CR or a bare LF. A bare LF or CR in the input
//! becomes CRLF; a line starting with a dot gets a second dot; [`DotStuffer::finish`] ends the
//! last line if needed and appends `.CRLF`. For a body with CRLF line ends (how the spool keeps
//! them), un-stuffing the output with [`crate::DataReceiver`] gives the body back unchanged.

use memchr::memchr2;

/// Incremental dot-stuffing encoder (sans-IO). One per message.
#[derive(Debug, Clone)]
pub struct DotStuffer {
    at_line_start: bool,
    /// The previous input ended with a CR whose LF may start the next input.
    pending_cr: bool,
}

impl Default for DotStuffer {
    fn default() -> Self {
        Self::new()
    }
}

impl DotStuffer {
    /// An encoder at the start of a message.
    pub fn new() -> Self {
        DotStuffer {
            at_line_start: true,
            pending_cr: false,
        }
    }

    /// Encodes the next piece of the body into `out`.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let n = input.len();
        if n == 0 {
            return;
        }
        out.reserve(n + n / 64 + 8);
        let mut i = 0;
        let mut run = 0;
        if self.pending_cr {
            self.pending_cr = false;
            out.extend_from_slice(b"\r\n");
            self.at_line_start = true;
            if input[0] == b'\n' {
                i = 1;
                run = 1;
            }
        }
        while i < n {
            if self.at_line_start {
                self.at_line_start = false;
                if input[i] == b'.' {
                    // Emit an extra dot; the original one stays in the run.
                    out.extend_from_slice(&input[run..i]);
                    out.push(b'.');
                    run = i;
                }
            }
            let Some(k) = memchr2(b'\r', b'\n', &input[i..]) else {
                break;
            };
            let p = i + k;
            if input[p] == b'\r' && p + 1 < n && input[p + 1] == b'\n' {
                i = p + 2;
            } else if input[p] == b'\r' && p + 1 == n {
                // A CR at the end of this input: decide when the next byte is known.
                out.extend_from_slice(&input[run..p]);
                self.pending_cr = true;
                return;
            } else {
                // A bare CR or a bare LF: write a proper line end instead.
                out.extend_from_slice(&input[run..p]);
                out.extend_from_slice(b"\r\n");
                i = p + 1;
                run = i;
            }
            self.at_line_start = true;
        }
        out.extend_from_slice(&input[run..]);
    }

    /// Ends the message: closes an unterminated last line and appends `.CRLF`.
    pub fn finish(self, out: &mut Vec<u8>) {
        if self.pending_cr || !self.at_line_start {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
    }
}

/// Stuffs a whole body at once: the bytes to send after a 354 reply, terminator included.
pub fn stuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut stuffer = DotStuffer::new();
    stuffer.encode(body, &mut out);
    stuffer.finish(&mut out);
    out
}
