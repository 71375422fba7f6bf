//! Static routes (like Postfix's transport map): mail for matching recipient domains goes to a
//! fixed smarthost instead of the domain's MX hosts. The first matching route wins.

use std::fmt;

use serde::Deserialize;

use crate::client::TlsMode;

/// `[[route]]` as written in the configuration.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Recipient domains: `"*"` (all), `"example.com"` (exactly), `"*.example.org"` (its
    /// subdomains, not the domain itself).
    pub domains: Vec<String>,
    /// `host:port`, `host` (port 25), or `[ipv6]:port`; the host may be an IP address or a
    /// name (resolved with A/AAAA, no MX lookup).
    pub smarthost: String,
    /// STARTTLS policy towards the smarthost (default: the `[delivery]` one).
    pub tls: Option<TlsMode>,
}

/// A smarthost: where routed mail goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Smarthost {
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// STARTTLS policy, if the route sets one.
    pub tls: Option<TlsMode>,
}

impl fmt::Display for Smarthost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Any,
    Exact(String),
    Subdomains(String),
}

impl Pattern {
    fn parse(text: &str) -> Result<Pattern, String> {
        let text = text.trim().trim_end_matches('.').to_ascii_lowercase();
        if text == "*" {
            return Ok(Pattern::Any);
        }
        let (pattern, domain) = match text.strip_prefix("*.") {
            Some(rest) => (Pattern::Subdomains(format!(".{rest}")), rest.to_owned()),
            None => (Pattern::Exact(text.clone()), text.clone()),
        };
        if domain.is_empty()
            || domain.contains('*')
            || smtp_proto::Mailbox::parse(&format!("x@{domain}")).is_err()
        {
            return Err(format!("invalid domain pattern {text:?}"));
        }
        Ok(pattern)
    }

    fn matches(&self, domain: &str) -> bool {
        match self {
            Pattern::Any => true,
            Pattern::Exact(d) => d == domain,
            Pattern::Subdomains(suffix) => domain.ends_with(suffix.as_str()),
        }
    }
}

/// The routes, in order.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    routes: Vec<(Vec<Pattern>, Smarthost)>,
}

impl Routes {
    /// Builds the routes; errors name the route and what is wrong.
    pub fn new(configs: &[RouteConfig]) -> Result<Routes, String> {
        let mut routes = Vec::with_capacity(configs.len());
        for (i, config) in configs.iter().enumerate() {
            let patterns = config
                .domains
                .iter()
                .map(|d| Pattern::parse(d))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("route[{i}].domains: {e}"))?;
            if patterns.is_empty() {
                return Err(format!("route[{i}].domains: at least one domain pattern"));
            }
            let smarthost = parse_smarthost(&config.smarthost, config.tls)
                .map_err(|e| format!("route[{i}].smarthost: {e}"))?;
            routes.push((patterns, smarthost));
        }
        Ok(Routes { routes })
    }

    /// The smarthost for a recipient domain, if a route matches.
    pub fn route_for(&self, domain: &str) -> Option<&Smarthost> {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.routes
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(&domain)))
            .map(|(_, host)| host)
    }
}

fn parse_smarthost(text: &str, tls: Option<TlsMode>) -> Result<Smarthost, String> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("missing ']'")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("invalid port {p:?}"))?,
            None if after.is_empty() => 25,
            None => return Err(format!("unexpected {after:?}")),
        };
        (host.to_owned(), port)
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (text.to_owned(), 25)
    } else {
        match text.split_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| format!("invalid port {p:?}"))?,
            ),
            None => (text.to_owned(), 25),
        }
    };
    if host.is_empty() || port == 0 {
        return Err(format!("invalid smarthost {text:?}"));
    }
    Ok(Smarthost { host, port, tls })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(domains: &[&str], smarthost: &str) -> RouteConfig {
        RouteConfig {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            smarthost: smarthost.into(),
            tls: None,
        }
    }

    #[test]
    fn first_matching_route_wins() {
        let routes = Routes::new(&[
            route(&["example.com"], "10.0.0.1:2525"),
            route(&["*.example.org"], "relay.example.net"),
            route(&["*"], "[::1]:2526"),
        ])
        .unwrap();
        let table = [
            ("example.com", "10.0.0.1:2525"),
            ("EXAMPLE.COM.", "10.0.0.1:2525"),
            ("sub.example.org", "relay.example.net:25"),
            ("example.org", "[::1]:2526"),
            ("gmail.com", "[::1]:2526"),
        ];
        for (domain, expected) in table {
            assert_eq!(
                routes.route_for(domain).unwrap().to_string(),
                expected,
                "{domain}"
            );
        }
        let only = Routes::new(&[route(&["example.com"], "127.0.0.1")]).unwrap();
        assert!(only.route_for("gmail.com").is_none());
    }

    #[test]
    fn bad_routes_are_refused_with_their_key() {
        let cases = [
            (route(&["exa mple.com"], "127.0.0.1:25"), "route[0].domains"),
            (route(&[], "127.0.0.1:25"), "route[0].domains"),
            (route(&["*"], "127.0.0.1:port"), "route[0].smarthost"),
            (route(&["*"], "[::1"), "route[0].smarthost"),
            (route(&["*"], ""), "route[0].smarthost"),
        ];
        for (config, key) in cases {
            let error = Routes::new(&[config]).unwrap_err();
            assert!(error.starts_with(key), "{error}");
        }
    }
}
