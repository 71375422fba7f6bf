//! The outbound SMTP client: one connection to a receiving server, many messages over it.
//!
//! `connection` opens a session (connect from a chosen source address, greeting, EHLO,
//! opportunistic or required STARTTLS); `transaction` sends one message with pipelining
//! (MAIL, every RCPT and DATA in one write when the server offers PIPELINING; BDAT when it
//! offers CHUNKING) and returns a reply per recipient; `tls` builds the client TLS
//! configuration. Every wait has the timeout RFC 5321 4.5.3.2 gives it.

mod connection;
mod error;
mod reply;
mod tls;
mod transaction;

pub use connection::{ConnectParams, Connection, TlsMode};
pub use error::{ClientError, Stage};
pub use reply::SmtpReply;
pub use transaction::{OutgoingMessage, OutgoingRecipient, TransactionOutcome};

use std::time::Duration;

/// Client timeouts (RFC 5321 4.5.3.2 gives the minimums in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// TCP connect.
    pub connect: Duration,
    /// The 220 greeting (5 minutes).
    pub greeting: Duration,
    /// EHLO, MAIL, RCPT, RSET, STARTTLS, QUIT replies (5 minutes).
    pub command: Duration,
    /// The 354 reply to DATA (2 minutes).
    pub data_start: Duration,
    /// Each write of message data (3 minutes).
    pub data_block: Duration,
    /// The reply after the end of data (10 minutes).
    pub data_end: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts {
            connect: Duration::from_secs(30),
            greeting: Duration::from_secs(300),
            command: Duration::from_secs(300),
            data_start: Duration::from_secs(120),
            data_block: Duration::from_secs(180),
            data_end: Duration::from_secs(600),
        }
    }
}
