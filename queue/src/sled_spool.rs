//! [`SledSpool`]: the [`Spool`] on a sled database, with group commit and recovery on open.
//!
//! - Writes go to the committer thread ([`crate::committer`]): batched, applied atomically,
//!   synced, then acknowledged. A write is queued when its method is *called* (not when the
//!   returned future is first polled), so call order is commit order.
//! - Reads (`body`, `envelope`) go straight to sled from the calling thread: lock-free, and they
//!   see writes as soon as they are applied (before the sync).
//! - [`SledSpool::open`] scans every entry, sorts messages into pending and finished, and moves
//!   whatever does not fit the layout (undecodable envelope, envelope without body, body without
//!   envelope, unknown key) to the quarantine trees, bytes untouched, reporting each. Moving is
//!   idempotent (insert into quarantine, then remove from `messages`, then sync), so a crash
//!   during recovery is repaired by the next open.
//!
//! Invariant: between `open` and `close`, only the committer thread writes to `messages`.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam::channel::{Sender, unbounded};
use metrics::{counter, gauge};
use tokio::sync::oneshot;

use crate::committer::{ChangeOp, Committer, Done, FileSync, Op, Stats};
use crate::envelope::Envelope;
use crate::error::{SpoolError, into_io};
use crate::id::MessageId;
use crate::layout::{
    BODY, ENVELOPE, LAYOUT_KEY, LAYOUT_VERSION, MESSAGES_TREE, QUARANTINE_TREE, REASONS_TREE,
    body_key, envelope_key, parse_key,
};
use crate::spool::{
    Body, Change, EntryKind, QuarantineListing, QuarantineReason, QuarantineReport,
    QuarantinedEntry, RecoveredMessage, Recovery, Spool, SpoolConfig, SpoolStats,
};

/// The spool on a sled database in one directory. Share it as `Arc<SledSpool>`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use queue::{Envelope, MessageId, Recipient, SledSpool, Spool, SpoolConfig};
///
/// let dir = std::env::temp_dir().join(format!("queue-doctest-{}", std::process::id()));
/// let (spool, recovery) = SledSpool::open(&dir, SpoolConfig::default())?;
/// assert!(recovery.pending.is_empty());
///
/// let rt = tokio::runtime::Builder::new_current_thread().build()?;
/// let id = MessageId::generate();
/// let envelope = Envelope::new("a@example.com", vec![Recipient::new("b@example.org")], 0);
/// rt.block_on(spool.store(id, envelope, b"Subject: hi\r\n\r\nhello\r\n".to_vec()))?;
/// // Only now may the server answer "250 2.0.0 Ok: queued as {id}".
/// assert_eq!(spool.body(id)?.as_ref(), b"Subject: hi\r\n\r\nhello\r\n");
///
/// rt.block_on(spool.close())?;
/// drop(spool);
/// std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub struct SledSpool {
    db: sled::Db,
    messages: sled::Tree,
    quarantine: sled::Tree,
    reasons: sled::Tree,
    /// Serialises moves into quarantine (lazy recovery) with discards out of it.
    quarantine_lock: Mutex<()>,
    tx: Sender<Op>,
    closed: AtomicBool,
    committer: Mutex<Option<JoinHandle<()>>>,
    stats: Arc<Stats>,
    /// An id drawn at open, after every id found in the spool: messages stored before the
    /// open sort before it, messages stored by this process after it.
    opened_at: MessageId,
}

impl SledSpool {
    /// Opens (or creates) the spool in directory `path`, recovers its content, and starts the
    /// committer thread.
    ///
    /// Fails if the configuration is invalid, the directory cannot be opened or is in use by
    /// another process, or the spool has an unknown layout. Damaged entries do not fail the
    /// open: they are quarantined and listed in [`Recovery::quarantined`].
    pub fn open(
        path: impl AsRef<Path>,
        config: SpoolConfig,
    ) -> Result<(SledSpool, Recovery), SpoolError> {
        Self::open_inner(path.as_ref(), config, true)
    }

