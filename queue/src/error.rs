//! Typed errors of the spool.
//!
//! [`SpoolError`] is the crate's error: every operation of [`Spool`](crate::Spool) returns it.
//! Two narrower errors belong to pure functions that callers (and fuzz targets) use alone and
//! that [`SpoolError`] wraps with `#[source]` when they come from the spool:
//! [`DecodeError`] (envelope bytes) and [`ParseIdError`] (the text form of a message id).
//!
//! No variant is a catch-all string. Storage failures keep the engine's error as the
//! `source()` of a [`std::io::Error`], so the storage engine's types do not leak into the API.

use std::io;
use std::path::PathBuf;

use crate::MessageId;

/// Errors of the spool's operations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The spool directory could not be opened (missing permissions, locked by another
    /// process, unreadable log).
    #[error("cannot open the spool at {path}")]
    Open {
        /// The directory given to `open`.
        path: PathBuf,
        /// What the storage engine or the file system said.
        #[source]
        source: io::Error,
    },
    /// Another process (or, for a moment after closing, this one) holds the spool's lock.
    #[error("the spool at {path} is locked by another process (is another instance running?)")]
    Locked {
        /// The directory given to `open`.
        path: PathBuf,
    },
    /// The spool was created by a newer (or unknown) version of this crate.
    #[error("spool layout version {found} is not supported (this build reads version {supported})")]
    UnsupportedLayout {
        /// Version recorded in the spool.
        found: u8,
        /// Version this build reads and writes.
        supported: u8,
    },
    /// A configuration value is out of range.
    #[error("invalid spool configuration: {key} {requirement}")]
    InvalidConfig {
        /// The configuration key (as in the `[spool]` section).
        key: &'static str,
        /// What the value must satisfy.
        requirement: &'static str,
    },
    /// Reading, writing or syncing the spool failed. A failed commit means nothing in that
    /// batch may be acknowledged; the spool is then best treated as unusable (the storage
    /// engine refuses writes after an I/O error).
    #[error("spool storage failure")]
    Storage(#[source] io::Error),
    /// No message with this id is in the spool.
    #[error("message {0} is not in the spool")]
    NotFound(MessageId),
    /// `store` was given an id that is already in the spool.
    #[error("message {0} is already in the spool")]
    AlreadyExists(MessageId),
    /// The stored envelope of a message cannot be decoded.
    #[error("envelope of message {id} is corrupt")]
    Corrupt {
        /// The message.
        id: MessageId,
        /// Why decoding failed.
        #[source]
        source: DecodeError,
    },
    /// The spool is closed (or its committer thread stopped): nothing more can be written.
    #[error("the spool is closed")]
    Closed,
}

impl SpoolError {
    /// Wraps a storage engine error without exposing its type.
    pub(crate) fn storage(error: sled::Error) -> Self {
        Self::Storage(into_io(error))
    }
}

/// Converts a sled error into an [`io::Error`], keeping the original as its inner error.
pub(crate) fn into_io(error: sled::Error) -> io::Error {
    match error {
        sled::Error::Io(error) => error,
        other => io::Error::other(other),
    }
}

/// Why envelope bytes could not be decoded (see [`Envelope::decode`](crate::Envelope::decode)).
///
/// `field` names the field being read, for logs and quarantine reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No bytes at all.
    #[error("empty envelope")]
    Empty,
    /// The leading format version byte is not one this build reads.
    #[error("unsupported envelope format version {0}")]
    UnsupportedVersion(u8),
    /// The input ends inside a field, or a length or count exceeds the bytes that remain.
    #[error("envelope truncated in {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A variable-length integer is longer than needed, too long, or too large for its field.
    #[error("malformed integer in {field}")]
    BadVarint {
        /// The field being read.
        field: &'static str,
    },
    /// A tag, enum or flag byte holds a value this format does not define.
    #[error("invalid value {value} in {field}")]
    InvalidValue {
        /// The field being read.
        field: &'static str,
        /// The byte found.
        value: u8,
    },
    /// A text field is not UTF-8.
    #[error("invalid UTF-8 in {field}")]
    InvalidUtf8 {
        /// The field being read.
        field: &'static str,
        /// Where the decoder stopped.
        #[source]
        source: std::str::Utf8Error,
    },
    /// Bytes remain after the last field.
    #[error("{0} trailing bytes after the envelope")]
    TrailingBytes(usize),
}

/// Why a string is not a [`MessageId`] (the text form is exactly 32 lowercase hex digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseIdError {
    /// The string is not [`MessageId::TEXT_LEN`] bytes long.
    #[error("a message id has 32 characters, not {0}")]
    Length(usize),
    /// A character is not `0`-`9` or `a`-`f`.
    #[error("a message id is lowercase hexadecimal")]
    NotLowercaseHex,
}
