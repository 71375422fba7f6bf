//! [`MxResolver`]: MX, A and AAAA queries on hickory-resolver, turned into an [`MxPlan`],
//! cached by TTL, with concurrent resolutions of one domain coalesced into one.
//!
//! Invariants:
//! - at most one resolution per domain is in flight: later callers wait for its outcome
//!   (hickory also merges identical queries in flight; this layer merges whole resolutions,
//!   MX and address lookups and plan assembly, and shares their cached outcome);
//! - an outcome is cached (keyed by the lower-case domain) before its in-flight entry is
//!   removed, under one lock, so no caller can slip between the two and query again;
//! - the lock is never held across an `.await`;
//! - plans are cached in canonical order and shuffled when handed out (see [`super::plan`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError as HickoryDnsError, NetError};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use tokio::sync::OnceCell;
use tokio::task::JoinSet;

use super::cache::{Outcome, PlanCache};
use super::{DnsConfig, DnsError, MxHost, MxPlan};

/// Most MX hosts of one domain that are considered (the lowest preferences); more are
/// ignored, so a hostile zone cannot make one resolution fan out without bound.
pub const MAX_MX_HOSTS: usize = 16;

/// Most addresses kept per MX host and family.
pub const MAX_ADDRESSES_PER_FAMILY: usize = 16;

/// Resolves recipient domains to delivery plans. Cheap to clone (shared state); share one
/// per process so the cache and the coalescing cover every pool.
#[derive(Clone)]
pub struct MxResolver {
    inner: Arc<Inner>,
}

struct Inner {
    resolver: TokioResolver,
    config: DnsConfig,
    state: Mutex<State>,
    /// Resolutions run (cache misses after coalescing).
    resolutions: AtomicU64,
}

struct State {
    cache: PlanCache,
    /// Resolutions in progress, by domain: whoever finds one waits on its cell.
    inflight: HashMap<String, Arc<OnceCell<Outcome>>>,
}

