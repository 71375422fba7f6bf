//! Connection pools: one per (egress source, destination site), each with its ready queue,
//! its connections and its limits.
//!
//! Invariants: at most `max_connections` connection tasks per pool, further lowered by the
//! source's reputation throttle for this provider; a connection delivers at most
//! `max_deliveries_per_connection` messages, then QUITs; every message waits for the
//! throttle's permit (rate, warmup pacing, suspension) and new connections respect
//! `connection_rate`; a connection with nothing to do for `idle_timeout` QUITs. When every
//! candidate host of a site refuses a connection and no other connection to it is up, the
//! whole ready queue is deferred (the site is down) instead of each job trying in turn. A job
//! that may not go now (throttled, suspended) goes back to the scheduler for the time it may,
//! without counting an attempt, and gives back the warmup allowance it took.

use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipwarm::{Class, Permit, Source};
use queue::scheduler::{Due, Job, ReadyQueue, ReadyQueueConfig};
use queue::{Spool, SpoolError};
use tokio::sync::{Notify, Semaphore};
use tracing::{debug, warn};

use super::destination::{Candidate, Destination};
use super::engine::{DeliveryEngine, now_ms};
use super::outcome::{Outcome, Results};
use super::rate::Gcra;
use super::shaping::Shaping;
use crate::client::{
    ClientError, ConnectParams, Connection, OutgoingMessage, OutgoingRecipient, SmtpReply,
};

/// Outcomes of one connection that may wait for their spool write at once. The connection
/// goes on sending while they are written; a crash may deliver these again (at-least-once),
/// so this bounds the duplicates to `max_connections` times this. Measured: at 4 the relay
/// waited on spool commits (4 KiB 4,400 msgs/s, 100 KiB 900), at 32 it does not (5,300 and
/// 1,190; docs/performance.md).
const UNRECORDED_PER_CONNECTION: usize = 32;

/// A throttle wait up to this long is waited out on the open connection; a longer one sends
/// the job back to the scheduler and closes the connection.
const MAX_INLINE_WAIT: Duration = Duration::from_secs(2);

/// Why a job may not go now, and until when (unix ms).
enum NotNow {
    /// An operator suspension covers this job (held until its end, see `not_now`).
    Job,
    /// The source's throttle for this provider: nothing in the pool may go before then.
    Pool(u64),
}

/// What a pool is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The egress source's name.
    pub(crate) source: Arc<str>,
    /// The provider name, or the site (sorted MX host set), or `route:host:port`; also the
    /// key of the source's reputation throttle.
    pub(crate) site: Arc<str>,
}

/// One (source, site) pool.
pub(crate) struct Pool {
    pub(crate) key: PoolKey,
    pub(crate) shaping: Shaping,
    /// The egress source (address, EHLO name).
    source: Arc<Source>,
    state: Mutex<PoolState>,
    /// Wakes an idle connection when a job arrives.
    work: Notify,
    /// Origin of the connection-rate limiter's clock.
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
    /// A delayed kick is pending (connection rate, throttle).
    kick_pending: bool,
}

