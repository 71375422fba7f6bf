//! One mail transaction over an open connection: MAIL, RCPT for each recipient, then DATA or
//! BDAT, with a reply per recipient.
//!
//! Invariants: with PIPELINING, MAIL, every RCPT and (without CHUNKING) DATA go out in one
//! write and their replies are read in order; message data is sent only when at least one
//! recipient was accepted; a transaction that did not reach its final reply is closed with
//! RSET, so the connection can carry the next message; the body is sent exactly as stored
//! (dot-stuffed for DATA, raw for BDAT), never with a bare CR or LF.

use std::fmt::Write as _;

use queue::{BodyType, DsnRet, Notify};
use smtp_proto::{DotStuffer, Extensions};

use super::connection::Connection;
use super::error::{ClientError, Stage};
use super::reply::SmtpReply;

/// Octets written per data write, so each write has its own timeout.
const DATA_WRITE_CHUNK: usize = 256 * 1024;

/// A recipient of an outgoing message.
#[derive(Debug, Clone, Copy)]
pub struct OutgoingRecipient<'a> {
    /// The address, `local@domain`.
    pub address: &'a str,
    /// NOTIFY (sent when the server offers DSN).
    pub notify: Notify,
    /// ORCPT as received, `addr-type;xtext` (sent when the server offers DSN).
    pub orcpt: Option<&'a str>,
}

/// What to send.
#[derive(Debug, Clone)]
pub struct OutgoingMessage<'a> {
    /// The reverse-path without brackets; empty for the null sender.
    pub sender: &'a str,
    /// The recipients of this transaction.
    pub recipients: Vec<OutgoingRecipient<'a>>,
    /// The message as stored: CRLF line ends, not dot-stuffed.
    pub body: &'a [u8],
    /// BODY= of the original MAIL.
    pub body_type: BodyType,
    /// The message needs SMTPUTF8.
    pub smtputf8: bool,
    /// ENVID (xtext), sent when the server offers DSN.
    pub envid: Option<&'a str>,
    /// RET, sent when the server offers DSN.
    pub ret: Option<DsnRet>,
}

/// The replies of one transaction.
#[derive(Debug, Clone)]
pub struct TransactionOutcome {
    /// For each recipient, in order, the reply that decides its fate: the RCPT reply when
    /// that refused it, else the reply to the message data.
    pub recipients: Vec<SmtpReply>,
}