    /// Opens (or creates) the spool and starts the committer thread without scanning its
    /// content: the MTA can accept mail at once and load the queue with
    /// [`recover_envelopes`](Self::recover_envelopes) meanwhile.
    pub fn open_lazy(path: impl AsRef<Path>, config: SpoolConfig) -> Result<SledSpool, SpoolError> {
        Self::open_inner(path.as_ref(), config, false).map(|(spool, _)| spool)
    }

    fn open_inner(
        path: &Path,
        config: SpoolConfig,
        scan: bool,
    ) -> Result<(SledSpool, Recovery), SpoolError> {
        config.validate()?;
        let open_error = |source: std::io::Error| SpoolError::Open {
            path: path.to_owned(),
            source,
        };
        let sled_error = |e: sled::Error| open_error(into_io(e));

        let db = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .segment_size(config.segment_size)
            // The committer flushes after every batch; a timer flush would only add syncs.
            .flush_every_ms(None)
            .open()
            .map_err(|e| match e {
                // sled reports its lock as an untyped I/O error with this text.
                sled::Error::Io(ref io) if io.to_string().starts_with("could not acquire lock") => {
                    SpoolError::Locked {
                        path: path.to_owned(),
                    }
                }
                e => sled_error(e),
            })?;
        match db.get(LAYOUT_KEY).map_err(sled_error)? {
            None => {
                db.insert(LAYOUT_KEY, &[LAYOUT_VERSION][..])
                    .map_err(sled_error)?;
            }
            Some(v) if v.as_ref() == [LAYOUT_VERSION] => {}
            Some(v) => {
                return Err(SpoolError::UnsupportedLayout {
                    found: v.first().copied().unwrap_or(0),
                    supported: LAYOUT_VERSION,
                });
            }
        }
        let messages = db.open_tree(MESSAGES_TREE).map_err(sled_error)?;
        let quarantine = db.open_tree(QUARANTINE_TREE).map_err(sled_error)?;
        let reasons = db.open_tree(REASONS_TREE).map_err(sled_error)?;

        // New ids must sort after every stored one (even after a clock step back), so that
        // `opened_at` splits old messages from new ones.
        for prefix in [ENVELOPE, BODY] {
            let newest = messages.scan_prefix([prefix]).next_back();
            if let Some((key, _)) = newest.transpose().map_err(sled_error)?
                && let (_, Some(id)) = parse_key(&key)
            {
                MessageId::advance_past(id);
            }
        }
        let opened_at = MessageId::generate();

        let started = Instant::now();
        let recovery = if scan {
            recover(&messages, &quarantine, &reasons).map_err(sled_error)?
        } else {
            Recovery::default()
        };
        db.flush().map_err(sled_error)?;

        let mut file_sync = None;
        if config.fsync {
            // Make everything already there power-safe too (a previous run may not have been).
            let log = File::open(path.join("db")).map_err(open_error)?;
            let mut sync = FileSync::new(log, path.join("blobs"));
            sync.sync().map_err(open_error)?;
            // The directory entries of the files the engine created.
            File::open(path)
                .and_then(|d| d.sync_all())
                .map_err(open_error)?;
            file_sync = Some(sync);
        }
        if scan {
            gauge!("spool_recovery_seconds").set(started.elapsed().as_secs_f64());
            gauge!("spool_recovered_pending").set(recovery.pending.len() as f64);
            gauge!("spool_recovered_finished").set(recovery.finished.len() as f64);
            counter!("spool_quarantined_total").increment(recovery.quarantined.len() as u64);
        }

        let (tx, rx) = unbounded();
        let stats = Arc::new(Stats::default());
        let committer = Committer {
            rx,
            db: db.clone(),
            messages: messages.clone(),
            max_batch: config.max_batch,
            max_batch_bytes: config.max_batch_bytes,
            file_sync,
            stats: Arc::clone(&stats),
            poisoned: None,
        };
        let handle = std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || committer.run())
            .map_err(open_error)?;

