//! Connection pools: one per (egress source, destination site), each with its ready queue,
//! its connections and its rate limiters.
//!
//! Invariants: at most `max_connections` connection tasks per pool; a connection delivers at
//! most `max_deliveries_per_connection` messages, then QUITs; messages and new connections
//! respect `max_message_rate` and `connection_rate` (GCRA, evenly spread); a connection with
//! nothing to do for `idle_timeout` QUITs. When every candidate host of a site refuses a
//! connection and no other connection to it is up, the whole ready queue is deferred (the
//! site is down) instead of each job trying in turn.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use queue::Spool;
use queue::scheduler::{Due, Job, ReadyQueue, ReadyQueueConfig};
use tokio::sync::{Notify, Semaphore};
use tracing::debug;

use super::destination::{Candidate, Destination};
use super::engine::{DeliveryEngine, now_ms};
use super::outcome::{Outcome, Results};
use super::rate::Gcra;
use super::shaping::Shaping;
use crate::client::{ClientError, ConnectParams, Connection, OutgoingMessage, OutgoingRecipient};

/// Outcomes of one connection that may wait for their spool write at once. The connection
/// goes on sending while they are written; a crash may deliver these again (at-least-once),
/// so this bounds the duplicates to `max_connections` times this. Measured: at 4 the relay
/// waited on spool commits (4 KiB 4,400 msgs/s, 100 KiB 900), at 32 it does not (5,300 and
/// 1,190; docs/performance.md).
const UNRECORDED_PER_CONNECTION: usize = 32;

/// What a pool is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The egress source's name.
    pub(crate) source: Arc<str>,
    /// The provider name, or the site (sorted MX host set), or `route:host:port`.
    pub(crate) site: Arc<str>,
}

/// One (source, site) pool.
pub(crate) struct Pool {
    pub(crate) key: PoolKey,
    pub(crate) shaping: Shaping,
    state: Mutex<PoolState>,
    /// Wakes an idle connection when a job arrives.
    work: Notify,
    /// Origin of the pool's rate-limiter clock.
    epoch: Instant,
}

struct PoolState {
    queue: ReadyQueue,
    /// The latest destination seen for this pool's jobs.
    destination: Option<Destination>,
    /// Connection tasks alive.
    active: usize,
    /// Connection tasks with an open session.
    established: usize,
    /// Connection tasks waiting for work.
    idle: usize,
    connections: Option<Gcra>,
    messages: Option<Gcra>,
    /// A delayed kick is pending (connection rate).
    kick_pending: bool,
}

