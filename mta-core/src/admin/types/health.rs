//! Health (`GET /v1/health`): whether the MTA works, component by component.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The response of `GET /v1/health` (HTTP 200 unless `failing`, then 503).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The worst status of any component.
    pub status: HealthStatus,
    /// The MTA's version.
    pub version: String,
    /// When the daemon started.
    #[serde(with = "super::rfc3339")]
    pub started_at: SystemTime,
    /// Each component (spool, delivery, listeners, delivery log, ...).
    pub components: Vec<ComponentHealth>,
}

/// How well something works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Working.
    Ok,
    /// Working with a problem an operator should look at (e.g. log records dropped).
    Degraded,
    /// Not working (e.g. the spool cannot be written, or the daemon is stopping).
    Failing,
}

/// One component's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentHealth {
    /// Its name (`spool`, `delivery`).
    pub name: String,
    /// Its status.
    pub status: HealthStatus,
    /// What is wrong, or a figure worth knowing.
    pub detail: Option<String>,
}

impl Health {
    /// A report whose status is the worst of its components' (`ok` when there are none).
    pub fn from_components(
        version: impl Into<String>,
        started_at: SystemTime,
        components: Vec<ComponentHealth>,
    ) -> Health {
        Health {
            status: components
                .iter()
                .map(|c| c.status)
                .max()
                .unwrap_or(HealthStatus::Ok),
            version: version.into(),
            started_at,
            components,
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthStatus::Ok => "ok",
            HealthStatus::Degraded => "degraded",
            HealthStatus::Failing => "failing",
        })
    }
}
