//! The crate's errors: a configuration value is wrong, or a snapshot cannot be restored.
//!
//! Nothing at run time fails: a throttle that says "not now" answers with a value
//! ([`Permit`](crate::Permit), [`Decision`](crate::Decision)), not an error.

/// Errors of ipwarm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpwarmError {
    /// A configuration value is invalid. `key` names it as written in the configuration file,
    /// with list indices (`source[1].warmup`, `warmup.standard.daily[3]`, `classify[0].text`).
    #[error("invalid configuration: {key}: {problem}")]
    InvalidConfig {
        /// The key, as a path into the configuration.
        key: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A snapshot is not valid JSON of the expected shape.
    #[error("invalid {what} snapshot")]
    Snapshot {
        /// Which state the snapshot was for (`reputation`, `suppression`).
        what: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A snapshot was written by a version of this crate that this one cannot read.
    #[error(
        "{what} snapshot version {found} is not supported (this build reads version {supported})"
    )]
    SnapshotVersion {
        /// Which state the snapshot was for.
        what: &'static str,
        /// The version found in the snapshot.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },
}

impl IpwarmError {
    /// An [`IpwarmError::InvalidConfig`].
    pub(crate) fn config(key: impl Into<String>, problem: impl Into<String>) -> IpwarmError {
        IpwarmError::InvalidConfig {
            key: key.into(),
            problem: problem.into(),
        }
    }

    /// The configuration key an [`IpwarmError::InvalidConfig`] is about.
    pub fn key(&self) -> Option<&str> {
        match self {
            IpwarmError::InvalidConfig { key, .. } => Some(key),
            _ => None,
        }
    }
}
