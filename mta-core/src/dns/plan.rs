//! A domain's delivery plan: where mail for it goes, in the order to try.
//!
//! Invariants of a plan built by the resolver:
//! - hosts are sorted by preference (lowest first) and every host has at least one address;
//! - host names are lower-case ASCII (IDNs as A-labels) without the trailing dot;
//! - addresses of a host are IPv4 first, then IPv6, without duplicates;
//! - [`MxPlan::Mx`] holds at least one host (a plan without a usable host is an error).
//!
//! The resolver caches plans in a canonical order (equal preferences by name, addresses
//! sorted) and hands out a [`MxPlan::shuffled`] copy, so each caller sees equal-preference
//! hosts, and the addresses of each family, in a fresh random order (RFC 5321 section 5.1).

use std::net::IpAddr;

use rand::Rng;
use rand::seq::SliceRandom;

/// The enhanced status code for a recipient whose domain has a null MX (RFC 7505 section 4.2).
pub const NULL_MX_ENHANCED_CODE: &str = "5.1.10";

/// Where mail for a domain goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MxPlan {
    /// RFC 7505: the domain's only MX record is `0 .`, it accepts no mail. The engine
    /// bounces at once with [`NULL_MX_ENHANCED_CODE`] (`5.1.10`), without connecting.
    NullMx,
    /// MX records: the hosts that have an address, in preference order.
    Mx(Vec<MxHost>),
    /// No MX record but the domain has A/AAAA records (RFC 5321 section 5.1): the domain
    /// itself, with preference 0.
    Implicit(MxHost),
}

/// One mail exchanger and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxHost {
    /// The MX preference (lower is tried first); 0 for an implicit MX.
    pub preference: u16,
    /// The host name, lower-case, without the trailing dot.
    pub name: String,
    /// Its addresses: IPv4 (A) first, then IPv6 (AAAA). The pool uses those of the family
    /// of its egress source.
    pub addresses: Vec<IpAddr>,
}

impl MxPlan {
    /// The hosts to try, in order; empty for a null MX.
    pub fn hosts(&self) -> &[MxHost] {
        match self {
            MxPlan::NullMx => &[],
            MxPlan::Mx(hosts) => hosts,
            MxPlan::Implicit(host) => std::slice::from_ref(host),
        }
    }

    /// `true` for an RFC 7505 null MX.
    pub fn is_null_mx(&self) -> bool {
        matches!(self, MxPlan::NullMx)
    }

    /// `true` when shuffling could change the plan: two hosts share a preference, or a host
    /// has two addresses of one family.
    pub(crate) fn has_choices(&self) -> bool {
        let hosts = self.hosts();
        hosts.windows(2).any(|w| w[0].preference == w[1].preference)
            || hosts.iter().any(|h| {
                let v4 = h.addresses.iter().filter(|a| a.is_ipv4()).count();
                v4 > 1 || h.addresses.len() - v4 > 1
            })
    }

    /// A copy in which hosts of equal preference, and each host's addresses within a family,
    /// are in random order. Preference order and IPv4-before-IPv6 are kept.
    pub fn shuffled<R: Rng + ?Sized>(&self, rng: &mut R) -> MxPlan {
        let mut plan = self.clone();
        let hosts: &mut [MxHost] = match &mut plan {
            MxPlan::NullMx => return plan,
            MxPlan::Mx(hosts) => hosts,
            MxPlan::Implicit(host) => std::slice::from_mut(host),
        };
        for group in hosts.chunk_by_mut(|a, b| a.preference == b.preference) {
            group.shuffle(rng);
        }
        for host in hosts.iter_mut() {
            let v4 = host.addresses.iter().filter(|a| a.is_ipv4()).count();
            let (four, six) = host.addresses.split_at_mut(v4);
            four.shuffle(rng);
            six.shuffle(rng);
        }
        plan
    }
}

