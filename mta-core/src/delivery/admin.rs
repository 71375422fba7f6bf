//! The engine's side of the admin API: queue views, suspensions, flush and bounce by filter,
//! pools and throttles, suppressions, reload and health.
//!
//! Invariants: every state change is logged as an `AdminAction` record (who, what, how much)
//! and takes effect at once: a suspension is checked before every message a connection
//! sends, flushed jobs are due now, bounced jobs are finished before the reply; scans of the
//! scheduler hold its lock only while copying what they need (about 60 ms per million jobs).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::scheduler::Job;
use queue::{EntryKind, MessageId, Spool};
use tokio_util::sync::CancellationToken;

use super::engine::{DeliveryEngine, QueueLoad, now_ms};
use super::outcome::{Outcome, Results};
use super::suspend;
use crate::admin::types::{
    ActionCount, BounceResult, ComponentHealth, Filter, Health, HealthStatus, MAX_QUARANTINE_LIST,
    MessageView, NewSuppression, NewSuspension, PoolsView, ProviderUse, QuarantineEntry,
    QuarantineList, QueueEntry, QueueQuery, QueueSummary, QueueSummaryBuilder, ReloadReport,
    SourceView, Suppression, SuppressionChange, SuppressionKey, SuppressionOrigin, SuppressionPage,
    SuppressionQuery, Suspension, SuspensionScope, Throttle, ThrottleState, Warmup,
};
use crate::admin::{Actor, AdminBackend, BackendError, BoxFuture};
use crate::client::SmtpReply;
use crate::config::Config;
use crate::delivery_log::{Record, RecordType};
use crate::server::SignerHandle;

/// The admin backend of a running MTA.
pub struct EngineAdmin {
    engine: DeliveryEngine,
    /// The configuration file the daemon runs with (reload re-reads it); `None`: the
    /// embedded default.
    config_path: Option<PathBuf>,
    /// The server's DKIM signer, replaced on reload.
    signer: SignerHandle,
    /// Cancelled when the MTA starts stopping (before sessions drain): health says so.
    stopping: CancellationToken,
    started_at: SystemTime,
}

impl EngineAdmin {
    /// The backend for `engine`; `config_path` is what `reload` re-reads.
    /// `signer` is the server's DKIM signer, which reload replaces; `stopping` is the
    /// lifecycle's shutdown token.
    pub fn new(
        engine: DeliveryEngine,
        config_path: Option<PathBuf>,
        signer: SignerHandle,
        stopping: CancellationToken,
    ) -> EngineAdmin {
        EngineAdmin {
            engine,
            config_path,
            signer,
            stopping,
            started_at: SystemTime::now(),
        }
    }

    /// Writes the suppression list to disk (off the reactor) before an answer says a change
    /// was made, then logs `action` as an AdminAction.
    async fn save_suppressions(&self, actor: Actor, action: String) -> Result<(), BackendError> {
        let engine = self.engine.clone();
        off_reactor("saving the suppression list", move || {
            engine.inner.reputation.save_suppressions()?;
            log_action(&engine, &actor, action, None);
            Ok::<_, std::io::Error>(())
        })
        .await
    }

    /// Runs a change of the suspension list (a synced write) off the reactor.
    async fn change_suspensions<T: Send + 'static>(
        &self,
        change: impl FnOnce(&DeliveryEngine) -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, BackendError> {
        let engine = self.engine.clone();
        off_reactor("saving the suspension list", move || change(&engine)).await
    }

    /// Runs `what` on the spool's quarantine off the reactor.
    async fn with_quarantine<T: Send + 'static>(
        &self,
        what: &'static str,
        work: impl FnOnce(&queue::SledSpool) -> Result<T, queue::SpoolError> + Send + 'static,
    ) -> Result<T, BackendError> {
        let spool = self.engine.inner.spool.clone();
        off_reactor(what, move || work(&spool)).await
    }

    /// Logs an admin action.
    fn log_action(&self, actor: &Actor, action: String, count: Option<&ActionCount>) {
        log_action(&self.engine, actor, action, count);
    }
}

/// Runs blocking work (disk writes, reads) on the blocking pool: it runs to its end even if
/// the request that asked for it goes away. Its error (or a panic) is `what` failing.
async fn off_reactor<T, E>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, BackendError>
where
    T: Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(BackendError::Failed {
            what,
            source: Box::new(error),
        }),
        Err(error) => Err(BackendError::Failed {
            what,
            source: Box::new(error),
        }),
    }
}

