//! An in-memory [`AdminBackend`]: a few messages, suspensions, suppressions, and a log of
//! the actions asked of it, at a fixed time.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use queue::{Envelope, MessageId, Recipient, RecipientState, Tags};

use crate::admin::types::*;
use crate::admin::{Actor, AdminBackend, BackendError, BoxFuture, Client};

/// The backend's clock: 2026-03-01T12:00:00Z.
pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_772_366_400)
}

/// The provider of a test domain (every test domain is routed: the rest are `other`).
fn provider_of(domain: &str) -> Option<&'static str> {
    match domain {
        "gmail.com" | "googlemail.com" => Some("gmail"),
        "yahoo.com" => Some("yahoo"),
        _ => Some("other"),
    }
}

/// A queued message and the source it is routed to.
#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub(super) id: MessageId,
    pub(super) envelope: Envelope,
    pub(super) source: Option<&'static str>,
}

/// An action asked of the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Action {
    pub(super) endpoint: &'static str,
    pub(super) client: Client,
    /// What was acted on (filter, id, ...).
    pub(super) what: String,
}

#[derive(Debug)]
struct State {
    messages: Vec<Queued>,
    suspensions: Vec<Suspension>,
    next_suspension: u32,
    suppressions: BTreeMap<(String, Option<String>), Suppression>,
    actions: Vec<Action>,
    reload: Result<ReloadReport, String>,
    health: Health,
    pools: PoolsView,
    /// The answer of the next `pools` call, if it is to fail.
    pools_error: Option<BackendError>,
    /// Quarantined entries, with the bytes of bodies.
    quarantine: Vec<(QuarantineEntry, Option<Vec<u8>>)>,
}

/// The id of the message whose damaged envelope and body the test quarantine holds.
pub(super) const QUARANTINED: &str = "0199ab12cd34ef560000aabbccddeeff";

/// The quarantined body of [`QUARANTINED`].
pub(super) const QUARANTINED_BODY: &[u8] = b"From: a@esp.example\r\nSubject: hello\r\n\r\nHi.\r\n";

/// The test backend.
#[derive(Debug)]
pub(super) struct MemoryBackend {
    state: Mutex<State>,
}

/// A message from `sender` to `recipients`, `age` old, tried `attempts` times.
pub(super) fn message(
    n: u64,
    recipients: &[&str],
    tenant: Option<&str>,
    campaign: Option<&str>,
    age: Duration,
    attempts: u32,
    source: Option<&'static str>,
) -> Queued {
    let created = now() - age;
    let created_ms = created.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut envelope = Envelope::new(
        "sender@esp.example",
        recipients.iter().map(|r| Recipient::new(*r)).collect(),
        created_ms,
    );
    envelope.tags = Tags {
        tenant: tenant.map(str::to_owned),
        campaign: campaign.map(str::to_owned),
        pool: None,
    };
    envelope.attempts = attempts;
    envelope.size = 1000 + n;
    envelope.received_from = "192.0.2.1".to_owned();
    envelope.next_attempt_ms = created_ms + 600_000;
    for r in &mut envelope.recipients {
        r.attempts = attempts;
        if attempts > 0 {
            r.last_reply = Some("451 4.7.1 Try again later".to_owned());
        }
    }
    Queued {
        id: MessageId::from_parts(created_ms, n as u16, 0xABCD),
        envelope,
        source,
    }
}

/// The default queue: five messages at gmail, yahoo and elsewhere.
pub(super) fn default_queue() -> Vec<Queued> {
    let m = Duration::from_secs(60);
    vec![
        message(
            1,
            &["a@gmail.com", "b@gmail.com"],
            Some("acme"),
            Some("spring"),
            2 * m,
            0,
            Some("ip-1"),
        ),
        message(
            2,
            &["c@gmail.com"],
            Some("acme"),
            Some("summer"),
            90 * m,
            3,
            Some("ip-1"),
        ),
        message(
            3,
            &["d@yahoo.com", "e@example.org"],
            Some("globex"),
            None,
            30 * 60 * m,
            5,
            Some("ip-2"),
        ),
        message(4, &["f@example.org"], None, None, 3 * 24 * 60 * m, 9, None),
        message(
            5,
            &["g@googlemail.com"],
            Some("globex"),
            None,
            10 * m,
            1,
            Some("ip-2"),
        ),
    ]
}

