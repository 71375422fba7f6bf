//! Group commit: one thread turns many callers' writes into one atomic batch and one sync.
//!
//! Callers (SMTP sessions, delivery tasks) send an [`Op`] over a crossbeam channel and wait on
//! a oneshot. The committer thread blocks on the channel; when a first op arrives it also takes
//! every op already waiting, up to `max_batch` writes or `max_batch_bytes` octets, without
//! waiting for more: an idle spool commits a lone message at once, and under load a batch is
//! whatever arrived during the previous commit. It then applies the batch's writes as one sled
//! `apply_batch` on the `messages` tree (atomic across crashes), calls `flush()` (and, with
//! `fsync`, `fdatasync` on new or changed blob files and their directory, then on the log
//! file), and only then answers every waiter.
//!
//! Invariants:
//! - This thread is the only writer of the `messages` tree once the spool is open, so its
//!   existence checks (`AlreadyExists`, `NotFound`) cannot race with another write; writes to
//!   the same message within a batch are checked against the batch itself.
//! - No waiter hears `Ok` before the sync that covers its write returned `Ok`; if the apply or
//!   the sync fails, every waiter of the batch gets the error, and so does every later write
//!   (the committer is poisoned until the spool is reopened).
//! - Ops are applied in channel order, which is the order in which callers called the spool.
//! - The channel is unbounded, but each op is owned by a caller that waits for it, so what it
//!   holds is bounded by the callers' own limits (connections, message size).

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crossbeam::channel::Receiver;
use metrics::{counter, histogram};
use tokio::sync::oneshot;

use crate::error::{SpoolError, into_io};
use crate::id::MessageId;
use crate::layout::{body_key, envelope_key};
use crate::spool::SpoolStats;

/// Where the outcome of an op goes.
pub(crate) type Done = oneshot::Sender<Result<(), SpoolError>>;

/// A request to the committer.
pub(crate) enum Op {
    /// Write a new message.
    Store {
        id: MessageId,
        envelope: Vec<u8>,
        body: Vec<u8>,
        done: Done,
        queued: Instant,
    },
    /// Write a new message and change another, atomically (both or neither).
    StoreWithChange {
        id: MessageId,
        envelope: Vec<u8>,
        body: Vec<u8>,
        change: ChangeOp,
        done: Done,
        queued: Instant,
    },
    /// Replace an envelope.
    Update {
        id: MessageId,
        envelope: Vec<u8>,
        done: Done,
        queued: Instant,
    },
    /// Delete a message.
    Remove {
        id: MessageId,
        done: Done,
        queued: Instant,
    },
    /// Answer after the next sync.
    Flush { done: Done },
    /// Commit what came before, answer, and stop.
    Close { done: Done },
}

/// The change half of [`Op::StoreWithChange`], its envelope encoded.
#[derive(Debug)]
pub(crate) enum ChangeOp {
    Update { id: MessageId, envelope: Vec<u8> },
    Remove { id: MessageId },
}

impl ChangeOp {
    fn id(&self) -> MessageId {
        match self {
            ChangeOp::Update { id, .. } | ChangeOp::Remove { id } => *id,
        }
    }
}

/// Shared counters behind [`SpoolStats`].
#[derive(Debug, Default)]
pub(crate) struct Stats {
    commits: AtomicU64,
    writes: AtomicU64,
    largest_batch: AtomicU64,
    failed_commits: AtomicU64,
}

impl Stats {
    /// `true` once a commit failed.
    pub(crate) fn any_failed(&self) -> bool {
        self.failed_commits.load(Ordering::Relaxed) > 0
    }

    pub(crate) fn snapshot(&self) -> SpoolStats {
        SpoolStats {
            commits: self.commits.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            failed_commits: self.failed_commits.load(Ordering::Relaxed),
        }
    }
}

/// Makes the engine's writes power-safe: `fdatasync` on blob files written or changed since
/// the last sync and on their directory, then on the log file (sled writes blobs without
/// syncing them), so a synced log never points to a blob that is not on disk.
pub(crate) struct FileSync {
    log: File,
    blob_dir: PathBuf,
    /// Blobs already synced, by name (a log sequence number), with the length they had.
    synced: HashMap<u64, u64>,
}

impl FileSync {
    pub(crate) fn new(log: File, blob_dir: PathBuf) -> Self {
        Self {
            log,
            blob_dir,
            synced: HashMap::new(),
        }
    }

