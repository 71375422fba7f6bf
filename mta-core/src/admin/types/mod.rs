//! The JSON of the admin API: every request and response body, shared by the server
//! (`admin`) and the client (`ctl`).
//!
//! Conventions: field names are `snake_case`; times are RFC 3339 strings in UTC with
//! seconds (`"2026-03-01T12:00:00Z"`); durations are humantime strings (`"1h"`, `"30m"`,
//! `"2d"`); absent optional values are `null` in responses and may be left out of requests.
//! Request bodies reject unknown fields, so a misspelt criterion (`"tennant"`) is an error,
//! never a silently wider selection.

mod action;
mod filter;
mod health;
mod message;
mod pools;
mod quarantine;
mod queue;
mod suppression;
mod suspension;

pub use action::{
    ActionCount, ApiErrorBody, BounceRequest, BounceResult, FlushRequest, ReloadReport,
};
pub use filter::{Filter, ValidationError};
pub use health::{ComponentHealth, Health, HealthStatus};
pub use message::{MessagePriority, MessageView, RecipientStatus, RecipientView};
pub use pools::{PoolsView, ProviderUse, SourceView, Throttle, ThrottleState, Warmup};
pub use quarantine::{Discarded, MAX_QUARANTINE_LIST, QuarantineEntry, QuarantineList};
pub use queue::{
    AGE_BUCKETS, AgeBucket, NO_TENANT, QueueEntry, QueueQuery, QueueSummary, QueueSummaryBuilder,
    ShapeRow, ShapeTable, UNASSIGNED_SOURCE, UNKNOWN_PROVIDER, UNROUTED_PROVIDER,
};
pub use suppression::{
    NewSuppression, NewSuppressions, Suppression, SuppressionChange, SuppressionKey,
    SuppressionOrigin, SuppressionPage, SuppressionQuery,
};
pub use suspension::{NewSuspension, Resumed, Suspension, SuspensionList, SuspensionScope};

/// Times as RFC 3339 strings (`"2026-03-01T12:00:00Z"`, whole seconds, UTC).
pub(crate) mod rfc3339 {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(*time))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<SystemTime>` (`null` when absent).
    pub(crate) mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub(crate) fn serialize<S: Serializer>(
            time: &Option<SystemTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => s.collect_str(&humantime::format_rfc3339_seconds(*time)),
                None => s.serialize_none(),
            }
        }

        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| humantime::parse_rfc3339_weak(&text).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

/// Durations as humantime strings (`"1h"`, `"90m"`, `"2d"`); written back in humantime's
/// canonical form (`"1h 30m"`).
pub(crate) mod humantime_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*duration))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Checks a name used as a criterion (domain, provider, source, tenant, campaign): not
/// empty, at most [`MAX_NAME_LEN`](super::limits::MAX_NAME_LEN) octets, visible ASCII or
/// UTF-8 without spaces or control characters.
pub(crate) fn check_name(what: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    if value.len() > super::limits::MAX_NAME_LEN {
        return Err(ValidationError::TooLong {
            what,
            max: super::limits::MAX_NAME_LEN,
        });
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::BadCharacter { what });
    }
    Ok(())
}

/// A domain as compared everywhere: lower-case ASCII, without a trailing dot.
pub(crate) fn normalize_domain(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}
