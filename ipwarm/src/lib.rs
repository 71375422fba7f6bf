//! Egress IP pools, warmup schedules, reply classification and reputation-aware throttling,
//! as pure logic: no sockets, no tasks, no clock reads, no files. The delivery engine passes
//! the time in (`now_ms`, Unix milliseconds) and persists the snapshots.
//!
//! The parts, in the order a message meets them:
//!
//! 1. [`Egress::pool_for`]: the message's pool (tenant mapping, pool tag, or `default`).
//! 2. [`Suppressions::is_suppressed`]: a recipient that bounced as a bad mailbox is not
//!    tried again for a while.
//! 3. [`Egress::choose_source`]: the egress source, by weight among the pool's sources that
//!    are not suspended and (with `overflow = "spill"`) have warmup allowance left; or the
//!    time to try again.
//! 4. [`Egress::permit`] right before sending (the adapted rate limit, the probe after a
//!    suspension) and [`Egress::concurrency_limit`] for the connection count;
//!    [`Egress::record_send`] once the message is sent (warmup day counting).
//! 5. [`Classifier::classify`]: the reply's [`Class`] (the delivery log's `class`).
//! 6. [`Egress::record`]: the class adapts the throttle (additive increase, multiplicative
//!    decrease, suspension, probe, bounce-rate threshold) and gives the retry time to keep;
//!    a `bad_mailbox` class goes to [`Suppressions::add`].
//!
//! Invariants, for the whole crate:
//! - **Time is injected.** Every time-dependent call takes `now_ms`; [`time::ManualClock`]
//!   drives tests and simulations, [`time::SystemClock`] the engine.
//! - **Retry times are decisions.** A time this crate returns (wait for warmup allowance,
//!   for a rate slot, for the end of a suspension, after a `rate_limited` deferral) is the
//!   time to use, not a hint to be jittered.
//! - **Bounded.** State grows with sources × providers (providers capped) and with the
//!   suppression list (capped); nothing grows with traffic.
//! - **Configuration errors name their key** (`source[1].warmup`), and run-time calls do
//!   not fail.
//!
//! # Example
//!
//! A new IP on a 3-day plan, Gmail deferring it once:
//!
//! ```
//! use ipwarm::{
//!     Class, Classifier, Decision, EnhancedCode, Egress, IpwarmConfig, Limits, Permit,
//!     Reply, StartLimits,
//! };
//!
//! let config = IpwarmConfig::from_toml(r#"
//!     [[source]]
//!     name = "ip-a"
//!     address = "192.0.2.10"
//!     ehlo = "a.mta.example.net"
//!     warmup = "new"
//!     [[pool]]
//!     name = "default"
//!     sources = ["ip-a"]
//!     [warmup.new]
//!     daily = [50, 100, 500]
//! "#).unwrap();
//! let limits = StartLimits::new(Limits {
//!     max_connections: 5,
//!     max_message_rate: Some("600/min".parse().unwrap()),
//! });
//! let mut egress = Egress::new(&config, limits).unwrap();
//! let classifier = Classifier::builtin();
//! let now = 1_795_000_000_000; // some time on 2026-11-18 (UTC)
//!
//! // Per message: pool, source, permit, send.
//! let pool = egress.pool_for(Some("acme"), None);
//! let Decision::Use(source) = egress.choose_source(pool, "gmail", now) else { panic!() };
//! assert_eq!(source.address, Some("192.0.2.10".parse().unwrap()));
//! assert_eq!(egress.permit(&source.name, "gmail", now), Permit::Send);
//! egress.record_send(&source.name, "gmail", now);
//!
//! // Per reply: classify, then feed the class back.
//! let reply = Reply::new(
//!     421,
//!     Some(EnhancedCode::new(4, 7, 28)),
//!     "Our system has detected an unusual rate of unsolicited mail originating from your IP address.",
//! );
//! let class = classifier.classify(&reply, Some("gmail")).class;
//! assert_eq!(class, Class::RateLimited);
//! assert_eq!(class.as_str(), "rate_limited"); // the delivery log's `class`
//! let reaction = egress.record(&source.name, "gmail", class, now + 500);
//! // Retry this message exactly then (not with a random backoff) ...
//! assert_eq!(reaction.retry_at, Some(now + 500 + 60_000));
//! // ... and the rate is halved: 10/s becomes 5/s.
//! assert_eq!(egress.current_rate("ip-a", "gmail"), Some(5.0));
//! ```
//!
//! Operator documentation: `docs/ipwarm.md`.

mod classify;
pub mod config;
mod egress;
mod error;
mod snapshot;
mod suppress;
mod throttle;
pub mod time;
mod warmup;

pub use classify::{
    Class, Classification, Classifier, CodeSpec, DEFAULT_RULES, EnhancedCode, Reply, RuleConfig,
    UnknownClass, fallback,
};
pub use config::{
    DEFAULT_POOL, IpwarmConfig, Overflow, PoolConfig, ProviderPlanConfig, Rate, RateParseError,
    SourceConfig, TenantConfig, WarmupPlanConfig,
};
pub use egress::{Decision, Egress, KeyState, PoolId, Restored, Source};
pub use error::IpwarmError;
pub use snapshot::SNAPSHOT_VERSION;
pub use suppress::{
    Suppression, SuppressionConfig, SuppressionHit, SuppressionOrigin, Suppressions,
    encode_snapshot,
};
pub use throttle::{
    Change, Health, Limits, OTHER_PROVIDER, Permit, Reaction, Reason, ReputationConfig,
    StartLimits, ThrottleState, Throttles,
};
pub use warmup::{WaitReason, WarmupState};
