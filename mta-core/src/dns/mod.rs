//! MX resolution for the delivery engine: a recipient domain in, a delivery plan out.
//!
//! - [`config`]: `[dns]` ([`DnsConfig`]): name servers, timeout, attempts, cache bounds.
//! - [`plan`]: [`MxPlan`] (null MX, MX hosts, implicit MX), [`MxHost`], [`site_key`].
//! - [`resolver`]: [`MxResolver`] on hickory-resolver, with the cache and coalescing.
//! - `cache`: the bounded TTL cache (time injected, no I/O).
//! - [`error`]: [`DnsError`], each variant permanent (bounce) or transient (retry).
//!
//! Rules (RFC 5321 section 5.1, RFC 7505, RFC 2308):
//! - MX hosts are tried by preference; equal preferences in random order, drawn anew for
//!   every [`MxResolver::resolve`] call (the cached plan is canonical, the caller gets a
//!   shuffled copy);
//! - no MX records but A/AAAA records: the domain itself is the only host (implicit MX);
//! - a lone `0 .` MX is a null MX: bounce with `5.1.10`, never connect;
//! - MX hosts without an address are skipped; a plan with no usable host is an error;
//! - answers are cached by TTL (clamped), negative answers by their SOA TTL (clamped),
//!   transient failures briefly; one query per domain is in flight at a time.
//!
//! Invariant: [`DnsError::is_permanent`] is true only for authoritative negative answers, so
//! a resolver or network problem never bounces mail.
//!
//! Operator documentation: `docs/dns.md`.

mod cache;
pub mod config;
pub mod error;
pub mod plan;
pub mod resolver;

#[cfg(test)]
mod tests;

pub use config::DnsConfig;
pub use error::DnsError;
pub use plan::{MxHost, MxPlan, NULL_MX_ENHANCED_CODE, site_key};
pub use resolver::{MAX_ADDRESSES_PER_FAMILY, MAX_MX_HOSTS, MxResolver};
