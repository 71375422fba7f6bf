//! [`Filter`]: the slice of the queue an action or a summary applies to, and
//! [`ValidationError`], why a request's values are refused.
//!
//! Invariants: a filter reaching the backend has been validated (every value a bounded name,
//! the domain lower-case without a trailing dot); an empty filter reaches `flush` and `bounce`
//! only when the request said `"all": true`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::queue::{NO_TENANT, QueueEntry, UNASSIGNED_SOURCE, UNROUTED_PROVIDER};
use super::{check_name, normalize_domain};

/// Which queued recipients something applies to. Every criterion given must match (AND);
/// an empty filter matches everything. Keys shown in the queue summary work as values:
/// `"provider": "other"` selects sites without a provider rule, `"provider": "(unrouted)"`
/// and `"source": "(unassigned)"` mail not routed yet, `"tenant": "(none)"` mail without a
/// tenant.
///
/// ```json
/// {"provider": "gmail", "tenant": "acme"}
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// The recipient domain (`example.com`; compared without case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The mailbox provider the domain's MX hosts belong to (`gmail`), or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The egress source (IP) the mail leaves from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The tenant (`X-MTA-Tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The campaign (`X-MTA-Campaign`); campaign names are the tenant's, so this is usually
    /// given with `tenant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
}

/// Why a request's values are refused (answered `400` with this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A name is empty.
    #[error("{what} must not be empty")]
    Empty {
        /// Which value.
        what: &'static str,
    },
    /// A value is longer than its bound.
    #[error("{what} is longer than {max} characters")]
    TooLong {
        /// Which value.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// A name contains spaces or control characters.
    #[error("{what} must not contain spaces or control characters")]
    BadCharacter {
        /// Which value.
        what: &'static str,
    },
    /// An action on the whole queue without saying so.
    #[error(
        "no filter given: name a domain, provider, source, tenant or campaign, or send \"all\": true to act on the whole queue"
    )]
    NoCriteria,
    /// `"all": true` together with criteria (ambiguous: all of what?).
    #[error("\"all\": true cannot be combined with filter criteria")]
    AllWithCriteria,
    /// A suspension scope names nothing, or more than one thing.
    #[error("a scope names exactly one of domain, provider, source or tenant")]
    Scope,
    /// A campaign scope without its tenant.
    #[error("a campaign scope needs its tenant")]
    CampaignWithoutTenant,
    /// A duration of zero or over the bound.
    #[error("duration must be between 1s and {max}")]
    Duration {
        /// The longest allowed, in humantime form.
        max: String,
    },
    /// An id that cannot be one.
    #[error("not a valid id")]
    Id,
    /// A number over its bound.
    #[error("{what} must be between 1 and {max}")]
    Range {
        /// Which value.
        what: &'static str,
        /// The bound.
        max: usize,
    },
}

impl Filter {
    /// `true` when no criterion is given (the filter matches everything).
    pub fn is_empty(&self) -> bool {
        self.domain.is_none()
            && self.provider.is_none()
            && self.source.is_none()
            && self.tenant.is_none()
            && self.campaign.is_none()
    }

    /// Whether a queued entry is in the slice. The domain is compared without case; other
    /// names exactly, with the placeholders of [`QueueEntry`] for absent values.
    pub fn matches(&self, entry: &QueueEntry<'_>) -> bool {
        fn is(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|want| want == have)
        }
        if let Some(domain) = &self.domain {
            let have = entry.domain.trim_end_matches('.');
            if !have.eq_ignore_ascii_case(domain) {
                return false;
            }
        }
        is(&self.provider, entry.provider.unwrap_or(UNROUTED_PROVIDER))
            && is(&self.source, entry.source.unwrap_or(UNASSIGNED_SOURCE))
            && is(&self.tenant, entry.tenant.unwrap_or(NO_TENANT))
            && self
                .campaign
                .as_deref()
                .is_none_or(|want| entry.campaign == Some(want))
    }

    /// Checks every value and normalises the domain.
    pub(crate) fn validated(mut self) -> Result<Filter, ValidationError> {
        for (what, value) in [
            ("domain", &self.domain),
            ("provider", &self.provider),
            ("source", &self.source),
            ("tenant", &self.tenant),
            ("campaign", &self.campaign),
        ] {
            if let Some(value) = value {
                check_name(what, value)?;
            }
        }
        self.domain = self.domain.as_deref().map(normalize_domain);
        if self.domain.as_deref() == Some("") {
            return Err(ValidationError::Empty { what: "domain" });
        }
        Ok(self)
    }

    /// A validated filter for an action: criteria, or `all` alone.
    pub(crate) fn selection(self, all: bool) -> Result<Filter, ValidationError> {
        let filter = self.validated()?;
        match (filter.is_empty(), all) {
            (true, false) => Err(ValidationError::NoCriteria),
            (false, true) => Err(ValidationError::AllWithCriteria),
            _ => Ok(filter),
        }
    }
}

impl fmt::Display for Filter {
    /// `provider=gmail tenant=acme`, or `everything` for the empty filter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("everything");
        }
        let mut first = true;
        for (key, value) in [
            ("domain", &self.domain),
            ("provider", &self.provider),
            ("source", &self.source),
            ("tenant", &self.tenant),
            ("campaign", &self.campaign),
        ] {
            if let Some(value) = value {
                if !first {
                    f.write_str(" ")?;
                }
                write!(f, "{key}={value}")?;
                first = false;
            }
        }
        Ok(())
    }
}
