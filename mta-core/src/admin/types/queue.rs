//! The queue summary (`GET /v1/queue`): like Postfix's `qshape`, the pending recipients
//! counted by provider, recipient domain, egress source and tenant, each row cut into age
//! buckets, so an operator sees what is stuck, where, and since when.
//!
//! The backend feeds a [`QueueSummaryBuilder`] one [`QueueEntry`] per (message, recipient
//! domain) with pending recipients; the builder applies the filter, counts, and keeps the
//! largest `top` rows of each table (the rest are summed in `more_rows`/`more_recipients`),
//! so the response is bounded whatever the queue holds.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use queue::MessageId;
use serde::{Deserialize, Serialize};

use super::filter::Filter;

/// The provider key of sites without a provider rule (the same as the metrics' label).
pub const UNKNOWN_PROVIDER: &str = "other";
/// The provider key of entries not routed yet (their provider is not known: just after a
/// restart, or before their first attempt).
pub const UNROUTED_PROVIDER: &str = "(unrouted)";
/// The source key of entries not yet routed to an egress source.
pub const UNASSIGNED_SOURCE: &str = "(unassigned)";
/// The tenant key of mail without `X-MTA-Tenant`.
pub const NO_TENANT: &str = "(none)";

/// The age buckets of every row: a label and the exclusive upper bound in seconds (`None`
/// for the last, open-ended one). An entry's age is measured from the message's arrival.
pub const AGE_BUCKETS: [(&str, Option<u64>); 8] = [
    ("<5m", Some(300)),
    ("5m-15m", Some(900)),
    ("15m-1h", Some(3600)),
    ("1h-4h", Some(4 * 3600)),
    ("4h-12h", Some(12 * 3600)),
    ("12h-1d", Some(86_400)),
    ("1d-2d", Some(2 * 86_400)),
    (">2d", None),
];

/// What `GET /v1/queue` summarises: a filter and the number of rows per table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueQuery {
    /// Only entries matching this (empty: the whole queue).
    pub filter: Filter,
    /// Rows kept per table (the largest first).
    pub top: usize,
}

/// One (message, recipient domain) with pending recipients, as the backend sees it.
#[derive(Debug, Clone, Copy)]
pub struct QueueEntry<'a> {
    /// The message.
    pub message: MessageId,
    /// The recipient domain.
    pub domain: &'a str,
    /// The provider of the domain's MX hosts ([`UNKNOWN_PROVIDER`] for sites without a
    /// provider rule), if routed (`None`: [`UNROUTED_PROVIDER`]).
    pub provider: Option<&'a str>,
    /// The egress source, if the entry has been routed (`None`: [`UNASSIGNED_SOURCE`]).
    pub source: Option<&'a str>,
    /// The tenant tag (`None`: [`NO_TENANT`]).
    pub tenant: Option<&'a str>,
    /// The campaign tag.
    pub campaign: Option<&'a str>,
    /// Pending recipients of the message at this domain.
    pub recipients: u64,
    /// Attempts made so far (0: never tried; more: deferred at least once).
    pub attempts: u32,
    /// When the message arrived.
    pub created: SystemTime,
}

/// An age bucket as sent in the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgeBucket {
    /// The column heading (`"15m-1h"`).
    pub label: String,
    /// Exclusive upper bound of the age in seconds; `null` for the last bucket.
    pub max_seconds: Option<u64>,
}

/// One row of a table: a key (a provider, domain, source or tenant) and its recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeRow {
    /// The provider, domain, source or tenant.
    pub key: String,
    /// Pending recipients.
    pub recipients: u64,
    /// Of those, recipients already tried at least once (deferred: what is stuck).
    pub deferred: u64,
    /// Arrival of the oldest message in the row.
    #[serde(with = "super::rfc3339::option")]
    pub oldest: Option<SystemTime>,
    /// Recipients per age bucket, in the order of `age_buckets`.
    pub ages: Vec<u64>,
}

/// The largest rows of one dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShapeTable {
    /// The rows, most recipients first (ties by key).
    pub rows: Vec<ShapeRow>,
    /// Rows left out beyond `top`.
    pub more_rows: u64,
    /// Recipients in the rows left out.
    pub more_recipients: u64,
}

