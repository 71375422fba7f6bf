//! One message as the admin API shows it (`GET /v1/messages/{id}`): its envelope, tags,
//! schedule, and each recipient's state, attempts and last reply.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::{Envelope, MessageId, Priority, RecipientState};
use serde::{Deserialize, Serialize};

/// The response of `GET /v1/messages/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The message id (as in `250 2.0.0 Ok: queued as <id>` and the delivery log).
    pub id: String,
    /// The envelope sender (`""`: the null sender of a bounce).
    pub sender: String,
    /// Size of the stored message in octets.
    pub size: u64,
    /// When it was accepted.
    #[serde(with = "super::rfc3339")]
    pub created_at: SystemTime,
    /// When the pending recipients are tried next (`null` when none is pending).
    #[serde(with = "super::rfc3339::option")]
    pub next_attempt_at: Option<SystemTime>,
    /// Delivery attempts made for the message.
    pub attempts: u32,
    /// Its scheduling priority.
    pub priority: MessagePriority,
    /// `X-MTA-Tenant`.
    pub tenant: Option<String>,
    /// `X-MTA-Campaign`.
    pub campaign: Option<String>,
    /// `X-MTA-Pool`.
    pub pool: Option<String>,
    /// The client address it came from (`local` for DSNs made here).
    pub received_from: String,
    /// Every recipient, in `RCPT TO` order.
    pub recipients: Vec<RecipientView>,
}

/// One recipient of a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientView {
    /// The address.
    pub address: String,
    /// Where delivery stands.
    pub status: RecipientStatus,
    /// Attempts made for this recipient.
    pub attempts: u32,
    /// The last reply (`"451 4.7.1 Try again later"`), from the receiving server or decided
    /// here.
    pub last_reply: Option<String>,
    /// The provider of its domain, when the engine knows it.
    pub provider: Option<String>,
    /// The egress source it is queued on, when routed.
    pub source: Option<String>,
}

/// A recipient's state: every state but `pending` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecipientStatus {
    /// Waiting for (another) attempt.
    Pending,
    /// Accepted by the next hop.
    Delivered,
    /// Refused permanently, or bounced by an operator.
    Failed,
    /// Still deferred when the message reached its maximum age.
    Expired,
}

/// The scheduling priority (`X-MTA-Priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessagePriority {
    /// Bulk mail.
    Bulk,
    /// The default.
    Normal,
    /// Transactional mail.
    High,
}

impl From<RecipientState> for RecipientStatus {
    fn from(state: RecipientState) -> Self {
        match state {
            RecipientState::Pending => RecipientStatus::Pending,
            RecipientState::Delivered => RecipientStatus::Delivered,
            RecipientState::Failed => RecipientStatus::Failed,
            RecipientState::Expired => RecipientStatus::Expired,
        }
    }
}

impl From<Priority> for MessagePriority {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Bulk => MessagePriority::Bulk,
            Priority::Normal => MessagePriority::Normal,
            Priority::High => MessagePriority::High,
        }
    }
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl MessageView {
    /// The view of a spooled message; `provider` and `source` of each recipient are left
    /// `None` for the engine to fill in when it knows them.
    pub fn from_envelope(id: MessageId, envelope: &Envelope) -> MessageView {
        let pending = envelope
            .recipients
            .iter()
            .any(|r| r.state == RecipientState::Pending);
        MessageView {
            id: id.to_string(),
            sender: envelope.sender.clone(),
            size: envelope.size,
            created_at: time_of(envelope.created_ms),
            next_attempt_at: pending.then(|| time_of(envelope.next_attempt_ms)),
            attempts: envelope.attempts,
            priority: envelope.priority.into(),
            tenant: envelope.tags.tenant.clone(),
            campaign: envelope.tags.campaign.clone(),
            pool: envelope.tags.pool.clone(),
            received_from: envelope.received_from.clone(),
            recipients: envelope
                .recipients
                .iter()
                .map(|r| RecipientView {
                    address: r.address.clone(),
                    status: r.state.into(),
                    attempts: r.attempts,
                    last_reply: r.last_reply.clone(),
                    provider: None,
                    source: None,
                })
                .collect(),
        }
    }
}
