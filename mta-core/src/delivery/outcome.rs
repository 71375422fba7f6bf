//! What happens after an attempt: each recipient's reply decides its state (delivered,
//! bounced, expired, or retried later; a 5xx that blames the sending IP, such as a block
//! listing, is retried, not bounced); the envelope is rewritten (or the message removed when
//! nothing is pending); failures owed a DSN get one; every event is logged.
//!
//! Invariants: updates of one message are serialised (a message with recipients at several
//! domains has several jobs in flight); a DSN and the original message's record of the
//! failures it reports are one atomic spool write, so a bounce is never lost and (barring a
//! failed commit that reached the disk all the same) never sent twice; an outcome the spool
//! refuses is recorded again later, never delivered again in this process, and its failures
//! are logged as final only once recorded.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ipwarm::{SuppressionHit, SuppressionOrigin};
use queue::scheduler::{Job, RecipientIndices};
use queue::{Change, Envelope, MessageId, RecipientState, Spool};
use smtp_proto::EnhancedCode;
use tracing::warn;

use super::engine::{DeliveryEngine, now_ms};
use super::events::{Event, EventKind};
use crate::client::SmtpReply;

/// Where an attempt went, for logs and DSNs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) source: Option<Arc<str>>,
    pub(crate) source_ip: Option<IpAddr>,
    pub(crate) site: Option<Arc<str>>,
    pub(crate) provider: Option<String>,
    pub(crate) mx_name: Option<String>,
    pub(crate) mx_addr: Option<IpAddr>,
    pub(crate) tls: Option<String>,
}

impl Outcome {
    /// An outcome decided before any connection (DNS, null MX, expiry).
    pub(crate) fn unrouted() -> Outcome {
        Outcome::default()
    }
}

/// The class of a recipient that was not attempted because it is suppressed.
pub(crate) const SUPPRESSED: &str = "suppressed";

/// One recipient's reply.
#[derive(Debug, Clone)]
struct Item {
    index: usize,
    reply: SmtpReply,
    /// The reply's class (`ipwarm`), for the log.
    class: Option<&'static str>,
    /// The class blames the sending IP, not the recipient (a block or block listing): a
    /// permanent reply is retried (from another source, or after the suspension it caused)
    /// instead of bounced.
    blames_source: bool,
    /// What the delivery log already says of it (an outcome recorded again after the
    /// spool refused it): `Delivery`, or `TransientFailure` for a failure not recorded yet.
    logged: Option<EventKind>,
}

/// The reply for each recipient (by envelope index) of one attempt.
#[derive(Debug, Clone)]
pub(crate) struct Results {
    items: Vec<Item>,
    /// A retry time a throttle asked for: used as is for the recipients retried.
    retry_at: Option<u64>,
    /// No DSN for the failures (an operator bounce without DSNs).
    no_dsn: bool,
}

impl Results {
    fn of(items: Vec<Item>) -> Results {
        Results {
            items,
            retry_at: None,
            no_dsn: false,
        }
    }

    /// The same reply for every recipient of the job.
    pub(crate) fn all(job: &Job, reply: SmtpReply) -> Results {
        Results::of(
            job.recipients
                .iter()
                .map(|index| Item {
                    index,
                    reply: reply.clone(),
                    class: None,
                    blames_source: false,
                    logged: None,
                })
                .collect(),
        )
    }

    /// The same classified reply for every recipient of the job (a refusal before any
    /// recipient was named: greeting, EHLO), with the throttle's retry time.
    pub(crate) fn all_classified(
        job: &Job,
        reply: SmtpReply,
        class: ipwarm::Class,
        retry_at: Option<u64>,
    ) -> Results {
        let mut results = Results::all(job, reply);
        for item in &mut results.items {
            item.class = Some(class.as_str());
            item.blames_source = class.blames_source();
        }
        results.retry_at = retry_at;
        results
    }

    /// One reply per recipient, in order, with their classes and the throttle's retry time.
    pub(crate) fn classified(
        indices: &[usize],
        replies: Vec<SmtpReply>,
        classes: &[ipwarm::Class],
        retry_at: Option<u64>,
    ) -> Results {
        let items = indices
            .iter()
            .zip(replies)
            .zip(classes)
            .map(|((&index, reply), class)| Item {
                index,
                reply,
                class: Some(class.as_str()),
                blames_source: class.blames_source(),
                logged: None,
            })
            .collect();
        Results {
            retry_at,
            ..Results::of(items)
        }
    }

