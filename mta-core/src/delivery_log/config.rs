//! `[delivery_log]`: where the JSON delivery log goes and when it is rotated.
//!
//! Invariants: unknown keys are rejected; [`DeliveryLogConfig::validate`] refuses a zero
//! channel capacity and a rotation interval under one second.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::LogError;

/// `[delivery_log]`: the JSON-lines delivery log.
///
/// ```toml
/// [delivery_log]
/// path = "data/log/delivery.jsonl"
/// rotate_size = 104857600     # bytes; 0: never by size
/// rotate_interval = "1d"      # or "none"
/// keep = 10
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryLogConfig {
    /// Write the log at all. Off: [`DeliveryLog::log`](super::DeliveryLog::log) discards.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// The live file; its directory is created if missing. Rotated files are named
    /// `<path>.<UTC time>` beside it.
    #[serde(default = "default_path")]
    pub path: PathBuf,
    /// Rotate once the live file reaches this many bytes (checked after each record, so a
    /// file ends on a whole line). 0: never by size.
    #[serde(default = "default_rotate_size")]
    pub rotate_size: u64,
    /// Also rotate at every multiple of this interval since the Unix epoch (UTC): `"1d"`
    /// rotates at midnight UTC, `"1h"` on the hour. `"none"` (the default): never by time.
    #[serde(default, with = "optional_duration")]
    pub rotate_interval: Option<Duration>,
    /// Rotated files kept; older ones are deleted after each rotation. 0 keeps none.
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Records that may wait for the writer thread. When they are all taken, new records are
    /// dropped and counted (`delivery_log_dropped_total`): logging never blocks delivery.
    #[serde(default = "default_channel_capacity")]
    pub channel_capacity: usize,
}

impl Default for DeliveryLogConfig {
    fn default() -> Self {
        DeliveryLogConfig {
            enabled: default_enabled(),
            path: default_path(),
            rotate_size: default_rotate_size(),
            rotate_interval: None,
            keep: default_keep(),
            channel_capacity: default_channel_capacity(),
        }
    }
}

impl DeliveryLogConfig {
    /// Checks what the types alone do not; the error names the offending key.
    pub fn validate(&self) -> Result<(), LogError> {
        let invalid =
            |key: &'static str, reason: &'static str| Err(LogError::InvalidConfig { key, reason });
        if self.channel_capacity == 0 {
            return invalid("delivery_log.channel_capacity", "must be at least 1");
        }
        if self
            .rotate_interval
            .is_some_and(|i| i < Duration::from_secs(1))
        {
            return invalid("delivery_log.rotate_interval", "must be at least 1s");
        }
        if self.path.file_name().is_none() {
            return invalid("delivery_log.path", "must name a file");
        }
        Ok(())
    }
}

fn default_enabled() -> bool {
    true
}
fn default_path() -> PathBuf {
    PathBuf::from("data/log/delivery.jsonl")
}
fn default_rotate_size() -> u64 {
    100 * 1024 * 1024
}
fn default_keep() -> usize {
    10
}
fn default_channel_capacity() -> usize {
    65_536
}

/// `"1d"`, `"6h"` (humantime syntax) or `"none"`.
mod optional_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(None);
        }
        humantime::parse_duration(&text)
            .map(Some)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_keys() {
        let empty: DeliveryLogConfig = toml::from_str("").unwrap();
        assert_eq!(empty, DeliveryLogConfig::default());
        assert!(empty.enabled);
        assert_eq!(empty.path, PathBuf::from("data/log/delivery.jsonl"));
        assert_eq!(empty.rotate_size, 104_857_600);
        assert_eq!(empty.rotate_interval, None);
        assert_eq!(empty.keep, 10);
        empty.validate().unwrap();

        let table = [
            (
                "rotate_interval = \"1d\"",
                Some(Duration::from_secs(86_400)),
            ),
            (
                "rotate_interval = \"6h\"",
                Some(Duration::from_secs(21_600)),
            ),
            ("rotate_interval = \"none\"", None),
        ];
        for (text, interval) in table {
            let config: DeliveryLogConfig = toml::from_str(text).unwrap();
            assert_eq!(config.rotate_interval, interval, "{text}");
        }
        let full: DeliveryLogConfig = toml::from_str(
            "enabled = false\npath = \"/var/log/mta/d.jsonl\"\nrotate_size = 0\nkeep = 3\n\
             channel_capacity = 10",
        )
        .unwrap();
        assert!(!full.enabled);
        assert_eq!(full.rotate_size, 0);
        assert_eq!(full.keep, 3);
        assert_eq!(full.channel_capacity, 10);
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "rotate_size = \"100MiB\"",
            "rotate_interval = \"daily\"",
            "pth = \"x\"",
        ] {
            assert!(toml::from_str::<DeliveryLogConfig>(text).is_err(), "{text}");
        }
        let table = [
            ("channel_capacity = 0", "delivery_log.channel_capacity"),
            (
                "rotate_interval = \"500ms\"",
                "delivery_log.rotate_interval",
            ),
            ("path = \"/\"", "delivery_log.path"),
        ];
        for (text, key) in table {
            let config: DeliveryLogConfig = toml::from_str(text).unwrap();
            match config.validate() {
                Err(LogError::InvalidConfig { key: k, .. }) => assert_eq!(k, key),
                other => panic!("{text}: {other:?}"),
            }
        }
    }
}