impl MemoryBackend {
    pub(super) fn new(messages: Vec<Queued>) -> MemoryBackend {
        MemoryBackend {
            state: Mutex::new(State {
                messages,
                suspensions: Vec::new(),
                next_suspension: 1,
                suppressions: BTreeMap::new(),
                actions: Vec::new(),
                reload: Ok(ReloadReport {
                    applied: vec!["route".to_owned(), "provider".to_owned(), "dkim".to_owned()],
                    needs_restart: vec!["listener".to_owned()],
                }),
                health: Health::from_components(
                    "0.1.0",
                    now() - Duration::from_secs(3600),
                    [
                        ("delivery", Some("12 jobs queued")),
                        ("delivery_log", None),
                        ("queue_load", Some("4031 messages loaded at start")),
                        ("spool", Some("5120 commits, 0 failed")),
                    ]
                    .into_iter()
                    .map(|(name, detail)| ComponentHealth {
                        name: name.to_owned(),
                        status: HealthStatus::Ok,
                        detail: detail.map(str::to_owned),
                    })
                    .collect(),
                ),
                pools_error: None,
                quarantine: vec![
                    (
                        QuarantineEntry {
                            id: Some(QUARANTINED.to_owned()),
                            kind: "body".to_owned(),
                            size: QUARANTINED_BODY.len() as u64,
                            reason: "undecodable envelope: truncated".to_owned(),
                        },
                        Some(QUARANTINED_BODY.to_vec()),
                    ),
                    (
                        QuarantineEntry {
                            id: Some(QUARANTINED.to_owned()),
                            kind: "envelope".to_owned(),
                            size: 17,
                            reason: "undecodable envelope: truncated".to_owned(),
                        },
                        None,
                    ),
                ],
                pools: PoolsView {
                    sources: vec![SourceView {
                        name: "ip-1".to_owned(),
                        address: Some("192.0.2.10".parse().unwrap()),
                        pool: Some("main".to_owned()),
                        warmup: Some(Warmup {
                            day: 3,
                            days: 30,
                            schedule: Some("standard".to_owned()),
                        }),
                        providers: vec![
                            ProviderUse {
                                provider: "gmail".to_owned(),
                                allowance: Some(2000),
                                used: 1500,
                                connections: 2,
                                queued: 3,
                                rate_per_min: Some(300),
                                max_connections: Some(2),
                                throttle: Throttle {
                                    state: ThrottleState::Slowed,
                                    until: Some(now() + Duration::from_secs(1800)),
                                    reason: Some("421 4.7.28 rate limited".to_owned()),
                                },
                            },
                            ProviderUse {
                                provider: "other".to_owned(),
                                allowance: None,
                                used: 10,
                                connections: 0,
                                queued: 0,
                                rate_per_min: None,
                                max_connections: Some(10),
                                throttle: Throttle::open(),
                            },
                        ],
                    }],
                },
            }),
        }
    }

    pub(super) fn actions(&self) -> Vec<Action> {
        self.state.lock().unwrap().actions.clone()
    }

    pub(super) fn set_reload(&self, result: Result<ReloadReport, String>) {
        self.state.lock().unwrap().reload = result;
    }

    pub(super) fn set_health(&self, health: Health) {
        self.state.lock().unwrap().health = health;
    }

    pub(super) fn fail_next_pools(&self, error: BackendError) {
        self.state.lock().unwrap().pools_error = Some(error);
    }

    pub(super) fn set_pools(&self, pools: PoolsView) {
        self.state.lock().unwrap().pools = pools;
    }

    /// Recipient states of a message, by address.
    pub(super) fn states(&self, id: MessageId) -> Vec<(String, RecipientState)> {
        let state = self.state.lock().unwrap();
        let queued = state.messages.iter().find(|m| m.id == id).unwrap();
        queued
            .envelope
            .recipients
            .iter()
            .map(|r| (r.address.clone(), r.state))
            .collect()
    }

    pub(super) fn message_ids(&self) -> Vec<MessageId> {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .map(|m| m.id)
            .collect()
    }
}

fn record(state: &mut State, actor: &Actor, what: String) {
    state.actions.push(Action {
        endpoint: actor.endpoint,
        client: actor.client,
        what,
    });
}