    /// Recipients not attempted because they are on the suppression list, each with the
    /// entry that suppresses it.
    pub(crate) fn suppressed(suppressed: &[(usize, SuppressionHit)]) -> Results {
        let mut results = Results::of(Vec::new());
        results.add_suppressed(suppressed);
        results
    }

    /// Adds recipients not attempted because they are suppressed.
    pub(crate) fn add_suppressed(&mut self, suppressed: &[(usize, SuppressionHit)]) {
        for (index, hit) in suppressed {
            self.items.push(Item {
                index: *index,
                reply: suppressed_reply(hit),
                class: Some(SUPPRESSED),
                blames_source: false,
                logged: None,
            });
        }
    }

    /// Marks the failures as owing no DSN.
    pub(crate) fn without_dsn(mut self) -> Results {
        self.no_dsn = true;
        self
    }
}

/// The reply a suppressed recipient bounces with. An entry a hard bounce made keeps that
/// bounce's codes (`550 5.1.1`, or `550` alone when the server sent no enhanced code), so
/// the DSN and the log say the same as the first time and a sender's bounce processing sees
/// the same hard bounce; an operator's entry gives `5.7.1`.
fn suppressed_reply(hit: &SuppressionHit) -> SmtpReply {
    if hit.origin == SuppressionOrigin::Bounce
        && let Some(reason) = hit.reason.as_deref()
        && let Some((code, enhanced)) = bounce_codes(reason)
    {
        return SmtpReply {
            code,
            enhanced,
            text: format!("recipient suppressed after an earlier hard bounce ({reason})"),
        };
    }
    let text = match hit.origin {
        // Without usable codes (or from a snapshot older than origins): neutral.
        SuppressionOrigin::Bounce => "recipient is on the suppression list",
        SuppressionOrigin::Manual => "recipient is on the operator's suppression list",
    };
    SmtpReply::local(550, (5, 7, 1), text)
}

/// The codes of a bounce entry's reason: a 5xx code (`"550"`), optionally with a class-5
/// enhanced code (`"550 5.1.1"`); `None` for anything else.
fn bounce_codes(reason: &str) -> Option<(u16, Option<EnhancedCode>)> {
    let (code, enhanced) = match reason.split_once(' ') {
        Some((code, enhanced)) => (code, Some(enhanced)),
        None => (reason, None),
    };
    let code: u16 = code.parse().ok().filter(|c| (500..600).contains(c))?;
    let Some(enhanced) = enhanced else {
        return Some((code, None));
    };
    match EnhancedCode::parse_prefix(enhanced.as_bytes()) {
        Some((parsed, used)) if used == enhanced.len() && parsed.class() == 5 => {
            Some((code, Some(parsed)))
        }
        _ => None,
    }
}

/// A recipient that failed for good, for its DSN.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) index: usize,
    pub(crate) reply: SmtpReply,
    pub(crate) expired: bool,
}

