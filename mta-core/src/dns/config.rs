//! `[dns]`: which name servers the MX resolver asks, how patiently, and how long answers
//! are kept.
//!
//! Invariants: unknown keys are rejected; [`DnsConfig::validate`] refuses values that would
//! make the resolver useless (no attempt, zero timeout, an empty cache, inverted TTL bounds).

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::DnsError;

/// `[dns]`: name servers, timeouts and the cache of MX plans.
///
/// ```toml
/// [dns]
/// nameservers = ["127.0.0.1:5353"]   # empty or absent: /etc/resolv.conf
/// timeout = "5s"
/// attempts = 2
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsConfig {
    /// Name servers to ask, each queried over UDP and TCP on exactly the port given. Empty:
    /// the system's `/etc/resolv.conf` (name servers, timeout and attempts from there are
    /// overridden by the keys below).
    #[serde(default)]
    pub nameservers: Vec<SocketAddr>,
    /// How long one query waits for an answer (over all the name servers it tries).
    #[serde(default = "default_timeout", with = "crate::config::duration")]
    pub timeout: Duration,
    /// Tries per query, the first one included (at least 1). A timed-out or failed query is
    /// sent again; NXDOMAIN and NODATA answers are final and never retried.
    #[serde(default = "default_attempts")]
    pub attempts: usize,
    /// Most domains whose plan (or negative answer) is cached. When full, expired entries
    /// go first, then the least recently used eighth.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Shortest time a plan is cached, even if its records' TTL is shorter.
    #[serde(default = "default_min_ttl", with = "crate::config::duration")]
    pub min_ttl: Duration,
    /// Longest time a plan is cached, even if its records' TTL is longer.
    #[serde(default = "default_max_ttl", with = "crate::config::duration")]
    pub max_ttl: Duration,
    /// Shortest time a negative answer (NXDOMAIN, no records, no usable host) is cached;
    /// also used when the answer carries no SOA to take a negative TTL from (RFC 2308).
    #[serde(default = "default_negative_min_ttl", with = "crate::config::duration")]
    pub negative_min_ttl: Duration,
    /// Longest time a negative answer is cached (RFC 2308 section 5 suggests 1 to 3 hours).
    #[serde(default = "default_negative_max_ttl", with = "crate::config::duration")]
    pub negative_max_ttl: Duration,
    /// How long a transient failure (timeout, SERVFAIL, network error) is remembered, so a
    /// broken domain is not asked again for every queued message (RFC 2308 section 7 allows
    /// up to 5 minutes). `"0s"` disables it.
    #[serde(default = "default_error_ttl", with = "crate::config::duration")]
    pub error_ttl: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            nameservers: Vec::new(),
            timeout: default_timeout(),
            attempts: default_attempts(),
            cache_size: default_cache_size(),
            min_ttl: default_min_ttl(),
            max_ttl: default_max_ttl(),
            negative_min_ttl: default_negative_min_ttl(),
            negative_max_ttl: default_negative_max_ttl(),
            error_ttl: default_error_ttl(),
        }
    }
}

impl DnsConfig {
    /// Checks what the types alone do not; the error names the offending key.
    pub fn validate(&self) -> Result<(), DnsError> {
        let invalid =
            |key: &'static str, reason: &'static str| Err(DnsError::InvalidConfig { key, reason });
        if self.timeout.is_zero() {
            return invalid("dns.timeout", "must be positive");
        }
        if self.attempts == 0 {
            return invalid("dns.attempts", "must be at least 1");
        }
        if self.cache_size == 0 {
            return invalid("dns.cache_size", "must be at least 1");
        }
        if self.min_ttl > self.max_ttl {
            return invalid("dns.min_ttl", "must not be above max_ttl");
        }
        if self.negative_min_ttl > self.negative_max_ttl {
            return invalid("dns.negative_min_ttl", "must not be above negative_max_ttl");
        }
        if self.nameservers.iter().any(|a| a.port() == 0) {
            return invalid("dns.nameservers", "port 0 is not a name server port");
        }
        Ok(())
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_attempts() -> usize {
    2
}
fn default_cache_size() -> usize {
    10_000
}
fn default_min_ttl() -> Duration {
    Duration::from_secs(10)
}
fn default_max_ttl() -> Duration {
    Duration::from_secs(86_400)
}
fn default_negative_min_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_negative_max_ttl() -> Duration {
    Duration::from_secs(3_600)
}
fn default_error_ttl() -> Duration {
    Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_the_documented_example() {
        let empty: DnsConfig = toml::from_str("").unwrap();
        assert_eq!(empty, DnsConfig::default());
        assert_eq!(empty.timeout, Duration::from_secs(5));
        assert_eq!(empty.attempts, 2);
        assert!(empty.nameservers.is_empty());
        empty.validate().unwrap();

        let text = r#"
nameservers = ["127.0.0.1:5353", "[::1]:53"]
timeout = "2s"
attempts = 3
cache_size = 100
min_ttl = "0s"
max_ttl = "1h"
negative_min_ttl = "5s"
negative_max_ttl = "10m"
error_ttl = "0s"
"#;
        let config: DnsConfig = toml::from_str(text).unwrap();
        assert_eq!(
            config.nameservers,
            vec![
                "127.0.0.1:5353".parse::<SocketAddr>().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.attempts, 3);
        assert_eq!(config.max_ttl, Duration::from_secs(3600));
        assert_eq!(config.error_ttl, Duration::ZERO);
        config.validate().unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        let parse_errors = [
            "nameserver = []",               // unknown key (typo)
            "nameservers = [\"127.0.0.1\"]", // no port
            "timeout = 5",                   // not a duration string
            "attempts = \"two\"",
        ];
        for text in parse_errors {
            assert!(toml::from_str::<DnsConfig>(text).is_err(), "{text}");
        }
        let invalid = [
            ("timeout = \"0s\"", "dns.timeout"),
            ("attempts = 0", "dns.attempts"),
            ("cache_size = 0", "dns.cache_size"),
            ("min_ttl = \"2h\"\nmax_ttl = \"1h\"", "dns.min_ttl"),
            (
                "negative_min_ttl = \"2h\"\nnegative_max_ttl = \"1h\"",
                "dns.negative_min_ttl",
            ),
            ("nameservers = [\"127.0.0.1:0\"]", "dns.nameservers"),
        ];
        for (text, key) in invalid {
            let config: DnsConfig = toml::from_str(text).unwrap();
            match config.validate() {
                Err(DnsError::InvalidConfig { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
