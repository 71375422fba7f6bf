//! The load generator behind `mta-load`: `concurrency` SMTP clients share `messages`
//! messages, each reusing its connection for up to `messages_per_connection` of them, and
//! report throughput and a latency histogram.
//!
//! Invariants:
//! - A run is bounded: every message number is claimed once (sent, refused or failed) and no
//!   new message starts after `max_duration`; every network wait has a timeout.
//! - Bodies are built once per size (see [`crate::message_body`]) and shared by all workers.
//! - A message whose connection cannot be made (refused, greeting 4xx/5xx, I/O error) counts
//!   as failed; it is not retried.
//! - With a `rate`, message `n` is due at `n / rate` seconds after the start (open loop) and
//!   its latency runs from that moment, not from when a worker got to it: a server that
//!   falls behind shows as growing latency instead of a quietly lower offered load.

mod client;
mod histogram;
mod weighted;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_util::sync::CancellationToken;

pub use client::{ClientError, Connection, Envelope, MessageResult, Outcome};
pub use histogram::LatencyHistogram;
pub use weighted::{Weighted, WeightedError};

use crate::tls::{TlsError, insecure_connector};

/// Pause after a failed connection attempt, so a dead server is not hammered.
const CONNECT_BACKOFF: Duration = Duration::from_millis(20);

/// Why a load run could not start or had to stop.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Concurrency, recipients per message or messages per connection is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The rate is not a positive, finite number.
    #[error("rate must be a positive number of messages per second")]
    Rate,
    /// The TLS client could not be set up.
    #[error("TLS setup: {0}")]
    Tls(#[from] TlsError),
    /// `tls` was asked for and the server does not offer STARTTLS.
    #[error("{0} does not offer STARTTLS")]
    NoStartTls(SocketAddr),
}

/// What to send, and how.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The SMTP server to load.
    pub server: SocketAddr,
    /// Messages to send in all.
    pub messages: u64,
    /// Concurrent connections.
    pub concurrency: usize,
    /// Body sizes in octets, weighted.
    pub sizes: Weighted<usize>,
    /// Recipients per message (all at one domain, picked per message).
    pub recipients: usize,
    /// Recipient domains, weighted.
    pub domains: Weighted<String>,
    /// Pipeline MAIL, RCPT and DATA (when the server offers PIPELINING).
    pub pipelining: bool,
    /// Send bodies with BDAT (when the server offers CHUNKING).
    pub chunking: bool,
    /// STARTTLS on every connection, without checking the certificate.
    pub tls: bool,
    /// Messages per connection before QUIT and a new connection.
    pub messages_per_connection: u32,
    /// No new message after this long.
    pub max_duration: Option<Duration>,
    /// Longest wait for any reply.
    pub timeout: Duration,
    /// EHLO name.
    pub helo: String,
    /// Reverse-path.
    pub mail_from: String,
    /// Seed for the random choices; `None` seeds from the operating system.
    pub seed: Option<u64>,
    /// Offered load in messages per second, paced across all connections (open loop);
    /// `None` sends as fast as the connections allow (closed loop).
    pub rate: Option<f64>,
}

impl LoadConfig {
    /// `messages` messages of 4 KiB to one recipient at `load.test`, 8 connections,
    /// pipelining, 100 messages per connection, 30 s reply timeout.
    pub fn new(server: SocketAddr, messages: u64) -> LoadConfig {
        LoadConfig {
            server,
            messages,
            concurrency: 8,
            sizes: Weighted::single(4096),
            recipients: 1,
            domains: Weighted::single("load.test".to_owned()),
            pipelining: true,
            chunking: false,
            tls: false,
            messages_per_connection: 100,
            max_duration: None,
            timeout: Duration::from_secs(30),
            helo: "load.example".to_owned(),
            mail_from: "bounces@load.example".to_owned(),
            seed: None,
            rate: None,
        }
    }
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Messages started (accepted + deferred + bounced + failed).
    pub attempted: u64,
    /// Messages accepted (`250` at the end of data).
    pub accepted: u64,
    /// Messages refused with a 4xx.
    pub deferred: u64,
    /// Messages refused with a 5xx.
    pub bounced: u64,
    /// Messages not sent: connection refused or broken, greeting refused, timeout.
    pub failed: u64,
    /// RCPTs answered 2xx.
    pub rcpt_accepted: u64,
    /// RCPTs answered 4xx.
    pub rcpt_deferred: u64,
    /// RCPTs answered 5xx.
    pub rcpt_bounced: u64,
    /// Connections that reached EHLO.
    pub connections: u64,
    /// Connection attempts that failed, greeting refusals included.
    pub connection_errors: u64,
    /// Connections refused at the greeting (4xx/5xx instead of 220).
    pub greeting_refused: u64,
    /// Connections that used STARTTLS.
    pub tls_sessions: u64,
    /// Body octets of accepted messages.
    pub body_octets: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// From MAIL written to `250` read, accepted messages only.
    pub latency: LatencyHistogram,
}