impl Connection {
    /// Sends one message. `Ok` carries a reply per recipient (some may be failures); `Err`
    /// means the session broke before every recipient had a final reply, and none of them
    /// can be counted as delivered.
    pub async fn send(
        &mut self,
        message: &OutgoingMessage<'_>,
    ) -> Result<TransactionOutcome, ClientError> {
        let caps = self.caps.clone();
        let n = message.recipients.len();
        // Refusals decided here, without asking the server.
        if let Some(max) = caps.max_size
            && message.body.len() as u64 > max
        {
            let reply = SmtpReply::local(
                552,
                (5, 3, 4),
                format!("message size exceeds the server's limit of {max} octets"),
            );
            return Ok(TransactionOutcome {
                recipients: vec![reply; n],
            });
        }
        if message.smtputf8 && !caps.has(Extensions::SMTPUTF8) {
            let reply = SmtpReply::local(
                553,
                (5, 6, 7),
                "the message needs SMTPUTF8, which the server does not offer",
            );
            return Ok(TransactionOutcome {
                recipients: vec![reply; n],
            });
        }
        let pipelining = caps.has(Extensions::PIPELINING);
        let chunking = caps.has(Extensions::CHUNKING);
        let dsn = caps.has(Extensions::DSN);
        let timeouts = self.params.timeouts;

        // MAIL and RCPTs (and DATA when pipelining without CHUNKING).
        let mut commands = String::with_capacity(128 + 64 * n);
        let _ = write!(commands, "MAIL FROM:<{}>", message.sender);
        if caps.has(Extensions::SIZE) {
            let _ = write!(commands, " SIZE={}", message.body.len());
        }
        if message.body_type == BodyType::EightBitMime && caps.has(Extensions::EIGHT_BIT_MIME) {
            commands.push_str(" BODY=8BITMIME");
        }
        if message.smtputf8 {
            commands.push_str(" SMTPUTF8");
        }
        if dsn {
            match message.ret {
                Some(DsnRet::Full) => commands.push_str(" RET=FULL"),
                Some(DsnRet::Headers) => commands.push_str(" RET=HDRS"),
                None => {}
            }
            if let Some(envid) = message.envid {
                let _ = write!(commands, " ENVID={envid}");
            }
        }
        commands.push_str("\r\n");
        let mut rcpt_lines = Vec::with_capacity(n);
        for rcpt in &message.recipients {
            let mut line = format!("RCPT TO:<{}>", rcpt.address);
            if dsn {
                push_notify(&mut line, rcpt.notify);
                if let Some(orcpt) = rcpt.orcpt {
                    let _ = write!(line, " ORCPT={orcpt}");
                }
            }
            line.push_str("\r\n");
            rcpt_lines.push(line);
        }
        let pipelined_data = pipelining && !chunking;

        let mail_reply;
        let mut rcpt_replies = Vec::with_capacity(n);
        let mut data_reply = None;
        if pipelining {
            self.wbuf.extend_from_slice(commands.as_bytes());
            for line in &rcpt_lines {
                self.wbuf.extend_from_slice(line.as_bytes());
            }
            if pipelined_data {
                self.wbuf.extend_from_slice(b"DATA\r\n");
            }
            self.flush(Stage::Transaction, timeouts.command).await?;
            mail_reply = self
                .read_reply(Stage::Transaction, timeouts.command)
                .await?;
            for _ in 0..n {
                rcpt_replies.push(
                    self.read_reply(Stage::Transaction, timeouts.command)
                        .await?,
                );
            }
            if pipelined_data {
                data_reply = Some(
                    self.read_reply(Stage::Transaction, timeouts.data_start)
                        .await?,
                );
            }
        } else {
            self.wbuf.extend_from_slice(commands.as_bytes());
            self.flush(Stage::Transaction, timeouts.command).await?;
            mail_reply = self
                .read_reply(Stage::Transaction, timeouts.command)
                .await?;
            if mail_reply.is_success() {
                for line in &rcpt_lines {
                    self.wbuf.extend_from_slice(line.as_bytes());
                    self.flush(Stage::Transaction, timeouts.command).await?;
                    rcpt_replies.push(
                        self.read_reply(Stage::Transaction, timeouts.command)
                            .await?,
                    );
                    if !self.healthy {
                        break;
                    }
                }
            }
        }

        if !mail_reply.is_success() {
            // Every recipient shares the sender's fate. Pipelined DATA may have been answered
            // 354 by a broken server: end it empty.
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                self.abort_data().await?;
            }
            self.reset().await;
            return Ok(TransactionOutcome {
                recipients: vec![mail_reply; n],
            });
        }
        if rcpt_replies.len() < n {
            // The session broke between recipients (a 421): the rest never got a reply.
            let reply = rcpt_replies
                .last()
                .cloned()
                .unwrap_or_else(|| SmtpReply::local(421, (4, 4, 2), "connection lost"));
            rcpt_replies.resize(n, reply);
        }
        let accepted = rcpt_replies.iter().filter(|r| r.is_success()).count();
        if accepted == 0 {
            if data_reply.as_ref().is_some_and(|r| r.code == 354) {
                self.abort_data().await?;
            }
            self.reset().await;
            return Ok(TransactionOutcome {
                recipients: rcpt_replies,
            });
        }

