//! The typed configuration: a TOML file, or the embedded default when none is given.
//!
//! Invariants: every section rejects unknown keys, and a rejected key is reported with its
//! full path (`listener[0].max_mesage_size`), so a typo never silently falls back to a
//! default. [`Config::validate`] checks what types alone cannot (listeners that collide,
//! TLS files that come in pairs, password hashes that parse); `mta run --validate` runs the
//! same code the daemon runs at start.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::Deserialize;

use crate::admin::AdminConfig;
use crate::client::TlsMode;
use crate::delivery::{ProviderConfig, Rate, RouteConfig, Routes};
use crate::delivery_log::DeliveryLogConfig;
use crate::dns::DnsConfig;

/// The configuration the MTA runs with when no file is given: SMTP on 127.0.0.1:2525, spool
/// under `./data/spool`, relay allowed from loopback.
pub const DEFAULT_CONFIG: &str = include_str!("default-config.toml");

/// Why a configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or has the wrong type.
    #[error("{path}: {source}")]
    Parse {
        /// The key path where the error is (`listener[0].address`); `.` for the top level.
        path: String,
        /// What is wrong there.
        source: toml::de::Error,
    },
    /// The values are well-typed but do not make a working configuration.
    #[error("{key}: {reason}")]
    Invalid {
        /// The key path the problem is about.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// An error and its sources, `: `-separated, as an operator needs to read it.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Our host name: in the greeting, EHLO reply, Received headers, and as our EHLO name.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Domains we accept mail for from anyone (bounce and feedback domains). Relay clients
    /// may send anywhere; everyone else only here.
    #[serde(default)]
    pub accept_domains: Vec<String>,
    /// The spool.
    #[serde(default)]
    pub spool: SpoolConfig,
    /// SMTP listeners; one on 127.0.0.1:2525 when none is given.
    #[serde(default = "default_listeners", rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Users who may relay after AUTH.
    #[serde(default, rename = "user")]
    pub users: Vec<UserConfig>,
    /// Process-wide settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Outbound delivery.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Mailbox providers and their limits (on top of the built-in ones).
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderConfig>,
    /// Static routes to smarthosts; the first match wins.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// Name servers and DNS caching.
    #[serde(default)]
    pub dns: DnsConfig,
    /// The JSON delivery log.
    #[serde(default)]
    pub delivery_log: DeliveryLogConfig,
    /// The admin API (Unix socket, optional loopback TCP).
    #[serde(default)]
    pub admin: AdminConfig,
    /// Egress sources (IP addresses to send from).
    #[serde(default, rename = "source")]
    pub sources: Vec<ipwarm::SourceConfig>,
    /// Egress pools: weighted sets of sources.
    #[serde(default, rename = "pool")]
    pub pools: Vec<ipwarm::PoolConfig>,
    /// Tenants and the pool each sends from.
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<ipwarm::TenantConfig>,
    /// Warmup plans by name.
    #[serde(default)]
    pub warmup: std::collections::BTreeMap<String, ipwarm::WarmupPlanConfig>,
    /// Reply classification rules, checked before the built-in ones.
    #[serde(default)]
    pub classify: Vec<ipwarm::RuleConfig>,
    /// Use the built-in classification rules.
    #[serde(default = "default_true")]
    pub classify_builtin: bool,
    /// Reputation-aware throttling.
    #[serde(default)]
    pub reputation: ipwarm::ReputationConfig,
    /// Suppression of recipients that hard-bounced.
    #[serde(default)]
    pub suppression: ipwarm::SuppressionConfig,
    /// DKIM signing keys and policy.
    #[serde(default, rename = "dkim")]
    pub dkim: Vec<dkim::DkimConfig>,
    /// The directory relative paths (DKIM keys) are taken from: the configuration file's
    /// directory, or the working directory for the embedded default.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[delivery]`: retries, expiry, and the limits for sites no provider rule matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// A message still undelivered after this long is bounced as expired.
    #[serde(default = "default_max_age", with = "duration")]
    pub max_age: Duration,
    /// Wait before the first retry; doubles (with jitter) up to `retry_max`.
    #[serde(default = "default_retry_initial", with = "duration")]
    pub retry_initial: Duration,
    /// Longest wait between retries.
    #[serde(default = "default_retry_max", with = "duration")]
    pub retry_max: Duration,
    /// TCP port of MX hosts (tests point it elsewhere).
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    /// Send delivery status notifications (bounces) to senders; off for ESPs that process
    /// bounces from the delivery log.
    #[serde(default = "default_true")]
    pub bounces: bool,
    /// Load the built-in provider rules (Gmail, Yahoo, Microsoft, Apple, Comcast).
    #[serde(default = "default_true")]
    pub default_shaping: bool,
    /// Connections at once per egress source to a site without a provider rule.
    #[serde(default = "default_site_connections")]
    pub max_connections: usize,
    /// Messages per connection before it is closed.
    #[serde(default = "default_deliveries_per_connection")]
    pub max_deliveries_per_connection: usize,
    /// Messages per time to one site, if limited (`"600/min"`).
    pub max_message_rate: Option<Rate>,
    /// New connections per time to one site, if limited.
    pub connection_rate: Option<Rate>,
    /// STARTTLS policy: `opportunistic`, `required` or `disabled`.
    #[serde(default)]
    pub tls: TlsMode,
    /// An open connection with nothing to send is closed after this long.
    #[serde(default = "default_idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Local address to connect from; absent: the system's choice.
    pub source_address: Option<std::net::IpAddr>,
    /// Name to give in EHLO; absent: `hostname`.
    pub ehlo_name: Option<String>,
    /// TCP connect timeout.
    #[serde(default = "default_connect_timeout", with = "duration")]
    pub connect_timeout: Duration,
    /// Wait for the greeting and for replies to commands (RFC 5321: at least 5 minutes).
    #[serde(default = "default_command_timeout", with = "duration")]
    pub command_timeout: Duration,
    /// Wait for the reply after the message data (RFC 5321: 10 minutes).
    #[serde(default = "default_data_end_timeout", with = "duration")]
    pub data_timeout: Duration,
    /// Messages waiting for a connection per destination; beyond it they wait in the
    /// scheduler.
    #[serde(default = "default_ready_queue_capacity")]
    pub ready_queue_capacity: usize,
    /// Relative random spread of every retry wait (0 to 1).
    #[serde(default = "default_retry_jitter")]
    pub retry_jitter: f64,
    /// Turns in a row a waiting lower priority may be passed over in a ready queue.
    #[serde(default = "default_starvation_limit")]
    pub ready_queue_starvation_limit: u32,
    /// After the spool could not read a message, or refused to record an attempt's
    /// outcome, wait this long before trying again.
    #[serde(default = "default_spool_retry", with = "duration")]
    pub spool_retry: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        toml::from_str("").expect("every [delivery] key has a default")
    }
}

