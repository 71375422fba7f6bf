//! Suspensions (`/v1/suspend`): delivery to a slice of the queue paused for a while, by
//! recipient domain, provider, egress source, or tenant (optionally one of its campaigns).
//! Suspended mail stays queued; it is neither tried nor expired early, and resumes when the
//! suspension ends or is lifted.

use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::filter::ValidationError;
use super::{check_name, normalize_domain};
use crate::admin::limits::{MAX_REASON_LEN, MAX_SUSPENSION};

/// What a suspension applies to: exactly one of a domain, a provider, a source, or a tenant
/// (with an optional campaign). In JSON, an object with that one key (and `campaign` beside
/// `tenant`):
///
/// ```json
/// {"provider": "gmail"}
/// {"tenant": "acme", "campaign": "spring-sale"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "ScopeFields", into = "ScopeFields")]
pub enum SuspensionScope {
    /// A recipient domain (lower-case, without a trailing dot).
    Domain(String),
    /// A mailbox provider (`gmail`), or `other`.
    Provider(String),
    /// An egress source.
    Source(String),
    /// A tenant, or one campaign of it.
    Tenant {
        /// The tenant.
        tenant: String,
        /// One of its campaigns; `None`: all of the tenant's mail.
        campaign: Option<String>,
    },
}

/// The JSON form of [`SuspensionScope`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScopeFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    campaign: Option<String>,
}

impl TryFrom<ScopeFields> for SuspensionScope {
    type Error = ValidationError;

    fn try_from(f: ScopeFields) -> Result<Self, Self::Error> {
        let scope = match (f.domain, f.provider, f.source, f.tenant, f.campaign) {
            (Some(domain), None, None, None, None) => {
                check_name("domain", &domain)?;
                let domain = normalize_domain(&domain);
                if domain.is_empty() {
                    return Err(ValidationError::Empty { what: "domain" });
                }
                SuspensionScope::Domain(domain)
            }
            (None, Some(provider), None, None, None) => {
                check_name("provider", &provider)?;
                SuspensionScope::Provider(provider)
            }
            (None, None, Some(source), None, None) => {
                check_name("source", &source)?;
                SuspensionScope::Source(source)
            }
            (None, None, None, Some(tenant), campaign) => {
                check_name("tenant", &tenant)?;
                if let Some(campaign) = &campaign {
                    check_name("campaign", campaign)?;
                }
                SuspensionScope::Tenant { tenant, campaign }
            }
            (None, None, None, None, Some(_)) => {
                return Err(ValidationError::CampaignWithoutTenant);
            }
            _ => return Err(ValidationError::Scope),
        };
        Ok(scope)
    }
}

impl From<SuspensionScope> for ScopeFields {
    fn from(scope: SuspensionScope) -> Self {
        let mut f = ScopeFields::default();
        match scope {
            SuspensionScope::Domain(d) => f.domain = Some(d),
            SuspensionScope::Provider(p) => f.provider = Some(p),
            SuspensionScope::Source(s) => f.source = Some(s),
            SuspensionScope::Tenant { tenant, campaign } => {
                f.tenant = Some(tenant);
                f.campaign = campaign;
            }
        }
        f
    }
}

impl fmt::Display for SuspensionScope {
    /// `provider gmail`, `tenant acme/spring-sale`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuspensionScope::Domain(d) => write!(f, "domain {d}"),
            SuspensionScope::Provider(p) => write!(f, "provider {p}"),
            SuspensionScope::Source(s) => write!(f, "source {s}"),
            SuspensionScope::Tenant {
                tenant,
                campaign: None,
            } => write!(f, "tenant {tenant}"),
            SuspensionScope::Tenant {
                tenant,
                campaign: Some(c),
            } => write!(f, "tenant {tenant}/{c}"),
        }
    }
}

/// The body of `POST /v1/suspend`.
///
/// ```json
/// {"scope": {"provider": "gmail"}, "duration": "1h", "reason": "421 rate limited since 09:10"}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuspension {
    /// What to suspend.
    pub scope: SuspensionScope,
    /// For how long (1 second to 30 days), e.g. `"1h"`.
    #[serde(with = "super::humantime_duration")]
    pub duration: Duration,
    /// Why (required, up to 500 characters): shown in listings and logged.
    pub reason: String,
}

