//! An in-process authoritative DNS server for tests: the fake ISP's DNS, serving MX, A, AAAA
//! and TXT records from memory over UDP and TCP on one loopback port.
//!
//! Built on hickory-server 0.26: a [`Catalog`] of [`InMemoryZoneHandler`]s, one per declared
//! zone, served by a [`Server`].
//!
//! Invariants:
//! - A root zone (`.`) is always served, so the server is authoritative for every name:
//!   a name with no record is `NXDOMAIN` (with the SOA of the most specific zone holding
//!   it), never `REFUSED`. Declaring zones (`example.com`) only changes which SOA is given.
//! - UDP and TCP listen on the same port ([`TestDns::addr`]).
//! - Names are written as plain text (`example.com`, with or without the final dot);
//!   they are checked when the server starts or records are inserted, not when added.
//!
//! ```no_run
//! # async fn example() -> Result<(), benches::dns::DnsError> {
//! use std::net::Ipv4Addr;
//! use benches::dns::{Records, TestDns};
//!
//! let mut records = Records::new();
//! records
//!     .zone("gmail.test")
//!     .mx("gmail.test", 10, "mx1.gmail.test")
//!     .a("mx1.gmail.test", Ipv4Addr::new(127, 0, 0, 2))
//!     .null_mx("nomail.test");
//! let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), records).await?;
//! // ... point the resolver under test at dns.addr() ...
//! dns.stop().await;
//! # Ok(())
//! # }
//! ```

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::ProtoError;
use hickory_proto::rr::rdata::{A, AAAA, MX, SOA, TXT};
use hickory_proto::rr::{LowerName, Name, RData, Record};
use hickory_server::Server;
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use tokio::net::{TcpListener, UdpSocket};

/// TTL of records unless [`Records::ttl`] says otherwise, in seconds.
pub const DEFAULT_TTL: u32 = 300;
/// Negative-caching TTL (the SOA minimum) unless [`Records::negative_ttl`] says otherwise.
pub const DEFAULT_NEGATIVE_TTL: u32 = 60;
/// A TCP client idle this long is disconnected.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// Tries at finding a port free for both UDP and TCP when asked for port 0.
const BIND_ATTEMPTS: usize = 16;
/// Longest wait for the server tasks in [`TestDns::stop`].
const STOP_GRACE: Duration = Duration::from_secs(2);
/// Longest character-string in a TXT record (RFC 1035 3.3).
const MAX_TXT_STRING: usize = 255;

/// Why the DNS server could not start or take records.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// A name that is not a valid domain name.
    #[error("invalid domain name {name:?}: {source}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why hickory refused it.
        source: ProtoError,
    },
    /// A socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: io::Error,
    },
    /// The zone refused a record (a CNAME conflict, for instance).
    #[error("zone {zone} refused the record for {name}")]
    Refused {
        /// The zone.
        zone: String,
        /// The record's name.
        name: String,
    },
    /// [`TestDns::insert`] was given a zone the server did not start with.
    #[error("zone {0} must be declared before the server starts")]
    NewZone(String),
}

/// The data of one record, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Data {
    Mx { preference: u16, exchange: String },
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Txt(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    ttl: u32,
    data: Data,
}

/// Zones and records to serve, added with chained calls.
#[derive(Debug, Clone)]
pub struct Records {
    zones: Vec<String>,
    entries: Vec<Entry>,
    ttl: u32,
    negative_ttl: u32,
}

impl Default for Records {
    fn default() -> Self {
        Records::new()
    }
}

impl Records {
    /// No records; TTLs [`DEFAULT_TTL`] and [`DEFAULT_NEGATIVE_TTL`].
    pub fn new() -> Records {
        Records {
            zones: Vec::new(),
            entries: Vec::new(),
            ttl: DEFAULT_TTL,
            negative_ttl: DEFAULT_NEGATIVE_TTL,
        }
    }

    /// Sets the TTL of the records added after this call.
    pub fn ttl(&mut self, seconds: u32) -> &mut Self {
        self.ttl = seconds;
        self
    }

