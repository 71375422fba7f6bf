//! What a delivery status notification is built from.
//!
//! Plain borrowed data: the delivery engine fills a [`DsnInput`] from the spooled envelope,
//! the body (or its headers) and the outcomes it decided, then calls
//! [`build_dsn`](super::build_dsn). Nothing here does I/O or reads a clock: `now` is given.

use std::time::SystemTime;

use queue::Envelope;
use smtp_proto::EnhancedCode;

/// Default largest original message returned whole in a failure DSN (256 KiB); a larger one
/// is returned as headers only (`text/rfc822-headers`).
pub const DEFAULT_RETURN_LIMIT: usize = 256 * 1024;

/// Everything a DSN is made of.
#[derive(Debug, Clone)]
pub struct DsnInput<'a> {
    /// Our host name: `Reporting-MTA: dns; <name>` and the `MAILER-DAEMON@<name>` sender.
    pub reporting_mta: &'a str,
    /// The original message's envelope: the DSN goes to its `sender`; `dsn.envid` and
    /// `dsn.ret`, `created_ms` (arrival), `smtputf8` and `body_type` shape the report.
    pub envelope: &'a Envelope,
    /// The original message as spooled (un-stuffed, CRLF), or only its header section.
    pub original: Original<'a>,
    /// The recipients this DSN reports on (at least one), in envelope order.
    pub recipients: &'a [RecipientOutcome],
    /// When the DSN is made: its `Date:` and, with `id`, its `Message-ID:`.
    pub now: SystemTime,
    /// A token unique to the original message (its spool id), used in the DSN's `Message-ID`
    /// and MIME boundary, so that building is deterministic.
    pub id: &'a str,
    /// Largest original returned whole in a failure DSN; see [`DEFAULT_RETURN_LIMIT`].
    pub return_limit: usize,
}

/// The original message, or as much of it as the caller read from the spool.
#[derive(Debug, Clone, Copy)]
pub enum Original<'a> {
    /// The whole message: header section, blank line, body.
    Full(&'a [u8]),
    /// The header section only (with or without the blank line that ends it).
    Headers(&'a [u8]),
}

/// What happened to one recipient, as reported in its per-recipient block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The recipient address (`Final-Recipient: rfc822; <address>`), without brackets.
    pub address: String,
    /// The `ORCPT=` parameter as received (`addr-type;xtext`), if any.
    pub orcpt: Option<String>,
    /// What the report says happened.
    pub action: Action,
    /// The enhanced status code (`Status:`), e.g. `5.1.1`.
    pub status: EnhancedCode,
    /// The MX host that gave the final answer (`Remote-MTA: dns; <host>`), if one did.
    pub remote_mta: Option<String>,
    /// The remote server's reply or our own explanation (`Diagnostic-Code:`), if any.
    pub diagnostic: Option<Diagnostic>,
    /// When delivery to this recipient was last tried.
    pub last_attempt: Option<SystemTime>,
    /// For delayed recipients: when we will give up (`Will-Retry-Until:`).
    pub will_retry_until: Option<SystemTime>,
}

/// The `Diagnostic-Code:` of a per-recipient block: who said what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A remote SMTP server's reply, code included; lines of a multi-line reply separated by
    /// `\n` (`"550-5.1.1 No such user\n550 5.1.1 Try again"`). Shown as `smtp; ...`.
    Smtp(String),
    /// Our own explanation when no server answered (DNS failure, null MX, expiry, policy).
    /// Shown as `x-mta; ...`.
    Mta(String),
}

/// The `Action:` of a per-recipient block (RFC 3464 section 2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Delivery failed; no more attempts (a bounce).
    Failed,
    /// Not delivered yet; attempts continue (a delay warning).
    Delayed,
    /// Delivered to the recipient's mailbox (here: accepted by the final MX).
    Delivered,
    /// Handed to a next hop that does not report DSNs itself.
    Relayed,
    /// Delivered and then forwarded to several addresses (a list or alias).
    Expanded,
}

impl Action {
    /// The field value: `failed`, `delayed`, `delivered`, `relayed`, `expanded`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
            Action::Expanded => "expanded",
        }
    }
}

impl RecipientOutcome {
    /// A failed recipient with the remote server's reply.
    pub fn failed(address: impl Into<String>, status: EnhancedCode) -> Self {
        RecipientOutcome {
            address: address.into(),
            orcpt: None,
            action: Action::Failed,
            status,
            remote_mta: None,
            diagnostic: None,
            last_attempt: None,
            will_retry_until: None,
        }
    }
}