    /// Syncs every blob that is new or changed since the last sync (and then the blob
    /// directory, so the new names survive too), then the log file.
    ///
    /// The committer's own writes (inside `apply_batch`) have their blobs complete when this
    /// runs. The engine can also restructure tree nodes from other threads (reads split and
    /// merge nodes); a blob such a write was still filling is synced again at the next
    /// commit, since its length changed. Listing the directory costs one `getdents` and a
    /// `stat` per live blob per commit (large tree nodes only).
    pub(crate) fn sync(&mut self) -> std::io::Result<()> {
        let mut listed = HashMap::with_capacity(self.synced.len());
        let mut new_names = false;
        for entry in std::fs::read_dir(&self.blob_dir)? {
            let entry = entry?;
            let Some(lsn) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let len = match entry.metadata() {
                Ok(m) => m.len(),
                // Removed by the engine since it was listed: nothing to sync.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            if self.synced.get(&lsn) != Some(&len) {
                match File::open(entry.path()) {
                    Ok(f) => f.sync_data()?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                }
                new_names |= !self.synced.contains_key(&lsn);
            }
            listed.insert(lsn, len);
        }
        if new_names {
            File::open(&self.blob_dir)?.sync_all()?;
        }
        self.synced = listed;
        self.log.sync_data()
    }
}

/// The committer thread's state.
pub(crate) struct Committer {
    pub(crate) rx: Receiver<Op>,
    pub(crate) db: sled::Db,
    pub(crate) messages: sled::Tree,
    pub(crate) max_batch: usize,
    pub(crate) max_batch_bytes: usize,
    pub(crate) file_sync: Option<FileSync>,
    pub(crate) stats: Arc<Stats>,
    /// The first failed commit's error. After one, nothing more is written: the storage may
    /// have dropped data a later sync would paper over (a failed fdatasync can lose the
    /// dirty pages, and the next one then succeeds), so a later 250 could rest on a hole.
    pub(crate) poisoned: Option<Arc<std::io::Error>>,
}

/// How a write in the batch reports when the batch is synced.
struct Waiter {
    done: Done,
    op: &'static str,
    queued: Option<Instant>,
}

impl Committer {
    /// The thread's body: runs until a `Close` op, or until every sender is gone.
    pub(crate) fn run(mut self) {
        let mut ops = Vec::with_capacity(self.max_batch);
        while let Ok(first) = self.rx.recv() {
            let mut writes = 0;
            let mut bytes = 0;
            let mut close = None;
            let mut next = Some(first);
            while let Some(op) = next.take() {
                match op {
                    Op::Close { done } => close = Some(done),
                    op => {
                        let (w, b) = op.weight();
                        writes += w;
                        bytes += b;
                        ops.push(op);
                        if writes < self.max_batch && bytes < self.max_batch_bytes {
                            next = self.rx.try_recv().ok();
                        }
                    }
                }
            }
            self.commit(&mut ops);
            if let Some(done) = close {
                let _ = done.send(Ok(()));
                return;
            }
        }
    }

