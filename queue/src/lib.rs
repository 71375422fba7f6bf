//! The spool: the MTA's durable hand-off between reception and delivery.
//!
//! A message is one immutable body plus an [`Envelope`] (sender, recipients with per-recipient
//! state, attempts, next-attempt time, tags), named by a time-ordered [`MessageId`]. The SMTP
//! server calls [`Spool::store`] and answers `250` only when it resolves, that is when body and
//! envelope are synced to disk; the scheduler rewrites the envelope after each attempt
//! ([`Spool::update`]) and deletes the message when no recipient is pending
//! ([`Spool::remove`]). After a restart, [`SledSpool::open`] returns a [`Recovery`] from which
//! the scheduler is rebuilt.
//!
//! - [`id`]: message ids (layout, ordering, text form).
//! - [`envelope`]: the envelope types; its byte format is in [`codec`].
//! - [`spool`]: the [`Spool`] trait and the types around it.
//! - [`SledSpool`]: the implementation on sled, with group commit (one committer thread, one
//!   atomic batch and one sync for many concurrent writes) and quarantine of damaged entries.
//! - [`error`]: [`SpoolError`], [`DecodeError`], [`ParseIdError`].
//!
//! Invariants: no write is acknowledged before it is durable; body and envelope of a message
//! are written atomically; opening never fails because of a damaged entry (it is quarantined
//! and reported). This crate depends on no other crate of the workspace.
//!
//! Operator documentation (configuration, metrics, recovery, measured throughput):
//! `docs/spool.md`.

pub mod codec;
mod committer;
pub mod envelope;
pub mod error;
pub mod id;
mod layout;
pub mod scheduler;
mod sled_spool;
pub mod spool;

pub use codec::FORMAT_VERSION;
pub use envelope::{
    BodyType, DsnParams, DsnRet, Envelope, Notify, Priority, Recipient, RecipientState, Tags,
};
pub use error::{DecodeError, ParseIdError, SpoolError};
pub use id::MessageId;
pub use sled_spool::SledSpool;
pub use spool::{
    Body, Change, EntryKind, QuarantineListing, QuarantineReason, QuarantineReport,
    QuarantinedEntry, RecoveredMessage, Recovery, Spool, SpoolConfig, SpoolStats,
};