impl std::fmt::Debug for MxResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MxResolver")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl MxResolver {
    /// A resolver using the configured name servers (UDP and TCP on the port given), or the
    /// system's when none is configured. Must be called inside a tokio runtime only when
    /// resolving; construction itself does no I/O beyond reading `/etc/resolv.conf`.
    pub fn new(config: &DnsConfig) -> Result<MxResolver, DnsError> {
        config.validate()?;
        let mut builder = if config.nameservers.is_empty() {
            TokioResolver::builder_tokio().map_err(|source| DnsError::Setup { source })?
        } else {
            let servers = config
                .nameservers
                .iter()
                .map(|address| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = address.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = address.port();
                    NameServerConfig::new(address.ip(), true, vec![udp, tcp])
                })
                .collect();
            Resolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                TokioRuntimeProvider::default(),
            )
        };
        let options = builder.options_mut();
        options.timeout = config.timeout;
        // hickory counts retries after the first try; we count tries.
        options.attempts = config.attempts - 1;
        // Mail routing comes from the DNS only, as in Postfix's default: /etc/hosts entries
        // must not redirect an MX host.
        options.use_hosts_file = ResolveHosts::Never;
        let resolver = builder
            .build()
            .map_err(|source| DnsError::Setup { source })?;
        Ok(MxResolver {
            inner: Arc::new(Inner {
                resolver,
                config: config.clone(),
                state: Mutex::new(State {
                    cache: PlanCache::new(config.cache_size),
                    inflight: HashMap::new(),
                }),
                resolutions: AtomicU64::new(0),
            }),
        })
    }

    /// The delivery plan for `domain` (case and a trailing dot do not matter).
    ///
    /// Served from the cache while the answer's TTL runs; otherwise one resolution runs and
    /// every concurrent caller for the same domain waits for it. Hosts of equal preference,
    /// and each host's addresses within a family, come in a fresh random order on every call.
    pub async fn resolve(&self, domain: &str) -> Result<Arc<MxPlan>, DnsError> {
        let key = normalize(domain);
        let cell = {
            let mut state = self.state();
            if let Some(outcome) = state.cache.get(&key, Instant::now()) {
                metrics::counter!("dns_cache_hits_total").increment(1);
                return hand_out(outcome);
            }
            state.inflight.entry(key.clone()).or_default().clone()
        };
        let outcome = cell
            .get_or_init(|| self.resolve_and_cache(&key, &cell))
            .await
            .clone();
        hand_out(outcome)
    }

    /// Domains currently cached (expired entries included until swept), for the admin API.
    pub fn cached_domains(&self) -> usize {
        self.state().cache.len()
    }

    /// Resolutions run so far: calls not served by the cache, concurrent calls for one
    /// domain counting once. For the admin API and tests.
    pub fn resolutions(&self) -> u64 {
        self.inner.resolutions.load(Ordering::Relaxed)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated (every update is
        // one call), so a poisoned lock is still usable.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn resolve_and_cache(&self, key: &str, cell: &Arc<OnceCell<Outcome>>) -> Outcome {
        metrics::counter!("dns_cache_misses_total").increment(1);
        self.inner.resolutions.fetch_add(1, Ordering::Relaxed);
        let (outcome, ttl) = self.lookup(key).await;
        if let Err(error) = &outcome {
            metrics::counter!("dns_resolve_errors_total", "kind" => error.kind()).increment(1);
        }
        let now = Instant::now();
        let mut state = self.state();
        if let Some(ttl) = ttl {
            state
                .cache
                .insert(key.to_owned(), outcome.clone(), now + ttl, now);
        }
        if state
            .inflight
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, cell))
        {
            state.inflight.remove(key);
        }
        outcome
    }

    /// Resolves `domain` (already normalised) without the cache. Returns the outcome and how
    /// long it may be cached (`None`: not at all).
    async fn lookup(&self, domain: &str) -> (Outcome, Option<Duration>) {
        let Some(name) = parse_name(domain) else {
            return (
                Err(DnsError::InvalidDomain {
                    domain: domain.to_owned(),
                }),
                None,
            );
        };
        let mx = match self
            .inner
            .resolver
            .lookup(name.clone(), RecordType::MX)
            .await
        {
            Ok(lookup) => {
                let records: Vec<(u16, Name)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some((mx.preference, mx.exchange.clone())),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    // An answer with only a CNAME chain and no MX at its end: NODATA.
                    Err(None)
                } else {
                    Ok((records, lookup.valid_until()))
                }
            }
            Err(error) if error.is_nx_domain() => {
                let ttl = self.negative_ttl(negative_ttl_of(&error));
                return (
                    Err(DnsError::NxDomain {
                        domain: domain.to_owned(),
                    }),
                    Some(ttl),
                );
            }
            Err(error) if error.is_no_records_found() => Err(negative_ttl_of(&error)),
            Err(error) => return (Err(classify(domain, error)), self.error_ttl()),
        };
        match mx {
            Ok((records, valid_until)) => self.mx_plan(domain, records, valid_until).await,
            Err(mx_negative_ttl) => self.implicit_plan(domain, name, mx_negative_ttl).await,
        }
    }

    /// RFC 5321 section 5.1: no MX records, so the domain itself is the mail host if it has
    /// an address.
    async fn implicit_plan(
        &self,
        domain: &str,
        name: Name,
        mx_negative_ttl: Option<u32>,
    ) -> (Outcome, Option<Duration>) {
        match host_addresses(self.inner.resolver.clone(), name).await {
            HostLookup::Found {
                addresses,
                valid_until,
                degraded,
            } => {
                let plan = MxPlan::Implicit(MxHost {
                    preference: 0,
                    name: domain.to_owned(),
                    addresses,
                });
                let ttl = self.positive_ttl(valid_until, degraded);
                (Ok(Arc::new(plan)), ttl)
            }
            HostLookup::NoAddress { negative_ttl } => {
                let ttl = min_option(mx_negative_ttl, negative_ttl);
                (
                    Err(DnsError::NoRecords {
                        domain: domain.to_owned(),
                    }),
                    Some(self.negative_ttl(ttl)),
                )
            }
            HostLookup::Failed(error) => (Err(error), self.error_ttl()),
        }
    }

    /// A plan from MX records: null MX, or the hosts that resolve, in preference order.
    async fn mx_plan(
        &self,
        domain: &str,
        mut records: Vec<(u16, Name)>,
        valid_until: Instant,
    ) -> (Outcome, Option<Duration>) {
        records.sort_by_cached_key(|(preference, name)| (*preference, host_name(name)));
        records.dedup();
        // RFC 7505: a single "0 ." record means the domain accepts no mail.
        if let [(0, exchange)] = records.as_slice()
            && exchange.is_root()
        {
            return (
                Ok(Arc::new(MxPlan::NullMx)),
                self.positive_ttl(valid_until, false),
            );
        }
        // A "." among other records (or with another preference) is not a host: skip it.
        let mut seen = std::collections::HashSet::new();
        let candidates: Vec<(u16, String, Name)> = records
            .into_iter()
            .filter(|(_, exchange)| !exchange.is_root())
            .filter_map(|(preference, exchange)| {
                let text = host_name(&exchange);
                seen.insert(text.clone())
                    .then_some((preference, text, exchange))
            })
            .take(MAX_MX_HOSTS)
            .collect();

        let mut lookups = JoinSet::new();
        for (index, (_, _, exchange)) in candidates.iter().enumerate() {
            let resolver = self.inner.resolver.clone();
            let exchange = exchange.clone();
            lookups.spawn(async move { (index, host_addresses(resolver, exchange).await) });
        }
        let mut results: Vec<Option<HostLookup>> = (0..candidates.len()).map(|_| None).collect();
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok((index, lookup)) => results[index] = Some(lookup),
                // A panicking lookup task is a bug in the resolver; report it as transient.
                Err(_) => {
                    return (
                        Err(DnsError::Transport {
                            name: domain.to_owned(),
                            source: NetError::Message("MX host lookup task failed"),
                        }),
                        None,
                    );
                }
            }
        }

        let mut hosts = Vec::new();
        let mut plan_valid_until = valid_until;
        let mut degraded = false;
        let mut first_failure = None;
        let mut negative = None;
        for ((preference, name, _), result) in candidates.iter().zip(results) {
            match result {
                Some(HostLookup::Found {
                    addresses,
                    valid_until,
                    degraded: partial,
                }) => {
                    plan_valid_until = plan_valid_until.min(valid_until);
                    degraded |= partial;
                    hosts.push(MxHost {
                        preference: *preference,
                        name: name.clone(),
                        addresses,
                    });
                }
                Some(HostLookup::NoAddress { negative_ttl }) => {
                    negative = min_option(negative, negative_ttl);
                }
                Some(HostLookup::Failed(error)) => {
                    degraded = true;
                    first_failure.get_or_insert(error);
                }
                None => degraded = true,
            }
        }
        if !hosts.is_empty() {
            let ttl = self.positive_ttl(plan_valid_until, degraded);
            return (Ok(Arc::new(MxPlan::Mx(hosts))), ttl);
        }
        if let Some(error) = first_failure {
            return (Err(error), self.error_ttl());
        }
        (
            Err(DnsError::NoUsableHost {
                domain: domain.to_owned(),
                hosts: candidates.into_iter().map(|(_, name, _)| name).collect(),
            }),
            Some(self.negative_ttl(negative)),
        )
    }

    /// Cache time of a positive answer: its remaining TTL (from now, when the answer is in)
    /// within `[min_ttl, max_ttl]`, and no longer than `error_ttl` if part of it failed
    /// transiently (so a host that was down is looked up again soon).
    fn positive_ttl(&self, valid_until: Instant, degraded: bool) -> Option<Duration> {
        let config = &self.inner.config;
        let ttl = valid_until
            .saturating_duration_since(Instant::now())
            .clamp(config.min_ttl, config.max_ttl);
        if degraded {
            self.error_ttl().map(|e| e.min(ttl))
        } else {
            Some(ttl)
        }
    }

    /// Cache time of a negative answer (RFC 2308): the SOA-derived TTL, or the minimum when
    /// there was no SOA, within `[negative_min_ttl, negative_max_ttl]`.
    fn negative_ttl(&self, seconds: Option<u32>) -> Duration {
        let config = &self.inner.config;
        seconds
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(config.negative_min_ttl)
            .clamp(config.negative_min_ttl, config.negative_max_ttl)
    }

    fn error_ttl(&self) -> Option<Duration> {
        let ttl = self.inner.config.error_ttl;
        (!ttl.is_zero()).then_some(ttl)
    }
}

