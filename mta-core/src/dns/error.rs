//! Why a domain has no delivery plan, classified for the delivery engine.
//!
//! Invariant: every variant is either *permanent* (the engine bounces the recipients with
//! [`DnsError::enhanced_code`]) or *transient* (the engine retries later); there is no third
//! kind and no catch-all. Permanence is only claimed on an authoritative negative answer
//! (NXDOMAIN, or NOERROR with no data); anything that might be a network or server problem
//! is transient.

use hickory_resolver::net::NetError;

/// Why MX resolution failed.
///
/// Permanent (bounce): [`InvalidDomain`](Self::InvalidDomain), [`NxDomain`](Self::NxDomain),
/// [`NoRecords`](Self::NoRecords), [`NoUsableHost`](Self::NoUsableHost).
/// Transient (retry): [`Timeout`](Self::Timeout), [`ServFail`](Self::ServFail),
/// [`Transport`](Self::Transport).
/// Set-up errors ([`InvalidConfig`](Self::InvalidConfig), [`Setup`](Self::Setup))
/// only come from [`MxResolver::new`](super::MxResolver::new).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// The domain is not a valid DNS name (empty, a label over 63 octets, an address
    /// literal...). Permanent, `5.1.3`.
    #[error("{domain}: not a valid domain name")]
    InvalidDomain {
        /// The domain as given.
        domain: String,
    },
    /// The domain does not exist (NXDOMAIN on its MX query). Permanent, `5.1.2`.
    #[error("{domain}: domain does not exist (NXDOMAIN)")]
    NxDomain {
        /// The domain.
        domain: String,
    },
    /// The domain exists but has no MX record and no A or AAAA record, so not even an
    /// implicit MX (RFC 5321 section 5.1). Permanent, `5.1.2`: the answer is authoritative,
    /// and RFC 5321 requires the situation to be reported as an error.
    #[error("{domain}: no MX, A or AAAA records")]
    NoRecords {
        /// The domain.
        domain: String,
    },
    /// The domain has MX records but no MX host has an address: every host's A and AAAA
    /// queries got an authoritative NXDOMAIN or NODATA. Permanent, `5.4.4` (unable to route).
    /// If any host failed only transiently, the transient error is returned instead.
    #[error("{domain}: no MX host has an address (tried {hosts:?})")]
    NoUsableHost {
        /// The domain.
        domain: String,
        /// The MX host names that were tried, in preference order.
        hosts: Vec<String>,
    },
    /// No answer within the timeout, after every attempt. Transient, `4.4.3`.
    #[error("{name}: DNS query timed out")]
    Timeout {
        /// The name being resolved (the domain or one of its MX hosts).
        name: String,
    },
    /// A name server answered with an error code (SERVFAIL, REFUSED...). Transient, `4.4.3`.
    #[error("{name}: DNS server failure ({rcode})")]
    ServFail {
        /// The name being resolved (the domain or one of its MX hosts).
        name: String,
        /// The response code, as text (`"Server Failure"`, `"Refused"`...).
        rcode: String,
    },
    /// The query could not be made or its answer not read (no reachable server, I/O,
    /// malformed response). Transient, `4.4.3`.
    #[error("{name}: DNS error: {source}")]
    Transport {
        /// The name being resolved.
        name: String,
        /// What the resolver reported.
        source: NetError,
    },
    /// A `[dns]` value is unusable.
    #[error("{key}: {reason}")]
    InvalidConfig {
        /// The configuration key (`dns.timeout`).
        key: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The resolver could not be set up, e.g. `nameservers` is empty and the system
    /// configuration (`/etc/resolv.conf`) cannot be read.
    #[error("cannot set up the DNS resolver: {source}")]
    Setup {
        /// What the resolver reported.
        source: NetError,
    },
}

impl DnsError {
    /// `true` when retrying cannot help: the engine bounces the recipients now.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            Self::InvalidDomain { .. }
                | Self::NxDomain { .. }
                | Self::NoRecords { .. }
                | Self::NoUsableHost { .. }
        )
    }

    /// The enhanced status code (RFC 3463) for the bounce or the delay notice:
    /// `5.1.3` bad domain syntax, `5.1.2` bad destination system, `5.4.4` unable to route,
    /// `4.4.3` directory (DNS) server failure. Set-up errors also report `4.4.3`.
    pub fn enhanced_code(&self) -> &'static str {
        match self {
            Self::InvalidDomain { .. } => "5.1.3",
            Self::NxDomain { .. } | Self::NoRecords { .. } => "5.1.2",
            Self::NoUsableHost { .. } => "5.4.4",
            _ => "4.4.3",
        }
    }

    /// A short label for metrics and logs (`nxdomain`, `timeout`...).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::InvalidDomain { .. } => "invalid_domain",
            Self::NxDomain { .. } => "nxdomain",
            Self::NoRecords { .. } => "no_records",
            Self::NoUsableHost { .. } => "no_usable_host",
            Self::Timeout { .. } => "timeout",
            Self::ServFail { .. } => "servfail",
            Self::Transport { .. } => "transport",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::Setup { .. } => "setup",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let d = || "example.test".to_owned();
        let table = [
            (DnsError::InvalidDomain { domain: d() }, true, "5.1.3"),
            (DnsError::NxDomain { domain: d() }, true, "5.1.2"),
            (DnsError::NoRecords { domain: d() }, true, "5.1.2"),
            (
                DnsError::NoUsableHost {
                    domain: d(),
                    hosts: vec!["mx.example.test".into()],
                },
                true,
                "5.4.4",
            ),
            (DnsError::Timeout { name: d() }, false, "4.4.3"),
            (
                DnsError::ServFail {
                    name: d(),
                    rcode: "Server Failure".into(),
                },
                false,
                "4.4.3",
            ),
            (
                DnsError::Transport {
                    name: d(),
                    source: NetError::NoConnections,
                },
                false,
                "4.4.3",
            ),
        ];
        for (error, permanent, code) in table {
            assert_eq!(error.is_permanent(), permanent, "{error}");
            assert_eq!(error.enhanced_code(), code, "{error}");
            assert!(error.to_string().starts_with("example.test: "), "{error}");
        }
    }
}
