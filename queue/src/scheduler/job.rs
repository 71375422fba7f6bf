//! [`Job`]: the unit of scheduling, one message's pending recipients for one destination
//! domain; and [`jobs_from_envelope`], which cuts an envelope into jobs.
//!
//! Invariants:
//! - A job is compact (the scheduler holds one per queued message and domain, millions of
//!   them): shared strings are interned [`Arc<str>`], the recipients are indices into the
//!   envelope's recipient list stored inline when there is one ([`RecipientIndices`]), and
//!   `size_of::<Job>()` is 128 bytes (checked by a test).
//! - [`jobs_from_envelope`] makes at most one job per domain, comparing domains
//!   case-insensitively, covers exactly the envelope's `Pending` recipients, and keeps their
//!   order (in the job list: order of each domain's first recipient).

use std::fmt;
use std::sync::Arc;

use super::Interner;
use crate::{Envelope, MessageId, Priority, RecipientState};

/// One message's pending recipients for one destination domain: what one SMTP transaction
/// to that domain's servers delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    /// The spooled message.
    pub message: MessageId,
    /// The destination domain, lowercased and interned (the part after the last `@` of the
    /// recipients' addresses; an address literal such as `[192.0.2.1]` is its own domain).
    pub domain: Arc<str>,
    /// Which recipients of the envelope ([`Envelope::recipients`] indices) this job covers,
    /// in envelope order.
    pub recipients: RecipientIndices,
    /// Tenant tag, interned: accounting and admin filters.
    pub tenant: Option<Arc<str>>,
    /// Campaign tag, interned: accounting and admin filters.
    pub campaign: Option<Arc<str>>,
    /// Egress pool tag, interned: which sources may deliver the job.
    pub pool: Option<Arc<str>>,
    /// When the message was accepted (unix milliseconds).
    pub created_ms: u64,
    /// When the job expires (unix milliseconds): `created_ms` plus the maximum age. From
    /// then on it is handed out as [`Due::Expired`] and bounced, never attempted.
    pub expires_ms: u64,
    /// Size of the message body in octets (for `SIZE=` and accounting).
    pub size: u64,
    /// Delivery attempts made so far for these recipients (the backoff exponent).
    pub attempts: u32,
    /// Scheduling priority (ready queue lane, tie-break in the delay queue).
    pub priority: Priority,
}

impl Job {
    /// `true` when the job has reached its maximum age at `now_ms`.
    pub const fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_ms
    }
}

/// Why a queue handed out a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due {
    /// Its attempt time has come: deliver it.
    Attempt(Job),
    /// It reached its maximum age ([`Job::expires_ms`]): mark its recipients expired and
    /// bounce them; do not attempt it.
    Expired(Job),
}

impl Due {
    /// The job, whichever the reason.
    pub const fn job(&self) -> &Job {
        match self {
            Self::Attempt(job) | Self::Expired(job) => job,
        }
    }

    /// The job, whichever the reason.
    pub fn into_job(self) -> Job {
        match self {
            Self::Attempt(job) | Self::Expired(job) => job,
        }
    }

    /// `true` for [`Due::Expired`].
    pub const fn is_expired(&self) -> bool {
        matches!(self, Self::Expired(_))
    }

    /// A job popped at `now_ms`: expired if it reached its maximum age, else an attempt.
    pub(super) const fn classify(job: Job, now_ms: u64) -> Self {
        if job.is_expired(now_ms) {
            Self::Expired(job)
        } else {
            Self::Attempt(job)
        }
    }
}

/// Indices into an envelope's recipient list, in envelope order.
///
/// One index (almost every job of a bulk sender) is stored inline; more live in one boxed
/// slice. Either way the value takes 16 bytes.
///
/// Equality is equality of the index lists: the constructors store a single index inline,
/// never as a one-element slice.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RecipientIndices(Repr);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Repr {
    One(u32),
    Many(Box<[u32]>),
}

impl RecipientIndices {
    /// A single recipient.
    pub const fn one(index: u32) -> Self {
        Self(Repr::One(index))
    }

    /// The indices as a slice.
    pub fn as_slice(&self) -> &[u32] {
        match &self.0 {
            Repr::One(index) => std::slice::from_ref(index),
            Repr::Many(indices) => indices,
        }
    }

    /// Number of recipients.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// `true` when no recipient is covered.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The indices, as `usize` for indexing [`Envelope::recipients`].
    pub fn iter(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.as_slice().iter().map(|&i| i as usize)
    }
}

impl From<Vec<u32>> for RecipientIndices {
    fn from(indices: Vec<u32>) -> Self {
        match indices[..] {
            [one] => Self::one(one),
            _ => Self(Repr::Many(indices.into_boxed_slice())),
        }
    }
}

