//! [`AdminBackend`]: everything the admin API asks of the engine, and nothing more. The HTTP
//! layer validates requests and passes typed values; the backend acts and answers.
//!
//! Invariants: every state-changing call carries an [`Actor`] (the endpoint and the client)
//! for the backend's `AdminAction` log; a [`Filter`] given to `flush` or `bounce` is empty
//! only when the operator asked for the whole queue (`"all": true`); the trait is
//! object-safe (`Arc<dyn AdminBackend>`): every method returns a boxed `Send` future so the
//! engine may touch the spool without blocking a runtime worker.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use super::types::{
    ActionCount, BounceResult, Filter, Health, MessageView, NewSuppression, NewSuspension,
    PoolsView, QuarantineList, QueueQuery, QueueSummary, ReloadReport, SuppressionChange,
    SuppressionKey, SuppressionPage, SuppressionQuery, Suspension,
};

/// A boxed, `Send` future: what every [`AdminBackend`] method returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The engine as the admin API sees it.
///
/// A method that cannot do what is asked returns a [`BackendError`]; "not found" is not an
/// error but `None` / `false`.
pub trait AdminBackend: Send + Sync + 'static {
    /// The queue summary: pending recipients counted by provider, domain, source and tenant
    /// in age buckets (feed a [`QueueSummaryBuilder`](super::types::QueueSummaryBuilder)).
    fn queue_summary(&self, query: QueueQuery)
    -> BoxFuture<'_, Result<QueueSummary, BackendError>>;

    /// One message (its id as given, not yet parsed), or `None` if the queue does not hold
    /// it.
    fn message<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageView>, BackendError>>;

    /// Suspends delivery to a scope; returns the suspension with its id.
    fn suspend(
        &self,
        new: NewSuspension,
        actor: Actor,
    ) -> BoxFuture<'_, Result<Suspension, BackendError>>;

    /// Suspensions in force, soonest to end first.
    fn suspensions(&self) -> BoxFuture<'_, Result<Vec<Suspension>, BackendError>>;

    /// Lifts a suspension; `false` when no suspension has that id.
    fn resume<'a>(&'a self, id: &'a str, actor: Actor)
    -> BoxFuture<'a, Result<bool, BackendError>>;

    /// Retries the slice now (suspensions and rate limits still apply).
    fn flush(
        &self,
        filter: Filter,
        actor: Actor,
    ) -> BoxFuture<'_, Result<ActionCount, BackendError>>;

    /// Fails the slice's pending recipients now, with DSNs (where owed, and where the MTA
    /// sends DSNs at all) or without; the result says which.
    fn bounce(
        &self,
        filter: Filter,
        send_dsn: bool,
        actor: Actor,
    ) -> BoxFuture<'_, Result<BounceResult, BackendError>>;

    /// Egress sources, warmup and per-provider use (empty until IP pools exist).
    fn pools(&self) -> BoxFuture<'_, Result<PoolsView, BackendError>>;

    /// One page of suppressions (the query's `limit` is set and bounded).
    fn suppressions(
        &self,
        query: SuppressionQuery,
    ) -> BoxFuture<'_, Result<SuppressionPage, BackendError>>;

    /// Adds suppressions (addresses normalised); existing entries are left as they are.
    fn add_suppressions(
        &self,
        entries: Vec<NewSuppression>,
        actor: Actor,
    ) -> BoxFuture<'_, Result<SuppressionChange, BackendError>>;

    /// Removes one suppression; `false` when there is none with that key.
    fn remove_suppression(
        &self,
        key: SuppressionKey,
        actor: Actor,
    ) -> BoxFuture<'_, Result<bool, BackendError>>;

    /// The spool's quarantine (damaged entries set aside when the spool was loaded).
    fn quarantine(&self) -> BoxFuture<'_, Result<QuarantineList, BackendError>>;

    /// The quarantined body (the raw message) of a message (its id as given, not yet
    /// parsed), or `None` when the quarantine holds no body of that id.
    fn quarantined_body<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>>;

    /// Deletes a message's entries from the quarantine (its id as given, not yet parsed);
    /// returns how many there were (0: none).
    fn discard_quarantined<'a>(
        &'a self,
        id: &'a str,
        actor: Actor,
    ) -> BoxFuture<'a, Result<usize, BackendError>>;

    /// Re-reads the configuration file and applies what can change while running (the
    /// daemon maps SIGHUP here too).
    fn reload(&self, actor: Actor) -> BoxFuture<'_, Result<ReloadReport, BackendError>>;

    /// Health of each component.
    fn health(&self) -> BoxFuture<'_, Health>;
}

/// Why the backend could not do what was asked; each variant is one HTTP status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The request is well-formed but refused (an unknown provider, a configuration file
    /// that does not validate on reload): `422`.
    #[error("{reason}")]
    Rejected {
        /// Why, for the operator.
        reason: String,
    },
    /// This MTA cannot do it (yet): `501`.
    #[error("not supported: {what}")]
    Unsupported {
        /// What.
        what: &'static str,
    },
    /// The daemon is stopping: `503`.
    #[error("the MTA is shutting down")]
    ShuttingDown,
    /// The engine failed (spool I/O and the like): `500`.
    #[error("{what}")]
    Failed {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Who asked for a state change, for the `AdminAction` log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The endpoint: `"POST /v1/bounce"`.
    pub endpoint: &'static str,
    /// The client.
    pub client: Client,
}

/// The client of an admin request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// Over the Unix socket, with the peer's user id when the kernel told it.
    Unix {
        /// The peer's uid (`SO_PEERCRED`).
        uid: Option<u32>,
    },
    /// Over TCP (loopback), authenticated by the token.
    Tcp {
        /// The peer's address.
        ip: IpAddr,
    },
}

impl fmt::Display for Client {
    /// `unix`, `unix:uid=1000`, `tcp:127.0.0.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Unix { uid: None } => f.write_str("unix"),
            Client::Unix { uid: Some(uid) } => write!(f, "unix:uid={uid}"),
            Client::Tcp { ip } => write!(f, "tcp:{ip}"),
        }
    }
}

impl fmt::Display for Actor {
    /// `POST /v1/bounce by unix:uid=0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.endpoint, self.client)
    }
}
