//! The [`Spool`] contract, and the plain types that cross it.
//!
//! The spool is the MTA's one durable hand-off: the server answers `250` to `DATA` only after
//! [`Spool::store`] has resolved, and `store` resolves only after the body and the envelope are
//! on disk (synced). Everything else in the MTA (scheduler, ready queues, pools) is rebuilt from
//! the spool after a restart, from the [`Recovery`] that opening it returns.
//!
//! Invariants every implementation keeps:
//! - A message is its body plus its envelope, written together: after a crash either both
//!   are there or neither is.
//! - `store`, `update` and `remove` of one message take effect in the order they were called;
//!   when a returned future resolves `Ok`, that write and every write called before it are
//!   durable.
//! - A write is queued when its method is called, not when the returned future is first
//!   polled; the future borrows nothing (`use<Self>`), so it can be awaited later or moved to
//!   another task.
//! - Dropping a returned future does not cancel its write (the caller just does not learn the
//!   outcome): a `store` whose caller went away may still be committed, which at worst means a
//!   message the client will send again (a duplicate, never a loss).

use std::fmt;
use std::future::Future;

use crate::envelope::Envelope;
use crate::error::{DecodeError, SpoolError};
use crate::id::MessageId;

/// A durable store of messages (body + envelope), shared by every task of the MTA.
pub trait Spool: Send + Sync + 'static {
    /// Stores a new message. Resolves only when the body and the envelope are durable: only
    /// then may the server answer `250`. Fails with [`SpoolError::AlreadyExists`] if the id is
    /// taken, [`SpoolError::Closed`] after [`close`](Self::close).
    fn store(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;

    /// Replaces the envelope of a stored message (after a delivery attempt). Resolves when the
    /// new envelope is durable. Fails with [`SpoolError::NotFound`] if the message is gone.
    fn update(
        &self,
        id: MessageId,
        envelope: &Envelope,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;

    /// Stores a new message and applies `change` to another one in the same atomic commit:
    /// after a crash both are there or neither is (a DSN and the final states it reports).
    /// Fails, writing neither, with [`SpoolError::AlreadyExists`] if `id` is taken or
    /// [`SpoolError::NotFound`] if the changed message is gone (or is `id` itself).
    fn store_with_change(
        &self,
        id: MessageId,
        envelope: Envelope,
        body: Vec<u8>,
        change: Change<'_>,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;

    /// Deletes a finished message, body and envelope. Resolves when the deletion is durable.
    /// Fails with [`SpoolError::NotFound`] if the message is not there.
    fn remove(
        &self,
        id: MessageId,
    ) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;

    /// The body of a stored message (a cheap handle, no copy).
    fn body(&self, id: MessageId) -> Result<Body, SpoolError>;

    /// The current envelope of a stored message.
    fn envelope(&self, id: MessageId) -> Result<Envelope, SpoolError>;

    /// `true` when every write would be refused now (after a failed commit, until the spool
    /// is reopened; or once closed): callers can refuse work early instead of failing at
    /// the write.
    fn refuses_writes(&self) -> bool;

    /// Resolves when every write called before it is durable.
    fn flush(&self) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;

    /// Shutdown: refuses new writes, commits the ones already called, syncs, and stops the
    /// spool's background work. Reads keep working. Idempotent.
    fn close(&self) -> impl Future<Output = Result<(), SpoolError>> + Send + use<Self>;
}

/// What [`Spool::store_with_change`] does to the other message.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// Replace its envelope.
    Update(MessageId, &'a Envelope),
    /// Delete it, body and envelope.
    Remove(MessageId),
}

/// A message body read from the spool: a cheap, clonable, read-only handle.
///
/// It shares the storage engine's buffer (a reference count, no copy), so holding many is
/// cheap; it stays valid after the message is removed.
#[derive(Clone, PartialEq, Eq)]
pub struct Body(sled::IVec);

impl Body {
    pub(crate) fn new(bytes: sled::IVec) -> Self {
        Self(bytes)
    }

    /// Length in octets.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `true` for an empty body.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Body({} octets)", self.0.len())
    }
}

/// Tuning of [`SledSpool`](crate::SledSpool). Keys match the `[spool]` section of the
/// configuration file; [`Default`] gives the documented defaults (`docs/spool.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// Most writes (stores, updates, removes) committed by one flush. Bounds the latency a
    /// large batch adds to its first waiter. Default 256; at least 1.
    pub max_batch: usize,
    /// Most body and envelope octets committed by one flush (a batch closes once it reaches
    /// this; a single larger message still commits, alone). Default 8 MiB; at least 1.
    pub max_batch_bytes: usize,
    /// Memory for the storage engine's page cache, in bytes. Default 128 MiB.
    pub cache_capacity: u64,
    /// Size of a log segment, in bytes: a power of two from 64 KiB to 16 MiB. Fixed when the
    /// spool is created (the engine refuses to reopen with another value). Values (tree
    /// nodes) above a quarter of it are written as separate blob files. Disk use in steady
    /// state is about five segments plus the live data, so smaller is tighter; throughput
    /// measured the same from 512 KiB to 2 MiB and lower at 8 MiB (`docs/spool.md`).
    /// Default 512 KiB.
    pub segment_size: usize,
    /// After the engine's flush, also `fdatasync` its log file and any new blob files (see
    /// `docs/spool.md`). The engine alone uses `sync_file_range`, which survives a process
    /// crash but not a power cut. Default `true`.
    pub fsync: bool,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_batch_bytes: 8 << 20,
            cache_capacity: 128 << 20,
            segment_size: 512 << 10,
            fsync: true,
        }
    }
}