/// The response of `GET /v1/queue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueSummary {
    /// When the summary was taken (ages are measured from here).
    #[serde(with = "super::rfc3339")]
    pub generated_at: SystemTime,
    /// The filter applied (empty: the whole queue).
    pub filter: Filter,
    /// Messages with at least one pending recipient in the slice.
    pub messages: u64,
    /// Every pending recipient of the slice, as one row keyed `"TOTAL"`.
    pub total: ShapeRow,
    /// The columns of `ages` in every row.
    pub age_buckets: Vec<AgeBucket>,
    /// By mailbox provider (`other` for sites without a provider rule).
    pub by_provider: ShapeTable,
    /// By recipient domain.
    pub by_domain: ShapeTable,
    /// By egress source.
    pub by_source: ShapeTable,
    /// By tenant.
    pub by_tenant: ShapeTable,
}

/// A row being counted.
#[derive(Debug, Clone)]
struct Acc {
    recipients: u64,
    deferred: u64,
    oldest: Option<SystemTime>,
    ages: [u64; AGE_BUCKETS.len()],
}

impl Acc {
    fn new() -> Acc {
        Acc {
            recipients: 0,
            deferred: 0,
            oldest: None,
            ages: [0; AGE_BUCKETS.len()],
        }
    }

    fn add(&mut self, entry: &QueueEntry<'_>, bucket: usize) {
        self.recipients += entry.recipients;
        if entry.attempts > 0 {
            self.deferred += entry.recipients;
        }
        self.oldest = Some(match self.oldest {
            Some(oldest) => oldest.min(entry.created),
            None => entry.created,
        });
        self.ages[bucket] += entry.recipients;
    }

    fn into_row(self, key: String) -> ShapeRow {
        ShapeRow {
            key,
            recipients: self.recipients,
            deferred: self.deferred,
            oldest: self.oldest,
            ages: self.ages.to_vec(),
        }
    }
}

/// Counts queue entries into a [`QueueSummary`].
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use mta_core::admin::types::{Filter, QueueEntry, QueueQuery, QueueSummaryBuilder};
///
/// let now = SystemTime::now();
/// let query = QueueQuery { filter: Filter::default(), top: 10 };
/// let mut builder = QueueSummaryBuilder::new(&query, now);
/// builder.add(&QueueEntry {
///     message: queue::MessageId::generate(),
///     domain: "gmail.com",
///     provider: Some("gmail"),
///     source: Some("ip-1"),
///     tenant: Some("acme"),
///     campaign: None,
///     recipients: 2,
///     attempts: 1,
///     created: now - Duration::from_secs(600),
/// });
/// let summary = builder.finish();
/// assert_eq!(summary.total.recipients, 2);
/// assert_eq!(summary.by_provider.rows[0].key, "gmail");
/// assert_eq!(summary.by_provider.rows[0].ages[1], 2); // 5m-15m
/// ```
#[derive(Debug)]
pub struct QueueSummaryBuilder {
    filter: Filter,
    top: usize,
    now: SystemTime,
    messages: HashSet<MessageId>,
    total: Acc,
    by_provider: HashMap<String, Acc>,
    by_domain: HashMap<String, Acc>,
    by_source: HashMap<String, Acc>,
    by_tenant: HashMap<String, Acc>,
}

impl QueueSummaryBuilder {
    /// A builder for `query`, measuring ages at `now`.
    pub fn new(query: &QueueQuery, now: SystemTime) -> QueueSummaryBuilder {
        QueueSummaryBuilder {
            filter: query.filter.clone(),
            top: query.top,
            now,
            messages: HashSet::new(),
            total: Acc::new(),
            by_provider: HashMap::new(),
            by_domain: HashMap::new(),
            by_source: HashMap::new(),
            by_tenant: HashMap::new(),
        }
    }

    /// Counts one entry, if it matches the filter and has pending recipients.
    pub fn add(&mut self, entry: &QueueEntry<'_>) {
        if entry.recipients == 0 || !self.filter.matches(entry) {
            return;
        }
        let age = self
            .now
            .duration_since(entry.created)
            .unwrap_or(Duration::ZERO);
        let bucket = bucket_of(age);
        self.messages.insert(entry.message);
        self.total.add(entry, bucket);
        let domain = super::normalize_domain(entry.domain);
        for (table, key) in [
            (
                &mut self.by_provider,
                entry.provider.unwrap_or(UNROUTED_PROVIDER),
            ),
            (&mut self.by_domain, domain.as_str()),
            (
                &mut self.by_source,
                entry.source.unwrap_or(UNASSIGNED_SOURCE),
            ),
            (&mut self.by_tenant, entry.tenant.unwrap_or(NO_TENANT)),
        ] {
            match table.get_mut(key) {
                Some(acc) => acc.add(entry, bucket),
                None => {
                    let mut acc = Acc::new();
                    acc.add(entry, bucket);
                    table.insert(key.to_owned(), acc);
                }
            }
        }
    }