impl Pool {
    pub(crate) fn new(key: PoolKey, shaping: Shaping, ready: ReadyQueueConfig) -> Arc<Pool> {
        let connections = shaping.connection_rate.map(|r| Gcra::new(r, 1));
        let messages = shaping.max_message_rate.map(|r| Gcra::new(r, 1));
        Arc::new(Pool {
            key,
            shaping,
            state: Mutex::new(PoolState {
                queue: ReadyQueue::new(ready),
                destination: None,
                active: 0,
                established: 0,
                idle: 0,
                connections,
                messages,
                kick_pending: false,
            }),
            work: Notify::new(),
            epoch: Instant::now(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a routed job; `Err` gives it back when the ready queue is full.
    #[expect(
        clippy::result_large_err,
        reason = "the refused job goes straight back to the timer; boxing it would allocate on the back-pressure path"
    )]
    pub(crate) fn push(&self, job: Job, destination: Destination) -> Result<(), Job> {
        let mut state = self.lock();
        state.destination = Some(destination);
        state.queue.push(job)
    }

    /// Makes sure someone works on the queue: wakes an idle connection, or opens a new one
    /// within the limits.
    pub(crate) fn kick(self: &Arc<Self>, engine: &DeliveryEngine) {
        let mut state = self.lock();
        if state.queue.is_empty() || engine.inner.shutdown.is_cancelled() {
            return;
        }
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.active >= self.shaping.max_connections {
            return;
        }
        let now = self.epoch.elapsed();
        if let Some(gcra) = state.connections.as_mut()
            && let Err(wait) = gcra.try_acquire(now)
        {
            if !state.kick_pending {
                state.kick_pending = true;
                let pool = self.clone();
                let engine = engine.clone();
                engine.inner.tracker.clone().spawn(async move {
                    tokio::time::sleep(wait).await;
                    pool.lock().kick_pending = false;
                    pool.kick(&engine);
                });
            }
            return;
        }
        state.active += 1;
        drop(state);
        let pool = self.clone();
        let engine = engine.clone();
        engine.inner.tracker.clone().spawn(async move {
            pool.run_connection(&engine).await;
            let more = {
                let mut state = pool.lock();
                state.active -= 1;
                !state.queue.is_empty()
            };
            if more {
                pool.kick(&engine);
            }
        });
    }

    /// Takes the next job to attempt; expired ones found on the way are handed to the
    /// outcome code.
    fn take(&self, engine: &DeliveryEngine) -> Option<Job> {
        loop {
            let due = self.lock().queue.pop(now_ms())?;
            match due {
                Due::Attempt(job) => return Some(job),
                Due::Expired(job) => {
                    let engine2 = engine.clone();
                    engine
                        .inner
                        .tracker
                        .spawn(async move { engine2.expire(job).await });
                }
            }
        }
    }

    /// Waits for a job for up to `idle`; `None` when there is none (or on shutdown).
    async fn next_job(&self, engine: &DeliveryEngine, idle: Duration) -> Option<Job> {
        let deadline = tokio::time::Instant::now() + idle;
        loop {
            if engine.inner.shutdown.is_cancelled() {
                return None;
            }
            if let Some(job) = self.take(engine) {
                return Some(job);
            }
            self.lock().idle += 1;
            let woken = tokio::select! {
                _ = self.work.notified() => true,
                _ = tokio::time::sleep_until(deadline) => false,
                _ = engine.inner.shutdown.cancelled() => false,
            };
            self.lock().idle -= 1;
            if !woken {
                return self.take(engine);
            }
        }
    }

    /// Waits until the message rate allows one more message.
    async fn wait_message_rate(&self) {
        loop {
            let wait = {
                let mut state = self.lock();
                match state.messages.as_mut() {
                    None => return,
                    Some(gcra) => match gcra.try_acquire(self.epoch.elapsed()) {
                        Ok(()) => return,
                        Err(wait) => wait,
                    },
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One connection's life: take a job, connect, deliver it and the following ones.
    async fn run_connection(self: &Arc<Self>, engine: &DeliveryEngine) {
        let Some(first) = self.take(engine) else {
            return;
        };
        let inner = &engine.inner;
        let Some(destination) = self.lock().destination.clone() else {
            // Cannot happen (a job is pushed with its destination), but never lose a job.
            engine.schedule(first, now_ms() + 1000);
            return;
        };
        let candidates =
            destination.candidates(inner.config.delivery.smtp_port, inner.source.address);
        let tls = match &destination {
            Destination::Smarthost(smarthost, _) => smarthost.tls.unwrap_or(self.shaping.tls),
            Destination::Mx(_) => self.shaping.tls,
        };
        let (mut conn, candidate) = match self.connect(engine, &candidates, tls).await {
            Ok(ok) => ok,
            Err(error) => {
                let reply = error.map(|e| e.as_reply()).unwrap_or_else(|| {
                    crate::client::SmtpReply::local(
                        451,
                        (4, 4, 4),
                        "no usable address for the destination",
                    )
                });
                debug!(site = %self.key.site, reply = %reply, "site unreachable");
                let mut jobs = vec![first];
                let alone = self.lock().established == 0;
                if alone {
                    while let Some(job) = self.take(engine) {
                        jobs.push(job);
                    }
                }
                for job in jobs {
                    let results = Results::all(&job, reply.clone());
                    engine.finish(job, results, self.outcome(None, None)).await;
                }
                return;
            }
        };
        self.lock().established += 1;
        metrics::counter!("delivery_connections_total", "provider" => self.provider_label())
            .increment(1);
        let mut job = first;
        let mut delivered = 0usize;
        let unrecorded = Arc::new(Semaphore::new(UNRECORDED_PER_CONNECTION));
        loop {
            self.wait_message_rate().await;
            self.deliver(engine, &mut conn, &candidate, job, &unrecorded)
                .await;
            delivered += 1;
            if !conn.is_healthy() || delivered >= self.shaping.max_deliveries_per_connection {
                break;
            }
            match self
                .next_job(engine, inner.config.delivery.idle_timeout)
                .await
            {
                Some(next) => job = next,
                None => break,
            }
        }
        self.lock().established -= 1;
        conn.quit().await;
    }

    /// Tries the candidates in order until one gives a session.
    async fn connect(
        &self,
        engine: &DeliveryEngine,
        candidates: &[Candidate],
        tls: crate::client::TlsMode,
    ) -> Result<(Connection, Candidate), Option<ClientError>> {
        let inner = &engine.inner;
        let mut last = None;
        for candidate in candidates {
            let params = ConnectParams {
                addr: candidate.addr,
                mx_name: candidate.name.clone(),
                source: inner.source.address,
                ehlo_name: inner.source.ehlo.clone(),
                tls,
                timeouts: inner.timeouts,
            };
            match Connection::open(params).await {
                Ok(conn) => return Ok((conn, candidate.clone())),
                Err(e) => {
                    debug!(host = %candidate.name, addr = %candidate.addr, error = %e, "connection failed");
                    let next = e.try_next_host();
                    last = Some(e);
                    if !next {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    /// Sends one job's message over the connection and records the outcome.
    async fn deliver(
        &self,
        engine: &DeliveryEngine,
        conn: &mut Connection,
        candidate: &Candidate,
        job: Job,
        unrecorded: &Arc<Semaphore>,
    ) {
        let spool = &engine.inner.spool;
        let outcome = self.outcome(Some(candidate), conn.tls().map(str::to_owned));
        let (envelope, body) = match (spool.envelope(job.message), spool.body(job.message)) {
            (Ok(e), Ok(b)) => (e, b),
            _ => {
                // Gone from the spool (bounced or deleted by an operator): nothing to send.
                engine.forget(&job);
                return;
            }
        };
        let indices: Vec<usize> = job
            .recipients
            .iter()
            .filter(|&i| {
                envelope
                    .recipients
                    .get(i)
                    .is_some_and(|r| r.state == queue::RecipientState::Pending)
            })
            .collect();
        if indices.is_empty() {
            engine.forget(&job);
            return;
        }
        let message = OutgoingMessage {
            sender: &envelope.sender,
            recipients: indices
                .iter()
                .map(|&i| {
                    let r = &envelope.recipients[i];
                    OutgoingRecipient {
                        address: &r.address,
                        notify: r.notify,
                        orcpt: r.orcpt.as_deref(),
                    }
                })
                .collect(),
            body: body.as_ref(),
            body_type: envelope.body_type,
            smtputf8: envelope.smtputf8,
            envid: envelope.dsn.envid.as_deref(),
            ret: envelope.dsn.ret,
        };
        let results = match conn.send(&message).await {
            Ok(replies) => Results::from_replies(&indices, replies.recipients),
            Err(error) => Results::from_indices(&indices, error.as_reply()),
        };
        // Recording the outcome waits for a spool commit; the connection need not: it moves
        // on to the next message while the outcome is written (group-committed with others).
        // At most UNRECORDED_PER_CONNECTION outcomes wait at once, which bounds what a crash
        // can deliver twice.
        let permit = unrecorded
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let engine2 = engine.clone();
        engine.inner.tracker.spawn(async move {
            engine2.finish(job, results, outcome).await;
            drop(permit);
        });
    }

    fn outcome(&self, candidate: Option<&Candidate>, tls: Option<String>) -> Outcome {
        Outcome {
            source: Some(self.key.source.clone()),
            site: Some(self.key.site.clone()),
            provider: self.shaping.provider.clone(),
            mx_name: candidate.map(|c| c.name.clone()),
            mx_addr: candidate.map(|c| c.addr.ip()),
            tls,
        }
    }

    /// True when the pool holds nothing and runs nothing (it can be dropped).
    pub(crate) fn is_idle(&self) -> bool {
        let state = self.lock();
        state.queue.is_empty() && state.active == 0 && !state.kick_pending
    }

    fn provider_label(&self) -> String {
        self.shaping
            .provider
            .clone()
            .unwrap_or_else(|| "other".to_owned())
    }
}