        let spool = SledSpool {
            db,
            messages,
            quarantine,
            reasons,
            quarantine_lock: Mutex::new(()),
            tx,
            closed: AtomicBool::new(false),
            committer: Mutex::new(Some(handle)),
            stats,
            opened_at,
        };
        Ok((spool, recovery))
    }

    /// Streams the envelopes of the messages stored before this spool was opened (in
    /// arrival order), for a spool opened with [`open_lazy`](Self::open_lazy): `f` gets
    /// batches of at most `batch` messages, as a [`Recovery`] (pending, finished, and what
    /// was quarantined); it stops early when `f` returns [`ControlFlow::Break`]. Only envelopes are read (bodies stay on disk): an envelope that
    /// does not decode, or a pending one whose body is missing, is quarantined. Orphan bodies
    /// (no envelope) are not looked for: bodies and envelopes are written and removed together
    /// in one atomic batch, and only [`open`](Self::open) scans for them. Messages stored since the open sort
    /// after [`opened_at`](Self::opened_at) and are not visited, so a server may accept
    /// mail while this runs without seeing a message twice.
    pub fn recover_envelopes(
        &self,
        batch: usize,
        mut f: impl FnMut(Recovery) -> ControlFlow<()>,
    ) -> Result<(), SpoolError> {
        let storage = |e: sled::Error| SpoolError::Storage(into_io(e));
        let start = envelope_key(MessageId::from_u128(0));
        let end = envelope_key(self.opened_at);
        let started = Instant::now();
        let mut current = Recovery::default();
        let (mut pending, mut finished, mut quarantined) = (0u64, 0u64, 0u64);
        for entry in self.messages.range(start..end) {
            let (key, bytes) = entry.map_err(storage)?;
            let (_, Some(id)) = parse_key(&key) else {
                continue;
            };
            match Envelope::decode(&bytes) {
                Ok(envelope) => {
                    let message = RecoveredMessage { id, envelope };
                    if message.envelope.is_finished() {
                        finished += 1;
                        current.finished.push(message);
                    } else if !self.messages.contains_key(body_key(id)).map_err(storage)? {
                        // Not written that way (envelope and body go in one atomic batch),
                        // but a damaged store must not hand out a message it cannot send.
                        quarantined += 1;
                        let reason = QuarantineReason::MissingBody;
                        self.quarantine_message(id, &reason).map_err(storage)?;
                        current.quarantined.push(QuarantineReport {
                            id: Some(id),
                            kind: EntryKind::Envelope,
                            reason,
                        });
                    } else {
                        pending += 1;
                        current.pending.push(message);
                    }
                }
                Err(error) => {
                    quarantined += 1;
                    let reason = QuarantineReason::Undecodable(error);
                    self.quarantine_message(id, &reason).map_err(storage)?;
                    current.quarantined.push(QuarantineReport {
                        id: Some(id),
                        kind: EntryKind::Envelope,
                        reason,
                    });
                }
            }
            if current.pending.len() + current.finished.len() >= batch.max(1)
                && f(std::mem::take(&mut current)).is_break()
            {
                return Ok(());
            }
        }
        if !current.pending.is_empty()
            || !current.finished.is_empty()
            || !current.quarantined.is_empty()
        {
            let _ = f(current);
        }
        gauge!("spool_recovery_seconds").set(started.elapsed().as_secs_f64());
        gauge!("spool_recovered_pending").set(pending as f64);
        gauge!("spool_recovered_finished").set(finished as f64);
        counter!("spool_quarantined_total").increment(quarantined);
        Ok(())
    }

    /// Moves one message (envelope and body) to quarantine: copy first, then remove, so a
    /// crash in between leaves a copy in both places and the next run moves it again.
    fn quarantine_message(&self, id: MessageId, reason: &QuarantineReason) -> sled::Result<()> {
        let _moving = self
            .quarantine_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut copies = sled::Batch::default();
        let mut why = sled::Batch::default();
        let mut removals = sled::Batch::default();
        for key in [envelope_key(id), body_key(id)] {
            if let Some(bytes) = self.messages.get(key)? {
                copies.insert(&key[..], bytes);
            }
            why.insert(&key[..], reason.to_string().into_bytes());
            removals.remove(&key[..]);
        }
        self.quarantine.apply_batch(copies)?;
        self.reasons.apply_batch(why)?;
        self.quarantine.flush()?;
        self.messages.apply_batch(removals)
    }

    /// The id drawn when this spool was opened: every message stored before sorts before
    /// it, every message this process stores after.
    pub fn opened_at(&self) -> MessageId {
        self.opened_at
    }

    /// Counters of the committer since open (commits, writes, largest batch, failures).
    pub fn stats(&self) -> SpoolStats {
        self.stats.snapshot()
    }

    /// Every entry in quarantine, with its raw bytes and the reason it was moved.
    pub fn quarantined(&self) -> Result<Vec<QuarantinedEntry>, SpoolError> {
        let mut out = Vec::new();
        for entry in self.quarantine.iter() {
            let (key, bytes) = entry.map_err(SpoolError::storage)?;
            let reason = self.quarantine_reason(&key)?;
            let (kind, id) = parse_key(&key);
            out.push(QuarantinedEntry {
                id,
                kind,
                bytes: Body::new(bytes),
                reason,
            });
        }
        Ok(out)
    }

    /// The first `limit` entries in quarantine, without their bytes (each value is dropped
    /// as soon as its length is known), and how many there are in all.
    pub fn quarantine_listing(
        &self,
        limit: usize,
    ) -> Result<(Vec<QuarantineListing>, usize), SpoolError> {
        let mut listed = Vec::new();
        let mut total = 0;
        for entry in self.quarantine.iter() {
            let (key, bytes) = entry.map_err(SpoolError::storage)?;
            total += 1;
            if listed.len() < limit {
                let reason = self.quarantine_reason(&key)?;
                let (kind, id) = parse_key(&key);
                listed.push(QuarantineListing {
                    id,
                    kind,
                    len: bytes.len(),
                    reason,
                });
            }
        }
        Ok((listed, total))
    }

    /// The quarantined body of message `id`, if the quarantine holds one.
    pub fn quarantined_body(&self, id: MessageId) -> Result<Option<Body>, SpoolError> {
        Ok(self
            .quarantine
            .get(body_key(id))
            .map_err(SpoolError::storage)?
            .map(Body::new))
    }

    /// Why the quarantined entry under `key` was moved (empty when not recorded).
    fn quarantine_reason(&self, key: &[u8]) -> Result<String, SpoolError> {
        Ok(self
            .reasons
            .get(key)
            .map_err(SpoolError::storage)?
            .map(|r| String::from_utf8_lossy(&r).into_owned())
            .unwrap_or_default())
    }

    /// Deletes message `id`'s entries (body and envelope, with their reasons) from
    /// quarantine, once an operator has dealt with them; returns how many there were.
    /// Blocking: waits for a synced commit (call it off the reactor). Refused like any write
    /// once the spool refuses writes ([`SpoolError::Storage`]) or is closed.
    pub fn remove_quarantined(&self, id: MessageId) -> Result<usize, SpoolError> {
        use sled::Transactional;
        use sled::transaction::{ConflictableTransactionError, TransactionError};
        if self.closed.load(Ordering::Acquire) {
            return Err(SpoolError::Closed);
        }
        if self.stats.any_failed() {
            return Err(SpoolError::Storage(std::io::Error::other(
                "the spool refuses writes after a failed commit",
            )));
        }
        let keys = [body_key(id), envelope_key(id)];
        let removed = {
            let _moving = self
                .quarantine_lock
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            (&self.quarantine, &self.reasons)
                .transaction(|(quarantine, reasons)| {
                    let mut removed = 0;
                    for key in &keys {
                        if quarantine.remove(&key[..])?.is_some() {
                            removed += 1;
                        }
                        reasons.remove(&key[..])?;
                    }
                    Ok::<_, ConflictableTransactionError<()>>(removed)
                })
                .map_err(|error| match error {
                    TransactionError::Storage(error) => SpoolError::storage(error),
                    // The closure above never aborts.
                    TransactionError::Abort(()) => {
                        SpoolError::Storage(std::io::Error::other("quarantine removal aborted"))
                    }
                })?
        };
        if removed > 0 {
            // Through the committer: its flush syncs like any commit (and is refused like
            // any write).
            let done = self.submit(|done| Op::Flush { done })?;
            done.blocking_recv().unwrap_or(Err(SpoolError::Closed))?;
        }
        Ok(removed)
    }

    /// Bytes the spool's files take on disk (as the storage engine counts them).
    pub fn size_on_disk(&self) -> Result<u64, SpoolError> {
        self.db.size_on_disk().map_err(SpoolError::storage)
    }

    /// Queues `op` for the committer and returns where its outcome will arrive.
    fn submit(
        &self,
        op: impl FnOnce(Done) -> Op,
    ) -> Result<oneshot::Receiver<Result<(), SpoolError>>, SpoolError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(SpoolError::Closed);
        }
        let (done, rx) = oneshot::channel();
        self.tx.send(op(done)).map_err(|_| SpoolError::Closed)?;
        Ok(rx)
    }
}