/// Logs an admin action (an `AdminAction` record and a process log line).
fn log_action(engine: &DeliveryEngine, actor: &Actor, action: String, count: Option<&ActionCount>) {
    let mut record = Record::new(RecordType::AdminAction, SystemTime::now());
    record.action = Some(match count {
        Some(c) => format!(
            "{action} ({} messages, {} recipients) via {actor}",
            c.messages, c.recipients
        ),
        None => format!("{action} via {actor}"),
    });
    engine.inner.log.log(record);
    tracing::info!(%actor, %action, "admin action");
}

fn time_of(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// A job as the admin views count it, with its labels.
struct Labeled {
    job: Job,
    provider: Option<Arc<str>>,
    source: Option<Arc<str>>,
}

impl Labeled {
    fn entry(&self) -> QueueEntry<'_> {
        QueueEntry {
            message: self.job.message,
            domain: &self.job.domain,
            provider: self.provider.as_deref(),
            source: self.source.as_deref(),
            tenant: self.job.tenant.as_deref(),
            campaign: self.job.campaign.as_deref(),
            recipients: self.job.recipients.len() as u64,
            attempts: self.job.attempts,
            created: time_of(self.job.created_ms),
        }
    }
}

impl DeliveryEngine {
    /// Copies of every job held in memory, labelled with provider and source where known.
    fn all_jobs(&self) -> Vec<Labeled> {
        let inner = &self.inner;
        let labels = inner.labels.lock().expect("labels lock").clone();
        let mut jobs: Vec<Labeled> = {
            let timer = inner.timer.lock().expect("timer lock");
            timer
                .iter()
                .map(|job| {
                    let label = labels.get(&job.domain);
                    Labeled {
                        job: job.clone(),
                        provider: label.map(|l| l.0.clone()),
                        source: label.and_then(|l| l.1.clone()),
                    }
                })
                .collect()
        };
        let pools: Vec<_> = inner
            .pools
            .lock()
            .expect("pools lock")
            .values()
            .cloned()
            .collect();
        for pool in pools {
            let (queued, _) = pool.usage();
            jobs.extend(queued.into_iter().map(|job| Labeled {
                job,
                provider: Some(Arc::from(pool.shaping.provider_name())),
                source: Some(pool.key.source.clone()),
            }));
        }
        jobs
    }

    /// Takes the jobs `filter` selects out of the scheduler and the ready queues.
    fn take_jobs(&self, filter: &Filter) -> Vec<Job> {
        let inner = &self.inner;
        let labels = inner.labels.lock().expect("labels lock").clone();
        let label_entry = |job: &Job, provider: Option<&str>, source: Option<&str>| {
            filter.matches(&QueueEntry {
                message: job.message,
                domain: &job.domain,
                provider,
                source,
                tenant: job.tenant.as_deref(),
                campaign: job.campaign.as_deref(),
                recipients: job.recipients.len() as u64,
                attempts: job.attempts,
                created: time_of(job.created_ms),
            })
        };
        let mut taken = inner.timer.lock().expect("timer lock").remove_where(|job| {
            let label = labels.get(&job.domain);
            label_entry(
                job,
                label.map(|l| &*l.0),
                label.and_then(|l| l.1.as_deref()),
            )
        });
        let pools: Vec<_> = inner
            .pools
            .lock()
            .expect("pools lock")
            .values()
            .cloned()
            .collect();
        for pool in pools {
            let removed = pool.remove_where(|job| {
                label_entry(
                    job,
                    Some(pool.shaping.provider_name()),
                    Some(&pool.key.source),
                )
            });
            for _ in &removed {
                inner
                    .reputation
                    .release(&pool.key.source, pool.shaping.provider_name());
            }
            taken.extend(removed);
        }
        taken
    }
}

