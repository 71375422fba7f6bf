//! [`Egress`]: sources, pools, the choice of a source for each message, warmup counters, and
//! the throttles, behind one value the engine keeps in a mutex.
//!
//! **Pool of a message.** Its tenant's `[[tenant]]` mapping if there is one, else its pool
//! tag if it names a pool, else the pool named `default`. With no pools configured there is
//! one, `default`, holding one built-in source `default` with no address (mail leaves from
//! the host's default address) and no warmup.
//!
//! **Source choice** ([`Egress::choose_source`]), per (pool, provider):
//! 1. sources suspended for the provider (or waiting for a probe's reply) are skipped;
//! 2. with `overflow = "spill"`, sources out of warmup allowance right now are skipped too;
//! 3. among the rest, smooth weighted round robin by `weight` (deterministic: weights 3:1
//!    give `a a b a`, `a a b a`...);
//! 4. with `overflow = "wait"`, if the chosen source is out of allowance the message waits
//!    for it ([`Decision::WaitUntil`] with the time its allowance allows);
//! 5. the chosen source's allowance is taken (one message of today's warmup volume).
//!
//! If every source is skipped, the decision is to wait until the earliest time one of them
//! may take mail again.
//!
//! Invariants: a [`Decision::Use`] has taken one unit of warmup allowance, which
//! [`Egress::release`] gives back if the message does not leave from that source after all;
//! warmup days are counted from [`Egress::record_send`] (messages actually sent), never from
//! choices; all maps are bounded by sources × providers (providers capped by
//! `reputation.max_providers`).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::classify::Class;
use crate::config::{DEFAULT_POOL, IpwarmConfig, Overflow};
use crate::throttle::{Permit, Reaction, StartLimits, ThrottleState, Throttles, ThrottlesSnapshot};
use crate::time::{format_date, parse_date};
use crate::warmup::{Counter, Plan, WaitReason, WarmupState};
use crate::{IpwarmError, snapshot};

/// An egress source: where a connection binds and how it greets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Its name (pool keys, logs, the delivery log's `source`).
    pub name: Arc<str>,
    /// The local address to bind (`None`: the host's default, for the built-in source).
    pub address: Option<IpAddr>,
    /// The EHLO name (`None`: the host's name, for the built-in source).
    pub ehlo: Option<Arc<str>>,
    /// Relative share within its pools.
    pub weight: u32,
}

/// A pool, as returned by [`Egress::pool_for`] (valid for the [`Egress`] that gave it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(u16);

/// The answer of [`Egress::choose_source`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Send from this source (one unit of its warmup allowance is taken).
    Use(Arc<Source>),
    /// No source can take the message now: try again at `until` (Unix ms), exactly.
    WaitUntil {
        /// When to choose again.
        until: u64,
        /// Why.
        reason: WaitReason,
    },
}

/// One (source, provider) key for the admin view: warmup and throttle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyState {
    /// The egress source.
    pub source: String,
    /// The provider.
    pub provider: String,
    /// Warmup, if the source has a plan.
    pub warmup: Option<WarmupState>,
    /// Throttle, once the key has sent or been asked about.
    pub throttle: Option<ThrottleState>,
}

/// Counts of a restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Throttle keys restored.
    pub throttles: usize,
    /// Warmup counters restored.
    pub warmup: usize,
}

#[derive(Debug, Clone)]
struct SourceDef {
    source: Arc<Source>,
    plan: Option<usize>,
    start_day: Option<u32>,
}

#[derive(Debug, Clone)]
struct PoolDef {
    name: Arc<str>,
    members: Vec<usize>,
    overflow: Overflow,
}

#[derive(Serialize, Deserialize)]
struct WarmupSnapshot {
    source: String,
    provider: String,
    #[serde(flatten)]
    counter: Counter,
}

#[derive(Serialize, Deserialize)]
struct EgressSnapshot {
    throttles: ThrottlesSnapshot,
    warmup: Vec<WarmupSnapshot>,
}

/// Sources, pools, warmup and throttles. Single-threaded (`&mut self`).
#[derive(Debug, Clone)]
pub struct Egress {
    sources: Vec<SourceDef>,
    source_index: HashMap<Arc<str>, usize>,
    pools: Vec<PoolDef>,
    pool_index: HashMap<Arc<str>, PoolId>,
    tenants: HashMap<String, PoolId>,
    default_pool: PoolId,
    plans: Vec<Plan>,
    /// Warmup counters by (source index, tracked provider).
    warmup: HashMap<(usize, Arc<str>), Counter>,
    /// Smooth weighted round robin state by (pool, tracked provider): one current weight
    /// per pool member.
    rotation: HashMap<(PoolId, Arc<str>), Vec<i64>>,
    throttles: Throttles,
}