/// Waits for the committer's answer; a committer that dropped the op without answering has
/// stopped, and the write did not happen.
async fn outcome(
    queued: Result<oneshot::Receiver<Result<(), SpoolError>>, SpoolError>,
) -> Result<(), SpoolError> {
    queued?.await.unwrap_or(Err(SpoolError::Closed))
}

impl Spool for SledSpool {
    fn store(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        let queued = self.submit(|done| Op::Store {
            id,
            envelope: envelope.encode(),
            body,
            done,
            queued: Instant::now(),
        });
        outcome(queued)
    }

    fn store_with_change(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
        change: Change<'_>,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        let change = match change {
            Change::Update(id, envelope) => ChangeOp::Update {
                id,
                envelope: envelope.encode(),
            },
            Change::Remove(id) => ChangeOp::Remove { id },
        };
        let queued = self.submit(|done| Op::StoreWithChange {
            id,
            envelope: envelope.encode(),
            body,
            change,
            done,
            queued: Instant::now(),
        });
        outcome(queued)
    }

    fn update(
        &self,
        id: MessageId,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        let queued = self.submit(|done| Op::Update {
            id,
            envelope: envelope.encode(),
            done,
            queued: Instant::now(),
        });
        outcome(queued)
    }

    fn remove(&self, id: MessageId) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        let queued = self.submit(|done| Op::Remove {
            id,
            done,
            queued: Instant::now(),
        });
        outcome(queued)
    }

    fn body(&self, id: MessageId) -> Result<Body, SpoolError> {
        self.messages
            .get(body_key(id))
            .map_err(SpoolError::storage)?
            .map(Body::new)
            .ok_or(SpoolError::NotFound(id))
    }

    fn envelope(&self, id: MessageId) -> Result<Envelope, SpoolError> {
        let bytes = self
            .messages
            .get(envelope_key(id))
            .map_err(SpoolError::storage)?
            .ok_or(SpoolError::NotFound(id))?;
        Envelope::decode(&bytes).map_err(|source| SpoolError::Corrupt { id, source })
    }

    fn refuses_writes(&self) -> bool {
        // The committer writes nothing after a failed commit, nor once closed.
        self.stats.any_failed() || self.closed.load(Ordering::Acquire)
    }

    fn flush(&self) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        outcome(self.submit(|done| Op::Flush { done }))
    }

    fn close(&self) -> impl Future<Output = Result<(), SpoolError>> + Send + use<> {
        self.closed.store(true, Ordering::Release);
        let (done, rx) = oneshot::channel();
        let sent = self.tx.send(Op::Close { done }).is_ok();
        async move {
            if !sent {
                // The committer has already stopped (an earlier close).
                return Ok(());
            }
            // Dropped unanswered: an earlier close stopped the committer first.
            rx.await.unwrap_or(Ok(()))
        }
    }
}