impl Pool {
    pub(crate) fn new(
        key: PoolKey,
        shaping: Shaping,
        source: Arc<Source>,
        ready: ReadyQueueConfig,
    ) -> Arc<Pool> {
        let connections = shaping.connection_rate.map(|r| Gcra::new(r, 1));
        Arc::new(Pool {
            key,
            shaping,
            source,
            state: Mutex::new(PoolState {
                queue: ReadyQueue::new(ready),
                destination: None,
                active: 0,
                established: 0,
                idle: 0,
                connections,
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
        let limit = self.shaping.max_connections.min(
            engine
                .inner
                .reputation
                .concurrency_limit(&self.key.source, &self.key.site),
        );
        let mut state = self.lock();
        if state.queue.is_empty() || engine.inner.shutdown.is_cancelled() {
            return;
        }
        if state.idle > 0 {
            drop(state);
            self.work.notify_one();
            return;
        }
        if state.active >= limit.max(1) {
            return;
        }
        let now = self.epoch.elapsed();
        if let Some(gcra) = state.connections.as_mut()
            && let Err(wait) = gcra.try_acquire(now)
        {
            if !state.kick_pending {
                state.kick_pending = true;
                drop(state);
                self.kick_later(engine, wait);
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

    fn kick_later(self: &Arc<Self>, engine: &DeliveryEngine, wait: Duration) {
        let pool = self.clone();
        let engine = engine.clone();
        engine.inner.tracker.clone().spawn(async move {
            tokio::time::sleep(wait).await;
            pool.lock().kick_pending = false;
            pool.kick(&engine);
        });
    }

    /// Takes the next job to attempt; expired ones found on the way are handed to the
    /// outcome code (their warmup allowance given back).
    fn take(&self, engine: &DeliveryEngine) -> Option<Job> {
        loop {
            let due = self.lock().queue.pop(now_ms())?;
            match due {
                Due::Attempt(job) => return Some(job),
                Due::Expired(job) => {
                    engine
                        .inner
                        .reputation
                        .release(&self.key.source, self.shaping.provider_name());
                    let engine2 = engine.clone();
                    engine
                        .inner
                        .tracker
                        .spawn(async move { engine2.expire(job).await });
                }
            }
        }
    }

    /// Sends a job back to the scheduler for `at`, without counting an attempt.
    fn hand_back(&self, engine: &DeliveryEngine, job: Job, at: u64) {
        engine
            .inner
            .reputation
            .release(&self.key.source, self.shaping.provider_name());
        engine.schedule(job, at);
    }

    /// Hands every queued job back to the scheduler for `at` (the source is suspended for
    /// this provider: nothing here can go before then).
    fn hand_back_all(&self, engine: &DeliveryEngine, at: u64) {
        while let Some(job) = self.take(engine) {
            self.hand_back(engine, job, at);
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

    /// Waits for the permit for one message: no operator suspension applies to the job, and
    /// the source's throttle lets it go. `Err` says until when it may not.
    async fn permit(&self, engine: &DeliveryEngine, job: &Job) -> Result<(), NotNow> {
        let inner = &engine.inner;
        loop {
            if !inner.suspensions.is_empty()
                && inner
                    .suspensions
                    .until(
                        job,
                        Some(self.shaping.provider_name()),
                        Some(&self.key.source),
                    )
                    .is_some()
            {
                return Err(NotNow::Job);
            }
            match inner.reputation.permit(&self.key.source, &self.key.site) {
                Permit::Send => return Ok(()),
                Permit::WaitUntil(at) => {
                    let wait = Duration::from_millis(at.saturating_sub(now_ms()));
                    if wait > MAX_INLINE_WAIT {
                        return Err(NotNow::Pool(at));
                    }
                    tokio::time::sleep(wait).await;
                }
                Permit::Suspended { until, reason } => {
                    debug!(source = %self.key.source, site = %self.key.site, ?reason, until, "source suspended");
                    return Err(NotNow::Pool(until));
                }
            }
        }
    }

    /// Sends a job that may not go now back to the scheduler; when the whole pool is held
    /// (throttle), every queued job goes back too, so no connection is opened in vain.
    fn not_now(&self, engine: &DeliveryEngine, job: Job, why: NotNow) {
        match why {
            NotNow::Job => {
                // Held under the suspensions lock (see `Suspensions::hold`); resumed since
                // the permit check: due now.
                let job = engine.inner.suspensions.hold(
                    job,
                    Some(self.shaping.provider_name()),
                    Some(&self.key.source),
                    |job, until| self.hand_back(engine, job, until),
                );
                if let Some(job) = job {
                    self.hand_back(engine, job, now_ms());
                }
            }
            NotNow::Pool(at) => {
                self.hand_back(engine, job, at);
                self.hand_back_all(engine, at);
            }
        }
    }

    /// One connection's life: take a job, get its permit, connect, deliver it and the
    /// following ones.
    async fn run_connection(self: &Arc<Self>, engine: &DeliveryEngine) {
        let Some(first) = self.take(engine) else {
            return;
        };
        if let Err(why) = self.permit(engine, &first).await {
            self.not_now(engine, first, why);
            return;
        }
        let inner = &engine.inner;
        if inner.spool.refuses_writes() {
            // No connection: nothing could be sent on it.
            self.pause_for_spool(engine, first);
            return;
        }
        let Some(destination) = self.lock().destination.clone() else {
            // Cannot happen (a job is pushed with its destination), but never lose a job.
            self.hand_back(engine, first, now_ms() + 1000);
            return;
        };
        let (source_address, ehlo) = inner.reputation.endpoint(&self.source);
        let candidates = destination.candidates(inner.config.delivery.smtp_port, source_address);
        let tls = match &destination {
            Destination::Smarthost(smarthost, _) => smarthost.tls.unwrap_or(self.shaping.tls),
            Destination::Mx(_) => self.shaping.tls,
        };
        let connected = self
            .connect(engine, &candidates, tls, source_address, &ehlo)
            .await;
        let (mut conn, candidate) = match connected {
            Ok(ok) => ok,
            Err(error) => {
                let reply = error.map(|e| e.as_reply()).unwrap_or_else(|| {
                    SmtpReply::local(451, (4, 4, 4), "no usable address for the destination")
                });
                debug!(site = %self.key.site, reply = %reply, "site unreachable");
                let mut jobs = vec![first];
                let alone = self.lock().established == 0;
                if alone {
                    while let Some(job) = self.take(engine) {
                        jobs.push(job);
                    }
                }
                // The first job had its permit: the throttle hears how it went. A refusal
                // at the greeting or EHLO is classified like any reply, so a block of the
                // source's IP suspends it and its recipients are retried, not bounced.
                let class = inner
                    .reputation
                    .classify(&reply, self.shaping.provider_name());
                let reaction = inner.reputation.record(
                    &self.key.source,
                    self.shaping.provider_name(),
                    &self.key.site,
                    class,
                    false,
                );
                for job in jobs {
                    // Nothing left: the warmup allowance goes back.
                    inner
                        .reputation
                        .release(&self.key.source, self.shaping.provider_name());
                    let results =
                        Results::all_classified(&job, reply.clone(), class, reaction.retry_at);
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
            if self
                .deliver(engine, &mut conn, &candidate, job, &unrecorded)
                .await
                .is_break()
            {
                break;
            }
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
            if let Err(why) = self.permit(engine, &job).await {
                self.not_now(engine, job, why);
                break;
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
        source: Option<std::net::IpAddr>,
        ehlo: &str,
    ) -> Result<(Connection, Candidate), Option<ClientError>> {
        let inner = &engine.inner;
        let mut last = None;
        for candidate in candidates {
            let params = ConnectParams {
                addr: candidate.addr,
                mx_name: candidate.name.clone(),
                source,
                ehlo_name: ehlo.to_owned(),
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

    /// Sends one job's message over the connection, classifies the replies, feeds the
    /// throttle, and records the outcome (without waiting for that write).
    async fn deliver(
        &self,
        engine: &DeliveryEngine,
        conn: &mut Connection,
        candidate: &Candidate,
        job: Job,
        unrecorded: &Arc<Semaphore>,
    ) -> ControlFlow<()> {
        let inner = &engine.inner;
        let spool = &inner.spool;
        if spool.refuses_writes() {
            self.pause_for_spool(engine, job);
            return ControlFlow::Break(());
        }
        let outcome = self.outcome(Some(candidate), conn.tls().map(str::to_owned));
        let (envelope, body) = match (spool.envelope(job.message), spool.body(job.message)) {
            (Ok(e), Ok(b)) => (e, b),
            (Ok(_), Err(SpoolError::NotFound(_))) => {
                // Damage outside the MTA (see docs/spool.md): the envelope stays for an
                // eager open to quarantine.
                warn!(id = %job.message, "message body missing from the spool; not delivered");
                self.unsent(engine);
                engine.forget(&job);
                return ControlFlow::Continue(());
            }
            (Err(SpoolError::NotFound(_)), _) => {
                // Gone from the spool (bounced or deleted by an operator): nothing to send.
                self.unsent(engine);
                engine.forget(&job);
                return ControlFlow::Continue(());
            }
            (Err(error @ SpoolError::Corrupt { .. }), _) => {
                // Retrying cannot mend it; the next start quarantines it (docs/spool.md).
                warn!(id = %job.message, %error, "message envelope is damaged; not delivered");
                self.unsent(engine);
                engine.forget(&job);
                return ControlFlow::Continue(());
            }
            (Err(error), _) | (_, Err(error)) => {
                // A read error (storage trouble): the recipients are still
                // pending on disk, so the job waits and tries again rather than being dropped.
                warn!(id = %job.message, %error, "could not read the message from the spool; retrying later");
                self.unsent(engine);
                engine.schedule(job, engine.after_spool_retry());
                return ControlFlow::Continue(());
            }
        };
        let tenant = envelope.tags.tenant.as_deref();
        let mut suppressed = Vec::new();
        let mut indices = Vec::with_capacity(job.recipients.len());
        for i in job.recipients.iter() {
            let Some(r) = envelope.recipients.get(i) else {
                continue;
            };
            if r.state != queue::RecipientState::Pending {
                continue;
            }
            match inner.reputation.suppression(tenant, &r.address) {
                Some(hit) => suppressed.push((i, hit)),
                None => indices.push(i),
            }
        }
        if indices.is_empty() {
            self.unsent(engine);
            if suppressed.is_empty() {
                engine.forget(&job);
            } else {
                let results = Results::suppressed(&suppressed);
                engine.finish(job, results, outcome).await;
            }
            return ControlFlow::Continue(());
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
        let replies = match conn.send(&message).await {
            Ok(outcome) => outcome.recipients,
            Err(error) => vec![error.as_reply(); indices.len()],
        };
        // Classify every reply; the message's class (for the throttle) is `delivered` when any
        // recipient was accepted, else the first refusal's.
        let classes: Vec<Class> = replies
            .iter()
            .map(|r| inner.reputation.classify(r, self.shaping.provider_name()))
            .collect();
        let delivered = classes.contains(&Class::Delivered);
        let message_class = if delivered {
            Class::Delivered
        } else {
            classes.first().copied().unwrap_or(Class::Transient)
        };
        let reaction = inner.reputation.record(
            &self.key.source,
            self.shaping.provider_name(),
            &self.key.site,
            message_class,
            delivered,
        );
        if let Some(change) = &reaction.change {
            debug!(source = %self.key.source, site = %self.key.site, ?change, "throttle changed");
        }
        for ((&i, class), reply) in indices.iter().zip(&classes).zip(&replies) {
            if class.suppresses_recipient() {
                inner
                    .reputation
                    .suppress(tenant, &envelope.recipients[i].address, reply);
            }
        }
        let mut results = Results::classified(&indices, replies, &classes, reaction.retry_at);
        results.add_suppressed(&suppressed);
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
        inner.tracker.spawn(async move {
            engine2.finish(job, results, outcome).await;
            drop(permit);
        });
        ControlFlow::Continue(())
    }

    /// While the spool refuses writes (after a failed commit, until a restart) nothing is
    /// sent: an outcome that cannot be recorded would be sent again after the restart.
    /// Hands `job` (its permit taken) and every job queued here back to the scheduler for
    /// `[delivery] spool_retry` later.
    fn pause_for_spool(&self, engine: &DeliveryEngine, job: Job) {
        let at = engine.after_spool_retry();
        self.unsent(engine);
        engine.schedule(job, at);
        self.hand_back_all(engine, at);
    }

    /// A permitted message that was not sent after all: its allowance goes back and the
    /// throttle hears a neutral outcome (it counts permits against replies).
    fn unsent(&self, engine: &DeliveryEngine) {
        let reputation = &engine.inner.reputation;
        reputation.release(&self.key.source, self.shaping.provider_name());
        reputation.record(
            &self.key.source,
            self.shaping.provider_name(),
            &self.key.site,
            Class::Transient,
            false,
        );
    }

    fn outcome(&self, candidate: Option<&Candidate>, tls: Option<String>) -> Outcome {
        Outcome {
            source: Some(self.key.source.clone()),
            source_ip: self.source.address,
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

    /// Jobs waiting in the ready queue, and connections open.
    pub(crate) fn usage(&self) -> (Vec<Job>, usize) {
        let state = self.lock();
        (state.queue.iter().cloned().collect(), state.established)
    }

    /// Removes the queued jobs `matches` selects (admin flush and bounce).
    pub(crate) fn remove_where(&self, matches: impl FnMut(&Job) -> bool) -> Vec<Job> {
        self.lock().queue.remove_where(matches)
    }

    fn provider_label(&self) -> String {
        self.shaping
            .provider
            .clone()
            .unwrap_or_else(|| "other".to_owned())
    }
}
