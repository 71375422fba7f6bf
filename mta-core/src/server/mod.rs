//! The inbound SMTP server: listeners, connection limits, and one task per session.
//!
//! The pipeline is visible in the file names: `mod` (listen, accept, limit) → `session`
//! (the state machine of one connection) → `reply` (every reply, chosen in one place),
//! with `relay` (who may send where), `auth` (AUTH PLAIN/LOGIN), `message` (Received header,
//! control headers), `envelope` (transaction → spool envelope) and `tls` (STARTTLS).

mod auth;
mod envelope;
mod limits;
mod message;
mod relay;
mod reply;
mod session;
mod signing;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use queue::Spool;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use auth::hash_password;
pub use signing::SignerHandle;
pub use tls::TlsSetupError;

/// Loads a listener's PEM certificate chain and private key as the server will (for
/// `mta run --validate`).
pub(crate) fn check_tls_files(
    certificate: &std::path::Path,
    key: &std::path::Path,
) -> Result<(), TlsSetupError> {
    tls::acceptor_from_pem(certificate, key).map(drop)
}

use crate::config::{Config, ListenerConfig};
use crate::delivery::Submit;
use auth::Users;
use limits::{ConnectionLimits, Refusal};
use relay::RelayPolicy;
use reply::Reply;
use session::Session;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A listening socket could not be opened.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// TLS could not be set up for a listener.
    #[error("TLS for listener {address}: {source}")]
    Tls {
        /// The listener's address.
        address: SocketAddr,
        /// The error.
        source: TlsSetupError,
    },
}

/// State shared by every session of every listener.
pub(crate) struct Shared<S> {
    pub(crate) config: Arc<Config>,
    pub(crate) spool: Arc<S>,
    /// Where durable messages go next (the delivery engine).
    pub(crate) submit: Arc<dyn Submit>,
    /// DKIM signing at reception.
    pub(crate) signer: SignerHandle,
    pub(crate) relay: RelayPolicy,
    pub(crate) users: Users,
    pub(crate) limits: Arc<ConnectionLimits>,
}

/// One listener's configuration and TLS acceptor.
pub(crate) struct ListenerContext {
    pub(crate) config: ListenerConfig,
    pub(crate) tls: TlsAcceptor,
}

/// The SMTP server: bound listeners, ready to serve.
pub struct Server<S: Spool> {
    shared: Arc<Shared<S>>,
    listeners: Vec<(TcpListener, Arc<ListenerContext>)>,
}

impl<S: Spool> Server<S> {
    /// Opens every configured listener and prepares TLS. Every message is signed by `signer`
    /// at reception and, once durable, handed to `submit`.
    pub async fn bind(
        config: Arc<Config>,
        spool: Arc<S>,
        submit: Arc<dyn Submit>,
        signer: SignerHandle,
    ) -> Result<Self, ServerError> {
        let mut listeners = Vec::with_capacity(config.listeners.len());
        for listener in &config.listeners {
            let address = listener.address;
            let tls = match (&listener.tls_certificate, &listener.tls_private_key) {
                (Some(cert), Some(key)) => tls::acceptor_from_pem(cert, key),
                _ => tls::acceptor_self_signed(&config.hostname),
            }
            .map_err(|source| ServerError::Tls { address, source })?;
            let socket = bind(address, listener.backlog)
                .map_err(|source| ServerError::Bind { address, source })?;
            listeners.push((
                socket,
                Arc::new(ListenerContext {
                    config: listener.clone(),
                    tls,
                }),
            ));
        }
        let shared = Arc::new(Shared {
            relay: RelayPolicy::new(&config.accept_domains),
            users: Users::new(&config.users),
            limits: ConnectionLimits::new(config.server.max_connections),
            spool,
            submit,
            signer,
            config,
        });
        Ok(Server { shared, listeners })
    }

    /// The addresses actually listened on (useful with port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|(l, _)| l.local_addr().ok())
            .collect()
    }

    /// Accepts connections until `shutdown` is cancelled. Sessions are spawned on `tracker`;
    /// the caller waits for them (with a grace period) after this returns.
    pub async fn serve(self, shutdown: CancellationToken, tracker: TaskTracker) {
        let mut accept_loops = Vec::with_capacity(self.listeners.len());
        for (socket, context) in self.listeners {
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            let tracker = tracker.clone();
            accept_loops.push(tokio::spawn(accept_loop(
                socket, context, shared, shutdown, tracker,
            )));
        }
        for handle in accept_loops {
            let _ = handle.await;
        }
    }
}

async fn accept_loop<S: Spool>(
    socket: TcpListener,
    context: Arc<ListenerContext>,
    shared: Arc<Shared<S>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    info!(address = %context.config.address, "listening");
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = socket.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        metrics::counter!("smtp_connections_total").increment(1);
        let permit = match shared
            .limits
            .acquire(peer.ip(), context.config.max_connections_per_ip)
        {
            Ok(permit) => permit,
            Err(refusal) => {
                let reason = match refusal {
                    Refusal::Total => "max_connections",
                    Refusal::PerIp => "max_connections_per_ip",
                };
                metrics::counter!("smtp_sessions_refused_total", "reason" => reason).increment(1);
                tracker.spawn(refuse(tcp));
                continue;
            }
        };
        let session = Session::new(shared.clone(), context.clone(), tcp, peer, shutdown.clone());
        tracker.spawn(async move {
            session.run().await;
            drop(permit);
        });
    }
    info!(address = %context.config.address, "stopped listening");
}

/// Binds a listening socket with `backlog` (tokio's `TcpListener::bind` fixes it at 1024,
/// which a burst of a few thousand connections overflows). `SO_REUSEADDR` as tokio sets it,
/// so a restart binds while old connections linger in TIME_WAIT.
fn bind(address: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// Tells a client over the connection limits to come back later, without waiting long.
async fn refuse(mut tcp: TcpStream) {
    let mut out = Vec::new();
    Reply::too_many_connections().write_to(&mut out);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        tcp.write_all(&out).await?;
        tcp.shutdown().await
    })
    .await;
}
