//! Size limits of the SMTP wire layer, named in one place.
//!
//! The defaults are those of RFC 5321 section 4.5.3.1, widened only where a later RFC widens
//! them (RFC 3461 lets DSN parameters lengthen MAIL and RCPT; RFC 4954 lets AUTH lines reach
//! 12,288 octets). Every length here counts the terminating CRLF unless its doc says otherwise.

/// Longest local part of a mailbox, in octets (RFC 5321 4.5.3.1.1).
pub const MAX_LOCAL_PART: usize = 64;
/// Longest domain, in octets (RFC 5321 4.5.3.1.2).
pub const MAX_DOMAIN: usize = 255;
/// Longest path including the angle brackets, in octets (RFC 5321 4.5.3.1.3).
pub const MAX_PATH: usize = 256;
/// Longest command line including CRLF (RFC 5321 4.5.3.1.4).
pub const MAX_COMMAND_LINE: usize = 512;
/// Longest MAIL or RCPT line including CRLF once ESMTP parameters are counted: 512 plus the 500
/// octets RFC 3461 section 4 allows for ORCPT/ENVID, plus room for the other parameters.
pub const MAX_PARAMETER_COMMAND_LINE: usize = 1536;
/// Longest AUTH command or SASL response line including CRLF (RFC 4954 section 4).
pub const MAX_AUTH_LINE: usize = 12_288;
/// Longest reply line including CRLF (RFC 5321 4.5.3.1.5).
pub const MAX_REPLY_LINE: usize = 512;
/// Longest text line of a message including CRLF (RFC 5321 4.5.3.1.6).
pub const MAX_TEXT_LINE: usize = 1000;
/// Longest multi-line reply we buffer, all lines together. Far above any real EHLO reply;
/// it only stops a hostile server from growing our buffer without end.
pub const MAX_REPLY: usize = 64 * 1024;

/// Per-parser limits for a command parser. Defaults are the RFC limits above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandLimits {
    /// Longest line for commands without parameters (HELO, DATA, ...), CRLF included.
    pub command_line: usize,
    /// Longest MAIL or RCPT line (these carry ESMTP parameters), CRLF included.
    pub parameter_line: usize,
    /// Longest AUTH line or SASL response line, CRLF included.
    pub auth_line: usize,
}

impl Default for CommandLimits {
    fn default() -> Self {
        CommandLimits {
            command_line: MAX_COMMAND_LINE,
            parameter_line: MAX_PARAMETER_COMMAND_LINE,
            auth_line: MAX_AUTH_LINE,
        }
    }
}

impl CommandLimits {
    /// The longest line any command may have: beyond this a line is too long whatever it is.
    pub fn longest(&self) -> usize {
        self.command_line
            .max(self.parameter_line)
            .max(self.auth_line)
    }
}
