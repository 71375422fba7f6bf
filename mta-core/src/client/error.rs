//! Why a client session failed. Every variant is transient for the messages involved (the
//! delivery engine retries them), except where a reply says otherwise.

use std::net::SocketAddr;

use super::reply::SmtpReply;

/// Where in the session something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// TCP connect.
    Connect,
    /// Waiting for the greeting.
    Greeting,
    /// EHLO/HELO.
    Ehlo,
    /// STARTTLS and the handshake.
    StartTls,
    /// MAIL, RCPT, DATA/BDAT.
    Transaction,
    /// Sending message data or waiting for its reply.
    Data,
    /// QUIT.
    Quit,
}

/// A failed client operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The socket failed (connect refused, reset, ...).
    #[error("{stage:?} with {addr}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// Where.
        stage: Stage,
        /// The error.
        source: std::io::Error,
    },
    /// No reply in time.
    #[error("{stage:?} with {addr}: timeout")]
    Timeout {
        /// The server.
        addr: SocketAddr,
        /// Where.
        stage: Stage,
    },
    /// The server closed the connection.
    #[error("{stage:?} with {addr}: connection closed by the server")]
    Closed {
        /// The server.
        addr: SocketAddr,
        /// Where.
        stage: Stage,
    },
    /// The server does not speak SMTP (a malformed reply).
    #[error("{stage:?} with {addr}: malformed reply: {source}")]
    Protocol {
        /// The server.
        addr: SocketAddr,
        /// Where.
        stage: Stage,
        /// What was wrong.
        source: smtp_proto::ReplyError,
    },
    /// The server refused the session (greeting, EHLO/HELO, or STARTTLS replied with an error).
    #[error("{stage:?} with {addr}: {reply}")]
    Refused {
        /// The server.
        addr: SocketAddr,
        /// Where.
        stage: Stage,
        /// Its reply.
        reply: SmtpReply,
    },
    /// TLS is required for this destination and the server does not offer it, or the
    /// handshake failed.
    #[error("TLS with {addr}: {reason}")]
    Tls {
        /// The server.
        addr: SocketAddr,
        /// Why.
        reason: String,
    },
}

impl ClientError {
    /// The server's reply, when the failure is one.
    pub fn reply(&self) -> Option<&SmtpReply> {
        match self {
            ClientError::Refused { reply, .. } => Some(reply),
            _ => None,
        }
    }

    /// True when trying the next MX host makes sense (nothing was delivered or refused
    /// permanently: connection problems and 4xx at greeting/EHLO).
    pub fn try_next_host(&self) -> bool {
        match self {
            ClientError::Refused { reply, stage, .. } => {
                reply.is_transient() || matches!(stage, Stage::Greeting | Stage::Ehlo)
            }
            _ => true,
        }
    }

    /// A reply describing this failure for logs and DSNs (`4.4.1` no answer, `4.4.2` bad
    /// connection, `4.7.5`/`4.7.0` TLS, or the server's own reply).
    pub fn as_reply(&self) -> SmtpReply {
        match self {
            ClientError::Refused { reply, .. } => reply.clone(),
            ClientError::Io {
                stage: Stage::Connect,
                source,
                ..
            } => SmtpReply::local(421, (4, 4, 1), format!("connection failed: {source}")),
            ClientError::Timeout {
                stage: Stage::Connect,
                ..
            } => SmtpReply::local(421, (4, 4, 1), "connection timed out"),
            ClientError::Tls { reason, .. } => {
                SmtpReply::local(421, (4, 7, 0), format!("TLS failed: {reason}"))
            }
            other => SmtpReply::local(421, (4, 4, 2), other.to_string()),
        }
    }
}
