//! What the engine tells the world about each event: delivery-log records, metrics, and the
//! DSN messages owed to senders.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::{Envelope, MessageId, Recipient, Spool};
use smtp_proto::EnhancedCode;

use super::engine::DeliveryEngine;
use super::outcome::{Failure, Outcome};
use crate::client::SmtpReply;
use crate::delivery_log::{Record, RecordType};
use crate::dsn::{
    Action, DEFAULT_RETURN_LIMIT, Diagnostic, DsnInput, Original, RecipientOutcome,
    build_dsn_message, dsn_wanted,
};

/// What happened to one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Accepted by the next hop.
    Delivery,
    /// Refused for now; retried later.
    TransientFailure,
    /// Refused for good.
    Bounce,
    /// Out of time.
    Expiration,
}

/// One recipient's event.
pub(crate) struct Event<'a> {
    pub(crate) kind: EventKind,
    pub(crate) id: MessageId,
    pub(crate) envelope: &'a Envelope,
    pub(crate) recipient: usize,
    pub(crate) reply: &'a SmtpReply,
    /// The reply's class, when it was classified.
    pub(crate) class: Option<&'static str>,
    pub(crate) outcome: &'a Outcome,
    pub(crate) attempt: u32,
    pub(crate) now_ms: u64,
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl DeliveryEngine {
    /// Logs one recipient's event and counts it.
    pub(crate) fn record(&self, event: Event<'_>) {
        let (kind, metric) = match event.kind {
            EventKind::Delivery => (RecordType::Delivery, "delivered"),
            EventKind::TransientFailure => (RecordType::TransientFailure, "deferred"),
            EventKind::Bounce => (RecordType::Bounce, "bounced"),
            EventKind::Expiration => (RecordType::Expiration, "expired"),
        };
        let provider = event
            .outcome
            .provider
            .clone()
            .unwrap_or_else(|| "other".to_owned());
        metrics::counter!("delivery_recipients_total", "result" => metric, "provider" => provider)
            .increment(1);
        let envelope = event.envelope;
        let mut record = Record::new(kind, time_of(event.now_ms));
        record.message_id = Some(event.id.to_string());
        record.sender = Some(envelope.sender.clone());
        record.recipient = envelope
            .recipients
            .get(event.recipient)
            .map(|r| r.address.clone());
        record.tenant = envelope.tags.tenant.clone();
        record.campaign = envelope.tags.campaign.clone();
        record.pool = envelope.tags.pool.clone();
        record.source = event.outcome.source.as_deref().map(str::to_owned);
        record.source_ip = event.outcome.source_ip;
        record.class = event.class.map(str::to_owned);
        record.site = event.outcome.site.as_deref().map(str::to_owned);
        record.provider = event.outcome.provider.clone();
        record.mx_host = event.outcome.mx_name.clone();
        record.mx_ip = event.outcome.mx_addr;
        record.tls = event.outcome.tls.clone();
        record.reply_code = Some(event.reply.code);
        record.enhanced_code = event.reply.enhanced.map(|e| e.to_string());
        record.reply_text = Some(event.reply.text.clone());
        record.attempt = Some(event.attempt);
        record.queue_time = Some(Duration::from_millis(
            event.now_ms.saturating_sub(envelope.created_ms),
        ));
        record.size = Some(envelope.size);
        self.inner.log.log(record);
    }

    /// Logs a message's reception (called when the server hands it over).
    pub(crate) fn record_reception(&self, id: MessageId, envelope: &Envelope) {
        metrics::counter!("delivery_messages_queued_total").increment(1);
        let mut record = Record::new(RecordType::Reception, time_of(envelope.created_ms));
        record.message_id = Some(id.to_string());
        record.sender = Some(envelope.sender.clone());
        record.recipients = Some(
            envelope
                .recipients
                .iter()
                .map(|r| r.address.clone())
                .collect(),
        );
        record.tenant = envelope.tags.tenant.clone();
        record.campaign = envelope.tags.campaign.clone();
        record.pool = envelope.tags.pool.clone();
        record.size = Some(envelope.size);
        self.inner.log.log(record);
    }

    /// The DSN for these failures, as (envelope, message) to queue; `None` when no recipient
    /// wants one (null sender, NOTIFY=NEVER, NOTIFY without FAILURE).
    pub(crate) fn build_dsn(
        &self,
        id: MessageId,
        envelope: &Envelope,
        failures: &[Failure],
        outcome: &Outcome,
    ) -> Option<(Envelope, Vec<u8>)> {
        let wanted: Vec<&Failure> = failures
            .iter()
            .filter(|f| {
                envelope
                    .recipients
                    .get(f.index)
                    .is_some_and(|r| dsn_wanted(envelope, r, Action::Failed))
            })
            .collect();
        if wanted.is_empty() {
            return None;
        }
        let now = SystemTime::now();
        let recipients: Vec<RecipientOutcome> = wanted
            .iter()
            .map(|f| outcome_of(&envelope.recipients[f.index], f, outcome, now))
            .collect();
        let body = self.inner.spool.body(id).ok();
        let original = match &body {
            Some(b) => Original::Full(b.as_ref()),
            None => Original::Headers(b""),
        };
        let id_text = id.to_string();
        let dsn = build_dsn_message(&DsnInput {
            reporting_mta: &self.inner.config.hostname,
            envelope,
            original,
            recipients: &recipients,
            now,
            id: &id_text,
            return_limit: DEFAULT_RETURN_LIMIT,
        });
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut dsn_envelope =
            Envelope::new("", vec![Recipient::new(envelope.sender.clone())], now_ms);
        dsn_envelope.tags = envelope.tags.clone();
        dsn_envelope.smtputf8 = dsn.smtputf8;
        dsn_envelope.body_type = dsn.body_type;
        dsn_envelope.size = dsn.message.len() as u64;
        dsn_envelope.received_from = "local".to_owned();
        Some((dsn_envelope, dsn.message))
    }
}

/// The DSN's view of one failed recipient.
fn outcome_of(
    recipient: &Recipient,
    failure: &Failure,
    outcome: &Outcome,
    now: SystemTime,
) -> RecipientOutcome {
    let status = if failure.expired {
        // RFC 3463: 4.4.7 delivery time expired, reported as a permanent failure.
        EnhancedCode::new(5, 4, 7).expect("valid code")
    } else {
        let s = failure.reply.status();
        EnhancedCode::new(5, s.subject(), s.detail()).unwrap_or(s)
    };
    let diagnostic = match (&outcome.mx_name, failure.expired) {
        (Some(_), _) => Some(Diagnostic::Smtp(failure.reply.to_string())),
        (None, _) => Some(Diagnostic::Mta(failure.reply.to_string())),
    };
    RecipientOutcome {
        address: recipient.address.clone(),
        orcpt: recipient.orcpt.clone(),
        action: Action::Failed,
        status,
        remote_mta: outcome.mx_name.clone(),
        diagnostic,
        last_attempt: Some(now),
        will_retry_until: None,
    }
}