impl SpoolConfig {
    /// Checks every value, naming the first one out of range.
    pub fn validate(&self) -> Result<(), SpoolError> {
        let fail = |key, requirement| Err(SpoolError::InvalidConfig { key, requirement });
        if self.max_batch == 0 {
            return fail("max_batch", "must be at least 1");
        }
        if self.max_batch_bytes == 0 {
            return fail("max_batch_bytes", "must be at least 1");
        }
        if !self.segment_size.is_power_of_two()
            || !(64 << 10..=16 << 20).contains(&self.segment_size)
        {
            return fail(
                "segment_size",
                "must be a power of two from 65536 to 16777216",
            );
        }
        Ok(())
    }
}

/// What opening a spool found: the work to resume, and what had to be set aside.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// Messages with at least one pending recipient, in id (that is, arrival) order: the
    /// scheduler's initial content.
    pub pending: Vec<RecoveredMessage>,
    /// Messages whose recipients are all final but which were not removed (a stop between the
    /// last `update` and `remove`). The owner emits any DSN still owed, then removes them.
    pub finished: Vec<RecoveredMessage>,
    /// Entries moved to quarantine by this open (earlier ones are listed by
    /// [`SledSpool::quarantined`](crate::SledSpool::quarantined)).
    pub quarantined: Vec<QuarantineReport>,
}

/// A message found in the spool on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredMessage {
    /// Its id.
    pub id: MessageId,
    /// Its envelope as last written.
    pub envelope: Envelope,
}

/// One entry moved out of the live spool on open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineReport {
    /// The message the entry belonged to (`None` when the key itself is malformed).
    pub id: Option<MessageId>,
    /// What the entry was.
    pub kind: EntryKind,
    /// Why it was moved.
    pub reason: QuarantineReason,
}

/// The kind of a spool entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// An envelope.
    Envelope,
    /// A body.
    Body,
    /// A key this version does not know.
    Unknown,
}

/// Why an entry was quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuarantineReason {
    /// The envelope's bytes do not decode (its body goes along with it).
    Undecodable(DecodeError),
    /// An envelope has no body.
    MissingBody,
    /// A body has no envelope.
    OrphanBody,
    /// The key does not follow the spool's layout.
    UnknownKey,
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Undecodable(e) => write!(f, "undecodable envelope: {e}"),
            Self::MissingBody => f.write_str("envelope without body"),
            Self::OrphanBody => f.write_str("body without envelope"),
            Self::UnknownKey => f.write_str("unknown key"),
        }
    }
}

/// An entry kept in quarantine, as listed by
/// [`SledSpool::quarantined`](crate::SledSpool::quarantined).
#[derive(Debug, Clone)]
pub struct QuarantinedEntry {
    /// The message the entry belonged to, when the key names one.
    pub id: Option<MessageId>,
    /// What the entry was.
    pub kind: EntryKind,
    /// The raw stored bytes, untouched.
    pub bytes: Body,
    /// Why it was moved, as text (recorded when it was moved).
    pub reason: String,
}

/// One entry in quarantine, without its bytes (see [`SledSpool::quarantine_listing`](crate::SledSpool::quarantine_listing)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineListing {
    /// The message the entry belonged to, when the key names one.
    pub id: Option<MessageId>,
    /// What the entry was.
    pub kind: EntryKind,
    /// Its size in octets.
    pub len: usize,
    /// Why it was moved, as text.
    pub reason: String,
}

/// Counters of the committer since the spool was opened (also exported as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpoolStats {
    /// Flushes done (batches committed, successfully or not).
    pub commits: u64,
    /// Writes (stores, updates, removes) committed successfully.
    pub writes: u64,
    /// The largest batch committed, in writes.
    pub largest_batch: u64,
    /// Commits that failed.
    pub failed_commits: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_table() {
        let base = SpoolConfig::default();
        let table: [(SpoolConfig, Option<&str>); 7] = [
            (base.clone(), None),
            (
                SpoolConfig {
                    max_batch: 0,
                    ..base.clone()
                },
                Some("max_batch"),
            ),
            (
                SpoolConfig {
                    max_batch_bytes: 0,
                    ..base.clone()
                },
                Some("max_batch_bytes"),
            ),
            (
                SpoolConfig {
                    segment_size: 3 << 20,
                    ..base.clone()
                },
                Some("segment_size"),
            ),
            (
                SpoolConfig {
                    segment_size: 32 << 10,
                    ..base.clone()
                },
                Some("segment_size"),
            ),
            (
                SpoolConfig {
                    segment_size: 32 << 20,
                    ..base.clone()
                },
                Some("segment_size"),
            ),
            (
                SpoolConfig {
                    segment_size: 64 << 10,
                    ..base
                },
                None,
            ),
        ];
        for (config, bad_key) in table {
            match (config.validate(), bad_key) {
                (Ok(()), None) => {}
                (Err(SpoolError::InvalidConfig { key, .. }), Some(expected)) => {
                    assert_eq!(key, expected);
                }
                (other, _) => panic!("{config:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn body_is_a_view() {
        let body = Body::new(sled::IVec::from(&b"hello"[..]));
        assert_eq!(body.as_ref(), b"hello");
        assert_eq!(body.len(), 5);
        assert!(!body.is_empty());
        assert_eq!(format!("{body:?}"), "Body(5 octets)");
    }
}
