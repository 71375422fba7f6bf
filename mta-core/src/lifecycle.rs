//! Start and stop: open the spool, bind the listeners, serve until SIGTERM or SIGINT, then
//! stop accepting, let sessions finish (bounded by `server.shutdown_grace`), and close the
//! spool so every acknowledged write is on disk before the process exits.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use metrics::gauge;
use queue::{SledSpool, Spool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

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
    recovering: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Opens the spool, starts delivery of what it holds, and starts the listeners and the
/// admin API. `config_path` is the file reloads re-read (`None`: the embedded default).
pub async fn start(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let spool = open_spool(&config).await?;
    let engine = DeliveryEngine::new(config.clone(), spool.clone())?;
    engine.start();
    let shutdown = CancellationToken::new();
    let recovering = tokio::task::spawn_blocking({
        let (spool, engine, shutdown) = (spool.clone(), engine.clone(), shutdown.clone());
        move || recover_queue(&spool, &engine, &shutdown)
    });
    let signer = SignerHandle::new(config.signer().context("loading DKIM keys")?);
    let server = Server::bind(
        config.clone(),
        spool.clone(),
        Arc::new(engine.clone()),
        signer.clone(),
    )
    .await?;
    let addrs = server.local_addrs();
    let admin = Arc::new(EngineAdmin::new(
        engine.clone(),
        config_path,
        signer,
        shutdown.clone(),
    ));
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
        recovering: tokio::sync::Mutex::new(Some(recovering)),
    })
}

impl Running {
    /// Waits until every message that was in the spool at start is back in the delivery
    /// queue (the server accepts new mail meanwhile).
    pub async fn recovered(&self) {
        if let Some(task) = self.recovering.lock().await.take() {
            let _ = task.await;
        }
    }

    /// Stops accepting, lets sessions finish (bounded by `server.shutdown_grace`), stops
    /// delivery, and closes the spool.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.recovered().await;
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

/// Messages per recovery batch: the delivery queue's locks are held for one batch at a time.
const RECOVERY_BATCH: usize = 10_000;

/// Streams the messages stored before this start into the delivery queue, while the server
/// already accepts new mail; removes those whose recipients were all final when the process
/// stopped (their DSNs, if any, were written with that final state). Stops early
/// when `shutdown` fires (what is not loaded stays in the spool for the next start).
fn recover_queue(spool: &SledSpool, engine: &DeliveryEngine, shutdown: &CancellationToken) {
    let started = std::time::Instant::now();
    gauge!("spool_recovering").set(1.0);
    let (mut pending, mut finished, mut quarantined, mut jobs) = (0usize, 0usize, 0usize, 0u64);
    let mut stopped_early = false;
    let result = spool.recover_envelopes(RECOVERY_BATCH, |batch| {
        for report in &batch.quarantined {
            warn!(
                id = report.id.map(|id| id.to_string()).unwrap_or_default(),
                kind = ?report.kind,
                reason = %report.reason,
                "spool entry quarantined"
            );
        }
        quarantined += batch.quarantined.len();
        pending += batch.pending.len();
        finished += batch.finished.len();
        let messages: Vec<_> = batch
            .pending
            .into_iter()
            .map(|m| (m.id, m.envelope))
            .collect();
        jobs += engine.load(&messages);
        // Removals are queued at once and group-committed; the futures only report.
        let removals: Vec<_> = batch
            .finished
            .iter()
            .map(|m| (m.id, spool.remove(m.id)))
            .collect();
        for (id, removal) in removals {
            if let Err(error) = block_on_spool(removal) {
                warn!(%id, %error, "could not remove a finished message");
            }
        }
        if shutdown.is_cancelled() {
            stopped_early = true;
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    gauge!("spool_recovering").set(0.0);
    engine.load_finished(match &result {
        Ok(()) if stopped_early => Err("stopped: the MTA is shutting down".to_owned()),
        Ok(()) => Ok(()),
        Err(error) => Err(crate::config::error_chain(error)),
    });
    match result {
        Ok(()) if stopped_early => info!(
            pending,
            "spool recovery stopped by the shutdown; the rest is loaded at the next start"
        ),
        Ok(()) => info!(
            pending,
            finished,
            quarantined,
            jobs,
            seconds = started.elapsed().as_secs_f64(),
            "spool recovered: delivery queue loaded"
        ),
        Err(error) => error!(
            %error,
            pending,
            "spool recovery failed; messages not yet loaded stay in the spool until the next start"
        ),
    }
}

/// Runs a spool future to completion on this (blocking) thread.
fn block_on_spool<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

/// How long a start waits for a spool another process still holds.
const SPOOL_LOCK_WAIT: Duration = Duration::from_secs(10);

/// Opens (or creates) the spool without reading its content: `recover_queue` does that
/// while the server runs. A spool still locked by an exiting instance is waited for, up to
/// `SPOOL_LOCK_WAIT`.
pub async fn open_spool(config: &Config) -> anyhow::Result<Arc<SledSpool>> {
    let path = config.spool.path.clone();
    std::fs::create_dir_all(&path)
        .with_context(|| format!("creating spool directory {}", path.display()))?;
    let spool_config = config.spool_config();
    let open_path = path.clone();
    let spool = tokio::task::spawn_blocking(move || {
        // A previous instance that is still exiting (a quick restart) holds the lock for a
        // moment: wait for it, boundedly, rather than fail the start.
        let deadline = std::time::Instant::now() + SPOOL_LOCK_WAIT;
        let mut warned = false;
        loop {
            match SledSpool::open_lazy(&open_path, spool_config.clone()) {
                Err(queue::SpoolError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    if !std::mem::replace(&mut warned, true) {
                        warn!(path = %open_path.display(), wait = ?SPOOL_LOCK_WAIT, "spool locked by another process; waiting");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                result => return result,
            }
        }
    })
    .await
    .context("spool open task")?
    .with_context(|| format!("opening spool {}", path.display()))?;
    info!(path = %path.display(), "spool open");
    Ok(Arc::new(spool))
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
