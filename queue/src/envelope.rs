//! The envelope of a spooled message: everything about it except its body.
//!
//! Plain owned types only (no parser types), so the spool does not depend on the wire layer;
//! the server converts its parsed `MAIL`/`RCPT` parameters into these. The envelope is the
//! mutable half of a message: the body is written once, the envelope is rewritten after each
//! delivery attempt (recipient states, attempts, next-attempt time).
//!
//! Invariants kept by the helpers (fields are public, so callers can break them; the spool
//! stores whatever it is given, and the byte format round-trips every value):
//! - a message is *finished* when no recipient is [`RecipientState::Pending`];
//! - [`Notify`] is empty when the client sent no `NOTIFY` (RFC 3461 leaves the default to the
//!   MTA), and `NEVER` is not combined with other flags when it came from a valid command.
//!
//! The byte format lives in [`crate::codec`].

use bitflags::bitflags;

/// Everything about a spooled message except its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Reverse-path from `MAIL FROM`, without angle brackets; `""` is the null reverse-path
    /// (bounces), which must never be bounced to.
    pub sender: String,
    /// Forward-paths from `RCPT TO`, in the order given, each with its delivery state.
    pub recipients: Vec<Recipient>,
    /// Delivery status notification parameters from `MAIL FROM` (RFC 3461).
    pub dsn: DsnParams,
    /// Labels for accounting, shaping and egress selection.
    pub tags: Tags,
    /// When the message was accepted (unix milliseconds); expiry is measured from here.
    pub created_ms: u64,
    /// When the scheduler should next try the pending recipients (unix milliseconds).
    pub next_attempt_ms: u64,
    /// Delivery attempts made so far for this message (per recipient counts are in
    /// [`Recipient::attempts`]).
    pub attempts: u32,
    /// Scheduling priority.
    pub priority: Priority,
    /// The client asked for `SMTPUTF8`: the message needs a next hop that offers it.
    pub smtputf8: bool,
    /// The `BODY=` parameter: what the next hop must accept.
    pub body_type: BodyType,
    /// Size of the body in octets, as stored (un-stuffed, CRLF line ends).
    pub size: u64,
    /// The client's IP address, for logs and `Received:` accounting.
    pub received_from: String,
}

/// One forward-path of a message and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// The address, without angle brackets.
    pub address: String,
    /// Where delivery stands for this recipient.
    pub state: RecipientState,
    /// The `NOTIFY=` parameter (empty when absent).
    pub notify: Notify,
    /// The `ORCPT=` parameter, as received (`addr-type;xtext`), for DSNs.
    pub orcpt: Option<String>,
    /// Delivery attempts made for this recipient.
    pub attempts: u32,
    /// The last reply from a receiving server (code, enhanced code and text), for DSNs, logs
    /// and the admin API.
    pub last_reply: Option<String>,
}

/// Where delivery stands for one recipient. Every state except `Pending` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RecipientState {
    /// Not delivered yet: the scheduler will try (again).
    #[default]
    Pending,
    /// Accepted by the next hop (a 250 to our `DATA`).
    Delivered,
    /// Refused permanently (a 5xx, or a policy decision such as suppression): bounced.
    Failed,
    /// Still refused temporarily when the message reached its maximum age: bounced as expired.
    Expired,
}

impl RecipientState {
    /// `true` for every state in which the recipient needs no more work.
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }
}

bitflags! {
    /// The `NOTIFY=` parameter of `RCPT TO` (RFC 3461 section 4.1): when to send a DSN.
    ///
    /// The empty set means the client did not send `NOTIFY` (the MTA's default then applies,
    /// usually `FAILURE,DELAY`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Notify: u8 {
        /// `SUCCESS`: report delivery.
        const SUCCESS = 0b0001;
        /// `FAILURE`: report a permanent failure.
        const FAILURE = 0b0010;
        /// `DELAY`: report a long delay.
        const DELAY = 0b0100;
        /// `NEVER`: send no DSN at all (not combined with the others).
        const NEVER = 0b1000;
    }
}

