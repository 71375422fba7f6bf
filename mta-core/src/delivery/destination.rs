//! Where a job goes: the MX hosts of its domain, an address literal, or a static route's
//! smarthost; and the ordered list of (host, address) candidates a connection tries.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::dns::{DnsError, MxHost, MxPlan, MxResolver, site_key};

use super::route::{Routes, Smarthost};

/// A resolved destination.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// The domain's MX plan (never a null MX: that is an outcome, not a destination).
    Mx(Arc<MxPlan>),
    /// A static route.
    Smarthost(Smarthost, Vec<IpAddr>),
}

/// Why a job has no destination.
#[derive(Debug)]
pub(crate) enum NoDestination {
    /// RFC 7505 null MX: the domain accepts no mail.
    NullMx,
    /// DNS said no, or failed.
    Dns(DnsError),
    /// A smarthost name that does not resolve.
    Smarthost(String),
}

/// One host to try.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Host name (for SNI and logs).
    pub(crate) name: String,
    /// Address and port.
    pub(crate) addr: SocketAddr,
}

impl Destination {
    /// The destination of `domain`: a route, an address literal, or its MX hosts.
    pub(crate) async fn resolve(
        domain: &str,
        routes: &Routes,
        resolver: &MxResolver,
    ) -> Result<Destination, NoDestination> {
        if let Some(smarthost) = routes.route_for(domain) {
            let addresses = match smarthost.host.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => tokio::net::lookup_host((smarthost.host.as_str(), smarthost.port))
                    .await
                    .map_err(|e| NoDestination::Smarthost(format!("{}: {e}", smarthost.host)))?
                    .map(|a| a.ip())
                    .collect(),
            };
            if addresses.is_empty() {
                return Err(NoDestination::Smarthost(format!(
                    "{}: no address",
                    smarthost.host
                )));
            }
            return Ok(Destination::Smarthost(smarthost.clone(), addresses));
        }
        if let Some(literal) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            let ip = literal
                .strip_prefix("IPv6:")
                .or_else(|| literal.strip_prefix("ipv6:"))
                .unwrap_or(literal)
                .parse::<IpAddr>()
                .map_err(|_| {
                    NoDestination::Dns(DnsError::InvalidDomain {
                        domain: domain.to_owned(),
                    })
                })?;
            let host = MxHost {
                preference: 0,
                name: ip.to_string(),
                addresses: vec![ip],
            };
            return Ok(Destination::Mx(Arc::new(MxPlan::Implicit(host))));
        }
        let plan = resolver.resolve(domain).await.map_err(NoDestination::Dns)?;
        if plan.is_null_mx() {
            return Err(NoDestination::NullMx);
        }
        Ok(Destination::Mx(plan))
    }

    /// The site: what limits and connections are shared by (before provider grouping).
    pub(crate) fn site(&self) -> String {
        match self {
            Destination::Mx(plan) => site_key(plan),
            Destination::Smarthost(smarthost, _) => format!("route:{smarthost}"),
        }
    }

    /// The MX host names (for provider rules).
    pub(crate) fn host_names(&self) -> Vec<&str> {
        match self {
            Destination::Mx(plan) => plan.hosts().iter().map(|h| h.name.as_str()).collect(),
            Destination::Smarthost(smarthost, _) => vec![smarthost.host.as_str()],
        }
    }

    /// The hosts to try, in order: MX preference (equal preferences shuffled), each host's
    /// addresses of the source's family (IPv4 when the source is unset).
    pub(crate) fn candidates(&self, smtp_port: u16, source: Option<IpAddr>) -> Vec<Candidate> {
        let family_ok = |ip: &IpAddr| match source {
            Some(s) => s.is_ipv4() == ip.is_ipv4(),
            None => true,
        };
        match self {
            Destination::Mx(plan) => {
                let plan = plan.shuffled(&mut rand::rng());
                plan.hosts()
                    .iter()
                    .flat_map(|h| {
                        h.addresses
                            .iter()
                            .filter(|a| family_ok(a))
                            .map(|a| Candidate {
                                name: h.name.clone(),
                                addr: SocketAddr::new(*a, smtp_port),
                            })
                    })
                    .collect()
            }
            Destination::Smarthost(smarthost, addresses) => addresses
                .iter()
                .filter(|a| family_ok(a))
                .map(|a| Candidate {
                    name: smarthost.host.clone(),
                    addr: SocketAddr::new(*a, smarthost.port),
                })
                .collect(),
        }
    }
}