impl LoadReport {
    /// Accepted messages per second of wall time.
    pub fn messages_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.accepted as f64 / secs
        } else {
            0.0
        }
    }

    fn merge(&mut self, other: &LoadReport) {
        self.attempted += other.attempted;
        self.accepted += other.accepted;
        self.deferred += other.deferred;
        self.bounced += other.bounced;
        self.failed += other.failed;
        self.rcpt_accepted += other.rcpt_accepted;
        self.rcpt_deferred += other.rcpt_deferred;
        self.rcpt_bounced += other.rcpt_bounced;
        self.connections += other.connections;
        self.connection_errors += other.connection_errors;
        self.greeting_refused += other.greeting_refused;
        self.tls_sessions += other.tls_sessions;
        self.body_octets += other.body_octets;
        self.latency.merge(&other.latency);
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.elapsed.as_secs_f64();
        writeln!(
            f,
            "messages:    {} attempted in {secs:.2} s: {} accepted ({:.0} msg/s), {} deferred, \
             {} bounced, {} failed",
            self.attempted,
            self.accepted,
            self.messages_per_second(),
            self.deferred,
            self.bounced,
            self.failed
        )?;
        writeln!(
            f,
            "recipients:  {} accepted, {} deferred, {} bounced",
            self.rcpt_accepted, self.rcpt_deferred, self.rcpt_bounced
        )?;
        writeln!(
            f,
            "connections: {} opened ({} with TLS), {} failed ({} refused at greeting)",
            self.connections, self.tls_sessions, self.connection_errors, self.greeting_refused
        )?;
        let mib = self.body_octets as f64 / (1024.0 * 1024.0);
        let rate = if secs > 0.0 { mib / secs } else { 0.0 };
        writeln!(f, "body:        {mib:.1} MiB accepted ({rate:.1} MiB/s)")?;
        write!(f, "latency:     {}", self.latency)
    }
}

/// Bodies built once per size: raw for BDAT, stuffed for DATA.
struct Bodies {
    raw: Vec<Vec<u8>>,
    wire: Vec<Vec<u8>>,
}

/// State shared by the workers of one run.
struct Run {
    config: LoadConfig,
    bodies: Bodies,
    tls: Option<TlsConnector>,
    next: AtomicU64,
    started: Instant,
    deadline: Option<Instant>,
    /// Cancelled on a fatal error, so the other workers stop too.
    cancel: CancellationToken,
}

