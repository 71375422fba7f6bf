//! The outbound delivery engine: from queued recipients to replies from receiving servers.
//!
//! The pipeline in file names: `engine` (timer, routing, hand-off from the server) →
//! `destination` (route, address literal or MX plan) → `pool` (per source and site: ready
//! queue, connections, rate limits) → `outcome` (what each reply means for each recipient,
//! retries, DSNs) → `events` (delivery log records and metrics). `shaping` holds provider
//! rules and limits, `rate` the rates and GCRA limiter, `route` the static routes.

mod admin;
mod destination;
mod engine;
mod events;
mod outcome;
mod pool;
mod rate;
mod reputation;
mod route;
mod shaping;
mod suspend;

pub use admin::EngineAdmin;
pub use engine::{DeliveryEngine, Submit};

pub use rate::{Gcra, Rate, RateParseError};
pub use route::{RouteConfig, Routes, Smarthost};
pub use shaping::{DEFAULT_SHAPING, ProviderConfig, Shaping, ShapingRules};