/// Makes the jobs a lifted suspension held due now. They wait in the scheduler for exactly
/// its end; jobs waiting for a retry are left alone. For a domain or tenant (fields of the
/// job), jobs of the scope that wait for an expiry before the suspension's end are released
/// too (a held job whose expiry came first; or a retry capped at its expiry, which gets one
/// more attempt); for provider or source scopes those cannot be told from others and wait.
fn release_held(engine: &DeliveryEngine, suspension: &Suspension) {
    let end = suspend::end_ms(suspension);
    let by_job_fields = matches!(
        suspension.scope,
        SuspensionScope::Domain(_) | SuspensionScope::Tenant { .. }
    );
    let jobs = engine
        .inner
        .timer
        .lock()
        .expect("timer lock")
        .remove_scheduled_where(|at, job| {
            if by_job_fields {
                suspend::covers(&suspension.scope, job, None, None)
                    && (at == end || (at == job.expires_ms && at < end))
            } else {
                at == end
            }
        });
    let now = now_ms();
    for job in jobs {
        engine.schedule(job, now);
    }
}

fn count(jobs: &[Job]) -> ActionCount {
    let mut messages: Vec<MessageId> = jobs.iter().map(|j| j.message).collect();
    messages.sort_unstable();
    messages.dedup();
    ActionCount {
        messages: messages.len() as u64,
        recipients: jobs.iter().map(|j| j.recipients.len() as u64).sum(),
    }
}

