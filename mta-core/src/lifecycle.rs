//! Start and stop: open the spool, bind the listeners, serve until SIGTERM or SIGINT, then
//! stop accepting, let sessions finish (bounded by `server.shutdown_grace`), and close the
//! spool so every acknowledged write is on disk before the process exits.

use std::sync::Arc;

use anyhow::Context;
use queue::{SledSpool, Spool};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::server::Server;

/// Runs the MTA until a termination signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let spool = open_spool(&config).await?;
    let server = Server::bind(config.clone(), spool.clone()).await?;
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let serving = tokio::spawn(server.serve(shutdown.clone(), tracker.clone()));

    let signal = wait_for_termination().await?;
    info!(signal, "shutting down: no new connections");
    shutdown.cancel();
    let _ = serving.await;
    tracker.close();
    let grace = config.server.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        warn!(
            sessions = tracker.len(),
            "shutdown grace period over; closing remaining sessions"
        );
    }
    spool.close().await.context("closing the spool")?;
    info!("stopped");
    Ok(())
}

/// Opens (or creates) the spool and reports what recovery found.
pub async fn open_spool(config: &Config) -> anyhow::Result<Arc<SledSpool>> {
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
    Ok(Arc::new(spool))
}

async fn wait_for_termination() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing SIGINT handler")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
