//! Egress pools (`GET /v1/pools`): each source (an IP the MTA sends from), its warmup day,
//! and per provider the daily allowance, what was used of it, connections, queue and
//! throttle state. Until IP warmup exists the engine may report one source without warmup,
//! or none.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The response of `GET /v1/pools`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolsView {
    /// Every egress source, by name.
    pub sources: Vec<SourceView>,
}

/// One egress source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceView {
    /// Its name (as in filters, suspensions and the delivery log).
    pub name: String,
    /// The local address it binds (`null`: the system's choice).
    pub address: Option<IpAddr>,
    /// The pools (`[[pool]]`, chosen by tenant or `X-MTA-Pool`) it belongs to, comma-separated,
    /// if any.
    pub pool: Option<String>,
    /// Its warmup schedule, while it is warming up (`null`: warm, or no warmup).
    pub warmup: Option<Warmup>,
    /// Its use per provider (providers it has sent to or may send to).
    pub providers: Vec<ProviderUse>,
}

/// Where a source stands in its warmup schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warmup {
    /// Day of the schedule (1 is the first day).
    pub day: u32,
    /// Days in the schedule.
    pub days: u32,
    /// The schedule's name.
    pub schedule: Option<String>,
}

/// One provider as seen from one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderUse {
    /// The provider (`gmail`), or `other`.
    pub provider: String,
    /// Messages allowed today (`null`: no daily limit).
    pub allowance: Option<u64>,
    /// Messages sent today.
    pub used: u64,
    /// Connections open now.
    pub connections: u32,
    /// Recipients waiting in its ready queue.
    pub queued: u64,
    /// The message rate the throttle allows now, per minute (`null`: not limited).
    #[serde(default)]
    pub rate_per_min: Option<u64>,
    /// The connections the throttle allows now.
    #[serde(default)]
    pub max_connections: Option<u32>,
    /// Whether the provider is slowing us down.
    pub throttle: Throttle,
}

/// The throttle state of a (source, provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// The state.
    pub state: ThrottleState,
    /// Until when (`null` when open or open-ended).
    #[serde(with = "super::rfc3339::option")]
    pub until: Option<SystemTime>,
    /// Why (the reply that caused it, or a suspension's reason).
    pub reason: Option<String>,
}

/// How freely a source may send to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleState {
    /// At its configured rate.
    Open,
    /// Slowed down after deferrals.
    Slowed,
    /// Not sending (blocked by the provider, or suspended).
    Paused,
}

impl Throttle {
    /// The state of a source sending freely.
    pub fn open() -> Throttle {
        Throttle {
            state: ThrottleState::Open,
            until: None,
            reason: None,
        }
    }
}