impl AdminBackend for EngineAdmin {
    fn queue_summary(
        &self,
        query: QueueQuery,
    ) -> BoxFuture<'_, Result<QueueSummary, BackendError>> {
        Box::pin(async move {
            let jobs = self.engine.all_jobs();
            let mut builder = QueueSummaryBuilder::new(&query, SystemTime::now());
            for job in &jobs {
                builder.add(&job.entry());
            }
            Ok(builder.finish())
        })
    }

    fn message<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<MessageView>, BackendError>> {
        Box::pin(async move {
            let Ok(id) = id.parse::<MessageId>() else {
                return Ok(None);
            };
            Ok(self
                .engine
                .inner
                .spool
                .envelope(id)
                .ok()
                .map(|envelope| MessageView::from_envelope(id, &envelope)))
        })
    }

    fn suspend(
        &self,
        new: NewSuspension,
        actor: Actor,
    ) -> BoxFuture<'_, Result<Suspension, BackendError>> {
        Box::pin(async move {
            // Logged inside the change, which runs to its end even if the request goes away.
            self.change_suspensions(move |engine| {
                let suspension = engine.inner.suspensions.add(new, actor.to_string())?;
                log_action(
                    engine,
                    &actor,
                    format!(
                        "suspend {} until {} ({})",
                        suspension.scope,
                        humantime::format_rfc3339_seconds(suspension.expires_at),
                        suspension.reason
                    ),
                    None,
                );
                Ok(suspension)
            })
            .await
        })
    }

    fn suspensions(&self) -> BoxFuture<'_, Result<Vec<Suspension>, BackendError>> {
        Box::pin(async move { Ok(self.engine.inner.suspensions.list()) })
    }

    fn resume<'a>(
        &'a self,
        id: &'a str,
        actor: Actor,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            // Released under the suspensions lock, which every hold takes too: no job held at
            // this moment is missed.
            let owned = id.to_owned();
            self.change_suspensions(move |engine| {
                let removed = engine
                    .inner
                    .suspensions
                    .remove_and(&owned, |removed| release_held(engine, removed))?;
                if removed.is_some() {
                    log_action(engine, &actor, format!("resume {owned}"), None);
                }
                Ok(removed.is_some())
            })
            .await
        })
    }

    fn flush(
        &self,
        filter: Filter,
        actor: Actor,
    ) -> BoxFuture<'_, Result<ActionCount, BackendError>> {
        Box::pin(async move {
            let jobs = self.engine.take_jobs(&filter);
            let counted = count(&jobs);
            let now = now_ms();
            for job in jobs {
                self.engine.schedule(job, now);
            }
            self.log_action(&actor, format!("flush {filter}"), Some(&counted));
            Ok(counted)
        })
    }

    fn bounce(
        &self,
        filter: Filter,
        send_dsn: bool,
        actor: Actor,
    ) -> BoxFuture<'_, Result<BounceResult, BackendError>> {
        Box::pin(async move {
            let send_dsn = send_dsn && self.engine.inner.config.delivery.bounces;
            let jobs = self.engine.take_jobs(&filter);
            let counted = count(&jobs);
            // The jobs taken are out of the scheduler: a task of its own finishes them all,
            // even if the request goes away meanwhile.
            let engine = self.engine.clone();
            let unrecorded = self
                .engine
                .inner
                .tracker
                .spawn(async move {
                    let reply =
                        SmtpReply::local(550, (5, 0, 0), "delivery cancelled by the operator");
                    let mut unrecorded = 0usize;
                    for job in jobs {
                        let mut results = Results::all(&job, reply.clone());
                        if !send_dsn {
                            results = results.without_dsn();
                        }
                        if !engine.finish(job, results, Outcome::unrouted()).await {
                            unrecorded += 1;
                        }
                    }
                    let what = if send_dsn {
                        "with DSNs"
                    } else {
                        "without DSNs"
                    };
                    let action = format!("bounce {filter} {what}");
                    log_action(&engine, &actor, action, Some(&counted));
                    unrecorded
                })
                .await
                .map_err(|e| BackendError::Failed {
                    what: "bouncing",
                    source: Box::new(e),
                })?;
            if unrecorded > 0 {
                // Settled, but not on disk: a spool that refuses writes does so until a
                // restart, after which these recipients are queued again.
                return Err(BackendError::Failed {
                    what: "recording the bounce in the spool (the spool refuses writes: restart the MTA and bounce again)",
                    source: format!("the spool refused {unrecorded} of the bounced jobs' records")
                        .into(),
                });
            }
            Ok(BounceResult {
                messages: counted.messages,
                recipients: counted.recipients,
                dsn: send_dsn,
            })
        })
    }

    fn pools(&self) -> BoxFuture<'_, Result<PoolsView, BackendError>> {
        Box::pin(async move {
            let inner = &self.engine.inner;
            let (sources, states) = inner.reputation.state();
            let pools: Vec<_> = inner
                .pools
                .lock()
                .expect("pools lock")
                .values()
                .cloned()
                .collect();
            let now = now_ms();
            let mut views = Vec::with_capacity(sources.len());
            for source in sources {
                let mut providers = Vec::new();
                let mut warmup = None;
                for state in states.iter().filter(|s| *s.source == *source.name) {
                    if let Some(w) = &state.warmup {
                        warmup.get_or_insert(Warmup {
                            day: w.day,
                            days: w.plan_days,
                            schedule: Some(w.plan.clone()),
                        });
                    }
                    let pool = pools
                        .iter()
                        .find(|p| *p.key.source == *source.name && *p.key.site == *state.provider);
                    let (queued, connections) = pool.map_or((0, 0), |p| {
                        let (jobs, established) = p.usage();
                        (jobs.len() as u64, established as u32)
                    });
                    let throttle = match &state.throttle {
                        None => Throttle::open(),
                        Some(t) => throttle_view(t, now),
                    };
                    providers.push(ProviderUse {
                        provider: state.provider.clone(),
                        allowance: state.warmup.as_ref().and_then(|w| w.allowance),
                        used: state.warmup.as_ref().map_or(0, |w| w.taken),
                        connections,
                        queued,
                        rate_per_min: state
                            .throttle
                            .as_ref()
                            .and_then(|t| t.rate_per_min)
                            .map(|r| r.round() as u64),
                        max_connections: state.throttle.as_ref().map(|t| t.concurrency as u32),
                        throttle,
                    });
                }
                views.push(SourceView {
                    name: source.name.to_string(),
                    address: source.address,
                    pool: inner.reputation.pools_of(&source.name),
                    warmup,
                    providers,
                });
            }
            Ok(PoolsView { sources: views })
        })
    }

    fn suppressions(
        &self,
        query: SuppressionQuery,
    ) -> BoxFuture<'_, Result<SuppressionPage, BackendError>> {
        Box::pin(async move {
            let ttl = self.engine.inner.config.suppression.ttl;
            let limit = query.limit.unwrap_or(100).min(10_000);
            let entries = self
                .engine
                .inner
                .reputation
                .with_suppressions(|s, now| s.list(query.tenant.as_deref(), now, usize::MAX));
            let mut page: Vec<Suppression> = entries
                .into_iter()
                .filter(|e| {
                    query
                        .address
                        .as_deref()
                        .is_none_or(|a| a.eq_ignore_ascii_case(&e.address))
                })
                .filter(|e| {
                    query
                        .after
                        .as_deref()
                        .is_none_or(|after| e.address.as_str() > after)
                })
                .map(|e| Suppression {
                    address: e.address,
                    tenant: (!e.tenant.is_empty()).then_some(e.tenant),
                    reason: e.reason,
                    origin: match e.origin {
                        ipwarm::SuppressionOrigin::Bounce => SuppressionOrigin::Bounce,
                        ipwarm::SuppressionOrigin::Manual => SuppressionOrigin::Manual,
                    },
                    // Entries restored from before `added_ms` was kept: their end less the ttl.
                    created_at: if e.added_ms > 0 {
                        time_of(e.added_ms)
                    } else {
                        time_of(e.until_ms).checked_sub(ttl).unwrap_or(UNIX_EPOCH)
                    },
                })
                .collect();
            page.sort_by(|a, b| (&a.address, &a.tenant).cmp(&(&b.address, &b.tenant)));
            // `after` is an address: an address suppressed for several tenants is never
            // split across pages (the page may run a few entries past `limit` for it).
            let mut end = page.len().min(limit.max(1));
            while end < page.len() && page[end].address == page[end - 1].address {
                end += 1;
            }
            let next = (end < page.len()).then(|| page[end - 1].address.clone());
            page.truncate(end);
            Ok(SuppressionPage {
                entries: page,
                next,
            })
        })
    }

    fn add_suppressions(
        &self,
        entries: Vec<NewSuppression>,
        actor: Actor,
    ) -> BoxFuture<'_, Result<SuppressionChange, BackendError>> {
        Box::pin(async move {
            let mut change = SuppressionChange {
                changed: 0,
                unchanged: 0,
            };
            self.engine.inner.reputation.with_suppressions(|s, now| {
                for entry in &entries {
                    if s.add(
                        entry.tenant.as_deref().unwrap_or(""),
                        &entry.address,
                        now,
                        ipwarm::SuppressionOrigin::Manual,
                        entry.reason.as_deref(),
                    ) {
                        change.changed += 1;
                    } else {
                        change.unchanged += 1;
                    }
                }
            });
            self.save_suppressions(actor, format!("suppress {} addresses", entries.len()))
                .await?;
            Ok(change)
        })
    }

    fn remove_suppression(
        &self,
        key: SuppressionKey,
        actor: Actor,
    ) -> BoxFuture<'_, Result<bool, BackendError>> {
        Box::pin(async move {
            let removed = self.engine.inner.reputation.with_suppressions(|s, _| {
                s.remove(key.tenant.as_deref().unwrap_or(""), &key.address)
            });
            if removed {
                self.save_suppressions(actor, format!("unsuppress {}", key.address))
                    .await?;
            }
            Ok(removed)
        })
    }

    fn reload(&self, actor: Actor) -> BoxFuture<'_, Result<ReloadReport, BackendError>> {
        Box::pin(async move {
            let new = match &self.config_path {
                Some(path) => Config::from_file(path).map_err(|e| BackendError::Rejected {
                    reason: e.to_string(),
                })?,
                None => Config::embedded_default(),
            };
            // Always re-read the keys: a key file may have been replaced under the same path.
            // `Signer::reload` reuses unchanged keys. Built before anything is applied, so a
            // key that does not load leaves the whole running configuration as it was.
            let signer = if !new.dkim.is_empty() || !self.signer.current().is_empty() {
                Some(
                    self.signer
                        .current()
                        .reload(&new.dkim, &new.base_dir)
                        .map_err(|e| BackendError::Rejected {
                            reason: crate::config::error_chain(&e),
                        })?,
                )
            } else {
                None
            };
            let mut report = self
                .engine
                .reload(&new)
                .map_err(|e| BackendError::Rejected { reason: e })?;
            if let Some(signer) = signer {
                self.signer.replace(signer);
                report.applied.push("dkim".to_owned());
            }
            self.log_action(
                &actor,
                format!(
                    "reload (applied: {:?}; needs restart: {:?})",
                    report.applied, report.needs_restart
                ),
                None,
            );
            Ok(report)
        })
    }

    fn quarantine(&self) -> BoxFuture<'_, Result<QuarantineList, BackendError>> {
        Box::pin(async move {
            let (listed, total) = self
                .with_quarantine("reading the spool's quarantine", |spool| {
                    spool.quarantine_listing(MAX_QUARANTINE_LIST)
                })
                .await?;
            let entries = listed
                .into_iter()
                .map(|entry| QuarantineEntry {
                    id: entry.id.map(|id| id.to_string()),
                    kind: match entry.kind {
                        EntryKind::Body => "body",
                        EntryKind::Envelope => "envelope",
                        EntryKind::Unknown => "unknown",
                    }
                    .to_owned(),
                    size: entry.len as u64,
                    reason: entry.reason,
                })
                .collect();
            Ok(QuarantineList { entries, total })
        })
    }

    fn quarantined_body<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            let Ok(id) = id.parse::<MessageId>() else {
                return Ok(None);
            };
            let body = self
                .with_quarantine("reading the spool's quarantine", move |spool| {
                    spool.quarantined_body(id)
                })
                .await?;
            Ok(body.map(|body| body.to_vec()))
        })
    }

    fn discard_quarantined<'a>(
        &'a self,
        id: &'a str,
        actor: Actor,
    ) -> BoxFuture<'a, Result<usize, BackendError>> {
        Box::pin(async move {
            let Ok(id) = id.parse::<MessageId>() else {
                return Ok(0);
            };
            let engine = self.engine.clone();
            // Deleted and logged off the reactor, to the end even if the request goes away.
            self.with_quarantine("discarding from the spool's quarantine", move |spool| {
                let entries = spool.remove_quarantined(id)?;
                if entries > 0 {
                    let action = format!("discard quarantined {id} ({entries} entries)");
                    log_action(&engine, &actor, action, None);
                }
                Ok(entries)
            })
            .await
        })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move {
            let inner = &self.engine.inner;
            let stopping = self.stopping.is_cancelled() || inner.shutdown.is_cancelled();
            let dropped = inner.log.dropped();
            let mut components = vec![
                ComponentHealth {
                    name: "delivery".into(),
                    // Stopping (from the signal on, while sessions drain): probes see 503
                    // and send traffic elsewhere.
                    status: if stopping {
                        HealthStatus::Failing
                    } else {
                        HealthStatus::Ok
                    },
                    detail: Some(if stopping {
                        "stopping".to_owned()
                    } else {
                        format!("{} jobs queued", inner.queued.load(Ordering::Relaxed))
                    }),
                },
                ComponentHealth {
                    name: "delivery_log".into(),
                    status: if dropped == 0 {
                        HealthStatus::Ok
                    } else {
                        HealthStatus::Degraded
                    },
                    detail: (dropped > 0).then(|| format!("{dropped} records dropped")),
                },
            ];
            components.push(queue_load_health(
                &inner.queue_load.lock().unwrap_or_else(|e| e.into_inner()),
            ));
            let spool = inner.spool.stats();
            components.push(ComponentHealth {
                name: "spool".into(),
                status: if spool.failed_commits == 0 {
                    HealthStatus::Ok
                } else {
                    HealthStatus::Failing
                },
                detail: Some(format!(
                    "{} commits, {} failed",
                    spool.commits, spool.failed_commits
                )),
            });
            Health::from_components(env!("CARGO_PKG_VERSION"), self.started_at, components)
        })
    }
}