/// Each (message, domain) with pending recipients, as entries, with the recipients'
/// indices.
fn entries(queued: &Queued) -> Vec<(QueueEntry<'_>, Vec<usize>)> {
    let mut by_domain: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in queued.envelope.recipients.iter().enumerate() {
        if r.state == RecipientState::Pending {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            by_domain.entry(domain).or_default().push(i);
        }
    }
    let tags = &queued.envelope.tags;
    by_domain
        .into_iter()
        .map(|(domain, indices)| {
            (
                QueueEntry {
                    message: queued.id,
                    domain,
                    provider: provider_of(domain),
                    source: queued.source,
                    tenant: tags.tenant.as_deref(),
                    campaign: tags.campaign.as_deref(),
                    recipients: indices.len() as u64,
                    attempts: queued.envelope.attempts,
                    created: UNIX_EPOCH + Duration::from_millis(queued.envelope.created_ms),
                },
                indices,
            )
        })
        .collect()
}

/// The (message index, recipient indices) a filter selects.
fn select(state: &State, filter: &Filter) -> Vec<(usize, Vec<usize>)> {
    let mut selected = Vec::new();
    for (m, queued) in state.messages.iter().enumerate() {
        let mut indices = Vec::new();
        for (entry, rcpts) in entries(queued) {
            if filter.matches(&entry) {
                indices.extend(rcpts);
            }
        }
        if !indices.is_empty() {
            selected.push((m, indices));
        }
    }
    selected
}

fn count(selected: &[(usize, Vec<usize>)]) -> ActionCount {
    ActionCount {
        messages: selected.len() as u64,
        recipients: selected.iter().map(|(_, r)| r.len() as u64).sum(),
    }
}

