//! Start and stop: open the spool, bind the listeners, serve until SIGTERM or SIGINT, then
//! stop accepting, let sessions finish (bounded by `server.shutdown_grace`), and close the
//! spool so every acknowledged write is on disk before the process exits.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use queue::{SledSpool, Spool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::admin::{Actor, AdminBackend, AdminServer, Client, PrometheusHandle};
use crate::config::Config;
use crate::delivery::{DeliveryEngine, EngineAdmin};
use crate::server::{Server, SignerHandle};

/// Runs the MTA until a termination signal; SIGHUP reloads the configuration from
/// `config_path`.
pub async fn run(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<()> {
    let running = start(config, config_path).await?;
    let signal = wait_for_termination(&running.admin).await?;
    info!(signal, "shutting down: no new connections");
    running.stop().await?;
    info!("stopped");
    Ok(())
}

/// The process-wide Prometheus recorder (installed once; every MTA started in this process
/// shares it).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut handle = HANDLE.lock().unwrap_or_else(|e| e.into_inner());
    if handle.is_none() {
        *handle = Some(crate::admin::install_recorder()?);
    }
    Ok(handle.clone().expect("just set"))
}

/// A running MTA: spool open, delivery engine started, listeners accepting.
pub struct Running {
    /// The addresses the listeners are bound to.
    pub addrs: Vec<SocketAddr>,
    /// The spool.
    pub spool: Arc<SledSpool>,
    /// The delivery engine.
    pub engine: DeliveryEngine,
    /// The admin backend (reload, views).
    pub admin: Arc<EngineAdmin>,
    /// Where the admin API listens.
    pub admin_socket: PathBuf,
    config: Arc<Config>,
    admin_shutdown: CancellationToken,
    admin_serving: tokio::task::JoinHandle<()>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    serving: tokio::task::JoinHandle<()>,
}

/// Opens the spool, starts delivery of what it holds, and starts the listeners and the
/// admin API. `config_path` is the file reloads re-read (`None`: the embedded default).
pub async fn start(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let (spool, recovery) = open_spool(&config).await?;
    let engine = DeliveryEngine::new(config.clone(), spool.clone())?;
    finish_recovered(&spool, recovery.finished).await;
    let pending = recovery
        .pending
        .into_iter()
        .map(|m| (m.id, m.envelope))
        .collect();
    engine.start(pending);
    let signer = SignerHandle::new(config.signer().context("loading DKIM keys")?);
    let server = Server::bind(
        config.clone(),
        spool.clone(),
        Arc::new(engine.clone()),
        signer.clone(),
    )
    .await?;
    let addrs = server.local_addrs();
    let admin = Arc::new(EngineAdmin::new(engine.clone(), config_path, signer));
    if let Some(dir) = config
        .admin
        .socket
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let admin_server = AdminServer::bind(&config.admin, admin.clone(), metrics_handle()?)
        .await
        .context("starting the admin API")?;
    let admin_socket = admin_server.socket_path().to_owned();
    let admin_shutdown = CancellationToken::new();
    let admin_serving = {
        let shutdown = admin_shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) = admin_server.serve(shutdown).await {
                warn!(%error, "admin API stopped with an error");
            }
        })
    };
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let serving = tokio::spawn(server.serve(shutdown.clone(), tracker.clone()));
    Ok(Running {
        addrs,
        spool,
        engine,
        admin,
        admin_socket,
        config,
        admin_shutdown,
        admin_serving,
        shutdown,
        tracker,
        serving,
    })
}

impl Running {
    /// Stops accepting, lets sessions finish (bounded by `server.shutdown_grace`), stops
    /// delivery, and closes the spool.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let _ = self.serving.await;
        self.tracker.close();
        let grace = self.config.server.shutdown_grace;
        if tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                sessions = self.tracker.len(),
                "shutdown grace period over; closing remaining sessions"
            );
        }
        self.engine.stop(grace).await;
        self.admin_shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.admin_serving).await;
        self.spool.close().await.context("closing the spool")?;
        Ok(())
    }
}

/// Removes messages whose recipients were all final when the process stopped (their DSNs,
/// if any, were queued before the original was updated).
async fn finish_recovered(spool: &SledSpool, finished: Vec<queue::RecoveredMessage>) {
    for message in finished {
        if let Err(error) = spool.remove(message.id).await {
            warn!(id = %message.id, %error, "could not remove a finished message");
        }
    }
}

/// Opens (or creates) the spool and reports what recovery found.
pub async fn open_spool(config: &Config) -> anyhow::Result<(Arc<SledSpool>, queue::Recovery)> {
    let path = config.spool.path.clone();
    std::fs::create_dir_all(&path)
        .with_context(|| format!("creating spool directory {}", path.display()))?;
    let spool_config = queue::SpoolConfig {
        max_batch: config.spool.max_batch,
        max_batch_bytes: config.spool.max_batch_bytes,
        cache_capacity: config.spool.cache_capacity,
        ..Default::default()
    };
    let open_path = path.clone();
    let (spool, recovery) =
        tokio::task::spawn_blocking(move || SledSpool::open(open_path, spool_config))
            .await
            .context("spool open task")?
            .with_context(|| format!("opening spool {}", path.display()))?;
    for report in &recovery.quarantined {
        warn!(
            id = report.id.map(|id| id.to_string()).unwrap_or_default(),
            kind = ?report.kind,
            reason = %report.reason,
            "spool entry quarantined"
        );
    }
    info!(
        path = %path.display(),
        pending = recovery.pending.len(),
        finished = recovery.finished.len(),
        quarantined = recovery.quarantined.len(),
        "spool open"
    );
    Ok((Arc::new(spool), recovery))
}

/// Waits for SIGTERM or SIGINT; SIGHUP meanwhile reloads the configuration.
async fn wait_for_termination(admin: &EngineAdmin) -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing SIGHUP handler")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM"),
            _ = int.recv() => return Ok("SIGINT"),
            _ = hup.recv() => {
                let actor = Actor { endpoint: "SIGHUP", client: Client::Unix { uid: None } };
                match admin.reload(actor).await {
                    Ok(report) => info!(applied = ?report.applied, needs_restart = ?report.needs_restart, "configuration reloaded"),
                    Err(error) => warn!(%error, "configuration not reloaded"),
                }
            }
        }
    }
}