/// Health of loading the spool at start: `degraded` when it stopped at an error (the
/// messages not loaded wait, undelivered, for the next start; new mail still flows).
fn queue_load_health(load: &QueueLoad) -> ComponentHealth {
    let (status, detail) = match load {
        QueueLoad::Loading { messages } => (
            HealthStatus::Ok,
            format!("loading the spool: {messages} messages so far"),
        ),
        QueueLoad::Loaded { messages } => (
            HealthStatus::Ok,
            format!("{messages} messages loaded at start"),
        ),
        QueueLoad::Failed { messages, error } => (
            HealthStatus::Degraded,
            format!(
                "loading the spool stopped after {messages} messages: {error}; \
                 the rest wait for the next start"
            ),
        ),
    };
    ComponentHealth {
        name: "queue_load".into(),
        status,
        detail: Some(detail),
    }
}

/// The admin view of a throttle.
fn throttle_view(state: &ipwarm::ThrottleState, _now: u64) -> Throttle {
    use ipwarm::Health as H;
    match &state.health {
        H::Healthy => Throttle::open(),
        H::Throttled { reason } => Throttle {
            state: ThrottleState::Slowed,
            until: None,
            reason: Some(reason.to_string()),
        },
        H::Suspended { until_ms, reason } => Throttle {
            state: ThrottleState::Paused,
            until: Some(time_of(*until_ms)),
            reason: Some(reason.to_string()),
        },
        H::Probing { reason, .. } => Throttle {
            state: ThrottleState::Slowed,
            until: None,
            reason: Some(format!("probing after {reason}")),
        },
    }
}