impl Egress {
    /// Validates `config` and builds the egress state, throttles starting at `limits`.
    pub fn new(config: &IpwarmConfig, limits: StartLimits) -> Result<Egress, IpwarmError> {
        config.validate()?;
        let plan_names: Vec<&String> = config.warmup.keys().collect();
        let plans = config
            .warmup
            .iter()
            .map(|(name, plan)| Plan::new(name, plan))
            .collect();
        let mut sources: Vec<SourceDef> = config
            .sources
            .iter()
            .map(|s| SourceDef {
                source: Arc::new(Source {
                    name: Arc::from(s.name.as_str()),
                    address: Some(s.address),
                    ehlo: Some(Arc::from(s.ehlo.as_str())),
                    weight: s.weight,
                }),
                plan: s
                    .warmup
                    .as_ref()
                    .and_then(|p| plan_names.iter().position(|n| *n == p)),
                start_day: s.warmup_start.as_deref().and_then(parse_date),
            })
            .collect();
        let mut pools: Vec<PoolDef> = config
            .pools
            .iter()
            .map(|p| PoolDef {
                name: Arc::from(p.name.as_str()),
                members: p
                    .sources
                    .iter()
                    .filter_map(|name| config.sources.iter().position(|s| &s.name == name))
                    .collect(),
                overflow: p.overflow,
            })
            .collect();
        if pools.is_empty() {
            sources.push(SourceDef {
                source: Arc::new(Source {
                    name: Arc::from(DEFAULT_POOL),
                    address: None,
                    ehlo: None,
                    weight: 100,
                }),
                plan: None,
                start_day: None,
            });
            pools.push(PoolDef {
                name: Arc::from(DEFAULT_POOL),
                members: vec![sources.len() - 1],
                overflow: Overflow::Wait,
            });
        }
        if pools.len() > usize::from(u16::MAX) {
            return Err(IpwarmError::config("pool", "more than 65535 pools"));
        }
        let pool_index: HashMap<Arc<str>, PoolId> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.clone(), PoolId(i as u16)))
            .collect();
        let default_pool = pool_index[DEFAULT_POOL];
        let tenants = config
            .tenants
            .iter()
            .map(|t| (t.name.clone(), pool_index[t.pool.as_str()]))
            .collect();
        Ok(Egress {
            source_index: sources
                .iter()
                .enumerate()
                .map(|(i, s)| (s.source.name.clone(), i))
                .collect(),
            sources,
            pools,
            pool_index,
            tenants,
            default_pool,
            plans,
            warmup: HashMap::new(),
            rotation: HashMap::new(),
            throttles: Throttles::new(config.reputation.clone(), limits),
        })
    }

    /// The pool of a message: its tenant's mapping, else its pool tag if it names a pool,
    /// else `default`.
    pub fn pool_for(&self, tenant: Option<&str>, pool_tag: Option<&str>) -> PoolId {
        tenant
            .and_then(|t| self.tenants.get(t).copied())
            .or_else(|| pool_tag.and_then(|p| self.pool_index.get(p).copied()))
            .unwrap_or(self.default_pool)
    }

    /// A pool by name.
    pub fn pool(&self, name: &str) -> Option<PoolId> {
        self.pool_index.get(name).copied()
    }

    /// A pool's name (the delivery log's `pool`).
    pub fn pool_name(&self, pool: PoolId) -> &str {
        &self.pools[usize::from(pool.0)].name
    }

    /// The names of the pools `source` belongs to, in configuration order (the built-in
    /// `default` pool for the built-in source).
    pub fn pools_of(&self, source: &str) -> Vec<&str> {
        let Some(&member) = self.source_index.get(source) else {
            return Vec::new();
        };
        self.pools
            .iter()
            .filter(|p| p.members.contains(&member))
            .map(|p| &*p.name)
            .collect()
    }

    /// A source by name.
    pub fn source(&self, name: &str) -> Option<&Arc<Source>> {
        self.source_index
            .get(name)
            .map(|&i| &self.sources[i].source)
    }

    /// Every source, in configuration order (the built-in one last, if any).
    pub fn sources(&self) -> impl Iterator<Item = &Arc<Source>> {
        self.sources.iter().map(|s| &s.source)
    }

    /// Chooses the source for one message of `pool` to `provider` (see the module
    /// documentation). `Use` takes one unit of the source's warmup allowance.
    pub fn choose_source(&mut self, pool: PoolId, provider: &str, now_ms: u64) -> Decision {
        self.choose_source_for(pool, provider, provider, now_ms)
    }

    /// [`Egress::choose_source`] with the warmup allowance counted for `provider` and the
    /// throttle (suspensions) checked for `throttle_key`: an engine that throttles sites
    /// without a provider rule one by one still counts their warmup together, under
    /// [`OTHER_PROVIDER`](crate::throttle::OTHER_PROVIDER), so a warming source does not get a
    /// full allowance for every small domain.
    pub fn choose_source_for(
        &mut self,
        pool: PoolId,
        provider: &str,
        throttle_key: &str,
        now_ms: u64,
    ) -> Decision {
        let provider = self.throttles.intern(provider);
        let throttle_key = self.throttles.intern(throttle_key);
        let pool_def = &self.pools[usize::from(pool.0)];
        let spill = pool_def.overflow == Overflow::Spill;
        let mut eligible = Vec::with_capacity(pool_def.members.len());
        let mut earliest: Option<(u64, WaitReason)> = None;
        let mut wait = |until: u64, reason| {
            if earliest.is_none_or(|(t, _)| until < t) {
                earliest = Some((until, reason));
            }
        };
        for (position, &member) in pool_def.members.iter().enumerate() {
            let def = &self.sources[member];
            if let Err((until, _)) =
                self.throttles
                    .available(&def.source.name, &throttle_key, now_ms)
            {
                wait(until, WaitReason::Suspended);
                continue;
            }
            if spill
                && let Err((until, reason)) = check_warmup(
                    &mut self.warmup,
                    &self.plans,
                    def,
                    member,
                    &provider,
                    now_ms,
                )
            {
                wait(until, reason);
                continue;
            }
            eligible.push(position);
        }
        if eligible.is_empty() {
            let (until, reason) = earliest.unwrap_or((now_ms, WaitReason::Suspended));
            return Decision::WaitUntil { until, reason };
        }
        let weights: Vec<i64> = pool_def
            .members
            .iter()
            .map(|&m| i64::from(self.sources[m].source.weight))
            .collect();
        let current = self
            .rotation
            .entry((pool, throttle_key.clone()))
            .or_insert_with(|| vec![0; weights.len()]);
        let position = smooth_weighted_pick(current, &weights, &eligible);
        let member = pool_def.members[position];
        let def = &self.sources[member];
        if !spill
            && let Err((until, reason)) = check_warmup(
                &mut self.warmup,
                &self.plans,
                def,
                member,
                &provider,
                now_ms,
            )
        {
            return Decision::WaitUntil { until, reason };
        }
        if let Some(plan) = def.plan {
            self.warmup
                .entry((member, provider.clone()))
                .or_default()
                .take(&self.plans[plan], &provider, now_ms);
        }
        Decision::Use(def.source.clone())
    }

    /// Gives back the warmup allowance a [`Decision::Use`] took, when the message did not
    /// leave from that source after all (ready queue full, rerouted, expired).
    pub fn release(&mut self, source: &str, provider: &str, now_ms: u64) {
        let Some(&member) = self.source_index.get(source) else {
            return;
        };
        let Some(plan) = self.sources[member].plan else {
            return;
        };
        let provider = self.throttles.intern(provider);
        if let Some(counter) = self.warmup.get_mut(&(member, provider.clone())) {
            counter.release(&self.plans[plan], &provider, now_ms);
        }
    }

    /// Records that a message was sent from `source` to `provider` (counted for the warmup
    /// day whatever the reply).
    pub fn record_send(&mut self, source: &str, provider: &str, now_ms: u64) {
        let Some(&member) = self.source_index.get(source) else {
            return;
        };
        if self.sources[member].plan.is_none() {
            return;
        }
        let provider = self.throttles.intern(provider);
        self.warmup
            .entry((member, provider))
            .or_default()
            .record_send(now_ms);
    }

    /// [`Throttles::permit`] for the source's key.
    pub fn permit(&mut self, source: &str, provider: &str, now_ms: u64) -> Permit {
        self.throttles.permit(source, provider, now_ms)
    }

    /// [`Throttles::record`]: feeds a reply's class to the throttles.
    pub fn record(&mut self, source: &str, provider: &str, class: Class, now_ms: u64) -> Reaction {
        self.throttles.record(source, provider, class, now_ms)
    }

    /// [`Throttles::concurrency_limit`].
    pub fn concurrency_limit(&self, source: &str, provider: &str, now_ms: u64) -> usize {
        self.throttles.concurrency_limit(source, provider, now_ms)
    }

    /// [`Throttles::current_rate`], messages per second (`None`: unlimited).
    pub fn current_rate(&self, source: &str, provider: &str) -> Option<f64> {
        self.throttles.current_rate(source, provider)
    }

    /// The throttles.
    pub fn throttles(&self) -> &Throttles {
        &self.throttles
    }

    /// The throttles, to steer them (admin suspend and resume, new limits on reload).
    pub fn throttles_mut(&mut self) -> &mut Throttles {
        &mut self.throttles
    }

    /// Warmup of one key at `now_ms`, if the source has a plan.
    pub fn warmup_state(&self, source: &str, provider: &str, now_ms: u64) -> Option<WarmupState> {
        let &member = self.source_index.get(source)?;
        let def = &self.sources[member];
        let plan = &self.plans[def.plan?];
        let counter = self
            .warmup
            .get(&(member, Arc::from(provider)))
            .cloned()
            .unwrap_or_default();
        Some(warmup_view(plan, def, &counter, provider, now_ms))
    }

    /// Every key with warmup or throttle state, sorted by source and provider.
    pub fn state(&self, now_ms: u64) -> Vec<KeyState> {
        let mut keys: BTreeMap<(String, String), KeyState> = BTreeMap::new();
        for ((member, provider), counter) in &self.warmup {
            let def = &self.sources[*member];
            let Some(plan) = def.plan else { continue };
            let key = (def.source.name.to_string(), provider.to_string());
            keys.insert(
                key.clone(),
                KeyState {
                    source: key.0,
                    provider: key.1,
                    warmup: Some(warmup_view(
                        &self.plans[plan],
                        def,
                        counter,
                        provider,
                        now_ms,
                    )),
                    throttle: None,
                },
            );
        }
        // A throttle key without a warmup counter (a site whose warmup counts under
        // another provider, or a warm source) shows no warmup.
        for throttle in self.throttles.state(now_ms) {
            let key = (throttle.source.clone(), throttle.provider.clone());
            keys.entry(key.clone())
                .or_insert(KeyState {
                    source: key.0,
                    provider: key.1,
                    warmup: None,
                    throttle: None,
                })
                .throttle = Some(throttle);
        }
        keys.into_values().collect()
    }

    /// Warmup counters and throttles as bytes (JSON, versioned), for the engine to persist.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut warmup: Vec<WarmupSnapshot> = self
            .warmup
            .iter()
            .map(|((member, provider), counter)| WarmupSnapshot {
                source: self.sources[*member].source.name.to_string(),
                provider: provider.to_string(),
                counter: counter.clone(),
            })
            .collect();
        warmup.sort_by(|a, b| (&a.source, &a.provider).cmp(&(&b.source, &b.provider)));
        snapshot::encode(&EgressSnapshot {
            throttles: self.throttles.to_snapshot(),
            warmup,
        })
    }

    /// Replaces warmup counters and throttles with a snapshot's. State of sources no longer
    /// configured is dropped; throttles are capped at the current start limits.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<Restored, IpwarmError> {
        let snapshot: EgressSnapshot = snapshot::decode(bytes, "reputation")?;
        let index = &self.source_index;
        let throttles = self
            .throttles
            .restore_snapshot(snapshot.throttles, |s| index.contains_key(s));
        self.warmup.clear();
        for WarmupSnapshot {
            source,
            provider,
            counter,
        } in snapshot.warmup
        {
            if let Some(&member) = self.source_index.get(source.as_str()) {
                let provider = self.throttles.intern(&provider);
                self.warmup.insert((member, provider), counter);
            }
        }
        Ok(Restored {
            throttles,
            warmup: self.warmup.len(),
        })
    }
}

