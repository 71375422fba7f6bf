//! End-to-end tests of [`MxResolver`] against a real authoritative DNS server on loopback
//! (hickory-server with an in-test handler), over UDP and TCP on one ephemeral port.
//!
//! The handler logs every query it receives, so tests count queries to prove caching and
//! coalescing. Records with TTL 0 keep hickory's own cache out of the way: whatever is not
//! re-queried was served by our cache.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA, MX, SOA};
use hickory_server::proto::rr::{Name, RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::*;

/// A query as the test server saw it.
#[derive(Debug, Clone)]
struct Seen {
    name: String,
    record_type: RecordType,
    protocol: Protocol,
}

/// The records the test server answers from. Names are absolute and lower-case.
#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<Record>>,
    /// Names that exist (NODATA instead of NXDOMAIN for types they lack).
    names: HashSet<String>,
    /// Names answered with SERVFAIL.
    servfail: HashSet<String>,
    /// Names answered with an empty truncated response over UDP (the client must use TCP).
    tcp_only: HashSet<String>,
    /// Names answered only after this delay.
    slow: HashMap<String, Duration>,
    /// Negative TTL (SOA minimum) of NXDOMAIN and NODATA answers.
    negative_ttl: u32,
}

fn fqdn(name: &str) -> String {
    let mut name = name.to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name
}

impl Zone {
    fn new() -> Zone {
        Zone::default()
    }

    fn add(mut self, owner: &str, ttl: u32, data: RData) -> Zone {
        let owner = fqdn(owner);
        let record_type = data.record_type();
        let record = Record::from_rdata(Name::from_ascii(&owner).unwrap(), ttl, data);
        self.names.insert(owner.clone());
        self.records
            .entry((owner, record_type))
            .or_default()
            .push(record);
        self
    }

    fn mx(self, owner: &str, preference: u16, exchange: &str, ttl: u32) -> Zone {
        let exchange = Name::from_ascii(fqdn(exchange)).unwrap();
        self.add(owner, ttl, RData::MX(MX::new(preference, exchange)))
    }

    fn a(self, owner: &str, address: &str, ttl: u32) -> Zone {
        self.add(owner, ttl, RData::A(A(address.parse().unwrap())))
    }

    fn aaaa(self, owner: &str, address: &str, ttl: u32) -> Zone {
        self.add(owner, ttl, RData::AAAA(AAAA(address.parse().unwrap())))
    }

    fn exists(mut self, owner: &str) -> Zone {
        self.names.insert(fqdn(owner));
        self
    }

    fn servfail(mut self, owner: &str) -> Zone {
        self.servfail.insert(fqdn(owner));
        self
    }

    fn tcp_only(mut self, owner: &str) -> Zone {
        self.tcp_only.insert(fqdn(owner));
        self
    }

    fn slow(mut self, owner: &str, delay: Duration) -> Zone {
        self.slow.insert(fqdn(owner), delay);
        self
    }
}

struct Handler {
    zone: Zone,
    soa: Record,
    log: Arc<Mutex<Vec<Seen>>>,
}

// The trait is declared with `#[async_trait]`; this is its expansion, written out so the
// test does not need the macro crate.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: ResponseHandler + 'async_trait,
        T: Time + 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.answer(request, response_handle))
    }
}

impl Handler {
    async fn answer<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let Ok(info) = request.request_info() else {
            metadata.response_code = ResponseCode::FormErr;
            return ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            });
        };
        let name = info.query.name().to_string().to_ascii_lowercase();
        let record_type = info.query.query_type();
        self.log.lock().unwrap().push(Seen {
            name: name.clone(),
            record_type,
            protocol: request.protocol(),
        });
        let zone = &self.zone;
        if let Some(delay) = zone.slow.get(&name) {
            tokio::time::sleep(*delay).await;
        }
        let no_records: &[Record] = &[];
        let (answers, soa) = if zone.servfail.contains(&name) {
            metadata.response_code = ResponseCode::ServFail;
            (no_records, no_records)
        } else if zone.tcp_only.contains(&name) && request.protocol() == Protocol::Udp {
            metadata.truncation = true;
            (no_records, no_records)
        } else {
            match zone.records.get(&(name.clone(), record_type)) {
                Some(answers) => (answers.as_slice(), no_records),
                None => {
                    metadata.response_code = if zone.names.contains(&name) {
                        ResponseCode::NoError
                    } else {
                        ResponseCode::NXDomain
                    };
                    (no_records, std::slice::from_ref(&self.soa))
                }
            }
        };
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            no_records.iter(),
            soa.iter(),
            no_records.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            }),
        }
    }
}

