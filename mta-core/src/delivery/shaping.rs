//! Traffic shaping: how hard we may push each destination.
//!
//! A destination *site* is the set of MX hosts a domain resolves to. Provider rules group
//! sites by MX host suffix (every domain whose MX ends in `.google.com` is "gmail"), so
//! limits apply per mailbox provider, not per recipient domain. Limits come from, in order:
//! the operator's `[[provider]]` entries, the built-in defaults (`default-shaping.toml`,
//! public operator practice of the big providers), and the `[delivery]` defaults for every
//! other site.

use serde::Deserialize;

use super::rate::Rate;
use crate::client::TlsMode;

/// The built-in provider rules (can be turned off with `[delivery] default_shaping = false`).
pub const DEFAULT_SHAPING: &str = include_str!("default-shaping.toml");

/// `[[provider]]`: a mailbox provider recognised by its MX host names, and its limits.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// The provider's name (in logs, metrics and pool keys).
    pub name: String,
    /// MX host name suffixes that identify the provider (`.google.com`).
    pub mx_suffixes: Vec<String>,
    /// Connections at once per egress source.
    pub max_connections: Option<usize>,
    /// Messages per connection before it is closed and a new one opened.
    pub max_deliveries_per_connection: Option<usize>,
    /// Messages per egress source, spread evenly (`"600/min"`).
    pub max_message_rate: Option<Rate>,
    /// New connections per egress source (`"60/min"`).
    pub connection_rate: Option<Rate>,
    /// STARTTLS policy.
    pub tls: Option<TlsMode>,
}

/// The limits in force for one (source, site) pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Shaping {
    /// The provider name, when a rule matched.
    pub provider: Option<String>,
    /// Connections at once.
    pub max_connections: usize,
    /// Messages per connection.
    pub max_deliveries_per_connection: usize,
    /// Messages per time, if limited.
    pub max_message_rate: Option<Rate>,
    /// New connections per time, if limited.
    pub connection_rate: Option<Rate>,
    /// STARTTLS policy.
    pub tls: TlsMode,
}

impl Shaping {
    /// The provider a site belongs to: the rule's name, or [`ipwarm::OTHER_PROVIDER`]
    /// (`other`) for every site no rule matches. Warmup allowances, provider suspensions,
    /// the admin views and the metrics use it; pools and throttles stay per site.
    pub fn provider_name(&self) -> &str {
        self.provider.as_deref().unwrap_or(ipwarm::OTHER_PROVIDER)
    }
}

/// The provider rules, operator's first, then the built-in ones.
#[derive(Debug, Clone)]
pub struct ShapingRules {
    providers: Vec<ProviderConfig>,
    default: Shaping,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShapingFile {
    #[serde(rename = "provider")]
    providers: Vec<ProviderConfig>,
}

impl ShapingRules {
    /// Rules from the operator's providers, then (if `builtin`) the built-in ones; a built-in
    /// provider the operator redefines by name is replaced, not merged.
    pub fn new(operator: &[ProviderConfig], builtin: bool, default: Shaping) -> ShapingRules {
        let mut providers = operator.to_vec();
        if builtin {
            let file: ShapingFile =
                toml::from_str(DEFAULT_SHAPING).expect("the built-in shaping file is valid");
            for p in file.providers {
                if !providers.iter().any(|o| o.name == p.name) {
                    providers.push(p);
                }
            }
        }
        ShapingRules { providers, default }
    }

    /// The provider whose suffixes match any of these MX host names.
    pub fn provider_for<'a>(
        &self,
        mx_hosts: impl IntoIterator<Item = &'a str>,
    ) -> Option<&ProviderConfig> {
        let hosts: Vec<String> = mx_hosts
            .into_iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        self.providers.iter().find(|p| {
            p.mx_suffixes.iter().any(|suffix| {
                let suffix = suffix.to_ascii_lowercase();
                hosts
                    .iter()
                    .any(|h| h.ends_with(&suffix) || *h == suffix.trim_start_matches('.'))
            })
        })
    }

    /// The limits for a site served by these MX hosts.
    pub fn shaping_for<'a>(&self, mx_hosts: impl IntoIterator<Item = &'a str>) -> Shaping {
        match self.provider_for(mx_hosts) {
            None => self.default.clone(),
            Some(p) => Shaping {
                provider: Some(p.name.clone()),
                max_connections: p.max_connections.unwrap_or(self.default.max_connections),
                max_deliveries_per_connection: p
                    .max_deliveries_per_connection
                    .unwrap_or(self.default.max_deliveries_per_connection),
                max_message_rate: p.max_message_rate.or(self.default.max_message_rate),
                connection_rate: p.connection_rate.or(self.default.connection_rate),
                tls: p.tls.unwrap_or(self.default.tls),
            },
        }
    }

    /// The limits for sites no provider rule matches.
    pub fn default_shaping(&self) -> &Shaping {
        &self.default
    }

    /// The provider rules in force, operator's first.
    pub fn providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.providers.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default() -> Shaping {
        Shaping {
            provider: None,
            max_connections: 10,
            max_deliveries_per_connection: 100,
            max_message_rate: None,
            connection_rate: None,
            tls: TlsMode::Opportunistic,
        }
    }

    #[test]
    fn builtin_file_parses_and_matches_the_big_providers() {
        let rules = ShapingRules::new(&[], true, default());
        let table = [
            (
                vec![
                    "gmail-smtp-in.l.google.com.",
                    "alt1.gmail-smtp-in.l.google.com",
                ],
                Some("gmail"),
            ),
            (vec!["aspmx.l.google.com"], Some("gmail")),
            (vec!["mta5.am0.yahoodns.net"], Some("yahoo")),
            (
                vec!["example-com.mail.protection.outlook.com"],
                Some("microsoft"),
            ),
            (
                vec!["outlook-com.olc.protection.outlook.com"],
                Some("microsoft"),
            ),
            (vec!["mx01.mail.icloud.com"], Some("apple")),
            (vec!["mx.example.org"], None),
        ];
        for (hosts, provider) in table {
            let shaping = rules.shaping_for(hosts.iter().copied());
            assert_eq!(shaping.provider.as_deref(), provider, "{hosts:?}");
        }
        let gmail = rules.shaping_for(["aspmx.l.google.com"]);
        assert_eq!(gmail.max_deliveries_per_connection, 50);
    }

    #[test]
    fn operator_rules_replace_builtin_ones_by_name() {
        let mine = ProviderConfig {
            name: "gmail".into(),
            mx_suffixes: vec![".google.com".into()],
            max_connections: Some(2),
            max_deliveries_per_connection: None,
            max_message_rate: Some("600/min".parse().unwrap()),
            connection_rate: None,
            tls: Some(TlsMode::Required),
        };
        let rules = ShapingRules::new(&[mine], true, default());
        let gmail = rules.shaping_for(["aspmx.l.google.com"]);
        assert_eq!(gmail.max_connections, 2);
        assert_eq!(
            gmail.max_deliveries_per_connection, 100,
            "unset keys fall back to [delivery]"
        );
        assert_eq!(gmail.max_message_rate.unwrap().count, 600);
        assert_eq!(gmail.tls, TlsMode::Required);
        let none = ShapingRules::new(&[], false, default());
        assert_eq!(none.shaping_for(["aspmx.l.google.com"]).provider, None);
    }
}
