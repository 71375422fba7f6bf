//! Configuration as the operator writes it: `[[source]]`, `[[pool]]`, `[[tenant]]`,
//! `[warmup.NAME]`, `[[classify]]`, `[reputation]`, `[suppression]`.
//!
//! Every struct refuses unknown keys (`deny_unknown_fields`), and
//! [`IpwarmConfig::validate`] checks what types cannot: references between sections, ranges,
//! uniqueness. Its errors name the key as a path (`source[1].warmup`,
//! `warmup.standard.provider.gmail.daily[3]`), with list indices counted from 0 in the order
//! of the file.
//!
//! Durations are written as humantime strings (`"1h"`, `"30days"`), rates as `COUNT/UNIT`
//! (`"6/min"`).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::classify::{Classifier, RuleConfig};
use crate::time::parse_date;
use crate::{IpwarmError, ReputationConfig, SuppressionConfig};

/// The name of the pool used when a message names none (and of the built-in source).
pub const DEFAULT_POOL: &str = "default";

/// Everything ipwarm reads from the configuration file. The engine's configuration embeds
/// these keys at its top level.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IpwarmConfig {
    /// `[[source]]`: egress IP addresses.
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    /// `[[pool]]`: named groups of sources.
    #[serde(default, rename = "pool")]
    pub pools: Vec<PoolConfig>,
    /// `[[tenant]]`: which pool each tenant's mail leaves from.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// `[warmup.NAME]`: warmup plans by name.
    #[serde(default)]
    pub warmup: BTreeMap<String, WarmupPlanConfig>,
    /// `[[classify]]`: the operator's reply classification rules, checked before the
    /// built-in ones.
    #[serde(default)]
    pub classify: Vec<RuleConfig>,
    /// Whether the built-in classification rules are used after the operator's (default
    /// true).
    #[serde(default = "yes")]
    pub classify_builtin: bool,
    /// `[reputation]`: throttling parameters.
    #[serde(default)]
    pub reputation: ReputationConfig,
    /// `[suppression]`: the bad-recipient suppression list.
    #[serde(default)]
    pub suppression: SuppressionConfig,
}

fn yes() -> bool {
    true
}

/// `[[source]]`: one egress IP address and the name it greets with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A unique name (`ip-a`), used in pools, logs, metrics and the admin view.
    pub name: String,
    /// The local address to bind outgoing connections to.
    pub address: IpAddr,
    /// The EHLO name; should be the address's reverse DNS name (receivers check).
    pub ehlo: String,
    /// Share of its pools' mail, relative to the other sources of the pool (default 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// The name of a `[warmup.NAME]` plan; without one the source is treated as warm.
    pub warmup: Option<String>,
    /// The first day (`YYYY-MM-DD`, UTC) the source may send on its plan. Before it the
    /// source sends nothing. Without it warmup starts with the first send.
    pub warmup_start: Option<String>,
}

fn default_weight() -> u32 {
    100
}

/// What a pool does when the source the weights pick is out of warmup allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overflow {
    /// The message waits for that source's allowance (the engine retries at the time given).
    #[default]
    Wait,
    /// Another source of the pool with allowance left takes the message.
    Spill,
}

/// `[[pool]]`: a named group of sources.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// A unique name; a message's pool tag or its tenant's mapping refers to it. The pool
    /// named `default` takes every other message.
    pub name: String,
    /// Source names.
    pub sources: Vec<String>,
    /// Behaviour when the chosen source is out of warmup allowance (default `wait`).
    #[serde(default)]
    pub overflow: Overflow,
}

/// `[[tenant]]`: the pool a tenant's mail leaves from, whatever pool tag its messages carry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// The tenant tag of the messages.
    pub name: String,
    /// The pool.
    pub pool: String,
}