    /// Applies `ops` as one batch, syncs, and answers every waiter.
    fn commit(&mut self, ops: &mut Vec<Op>) {
        let started = Instant::now();
        let mut batch = sled::Batch::default();
        // Existence of messages written earlier in this batch.
        let mut in_batch: HashMap<MessageId, bool> = HashMap::new();
        let mut waiters = Vec::with_capacity(ops.len());
        let mut writes = 0u64;
        let mut bytes = 0usize;
        for op in ops.drain(..) {
            match op {
                Op::Store {
                    id,
                    envelope,
                    body,
                    done,
                    queued,
                } => match self.exists(id, &in_batch) {
                    Ok(false) => {
                        bytes += envelope.len() + body.len();
                        put_message(&mut batch, &mut in_batch, id, envelope, body);
                        writes += 1;
                        waiters.push(Waiter {
                            done,
                            op: "store",
                            queued: Some(queued),
                        });
                    }
                    Ok(true) => answer(done, Err(SpoolError::AlreadyExists(id))),
                    Err(e) => answer(done, Err(e)),
                },
                Op::StoreWithChange {
                    id,
                    envelope,
                    body,
                    change,
                    done,
                    queued,
                } => {
                    let target = change.id();
                    let checked = match (self.exists(id, &in_batch), self.exists(target, &in_batch))
                    {
                        (Err(e), _) | (_, Err(e)) => Err(e),
                        (Ok(true), _) => Err(SpoolError::AlreadyExists(id)),
                        // Also the new message as its own change (it does not exist yet).
                        (Ok(false), Ok(false)) => Err(SpoolError::NotFound(target)),
                        (Ok(false), Ok(true)) => Ok(()),
                    };
                    match checked {
                        Ok(()) => {
                            bytes += envelope.len() + body.len();
                            put_message(&mut batch, &mut in_batch, id, envelope, body);
                            match change {
                                ChangeOp::Update { id, envelope } => {
                                    bytes += envelope.len();
                                    batch.insert(&envelope_key(id)[..], envelope);
                                }
                                ChangeOp::Remove { id } => {
                                    remove_message(&mut batch, &mut in_batch, id);
                                }
                            }
                            writes += 2;
                            waiters.push(Waiter {
                                done,
                                op: "store_with_change",
                                queued: Some(queued),
                            });
                        }
                        Err(e) => answer(done, Err(e)),
                    }
                }
                Op::Update {
                    id,
                    envelope,
                    done,
                    queued,
                } => match self.exists(id, &in_batch) {
                    Ok(true) => {
                        bytes += envelope.len();
                        batch.insert(&envelope_key(id)[..], envelope);
                        writes += 1;
                        waiters.push(Waiter {
                            done,
                            op: "update",
                            queued: Some(queued),
                        });
                    }
                    Ok(false) => answer(done, Err(SpoolError::NotFound(id))),
                    Err(e) => answer(done, Err(e)),
                },
                Op::Remove { id, done, queued } => match self.exists(id, &in_batch) {
                    Ok(true) => {
                        remove_message(&mut batch, &mut in_batch, id);
                        writes += 1;
                        waiters.push(Waiter {
                            done,
                            op: "remove",
                            queued: Some(queued),
                        });
                    }
                    Ok(false) => answer(done, Err(SpoolError::NotFound(id))),
                    Err(e) => answer(done, Err(e)),
                },
                Op::Flush { done } => waiters.push(Waiter {
                    done,
                    op: "flush",
                    queued: None,
                }),
                // Taken out by `run` before the batch is built.
                Op::Close { done } => answer(done, Ok(())),
            }
        }

        let result = match &self.poisoned {
            Some(first) => Err(std::io::Error::new(
                first.kind(),
                format!("the spool stopped writing after a failed commit: {first}"),
            )),
            None => self.apply_and_sync(batch, writes > 0),
        };
        let elapsed = started.elapsed();
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        histogram!("spool_commit_seconds").record(elapsed.as_secs_f64());
        histogram!("spool_batch_messages").record(writes as f64);
        histogram!("spool_batch_bytes").record(bytes as f64);
        match result {
            Ok(()) => {
                self.stats.writes.fetch_add(writes, Ordering::Relaxed);
                self.stats
                    .largest_batch
                    .fetch_max(writes, Ordering::Relaxed);
                for w in waiters {
                    if let Some(queued) = w.queued {
                        histogram!("spool_write_seconds", "op" => w.op)
                            .record(queued.elapsed().as_secs_f64());
                    }
                    answer(w.done, Ok(()));
                }
            }
            Err(error) => {
                self.stats.failed_commits.fetch_add(1, Ordering::Relaxed);
                counter!("spool_commit_errors_total").increment(1);
                // Every waiter gets the same error: shared, with its message and source chain.
                let shared = Arc::new(error);
                if self.poisoned.is_none() {
                    self.poisoned = Some(Arc::clone(&shared));
                }
                for w in waiters {
                    let copy = std::io::Error::new(shared.kind(), Arc::clone(&shared));
                    answer(w.done, Err(SpoolError::Storage(copy)));
                }
            }
        }
    }

    fn apply_and_sync(&mut self, batch: sled::Batch, has_writes: bool) -> std::io::Result<()> {
        if has_writes {
            self.messages.apply_batch(batch).map_err(into_io)?;
        }
        self.db.flush().map_err(into_io)?;
        if let Some(sync) = &mut self.file_sync {
            sync.sync()?;
        }
        Ok(())
    }

    fn exists(
        &self,
        id: MessageId,
        in_batch: &HashMap<MessageId, bool>,
    ) -> Result<bool, SpoolError> {
        match in_batch.get(&id) {
            Some(&exists) => Ok(exists),
            None => self
                .messages
                .contains_key(envelope_key(id))
                .map_err(SpoolError::storage),
        }
    }
}

impl Op {
    /// (writes, octets) this op adds to a batch.
    fn weight(&self) -> (usize, usize) {
        match self {
            Op::Store { envelope, body, .. } => (1, envelope.len() + body.len()),
            Op::StoreWithChange {
                envelope,
                body,
                change,
                ..
            } => {
                let changed = match change {
                    ChangeOp::Update { envelope, .. } => envelope.len(),
                    ChangeOp::Remove { .. } => 0,
                };
                (2, envelope.len() + body.len() + changed)
            }
            Op::Update { envelope, .. } => (1, envelope.len()),
            Op::Remove { .. } => (1, 0),
            Op::Flush { .. } | Op::Close { .. } => (0, 0),
        }
    }
}

/// Adds a new message (body and envelope) to `batch`.
fn put_message(
    batch: &mut sled::Batch,
    in_batch: &mut HashMap<MessageId, bool>,
    id: MessageId,
    envelope: Vec<u8>,
    body: Vec<u8>,
) {
    batch.insert(&body_key(id)[..], body);
    batch.insert(&envelope_key(id)[..], envelope);
    in_batch.insert(id, true);
}

/// Adds the removal of a message (body and envelope) to `batch`.
fn remove_message(batch: &mut sled::Batch, in_batch: &mut HashMap<MessageId, bool>, id: MessageId) {
    batch.remove(&body_key(id)[..]);
    batch.remove(&envelope_key(id)[..]);
    in_batch.insert(id, false);
}

/// Sends an outcome; a caller that stopped waiting is not an error.
fn answer(done: Done, result: Result<(), SpoolError>) {
    let _ = done.send(result);
}
