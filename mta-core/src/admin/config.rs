//! `[admin]`: where the admin API listens and the token that guards it over TCP.
//!
//! Invariants: unknown keys are rejected; TCP is off unless `address` is set, and then it
//! must be a loopback address and a `token` of at least [`MIN_TOKEN_LEN`] visible ASCII
//! characters is required; the token never appears in `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::limits::{MAX_TOKEN_LEN, MIN_TOKEN_LEN};

/// `[admin]`: the admin API (HTTP/JSON) on a Unix socket, and optionally on loopback TCP.
///
/// ```toml
/// [admin]
/// socket = "data/admin.sock"     # always on, mode 0600: whoever can open it is an admin
/// # address = "127.0.0.1:8025"   # optional loopback TCP listener ...
/// # token = "a long random string" # ... which then requires a bearer token
/// ```
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// The Unix socket of the admin API and of `mta ctl`. Its directory is created if
    /// missing; the socket is made with mode 0600 (owner only). A stale socket left by a
    /// process that died is removed at start; a live one makes the start fail.
    #[serde(default = "default_socket")]
    pub socket: PathBuf,
    /// Also listen on this loopback TCP address (for Prometheus and HTTP tools). Off by
    /// default.
    #[serde(default)]
    pub address: Option<SocketAddr>,
    /// The bearer token required over TCP for everything but `GET /metrics` and
    /// `GET /v1/health`. Required when `address` is set. Never logged.
    #[serde(default)]
    pub token: Option<String>,
}

/// Why an `[admin]` section cannot be used; `key` is the full key path (`admin.token`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct AdminConfigError {
    /// The key the problem is about.
    pub key: &'static str,
    /// What is wrong.
    pub reason: &'static str,
}

fn default_socket() -> PathBuf {
    PathBuf::from("data/admin.sock")
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            socket: default_socket(),
            address: None,
            token: None,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("socket", &self.socket)
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl AdminConfig {
    /// Checks what the types alone do not: a usable socket path, a loopback TCP address,
    /// and a strong enough token whenever TCP is on.
    pub fn validate(&self) -> Result<(), AdminConfigError> {
        let invalid = |key, reason| Err(AdminConfigError { key, reason });
        if self.socket.as_os_str().is_empty() || self.socket.file_name().is_none() {
            return invalid("admin.socket", "must be a file path");
        }
        if let Some(address) = self.address {
            if !address.ip().is_loopback() {
                return invalid(
                    "admin.address",
                    "must be a loopback address (127.0.0.0/8 or ::1): the admin API is not for the network",
                );
            }
            if self.token.is_none() {
                return invalid("admin.token", "required when admin.address is set");
            }
        }
        if let Some(token) = &self.token {
            if token.len() < MIN_TOKEN_LEN || token.len() > MAX_TOKEN_LEN {
                return invalid("admin.token", "must be 16 to 256 characters long");
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return invalid(
                    "admin.token",
                    "must be visible ASCII characters, without spaces",
                );
            }
        }
        Ok(())
    }
}
