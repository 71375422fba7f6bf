//! The SMTP wire layer of the MTA, sans-IO: bytes in, typed values (or "need more data") out.
//!
//! - [`CommandParser`] frames and parses pipelined command lines for a server
//!   ([`Command`], paths in [`address`], ESMTP parameters in [`params`]).
//! - [`ReplyParser`] parses server replies for a client; [`Capabilities`] reads and writes
//!   EHLO replies; [`write_reply`] renders a server reply.
//! - [`DataReceiver`] decodes DATA content (end at `CRLF.CRLF` only, dot un-stuffing, bare CR
//!   and LF refused); [`BdatReceiver`] reads BDAT chunks; [`DotStuffer`] encodes a body for DATA.
//! - [`header`] walks the header section of a received message and removes fields from it.
//!
//! Nothing here does I/O, spawns, sleeps or reads the clock. Limits are those of RFC 5321
//! section 4.5.3.1 ([`limits`]). Errors ([`error`]) are typed so the server can choose the reply
//! code of each.
//!
//! ```
//! use smtp_proto::{Command, CommandParser, Parsed};
//!
//! let mut parser = CommandParser::new();
//! let buf = b"MAIL FROM:<a@example.com> SIZE=100\r\nRCPT TO:<b@example.org>\r\nDA";
//! let mut pos = 0;
//! let mut verbs = Vec::new();
//! loop {
//!     match parser.parse(&buf[pos..]) {
//!         Parsed::Item(command, used) => {
//!             verbs.push(matches!(command, Command::Mail { .. }));
//!             pos += used;
//!         }
//!         Parsed::Invalid(error, used) => panic!("{error}"),
//!         Parsed::Incomplete(used) => {
//!             pos += used;
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(verbs, [true, false]);
//! assert_eq!(&buf[pos..], b"DA"); // the partial DATA line waits for more input
//! ```

pub mod address;
mod auth;
mod bdat;
mod command;
mod data;
mod ehlo;
pub mod error;
pub mod header;
pub mod limits;
pub mod params;
mod parser;
mod reply;
mod stuff;

#[cfg(test)]
mod tests;

pub use address::{ForwardPath, Host, Mailbox, ReversePath};
pub use auth::{AuthMechanisms, AuthResponse, Mechanism};
pub use bdat::BdatReceiver;
pub use command::{Command, parse_command};
pub use data::{DataLimits, DataReceiver, DataStatus, check_text};
pub use ehlo::{Capabilities, Extensions};
pub use error::{
    AddressError, CommandError, DataError, ParamError, ParamName, ReplyError, SyntaxError,
};
pub use limits::CommandLimits;
pub use params::{Body, MailFlags, MailParams, Notify, NotifyOn, Orcpt, RcptParams, Ret};
pub use parser::{CommandParser, Parsed};
pub use reply::{EnhancedCode, MAX_CLIENT_REPLY_LINE, Reply, ReplyCode, ReplyParser, write_reply};
pub use stuff::{DotStuffer, stuff};