    /// The summary.
    pub fn finish(self) -> QueueSummary {
        let top = self.top;
        QueueSummary {
            generated_at: self.now,
            filter: self.filter,
            messages: self.messages.len() as u64,
            total: self.total.into_row("TOTAL".to_owned()),
            age_buckets: AGE_BUCKETS
                .iter()
                .map(|(label, max)| AgeBucket {
                    label: (*label).to_owned(),
                    max_seconds: *max,
                })
                .collect(),
            by_provider: table(self.by_provider, top),
            by_domain: table(self.by_domain, top),
            by_source: table(self.by_source, top),
            by_tenant: table(self.by_tenant, top),
        }
    }
}

/// The bucket an age falls in.
fn bucket_of(age: Duration) -> usize {
    let secs = age.as_secs();
    AGE_BUCKETS
        .iter()
        .position(|(_, max)| max.is_none_or(|max| secs < max))
        .unwrap_or(AGE_BUCKETS.len() - 1)
}

/// The `top` largest rows, most recipients first, then by key.
fn table(rows: HashMap<String, Acc>, top: usize) -> ShapeTable {
    let mut rows: Vec<(String, Acc)> = rows.into_iter().collect();
    rows.sort_by(|(ka, a), (kb, b)| b.recipients.cmp(&a.recipients).then_with(|| ka.cmp(kb)));
    let rest = rows.split_off(top.min(rows.len()));
    ShapeTable {
        more_rows: rest.len() as u64,
        more_recipients: rest.iter().map(|(_, acc)| acc.recipients).sum(),
        rows: rows
            .into_iter()
            .map(|(key, acc)| acc.into_row(key))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_in_their_bucket() {
        let cases = [
            (0, 0),
            (299, 0),
            (300, 1),
            (899, 1),
            (900, 2),
            (3599, 2),
            (3600, 3),
            (4 * 3600, 4),
            (12 * 3600, 5),
            (86_400, 6),
            (2 * 86_400 - 1, 6),
            (2 * 86_400, 7),
            (365 * 86_400, 7),
        ];
        for (secs, bucket) in cases {
            assert_eq!(bucket_of(Duration::from_secs(secs)), bucket, "{secs}s");
        }
    }

    #[test]
    fn tables_keep_the_largest_rows_and_sum_the_rest() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let query = QueueQuery {
            filter: Filter::default(),
            top: 2,
        };
        let mut builder = QueueSummaryBuilder::new(&query, now);
        let domains = [
            ("a.example", 5),
            ("b.example", 3),
            ("c.example", 3),
            ("d.example", 1),
        ];
        for (i, (domain, recipients)) in domains.into_iter().enumerate() {
            builder.add(&QueueEntry {
                message: MessageId::from_u128(i as u128 + 1),
                domain,
                provider: None,
                source: None,
                tenant: None,
                campaign: None,
                recipients,
                attempts: i as u32,
                created: now - Duration::from_secs(60 * i as u64),
            });
        }
        let summary = builder.finish();
        assert_eq!(summary.messages, 4);
        assert_eq!(summary.total.recipients, 12);
        assert_eq!(summary.total.deferred, 7);
        let keys: Vec<&str> = summary
            .by_domain
            .rows
            .iter()
            .map(|r| r.key.as_str())
            .collect();
        assert_eq!(keys, ["a.example", "b.example"]);
        assert_eq!(
            (
                summary.by_domain.more_rows,
                summary.by_domain.more_recipients
            ),
            (2, 4)
        );
        assert_eq!(summary.by_provider.rows[0].key, UNROUTED_PROVIDER);
        assert_eq!(summary.by_source.rows[0].key, UNASSIGNED_SOURCE);
        assert_eq!(summary.by_tenant.rows[0].key, NO_TENANT);
        assert_eq!(summary.total.oldest, Some(now - Duration::from_secs(180)));
    }
}
