//! An SMTP sink that acts like an ISP's MX: the receiving end of the MTA's end-to-end tests
//! (in-process, on a loopback address) and of load runs (`mta-sink`).
//!
//! The pipeline is visible in the file names: `mod` (listen, accept, connection limit) →
//! `session` (the state machine of one connection) → `policy` (rate limit, block, rules),
//! with `config` (what the sink does), `stats` (counters) and `record` (accepted messages).
//!
//! Invariants:
//! - One tokio task per connection, tracked so [`Sink::stop`] ends every one of them.
//! - Every input is bounded (see [`config`]): line lengths (by `smtp_proto`), message size,
//!   recipients per transaction, concurrent sessions, recorded messages, idle time, errors.
//! - Replies are written with [`smtp_proto::write_reply`]; message data is decoded with
//!   [`smtp_proto::DataReceiver`] (strict CRLF by default) or [`smtp_proto::BdatReceiver`].
//! - Nothing here panics on client input; a misbehaving client gets 5xx replies and, after
//!   [`config::MAX_ERRORS_PER_SESSION`] of them, a closed connection.
//!
//! ```no_run
//! # async fn example() -> Result<(), benches::sink::SinkError> {
//! use std::time::Duration;
//! use benches::sink::{Rule, Sink, SinkConfig};
//!
//! let sink = Sink::start(SinkConfig {
//!     rules: vec![Rule::bounce_local_parts(["nouser"])],
//!     record_messages: true,
//!     ..SinkConfig::default()
//! })
//! .await?;
//! // ... point the MTA at sink.addr() and send two messages ...
//! let messages = sink.wait_for_messages(2, Duration::from_secs(5)).await?;
//! assert_eq!(messages[0].rcpt_to, ["someone@example.com"]);
//! sink.stop().await;
//! # Ok(())
//! # }
//! ```

pub mod config;
mod policy;
mod record;
mod session;
mod stats;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;
use smtp_proto::{EnhancedCode, Extensions, ReplyCode, write_reply};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{
    BareLineEnds, BlockRule, ConfigError, GreetingRefusal, LimitScope, RateLimit, ReplySpec, Rule,
    Select, SinkConfig, Stage, ThrottleAt,
};
pub use record::ReceivedMessage;
pub use stats::{SinkCounters, SinkStats};

use crate::tls::{TlsError, self_signed_acceptor};
use policy::{Limiter, Rules};
use record::MessageLog;
use session::Session;

/// How long [`Sink::stop`] waits for sessions to end.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the sink could not start, or a wait failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The configuration breaks an invariant.
    #[error("invalid sink configuration: {0}")]
    Config(#[from] ConfigError),
    /// The STARTTLS certificate could not be made.
    #[error("sink TLS setup: {0}")]
    Tls(#[from] TlsError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Fewer messages than waited for arrived in time.
    #[error("waited for {wanted} accepted messages, got {got}")]
    Timeout {
        /// Messages waited for.
        wanted: u64,
        /// Messages accepted when the wait ended.
        got: u64,
    },
    /// Messages were asked for, but the sink was started without `record_messages`.
    #[error("the sink does not record messages (set record_messages)")]
    NotRecording,
}

/// State shared by the accept loop and every session.
pub(crate) struct Shared {
    pub(crate) config: SinkConfig,
    pub(crate) tls: Option<TlsAcceptor>,
    pub(crate) stats: Arc<SinkStats>,
    pub(crate) limiter: Option<Limiter>,
    pub(crate) rules: Rules,
    pub(crate) log: MessageLog,
    /// Numbers the queue ids in `250` replies.
    pub(crate) message_seq: AtomicU64,
}

/// A running sink. Dropping it stops accepting and ends sessions (without waiting); call
/// [`Sink::stop`] to wait for them.
pub struct Sink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Sink {
    /// Validates `config`, makes the TLS certificate if STARTTLS is offered, binds the
    /// listening socket and starts accepting connections.
    pub async fn start(config: SinkConfig) -> Result<Sink, SinkError> {
        config.validate()?;
        let tls = if config.extensions.contains(Extensions::STARTTLS) {
            Some(self_signed_acceptor(&config.hostname)?)
        } else {
            None
        };
        let address = config.listen;
        let bind_error = |source| SinkError::Bind { address, source };
        let listener = TcpListener::bind(address).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let limiter = config
            .rate_limit
            .as_ref()
            .map(|limit| Limiter::new(limit, config.block.clone()));
        let shared = Arc::new(Shared {
            tls,
            stats: Arc::new(SinkStats::default()),
            limiter,
            rules: Rules::new(&config),
            log: MessageLog::new(config.record_messages.then_some(config.record_limit)),
            message_seq: AtomicU64::new(0),
            config,
        });
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(accept_loop(
            listener,
            shared.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
        Ok(Sink {
            addr,
            shared,
            shutdown,
            tracker,
        })
    }

    /// The address the sink listens on (with the actual port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &SinkConfig {
        &self.shared.config
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> SinkCounters {
        self.shared.stats.snapshot()
    }

    /// The live counters, to read from another task while the sink runs.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.shared.stats.clone()
    }

    /// A copy of the recorded messages so far (empty unless `record_messages`).
    pub fn messages(&self) -> Vec<ReceivedMessage> {
        self.shared.log.messages()
    }

    /// Takes the recorded messages so far, leaving none.
    pub fn take_messages(&self) -> Vec<ReceivedMessage> {
        self.shared.log.take()
    }

    /// Waits until at least `n` messages have been accepted since start, for at most
    /// `timeout`; returns the number accepted.
    pub async fn wait_for_accepted(&self, n: u64, timeout: Duration) -> Result<u64, SinkError> {
        self.shared
            .log
            .wait_for(n, timeout)
            .await
            .map_err(|got| SinkError::Timeout { wanted: n, got })
    }

    /// Waits until at least `n` messages have been accepted, for at most `timeout`, and
    /// returns a copy of the recorded messages. Needs `record_messages`.
    pub async fn wait_for_messages(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<ReceivedMessage>, SinkError> {
        if !self.shared.log.is_recording() {
            return Err(SinkError::NotRecording);
        }
        self.wait_for_accepted(n as u64, timeout).await?;
        Ok(self.messages())
    }

    /// Stops accepting, ends every session (a session waiting for the client is told
    /// `421 4.3.2`) and waits for them, at most a few seconds.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(STOP_GRACE, self.tracker.wait()).await;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut seed_rng = match shared.config.seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        SinkStats::add(&shared.stats.connections_total, 1);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            SinkStats::add(&shared.stats.connections_refused, 1);
            let enhanced = shared
                .config
                .extensions
                .contains(Extensions::ENHANCED_STATUS_CODES);
            tracker.spawn(refuse(tcp, enhanced));
            continue;
        };
        let guard = shared.stats.open_connection();
        let rng = StdRng::seed_from_u64(rand::Rng::random(&mut seed_rng));
        let session = Session::new(shared.clone(), tcp, peer, rng, shutdown.clone());
        tracker.spawn(async move {
            session.run(guard).await;
            drop(permit);
        });
    }
}

/// Tells a client over the connection limit to come back later, without waiting long.
async fn refuse(mut tcp: TcpStream, enhanced: bool) {
    let mut out = Vec::new();
    let code = ReplyCode::new(421).expect("valid code");
    let enhanced = EnhancedCode::new(4, 3, 2).filter(|_| enhanced);
    write_reply(
        &mut out,
        code,
        enhanced,
        "Too many connections, try again later",
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(&out).await?;
        tcp.shutdown().await
    })
    .await;
}
