//! The sink's counters: atomics updated by every session, readable at any time (a load run,
//! a test, the `mta-sink` reporter) as a [`SinkCounters`] snapshot.
//!
//! Invariant: counters only grow, except `connections_now`, which every session decrements
//! exactly once when it ends (through [`ConnectionGuard`]).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of a running sink.
#[derive(Debug, Default)]
pub struct SinkStats {
    pub(crate) connections_total: AtomicU64,
    pub(crate) connections_now: AtomicU64,
    pub(crate) connections_max: AtomicU64,
    pub(crate) connections_refused: AtomicU64,
    pub(crate) greetings_refused: AtomicU64,
    pub(crate) tls_sessions: AtomicU64,
    pub(crate) transactions: AtomicU64,
    pub(crate) messages_accepted: AtomicU64,
    pub(crate) messages_deferred: AtomicU64,
    pub(crate) messages_bounced: AtomicU64,
    pub(crate) messages_refused: AtomicU64,
    pub(crate) recipients_accepted: AtomicU64,
    pub(crate) recipients_deferred: AtomicU64,
    pub(crate) recipients_bounced: AtomicU64,
    pub(crate) recipients_delivered: AtomicU64,
    pub(crate) throttled: AtomicU64,
    pub(crate) blocked: AtomicU64,
    pub(crate) bytes_received: AtomicU64,
}

impl SinkStats {
    /// A consistent-enough copy of every counter (each is read once, not all atomically).
    pub fn snapshot(&self) -> SinkCounters {
        let get = |c: &AtomicU64| c.load(Relaxed);
        SinkCounters {
            connections_total: get(&self.connections_total),
            connections_now: get(&self.connections_now),
            connections_max: get(&self.connections_max),
            connections_refused: get(&self.connections_refused),
            greetings_refused: get(&self.greetings_refused),
            tls_sessions: get(&self.tls_sessions),
            transactions: get(&self.transactions),
            messages_accepted: get(&self.messages_accepted),
            messages_deferred: get(&self.messages_deferred),
            messages_bounced: get(&self.messages_bounced),
            messages_refused: get(&self.messages_refused),
            recipients_accepted: get(&self.recipients_accepted),
            recipients_deferred: get(&self.recipients_deferred),
            recipients_bounced: get(&self.recipients_bounced),
            recipients_delivered: get(&self.recipients_delivered),
            throttled: get(&self.throttled),
            blocked: get(&self.blocked),
            bytes_received: get(&self.bytes_received),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Counts a session that starts being served; the guard counts its end.
    pub(crate) fn open_connection(self: &Arc<Self>) -> ConnectionGuard {
        let now = self.connections_now.fetch_add(1, Relaxed) + 1;
        self.connections_max.fetch_max(now, Relaxed);
        ConnectionGuard(self.clone())
    }
}

/// Decrements `connections_now` when the session that holds it ends, however it ends.
#[derive(Debug)]
pub(crate) struct ConnectionGuard(Arc<SinkStats>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections_now.fetch_sub(1, Relaxed);
    }
}

/// A snapshot of the sink's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SinkCounters {
    /// TCP connections accepted, including those refused for the connection limit.
    pub connections_total: u64,
    /// Sessions being served now.
    pub connections_now: u64,
    /// Most sessions served at the same time so far.
    pub connections_max: u64,
    /// Connections refused with `421` because `max_connections` sessions were running.
    pub connections_refused: u64,
    /// Connections refused at the greeting by `greeting_refusal`.
    pub greetings_refused: u64,
    /// Successful STARTTLS handshakes.
    pub tls_sessions: u64,
    /// Transactions started (MAIL answered `250`).
    pub transactions: u64,
    /// Messages accepted (`250` at the end of data).
    pub messages_accepted: u64,
    /// Messages refused with a 4xx by a [`super::Stage::Data`] rule.
    pub messages_deferred: u64,
    /// Messages refused with a 5xx by a [`super::Stage::Data`] rule.
    pub messages_bounced: u64,
    /// Messages refused for their content (size, line length, bare line ends).
    pub messages_refused: u64,
    /// RCPT commands answered `250`.
    pub recipients_accepted: u64,
    /// RCPT commands answered 4xx by a rule.
    pub recipients_deferred: u64,
    /// RCPT commands answered 5xx by a rule.
    pub recipients_bounced: u64,
    /// Recipients of accepted messages (the sum over accepted messages).
    pub recipients_delivered: u64,
    /// Replies sent because of the rate limit.
    pub throttled: u64,
    /// Replies sent because the client was blocked.
    pub blocked: u64,
    /// Message body octets accepted, after un-stuffing.
    pub bytes_received: u64,
}

impl fmt::Display for SinkCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections {} (now {}, max {}, refused {}, greeting-refused {}, tls {}) | \
             transactions {} | messages accepted {} deferred {} bounced {} refused {} | \
             rcpt accepted {} deferred {} bounced {} delivered {} | throttled {} blocked {} | \
             {} body octets",
            self.connections_total,
            self.connections_now,
            self.connections_max,
            self.connections_refused,
            self.greetings_refused,
            self.tls_sessions,
            self.transactions,
            self.messages_accepted,
            self.messages_deferred,
            self.messages_bounced,
            self.messages_refused,
            self.recipients_accepted,
            self.recipients_deferred,
            self.recipients_bounced,
            self.recipients_delivered,
            self.throttled,
            self.blocked,
            self.bytes_received,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_guard_tracks_now_and_max() {
        let stats = Arc::new(SinkStats::default());
        let a = stats.open_connection();
        let b = stats.open_connection();
        drop(a);
        let c = stats.open_connection();
        let snap = stats.snapshot();
        assert_eq!((snap.connections_now, snap.connections_max), (2, 2));
        drop((b, c));
        let snap = stats.snapshot();
        assert_eq!((snap.connections_now, snap.connections_max), (0, 2));
    }
}
