//! The JSON delivery log: one object per line for every reception, delivery, deferral,
//! bounce, expiry and admin action, for analytics and bounce processing (ipwarm is fed
//! the replies directly, not from this log).
//!
//! - [`config`]: `[delivery_log]` ([`DeliveryLogConfig`]).
//! - [`record`]: [`Record`] and [`RecordType`], and their exact JSON form.
//! - [`writer`]: the writer thread (buffering, flushing, rotation).
//!
//! Design: [`DeliveryLog::log`] never touches the disk and never blocks. Records go over a
//! bounded channel (`channel_capacity`) to one writer thread that serialises them, writes
//! through a 64 KiB buffer, flushes at least every 100 ms, and rotates by size and/or time.
//! When the channel is full (the disk cannot keep up), the record is **dropped and counted**
//! (`delivery_log_dropped_total`, [`DeliveryLog::dropped`]) rather than slowing SMTP
//! sessions or deliveries: the spool, not this log, is the record of truth.
//!
//! Invariants: every line is one complete JSON object; records sent from one thread appear
//! in the order sent; [`DeliveryLog::close`] writes every record sent before it and joins
//! the thread.
//!
//! Operator documentation: `docs/delivery-log.md`.

pub mod config;
pub mod record;
pub mod writer;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

pub use config::DeliveryLogConfig;
pub use record::{Record, RecordType};

use writer::{Message, Writer};

/// Why the delivery log could not be opened or did not write everything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// A `[delivery_log]` value is unusable.
    #[error("{key}: {reason}")]
    InvalidConfig {
        /// The configuration key (`delivery_log.channel_capacity`).
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The log directory could not be created.
    #[error("cannot create log directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The log file could not be opened.
    #[error("cannot open delivery log {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The writer thread could not be started.
    #[error("cannot start the delivery log writer thread: {source}")]
    Spawn {
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing, flushing or rotating failed at least once while the log was open (the first
    /// error is kept; later records were still attempted).
    #[error("delivery log {path}: write failed: {source}")]
    Write {
        /// The live file.
        path: PathBuf,
        /// The first I/O error.
        source: std::io::Error,
    },
    /// The writer thread panicked; records still buffered were lost.
    #[error("the delivery log writer thread panicked")]
    WriterPanicked,
}

/// The delivery log: share it (it is `Sync`) and call [`log`](Self::log) from any thread or
/// task.
pub struct DeliveryLog {
    inner: Option<Inner>,
    dropped: AtomicU64,
}

struct Inner {
    sender: SyncSender<Message>,
    thread: Mutex<Option<JoinHandle<Result<(), LogError>>>>,
}

impl std::fmt::Debug for DeliveryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryLog")
            .field("enabled", &self.inner.is_some())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl DeliveryLog {
    /// Opens the log (creating its directory and file, appending to an existing file) and
    /// starts the writer thread. With `enabled = false`, returns a log that discards.
    pub fn open(config: &DeliveryLogConfig) -> Result<DeliveryLog, LogError> {
        config.validate()?;
        if !config.enabled {
            return Ok(DeliveryLog::disabled());
        }
        let (file, size) = writer::open_live(&config.path)?;
        let (sender, receiver) = sync_channel(config.channel_capacity);
        let writer = Writer::new(config.clone(), file, size);
        let thread = std::thread::Builder::new()
            .name("delivery-log".into())
            .spawn(move || writer.run(receiver))
            .map_err(|source| LogError::Spawn { source })?;
        Ok(DeliveryLog {
            inner: Some(Inner {
                sender,
                thread: Mutex::new(Some(thread)),
            }),
            dropped: AtomicU64::new(0),
        })
    }

    /// A log that discards every record (no file, no thread).
    pub fn disabled() -> DeliveryLog {
        DeliveryLog {
            inner: None,
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues `record` for writing. Never blocks and never fails: if the channel is full or
    /// the log is closed, the record is dropped and counted.
    pub fn log(&self, record: Record) {
        let Some(inner) = &self.inner else {
            return;
        };
        match inner.sender.try_send(Message::Record(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("delivery_log_dropped_total").increment(1);
            }
        }
    }

    /// Records dropped so far because the channel was full or the log closed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes every record sent before this call, flushes, and stops the writer thread.
    /// Waits while the channel drains. Records logged afterwards are dropped. A second call
    /// returns `Ok(())`. Returns the first I/O error the writer met, if any.
    pub fn close(&self) -> Result<(), LogError> {
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let handle = inner
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(handle) = handle else {
            return Ok(());
        };
        // Blocks only while the writer drains a full channel. If the thread is gone the send
        // fails, and the join below reports why.
        let _ = inner.sender.send(Message::Close);
        handle.join().map_err(|_| LogError::WriterPanicked)?
    }
}

impl Drop for DeliveryLog {
    fn drop(&mut self) {
        if let Err(error) = self.close() {
            tracing::error!(%error, "closing the delivery log");
        }
    }
}
