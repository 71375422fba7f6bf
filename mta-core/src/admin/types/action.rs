//! Actions on a slice of the queue (`/v1/flush`, `/v1/bounce`), `/v1/reload`, and the
//! error body every endpoint answers with.

use serde::{Deserialize, Serialize};

use super::filter::Filter;

/// The body of `POST /v1/flush`: retry the slice now, ignoring retry waits (suspensions
/// and rate limits still apply).
///
/// ```json
/// {"filter": {"domain": "example.com"}}
/// {"all": true}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlushRequest {
    /// The slice; must not be empty unless `all` is `true`.
    #[serde(default)]
    pub filter: Filter,
    /// Flush the whole queue (only with an empty filter).
    #[serde(default)]
    pub all: bool,
}

/// The body of `POST /v1/bounce`: fail the slice's pending recipients now, with a DSN to
/// each sender who asked for one (`dsn`, default `true`) or silently.
///
/// ```json
/// {"filter": {"tenant": "acme", "campaign": "spring-sale"}, "dsn": false}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BounceRequest {
    /// The slice; must not be empty unless `all` is `true`.
    #[serde(default)]
    pub filter: Filter,
    /// Bounce the whole queue (only with an empty filter).
    #[serde(default)]
    pub all: bool,
    /// Send DSNs (as for any failure: never to the null sender, never for `NOTIFY=NEVER`,
    /// not when `[delivery] bounces = false`).
    #[serde(default = "yes")]
    pub dsn: bool,
}

fn yes() -> bool {
    true
}

/// What an action touched (the backend's answer to flush and bounce).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionCount {
    /// Messages with at least one recipient in the slice.
    pub messages: u64,
    /// Pending recipients in the slice.
    pub recipients: u64,
}

/// The response of `POST /v1/bounce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BounceResult {
    /// Messages with at least one recipient bounced.
    pub messages: u64,
    /// Recipients bounced.
    pub recipients: u64,
    /// Whether DSNs go out for them (asked for, and `[delivery] bounces` on): to senders
    /// that are owed one (not the null sender, not `NOTIFY=NEVER`).
    pub dsn: bool,
}

/// The response of `POST /v1/reload`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// The sections the reload applied to the running MTA (`"route"`, `"provider"`,
    /// `"classify"`, `"dkim"`).
    pub applied: Vec<String>,
    /// The sections that differ from the running configuration and take a restart
    /// (`"listener"`).
    pub needs_restart: Vec<String>,
}

/// The body of every error response.
///
/// ```json
/// {"status": 400, "error": "no filter given: ..."}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, for a person.
    pub error: String,
}