impl AdminBackend for MemoryBackend {
    fn queue_summary(
        &self,
        query: QueueQuery,
    ) -> BoxFuture<'_, Result<QueueSummary, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            let mut builder = QueueSummaryBuilder::new(&query, now());
            for queued in &state.messages {
                for (entry, _) in entries(queued) {
                    builder.add(&entry);
                }
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
            let state = self.state.lock().unwrap();
            Ok(state.messages.iter().find(|m| m.id == id).map(|m| {
                let mut view = MessageView::from_envelope(m.id, &m.envelope);
                for r in &mut view.recipients {
                    let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
                    r.provider = provider_of(domain).map(str::to_owned);
                    r.source = m.source.map(str::to_owned);
                }
                view
            }))
        })
    }

    fn suspend(
        &self,
        new: NewSuspension,
        actor: Actor,
    ) -> BoxFuture<'_, Result<Suspension, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            if new.scope == SuspensionScope::Provider("nosuch".to_owned()) {
                return Err(BackendError::Rejected {
                    reason: "unknown provider nosuch".to_owned(),
                });
            }
            let suspension = Suspension {
                id: format!("s{}", state.next_suspension),
                scope: new.scope,
                reason: new.reason,
                created_at: now(),
                expires_at: now() + new.duration,
                created_by: actor.client.to_string(),
            };
            state.next_suspension += 1;
            state.suspensions.push(suspension.clone());
            record(&mut state, &actor, suspension.id.clone());
            Ok(suspension)
        })
    }

    fn suspensions(&self) -> BoxFuture<'_, Result<Vec<Suspension>, BackendError>> {
        Box::pin(async move {
            let mut list = self.state.lock().unwrap().suspensions.clone();
            list.sort_by_key(|s| s.expires_at);
            Ok(list)
        })
    }

    fn resume<'a>(
        &'a self,
        id: &'a str,
        actor: Actor,
    ) -> BoxFuture<'a, Result<bool, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let before = state.suspensions.len();
            state.suspensions.retain(|s| s.id != id);
            let removed = state.suspensions.len() < before;
            record(&mut state, &actor, id.to_owned());
            Ok(removed)
        })
    }

    fn flush(
        &self,
        filter: Filter,
        actor: Actor,
    ) -> BoxFuture<'_, Result<ActionCount, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let selected = select(&state, &filter);
            let now_ms = now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
            for (m, _) in &selected {
                state.messages[*m].envelope.next_attempt_ms = now_ms;
            }
            record(&mut state, &actor, filter.to_string());
            Ok(count(&selected))
        })
    }

    fn bounce(
        &self,
        filter: Filter,
        send_dsn: bool,
        actor: Actor,
    ) -> BoxFuture<'_, Result<BounceResult, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let selected = select(&state, &filter);
            for (m, rcpts) in &selected {
                for &r in rcpts {
                    let recipient = &mut state.messages[*m].envelope.recipients[r];
                    recipient.state = RecipientState::Failed;
                    recipient.last_reply = Some("554 5.0.0 bounced by an operator".to_owned());
                }
            }
            record(&mut state, &actor, format!("{filter} dsn={send_dsn}"));
            let counted = count(&selected);
            Ok(BounceResult {
                messages: counted.messages,
                recipients: counted.recipients,
                dsn: send_dsn,
            })
        })
    }

    fn quarantine(&self) -> BoxFuture<'_, Result<QuarantineList, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            Ok(QuarantineList {
                entries: state.quarantine.iter().map(|(e, _)| e.clone()).collect(),
                total: state.quarantine.len(),
            })
        })
    }

    fn quarantined_body<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<Vec<u8>>, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            Ok(state
                .quarantine
                .iter()
                .find(|(e, _)| e.id.as_deref() == Some(id) && e.kind == "body")
                .and_then(|(_, bytes)| bytes.clone()))
        })
    }

    fn discard_quarantined<'a>(
        &'a self,
        id: &'a str,
        actor: Actor,
    ) -> BoxFuture<'a, Result<usize, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let before = state.quarantine.len();
            state
                .quarantine
                .retain(|(e, _)| e.id.as_deref() != Some(id));
            let entries = before - state.quarantine.len();
            if entries > 0 {
                record(&mut state, &actor, id.to_owned());
            }
            Ok(entries)
        })
    }

    fn pools(&self) -> BoxFuture<'_, Result<PoolsView, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            match state.pools_error.take() {
                Some(error) => Err(error),
                None => Ok(state.pools.clone()),
            }
        })
    }

    fn suppressions(
        &self,
        query: SuppressionQuery,
    ) -> BoxFuture<'_, Result<SuppressionPage, BackendError>> {
        Box::pin(async move {
            let state = self.state.lock().unwrap();
            let limit = query.limit.expect("the HTTP layer sets the limit");
            let mut matching = state.suppressions.values().filter(|s| {
                query
                    .tenant
                    .as_ref()
                    .is_none_or(|t| s.tenant.as_ref() == Some(t))
                    && query.address.as_ref().is_none_or(|a| &s.address == a)
                    && query.after.as_ref().is_none_or(|after| &s.address > after)
            });
            let entries: Vec<Suppression> = matching.by_ref().take(limit).cloned().collect();
            let next = if matching.next().is_some() {
                entries.last().map(|s| s.address.clone())
            } else {
                None
            };
            Ok(SuppressionPage { entries, next })
        })
    }

    fn add_suppressions(
        &self,
        entries: Vec<NewSuppression>,
        actor: Actor,
    ) -> BoxFuture<'_, Result<SuppressionChange, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let mut change = SuppressionChange {
                changed: 0,
                unchanged: 0,
            };
            let what = entries
                .iter()
                .map(|e| e.address.as_str())
                .collect::<Vec<_>>()
                .join(",");
            for entry in entries {
                let key = (entry.address.clone(), entry.tenant.clone());
                match state.suppressions.entry(key) {
                    std::collections::btree_map::Entry::Occupied(_) => change.unchanged += 1,
                    std::collections::btree_map::Entry::Vacant(slot) => {
                        change.changed += 1;
                        slot.insert(Suppression {
                            address: entry.address,
                            tenant: entry.tenant,
                            reason: entry.reason,
                            origin: SuppressionOrigin::Manual,
                            created_at: now(),
                        });
                    }
                }
            }
            record(&mut state, &actor, what);
            Ok(change)
        })
    }

    fn remove_suppression(
        &self,
        key: SuppressionKey,
        actor: Actor,
    ) -> BoxFuture<'_, Result<bool, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            let removed = state
                .suppressions
                .remove(&(key.address.clone(), key.tenant.clone()))
                .is_some();
            record(&mut state, &actor, key.address);
            Ok(removed)
        })
    }

    fn reload(&self, actor: Actor) -> BoxFuture<'_, Result<ReloadReport, BackendError>> {
        Box::pin(async move {
            let mut state = self.state.lock().unwrap();
            record(&mut state, &actor, String::new());
            state
                .reload
                .clone()
                .map_err(|reason| BackendError::Rejected { reason })
        })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async move { self.state.lock().unwrap().health.clone() })
    }
}