        let final_reply = if chunking {
            self.wbuf
                .extend_from_slice(format!("BDAT {} LAST\r\n", message.body.len()).as_bytes());
            self.write_body(message.body, false).await?;
            self.read_reply(Stage::Data, timeouts.data_end).await?
        } else {
            let start = match data_reply {
                Some(reply) => reply,
                None => {
                    self.wbuf.extend_from_slice(b"DATA\r\n");
                    self.flush(Stage::Transaction, timeouts.command).await?;
                    self.read_reply(Stage::Transaction, timeouts.data_start)
                        .await?
                }
            };
            if start.code != 354 {
                self.reset().await;
                start
            } else {
                self.write_body(message.body, true).await?;
                self.read_reply(Stage::Data, timeouts.data_end).await?
            }
        };
        let recipients = rcpt_replies
            .into_iter()
            .map(|r| {
                if r.is_success() {
                    final_reply.clone()
                } else {
                    r
                }
            })
            .collect();
        Ok(TransactionOutcome { recipients })
    }

    /// Writes the body (stuffed and terminated for DATA, raw for BDAT) in chunks, each
    /// within the data-block timeout. Anything already in `wbuf` (the BDAT line) goes first.
    async fn write_body(&mut self, body: &[u8], stuff: bool) -> Result<(), ClientError> {
        let timeout = self.params.timeouts.data_block;
        let mut stuffer = DotStuffer::new();
        for chunk in body.chunks(DATA_WRITE_CHUNK) {
            if stuff {
                stuffer.encode(chunk, &mut self.wbuf);
            } else {
                self.wbuf.extend_from_slice(chunk);
            }
            if self.wbuf.len() >= DATA_WRITE_CHUNK {
                self.flush(Stage::Data, timeout).await?;
            }
        }
        if stuff {
            stuffer.finish(&mut self.wbuf);
        }
        self.flush(Stage::Data, timeout).await
    }

    /// Ends a DATA phase that should not have started (354 with no accepted recipient).
    async fn abort_data(&mut self) -> Result<(), ClientError> {
        self.wbuf.extend_from_slice(b".\r\n");
        self.flush(Stage::Data, self.params.timeouts.data_block)
            .await?;
        let _ = self
            .read_reply(Stage::Data, self.params.timeouts.data_end)
            .await?;
        Ok(())
    }

    /// Sends RSET after a transaction that ended early, so the next MAIL starts clean. A
    /// connection whose RSET fails is marked unusable.
    async fn reset(&mut self) {
        if !self.healthy {
            return;
        }
        self.wbuf.extend_from_slice(b"RSET\r\n");
        let timeout = self.params.timeouts.command;
        let ok = match self.flush(Stage::Transaction, timeout).await {
            Ok(()) => self
                .read_reply(Stage::Transaction, timeout)
                .await
                .is_ok_and(|r| r.is_success()),
            Err(_) => false,
        };
        if !ok {
            self.healthy = false;
        }
    }
}

fn push_notify(line: &mut String, notify: Notify) {
    if notify.is_empty() {
        return;
    }
    if notify.contains(Notify::NEVER) {
        line.push_str(" NOTIFY=NEVER");
        return;
    }
    let mut parts = Vec::with_capacity(3);
    for (flag, name) in [
        (Notify::SUCCESS, "SUCCESS"),
        (Notify::FAILURE, "FAILURE"),
        (Notify::DELAY, "DELAY"),
    ] {
        if notify.contains(flag) {
            parts.push(name);
        }
    }
    let _ = write!(line, " NOTIFY={}", parts.join(","));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_renders_as_rfc3461() {
        let table = [
            (Notify::empty(), ""),
            (Notify::NEVER, " NOTIFY=NEVER"),
            (Notify::FAILURE, " NOTIFY=FAILURE"),
            (
                Notify::SUCCESS | Notify::FAILURE | Notify::DELAY,
                " NOTIFY=SUCCESS,FAILURE,DELAY",
            ),
        ];
        for (notify, expected) in table {
            let mut line = String::new();
            push_notify(&mut line, notify);
            assert_eq!(line, expected);
        }
    }
}
