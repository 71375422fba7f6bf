//! Accepted messages kept for the test to inspect, and waiting for them to arrive.
//!
//! Invariants: a message is counted (and, when recording, stored) before its `250` is
//! written, so a client that has read its `250` always finds the message here; at most
//! `record_limit` messages are stored, later ones are only counted.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use smtp_proto::MailParams;
use tokio::sync::watch;
use tokio::time::Instant;

/// One accepted message, as the sink received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The client's address and port.
    pub client: SocketAddr,
    /// The HELO/EHLO argument of the session.
    pub helo: String,
    /// The reverse-path without angle brackets; empty for the null sender `<>`.
    pub mail_from: String,
    /// The MAIL parameters.
    pub mail_params: MailParams<'static>,
    /// The accepted recipients, in RCPT order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The body exactly as received, after dot un-stuffing (DATA) or as sent (BDAT).
    pub body: Vec<u8>,
    /// The message arrived after STARTTLS.
    pub tls: bool,
    /// The message arrived with BDAT rather than DATA.
    pub bdat: bool,
    /// When the end of data was read.
    pub received_at: Instant,
}

/// The accepted-message count (always) and the messages (when recording).
#[derive(Debug)]
pub(crate) struct MessageLog {
    limit: Option<usize>,
    messages: Mutex<Vec<ReceivedMessage>>,
    accepted: watch::Sender<u64>,
}

impl MessageLog {
    /// A log keeping up to `limit` messages, or none.
    pub(crate) fn new(limit: Option<usize>) -> MessageLog {
        MessageLog {
            limit,
            messages: Mutex::new(Vec::new()),
            accepted: watch::Sender::new(0),
        }
    }

    /// True if messages are stored.
    pub(crate) fn is_recording(&self) -> bool {
        self.limit.is_some()
    }

    /// Counts an accepted message; stores it if recording. `message` is only called then.
    pub(crate) fn accept(&self, message: impl FnOnce() -> ReceivedMessage) {
        if let Some(limit) = self.limit {
            let mut messages = self.messages.lock().unwrap_or_else(|e| e.into_inner());
            if messages.len() < limit {
                messages.push(message());
            }
        }
        self.accepted.send_modify(|n| *n += 1);
    }

    pub(crate) fn accepted(&self) -> u64 {
        *self.accepted.borrow()
    }

    pub(crate) fn messages(&self) -> Vec<ReceivedMessage> {
        self.messages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn take(&self) -> Vec<ReceivedMessage> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits until at least `n` messages have been accepted, for at most `timeout`.
    /// Returns the count reached, `Err` with the count so far on timeout.
    pub(crate) async fn wait_for(&self, n: u64, timeout: Duration) -> Result<u64, u64> {
        let mut rx = self.accepted.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|&count| count >= n)).await;
        match reached {
            Ok(Ok(count)) => Ok(*count),
            // The sender lives as long as `self`; treat its loss like a timeout.
            Ok(Err(_)) | Err(_) => Err(self.accepted()),
        }
    }
}