/// What the A and AAAA queries of one host gave.
enum HostLookup {
    /// At least one address. `degraded`: one of the two queries failed transiently.
    Found {
        addresses: Vec<IpAddr>,
        valid_until: Instant,
        degraded: bool,
    },
    /// Both queries got an authoritative NXDOMAIN or NODATA.
    NoAddress { negative_ttl: Option<u32> },
    /// No address, and at least one query failed transiently.
    Failed(DnsError),
}

/// One family's query result.
enum FamilyLookup {
    Addresses(Vec<IpAddr>, Instant),
    NoData(Option<u32>),
    Failed(DnsError),
}

async fn host_addresses(resolver: TokioResolver, name: Name) -> HostLookup {
    let (v4, v6) = tokio::join!(
        family(&resolver, &name, RecordType::A),
        family(&resolver, &name, RecordType::AAAA)
    );
    let mut addresses = Vec::new();
    let mut valid_until: Option<Instant> = None;
    let mut negative = None;
    let mut failure = None;
    for result in [v4, v6] {
        match result {
            FamilyLookup::Addresses(found, until) => {
                addresses.extend(found);
                valid_until = Some(valid_until.map_or(until, |v| v.min(until)));
            }
            FamilyLookup::NoData(ttl) => negative = min_option(negative, ttl),
            FamilyLookup::Failed(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    match (valid_until, failure) {
        (Some(valid_until), failure) => HostLookup::Found {
            addresses,
            valid_until,
            degraded: failure.is_some(),
        },
        (None, Some(error)) => HostLookup::Failed(error),
        (None, None) => HostLookup::NoAddress {
            negative_ttl: negative,
        },
    }
}

async fn family(resolver: &TokioResolver, name: &Name, record_type: RecordType) -> FamilyLookup {
    match resolver.lookup(name.clone(), record_type).await {
        Ok(lookup) => {
            let mut addresses: Vec<IpAddr> = lookup
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(a) if record_type == RecordType::A => Some(IpAddr::V4(a.0)),
                    RData::AAAA(a) if record_type == RecordType::AAAA => Some(IpAddr::V6(a.0)),
                    _ => None,
                })
                .collect();
            addresses.sort_unstable();
            addresses.dedup();
            addresses.truncate(MAX_ADDRESSES_PER_FAMILY);
            if addresses.is_empty() {
                FamilyLookup::NoData(None)
            } else {
                FamilyLookup::Addresses(addresses, lookup.valid_until())
            }
        }
        Err(error) if error.is_nx_domain() || error.is_no_records_found() => {
            FamilyLookup::NoData(negative_ttl_of(&error))
        }
        Err(error) => FamilyLookup::Failed(classify(&host_name(name), error)),
    }
}

/// Maps a resolver error that is not an authoritative negative answer.
fn classify(name: &str, error: NetError) -> DnsError {
    let name = name.to_owned();
    match error {
        NetError::Timeout => DnsError::Timeout { name },
        NetError::Dns(HickoryDnsError::ResponseCode(code)) => DnsError::ServFail {
            name,
            rcode: code.to_string(),
        },
        source => DnsError::Transport { name, source },
    }
}

fn negative_ttl_of(error: &NetError) -> Option<u32> {
    match error {
        NetError::Dns(HickoryDnsError::NoRecordsFound(no_records)) => no_records.negative_ttl,
        _ => None,
    }
}

fn min_option(a: Option<u32>, b: Option<u32>) -> Option<u32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The cache key: trimmed, without the trailing dot, lower-case.
fn normalize(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_lowercase()
}

/// The domain as an absolute DNS name (IDNs become A-labels); `None` if it is not one.
fn parse_name(domain: &str) -> Option<Name> {
    if domain.is_empty() || domain.starts_with('[') || domain.starts_with('.') {
        return None;
    }
    let mut name = Name::from_str_relaxed(domain).ok()?;
    if name.is_root() {
        return None;
    }
    name.set_fqdn(true);
    Some(name)
}

/// A host name as the plan shows it: ASCII, lower-case, no trailing dot.
fn host_name(name: &Name) -> String {
    name.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

/// The outcome as the caller gets it: a shuffled copy of the plan when it has choices.
fn hand_out(outcome: Outcome) -> Result<Arc<MxPlan>, DnsError> {
    let plan = outcome?;
    if plan.has_choices() {
        Ok(Arc::new(plan.shuffled(&mut rand::rng())))
    } else {
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_and_checked() {
        let table = [
            ("Example.TEST.", "example.test", Some("example.test.")),
            (
                "  mail.example.test ",
                "mail.example.test",
                Some("mail.example.test."),
            ),
            (
                "bücher.example",
                "bücher.example",
                Some("xn--bcher-kva.example."),
            ),
            ("", "", None),
            ("[192.0.2.1]", "[192.0.2.1]", None),
            (".", "", None),
            ("a..b", "a..b", None),
            (
                "a-label-that-is-far-too-long-to-be-a-dns-label-because-it-has-more-than-63.test",
                "a-label-that-is-far-too-long-to-be-a-dns-label-because-it-has-more-than-63.test",
                None,
            ),
        ];
        for (input, key, name) in table {
            assert_eq!(normalize(input), key, "{input:?}");
            assert_eq!(
                parse_name(&normalize(input)).map(|n| n.to_ascii()),
                name.map(str::to_owned),
                "{input:?}"
            );
        }
    }
}
