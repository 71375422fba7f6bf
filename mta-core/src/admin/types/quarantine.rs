//! `GET /v1/quarantine`: spool entries set aside as damaged when the spool was loaded.

use serde::{Deserialize, Serialize};

/// The quarantine: its first entries (at most [`MAX_QUARANTINE_LIST`]) and how many there
/// are in all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineList {
    /// Entries in key order (by kind, then message id).
    pub entries: Vec<QuarantineEntry>,
    /// Entries in quarantine, listed or not.
    pub total: usize,
}

/// Most entries one listing returns.
pub const MAX_QUARANTINE_LIST: usize = 1000;

/// One entry set aside: part of a message (its body or envelope) or an unknown key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The message it belonged to, when its key names one.
    pub id: Option<String>,
    /// `body`, `envelope` or `unknown`.
    pub kind: String,
    /// Its size in octets.
    pub size: u64,
    /// Why it was set aside (`undecodable envelope: ...`, `envelope without body`, ...).
    pub reason: String,
}

/// The answer of `DELETE /v1/quarantine/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discarded {
    /// The message whose quarantined entries were deleted.
    pub discarded: String,
    /// How many entries (body, envelope).
    pub entries: usize,
}
