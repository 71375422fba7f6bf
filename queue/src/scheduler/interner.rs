//! [`Interner`]: one shared allocation per distinct string (domain, tenant, campaign, pool).
//!
//! A million jobs for `gmail.com` hold a million [`Arc`] pointers to a single `"gmail.com"`,
//! not a million copies. Invariants: two equal strings interned by the same interner are the
//! same allocation ([`Arc::ptr_eq`]) for as long as the interner keeps them;
//! [`Interner::domain`] stores domains lowercased, so case variants share one entry.
//!
//! The interner only grows as new strings arrive; campaign names are unbounded over a
//! daemon's life, so the engine calls [`Interner::remove_unused`] from time to time (each
//! call is O(distinct strings)).

use std::collections::HashSet;
use std::sync::Arc;

/// A set of shared strings: [`intern`](Self::intern) returns the one [`Arc`] held for a
/// value, allocating it on first use.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    strings: HashSet<Arc<str>>,
}

impl Interner {
    /// An empty interner.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `value` (allocated on first use; no allocation afterwards).
    pub fn intern(&mut self, value: &str) -> Arc<str> {
        if let Some(shared) = self.strings.get(value) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(value);
        self.strings.insert(Arc::clone(&shared));
        shared
    }

    /// The shared copy of a domain, lowercased (domains compare case-insensitively).
    ///
    /// A domain that is already lowercase (the common case) is looked up without allocating.
    /// Non-ASCII domains (internationalized, with `SMTPUTF8`) are lowercased with Unicode
    /// rules.
    pub fn domain(&mut self, domain: &str) -> Arc<str> {
        let is_lower = domain
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
        if is_lower {
            self.intern(domain)
        } else {
            self.intern(&domain.to_lowercase())
        }
    }

    /// The shared copy of an optional tag.
    pub fn tag(&mut self, value: Option<&str>) -> Option<Arc<str>> {
        value.map(|v| self.intern(v))
    }

    /// Number of distinct strings held.
    pub fn len(&self) -> usize {
        self.strings.len()
    }

    /// `true` when no string is held.
    pub fn is_empty(&self) -> bool {
        self.strings.is_empty()
    }

    /// Forgets the strings that nothing but the interner refers to any more (for example
    /// the campaign of a finished mailing); returns how many were dropped.
    pub fn remove_unused(&mut self) -> usize {
        let before = self.strings.len();
        self.strings.retain(|s| Arc::strong_count(s) > 1);
        before - self.strings.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_allocation() {
        let mut interner = Interner::new();
        let a = interner.intern("tenant-1");
        let b = interner.intern(&String::from("tenant-1"));
        let c = interner.intern("tenant-2");
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(interner.len(), 2);
    }

    #[test]
    fn domains_are_lowercased_and_shared() {
        let table = [
            ("gmail.com", "gmail.com"),
            ("GMail.COM", "gmail.com"),
            ("[192.0.2.1]", "[192.0.2.1]"),
            ("[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]"),
            ("BÜCHER.example", "bücher.example"),
            ("", ""),
        ];
        let mut interner = Interner::new();
        let gmail = interner.domain("gmail.com");
        for (input, expected) in table {
            let shared = interner.domain(input);
            assert_eq!(&*shared, expected, "{input:?}");
            assert!(
                Arc::ptr_eq(&shared, &interner.domain(expected)),
                "{input:?}"
            );
        }
        assert!(Arc::ptr_eq(&gmail, &interner.domain("GMAIL.com")));
        assert_eq!(interner.tag(None), None);
        assert_eq!(interner.tag(Some("pool-a")).as_deref(), Some("pool-a"));
    }

    #[test]
    fn unused_strings_are_removed_used_ones_kept() {
        let mut interner = Interner::new();
        let kept = interner.intern("campaign-live");
        drop(interner.intern("campaign-done"));
        assert_eq!(interner.len(), 2);
        assert_eq!(interner.remove_unused(), 1);
        assert_eq!(interner.len(), 1);
        // The survivor is still the shared copy.
        assert!(Arc::ptr_eq(&kept, &interner.intern("campaign-live")));
        drop(kept);
        assert_eq!(interner.remove_unused(), 1);
        assert!(interner.is_empty());
    }
}