    /// Sets the negative-caching TTL (SOA minimum and SOA TTL) of every zone.
    pub fn negative_ttl(&mut self, seconds: u32) -> &mut Self {
        self.negative_ttl = seconds;
        self
    }

    /// Declares a zone (`example.com`) with its own SOA. Optional: names outside every
    /// declared zone are served from the root zone.
    pub fn zone(&mut self, origin: &str) -> &mut Self {
        self.zones.push(origin.to_owned());
        self
    }

    fn push(&mut self, name: &str, data: Data) -> &mut Self {
        self.entries.push(Entry {
            name: name.to_owned(),
            ttl: self.ttl,
            data,
        });
        self
    }

    /// `name MX preference exchange`.
    pub fn mx(&mut self, name: &str, preference: u16, exchange: &str) -> &mut Self {
        self.push(
            name,
            Data::Mx {
                preference,
                exchange: exchange.to_owned(),
            },
        )
    }

    /// `name MX 0 .`: the domain accepts no mail (RFC 7505).
    pub fn null_mx(&mut self, name: &str) -> &mut Self {
        self.mx(name, 0, ".")
    }

    /// `name A address`.
    pub fn a(&mut self, name: &str, address: Ipv4Addr) -> &mut Self {
        self.push(name, Data::A(address))
    }

    /// `name AAAA address`.
    pub fn aaaa(&mut self, name: &str, address: Ipv6Addr) -> &mut Self {
        self.push(name, Data::Aaaa(address))
    }

    /// `name TXT text`; text longer than 255 octets is split into several strings of one
    /// record, as DKIM keys are.
    pub fn txt(&mut self, name: &str, text: &str) -> &mut Self {
        self.push(name, Data::Txt(text.to_owned()))
    }
}

/// Parses a domain name given as text, as a fully qualified name.
fn fqdn(name: &str) -> Result<Name, DnsError> {
    let trimmed = name.trim();
    let text = if trimmed.ends_with('.') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}.")
    };
    Name::from_ascii(&text).map_err(|source| DnsError::InvalidName {
        name: name.to_owned(),
        source,
    })
}

/// Splits text into TXT character-strings of at most 255 octets, at character boundaries.
fn txt_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut current = String::new();
    for ch in text.chars() {
        if current.len() + ch.len_utf8() > MAX_TXT_STRING {
            strings.push(std::mem::take(&mut current));
        }
        current.push(ch);
    }
    if !current.is_empty() || strings.is_empty() {
        strings.push(current);
    }
    strings
}

impl Entry {
    fn record(&self) -> Result<Record, DnsError> {
        let name = fqdn(&self.name)?;
        let data = match &self.data {
            Data::Mx {
                preference,
                exchange,
            } => {
                let exchange = if exchange == "." {
                    Name::root()
                } else {
                    fqdn(exchange)?
                };
                RData::MX(MX::new(*preference, exchange))
            }
            Data::A(address) => RData::A(A(*address)),
            Data::Aaaa(address) => RData::AAAA(AAAA(*address)),
            Data::Txt(text) => RData::TXT(TXT::new(txt_strings(text))),
        };
        Ok(Record::from_rdata(name, self.ttl, data))
    }
}

/// One served zone.
struct Zone {
    origin: Name,
    handler: Arc<InMemoryZoneHandler>,
}

/// The serial every zone starts with; records inserted later keep it (tests do not transfer
/// zones).
const SERIAL: u32 = 1;

fn new_zone(origin: Name, negative_ttl: u32) -> InMemoryZoneHandler {
    let mut handler =
        InMemoryZoneHandler::empty(origin.clone(), ZoneType::Primary, AxfrPolicy::Deny);
    let label = |prefix: &str| {
        Name::from_ascii(prefix)
            .and_then(|n| n.append_domain(&origin))
            .unwrap_or_else(|_| Name::root())
    };
    let soa = SOA::new(
        label("ns"),
        label("hostmaster"),
        SERIAL,
        3600,
        600,
        86_400,
        negative_ttl,
    );
    let inserted = handler.upsert_mut(
        Record::from_rdata(origin, negative_ttl, RData::SOA(soa)),
        SERIAL,
    );
    debug_assert!(inserted, "a fresh zone takes its SOA");
    handler
}