impl std::fmt::Debug for SledSpool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledSpool")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl Drop for SledSpool {
    /// Commits writes already queued, stops the committer thread and waits for it. Does not
    /// sync anything that was not queued: what was acknowledged is already durable.
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Release);
        let (done, _ignored) = oneshot::channel();
        let _ = self.tx.send(Op::Close { done });
        let handle = match self.committer.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }
}

/// Scans `messages`, sorts the live messages, and quarantines what does not fit.
fn recover(
    messages: &sled::Tree,
    quarantine: &sled::Tree,
    reasons: &sled::Tree,
) -> sled::Result<Recovery> {
    let mut recovery = Recovery::default();
    // Keys sort bodies (B) before envelopes (E), each by id: collect body ids in order, then
    // walk the envelopes alongside them.
    let mut body_ids: Vec<MessageId> = Vec::new();
    let mut envelopes: Vec<(MessageId, sled::IVec)> = Vec::new();
    let mut moves: Vec<(sled::IVec, QuarantineReport)> = Vec::new();
    for entry in messages.iter() {
        let (key, value) = entry?;
        match parse_key(&key) {
            (EntryKind::Body, Some(id)) => body_ids.push(id),
            (EntryKind::Envelope, Some(id)) => envelopes.push((id, value)),
            (kind, id) => moves.push((
                key,
                QuarantineReport {
                    id,
                    kind,
                    reason: QuarantineReason::UnknownKey,
                },
            )),
        }
    }

    let mut bodies = body_ids.into_iter().peekable();
    let mut quarantine_message = |id: MessageId, reason: QuarantineReason, with_body: bool| {
        if with_body {
            moves.push((
                sled::IVec::from(&body_key(id)[..]),
                QuarantineReport {
                    id: Some(id),
                    kind: EntryKind::Body,
                    reason: reason.clone(),
                },
            ));
        }
        moves.push((
            sled::IVec::from(&envelope_key(id)[..]),
            QuarantineReport {
                id: Some(id),
                kind: EntryKind::Envelope,
                reason,
            },
        ));
    };
    let mut orphans = Vec::new();
    for (id, bytes) in envelopes {
        // Bodies before this envelope's id have no envelope.
        while let Some(&body) = bodies.peek() {
            if body >= id {
                break;
            }
            orphans.push(body);
            bodies.next();
        }
        let has_body = bodies.next_if_eq(&id).is_some();
        if !has_body {
            quarantine_message(id, QuarantineReason::MissingBody, false);
            continue;
        }
        match Envelope::decode(&bytes) {
            Ok(envelope) => {
                let message = RecoveredMessage { id, envelope };
                if message.envelope.is_finished() {
                    recovery.finished.push(message);
                } else {
                    recovery.pending.push(message);
                }
            }
            Err(error) => quarantine_message(id, QuarantineReason::Undecodable(error), true),
        }
    }
    orphans.extend(bodies);
    for id in orphans {
        moves.push((
            sled::IVec::from(&body_key(id)[..]),
            QuarantineReport {
                id: Some(id),
                kind: EntryKind::Body,
                reason: QuarantineReason::OrphanBody,
            },
        ));
    }

    // Copy into quarantine first, then remove: a crash in between leaves a copy in both, and
    // the next open moves it again (overwriting the same key).
    if !moves.is_empty() {
        let mut copies = sled::Batch::default();
        let mut why = sled::Batch::default();
        let mut removals = sled::Batch::default();
        for (key, report) in &moves {
            if let Some(bytes) = messages.get(key)? {
                copies.insert(key.clone(), bytes);
            }
            why.insert(key.clone(), report.reason.to_string().into_bytes());
            removals.remove(key.clone());
        }
        quarantine.apply_batch(copies)?;
        reasons.apply_batch(why)?;
        quarantine.flush()?;
        messages.apply_batch(removals)?;
    }
    recovery.quarantined = moves.into_iter().map(|(_, report)| report).collect();
    Ok(recovery)
}