/// A running authoritative server for the `test.` zone on 127.0.0.1, UDP and TCP.
struct TestDns {
    address: SocketAddr,
    log: Arc<Mutex<Vec<Seen>>>,
    _server: Server<Handler>,
}

impl TestDns {
    async fn start(zone: Zone) -> TestDns {
        let soa = Record::from_rdata(
            Name::from_ascii("test.").unwrap(),
            zone.negative_ttl,
            RData::SOA(SOA::new(
                Name::from_ascii("ns.test.").unwrap(),
                Name::from_ascii("hostmaster.test.").unwrap(),
                1,
                3600,
                600,
                86_400,
                zone.negative_ttl,
            )),
        );
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut server = Server::new(Handler {
            zone,
            soa,
            log: log.clone(),
        });
        // One port for both transports: bind UDP, then TCP on the same port (retry if taken).
        let (udp, tcp) = loop {
            let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let port = udp.local_addr().unwrap().port();
            if let Ok(tcp) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                break (udp, tcp);
            }
        };
        let address = udp.local_addr().unwrap();
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 16);
        TestDns {
            address,
            log,
            _server: server,
        }
    }

    /// A resolver for this server: fast timeout, no minimum TTL, then `tweak`.
    fn resolver(&self, tweak: impl FnOnce(&mut DnsConfig)) -> MxResolver {
        let mut config = DnsConfig {
            nameservers: vec![self.address],
            timeout: Duration::from_secs(2),
            attempts: 1,
            min_ttl: Duration::ZERO,
            ..DnsConfig::default()
        };
        tweak(&mut config);
        MxResolver::new(&config).unwrap()
    }

    fn queries(&self, name: &str, record_type: RecordType) -> usize {
        let name = fqdn(name);
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.name == name && s.record_type == record_type)
            .count()
    }

    fn total_queries(&self) -> usize {
        self.log.lock().unwrap().len()
    }

    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|a| a.parse().unwrap()).collect()
}

fn names(plan: &MxPlan) -> Vec<&str> {
    plan.hosts().iter().map(|h| h.name.as_str()).collect()
}

/// The hosts the tests share: mx1..mx3 with addresses.
fn base_zone() -> Zone {
    Zone::new()
        .a("mx1.test", "127.0.0.11", 300)
        .a("mx2.test", "127.0.0.12", 300)
        .a("mx3.test", "127.0.0.13", 300)
        .aaaa("mx3.test", "::1", 300)
        .a("mx4.test", "127.0.0.14", 300)
}

#[tokio::test]
async fn mx_hosts_come_in_preference_order_with_their_addresses() {
    let dns = TestDns::start(
        base_zone()
            .mx("example.test", 20, "mx2.test", 300)
            .mx("example.test", 30, "MX3.test", 300)
            .mx("example.test", 10, "mx1.test", 300),
    )
    .await;
    let resolver = dns.resolver(|_| {});
    let plan = resolver.resolve("Example.TEST.").await.unwrap();
    assert_eq!(
        *plan,
        MxPlan::Mx(vec![
            MxHost {
                preference: 10,
                name: "mx1.test".into(),
                addresses: ips(&["127.0.0.11"]),
            },
            MxHost {
                preference: 20,
                name: "mx2.test".into(),
                addresses: ips(&["127.0.0.12"]),
            },
            MxHost {
                preference: 30,
                name: "mx3.test".into(),
                addresses: ips(&["127.0.0.13", "::1"]),
            },
        ])
    );
    assert_eq!(site_key(&plan), "mx1.test,mx2.test,mx3.test");
    // Every name was asked once (MX for the domain, A and AAAA for each host).
    assert_eq!(dns.queries("example.test", RecordType::MX), 1);
    for host in ["mx1.test", "mx2.test", "mx3.test"] {
        assert_eq!(dns.queries(host, RecordType::A), 1, "{host}");
        assert_eq!(dns.queries(host, RecordType::AAAA), 1, "{host}");
    }
    assert!(dns.seen().iter().all(|s| s.protocol == Protocol::Udp));
}