/// `[spool]`: where and how messages are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// Directory of the spool database, created if missing.
    #[serde(default = "default_spool_path")]
    pub path: PathBuf,
    /// Most messages made durable by one fsync (group commit).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Most octets made durable by one fsync.
    #[serde(default = "default_max_batch_bytes")]
    pub max_batch_bytes: usize,
    /// Memory for the spool's page cache, in octets.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        SpoolConfig {
            path: default_spool_path(),
            max_batch: default_max_batch(),
            max_batch_bytes: default_max_batch_bytes(),
            cache_capacity: default_cache_capacity(),
        }
    }
}

/// `[server]`: process-wide settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Most SMTP connections at once, over all listeners; more get `421 4.3.2`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long sessions may take to finish after SIGTERM before the process exits anyway.
    #[serde(default = "default_shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
    /// Most `Received:` fields a message may arrive with; one that has more is refused with
    /// `554 5.4.6` (a mail loop, RFC 5321 section 6.3).
    #[serde(default = "default_max_hops")]
    pub max_hops: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: default_max_connections(),
            shutdown_grace: default_shutdown_grace(),
            max_hops: default_max_hops(),
        }
    }
}

/// `[[listener]]`: one SMTP listening socket and its policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    /// Address and port to listen on.
    pub address: SocketAddr,
    /// Client networks that may relay without AUTH.
    #[serde(default = "default_relay_networks")]
    pub relay_networks: Vec<IpNet>,
    /// Largest message accepted, in octets (advertised with SIZE).
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u64,
    /// Most recipients per message; more get `452 4.5.3`.
    #[serde(default = "default_max_recipients")]
    pub max_recipients: usize,
    /// Longest line of message text, CRLF included (RFC 5321: 1000).
    #[serde(default = "default_max_line_length")]
    pub max_line_length: usize,
    /// PEM certificate chain for STARTTLS; with `tls_private_key`. Absent: a self-signed
    /// certificate for `hostname` is made at start.
    pub tls_certificate: Option<PathBuf>,
    /// PEM private key for STARTTLS.
    pub tls_private_key: Option<PathBuf>,
    /// Most connections at once from one client address; more get `421 4.3.2`.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Protocol errors before the session is closed with `421 4.7.0`.
    #[serde(default = "default_max_errors")]
    pub max_errors: u32,
    /// Wait for a command (RFC 5321 4.5.3.2.7 asks for at least 5 minutes).
    #[serde(default = "default_command_timeout", with = "duration")]
    pub command_timeout: Duration,
    /// Wait for each block of message data (RFC 5321 4.5.3.2.5: 3 minutes).
    #[serde(default = "default_data_timeout", with = "duration")]
    pub data_timeout: Duration,
    /// Wait before the greeting; a client that talks during it is refused (`554 5.5.1`).
    /// 0 keeps only the immediate check of data sent before the greeting.
    #[serde(default, with = "duration")]
    pub greeting_delay: Duration,
    /// Require STARTTLS before MAIL (submission-style listeners).
    #[serde(default)]
    pub require_tls: bool,
    /// Connections the kernel queues for `accept` (the `listen(2)` backlog; Linux caps it
    /// at `net.core.somaxconn`). Too small and a burst of connections overflows it: the
    /// kernel drops their handshakes and clients wait for retransmissions.
    #[serde(default = "default_backlog")]
    pub backlog: u32,
}