impl DeliveryEngine {
    /// Records an attempt's results and decides what comes next for each recipient.
    /// Returns `false` when the spool refused the record: the outcome is then recorded
    /// again later (never delivered again in this process), and the failures in it are
    /// logged as deferrals until it is.
    pub(crate) async fn finish(&self, job: Job, results: Results, outcome: Outcome) -> bool {
        let inner = &self.inner;
        let _guard = self.message_lock(job.message).lock().await;
        let mut envelope = match inner.spool.envelope(job.message) {
            Ok(envelope) => envelope,
            Err(queue::SpoolError::NotFound(_)) => {
                self.forget(&job);
                return true;
            }
            Err(error @ queue::SpoolError::Corrupt { .. }) => {
                // Retrying cannot mend it; the next start quarantines it (docs/spool.md).
                warn!(id = %job.message, %error, "message envelope is damaged; outcome not recorded");
                self.forget(&job);
                return true;
            }
            Err(error) => {
                warn!(id = %job.message, %error, "could not read an envelope to record an outcome; recording it later");
                self.record_later(job, results, outcome);
                return false;
            }
        };
        let now = now_ms();
        let attempt = job.attempts + 1;
        let retry_at = results.retry_at;
        let no_dsn = results.no_dsn;
        let mut retry = Vec::new();
        let mut failures = Vec::new();
        let mut decided: Vec<(Item, EventKind)> = Vec::with_capacity(results.items.len());
        for item in results.items {
            let index = item.index;
            let Some(recipient) = envelope.recipients.get_mut(index) else {
                continue;
            };
            if recipient.state != RecipientState::Pending {
                continue;
            }
            let reply = &item.reply;
            recipient.attempts = recipient.attempts.max(attempt);
            recipient.last_reply = Some(reply.to_string());
            let kind = if reply.is_success() {
                recipient.state = RecipientState::Delivered;
                EventKind::Delivery
            } else if reply.is_permanent() && !item.blames_source {
                recipient.state = RecipientState::Failed;
                failures.push(Failure {
                    index,
                    reply: reply.clone(),
                    expired: false,
                });
                EventKind::Bounce
            } else if now >= job.expires_ms {
                recipient.state = RecipientState::Expired;
                failures.push(Failure {
                    index,
                    reply: reply.clone(),
                    expired: true,
                });
                EventKind::Expiration
            } else {
                retry.push(index as u32);
                EventKind::TransientFailure
            };
            decided.push((item, kind));
        }
        let retry_job = self.retry_job(&job, &mut envelope, &retry, attempt, now, retry_at);
        // A failure owed a DSN becomes final only together with its DSN: the DSN and the
        // original's new state are one atomic spool write (both or neither).
        let dsn = if !failures.is_empty() && inner.config.delivery.bounces && !no_dsn {
            self.build_dsn(job.message, &envelope, &failures, &outcome)
        } else {
            None
        };
        let change = if envelope.is_finished() {
            Change::Remove(job.message)
        } else {
            Change::Update(job.message, &envelope)
        };
        let with_dsn = dsn.is_some();
        let written = match dsn {
            Some((dsn_envelope, body)) => {
                let dsn_id = MessageId::generate();
                let stored = inner
                    .spool
                    .store_with_change(dsn_id, dsn_envelope.clone(), body, change)
                    .await;
                if stored.is_ok() {
                    metrics::counter!("delivery_dsn_total").increment(1);
                    use super::engine::Submit;
                    self.submit(dsn_id, &dsn_envelope);
                }
                stored
            }
            None => match change {
                Change::Remove(id) => inner.spool.remove(id).await,
                Change::Update(id, envelope) => inner.spool.update(id, envelope).await,
            },
        };
        let error = match written {
            Ok(()) => {
                for (item, kind) in &decided {
                    if item.logged != Some(*kind) {
                        self.log_event(&job, &envelope, item, *kind, &outcome, attempt, now);
                    }
                }
                match retry_job {
                    Some((retry_job, at)) => {
                        self.schedule(retry_job, at);
                    }
                    None => self.forget(&job),
                }
                return true;
            }
            Err(queue::SpoolError::NotFound(id)) if id == job.message => {
                // Removed meanwhile (an operator's bounce or delete): nothing left to record.
                self.forget(&job);
                return true;
            }
            Err(error) => error,
        };
        warn!(id = %job.message, %error, "could not record a delivery outcome in the spool; recording it later");
        metrics::counter!("delivery_outcome_record_errors_total").increment(1);
        // What this attempt settled but the spool has not recorded: the failures always;
        // the deliveries too, unless a plain update without the failures records them.
        let mut deliveries_recorded = false;
        let delivered = decided.iter().any(|(_, kind)| *kind == EventKind::Delivery);
        if with_dsn && delivered {
            for failure in &failures {
                envelope.recipients[failure.index].state = RecipientState::Pending;
            }
            deliveries_recorded = inner.spool.update(job.message, &envelope).await.is_ok();
        }
        let mut unrecorded = Vec::new();
        for (mut item, kind) in decided {
            let failed = matches!(kind, EventKind::Bounce | EventKind::Expiration);
            if failed || (kind == EventKind::Delivery && !deliveries_recorded) {
                // A failure is not final until recorded: logged (once) as a deferral for
                // now, and as what it is once recorded.
                let shown = if failed {
                    EventKind::TransientFailure
                } else {
                    kind
                };
                if item.logged != Some(shown) {
                    self.log_event(&job, &envelope, &item, shown, &outcome, attempt, now);
                    item.logged = Some(shown);
                }
                unrecorded.push(item);
            } else if item.logged != Some(kind) {
                self.log_event(&job, &envelope, &item, kind, &outcome, attempt, now);
            }
        }
        // The recipients to retry go on as usual (pending on disk whatever happens).
        let retrying = retry_job.is_some();
        if let Some((retry_job, at)) = retry_job {
            self.schedule(retry_job, at);
        }
        if unrecorded.is_empty() {
            // Nothing settled is left unrecorded (a rerun that found it all written).
            if !retrying {
                self.forget(&job);
            }
            return true;
        }
        if retrying {
            // This attempt goes on as two jobs: the retry and the record still owed.
            inner.queued.fetch_add(1, Ordering::Relaxed);
        }
        let mut indices: Vec<u32> = unrecorded.iter().map(|item| item.index as u32).collect();
        indices.sort_unstable();
        let mut again = job;
        again.recipients = RecipientIndices::from(indices);
        let results = Results {
            items: unrecorded,
            retry_at: None,
            no_dsn,
        };
        self.record_later(again, results, outcome);
        false
    }