/// Checks a source's warmup allowance for a provider (no plan: always allowed).
fn check_warmup(
    warmup: &mut HashMap<(usize, Arc<str>), Counter>,
    plans: &[Plan],
    def: &SourceDef,
    member: usize,
    provider: &Arc<str>,
    now_ms: u64,
) -> Result<(), (u64, WaitReason)> {
    let Some(plan) = def.plan else {
        return Ok(());
    };
    warmup.entry((member, provider.clone())).or_default().check(
        &plans[plan],
        provider,
        def.start_day,
        now_ms,
    )
}

fn warmup_view(
    plan: &Plan,
    def: &SourceDef,
    counter: &Counter,
    provider: &str,
    now_ms: u64,
) -> WarmupState {
    let mut counter = counter.clone();
    let allowance = counter.allowance(plan, provider, now_ms);
    WarmupState {
        plan: plan.name.clone(),
        day: counter.completed_days.saturating_add(1),
        plan_days: plan.days(provider) as u32,
        allowance,
        taken: counter.taken,
        sent: counter.sent,
        start: def.start_day.map(format_date),
    }
}

/// Smooth weighted round robin (as in nginx): every eligible member gains its weight, the
/// largest current weight wins and pays the total. Returns the winner's position.
fn smooth_weighted_pick(current: &mut [i64], weights: &[i64], eligible: &[usize]) -> usize {
    let total: i64 = eligible.iter().map(|&p| weights[p]).sum();
    let mut best = eligible[0];
    for &p in eligible {
        current[p] += weights[p];
        if current[p] > current[best] {
            best = p;
        }
    }
    current[best] -= total;
    best
}

#[cfg(test)]
mod tests;
