//! The scheduler's error: only configuration can be wrong.
//!
//! The queues themselves have no failure mode besides "full", which is a value
//! ([`ReadyQueue::push`](super::ReadyQueue::push) gives the job back), not an error.

/// Errors of the scheduler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SchedulerError {
    /// A configuration value is out of range. `key` is the name of the key in the
    /// `[delivery]` section of the configuration.
    #[error("invalid delivery configuration: {key} {requirement}")]
    InvalidConfig {
        /// The configuration key.
        key: &'static str,
        /// What the value must satisfy.
        requirement: &'static str,
    },
}
