//! The delivery engine: the scheduler's timer, routing of due jobs to pools, and the hand-off
//! from the SMTP server.
//!
//! Tasks: one timer task pops due jobs from the [`DelayQueue`] and sends them, through a
//! bounded channel (back-pressure: jobs stay in the timer while routing is busy), to a fixed
//! number of router tasks; a router resolves the job's destination (route, MX, cache) and
//! pushes it into the ready queue of its (source, site) [`Pool`]; pools run the connections.
//! Expired jobs go straight to the outcome code.
//!
//! Invariants: a job is in exactly one place (timer, routing channel, a ready queue, or a
//! connection); nothing here blocks a tokio worker on disk (spool reads are small, writes are
//! group-committed futures); every job the engine drops from memory has been recorded in the
//! spool first, so a restart rebuilds the same work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::scheduler::{
    DelayQueue, Due, Interner, Job, ReadyQueueConfig, RetryPolicy, jobs_from_envelope,
};
use queue::{Envelope, MessageId, SledSpool, Spool};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::destination::{Destination, NoDestination};
use super::outcome::{Outcome, Results};
use super::pool::{Pool, PoolKey};
use super::reputation::Reputation;
use super::route::Routes;
use super::shaping::{Shaping, ShapingRules};
use super::suspend::Suspensions;
use crate::client::{ClientTimeouts, SmtpReply};
use crate::config::Config;
use crate::delivery_log::DeliveryLog;
use crate::dns::MxResolver;
use ipwarm::Decision;

/// Jobs popped from the timer per pass before the timer task yields.
const TIMER_BATCH: usize = 1024;
/// Router tasks resolving destinations concurrently.
const ROUTERS: usize = 64;
/// Jobs waiting between the timer and the routers.
const ROUTING_QUEUE: usize = 4096;
/// How often idle pools and unused interned strings are dropped.
const CLEANUP_INTERVAL_MS: u64 = 60_000;
/// How often the queue gauges are refreshed; also the timer loop's longest sleep.
const GAUGE_INTERVAL_MS: u64 = 1_000;

/// Where a domain's mail last went: (provider name, source once one was chosen).
pub(crate) type Label = (Arc<str>, Option<Arc<str>>);

/// Takes messages the server has made durable and delivers them.
pub trait Submit: Send + Sync {
    /// Hands over a message just stored in the spool.
    fn submit(&self, id: MessageId, envelope: &Envelope);
}

/// The running engine (cheap to clone).
#[derive(Clone)]
pub struct DeliveryEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    /// The configuration the process started with.
    pub(crate) config: Arc<Config>,
    /// The configuration whose run-time sections (routes, providers, classification) are in
    /// force: `config` at start, then each applied reload's.
    pub(crate) live_config: Mutex<Arc<Config>>,
    pub(crate) spool: Arc<SledSpool>,
    pub(crate) resolver: MxResolver,
    pub(crate) log: DeliveryLog,
    pub(crate) rules: RwLock<Arc<ShapingRules>>,
    pub(crate) routes: RwLock<Arc<Routes>>,
    pub(crate) retry: RetryPolicy,
    pub(crate) ready_config: ReadyQueueConfig,
    pub(crate) timeouts: ClientTimeouts,
    /// Sources, warmup, throttles, classification, suppressions.
    pub(crate) reputation: Reputation,
    /// Operator suspensions.
    pub(crate) suspensions: Suspensions,
    /// For the admin view: the provider (or site) and source each domain was last routed to.
    pub(crate) labels: Mutex<HashMap<Arc<str>, Label>>,
    pub(crate) timer: Mutex<DelayQueue>,
    timer_wake: Notify,
    pub(crate) interner: Mutex<Interner>,
    pub(crate) pools: Mutex<HashMap<PoolKey, Arc<Pool>>>,
    /// Serialises read-modify-write of one message's envelope across its jobs.
    message_locks: Vec<tokio::sync::Mutex<()>>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Jobs in memory anywhere (timer, routing, ready queues, connections, and outcomes
    /// waiting to be recorded again after the spool refused them).
    pub(crate) queued: AtomicU64,
    /// How far loading the spool's messages at start has got (for health).
    pub(crate) queue_load: Mutex<QueueLoad>,
}