#[tokio::test]
async fn equal_preferences_are_shuffled_on_every_resolve() {
    let dns = TestDns::start(
        base_zone()
            .mx("spread.test", 10, "mx1.test", 300)
            .mx("spread.test", 10, "mx2.test", 300)
            .mx("spread.test", 10, "mx3.test", 300)
            .mx("spread.test", 20, "mx4.test", 300),
    )
    .await;
    let resolver = dns.resolver(|c| c.min_ttl = Duration::from_secs(60));
    let mut first: HashMap<String, usize> = HashMap::new();
    let rounds = 150;
    for _ in 0..rounds {
        let plan = resolver.resolve("spread.test").await.unwrap();
        assert_eq!(plan.hosts().len(), 4);
        assert_eq!(plan.hosts()[3].name, "mx4.test");
        *first.entry(plan.hosts()[0].name.clone()).or_default() += 1;
    }
    // Expected 50 each; below 15 has a probability under 1e-9 for a fair shuffle.
    for host in ["mx1.test", "mx2.test", "mx3.test"] {
        let n = first.get(host).copied().unwrap_or(0);
        assert!(
            n >= 15,
            "{host} first only {n} of {rounds} times: {first:?}"
        );
    }
    // All of it from one resolution: the shuffle happens on hand-out, not by re-querying.
    assert_eq!(dns.queries("spread.test", RecordType::MX), 1);
}

#[tokio::test]
async fn implicit_mx_is_the_domain_itself() {
    let dns = TestDns::start(base_zone().a("plain.test", "127.0.0.20", 300).aaaa(
        "plain.test",
        "::1",
        300,
    ))
    .await;
    let resolver = dns.resolver(|_| {});
    let plan = resolver.resolve("plain.test").await.unwrap();
    assert_eq!(
        *plan,
        MxPlan::Implicit(MxHost {
            preference: 0,
            name: "plain.test".into(),
            addresses: ips(&["127.0.0.20", "::1"]),
        })
    );
    assert_eq!(site_key(&plan), "plain.test");
}

#[tokio::test]
async fn null_mx_and_a_stray_dot_among_real_hosts() {
    let dns = TestDns::start(
        base_zone()
            .mx("nullmx.test", 0, ".", 300)
            // A "." with another preference is not a null MX, just an unusable host.
            .mx("dot10.test", 10, ".", 300)
            // A "." beside real hosts is ignored.
            .mx("mixed.test", 0, ".", 300)
            .mx("mixed.test", 10, "mx1.test", 300),
    )
    .await;
    let resolver = dns.resolver(|_| {});
    let plan = resolver.resolve("nullmx.test").await.unwrap();
    assert_eq!(*plan, MxPlan::NullMx);
    assert!(plan.is_null_mx());
    assert_eq!(site_key(&plan), "");
    // No address lookups for a null MX.
    assert_eq!(dns.total_queries(), 1);

    let error = resolver.resolve("dot10.test").await.unwrap_err();
    assert!(
        matches!(&error, DnsError::NoUsableHost { hosts, .. } if hosts.is_empty()),
        "{error:?}"
    );
    assert!(error.is_permanent());

    let plan = resolver.resolve("mixed.test").await.unwrap();
    assert_eq!(names(&plan), ["mx1.test"]);
}

#[tokio::test]
async fn negative_answers_are_permanent_and_cached() {
    let dns = TestDns::start(base_zone().exists("empty.test")).await;
    let resolver = dns.resolver(|c| c.negative_min_ttl = Duration::from_secs(60));
    // (domain, expected variant, enhanced code)
    let table = [
        ("missing.test", "nxdomain", "5.1.2"),
        ("empty.test", "no_records", "5.1.2"),
        ("", "invalid_domain", "5.1.3"),
        ("[127.0.0.1]", "invalid_domain", "5.1.3"),
    ];
    for (domain, kind, code) in table {
        for round in 0..2 {
            let error = resolver.resolve(domain).await.unwrap_err();
            assert_eq!(error.kind(), kind, "{domain} round {round}: {error}");
            assert!(error.is_permanent(), "{domain}");
            assert_eq!(error.enhanced_code(), code, "{domain}");
        }
    }
    // Each negative answer was asked for once: the second round came from the cache (the
    // SOA minimum is 0, so the resolver library itself does not cache them).
    assert_eq!(dns.queries("missing.test", RecordType::MX), 1);
    assert_eq!(dns.queries("empty.test", RecordType::MX), 1);
    assert_eq!(dns.queries("empty.test", RecordType::A), 1);
    assert_eq!(dns.queries("empty.test", RecordType::AAAA), 1);
}