impl FromIterator<u32> for RecipientIndices {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl fmt::Debug for RecipientIndices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

/// The domain of an address: the part after its last `@` (so a quoted local part containing
/// `@` is handled), or `""` for an address without `@` (which no domain can route).
pub fn domain_of(address: &str) -> &str {
    address.rfind('@').map_or("", |at| &address[at + 1..])
}

/// The jobs of a spooled message: its `Pending` recipients grouped by domain (compared
/// case-insensitively), one job per domain, in the order of each domain's first pending
/// recipient, each keeping its recipients in envelope order.
///
/// Every job gets the envelope's tags (interned), priority, size and creation time, expires
/// at `created_ms + max_age_ms`, and counts as attempts the largest
/// [`Recipient::attempts`](crate::Recipient::attempts) among its recipients, so that
/// backoff resumes where it was after a restart. An envelope with no pending recipient
/// gives no job.
pub fn jobs_from_envelope(
    id: MessageId,
    envelope: &Envelope,
    max_age_ms: u64,
    interner: &mut Interner,
) -> Vec<Job> {
    // (domain, indices, attempts) per domain. Domains are interned, so comparing pointers
    // is comparing lowercased names; the search is linear, which is cheapest for the usual
    // handful of domains and bounded by the recipient limit.
    let mut groups: Vec<(Arc<str>, Vec<u32>, u32)> = Vec::new();
    for (recipient, index) in envelope.recipients.iter().zip(0u32..) {
        if recipient.state != RecipientState::Pending {
            continue;
        }
        let domain = interner.domain(domain_of(&recipient.address));
        match groups.iter_mut().find(|(d, ..)| Arc::ptr_eq(d, &domain)) {
            Some((_, indices, attempts)) => {
                indices.push(index);
                *attempts = (*attempts).max(recipient.attempts);
            }
            None => groups.push((domain, vec![index], recipient.attempts)),
        }
    }
    if groups.is_empty() {
        return Vec::new();
    }
    let tags = &envelope.tags;
    let tenant = interner.tag(tags.tenant.as_deref());
    let campaign = interner.tag(tags.campaign.as_deref());
    let pool = interner.tag(tags.pool.as_deref());
    groups
        .into_iter()
        .map(|(domain, indices, attempts)| Job {
            message: id,
            domain,
            recipients: RecipientIndices::from(indices),
            tenant: tenant.clone(),
            campaign: campaign.clone(),
            pool: pool.clone(),
            created_ms: envelope.created_ms,
            expires_ms: envelope.created_ms.saturating_add(max_age_ms),
            size: envelope.size,
            attempts,
            priority: envelope.priority,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Recipient, Tags};

    #[test]
    fn job_is_compact() {
        assert_eq!(size_of::<RecipientIndices>(), 16);
        assert!(size_of::<Job>() <= 128, "{} bytes", size_of::<Job>());
    }

    #[test]
    fn domain_of_table() {
        let table = [
            ("user@example.com", "example.com"),
            ("User@EXAMPLE.com", "EXAMPLE.com"),
            ("\"a@b\"@example.org", "example.org"),
            ("user@[192.0.2.1]", "[192.0.2.1]"),
            ("user@[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"),
            ("postmaster", ""),
            ("user@", ""),
        ];
        for (address, domain) in table {
            assert_eq!(domain_of(address), domain, "{address:?}");
        }
    }

    #[test]
    fn recipient_indices_forms() {
        let table: [(Vec<u32>, &[u32]); 4] = [
            (vec![], &[]),
            (vec![7], &[7]),
            (vec![0, 2], &[0, 2]),
            (vec![3, 1, 4, 1, 5], &[3, 1, 4, 1, 5]),
        ];
        for (input, expected) in table {
            let indices = RecipientIndices::from(input);
            assert_eq!(indices.as_slice(), expected);
            assert_eq!(indices.len(), expected.len());
            assert_eq!(indices.is_empty(), expected.is_empty());
            let as_usize: Vec<usize> = indices.iter().collect();
            assert_eq!(
                as_usize,
                expected.iter().map(|&i| i as usize).collect::<Vec<_>>()
            );
        }
        assert_eq!(RecipientIndices::one(3), [3].into_iter().collect());
        assert_eq!(
            format!("{:?}", RecipientIndices::from(vec![1, 2])),
            "[1, 2]"
        );
    }

    fn envelope(recipients: &[(&str, RecipientState, u32)]) -> Envelope {
        let recipients = recipients
            .iter()
            .map(|&(address, state, attempts)| {
                let mut r = Recipient::new(address);
                r.state = state;
                r.attempts = attempts;
                r
            })
            .collect();
        Envelope::new("bounces@esp.example", recipients, 1_000)
    }

    #[test]
    fn grouping_table() {
        use RecipientState::{Delivered, Expired, Failed, Pending};
        type Case = (
            &'static [(&'static str, RecipientState, u32)],
            &'static [(&'static str, &'static [u32], u32)],
        );
        let table: [Case; 7] = [
            // One recipient.
            (&[("a@gmail.com", Pending, 0)], &[("gmail.com", &[0], 0)]),
            // Several domains, interleaved: one job per domain, order of first appearance,
            // recipient order kept.
            (
                &[
                    ("a@gmail.com", Pending, 0),
                    ("b@yahoo.com", Pending, 0),
                    ("c@gmail.com", Pending, 0),
                    ("d@outlook.com", Pending, 0),
                    ("e@yahoo.com", Pending, 0),
                ],
                &[
                    ("gmail.com", &[0, 2], 0),
                    ("yahoo.com", &[1, 4], 0),
                    ("outlook.com", &[3], 0),
                ],
            ),
            // Case-insensitive domains; the local part keeps its case (not compared).
            (
                &[
                    ("A@GMail.com", Pending, 0),
                    ("b@gmail.COM", Pending, 0),
                    ("c@Gmail.Com", Pending, 0),
                ],
                &[("gmail.com", &[0, 1, 2], 0)],
            ),
            // Only pending recipients; attempts are the largest of the group.
            (
                &[
                    ("a@gmail.com", Delivered, 1),
                    ("b@gmail.com", Pending, 2),
                    ("c@yahoo.com", Failed, 3),
                    ("d@gmail.com", Pending, 4),
                    ("e@yahoo.com", Expired, 5),
                    ("f@aol.com", Pending, 1),
                ],
                &[("gmail.com", &[1, 3], 4), ("aol.com", &[5], 1)],
            ),
            // Address literals are their own domain; the last @ counts.
            (
                &[
                    ("a@[192.0.2.1]", Pending, 0),
                    ("\"x@gmail.com\"@[192.0.2.1]", Pending, 0),
                    ("b@[192.0.2.2]", Pending, 0),
                ],
                &[("[192.0.2.1]", &[0, 1], 0), ("[192.0.2.2]", &[2], 0)],
            ),
            // Nothing pending: no job.
            (&[("a@gmail.com", Delivered, 1)], &[]),
            (&[], &[]),
        ];
        for (recipients, expected) in table {
            let mut interner = Interner::new();
            let env = envelope(recipients);
            let jobs = jobs_from_envelope(MessageId::from_u128(9), &env, 500, &mut interner);
            let got: Vec<(&str, &[u32], u32)> = jobs
                .iter()
                .map(|j| (&*j.domain, j.recipients.as_slice(), j.attempts))
                .collect();
            assert_eq!(got, expected, "{recipients:?}");
        }
    }

