//! What happens after an attempt: each recipient's reply decides its state (delivered,
//! bounced, expired, or retried later; a 5xx that blames the sending IP, such as a block
//! listing, is retried, not bounced); the envelope is rewritten (or the message removed when
//! nothing is pending); failures owed a DSN get one; every event is logged.
//!
//! Invariants: updates of one message are serialised (a message with recipients at several
//! domains has several jobs in flight); a DSN and the original message's record of the
//! failures it reports are one atomic spool write, so a bounce is never lost and (barring a
//! failed commit that reached the disk all the same) never sent twice; the retry job is scheduled only after its envelope is written, so memory and disk
//! agree on what is pending.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use queue::scheduler::{Job, RecipientIndices};
use queue::{Change, Envelope, MessageId, RecipientState, Spool};
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

/// How long a job waits after the spool failed it (a DSN refused, an envelope unreadable)
/// before it is handled again.
const SPOOL_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

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
            })
            .collect();
        Results {
            retry_at,
            ..Results::of(items)
        }
    }

    /// Recipients not attempted because they are on the suppression list.
    pub(crate) fn suppressed(indices: &[usize]) -> Results {
        let mut results = Results::of(Vec::new());
        results.add_suppressed(indices);
        results
    }

    /// Adds recipients not attempted because they are suppressed.
    pub(crate) fn add_suppressed(&mut self, indices: &[usize]) {
        for &index in indices {
            self.items.push(Item {
                index,
                reply: SmtpReply::local(
                    550,
                    (5, 7, 1),
                    "recipient is on the suppression list (an earlier hard bounce or the operator)",
                ),
                class: Some(SUPPRESSED),
                blames_source: false,
            });
        }
    }

    /// Marks the failures as owing no DSN.
    pub(crate) fn without_dsn(mut self) -> Results {
        self.no_dsn = true;
        self
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
    pub(crate) async fn finish(&self, job: Job, results: Results, outcome: Outcome) {
        let inner = &self.inner;
        let _guard = self.message_lock(job.message).lock().await;
        let mut envelope = match inner.spool.envelope(job.message) {
            Ok(envelope) => envelope,
            Err(queue::SpoolError::NotFound(_)) => {
                self.forget(&job);
                return;
            }
            Err(error @ queue::SpoolError::Corrupt { .. }) => {
                // Retrying cannot mend it; the next start quarantines it (docs/spool.md).
                warn!(id = %job.message, %error, "message envelope is damaged; outcome not recorded");
                self.forget(&job);
                return;
            }
            Err(error) => {
                // Storage trouble: the recipients are still pending on disk; this attempt
                // is not recorded (a later one may deliver again: a duplicate, never a loss).
                warn!(id = %job.message, %error, "could not read an envelope to record an outcome; retrying later");
                self.retry_later(job);
                return;
            }
        };
        let now = now_ms();
        let attempt = job.attempts + 1;
        let mut retry = Vec::new();
        let mut failures = Vec::new();
        let mut decided = Vec::with_capacity(results.items.len());
        for Item {
            index,
            reply,
            class,
            blames_source,
        } in results.items
        {
            let Some(recipient) = envelope.recipients.get_mut(index) else {
                continue;
            };
            if recipient.state != RecipientState::Pending {
                continue;
            }
            recipient.attempts = recipient.attempts.max(attempt);
            recipient.last_reply = Some(reply.to_string());
            let kind = if reply.is_success() {
                recipient.state = RecipientState::Delivered;
                EventKind::Delivery
            } else if reply.is_permanent() && !blames_source {
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
            decided.push((index, kind, reply, class));
        }
        let retry_job = self.retry_job(&job, &mut envelope, &retry, attempt, now, results.retry_at);
        // A failure owed a DSN becomes final only together with its DSN: the DSN and the
        // original's new state are one atomic spool write (both or neither).
        let dsn = if !failures.is_empty() && inner.config.delivery.bounces && !results.no_dsn {
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
        let dsn_failed = match written {
            Ok(()) => false,
            Err(queue::SpoolError::NotFound(id)) if id == job.message => {
                // Removed meanwhile (an operator's bounce or delete): nothing left to record.
                self.forget(&job);
                return;
            }
            Err(error) if with_dsn => {
                // Neither the DSN nor the failures were written: they stay pending (on disk
                // and here) and are handled again later.
                warn!(id = %job.message, %error, "could not queue a DSN; the failures stay pending");
                true
            }
            Err(error) => {
                warn!(id = %job.message, %error, "could not record a delivery outcome in the spool");
                false
            }
        };
        for (index, kind, reply, class) in &decided {
            let failed_for_now =
                dsn_failed && failures.iter().any(|failure| failure.index == *index);
            self.record(Event {
                kind: if failed_for_now {
                    EventKind::TransientFailure
                } else {
                    *kind
                },
                id: job.message,
                envelope: &envelope,
                recipient: *index,
                reply,
                class: *class,
                outcome: &outcome,
                attempt,
                now_ms: now,
            });
        }
        if dsn_failed {
            // Try again in a while (the spool refuses every write after a failed commit),
            // from outside the scheduler, whose expiry cap would hand an expired job straight
            // back.
            retry.extend(failures.iter().map(|failure| failure.index as u32));
            let mut again = job.clone();
            again.recipients = RecipientIndices::from(retry);
            again.attempts = attempt;
            self.retry_later(again);
            return;
        }
        match retry_job {
            Some((retry_job, at)) => {
                self.schedule(retry_job, at);
            }
            None => self.forget(&job),
        }
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

    /// Schedules `job` again after [`SPOOL_RETRY`], from outside the scheduler (whose expiry
    /// cap would hand an expired job straight back), for failures of the spool itself. On
    /// shutdown the job is dropped from memory; its recipients are pending on disk.
    fn retry_later(&self, job: Job) {
        let engine = self.clone();
        self.inner.tracker.spawn(async move {
            tokio::select! {
                _ = tokio::time::sleep(SPOOL_RETRY) => {
                    engine.schedule(job, now_ms());
                }
                _ = engine.inner.shutdown.cancelled() => {}
            };
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