impl DeliveryEngine {
    /// Applies what can change at run time from a re-read configuration: static routes,
    /// provider shaping (for pools opened from now on; busy pools keep their limits until
    /// they go idle) and reply classification, each when it differs from what is in force
    /// (the last reload's, or the boot configuration's). Everything else that differs from
    /// the configuration the process started with is reported as needing a restart. Every
    /// section is built before any is applied: a refused reload changes nothing.
    pub(crate) fn reload(&self, new: &Config) -> Result<ReloadReport, String> {
        let inner = &self.inner;
        let old = &inner.config;
        let mut live = inner.live_config.lock().unwrap_or_else(|e| e.into_inner());
        let changed =
            |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") != format!("{b:?}");
        let routes = changed(&live.routes, &new.routes)
            .then(|| super::route::Routes::new(&new.routes))
            .transpose()?;
        let shaping = (changed(&live.providers, &new.providers)
            || live.delivery.default_shaping != new.delivery.default_shaping)
            .then(|| {
                super::shaping::ShapingRules::new(
                    &new.providers,
                    new.delivery.default_shaping,
                    inner.rules().default_shaping().clone(),
                )
            });
        let classifier = (changed(&live.classify, &new.classify)
            || live.classify_builtin != new.classify_builtin)
            .then(|| ipwarm::Classifier::new(&new.classify, new.classify_builtin))
            .transpose()
            .map_err(|e| e.to_string())?;

        let mut applied = Vec::new();
        if let Some(routes) = routes {
            *inner.routes.write().expect("routes lock") = Arc::new(routes);
            applied.push("route".to_owned());
        }
        if let Some(rules) = shaping {
            *inner.rules.write().expect("rules lock") = Arc::new(rules);
            inner
                .pools
                .lock()
                .expect("pools lock")
                .retain(|_, pool| !pool.is_idle());
            applied.push("provider".to_owned());
        }
        if let Some(classifier) = classifier {
            inner.reputation.set_classifier(classifier);
            applied.push("classify".to_owned());
        }
        *live = Arc::new(new.clone());
        let mut needs_restart = Vec::new();
        let sections: [(&str, bool); 17] = [
            ("hostname", old.hostname != new.hostname),
            ("accept_domains", old.accept_domains != new.accept_domains),
            ("spool", changed(&old.spool, &new.spool)),
            ("listener", changed(&old.listeners, &new.listeners)),
            ("user", changed(&old.users, &new.users)),
            ("server", changed(&old.server, &new.server)),
            (
                "delivery",
                changed(
                    &old.delivery,
                    &crate::config::DeliveryConfig {
                        default_shaping: old.delivery.default_shaping,
                        ..new.delivery.clone()
                    },
                ),
            ),
            ("dns", changed(&old.dns, &new.dns)),
            (
                "delivery_log",
                changed(&old.delivery_log, &new.delivery_log),
            ),
            ("admin", changed(&old.admin, &new.admin)),
            ("source", changed(&old.sources, &new.sources)),
            ("pool", changed(&old.pools, &new.pools)),
            ("tenant", changed(&old.tenants, &new.tenants)),
            ("warmup", changed(&old.warmup, &new.warmup)),
            ("reputation", changed(&old.reputation, &new.reputation)),
            ("suppression", changed(&old.suppression, &new.suppression)),
            ("classify_builtin", false),
        ];
        for (name, differs) in sections {
            if differs {
                needs_restart.push(name.to_owned());
            }
        }
        Ok(ReloadReport {
            applied,
            needs_restart,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_load_is_degraded_only_when_it_stopped_at_an_error() {
        let loading = queue_load_health(&QueueLoad::Loading { messages: 7 });
        assert_eq!(loading.status, HealthStatus::Ok);
        assert_eq!(loading.name, "queue_load");
        let loaded = queue_load_health(&QueueLoad::Loaded { messages: 7 });
        assert_eq!(loaded.status, HealthStatus::Ok);
        assert_eq!(loaded.detail.as_deref(), Some("7 messages loaded at start"));
        let failed = queue_load_health(&QueueLoad::Failed {
            messages: 7,
            error: "spool storage failure: I/O error".into(),
        });
        assert_eq!(failed.status, HealthStatus::Degraded);
        let detail = failed.detail.unwrap();
        assert!(
            detail.contains("after 7 messages") && detail.contains("I/O error"),
            "{detail}"
        );
    }
}