#[tokio::test]
async fn mx_hosts_without_address_are_skipped() {
    let dns = TestDns::start(
        base_zone()
            .exists("noaddr.test")
            .mx("partial.test", 10, "noaddr.test", 300)
            .mx("partial.test", 20, "nxhost.test", 300)
            .mx("partial.test", 30, "mx1.test", 300)
            .mx("dead.test", 10, "noaddr.test", 300)
            .mx("dead.test", 20, "nxhost.test", 300),
    )
    .await;
    let resolver = dns.resolver(|_| {});
    let plan = resolver.resolve("partial.test").await.unwrap();
    assert_eq!(names(&plan), ["mx1.test"]);
    assert_eq!(plan.hosts()[0].preference, 30);

    let error = resolver.resolve("dead.test").await.unwrap_err();
    match &error {
        DnsError::NoUsableHost { domain, hosts } => {
            assert_eq!(domain, "dead.test");
            assert_eq!(hosts, &["noaddr.test", "nxhost.test"]);
        }
        other => panic!("{other:?}"),
    }
    assert!(error.is_permanent());
    assert_eq!(error.enhanced_code(), "5.4.4");
}

#[tokio::test]
async fn server_failures_are_transient() {
    let dns = TestDns::start(
        base_zone()
            .servfail("broken.test")
            .servfail("sf-host.test")
            .mx("hostfail.test", 10, "sf-host.test", 300)
            .mx("degraded.test", 10, "sf-host.test", 300)
            .mx("degraded.test", 20, "mx2.test", 300),
    )
    .await;
    let resolver = dns.resolver(|c| c.error_ttl = Duration::ZERO);
    let error = resolver.resolve("broken.test").await.unwrap_err();
    assert!(
        matches!(&error, DnsError::ServFail { name, .. } if name == "broken.test"),
        "{error:?}"
    );
    assert!(!error.is_permanent());
    assert_eq!(error.enhanced_code(), "4.4.3");

    // The only MX host cannot be resolved right now: transient, not "no usable host".
    let error = resolver.resolve("hostfail.test").await.unwrap_err();
    assert!(
        matches!(&error, DnsError::ServFail { name, .. } if name == "sf-host.test"),
        "{error:?}"
    );
    assert!(!error.is_permanent());

    // A backup host that resolves is used meanwhile.
    let plan = resolver.resolve("degraded.test").await.unwrap();
    assert_eq!(names(&plan), ["mx2.test"]);

    // error_ttl = 0: failures are not cached, so asking again queries again.
    let before = dns.queries("broken.test", RecordType::MX);
    resolver.resolve("broken.test").await.unwrap_err();
    assert!(dns.queries("broken.test", RecordType::MX) > before);
}

#[tokio::test]
async fn failures_are_remembered_for_error_ttl() {
    let dns = TestDns::start(base_zone().servfail("broken.test")).await;
    let resolver = dns.resolver(|c| c.error_ttl = Duration::from_secs(60));
    resolver.resolve("broken.test").await.unwrap_err();
    let asked = dns.queries("broken.test", RecordType::MX);
    let error = resolver.resolve("broken.test").await.unwrap_err();
    assert_eq!(error.kind(), "servfail");
    assert_eq!(dns.queries("broken.test", RecordType::MX), asked);
}

#[tokio::test]
async fn plans_are_cached_for_min_ttl_then_asked_again() {
    // TTL 0 everywhere: only our cache (min_ttl) can keep the plan.
    let dns = TestDns::start(Zone::new().a("mx1.test", "127.0.0.11", 0).mx(
        "cached.test",
        10,
        "mx1.test",
        0,
    ))
    .await;
    let resolver = dns.resolver(|c| c.min_ttl = Duration::from_millis(700));
    resolver.resolve("cached.test").await.unwrap();
    let asked = dns.total_queries();
    assert_eq!(asked, 3, "MX, A, AAAA");
    for _ in 0..5 {
        let plan = resolver.resolve("CACHED.test").await.unwrap();
        assert_eq!(names(&plan), ["mx1.test"]);
    }
    assert_eq!(dns.total_queries(), asked, "served from the cache");
    assert_eq!(resolver.cached_domains(), 1);
    tokio::time::sleep(Duration::from_millis(900)).await;
    resolver.resolve("cached.test").await.unwrap();
    assert_eq!(
        dns.queries("cached.test", RecordType::MX),
        2,
        "expired: asked again"
    );
}