/// The destination site of a plan: the sorted, de-duplicated, lower-case MX host names joined
/// by `,` (`"alt1.aspmx.l.google.com,aspmx.l.google.com"`). Domains hosted by the same
/// servers share a site, and so share connection limits. An implicit MX gives the domain
/// itself; a null MX gives `""` (it is never delivered to).
pub fn site_key(plan: &MxPlan) -> String {
    let mut names: Vec<String> = plan
        .hosts()
        .iter()
        .map(|h| h.name.to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn host(preference: u16, name: &str, addresses: &[&str]) -> MxHost {
        MxHost {
            preference,
            name: name.to_owned(),
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn site_key_table() {
        let table = [
            (MxPlan::NullMx, ""),
            (
                MxPlan::Implicit(host(0, "example.test", &["192.0.2.1"])),
                "example.test",
            ),
            (
                MxPlan::Mx(vec![
                    host(5, "b.mx.test", &["192.0.2.2"]),
                    host(10, "A.mx.test", &["192.0.2.1"]),
                    host(20, "b.mx.test", &["192.0.2.2"]),
                ]),
                "a.mx.test,b.mx.test",
            ),
        ];
        for (plan, key) in table {
            assert_eq!(site_key(&plan), key, "{plan:?}");
        }
        // Order does not matter: the same hosts are the same site.
        let one = MxPlan::Mx(vec![host(10, "x.test", &[]), host(20, "y.test", &[])]);
        let two = MxPlan::Mx(vec![host(10, "y.test", &[]), host(20, "x.test", &[])]);
        assert_eq!(site_key(&one), site_key(&two));
    }

    #[test]
    fn shuffle_keeps_preference_order_and_families() {
        let plan = MxPlan::Mx(vec![
            host(
                10,
                "a.test",
                &["192.0.2.1", "192.0.2.2", "2001:db8::1", "2001:db8::2"],
            ),
            host(10, "b.test", &["192.0.2.3"]),
            host(10, "c.test", &["192.0.2.4"]),
            host(20, "d.test", &["192.0.2.5"]),
        ]);
        assert!(plan.has_choices());
        let mut rng = StdRng::seed_from_u64(7);
        let mut first_seen: HashMap<String, usize> = HashMap::new();
        let mut first_v4: HashMap<IpAddr, usize> = HashMap::new();
        for _ in 0..300 {
            let shuffled = plan.shuffled(&mut rng);
            let hosts = shuffled.hosts();
            assert_eq!(hosts.len(), 4);
            assert_eq!(hosts[3].name, "d.test", "lower preference stays last");
            assert!(hosts.windows(2).all(|w| w[0].preference <= w[1].preference));
            *first_seen.entry(hosts[0].name.clone()).or_default() += 1;
            let a = hosts.iter().find(|h| h.name == "a.test").unwrap();
            assert!(a.addresses[..2].iter().all(IpAddr::is_ipv4));
            assert!(a.addresses[2..].iter().all(IpAddr::is_ipv6));
            *first_v4.entry(a.addresses[0]).or_default() += 1;
        }
        // Each of the three equal-preference hosts comes first about a third of the time
        // (seeded, so this is deterministic; the bound is loose on purpose).
        for name in ["a.test", "b.test", "c.test"] {
            let n = first_seen.get(name).copied().unwrap_or(0);
            assert!((60..=140).contains(&n), "{name} first {n} times of 300");
        }
        assert_eq!(first_v4.len(), 2, "both IPv4 addresses come first at times");
    }

    #[test]
    fn nothing_to_shuffle() {
        let plan = MxPlan::Mx(vec![
            host(10, "a.test", &["192.0.2.1", "2001:db8::1"]),
            host(20, "b.test", &["192.0.2.2"]),
        ]);
        assert!(!plan.has_choices());
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(plan.shuffled(&mut rng), plan);
        assert!(!MxPlan::NullMx.has_choices());
        assert!(MxPlan::NullMx.hosts().is_empty());
        assert!(MxPlan::NullMx.is_null_mx());
    }
}