/// Where loading the spool's messages into the delivery queue stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum QueueLoad {
    /// Still reading the spool; this many messages loaded so far.
    Loading { messages: u64 },
    /// Every message that was in the spool at start is queued.
    Loaded { messages: u64 },
    /// Reading stopped at a spool error: the messages not yet loaded stay in the spool,
    /// undelivered, until the next start.
    Failed { messages: u64, error: String },
}

impl Inner {
    /// The shaping rules in force.
    pub(crate) fn rules(&self) -> Arc<ShapingRules> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The static routes in force.
    pub(crate) fn routes(&self) -> Arc<Routes> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl DeliveryEngine {
    /// Builds the engine (resolver, delivery log, shaping) without starting it.
    pub fn new(config: Arc<Config>, spool: Arc<SledSpool>) -> anyhow::Result<DeliveryEngine> {
        let d = &config.delivery;
        let resolver = MxResolver::new(&config.dns)?;
        let log = DeliveryLog::open(&config.delivery_log)?;
        let default = Shaping {
            provider: None,
            max_connections: d.max_connections,
            max_deliveries_per_connection: d.max_deliveries_per_connection,
            max_message_rate: d.max_message_rate,
            connection_rate: d.connection_rate,
            tls: d.tls,
        };
        let rules = ShapingRules::new(&config.providers, d.default_shaping, default);
        let routes = Routes::new(&config.routes).map_err(anyhow::Error::msg)?;
        let retry = RetryPolicy {
            initial: d.retry_initial,
            max: d.retry_max,
            jitter: d.retry_jitter,
        };
        let timeouts = ClientTimeouts {
            connect: d.connect_timeout,
            greeting: d.command_timeout,
            command: d.command_timeout,
            data_start: d
                .command_timeout
                .min(Duration::from_secs(120))
                .max(Duration::from_secs(1)),
            data_block: d
                .command_timeout
                .min(Duration::from_secs(180))
                .max(Duration::from_secs(1)),
            data_end: d.data_timeout,
        };
        let reputation = Reputation::new(&config, &rules)?;
        let suspensions = Suspensions::load(&config.spool.path);
        let ready_config = ReadyQueueConfig {
            capacity: d.ready_queue_capacity,
            starvation_limit: d.ready_queue_starvation_limit,
        };
        Ok(DeliveryEngine {
            inner: Arc::new(Inner {
                resolver,
                log,
                rules: RwLock::new(Arc::new(rules)),
                routes: RwLock::new(Arc::new(routes)),
                retry,
                ready_config,
                timeouts,
                reputation,
                suspensions,
                labels: Mutex::new(HashMap::new()),
                timer: Mutex::new(DelayQueue::new()),
                timer_wake: Notify::new(),
                interner: Mutex::new(Interner::new()),
                pools: Mutex::new(HashMap::new()),
                message_locks: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
                shutdown: CancellationToken::new(),
                tracker: TaskTracker::new(),
                queued: AtomicU64::new(0),
                queue_load: Mutex::new(QueueLoad::Loading { messages: 0 }),
                spool,
                live_config: Mutex::new(config.clone()),
                config,
            }),
        })
    }

    /// Starts the timer and router tasks. Messages already in the spool come in through
    /// [`load`](Self::load), new ones through [`Submit::submit`].
    pub fn start(&self) {
        let inner = &self.inner;
        let (route_tx, route_rx) = mpsc::channel::<Job>(ROUTING_QUEUE);
        let route_rx = Arc::new(tokio::sync::Mutex::new(route_rx));
        for _ in 0..ROUTERS {
            let engine = self.clone();
            let rx = route_rx.clone();
            inner
                .tracker
                .spawn(async move { engine.route_loop(rx).await });
        }
        let engine = self.clone();
        inner
            .tracker
            .spawn(async move { engine.timer_loop(route_tx).await });
    }

    /// Queues the pending recipients of messages found in the spool (at start, while the
    /// server already accepts new mail): each is due at its envelope's next attempt, or now.
    /// Returns the number of jobs queued.
    pub fn load(&self, pending: &[(MessageId, Envelope)]) -> u64 {
        let inner = &self.inner;
        let now = now_ms();
        let max_age = inner.config.delivery.max_age.as_millis() as u64;
        let mut count = 0;
        {
            let mut interner = inner.interner.lock().expect("interner lock");
            let mut timer = inner.timer.lock().expect("timer lock");
            for (id, envelope) in pending {
                for job in jobs_from_envelope(*id, envelope, max_age, &mut interner) {
                    timer.insert(job, envelope.next_attempt_ms.max(now));
                    count += 1;
                }
            }
        }
        inner.queued.fetch_add(count, Ordering::Relaxed);
        inner.timer_wake.notify_one();
        if let QueueLoad::Loading { messages } =
            &mut *inner.queue_load.lock().unwrap_or_else(|e| e.into_inner())
        {
            *messages += pending.len() as u64;
        }
        count
    }

    /// When a job the spool could not serve (a read error, or writes refused) is tried
    /// again: `[delivery] spool_retry` from now (unix ms).
    pub(crate) fn after_spool_retry(&self) -> u64 {
        now_ms() + self.inner.config.delivery.spool_retry.as_millis() as u64
    }

    /// Records the end of loading the spool at start: `Err` carries why reading stopped
    /// early (health reports it until the next start).
    pub fn load_finished(&self, result: Result<(), String>) {
        let mut state = self
            .inner
            .queue_load
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let messages = match &*state {
            QueueLoad::Loading { messages }
            | QueueLoad::Loaded { messages }
            | QueueLoad::Failed { messages, .. } => *messages,
        };
        *state = match result {
            Ok(()) => QueueLoad::Loaded { messages },
            Err(error) => QueueLoad::Failed { messages, error },
        };
    }

    /// Stops every task: connections finish their current message and QUIT. Jobs still in
    /// memory are in the spool and come back at the next start.
    pub async fn stop(&self, grace: Duration) {
        self.inner.shutdown.cancel();
        self.inner.timer_wake.notify_one();
        self.inner.tracker.close();
        if tokio::time::timeout(grace, self.inner.tracker.wait())
            .await
            .is_err()
        {
            warn!("delivery tasks still running after the grace period");
        }
        self.inner.reputation.save();
        if let Err(error) = self.inner.log.close() {
            warn!(%error, "closing the delivery log");
        }
    }

    /// Jobs held in memory (for tests and metrics).
    pub fn queued_jobs(&self) -> u64 {
        self.inner.queued.load(Ordering::Relaxed)
    }

    /// Records the provider (and source, once chosen) `job`'s domain was routed to, for the
    /// admin views of jobs waiting in the scheduler.
    fn label(&self, job: &Job, provider: &Arc<str>, source: Option<&Arc<str>>) {
        let mut labels = self.inner.labels.lock().expect("labels lock");
        let label = labels
            .entry(job.domain.clone())
            .or_insert_with(|| (provider.clone(), None));
        label.0 = provider.clone();
        if let Some(source) = source {
            label.1 = Some(source.clone());
        }
    }

    /// Schedules `job` at `at_ms` (or its expiry).
    pub(crate) fn schedule(&self, job: Job, at_ms: u64) -> u64 {
        let at = self
            .inner
            .timer
            .lock()
            .expect("timer lock")
            .insert(job, at_ms);
        self.inner.timer_wake.notify_one();
        at
    }

    /// The lock that serialises updates of one message's envelope. Ids share their low 64
    /// bits within a process (a per-process tag), so the stripe comes from the high bits (time
    /// and sequence), spread by Fibonacci hashing.
    pub(crate) fn message_lock(&self, id: MessageId) -> &tokio::sync::Mutex<()> {
        let high = (id.as_u128() >> 64) as u64;
        let index = (high.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
            % self.inner.message_locks.len();
        &self.inner.message_locks[index]
    }

    async fn timer_loop(self, route_tx: mpsc::Sender<Job>) {
        let inner = &self.inner;
        let mut last_cleanup = now_ms();
        let mut last_gauges = 0;
        loop {
            if inner.shutdown.is_cancelled() {
                return;
            }
            let now = now_ms();
            if now.saturating_sub(last_cleanup) >= CLEANUP_INTERVAL_MS {
                last_cleanup = now;
                self.clean_up();
            }
            if now.saturating_sub(last_gauges) >= GAUGE_INTERVAL_MS {
                last_gauges = now;
                self.update_gauges();
            }
            let (due, next): (Vec<Due>, Option<u64>) = {
                let mut timer = inner.timer.lock().expect("timer lock");
                let mut due = Vec::new();
                while due.len() < TIMER_BATCH {
                    match timer.pop_due(now) {
                        Some(d) => due.push(d),
                        None => break,
                    }
                }
                (due, timer.next_due_ms())
            };
            let full_batch = due.len() == TIMER_BATCH;
            for d in due {
                match d {
                    Due::Attempt(job) => {
                        if route_tx.send(job).await.is_err() {
                            return;
                        }
                    }
                    Due::Expired(job) => {
                        let engine = self.clone();
                        inner.tracker.spawn(async move { engine.expire(job).await });
                    }
                }
            }
            if full_batch {
                tokio::task::yield_now().await;
                continue;
            }
            // Wakes at least every GAUGE_INTERVAL_MS, so gauges and clean-up run on time
            // even when nothing is due.
            let sleep = match next {
                Some(at) => at.saturating_sub(now_ms()).clamp(1, GAUGE_INTERVAL_MS),
                None => GAUGE_INTERVAL_MS,
            };
            let sleep = Duration::from_millis(sleep);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = inner.timer_wake.notified() => {}
                _ = inner.shutdown.cancelled() => return,
            }
        }
    }

    async fn route_loop(self, rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>) {
        loop {
            let job = {
                let mut rx = rx.lock().await;
                tokio::select! {
                    job = rx.recv() => job,
                    _ = self.inner.shutdown.cancelled() => None,
                }
            };
            let Some(job) = job else { return };
            self.route(job).await;
        }
    }

    /// Drops pools that hold and run nothing, and interned strings no job uses any more, so
    /// memory follows the current queue rather than every destination ever seen.
    fn clean_up(&self) {
        let inner = &self.inner;
        let pools = {
            let mut pools = inner.pools.lock().expect("pools lock");
            pools.retain(|_, pool| !pool.is_idle());
            pools.len()
        };
        // A label lives as long as a job of its domain: the key is the interned domain the
        // jobs share (interner, label and each job hold it), so a count of two means none.
        inner
            .labels
            .lock()
            .expect("labels lock")
            .retain(|domain, _| Arc::strong_count(domain) > 2);
        let strings = inner
            .interner
            .lock()
            .expect("interner lock")
            .remove_unused();
        let engine = self.clone();
        // Saving may write a large suppression list: off the reactor.
        tokio::task::spawn_blocking(move || engine.inner.reputation.save());
        debug!(pools, strings_dropped = strings, "delivery clean-up");
    }

    /// Sets the `delivery_pools` and `delivery_queued_jobs` gauges.
    fn update_gauges(&self) {
        let inner = &self.inner;
        let pools = inner.pools.lock().expect("pools lock").len();
        metrics::gauge!("delivery_pools").set(pools as f64);
        metrics::gauge!("delivery_queued_jobs").set(inner.queued.load(Ordering::Relaxed) as f64);
    }

    /// Finds the job's destination and hands it to the pool for (source, site).
    async fn route(&self, job: Job) {
        let inner = &self.inner;
        if inner.spool.refuses_writes() {
            // Nothing could be recorded: a delivery now would be sent again after the
            // restart the spool needs. Wait (health says the spool is failing).
            self.schedule(job, self.after_spool_retry());
            return;
        }
        // Domain and tenant suspensions hold mail before its destination is resolved: a
        // suspended domain's mail waits even while its DNS fails (an operator's answer to a
        // broken zone that would otherwise bounce everything).
        let Some(job) = inner.suspensions.hold(job, None, None, |job, until| {
            self.schedule(job, until);
        }) else {
            return;
        };
        let routes = inner.routes();
        let destination = Destination::resolve(&job.domain, &routes, &inner.resolver).await;
        let destination = match destination {
            Ok(d) => d,
            Err(no) => {
                let reply = no_destination_reply(&no);
                debug!(domain = %job.domain, reply = %reply, "no destination");
                let results = Results::all(&job, reply);
                self.finish(job, results, Outcome::unrouted()).await;
                return;
            }
        };
        let shaping = inner.rules().shaping_for(destination.host_names());
        // Limits, throttles and pools are per provider when a rule names one, else per site.
        let site: Arc<str> = match &shaping.provider {
            Some(provider) => Arc::from(provider.as_str()),
            None => Arc::from(destination.site()),
        };
        // Every job that waits in the scheduler from here is labelled first, so mail held by a
        // suspension or a warmup cap shows under its provider in the admin views.
        let provider: Arc<str> = Arc::from(shaping.provider_name());
        let Some(job) = inner
            .suspensions
            .hold(job, Some(&provider), None, |job, until| {
                self.label(&job, &provider, None);
                self.schedule(job, until);
            })
        else {
            return;
        };
        let now = now_ms();
        let source = match inner.reputation.choose(
            job.tenant.as_deref(),
            job.pool.as_deref(),
            shaping.provider_name(),
            &site,
            now,
        ) {
            Decision::Use(source) => source,
            Decision::WaitUntil { until, reason } => {
                debug!(domain = %job.domain, ?reason, until, "no source may send now");
                self.label(&job, &provider, None);
                self.schedule(job, until.max(now + 1));
                return;
            }
        };
        self.label(&job, &provider, Some(&source.name));
        let Some(job) =
            inner
                .suspensions
                .hold(job, Some(&provider), Some(&source.name), |job, until| {
                    inner.reputation.release(&source.name, &provider);
                    self.schedule(job, until);
                })
        else {
            return;
        };
        let key = PoolKey {
            source: source.name.clone(),
            site,
        };
        // Pushed under the map lock, so the clean-up never drops a pool between lookup and push.
        let (pool, pushed) = {
            let mut pools = inner.pools.lock().expect("pools lock");
            let pool = pools
                .entry(key.clone())
                .or_insert_with(|| Pool::new(key, shaping, source, inner.ready_config))
                .clone();
            let pushed = pool.push(job, destination);
            (pool, pushed)
        };
        if let Err(job) = pushed {
            // The ready queue is full: wait in the timer a little, not counted as an attempt.
            inner
                .reputation
                .release(&pool.key.source, pool.shaping.provider_name());
            let delay = 1000 + rand::random::<u64>() % 4000;
            self.schedule(job, now_ms() + delay);
            return;
        }
        pool.kick(self);
    }
}

impl Submit for DeliveryEngine {
    fn submit(&self, id: MessageId, envelope: &Envelope) {
        if envelope.received_from != "local" {
            self.record_reception(id, envelope);
        }
        let max_age = self.inner.config.delivery.max_age.as_millis() as u64;
        let jobs = {
            let mut interner = self.inner.interner.lock().expect("interner lock");
            jobs_from_envelope(id, envelope, max_age, &mut interner)
        };
        self.inner
            .queued
            .fetch_add(jobs.len() as u64, Ordering::Relaxed);
        let at = envelope.next_attempt_ms;
        let mut timer = self.inner.timer.lock().expect("timer lock");
        for job in jobs {
            timer.insert(job, at);
        }
        drop(timer);
        self.inner.timer_wake.notify_one();
    }
}

/// The reply recorded for a job that could not be routed (its class says whether to retry).
fn no_destination_reply(no: &NoDestination) -> SmtpReply {
    match no {
        NoDestination::NullMx => SmtpReply::local(
            556,
            (5, 1, 10),
            "recipient domain does not accept mail (null MX)",
        ),
        NoDestination::Dns(e) if e.is_permanent() => {
            let code = parse_enhanced(e.enhanced_code()).unwrap_or((5, 1, 2));
            SmtpReply::local(550, code, e.to_string())
        }
        NoDestination::Dns(e) => SmtpReply::local(451, (4, 4, 3), format!("DNS: {e}")),
        NoDestination::Smarthost(e) => SmtpReply::local(451, (4, 4, 3), format!("smarthost: {e}")),
    }
}

fn parse_enhanced(text: &str) -> Option<(u8, u16, u16)> {
    let mut parts = text.split('.');
    let class = parts.next()?.parse().ok()?;
    let subject = parts.next()?.parse().ok()?;
    let detail = parts.next()?.parse().ok()?;
    Some((class, subject, detail))
}