    #[test]
    fn job_fields_come_from_the_envelope_and_strings_are_shared() {
        let mut env = envelope(&[
            ("a@gmail.com", RecipientState::Pending, 0),
            ("b@yahoo.com", RecipientState::Pending, 0),
        ]);
        env.tags = Tags {
            tenant: Some("acme".into()),
            campaign: Some("spring-sale".into()),
            pool: None,
        };
        env.priority = Priority::Bulk;
        env.size = 12_345;
        let mut interner = Interner::new();
        let id = MessageId::from_u128(42);
        let jobs = jobs_from_envelope(id, &env, 432_000_000, &mut interner);
        assert_eq!(jobs.len(), 2);
        for job in &jobs {
            assert_eq!(job.message, id);
            assert_eq!(job.created_ms, 1_000);
            assert_eq!(job.expires_ms, 432_001_000);
            assert_eq!(job.size, 12_345);
            assert_eq!(job.priority, Priority::Bulk);
            assert_eq!(job.tenant.as_deref(), Some("acme"));
            assert_eq!(job.campaign.as_deref(), Some("spring-sale"));
            assert_eq!(job.pool, None);
        }
        // The tags of both jobs are one allocation, and so are the domains of two messages.
        let (t0, t1) = (jobs[0].tenant.as_ref(), jobs[1].tenant.as_ref());
        assert!(Arc::ptr_eq(t0.unwrap(), t1.unwrap()));
        let other = jobs_from_envelope(MessageId::from_u128(43), &env, 0, &mut interner);
        assert!(Arc::ptr_eq(&jobs[0].domain, &other[0].domain));
        assert!(Arc::ptr_eq(&jobs[1].domain, &other[1].domain));
        // gmail.com, yahoo.com, acme, spring-sale.
        assert_eq!(interner.len(), 4);
        // Expiry saturates instead of wrapping.
        let far = jobs_from_envelope(id, &env, u64::MAX, &mut interner);
        assert_eq!(far[0].expires_ms, u64::MAX);
    }

    #[test]
    fn due_accessors_and_classification() {
        let mut interner = Interner::new();
        let env = envelope(&[("a@gmail.com", RecipientState::Pending, 0)]);
        let job = jobs_from_envelope(MessageId::from_u128(1), &env, 100, &mut interner)
            .pop()
            .unwrap();
        assert_eq!(job.expires_ms, 1_100);
        let table = [(1_099, false), (1_100, true), (5_000, true), (0, false)];
        for (now, expired) in table {
            assert_eq!(job.is_expired(now), expired, "{now}");
            let due = Due::classify(job.clone(), now);
            assert_eq!(due.is_expired(), expired, "{now}");
            assert_eq!(due.job(), &job);
            assert_eq!(due.into_job(), job);
        }
    }
}