impl NewSuspension {
    /// Checks the duration and reason (the scope is checked when parsed).
    pub(crate) fn validated(self) -> Result<NewSuspension, ValidationError> {
        if self.duration < Duration::from_secs(1) || self.duration > MAX_SUSPENSION {
            return Err(ValidationError::Duration {
                max: humantime::format_duration(MAX_SUSPENSION).to_string(),
            });
        }
        let reason = self.reason.trim();
        if reason.is_empty() {
            return Err(ValidationError::Empty { what: "reason" });
        }
        if reason.chars().count() > MAX_REASON_LEN {
            return Err(ValidationError::TooLong {
                what: "reason",
                max: MAX_REASON_LEN,
            });
        }
        if reason.chars().any(char::is_control) {
            return Err(ValidationError::BadCharacter { what: "reason" });
        }
        Ok(NewSuspension {
            reason: reason.to_owned(),
            ..self
        })
    }
}

/// A suspension in force (the response of `POST /v1/suspend`, and the items of
/// `GET /v1/suspend`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// Its id, for `DELETE /v1/suspend/{id}` (`mta ctl resume ID`).
    pub id: String,
    /// What is suspended.
    pub scope: SuspensionScope,
    /// Why.
    pub reason: String,
    /// When it was made.
    #[serde(with = "super::rfc3339")]
    pub created_at: SystemTime,
    /// When it ends by itself.
    #[serde(with = "super::rfc3339")]
    pub expires_at: SystemTime,
    /// Who made it (`unix`, `unix:uid=1000`, `tcp:127.0.0.1`).
    pub created_by: String,
}

/// The response of `GET /v1/suspend`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuspensionList {
    /// Suspensions in force, soonest to end first.
    pub suspensions: Vec<Suspension>,
}

/// The response of `DELETE /v1/suspend/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resumed {
    /// The id of the suspension lifted.
    pub resumed: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_from_one_key() {
        let cases: &[(&str, Result<SuspensionScope, &str>)] = &[
            (
                r#"{"provider":"gmail"}"#,
                Ok(SuspensionScope::Provider("gmail".into())),
            ),
            (
                r#"{"domain":"Example.COM."}"#,
                Ok(SuspensionScope::Domain("example.com".into())),
            ),
            (
                r#"{"source":"ip-1"}"#,
                Ok(SuspensionScope::Source("ip-1".into())),
            ),
            (
                r#"{"tenant":"acme","campaign":"spring"}"#,
                Ok(SuspensionScope::Tenant {
                    tenant: "acme".into(),
                    campaign: Some("spring".into()),
                }),
            ),
            (
                r#"{"tenant":"acme"}"#,
                Ok(SuspensionScope::Tenant {
                    tenant: "acme".into(),
                    campaign: None,
                }),
            ),
            (r#"{}"#, Err("exactly one")),
            (
                r#"{"provider":"gmail","domain":"x.com"}"#,
                Err("exactly one"),
            ),
            (r#"{"campaign":"spring"}"#, Err("needs its tenant")),
            (r#"{"provider":""}"#, Err("must not be empty")),
            (r#"{"provider":"g mail"}"#, Err("spaces")),
            (r#"{"tennant":"acme"}"#, Err("unknown field")),
        ];
        for (json, expected) in cases {
            let parsed = serde_json::from_str::<SuspensionScope>(json);
            match (parsed, expected) {
                (Ok(scope), Ok(want)) => assert_eq!(&scope, want, "{json}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{json}: {e}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn scopes_round_trip() {
        for scope in [
            SuspensionScope::Domain("example.com".into()),
            SuspensionScope::Provider("gmail".into()),
            SuspensionScope::Source("ip-1".into()),
            SuspensionScope::Tenant {
                tenant: "acme".into(),
                campaign: Some("spring".into()),
            },
        ] {
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(
                serde_json::from_str::<SuspensionScope>(&json).unwrap(),
                scope
            );
        }
    }

    #[test]
    fn durations_and_reasons_are_bounded() {
        let new = |duration: u64, reason: &str| NewSuspension {
            scope: SuspensionScope::Provider("gmail".into()),
            duration: Duration::from_secs(duration),
            reason: reason.to_owned(),
        };
        assert!(new(3600, " blocked ").validated().unwrap().reason == "blocked");
        assert!(matches!(
            new(0, "x").validated(),
            Err(ValidationError::Duration { .. })
        ));
        assert!(matches!(
            new(31 * 86_400, "x").validated(),
            Err(ValidationError::Duration { .. })
        ));
        assert!(matches!(
            new(60, "  ").validated(),
            Err(ValidationError::Empty { what: "reason" })
        ));
        assert!(matches!(
            new(60, &"x".repeat(501)).validated(),
            Err(ValidationError::TooLong { .. })
        ));
    }
}
