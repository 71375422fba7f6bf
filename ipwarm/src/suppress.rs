//! The suppression list: recipients that bounced as bad mailboxes, or that an operator
//! added, are not tried again, per tenant, for a while.
//!
//! A `bad_mailbox` reply suppresses `(tenant, address)` for `ttl` (default 30 days). The
//! engine looks recipients up ([`Suppressions::lookup`]) before sending and bounces a
//! suppressed one at once (delivery log `Bounce`, class "suppressed"). Sending again to
//! addresses that do not exist is what ISPs count against a sender's reputation.
//!
//! Invariants:
//! - Addresses are compared case-insensitively (the whole address is lowercased; real
//!   mailboxes with case-sensitive local parts are vanishingly rare, a wrong suppression
//!   only delays a message to one such mailbox); tenants exactly. An entry may name a whole
//!   domain (no `@`): it covers every address there. The empty tenant stands for "every
//!   tenant": its entries (operator entries without a tenant, bounces of mail that had no
//!   tenant) apply to every tenant's mail.
//! - **Bounded.** At most `max_entries` entries. When full, adding evicts the entry that
//!   expires first (the oldest suppression). Measured: 1,000,000 entries (25-character
//!   addresses, one tenant, a reason shared by all) take about 207 MB resident, i.e. about
//!   207 bytes per entry (159 before origin, reason and added time were kept), of which the
//!   text is one shared allocation (hash map and expiry index point to it) and reasons are
//!   stored once each.
//! - Expiry is exact: an entry stops suppressing at `until_ms` whether or not
//!   [`Suppressions::purge_expired`] has run; the purge only frees memory.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::duration;
use crate::throttle::duration_ms;
use crate::{IpwarmError, snapshot};

/// `[suppression]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// Whether bad-mailbox bounces suppress recipients (default true). Operator entries are
    /// kept either way.
    pub enabled: bool,
    /// How long a bounced recipient stays suppressed (default 30 days); operator entries
    /// stay until removed.
    #[serde(deserialize_with = "duration")]
    pub ttl: Duration,
    /// Most entries kept (default 1,000,000); the oldest are evicted first.
    pub max_entries: usize,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            enabled: true,
            ttl: Duration::from_secs(30 * 86_400),
            max_entries: 1_000_000,
        }
    }
}