/// `[[user]]`: a relay client that authenticates with AUTH PLAIN or LOGIN.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// The user name.
    pub name: String,
    /// A PHC password hash (argon2, e.g. from `mta hash-password`); never the plain password.
    pub password_hash: String,
}

fn default_hostname() -> String {
    "localhost".to_owned()
}
fn default_spool_path() -> PathBuf {
    PathBuf::from("data/spool")
}
fn default_max_batch() -> usize {
    queue::SpoolConfig::default().max_batch
}
fn default_max_batch_bytes() -> usize {
    queue::SpoolConfig::default().max_batch_bytes
}
fn default_true() -> bool {
    true
}
fn default_max_age() -> Duration {
    Duration::from_secs(5 * 86_400)
}
fn default_retry_initial() -> Duration {
    Duration::from_secs(300)
}
fn default_retry_max() -> Duration {
    Duration::from_secs(4 * 3600)
}
fn default_smtp_port() -> u16 {
    25
}
fn default_site_connections() -> usize {
    10
}
fn default_deliveries_per_connection() -> usize {
    100
}
fn default_spool_retry() -> Duration {
    Duration::from_secs(60)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_data_end_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_ready_queue_capacity() -> usize {
    10_000
}
fn default_retry_jitter() -> f64 {
    0.2
}
fn default_starvation_limit() -> u32 {
    10
}
fn default_cache_capacity() -> u64 {
    queue::SpoolConfig::default().cache_capacity
}
fn default_max_connections() -> usize {
    4000
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(30)
}
fn default_max_hops() -> usize {
    50
}
fn default_listeners() -> Vec<ListenerConfig> {
    vec![ListenerConfig::new(
        "127.0.0.1:2525".parse().expect("literal address"),
    )]
}
fn default_relay_networks() -> Vec<IpNet> {
    vec![
        "127.0.0.0/8".parse().expect("literal network"),
        "::1/128".parse().expect("literal network"),
    ]
}
fn default_max_message_size() -> u64 {
    50 * 1024 * 1024
}
fn default_max_recipients() -> usize {
    1000
}
fn default_max_line_length() -> usize {
    smtp_proto::limits::MAX_TEXT_LINE
}
fn default_max_connections_per_ip() -> usize {
    200
}
fn default_max_errors() -> u32 {
    20
}
fn default_command_timeout() -> Duration {
    Duration::from_secs(300)
}
fn default_data_timeout() -> Duration {
    Duration::from_secs(180)
}

fn default_backlog() -> u32 {
    4096
}

impl ListenerConfig {
    /// A listener on `address` with every other key at its default.
    pub fn new(address: SocketAddr) -> Self {
        ListenerConfig {
            address,
            relay_networks: default_relay_networks(),
            max_message_size: default_max_message_size(),
            max_recipients: default_max_recipients(),
            max_line_length: default_max_line_length(),
            tls_certificate: None,
            tls_private_key: None,
            max_connections_per_ip: default_max_connections_per_ip(),
            max_errors: default_max_errors(),
            command_timeout: default_command_timeout(),
            data_timeout: default_data_timeout(),
            greeting_delay: Duration::ZERO,
            require_tls: false,
            backlog: default_backlog(),
        }
    }
}

impl Config {
    /// Parses and validates a configuration from TOML text (relative paths from the working
    /// directory).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_in(text, PathBuf::from("."))
    }

    fn parse_toml(text: &str) -> Result<Config, ConfigError> {
        let deserializer =
            toml::Deserializer::parse(text).map_err(|source| ConfigError::Parse {
                path: ".".to_owned(),
                source,
            })?;
        let config: Config =
            serde_path_to_error::deserialize(deserializer).map_err(|e| ConfigError::Parse {
                path: e.path().to_string(),
                source: e.into_inner(),
            })?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file; relative DKIM key paths are taken
    /// from the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        Config::from_toml_in(&text, base_dir)
    }

    /// Parses and validates TOML text whose relative paths are relative to `base_dir`.
    pub fn from_toml_in(text: &str, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let mut config = Config::parse_toml(text)?;
        config.base_dir = base_dir;
        config.validate()?;
        Ok(config)
    }

    /// The DKIM signer this configuration describes (keys loaded and parsed).
    pub fn signer(&self) -> Result<dkim::Signer, dkim::DkimError> {
        dkim::Signer::from_config(&self.dkim, &self.base_dir)
    }

    /// The spool's tuning as the `queue` crate takes it.
    pub fn spool_config(&self) -> queue::SpoolConfig {
        queue::SpoolConfig {
            max_batch: self.spool.max_batch,
            max_batch_bytes: self.spool.max_batch_bytes,
            cache_capacity: self.spool.cache_capacity,
            ..Default::default()
        }
    }

    /// Loads the files the configuration names, as the daemon will at start: the DKIM keys
    /// and the listeners' TLS certificates and keys. Separate from parsing so that commands
    /// that only need the admin socket (`mta ctl`) do not need to read private keys.
    pub fn check_files(&self) -> Result<(), ConfigError> {
        if let Err(error) = self.signer() {
            return Err(ConfigError::Invalid {
                key: "dkim".to_owned(),
                reason: error_chain(&error),
            });
        }
        for (i, listener) in self.listeners.iter().enumerate() {
            if let (Some(cert), Some(key)) = (&listener.tls_certificate, &listener.tls_private_key)
                && let Err(error) = crate::server::check_tls_files(cert, key)
            {
                return Err(ConfigError::Invalid {
                    key: format!("listener[{i}].tls_certificate"),
                    reason: error_chain(&error),
                });
            }
        }
        Ok(())
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Config {
        Config::from_toml(DEFAULT_CONFIG).expect("the embedded default configuration is valid")
    }

    /// Checks what the types alone do not.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(invalid("hostname", "must be a host name without spaces"));
        }
        if self.listeners.is_empty() {
            return Err(invalid("listener", "at least one listener is needed"));
        }
        let mut addresses = HashSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            let key = |k: &str| format!("listener[{i}].{k}");
            if !addresses.insert(l.address) {
                return Err(invalid(
                    &key("address"),
                    "two listeners on the same address",
                ));
            }
            if l.tls_certificate.is_some() != l.tls_private_key.is_some() {
                return Err(invalid(
                    &key("tls_certificate"),
                    "tls_certificate and tls_private_key go together",
                ));
            }
            if l.max_recipients == 0 {
                return Err(invalid(&key("max_recipients"), "must be at least 1"));
            }
            if l.max_message_size == 0 {
                return Err(invalid(&key("max_message_size"), "must be at least 1"));
            }
            if l.backlog == 0 {
                return Err(invalid(&key("backlog"), "must be at least 1"));
            }
            if l.max_line_length < smtp_proto::limits::MAX_TEXT_LINE {
                return Err(invalid(
                    &key("max_line_length"),
                    "must be at least 1000 (RFC 5321)",
                ));
            }
            if l.max_connections_per_ip == 0 || l.max_errors == 0 {
                return Err(invalid(
                    &key("max_connections_per_ip"),
                    "limits must be at least 1",
                ));
            }
            if l.command_timeout.is_zero() || l.data_timeout.is_zero() {
                return Err(invalid(
                    &key("command_timeout"),
                    "timeouts must be positive",
                ));
            }
        }
        let mut names = HashSet::new();
        for (i, u) in self.users.iter().enumerate() {
            if u.name.is_empty() || !names.insert(u.name.as_str()) {
                return Err(invalid(
                    &format!("user[{i}].name"),
                    "empty or duplicate user name",
                ));
            }
            if argon2::PasswordHash::new(&u.password_hash).is_err() {
                return Err(invalid(
                    &format!("user[{i}].password_hash"),
                    "not a PHC password hash (make one with `mta hash-password`)",
                ));
            }
        }
        for (i, d) in self.accept_domains.iter().enumerate() {
            if smtp_proto::Mailbox::parse(&format!("postmaster@{d}")).is_err() {
                return Err(invalid(
                    &format!("accept_domains[{i}]"),
                    "not a valid domain",
                ));
            }
        }
        if self.server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if self.server.max_hops == 0 {
            return Err(invalid("server.max_hops", "must be at least 1"));
        }
        let d = &self.delivery;
        if d.retry_initial.is_zero() || d.retry_max < d.retry_initial {
            return Err(invalid(
                "delivery.retry_max",
                "retry_initial must be positive and at most retry_max",
            ));
        }
        if d.max_age.is_zero() {
            return Err(invalid("delivery.max_age", "must be positive"));
        }
        if d.spool_retry.is_zero() {
            return Err(invalid("delivery.spool_retry", "must be positive"));
        }
        if !(0.0..=1.0).contains(&d.retry_jitter) {
            return Err(invalid("delivery.retry_jitter", "must be between 0 and 1"));
        }
        if d.ready_queue_starvation_limit == 0 {
            return Err(invalid(
                "delivery.ready_queue_starvation_limit",
                "must be at least 1",
            ));
        }
        if d.max_connections == 0
            || d.max_deliveries_per_connection == 0
            || d.ready_queue_capacity == 0
        {
            return Err(invalid(
                "delivery.max_connections",
                "limits must be at least 1",
            ));
        }
        let mut provider_names = HashSet::new();
        for (i, p) in self.providers.iter().enumerate() {
            if p.name.is_empty() || !provider_names.insert(p.name.as_str()) {
                return Err(invalid(
                    &format!("provider[{i}].name"),
                    "empty or duplicate provider name",
                ));
            }
            if p.mx_suffixes.is_empty()
                || p.mx_suffixes.iter().any(|s| s.trim_matches('.').is_empty())
            {
                return Err(invalid(
                    &format!("provider[{i}].mx_suffixes"),
                    "at least one non-empty suffix",
                ));
            }
            if p.max_connections == Some(0) || p.max_deliveries_per_connection == Some(0) {
                return Err(invalid(
                    &format!("provider[{i}].max_connections"),
                    "limits must be at least 1",
                ));
            }
        }
        self.dns
            .validate()
            .map_err(|e| invalid("dns", &e.to_string()))?;
        self.delivery_log
            .validate()
            .map_err(|e| invalid("delivery_log", &e.to_string()))?;
        self.admin
            .validate()
            .map_err(|e| invalid(e.key, e.reason))?;
        if let Err(error) = self.ipwarm().validate() {
            let key = error.key().unwrap_or("ipwarm").to_owned();
            return Err(ConfigError::Invalid {
                key,
                reason: error.to_string(),
            });
        }
        match self.spool_config().validate() {
            Ok(()) => {}
            Err(queue::SpoolError::InvalidConfig { key, requirement }) => {
                return Err(invalid(&format!("spool.{key}"), requirement));
            }
            Err(error) => return Err(invalid("spool", &error_chain(&error))),
        }
        if let Err(reason) = Routes::new(&self.routes) {
            let (key, reason) = reason
                .split_once(": ")
                .unwrap_or(("route", reason.as_str()));
            return Err(invalid(key, reason));
        }
        Ok(())
    }
}