#[tokio::test]
async fn plans_are_cached_no_longer_than_their_ttl() {
    let dns = TestDns::start(Zone::new().a("mx1.test", "127.0.0.11", 300).mx(
        "short.test",
        10,
        "mx1.test",
        2,
    ))
    .await;
    let resolver = dns.resolver(|c| c.max_ttl = Duration::from_secs(3600));
    resolver.resolve("short.test").await.unwrap();
    resolver.resolve("short.test").await.unwrap();
    assert_eq!(dns.queries("short.test", RecordType::MX), 1);
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    resolver.resolve("short.test").await.unwrap();
    assert_eq!(dns.queries("short.test", RecordType::MX), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_resolutions_of_one_domain_share_one_query() {
    // TTL 0 and min_ttl 0: nothing is cached, so only coalescing can save work. The slow
    // answer keeps the first resolution in flight while the others arrive.
    let dns = TestDns::start(
        Zone::new()
            .a("mx1.test", "127.0.0.11", 0)
            .mx("busy.test", 10, "mx1.test", 0)
            .slow("busy.test", Duration::from_millis(300)),
    )
    .await;
    let resolver = dns.resolver(|_| {});
    let mut tasks = tokio::task::JoinSet::new();
    let start = Arc::new(tokio::sync::Barrier::new(20));
    for _ in 0..20 {
        let resolver = resolver.clone();
        let start = start.clone();
        tasks.spawn(async move {
            start.wait().await;
            resolver.resolve("busy.test").await
        });
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(names(&result.unwrap().unwrap()), ["mx1.test"]);
    }
    assert_eq!(resolver.resolutions(), 1, "twenty callers, one resolution");
    // One resolution sends one MX query; hickory resends a UDP query that waits long (3
    // queries reach the server when the answer takes 700 ms), which a stalled machine
    // could cause, so the server's count is bounded, not exact. Without coalescing it
    // would be 20.
    let mx_queries = dns.queries("busy.test", RecordType::MX);
    assert!((1..=3).contains(&mx_queries), "{mx_queries} MX queries");
    assert_eq!(dns.queries("mx1.test", RecordType::A), 1);
    assert_eq!(resolver.cached_domains(), 0, "TTL 0: nothing kept");
    // And nothing is left in flight: the next call resolves again.
    resolver.resolve("busy.test").await.unwrap();
    assert_eq!(resolver.resolutions(), 2);
    assert_eq!(dns.queries("busy.test", RecordType::MX), 2);
}

#[tokio::test]
async fn truncated_udp_answers_are_retried_over_tcp_on_the_same_port() {
    let dns = TestDns::start(
        base_zone()
            .mx("big.test", 10, "mx1.test", 300)
            .tcp_only("big.test"),
    )
    .await;
    let resolver = dns.resolver(|_| {});
    let plan = resolver.resolve("big.test").await.unwrap();
    assert_eq!(names(&plan), ["mx1.test"]);
    let protocols: Vec<Protocol> = dns
        .seen()
        .iter()
        .filter(|s| s.name == "big.test.")
        .map(|s| s.protocol)
        .collect();
    assert_eq!(protocols, [Protocol::Udp, Protocol::Tcp]);
}

#[tokio::test]
async fn an_unresponsive_server_times_out() {
    // A UDP socket nobody reads, and no TCP listener on its port.
    let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = DnsConfig {
        nameservers: vec![silent.local_addr().unwrap()],
        timeout: Duration::from_millis(300),
        attempts: 2,
        error_ttl: Duration::ZERO,
        ..DnsConfig::default()
    };
    let resolver = MxResolver::new(&config).unwrap();
    let started = Instant::now();
    let error = resolver.resolve("example.test").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(&error, DnsError::Timeout { name } if name == "example.test"),
        "{error:?}"
    );
    assert!(!error.is_permanent());
    assert_eq!(error.enhanced_code(), "4.4.3");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
}

#[test]
fn resolver_refuses_a_bad_config() {
    let config = DnsConfig {
        attempts: 0,
        ..DnsConfig::default()
    };
    let error = MxResolver::new(&config).unwrap_err();
    assert!(
        matches!(
            error,
            DnsError::InvalidConfig {
                key: "dns.attempts",
                ..
            }
        ),
        "{error:?}"
    );
}