/// Runs the load and reports. Fails only when the run cannot go on at all (TLS asked for
/// and not offered, or a zero setting); refused and failed messages are in the report.
pub async fn run(config: LoadConfig) -> Result<LoadReport, LoadError> {
    for (name, value) in [
        ("concurrency", config.concurrency),
        ("recipients", config.recipients),
        (
            "messages_per_connection",
            config.messages_per_connection as usize,
        ),
    ] {
        if value == 0 {
            return Err(LoadError::Zero(name));
        }
    }
    if config.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(LoadError::Rate);
    }
    let tls = if config.tls {
        Some(insecure_connector()?)
    } else {
        None
    };
    let raw: Vec<Vec<u8>> = config
        .sizes
        .items()
        .iter()
        .map(|&size| crate::message_body(size))
        .collect();
    let wire = raw.iter().map(|body| crate::data_wire(body)).collect();
    let started = Instant::now();
    let run = Arc::new(Run {
        started,
        deadline: config.max_duration.map(|d| started + d),
        bodies: Bodies { raw, wire },
        tls,
        next: AtomicU64::new(0),
        cancel: CancellationToken::new(),
        config,
    });
    let mut seeds = match run.config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let workers: Vec<_> = (0..run.config.concurrency)
        .map(|_| {
            let rng = StdRng::seed_from_u64(seeds.random());
            tokio::spawn(worker(run.clone(), rng))
        })
        .collect();
    let mut report = LoadReport::default();
    let mut fatal = None;
    for handle in workers {
        match handle.await {
            Ok(Ok(part)) => report.merge(&part),
            Ok(Err(error)) => {
                fatal.get_or_insert(error);
            }
            // A worker that panicked is a bug in this module: surface it.
            Err(join) => std::panic::resume_unwind(join.into_panic()),
        }
    }
    if let Some(error) = fatal {
        return Err(error);
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

async fn worker(run: Arc<Run>, mut rng: StdRng) -> Result<LoadReport, LoadError> {
    let config = &run.config;
    let mut report = LoadReport::default();
    let mut conn: Option<Connection> = None;
    let mut on_this_connection = 0u32;
    let mut recipients = Vec::with_capacity(config.recipients);
    loop {
        if run.cancel.is_cancelled() || run.deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let number = run.next.fetch_add(1, Relaxed);
        if number >= config.messages {
            break;
        }
        let due = config
            .rate
            .map(|rate| run.started + Duration::from_secs_f64(number as f64 / rate));
        if let Some(due) = due {
            tokio::time::sleep_until(due).await;
        }
        report.attempted += 1;
        if conn.is_none() {
            match Connection::open(
                config.server,
                &config.helo,
                run.tls.as_ref(),
                config.timeout,
            )
            .await
            {
                Ok(c) => {
                    report.connections += 1;
                    report.tls_sessions += u64::from(c.is_tls());
                    on_this_connection = 0;
                    conn = Some(c);
                }
                Err(ClientError::NoStartTls) => {
                    run.cancel.cancel();
                    return Err(LoadError::NoStartTls(config.server));
                }
                Err(error) => {
                    report.connection_errors += 1;
                    report.greeting_refused += u64::from(matches!(error, ClientError::Greeting(_)));
                    report.failed += 1;
                    tokio::time::sleep(CONNECT_BACKOFF).await;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let size = config.sizes.pick_index(&mut rng);
        let domain = config.domains.pick(&mut rng);
        recipients.clear();
        recipients.extend((0..config.recipients).map(|i| format!("user{number}.{i}@{domain}")));
        let envelope = Envelope {
            from: &config.mail_from,
            to: &recipients,
            body: &run.bodies.raw[size],
            wire: &run.bodies.wire[size],
        };
        match c.send(envelope, config.pipelining, config.chunking).await {
            Ok(outcome) => {
                report.rcpt_accepted += u64::from(outcome.rcpt_accepted);
                report.rcpt_deferred += u64::from(outcome.rcpt_deferred);
                report.rcpt_bounced += u64::from(outcome.rcpt_bounced);
                match outcome.result {
                    MessageResult::Accepted => {
                        report.accepted += 1;
                        report.body_octets += envelope.body.len() as u64;
                        report
                            .latency
                            .record(due.map_or(outcome.latency, |due| due.elapsed()));
                    }
                    MessageResult::Deferred => report.deferred += 1,
                    MessageResult::Bounced => report.bounced += 1,
                }
                on_this_connection += 1;
                if outcome.closing {
                    conn = None;
                } else if on_this_connection >= config.messages_per_connection
                    && let Some(c) = conn.take()
                {
                    c.quit().await;
                }
            }
            Err(_) => {
                report.failed += 1;
                conn = None;
            }
        }
    }
    if let Some(c) = conn {
        c.quit().await;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use smtp_proto::Extensions;

    use super::*;
    use crate::sink::{GreetingRefusal, ReplySpec, Rule, Sink, SinkConfig, Stage};

    fn config(server: SocketAddr, messages: u64) -> LoadConfig {
        LoadConfig {
            concurrency: 4,
            seed: Some(11),
            timeout: Duration::from_secs(5),
            ..LoadConfig::new(server, messages)
        }
    }

    #[tokio::test]
    async fn every_mode_delivers_every_message_to_the_sink() {
        // (pipelining, chunking, tls)
        let modes = [
            (true, false, false),
            (false, false, false),
            (true, true, false),
            (false, true, true),
        ];
        for (pipelining, chunking, tls) in modes {
            let sink = Sink::start(SinkConfig {
                extensions: SinkConfig::default().extensions | Extensions::STARTTLS,
                record_messages: true,
                ..SinkConfig::default()
            })
            .await
            .unwrap();
            let report = run(LoadConfig {
                pipelining,
                chunking,
                tls,
                recipients: 2,
                sizes: "512:1,3000:1".parse().unwrap(),
                domains: "gmail.test:60,yahoo.test:40".parse().unwrap(),
                messages_per_connection: 7,
                ..config(sink.addr(), 40)
            })
            .await
            .unwrap();
            let mode = (pipelining, chunking, tls);
            assert_eq!(report.attempted, 40, "{mode:?}");
            assert_eq!(report.accepted, 40, "{mode:?}: {report}");
            assert_eq!(report.rcpt_accepted, 80, "{mode:?}");
            assert_eq!(report.latency.count(), 40, "{mode:?}");
            assert_eq!(
                report.tls_sessions,
                if tls { report.connections } else { 0 }
            );
            let counters = sink.counters();
            assert_eq!(counters.messages_accepted, 40, "{mode:?}");
            assert_eq!(counters.recipients_delivered, 80, "{mode:?}");
            // 40 messages, 7 per connection, 4 workers: at least 6 connections.
            assert!(report.connections >= 6, "{mode:?}: {report}");
            let messages = sink.messages();
            assert!(messages.iter().all(|m| m.bdat == chunking && m.tls == tls));
            assert!(
                messages
                    .iter()
                    .all(|m| m.mail_from == "bounces@load.example")
            );
            for m in &messages {
                let domain = m.rcpt_to[0].rsplit_once('@').unwrap().1;
                assert!(m.rcpt_to.iter().all(|r| r.ends_with(domain)));
                assert!(["gmail.test", "yahoo.test"].contains(&domain), "{domain}");
                assert!(m.body.len() >= 512, "{}", m.body.len());
            }
            sink.stop().await;
        }
    }

    #[tokio::test]
    async fn refusals_are_counted_by_kind() {
        let sink = Sink::start(SinkConfig {
            rules: vec![
                Rule::bounce_local_parts(["user0.0", "user1.0"]),
                Rule::defer_fraction(1.0).at(Stage::Data),
            ],
            ..SinkConfig::default()
        })
        .await
        .unwrap();
        for pipelining in [true, false] {
            let report = run(LoadConfig {
                pipelining,
                concurrency: 1,
                ..config(sink.addr(), 5)
            })
            .await
            .unwrap();
            assert_eq!(report.attempted, 5);
            assert_eq!(report.bounced, 2, "{pipelining}: {report}");
            assert_eq!(report.deferred, 3, "{pipelining}: {report}");
            assert_eq!(report.accepted, 0);
            assert_eq!(report.rcpt_bounced, 2);
            assert_eq!(report.rcpt_accepted, 3);
        }
    }

    #[tokio::test]
    async fn failures_are_bounded_and_counted() {
        let refusing = Sink::start(SinkConfig {
            greeting_refusal: Some(GreetingRefusal {
                fraction: 1.0,
                reply: ReplySpec::default_greeting_refusal(),
            }),
            ..SinkConfig::default()
        })
        .await
        .unwrap();
        let report = run(config(refusing.addr(), 6)).await.unwrap();
        assert_eq!((report.attempted, report.failed), (6, 6));
        assert_eq!(report.greeting_refused, 6);

        let plain = Sink::start(SinkConfig::default()).await.unwrap();
        let err = run(LoadConfig {
            tls: true,
            ..config(plain.addr(), 3)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, LoadError::NoStartTls(_)), "{err}");
        let err = run(LoadConfig {
            concurrency: 0,
            ..config(plain.addr(), 3)
        })
        .await
        .unwrap_err();
        assert!(matches!(err, LoadError::Zero("concurrency")), "{err}");
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = run(LoadConfig {
                rate: Some(rate),
                ..config(plain.addr(), 3)
            })
            .await
            .unwrap_err();
            assert!(matches!(err, LoadError::Rate), "{rate}: {err}");
        }

        // A stopped server: every message fails, quickly.
        let addr = plain.addr();
        plain.stop().await;
        let report = run(config(addr, 4)).await.unwrap();
        assert_eq!((report.attempted, report.failed), (4, 4));
    }

    #[tokio::test]
    async fn a_rate_paces_the_messages() {
        let sink = Sink::start(SinkConfig::default()).await.unwrap();
        // 40 messages at 200/s: the last one is due 195 ms after the start, so the run
        // cannot end sooner, however fast the server.
        let report = run(LoadConfig {
            rate: Some(200.0),
            ..config(sink.addr(), 40)
        })
        .await
        .unwrap();
        assert_eq!(report.accepted, 40, "{report}");
        assert_eq!(report.latency.count(), 40);
        assert!(report.elapsed >= Duration::from_millis(195), "{report}");
        sink.stop().await;
    }

    #[tokio::test]
    async fn max_duration_stops_the_run() {
        let slow = Sink::start(SinkConfig {
            command_delay: Duration::from_millis(30),
            ..SinkConfig::default()
        })
        .await
        .unwrap();
        let started = std::time::Instant::now();
        let report = run(LoadConfig {
            max_duration: Some(Duration::from_millis(200)),
            concurrency: 2,
            ..config(slow.addr(), 1_000_000)
        })
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(report.attempted < 100, "{report}");
        assert_eq!(report.attempted, report.accepted);
    }
}