impl SuppressionConfig {
    /// Checks ranges; error keys are `suppression.KEY`.
    pub fn validate(&self) -> Result<(), IpwarmError> {
        if self.ttl < Duration::from_secs(60) {
            return Err(IpwarmError::config(
                "suppression.ttl",
                "must be at least 1min",
            ));
        }
        if self.max_entries == 0 {
            return Err(IpwarmError::config(
                "suppression.max_entries",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Why a recipient is suppressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionOrigin {
    /// A `bad_mailbox` reply (snapshots older than this field restore as this).
    #[default]
    Bounce,
    /// Added by an operator.
    Manual,
}

/// One suppressed recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The tenant (`""`: none).
    pub tenant: String,
    /// The address, lowercased.
    pub address: String,
    /// When the suppression ends (Unix ms).
    pub until_ms: u64,
    /// When it was added (Unix ms; 0 in snapshots written before this field).
    #[serde(default)]
    pub added_ms: u64,
    /// What added it.
    #[serde(default)]
    pub origin: SuppressionOrigin,
    /// The operator's reason, or the bounce's reply code (`550 5.1.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a recipient is suppressed: what [`Suppressions::lookup`] finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressionHit {
    /// What added the entry.
    pub origin: SuppressionOrigin,
    /// The operator's reason, or the bounce's reply codes (`550 5.1.1`).
    pub reason: Option<Arc<str>>,
}

/// What the list keeps per entry besides its key: 32 bytes (the hash map holds twice as
/// many slots as entries, so each byte here costs about two per entry).
#[derive(Debug, Clone)]
struct Entry {
    until_ms: u64,
    /// Shared among entries with the same reason (`reasons`).
    reason: Option<Arc<str>>,
    /// Seconds since the epoch.
    added_s: u32,
    origin: SuppressionOrigin,
}

impl Entry {
    fn new(entry: &Suppression, reason: Option<Arc<str>>) -> Entry {
        Entry {
            until_ms: entry.until_ms,
            reason,
            added_s: u32::try_from(entry.added_ms / 1000).unwrap_or(u32::MAX),
            origin: entry.origin,
        }
    }
}

/// The suppression list. Single-threaded (`&mut self`); the engine wraps it in a mutex.
#[derive(Debug, Clone)]
pub struct Suppressions {
    config: SuppressionConfig,
    /// Key: `tenant \0 address`, sharing its allocation with `by_expiry`.
    entries: HashMap<Arc<str>, Entry>,
    /// (until, key), for eviction and purging in expiry order.
    by_expiry: BTreeSet<(u64, Arc<str>)>,
    /// Every reason in use, once (bounces share a few reply codes; bulk adds one reason).
    reasons: HashSet<Arc<str>>,
}

fn key(tenant: &str, address: &str) -> String {
    let mut key = String::with_capacity(tenant.len() + 1 + address.len());
    key.push_str(tenant);
    key.push('\0');
    key.extend(address.trim().chars().flat_map(char::to_lowercase));
    key
}

impl Suppressions {
    /// An empty list.
    pub fn new(config: SuppressionConfig) -> Suppressions {
        Suppressions {
            config,
            entries: HashMap::new(),
            by_expiry: BTreeSet::new(),
            reasons: HashSet::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SuppressionConfig {
        &self.config
    }

    /// Number of entries (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `address` is suppressed for `tenant` at `now_ms`: by an entry for the address
    /// or for its domain, of that tenant or of every tenant (`""`).
    pub fn is_suppressed(&self, tenant: &str, address: &str, now_ms: u64) -> bool {
        self.lookup(tenant, address, now_ms).is_some()
    }

    /// The entry that suppresses `address` for `tenant` at `now_ms`, if one does (see
    /// [`Suppressions::is_suppressed`]): the tenant's own entries first, the address's
    /// before its domain's.
    pub fn lookup(&self, tenant: &str, address: &str, now_ms: u64) -> Option<SuppressionHit> {
        if self.entries.is_empty() {
            return None;
        }
        let domain = address.trim().rsplit_once('@').map(|(_, domain)| domain);
        let in_force = |tenant: &str, entry: &str| {
            self.entries
                .get(key(tenant, entry).as_str())
                .filter(|entry| now_ms < entry.until_ms)
                .map(|entry| SuppressionHit {
                    origin: entry.origin,
                    reason: entry.reason.clone(),
                })
        };
        let of = |tenant: &str| {
            in_force(tenant, address).or_else(|| domain.and_then(|domain| in_force(tenant, domain)))
        };
        of(tenant).or_else(|| (!tenant.is_empty()).then(|| of("")).flatten())
    }

    /// Suppresses `address` for `tenant` from `now_ms`, for `origin` with an optional
    /// `reason`: a bounce for the configured `ttl` (nothing when suppression is disabled),
    /// an operator's entry until it is removed. Returns whether it was not suppressed
    /// before.
    pub fn add(
        &mut self,
        tenant: &str,
        address: &str,
        now_ms: u64,
        origin: SuppressionOrigin,
        reason: Option<&str>,
    ) -> bool {
        let until_ms = match origin {
            SuppressionOrigin::Bounce if !self.config.enabled => return false,
            SuppressionOrigin::Bounce => now_ms.saturating_add(duration_ms(self.config.ttl)),
            SuppressionOrigin::Manual => u64::MAX,
        };
        self.insert(
            Suppression {
                tenant: tenant.to_owned(),
                address: address.to_owned(),
                until_ms,
                added_ms: now_ms,
                origin,
                reason: reason.map(str::to_owned),
            },
            now_ms,
        )
    }

    /// Adds `entry` (admin, or restore). An entry already in force keeps its origin and
    /// reason and gets the later of the two ends, except that an operator's entry takes
    /// over a bounce entry; one that had expired is replaced. Returns whether the entry was
    /// added or taken over (false: the address was already suppressed that way).
    pub fn insert(&mut self, entry: Suppression, now_ms: u64) -> bool {
        let key = key(&entry.tenant, &entry.address);
        if let Some((shared, old)) = self.entries.get_key_value(key.as_str()) {
            let (shared, old_until) = (shared.clone(), old.until_ms);
            let was_in_force = now_ms < old_until;
            let takes_over = entry.origin == SuppressionOrigin::Manual
                && old.origin == SuppressionOrigin::Bounce;
            let replaces = !was_in_force || takes_over;
            let until = if was_in_force {
                entry.until_ms.max(old_until)
            } else {
                entry.until_ms
            };
            if replaces || until != old_until {
                self.by_expiry.remove(&(old_until, shared.clone()));
                self.by_expiry.insert((until, shared.clone()));
                let replacement = replaces.then(|| {
                    let reason = self.intern(entry.reason.as_deref());
                    Entry::new(&entry, reason)
                });
                let kept = self.entries.get_mut(&shared).expect("present");
                if let Some(replacement) = replacement {
                    *kept = replacement;
                }
                kept.until_ms = until;
            }
            return replaces;
        }
        while self.entries.len() >= self.config.max_entries {
            // Full of operator entries (which never expire): a bounce is not kept rather
            // than evicting one of them.
            if entry.origin == SuppressionOrigin::Bounce
                && self
                    .by_expiry
                    .first()
                    .is_some_and(|(until, _)| *until == u64::MAX)
            {
                return false;
            }
            let Some((_, oldest)) = self.by_expiry.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        let shared: Arc<str> = Arc::from(key);
        self.by_expiry.insert((entry.until_ms, shared.clone()));
        let reason = self.intern(entry.reason.as_deref());
        self.entries.insert(shared, Entry::new(&entry, reason));
        true
    }

    /// The shared copy of `reason`.
    fn intern(&mut self, reason: Option<&str>) -> Option<Arc<str>> {
        let reason = reason?;
        if let Some(shared) = self.reasons.get(reason) {
            return Some(shared.clone());
        }
        let shared: Arc<str> = Arc::from(reason);
        self.reasons.insert(shared.clone());
        Some(shared)
    }

    /// Lifts a suppression. Returns whether there was one.
    pub fn remove(&mut self, tenant: &str, address: &str) -> bool {
        match self.entries.remove_entry(key(tenant, address).as_str()) {
            Some((shared, entry)) => {
                self.by_expiry.remove(&(entry.until_ms, shared));
                true
            }
            None => false,
        }
    }

    /// Frees expired entries. Returns how many.
    pub fn purge_expired(&mut self, now_ms: u64) -> usize {
        let mut purged = 0;
        while let Some((until, _)) = self.by_expiry.first()
            && *until <= now_ms
        {
            let (_, shared) = self.by_expiry.pop_first().expect("first exists");
            self.entries.remove(&shared);
            purged += 1;
        }
        // Reasons no entry holds any more (the set's own copy is the only one left).
        self.reasons.retain(|reason| Arc::strong_count(reason) > 1);
        purged
    }

    /// Suppressions in force at `now_ms`, of one tenant or all, sorted by tenant and
    /// address; at most `limit`.
    pub fn list(&self, tenant: Option<&str>, now_ms: u64, limit: usize) -> Vec<Suppression> {
        let mut out = self.in_force(tenant, now_ms);
        out.sort_by(|a, b| (&a.tenant, &a.address).cmp(&(&b.tenant, &b.address)));
        out.truncate(limit);
        out
    }

    /// The suppressions in force at `now_ms`, of one tenant or all, in no particular order
    /// (cheaper than [`Suppressions::list`]: for snapshots).
    pub fn in_force(&self, tenant: Option<&str>, now_ms: u64) -> Vec<Suppression> {
        self.entries
            .iter()
            .filter(|(_, entry)| now_ms < entry.until_ms)
            .filter_map(|(key, entry)| {
                let (t, address) = key.split_once('\0')?;
                tenant.is_none_or(|want| want == t).then(|| Suppression {
                    tenant: t.to_owned(),
                    address: address.to_owned(),
                    until_ms: entry.until_ms,
                    added_ms: u64::from(entry.added_s) * 1000,
                    origin: entry.origin,
                    reason: entry.reason.as_deref().map(str::to_owned),
                })
            })
            .collect()
    }

    /// The entries in force at `now_ms` as bytes (JSON, versioned).
    pub fn snapshot(&self, now_ms: u64) -> Vec<u8> {
        encode_snapshot(&self.in_force(None, now_ms))
    }

    /// Replaces the list with a snapshot's entries still in force at `now_ms` (at most
    /// `max_entries`, the longest-lasting kept). Returns how many were restored.
    pub fn restore(&mut self, bytes: &[u8], now_ms: u64) -> Result<usize, IpwarmError> {
        let mut list: Vec<Suppression> = snapshot::decode(bytes, "suppression")?;
        list.retain(|s| now_ms < s.until_ms);
        list.sort_by_key(|s| std::cmp::Reverse(s.until_ms));
        list.truncate(self.config.max_entries);
        self.entries.clear();
        self.by_expiry.clear();
        self.reasons.clear();
        for s in list {
            self.insert(s, now_ms);
        }
        Ok(self.entries.len())
    }
}

/// The snapshot bytes of `entries` (from [`Suppressions::in_force`]): lets a caller copy the
/// entries under its lock and encode them after releasing it.
pub fn encode_snapshot(entries: &[Suppression]) -> Vec<u8> {
    snapshot::encode(&entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000;
    const DAY: u64 = 86_400_000;
    const BOUNCE: SuppressionOrigin = SuppressionOrigin::Bounce;
    const MANUAL: SuppressionOrigin = SuppressionOrigin::Manual;

    fn until(tenant: &str, address: &str, until_ms: u64) -> Suppression {
        Suppression {
            tenant: tenant.to_owned(),
            address: address.to_owned(),
            until_ms,
            added_ms: NOW,
            origin: BOUNCE,
            reason: None,
        }
    }

    fn list(max_entries: usize) -> Suppressions {
        Suppressions::new(SuppressionConfig {
            max_entries,
            ..SuppressionConfig::default()
        })
    }

    #[test]
    fn suppressions_are_per_tenant_case_insensitive_and_expire() {
        let mut s = list(10);
        assert!(s.add("acme", "Bob@Example.COM", NOW, BOUNCE, None));
        assert!(
            !s.add("acme", "bob@example.com", NOW + 1, BOUNCE, None),
            "already suppressed"
        );
        let table = [
            ("acme", "bob@example.com", NOW, true),
            ("acme", " BOB@EXAMPLE.COM ", NOW + DAY, true),
            ("other", "bob@example.com", NOW, false),
            ("", "bob@example.com", NOW, false),
            ("acme", "alice@example.com", NOW, false),
            ("acme", "bob@example.com", NOW + 30 * DAY, true), // re-added at NOW + 1
            ("acme", "bob@example.com", NOW + 30 * DAY + 1, false),
        ];
        for (tenant, address, now, expected) in table {
            assert_eq!(
                s.is_suppressed(tenant, address, now),
                expected,
                "{tenant} {address} {now}"
            );
        }
        // Expired entries stop suppressing before they are purged, then are freed.
        assert_eq!(s.len(), 1);
        assert_eq!(s.purge_expired(NOW + 30 * DAY), 0);
        assert_eq!(s.purge_expired(NOW + 30 * DAY + 1), 1);
        assert!(s.is_empty());
        // Re-adding after expiry counts as new.
        s.add("acme", "bob@example.com", NOW, BOUNCE, None);
        assert!(s.add("acme", "bob@example.com", NOW + 31 * DAY, BOUNCE, None));
    }

    #[test]
    fn lookup_gives_the_entry_that_suppresses() {
        let mut s = list(10);
        s.add("acme", "bob@example.com", NOW, BOUNCE, Some("550 5.1.1"));
        s.add("", "example.com", NOW, MANUAL, Some("complaints"));
        let hit = |tenant: &str, address: &str| {
            s.lookup(tenant, address, NOW)
                .map(|h| (h.origin, h.reason.as_deref().map(str::to_owned)))
        };
        // The tenant's own address entry wins over the every-tenant domain entry.
        assert_eq!(
            hit("acme", "bob@example.com"),
            Some((BOUNCE, Some("550 5.1.1".to_owned())))
        );
        assert_eq!(
            hit("acme", "eve@example.com"),
            Some((MANUAL, Some("complaints".to_owned())))
        );
        assert_eq!(
            hit("other", "bob@example.com"),
            Some((MANUAL, Some("complaints".to_owned())))
        );
        assert_eq!(hit("acme", "bob@example.org"), None);
        // Once the bounce entry expired, the domain entry still suppresses.
        assert_eq!(
            s.lookup("acme", "bob@example.com", NOW + 31 * DAY)
                .map(|h| h.origin),
            Some(MANUAL)
        );
    }

    #[test]
    fn domain_entries_and_every_tenant_entries_apply() {
        let mut s = list(10);
        s.add("acme", "Example.NET", NOW, MANUAL, None);
        s.add("", "all@example.org", NOW, MANUAL, None);
        s.add("", "blocked.example", NOW, MANUAL, None);
        let table = [
            ("acme", "anyone@example.net", true),
            ("acme", " Someone@EXAMPLE.net", true),
            ("other", "anyone@example.net", false),
            ("acme", "anyone@sub.example.net", false),
            ("acme", "all@example.org", true),
            ("", "all@example.org", true),
            ("other", "x@blocked.example", true),
            ("other", "x@example.org", false),
            ("acme", "example.net@elsewhere.test", false),
        ];
        for (tenant, address, expected) in table {
            assert_eq!(
                s.is_suppressed(tenant, address, NOW),
                expected,
                "{tenant} {address}"
            );
        }
        // Operator entries do not expire.
        assert!(s.is_suppressed("acme", "anyone@example.net", NOW + 3650 * DAY));
    }

    #[test]
    fn add_remove_list() {
        let mut s = list(10);
        s.add("b", "z@example.org", NOW, BOUNCE, Some("550 5.1.1"));
        s.add("a", "y@example.org", NOW, MANUAL, Some("asked to stop"));
        s.insert(until("a", "x@example.org", NOW + DAY), NOW);
        assert_eq!(
            s.list(None, NOW, 10)
                .iter()
                .map(|e| format!("{}:{}", e.tenant, e.address))
                .collect::<Vec<_>>(),
            ["a:x@example.org", "a:y@example.org", "b:z@example.org"]
        );
        assert_eq!(s.list(Some("a"), NOW, 1).len(), 1);
        assert_eq!(s.list(Some("a"), NOW + DAY, 10).len(), 1, "x expired");
        assert!(s.remove("a", "Y@example.org"));
        assert!(!s.remove("a", "y@example.org"));
        assert!(!s.is_suppressed("a", "y@example.org", NOW));
        // A shorter insert does not shorten a suppression, nor replace its origin and reason.
        s.insert(until("b", "z@example.org", NOW + 1), NOW);
        assert!(s.is_suppressed("b", "z@example.org", NOW + DAY));
        let z = &s.list(Some("b"), NOW, 10)[0];
        assert_eq!(
            (z.origin, z.reason.as_deref(), z.added_ms),
            (BOUNCE, Some("550 5.1.1"), NOW)
        );
        // Disabled: nothing is added.
        let mut off = Suppressions::new(SuppressionConfig {
            enabled: false,
            ..SuppressionConfig::default()
        });
        assert!(!off.add("a", "b@c.d", NOW, BOUNCE, None));
        assert!(off.is_empty());
        // An operator's entry is kept even then, and never expires.
        assert!(off.add("a", "b@c.d", NOW, MANUAL, None));
        assert!(off.is_suppressed("a", "b@c.d", NOW + 3650 * DAY));
    }

    #[test]
    fn reasons_are_shared_and_freed_with_their_entries() {
        let mut s = list(10);
        s.add("t", "a@example.com", NOW, BOUNCE, Some("550 5.1.1"));
        s.add("t", "b@example.com", NOW + DAY, BOUNCE, Some("550 5.1.1"));
        s.add("t", "c@example.com", NOW, MANUAL, Some("asked"));
        assert_eq!(s.reasons.len(), 2);
        assert!(s.remove("t", "c@example.com"));
        s.purge_expired(NOW + 30 * DAY);
        assert_eq!(s.reasons.len(), 1, "\"asked\" is no longer held");
        s.purge_expired(NOW + 31 * DAY);
        assert!(s.reasons.is_empty() && s.is_empty());
    }

    #[test]
    fn an_operator_entry_takes_over_a_bounce_and_is_never_evicted_for_one() {
        let mut s = list(2);
        s.add("t", "x@example.com", NOW, BOUNCE, Some("550 5.1.1"));
        assert!(s.add("t", "x@example.com", NOW + 1, MANUAL, Some("asked")));
        let x = &s.list(None, NOW, 10)[0];
        assert_eq!((x.origin, x.reason.as_deref()), (MANUAL, Some("asked")));
        assert!(s.is_suppressed("t", "x@example.com", NOW + 3650 * DAY));
        // A bounce does not take over an operator's entry.
        assert!(!s.add("t", "x@example.com", NOW + 2, BOUNCE, Some("550 5.1.1")));
        assert_eq!(s.list(None, NOW, 10)[0].origin, MANUAL);
        // Full of operator entries: a new bounce is dropped, not one of them.
        assert!(s.add("t", "y@example.com", NOW, MANUAL, None));
        assert!(!s.add("t", "z@example.com", NOW, BOUNCE, None));
        assert_eq!(s.len(), 2);
        assert!(
            s.is_suppressed("t", "x@example.com", NOW)
                && s.is_suppressed("t", "y@example.com", NOW)
        );
        assert_eq!(s.by_expiry.len(), 2);
    }

    #[test]
    fn memory_is_bounded_by_evicting_the_oldest() {
        let mut s = list(100);
        for i in 0..250u64 {
            s.add("t", &format!("user{i}@example.com"), NOW + i, BOUNCE, None);
        }
        assert_eq!(s.len(), 100);
        assert_eq!(s.by_expiry.len(), 100);
        assert!(!s.is_suppressed("t", "user149@example.com", NOW + 300));
        assert!(s.is_suppressed("t", "user150@example.com", NOW + 300));
        assert!(s.is_suppressed("t", "user249@example.com", NOW + 300));
    }

    #[test]
    fn snapshots_round_trip_and_drop_expired_entries() {
        let mut s = list(10);
        s.add(
            "acme",
            "a@example.com",
            NOW,
            MANUAL,
            Some("complained by phone"),
        );
        s.insert(until("acme", "b@example.com", NOW + DAY), NOW);
        s.insert(until("", "c@example.com", NOW + 2 * DAY), NOW);
        let bytes = s.snapshot(NOW);
        let mut restored = list(10);
        assert_eq!(restored.restore(&bytes, NOW).unwrap(), 3);
        assert_eq!(restored.list(None, NOW, 10), s.list(None, NOW, 10));
        // Restored a day and a half later: b is gone.
        let mut later = list(10);
        assert_eq!(later.restore(&bytes, NOW + DAY + DAY / 2).unwrap(), 2);
        assert!(!later.is_suppressed("acme", "b@example.com", NOW));
        assert!(later.is_suppressed("", "c@example.com", NOW + DAY + DAY / 2));
        // Into a smaller list: the longest-lasting are kept.
        let mut small = list(1);
        assert_eq!(small.restore(&bytes, NOW).unwrap(), 1);
        assert!(small.is_suppressed("acme", "a@example.com", NOW));
        assert!(
            list(10)
                .restore(b"{\"version\":9,\"state\":[]}", NOW)
                .is_err()
        );
        // Entries written before origin and reason existed restore as bounces.
        let old = format!(
            "{{\"version\":1,\"state\":[{{\"tenant\":\"\",\"address\":\"d@example.com\",\"until_ms\":{}}}]}}",
            NOW + DAY
        );
        let mut restored_old = list(10);
        assert_eq!(restored_old.restore(old.as_bytes(), NOW).unwrap(), 1);
        let d = &restored_old.list(None, NOW, 10)[0];
        assert_eq!(
            (d.origin, d.reason.as_deref(), d.added_ms),
            (BOUNCE, None, 0)
        );
    }
}