/// The DSN parameters of `MAIL FROM` (RFC 3461 section 4.3 and 4.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnParams {
    /// `RET=`: how much of the message a failure DSN returns.
    pub ret: Option<DsnRet>,
    /// `ENVID=`: the client's envelope identifier, as received (xtext).
    pub envid: Option<String>,
}

/// The `RET=` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsnRet {
    /// `RET=FULL`: return the whole message.
    Full,
    /// `RET=HDRS`: return the headers only.
    Headers,
}

/// Labels attached at reception, used to account, shape and pick the egress pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// The customer the message belongs to.
    pub tenant: Option<String>,
    /// The campaign (mailing) the message is part of.
    pub campaign: Option<String>,
    /// The egress pool to deliver from.
    pub pool: Option<String>,
}

/// Scheduling priority: higher goes first when a ready queue has a choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Priority {
    /// Bulk mail: delivered when nothing more urgent waits.
    Bulk,
    /// The default.
    #[default]
    Normal,
    /// Transactional mail (password resets, receipts).
    High,
}

/// The `BODY=` parameter of `MAIL FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BodyType {
    /// No `BODY=` or `BODY=7BIT`.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030, with `BDAT` only).
    BinaryMime,
}

impl Recipient {
    /// A pending recipient with no DSN parameters and no attempts.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            state: RecipientState::Pending,
            notify: Notify::empty(),
            orcpt: None,
            attempts: 0,
            last_reply: None,
        }
    }
}

impl Envelope {
    /// An envelope accepted at `now_ms`, due at once, with default parameters.
    pub fn new(sender: impl Into<String>, recipients: Vec<Recipient>, now_ms: u64) -> Self {
        Self {
            sender: sender.into(),
            recipients,
            dsn: DsnParams::default(),
            tags: Tags::default(),
            created_ms: now_ms,
            next_attempt_ms: now_ms,
            attempts: 0,
            priority: Priority::default(),
            smtputf8: false,
            body_type: BodyType::default(),
            size: 0,
            received_from: String::new(),
        }
    }

    /// Recipients still to be delivered.
    pub fn pending_recipients(&self) -> impl Iterator<Item = &Recipient> {
        self.recipients
            .iter()
            .filter(|r| r.state == RecipientState::Pending)
    }

    /// Recipients still to be delivered, for updating after an attempt.
    pub fn pending_recipients_mut(&mut self) -> impl Iterator<Item = &mut Recipient> {
        self.recipients
            .iter_mut()
            .filter(|r| r.state == RecipientState::Pending)
    }

    /// `true` when no recipient is pending: the message can be removed (after any DSN it
    /// owes has been queued).
    pub fn is_finished(&self) -> bool {
        self.pending_recipients().next().is_none()
    }

    /// `true` when the reverse-path is null (`MAIL FROM:<>`): a bounce, never bounced again.
    pub fn is_null_sender(&self) -> bool {
        self.sender.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_and_finished() {
        let mut env = Envelope::new(
            "",
            vec![
                Recipient::new("a@example.com"),
                Recipient::new("b@example.org"),
            ],
            1_000,
        );
        assert!(env.is_null_sender());
        assert_eq!(env.pending_recipients().count(), 2);
        assert!(!env.is_finished());

        env.recipients[0].state = RecipientState::Delivered;
        let pending: Vec<_> = env.pending_recipients().map(|r| &r.address[..]).collect();
        assert_eq!(pending, ["b@example.org"]);
        assert!(!env.is_finished());

        for r in env.pending_recipients_mut() {
            r.state = RecipientState::Expired;
        }
        assert!(env.is_finished());
        // An envelope without recipients has nothing left to do.
        assert!(Envelope::new("a@b", Vec::new(), 0).is_finished());
    }

    #[test]
    fn state_finality_and_priority_order() {
        let table = [
            (RecipientState::Pending, false),
            (RecipientState::Delivered, true),
            (RecipientState::Failed, true),
            (RecipientState::Expired, true),
        ];
        for (state, is_final) in table {
            assert_eq!(state.is_final(), is_final, "{state:?}");
        }
        assert!(Priority::Bulk < Priority::Normal && Priority::Normal < Priority::High);
        assert_eq!(Priority::default(), Priority::Normal);
    }
}