/// `[warmup.NAME]`: a warmup plan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarmupPlanConfig {
    /// Messages allowed per provider on sending day 1, 2, 3...; after the last day the
    /// source is warm (no cap).
    pub daily: Vec<u64>,
    /// Per-provider lists replacing `daily` for that provider (`[warmup.NAME.provider.gmail]`).
    #[serde(default)]
    pub provider: BTreeMap<String, ProviderPlanConfig>,
    /// How many minutes' worth of the day's allowance may leave back to back (default 5).
    #[serde(default = "default_burst_minutes")]
    pub burst_minutes: u32,
}

fn default_burst_minutes() -> u32 {
    5
}

/// `[warmup.NAME.provider.PROVIDER]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderPlanConfig {
    /// Messages allowed on sending day 1, 2, 3... to this provider.
    pub daily: Vec<u64>,
}

impl IpwarmConfig {
    /// Reads the configuration from TOML text (for tests and tools; the engine embeds the
    /// keys in its own file).
    pub fn from_toml(text: &str) -> Result<IpwarmConfig, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks everything types cannot; the error names the first bad key.
    pub fn validate(&self) -> Result<(), IpwarmError> {
        let mut names = HashSet::new();
        let mut addresses: Vec<(IpAddr, usize)> = Vec::new();
        for (i, source) in self.sources.iter().enumerate() {
            let key = |field: &str| format!("source[{i}].{field}");
            check_name(&source.name).map_err(|p| IpwarmError::config(key("name"), p))?;
            if !names.insert(source.name.as_str()) {
                return Err(IpwarmError::config(
                    key("name"),
                    format!("{:?} is used by another source", source.name),
                ));
            }
            if let Some((_, j)) = addresses.iter().find(|(a, _)| *a == source.address) {
                return Err(IpwarmError::config(
                    key("address"),
                    format!("{} is already the address of source[{j}]", source.address),
                ));
            }
            addresses.push((source.address, i));
            if source.address.is_unspecified() || source.address.is_multicast() {
                return Err(IpwarmError::config(
                    key("address"),
                    "must be a unicast address of this host",
                ));
            }
            check_hostname(&source.ehlo).map_err(|p| IpwarmError::config(key("ehlo"), p))?;
            if source.weight == 0 || source.weight > 10_000 {
                return Err(IpwarmError::config(
                    key("weight"),
                    "must be between 1 and 10000 (remove the source from its pools to stop it)",
                ));
            }
            if let Some(plan) = &source.warmup
                && !self.warmup.contains_key(plan)
            {
                return Err(IpwarmError::config(
                    key("warmup"),
                    format!("no warmup plan named {plan:?} (define [warmup.{plan}])"),
                ));
            }
            if let Some(start) = &source.warmup_start {
                if source.warmup.is_none() {
                    return Err(IpwarmError::config(
                        key("warmup_start"),
                        "set without a warmup plan",
                    ));
                }
                if parse_date(start).is_none() {
                    return Err(IpwarmError::config(
                        key("warmup_start"),
                        format!("{start:?} is not a date YYYY-MM-DD"),
                    ));
                }
            }
        }
        let mut pool_names = HashSet::new();
        for (i, pool) in self.pools.iter().enumerate() {
            let key = |field: &str| format!("pool[{i}].{field}");
            check_name(&pool.name).map_err(|p| IpwarmError::config(key("name"), p))?;
            if !pool_names.insert(pool.name.as_str()) {
                return Err(IpwarmError::config(
                    key("name"),
                    format!("{:?} is used by another pool", pool.name),
                ));
            }
            if pool.sources.is_empty() {
                return Err(IpwarmError::config(
                    key("sources"),
                    "a pool needs at least one source",
                ));
            }
            for (j, name) in pool.sources.iter().enumerate() {
                if !names.contains(name.as_str()) {
                    return Err(IpwarmError::config(
                        format!("pool[{i}].sources[{j}]"),
                        format!("no source named {name:?}"),
                    ));
                }
                if pool.sources[..j].contains(name) {
                    return Err(IpwarmError::config(
                        format!("pool[{i}].sources[{j}]"),
                        format!("{name:?} is listed twice"),
                    ));
                }
            }
        }
        if !self.pools.is_empty() && !pool_names.contains(DEFAULT_POOL) {
            return Err(IpwarmError::config(
                "pool",
                "pools are configured but none is named \"default\" (it takes mail without a tenant mapping or pool tag)",
            ));
        }
        if self.pools.is_empty() && !self.sources.is_empty() {
            return Err(IpwarmError::config(
                "pool",
                "sources are configured but no pool uses them (add a [[pool]] named \"default\")",
            ));
        }
        let mut tenants = HashSet::new();
        for (i, tenant) in self.tenants.iter().enumerate() {
            if tenant.name.is_empty() {
                return Err(IpwarmError::config(
                    format!("tenant[{i}].name"),
                    "must not be empty",
                ));
            }
            if !tenants.insert(tenant.name.as_str()) {
                return Err(IpwarmError::config(
                    format!("tenant[{i}].name"),
                    format!("{:?} is mapped twice", tenant.name),
                ));
            }
            if !pool_names.contains(tenant.pool.as_str()) {
                return Err(IpwarmError::config(
                    format!("tenant[{i}].pool"),
                    format!("no pool named {:?}", tenant.pool),
                ));
            }
        }
        for (name, plan) in &self.warmup {
            check_name(name).map_err(|p| IpwarmError::config(format!("warmup.{name}"), p))?;
            check_daily(&plan.daily, &format!("warmup.{name}.daily"))?;
            for (provider, list) in &plan.provider {
                check_daily(
                    &list.daily,
                    &format!("warmup.{name}.provider.{provider}.daily"),
                )?;
            }
            if !(1..=1440).contains(&plan.burst_minutes) {
                return Err(IpwarmError::config(
                    format!("warmup.{name}.burst_minutes"),
                    "must be between 1 and 1440",
                ));
            }
        }
        Classifier::new(&self.classify, false)?;
        self.reputation.validate()?;
        self.suppression.validate()?;
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("may contain only letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

fn check_hostname(name: &str) -> Result<(), &'static str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if name.len() > 253 || !name.contains('.') || !labels_ok {
        return Err("must be a fully qualified host name (the address's reverse DNS name)");
    }
    Ok(())
}

fn check_daily(daily: &[u64], key: &str) -> Result<(), IpwarmError> {
    if daily.is_empty() {
        return Err(IpwarmError::config(key, "needs at least one day"));
    }
    if daily.len() > 3650 {
        return Err(IpwarmError::config(key, "has more than 3650 days"));
    }
    for (i, &n) in daily.iter().enumerate() {
        if n == 0 {
            return Err(IpwarmError::config(
                format!("{key}[{i}]"),
                "must be at least 1",
            ));
        }
        if i > 0 && n < daily[i - 1] {
            return Err(IpwarmError::config(
                format!("{key}[{i}]"),
                "is smaller than the day before (a plan only grows)",
            ));
        }
    }
    Ok(())
}

/// A rate as operators write it: `COUNT/UNIT`, UNIT one of `s`, `min`, `h`, `day`
/// (`"600/min"`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Events per `per`.
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl Rate {
    /// Events per second.
    pub fn per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

/// A rate that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate {0:?}: expected COUNT/UNIT with UNIT one of s, min, h, day (e.g. \"600/min\")"
)]
pub struct RateParseError(String);

impl FromStr for Rate {
    type Err = RateParseError;

    fn from_str(text: &str) -> Result<Rate, RateParseError> {
        let error = || RateParseError(text.to_owned());
        let (count, unit) = text.split_once('/').ok_or_else(error)?;
        let count: u32 = count.trim().parse().map_err(|_| error())?;
        let per = match unit.trim() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "min" | "minute" => Duration::from_secs(60),
            "h" | "hr" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86_400),
            _ => return Err(error()),
        };
        if count == 0 {
            return Err(error());
        }
        Ok(Rate { count, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "day",
        };
        write!(f, "{}/{}", self.count, unit)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Deserialises a humantime duration (`"1h 30m"`).
pub(crate) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests;