/// The zone holding `name`: the one with the longest origin that contains it.
fn zone_for<'z>(zones: &'z [Zone], name: &Name) -> &'z Zone {
    zones
        .iter()
        .filter(|z| z.origin.zone_of(name))
        .max_by_key(|z| z.origin.num_labels())
        .expect("the root zone contains every name")
}

/// A running DNS server. Dropping it stops the server.
pub struct TestDns {
    addr: SocketAddr,
    server: Server<Catalog>,
    zones: Vec<Zone>,
}

impl TestDns {
    /// Starts serving `records` on `bind` (UDP and TCP, same port; port 0 picks one).
    pub async fn start(bind: SocketAddr, records: Records) -> Result<TestDns, DnsError> {
        let mut origins = vec![Name::root()];
        for zone in &records.zones {
            let origin = fqdn(zone)?;
            if !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        let mut handlers: Vec<(Name, InMemoryZoneHandler)> = origins
            .into_iter()
            .map(|origin| (origin.clone(), new_zone(origin, records.negative_ttl)))
            .collect();
        for entry in &records.entries {
            let record = entry.record()?;
            let (origin, handler) = handlers
                .iter_mut()
                .filter(|(origin, _)| origin.zone_of(&record.name))
                .max_by_key(|(origin, _)| origin.num_labels())
                .expect("the root zone contains every name");
            if !handler.upsert_mut(record, SERIAL) {
                return Err(DnsError::Refused {
                    zone: origin.to_string(),
                    name: entry.name.clone(),
                });
            }
        }
        let mut catalog = Catalog::new();
        let mut zones = Vec::with_capacity(handlers.len());
        for (origin, handler) in handlers {
            let handler = Arc::new(handler);
            let dyn_handler: Arc<dyn ZoneHandler> = handler.clone();
            catalog.upsert(LowerName::new(&origin), vec![dyn_handler]);
            zones.push(Zone { origin, handler });
        }
        let (udp, tcp) = bind_pair(bind).await?;
        let addr = udp.local_addr().map_err(|source| DnsError::Bind {
            address: bind,
            source,
        })?;
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
        Ok(TestDns {
            addr,
            server,
            zones,
        })
    }

    /// The address served on, UDP and TCP.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds records while the server runs (to zones it started with; names outside every
    /// declared zone go to the root zone). Visible to the next query.
    pub async fn insert(&self, records: &Records) -> Result<(), DnsError> {
        for zone in &records.zones {
            let origin = fqdn(zone)?;
            if !self.zones.iter().any(|z| z.origin == origin) {
                return Err(DnsError::NewZone(zone.clone()));
            }
        }
        for entry in &records.entries {
            let record = entry.record()?;
            let zone = zone_for(&self.zones, &record.name);
            if !zone.handler.upsert(record, SERIAL).await {
                return Err(DnsError::Refused {
                    zone: zone.origin.to_string(),
                    name: entry.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Stops serving and waits (briefly) for the server tasks to end.
    pub async fn stop(mut self) {
        let _ = tokio::time::timeout(STOP_GRACE, self.server.shutdown_gracefully()).await;
    }
}

/// Binds UDP and TCP on the same port. With port 0, retries until a port is free for both.
async fn bind_pair(bind: SocketAddr) -> Result<(UdpSocket, TcpListener), DnsError> {
    let error = |source| DnsError::Bind {
        address: bind,
        source,
    };
    let attempts = if bind.port() == 0 { BIND_ATTEMPTS } else { 1 };
    let mut last = None;
    for _ in 0..attempts {
        let udp = UdpSocket::bind(bind).await.map_err(error)?;
        let port = udp.local_addr().map_err(error)?.port();
        match TcpListener::bind(SocketAddr::new(bind.ip(), port)).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) => last = Some(e),
        }
    }
    Err(error(
        last.unwrap_or_else(|| io::Error::other("no port free")),
    ))
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::RecordType;
    use hickory_server::net::client::{Client, ClientHandle};
    use hickory_server::net::runtime::TokioRuntimeProvider;
    use hickory_server::net::udp::UdpClientStream;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

    fn fake_isp() -> Records {
        let mut records = Records::new();
        records
            .zone("gmail.test")
            .zone("example.com")
            .mx("gmail.test", 5, "gmail-smtp-in.l.gmail.test")
            .mx("gmail.test", 10, "alt1.gmail-smtp-in.l.gmail.test")
            .a("gmail-smtp-in.l.gmail.test", Ipv4Addr::new(127, 0, 0, 2))
            .aaaa("gmail-smtp-in.l.gmail.test", Ipv6Addr::LOCALHOST)
            .a(
                "alt1.gmail-smtp-in.l.gmail.test",
                Ipv4Addr::new(127, 0, 0, 3),
            )
            .null_mx("nomail.example.com")
            .ttl(30)
            .txt("example.com", "v=spf1 ip4:127.0.0.0/8 -all")
            .txt(
                "sel._domainkey.example.com",
                &format!("v=DKIM1; p={}", "A".repeat(400)),
            )
            .a("yahoo.test", Ipv4Addr::new(127, 0, 0, 4));
        records
    }

    /// A real DNS client (hickory's) over UDP.
    async fn udp_client(addr: SocketAddr) -> Client<TokioRuntimeProvider> {
        let stream = UdpClientStream::builder(addr, TokioRuntimeProvider::default())
            .with_timeout(Some(QUERY_TIMEOUT))
            .build();
        let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
        tokio::spawn(background);
        client
    }

    async fn ask(
        client: &mut Client<TokioRuntimeProvider>,
        name: &str,
        rtype: RecordType,
    ) -> Message {
        let name = Name::from_ascii(name).unwrap();
        let response = client
            .query(name, hickory_proto::rr::DNSClass::IN, rtype)
            .await
            .expect("a response");
        response.into_message()
    }

    fn mx_of(message: &Message) -> Vec<(u16, String)> {
        let mut mx: Vec<(u16, String)> = message
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, mx.exchange.to_string())),
                _ => None,
            })
            .collect();
        mx.sort();
        mx
    }

