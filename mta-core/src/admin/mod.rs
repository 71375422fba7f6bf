//! The admin API: HTTP/JSON on a Unix socket (and optionally loopback TCP), for operators
//! and for `mta ctl`: the queue's shape, one message, suspensions, flush, bounce, pools,
//! suppressions, reload, health, and `/metrics` for Prometheus. See `docs/admin.md`.
//!
//! The pipeline in file names: `listen` (sockets) → `auth` (who the client is; the token
//! over TCP) → `routes/*` (one file per endpoint: validate, call the backend once, answer)
//! → [`AdminBackend`] (the engine, behind a trait). `types` holds every JSON body (shared
//! with `ctl`), `error` the error answers, `metrics` the Prometheus recorder and the
//! catalogue of metrics, `limits` every bound, `config` the `[admin]` section.
//!
//! Invariants: nothing here changes the queue except through the backend; every
//! state-changing call carries an [`Actor`]; request bodies and tables are bounded
//! (`limits`); the Unix socket is never reachable with a mode wider than 0600.

pub mod types;

mod auth;
mod backend;
mod config;
mod error;
mod limits;
mod listen;
mod metrics;
mod routes;
#[cfg(test)]
mod tests;

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::middleware::{from_fn, from_fn_with_state};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use backend::{Actor, AdminBackend, BackendError, BoxFuture, Client};
pub use config::{AdminConfig, AdminConfigError};
pub use metrics::{
    METRICS, MetricInfo, MetricKind, build_recorder, describe_metrics, install_recorder,
};
pub use metrics_exporter_prometheus::PrometheusHandle;

use auth::Token;
use listen::{UnixPeer, UnixSocket};
use routes::{AppState, routes};

/// Why the admin API could not start or serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The `[admin]` section is not usable.
    #[error(transparent)]
    Config(#[from] AdminConfigError),
    /// A live process listens on the socket path.
    #[error("another process serves the admin socket {path}: is an MTA already running?")]
    SocketInUse {
        /// The socket path.
        path: PathBuf,
    },
    /// The socket path exists and is not a socket (it is not removed).
    #[error("{path} exists and is not a socket: remove it or set [admin] socket elsewhere")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket (or its directory) could not be made.
    #[error("admin socket {path}: {source}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TCP listener could not be opened.
    #[error("cannot listen on {address} for the admin API: {source}")]
    Tcp {
        /// The address.
        address: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// [`install_recorder`] was called twice, or another recorder is installed.
    #[error("a metrics recorder is already installed in this process")]
    RecorderInstalled,
    /// A listener failed while serving.
    #[error("admin API: {source}")]
    Serve {
        /// The error.
        source: std::io::Error,
    },
}

/// The admin API, bound and ready to serve.
///
/// Binding is separate from serving so that the daemon fails at start (socket in use, bad
/// address) rather than in a background task, and so tests can learn the TCP port.
pub struct AdminServer {
    unix: UnixSocket,
    tcp: Option<(TcpListener, Token)>,
    state: AppState,
}

impl AdminServer {
    /// Validates `config`, binds the Unix socket (mode 0600; a stale one is replaced, a live
    /// one refused) and, if configured, the loopback TCP address.
    pub async fn bind(
        config: &AdminConfig,
        backend: Arc<dyn AdminBackend>,
        metrics: PrometheusHandle,
    ) -> Result<AdminServer, AdminError> {
        config.validate()?;
        let unix = UnixSocket::bind(&config.socket)?;
        let tcp = match (config.address, &config.token) {
            (Some(address), Some(token)) => {
                let listener = TcpListener::bind(address)
                    .await
                    .map_err(|source| AdminError::Tcp { address, source })?;
                Some((listener, Token(Arc::from(token.as_str()))))
            }
            _ => None,
        };
        Ok(AdminServer {
            unix,
            tcp,
            state: AppState { backend, metrics },
        })
    }

    /// The Unix socket's path.
    pub fn socket_path(&self) -> &Path {
        &self.unix.path
    }

    /// The TCP address actually listened on (useful with port 0), if TCP is on.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
            .as_ref()
            .and_then(|(listener, _)| listener.local_addr().ok())
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, lets requests in flight
    /// finish (bound it with a timeout if needed), and removes the socket file.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<(), AdminError> {
        let AdminServer { unix, tcp, state } = self;
        let socket_file = unix.file();
        info!(socket = %unix.path.display(), "admin API listening");
        let upkeep = tokio::spawn(upkeep(state.metrics.clone(), shutdown.clone()));

        let unix_app = routes(state.clone()).layer(from_fn(auth::unix_identity));
        let unix_serving = axum::serve(
            unix.listener,
            unix_app.into_make_service_with_connect_info::<UnixPeer>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .into_future();
        let result = match tcp {
            Some((listener, token)) => {
                if let Ok(address) = listener.local_addr() {
                    info!(%address, "admin API listening on TCP");
                }
                let tcp_app = routes(state).layer(from_fn_with_state(token, auth::tcp_guard));
                let tcp_serving = axum::serve(
                    listener,
                    tcp_app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown.clone().cancelled_owned())
                .into_future();
                let (unix_result, tcp_result) = tokio::join!(unix_serving, tcp_serving);
                unix_result.and(tcp_result)
            }
            None => unix_serving.await,
        };
        upkeep.abort();
        socket_file.remove();
        info!("admin API stopped");
        result.map_err(|source| AdminError::Serve { source })
    }
}

/// Binds (see [`AdminServer::bind`]) and serves until `shutdown` (see
/// [`AdminServer::serve`]).
pub async fn serve(
    config: &AdminConfig,
    backend: Arc<dyn AdminBackend>,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> Result<(), AdminError> {
    AdminServer::bind(config, backend, metrics)
        .await?
        .serve(shutdown)
        .await
}

/// Drains histogram samples now and then, so memory stays bounded when nobody scrapes.
async fn upkeep(handle: PrometheusHandle, shutdown: CancellationToken) {
    let mut interval = tokio::time::interval(limits::METRICS_UPKEEP);
    loop {
        tokio::select! {
            _ = interval.tick() => handle.run_upkeep(),
            _ = shutdown.cancelled() => return,
        }
    }
}