    /// Logs one recipient's event of an attempt.
    #[allow(clippy::too_many_arguments)]
    fn log_event(
        &self,
        job: &Job,
        envelope: &Envelope,
        item: &Item,
        kind: EventKind,
        outcome: &Outcome,
        attempt: u32,
        now: u64,
    ) {
        self.record(Event {
            kind,
            id: job.message,
            envelope,
            recipient: item.index,
            reply: &item.reply,
            class: item.class,
            outcome,
            attempt,
            now_ms: now,
        });
    }

    /// The job for the recipients to retry, and when (also written into `envelope`); `None`
    /// when there are none.
    fn retry_job(
        &self,
        job: &Job,
        envelope: &mut Envelope,
        retry: &[u32],
        attempt: u32,
        now: u64,
        retry_at: Option<u64>,
    ) -> Option<(Job, u64)> {
        if retry.is_empty() {
            return None;
        }
        let next = self
            .inner
            .retry
            .next_attempt_ms(attempt, now, retry_at, &mut rand::rng())
            .min(job.expires_ms);
        envelope.next_attempt_ms = next;
        envelope.attempts = envelope.attempts.max(attempt);
        let mut retry_job = job.clone();
        retry_job.recipients = RecipientIndices::from(retry.to_vec());
        retry_job.attempts = attempt;
        Some((retry_job, next))
    }

    /// Records `results` again after `[delivery] spool_retry`, for an outcome the spool
    /// refused: the recipients are settled, so they are not delivered again. While the
    /// spool refuses every write (after a failed commit, until a restart) it only waits.
    /// The job stays counted in `queued` until then. On shutdown it is dropped; its
    /// recipients are pending on disk, and the next start delivers them again (a
    /// duplicate, never a loss).
    fn record_later(&self, job: Job, results: Results, outcome: Outcome) {
        let engine = self.clone();
        let wait = self.inner.config.delivery.spool_retry;
        self.inner.tracker.spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = engine.inner.shutdown.cancelled() => return,
                }
                if !engine.inner.spool.refuses_writes() {
                    break;
                }
            }
            // Boxed: `finish` may come back here.
            let again: std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>> =
                Box::pin(engine.finish(job, results, outcome));
            again.await;
        });
    }

    /// A job reached its maximum age: its recipients expire with their last reply.
    pub(crate) async fn expire(&self, job: Job) {
        let reply = SmtpReply::local(
            451,
            (4, 4, 7),
            format!(
                "message expired after {} in the queue",
                humantime::format_duration(self.inner.config.delivery.max_age)
            ),
        );
        let results = Results::all(&job, reply);
        self.finish(job, results, Outcome::unrouted()).await;
    }

    /// A job leaves memory without a successor.
    pub(crate) fn forget(&self, _job: &Job) {
        self.inner.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn hit(origin: SuppressionOrigin, reason: Option<&str>) -> SuppressionHit {
        SuppressionHit {
            origin,
            reason: reason.map(Arc::from),
        }
    }

    #[test]
    fn a_bounce_entry_bounces_with_its_codes_again() {
        use SuppressionOrigin::{Bounce, Manual};
        let table: [(SuppressionHit, &str); 7] = [
            (
                hit(Bounce, Some("550 5.1.1")),
                "550 5.1.1 recipient suppressed after an earlier hard bounce (550 5.1.1)",
            ),
            (
                hit(Bounce, Some("551 5.2.1")),
                "551 5.2.1 recipient suppressed after an earlier hard bounce (551 5.2.1)",
            ),
            // A server that sent no enhanced code: the bare code again.
            (
                hit(Bounce, Some("550")),
                "550 recipient suppressed after an earlier hard bounce (550)",
            ),
            // Not a permanent code, or not one at all: the policy code, neutral text.
            (
                hit(Bounce, Some("450 4.2.1")),
                "550 5.7.1 recipient is on the suppression list",
            ),
            (
                hit(Bounce, Some("550 5.1")),
                "550 5.7.1 recipient is on the suppression list",
            ),
            (
                hit(Bounce, None),
                "550 5.7.1 recipient is on the suppression list",
            ),
            (
                hit(Manual, Some("550 5.1.1")),
                "550 5.7.1 recipient is on the operator's suppression list",
            ),
        ];
        for (hit, expected) in table {
            assert_eq!(suppressed_reply(&hit).to_string(), expected, "{hit:?}");
        }
    }
}