    #[tokio::test]
    async fn a_real_client_gets_mx_a_aaaa_txt_and_nxdomain_over_udp() {
        let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), fake_isp())
            .await
            .unwrap();
        let mut client = udp_client(dns.addr()).await;

        let mx = ask(&mut client, "gmail.test.", RecordType::MX).await;
        assert_eq!(mx.metadata.response_code, ResponseCode::NoError);
        assert!(mx.metadata.authoritative);
        assert_eq!(
            mx_of(&mx),
            [
                (5, "gmail-smtp-in.l.gmail.test.".to_owned()),
                (10, "alt1.gmail-smtp-in.l.gmail.test.".to_owned())
            ]
        );
        assert!(mx.answers.iter().all(|r| r.ttl == DEFAULT_TTL));

        let a = ask(&mut client, "GMAIL-SMTP-IN.l.gmail.test.", RecordType::A).await;
        let addresses: Vec<_> = a
            .answers
            .iter()
            .filter_map(|r| match r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect();
        assert_eq!(addresses, [Ipv4Addr::new(127, 0, 0, 2)]);
        let aaaa = ask(&mut client, "gmail-smtp-in.l.gmail.test.", RecordType::AAAA).await;
        assert!(matches!(aaaa.answers[0].data, RData::AAAA(AAAA(ip)) if ip == Ipv6Addr::LOCALHOST));

        let null = ask(&mut client, "nomail.example.com.", RecordType::MX).await;
        assert_eq!(mx_of(&null), [(0, ".".to_owned())]);

        let spf = ask(&mut client, "example.com.", RecordType::TXT).await;
        assert_eq!(spf.answers[0].ttl, 30);
        assert!(
            matches!(&spf.answers[0].data, RData::TXT(t) if t.to_string() == "v=spf1 ip4:127.0.0.0/8 -all")
        );
        let dkim = ask(&mut client, "sel._domainkey.example.com.", RecordType::TXT).await;
        let RData::TXT(dkim) = &dkim.answers[0].data else {
            panic!("TXT expected")
        };
        let strings: Vec<usize> = dkim.txt_data.iter().map(|s| s.len()).collect();
        assert_eq!(strings, [255, "v=DKIM1; p=".len() + 400 - 255]);

        // A name in a declared zone, and one in no declared zone: both NXDOMAIN, with the
        // SOA of the zone that holds them.
        for (name, zone) in [
            ("nobody.gmail.test.", "gmail.test."),
            ("nowhere.invalid.", "."),
        ] {
            let nx = ask(&mut client, name, RecordType::MX).await;
            assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain, "{name}");
            assert!(nx.answers.is_empty());
            let soa = nx
                .authorities
                .iter()
                .find(|r| matches!(r.data, RData::SOA(_)))
                .expect("SOA in the authority section");
            assert_eq!(soa.name.to_string(), zone, "{name}");
            assert_eq!(soa.ttl, DEFAULT_NEGATIVE_TTL);
        }
        // A name that exists, a type that does not: NOERROR with no answer.
        let nodata = ask(&mut client, "yahoo.test.", RecordType::MX).await;
        assert_eq!(nodata.metadata.response_code, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        dns.stop().await;
    }

    /// A query over TCP, built and read with hickory-proto: 2-octet length, then the message.
    async fn tcp_query(addr: SocketAddr, name: &str, rtype: RecordType) -> Message {
        let mut query = Message::new(0x4242, MessageType::Query, OpCode::Query);
        query.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        let wire = query.to_vec().unwrap();
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let len = u16::try_from(wire.len()).unwrap().to_be_bytes();
        tcp.write_all(&[&len[..], &wire].concat()).await.unwrap();
        let answer = tokio::time::timeout(QUERY_TIMEOUT, async {
            let mut len = [0u8; 2];
            tcp.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            tcp.read_exact(&mut buf).await?;
            Ok::<_, io::Error>(buf)
        })
        .await
        .expect("answer in time")
        .expect("answer");
        let message = Message::from_vec(&answer).unwrap();
        assert_eq!(message.metadata.id, 0x4242);
        message
    }

    #[tokio::test]
    async fn tcp_serves_the_same_port() {
        let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), fake_isp())
            .await
            .unwrap();
        let mx = tcp_query(dns.addr(), "gmail.test.", RecordType::MX).await;
        assert_eq!(mx_of(&mx).len(), 2);
        let nx = tcp_query(dns.addr(), "missing.example.com.", RecordType::A).await;
        assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    }

    #[tokio::test]
    async fn records_can_be_inserted_while_running() {
        let dns = TestDns::start("127.0.0.1:0".parse().unwrap(), fake_isp())
            .await
            .unwrap();
        let mut client = udp_client(dns.addr()).await;
        let before = ask(&mut client, "outlook.test.", RecordType::MX).await;
        assert_eq!(before.metadata.response_code, ResponseCode::NXDomain);
        let mut more = Records::new();
        more.mx("outlook.test", 10, "mx.outlook.test")
            .a("new.gmail.test", Ipv4Addr::new(127, 0, 0, 9));
        dns.insert(&more).await.unwrap();
        let after = ask(&mut client, "outlook.test.", RecordType::MX).await;
        assert_eq!(mx_of(&after), [(10, "mx.outlook.test.".to_owned())]);
        let a = ask(&mut client, "new.gmail.test.", RecordType::A).await;
        assert_eq!(a.answers.len(), 1);

        let mut zone = Records::new();
        zone.zone("late.test");
        assert!(matches!(dns.insert(&zone).await, Err(DnsError::NewZone(_))));
    }

    #[tokio::test]
    async fn bad_input_is_reported() {
        let mut bad = Records::new();
        bad.a("exa mple..com", Ipv4Addr::LOCALHOST);
        let err = TestDns::start("127.0.0.1:0".parse().unwrap(), bad)
            .await
            .err()
            .expect("invalid name refused");
        assert!(matches!(err, DnsError::InvalidName { .. }), "{err}");
        assert_eq!(txt_strings(""), [""]);
        assert_eq!(txt_strings("abc"), ["abc"]);
        assert_eq!(txt_strings(&"x".repeat(256)).len(), 2);
    }
}
