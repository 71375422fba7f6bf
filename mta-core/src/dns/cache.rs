//! The in-process cache of resolution outcomes (plans and errors), keyed by lower-case domain.
//!
//! A plain data structure: no I/O, no clock of its own. Every call takes `now`, so tests
//! drive time by hand and the resolver passes `Instant::now()`.
//!
//! Invariants: at most `capacity` entries; an entry is never returned at or after its expiry;
//! when an insert finds the cache full, expired entries are dropped first and, if that is not
//! enough, the least recently used eighth (at least one entry), so eviction costs are
//! amortised over many inserts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::{DnsError, MxPlan};

/// What a resolution ended with.
pub(crate) type Outcome = Result<Arc<MxPlan>, DnsError>;

struct Entry {
    outcome: Outcome,
    expires: Instant,
    /// Value of the use counter when last read or written (higher is more recent).
    last_used: u64,
}

/// A bounded, TTL-respecting map from domain to [`Outcome`].
pub(crate) struct PlanCache {
    entries: HashMap<String, Entry>,
    capacity: usize,
    clock: u64,
}

impl PlanCache {
    /// An empty cache for at most `capacity` domains (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        PlanCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            clock: 0,
        }
    }

    /// The outcome cached for `domain`, if it has not expired at `now`.
    pub(crate) fn get(&mut self, domain: &str, now: Instant) -> Option<Outcome> {
        self.clock += 1;
        let clock = self.clock;
        match self.entries.get_mut(domain) {
            Some(entry) if entry.expires > now => {
                entry.last_used = clock;
                Some(entry.outcome.clone())
            }
            Some(_) => {
                self.entries.remove(domain);
                None
            }
            None => None,
        }
    }

    /// Caches `outcome` for `domain` until `expires`, evicting if the cache is full.
    pub(crate) fn insert(
        &mut self,
        domain: String,
        outcome: Outcome,
        expires: Instant,
        now: Instant,
    ) {
        if expires <= now {
            return;
        }
        self.clock += 1;
        if !self.entries.contains_key(&domain) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        self.entries.insert(
            domain,
            Entry {
                outcome,
                expires,
                last_used: self.clock,
            },
        );
    }

    /// Number of entries held (expired ones included until they are swept).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn evict(&mut self, now: Instant) {
        self.entries.retain(|_, e| e.expires > now);
        if self.entries.len() < self.capacity {
            return;
        }
        let excess = self.entries.len() + 1 - self.capacity;
        let count = excess.max(self.capacity / 8).max(1);
        let mut ages: Vec<u64> = self.entries.values().map(|e| e.last_used).collect();
        let (_, cutoff, _) = ages.select_nth_unstable(count - 1);
        let cutoff = *cutoff;
        // `last_used` values are unique (one tick per call), so this removes exactly `count`.
        self.entries.retain(|_, e| e.last_used > cutoff);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn plan() -> Outcome {
        Ok(Arc::new(MxPlan::NullMx))
    }

    fn nx(domain: &str) -> Outcome {
        Err(DnsError::NxDomain {
            domain: domain.to_owned(),
        })
    }

    #[test]
    fn entries_live_until_their_expiry() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut cache = PlanCache::new(10);
        cache.insert("a.test".into(), plan(), t0 + s(10), t0);
        cache.insert("b.test".into(), nx("b.test"), t0 + s(5), t0);
        // Already expired: not stored.
        cache.insert("c.test".into(), plan(), t0, t0);
        // (domain, at, expected hit, expected ok)
        let table = [
            ("a.test", 0, Some(true)),
            ("b.test", 0, Some(false)),
            ("c.test", 0, None),
            ("b.test", 4, Some(false)),
            ("a.test", 9, Some(true)),
            ("b.test", 5, None),
            ("a.test", 10, None),
            ("missing.test", 0, None),
        ];
        for (domain, at, expected) in table {
            let got = cache.get(domain, t0 + s(at)).map(|o| o.is_ok());
            assert_eq!(got, expected, "{domain} at +{at}s");
        }
        assert_eq!(cache.len(), 0, "expired entries are dropped when read");
    }

    #[test]
    fn full_cache_drops_expired_then_least_recently_used() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut cache = PlanCache::new(16);
        for i in 0..16 {
            // The first four expire early.
            let ttl = if i < 4 { 1 } else { 100 };
            cache.insert(format!("d{i}.test"), plan(), t0 + s(ttl), t0);
        }
        assert_eq!(cache.len(), 16);
        // Inserting at +2s sweeps the four expired entries and evicts nothing else.
        cache.insert("new.test".into(), plan(), t0 + s(100), t0 + s(2));
        assert_eq!(cache.len(), 13);
        for i in 4..16 {
            assert!(
                cache.get(&format!("d{i}.test"), t0 + s(2)).is_some(),
                "d{i}"
            );
        }
        // Fill up again, then touch d4..d5 so they are the most recently used.
        for i in 16..19 {
            cache.insert(format!("d{i}.test"), plan(), t0 + s(100), t0 + s(2));
        }
        assert_eq!(cache.len(), 16);
        cache.get("d4.test", t0 + s(3));
        cache.get("d5.test", t0 + s(3));
        // Nothing is expired now: the least recently used eighth (2 of 16) goes. That is
        // new.test (not read since its insert) and d6 (the oldest read above).
        cache.insert("newer.test".into(), plan(), t0 + s(100), t0 + s(3));
        assert_eq!(cache.len(), 15);
        assert!(cache.get("new.test", t0 + s(3)).is_none());
        assert!(cache.get("d6.test", t0 + s(3)).is_none());
        for kept in ["d4.test", "d5.test", "d7.test", "d18.test", "newer.test"] {
            assert!(cache.get(kept, t0 + s(3)).is_some(), "{kept}");
        }
        // Replacing an existing key never evicts.
        let before = cache.len();
        cache.insert("d4.test".into(), nx("d4.test"), t0 + s(100), t0 + s(3));
        assert_eq!(cache.len(), before);
        assert!(cache.get("d4.test", t0 + s(3)).unwrap().is_err());
    }

    #[test]
    fn capacity_one() {
        let t0 = Instant::now();
        let mut cache = PlanCache::new(0);
        let later = t0 + Duration::from_secs(60);
        cache.insert("a.test".into(), plan(), later, t0);
        cache.insert("b.test".into(), plan(), later, t0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("a.test", t0).is_none());
        assert!(cache.get("b.test", t0).is_some());
    }
}