impl Config {
    /// The egress, warmup, classification, reputation and suppression settings, as `ipwarm`
    /// takes them.
    pub fn ipwarm(&self) -> ipwarm::IpwarmConfig {
        ipwarm::IpwarmConfig {
            sources: self.sources.clone(),
            pools: self.pools.clone(),
            tenants: self.tenants.clone(),
            warmup: self.warmup.clone(),
            classify: self.classify.clone(),
            classify_builtin: self.classify_builtin,
            reputation: self.reputation.clone(),
            suppression: self.suppression.clone(),
        }
    }
}

/// Durations written as `"30s"`, `"5m"`, `"4h"`, `"5d"` (humantime syntax), for every
/// section of the configuration.
pub(crate) mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_the_documented_one() {
        let config = Config::embedded_default();
        assert_eq!(config.spool.path, PathBuf::from("data/spool"));
        assert_eq!(config.listeners.len(), 1);
        let listener = &config.listeners[0];
        assert_eq!(listener.address, "127.0.0.1:2525".parse().unwrap());
        assert!(
            listener
                .relay_networks
                .iter()
                .any(|n| n.contains(&"127.0.0.1".parse::<std::net::IpAddr>().unwrap()))
        );
        assert_eq!(listener.max_message_size, 52_428_800);
        assert_eq!(listener.max_recipients, 1000);
    }

    #[test]
    fn the_operator_surface_parses_as_written() {
        let text = r#"
hostname = "mta.example.net"
accept_domains = ["bounces.example.net"]
[spool]
path = "data/spool"
[[listener]]
address = "127.0.0.1:2525"
relay_networks = ["127.0.0.0/8", "::1/128"]
max_message_size = 52428800
max_recipients = 1000
command_timeout = "5m"
[[listener]]
address = "127.0.0.1:2526"
relay_networks = []
[[user]]
name = "app"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$0PgN8yc0x4Zk1Fs3xsStj6e1Gxcnw4wDQ0cRBK3E1bA"
"#;
        let config = Config::from_toml(text).unwrap();
        assert_eq!(config.hostname, "mta.example.net");
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(
            config.listeners[0].command_timeout,
            Duration::from_secs(300)
        );
        assert!(config.listeners[1].relay_networks.is_empty());
        assert_eq!(config.users[0].name, "app");
    }

    #[test]
    fn unknown_keys_are_reported_with_their_path() {
        let cases = [
            ("hostnme = \"x\"", "hostnme"),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\nmax_mesage_size = 1",
                "listener[0]",
            ),
            ("[spool]\npaht = \"x\"", "spool"),
        ];
        for (text, path) in cases {
            let err = Config::from_toml(text).unwrap_err();
            let message = err.to_string();
            assert!(message.contains(path), "{message}");
            assert!(message.contains("unknown field"), "{message}");
        }
    }

    #[test]
    fn invalid_values_are_refused() {
        let cases = [
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\n[[listener]]\naddress = \"127.0.0.1:25\"",
                "listener[1].address",
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\ntls_certificate = \"c.pem\"",
                "listener[0].tls_certificate",
            ),
            (
                "[[user]]\nname = \"app\"\npassword_hash = \"secret\"",
                "user[0].password_hash",
            ),
            ("accept_domains = [\"bad..domain\"]", "accept_domains[0]"),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\ncommand_timeout = \"soon\"",
                "listener[0].command_timeout",
            ),
            (
                "[[listener]]\naddress = \"not an address\"",
                "listener[0].address",
            ),
            (
                "[[listener]]\naddress = \"127.0.0.1:25\"\nbacklog = 0",
                "listener[0].backlog",
            ),
        ];
        for (text, key) in cases {
            let err = Config::from_toml(text).unwrap_err();
            assert!(err.to_string().starts_with(key), "{key}: {err}");
        }
    }
}
