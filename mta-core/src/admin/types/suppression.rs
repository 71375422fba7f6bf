//! Suppressions (`/v1/suppressions`): addresses (or whole domains) never to be sent to,
//! for every tenant or for one. A suppressed recipient fails at once without a connection.
//!
//! Invariants: addresses reaching the backend are trimmed and lower-case, bounded by
//! [`MAX_ADDRESS_LEN`], and are either `local@domain` or a bare `domain`.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::check_name;
use super::filter::ValidationError;
use crate::admin::limits::{MAX_ADDRESS_LEN, MAX_REASON_LEN};

/// One suppression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    /// The address (`user@example.com`), or a domain (`example.com`) for all of it.
    pub address: String,
    /// The tenant it applies to (`null`: every tenant).
    pub tenant: Option<String>,
    /// Why it was added.
    pub reason: Option<String>,
    /// How it was added.
    pub origin: SuppressionOrigin,
    /// When.
    #[serde(with = "super::rfc3339")]
    pub created_at: SystemTime,
}

/// How a suppression came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionOrigin {
    /// Added through the admin API.
    Manual,
    /// A hard bounce.
    Bounce,
    /// A complaint (feedback loop).
    Complaint,
    /// A list-unsubscribe request.
    Unsubscribe,
}

/// Which suppressions `GET /v1/suppressions` lists: query parameters `tenant`, `address`,
/// `after` and `limit`, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionQuery {
    /// Only this tenant's (`(none)` would not match: global entries have no tenant; leave it
    /// out to list every entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Only this address or domain (exact, without case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Start after this address (the `next` of the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// Entries per page (1 to 10000, default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// The response of `GET /v1/suppressions`: one page, in address order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionPage {
    /// The entries.
    pub entries: Vec<Suppression>,
    /// The `after` of the next page; `null` on the last page.
    pub next: Option<String>,
}

/// One entry of `POST /v1/suppressions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// The address, or a domain.
    pub address: String,
    /// The tenant it applies to (absent: every tenant).
    #[serde(default)]
    pub tenant: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The body of `POST /v1/suppressions` (1 to 10000 entries).
///
/// ```json
/// {"entries": [{"address": "user@example.com", "reason": "asked by phone"}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSuppressions {
    /// The entries to add (existing ones are kept as they are).
    pub entries: Vec<NewSuppression>,
}

/// One suppression to remove: `DELETE /v1/suppressions?address=..&tenant=..`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuppressionKey {
    /// The address or domain.
    pub address: String,
    /// The tenant (absent: the entry for every tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The response of `POST` and `DELETE /v1/suppressions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionChange {
    /// Entries added (`POST`) or removed (`DELETE`).
    pub changed: u64,
    /// Entries that were already there (`POST`) or not there (`DELETE`).
    pub unchanged: u64,
}

/// Trims and lower-cases an address or domain, and checks its shape.
pub(crate) fn normalize_address(address: &str) -> Result<String, ValidationError> {
    let address = address.trim().trim_end_matches('.').to_lowercase();
    if address.is_empty() {
        return Err(ValidationError::Empty { what: "address" });
    }
    if address.len() > MAX_ADDRESS_LEN {
        return Err(ValidationError::TooLong {
            what: "address",
            max: MAX_ADDRESS_LEN,
        });
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
    {
        return Err(ValidationError::BadCharacter { what: "address" });
    }
    match address.rsplit_once('@') {
        Some((local, domain)) if local.is_empty() || domain.is_empty() => {
            Err(ValidationError::Empty {
                what: "address local part or domain",
            })
        }
        _ => Ok(address),
    }
}

fn normalize_tenant(tenant: Option<String>) -> Result<Option<String>, ValidationError> {
    if let Some(tenant) = &tenant {
        check_name("tenant", tenant)?;
    }
    Ok(tenant)
}

impl SuppressionKey {
    /// The key with its address normalised.
    pub(crate) fn validated(self) -> Result<SuppressionKey, ValidationError> {
        Ok(SuppressionKey {
            address: normalize_address(&self.address)?,
            tenant: normalize_tenant(self.tenant)?,
        })
    }
}

impl NewSuppression {
    /// The entry with its address normalised and its reason checked.
    pub(crate) fn validated(self) -> Result<NewSuppression, ValidationError> {
        let reason = match self.reason.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(r) if r.chars().count() > MAX_REASON_LEN => {
                return Err(ValidationError::TooLong {
                    what: "reason",
                    max: MAX_REASON_LEN,
                });
            }
            Some(r) if r.chars().any(char::is_control) => {
                return Err(ValidationError::BadCharacter { what: "reason" });
            }
            Some(r) => Some(r.to_owned()),
        };
        Ok(NewSuppression {
            address: normalize_address(&self.address)?,
            tenant: normalize_tenant(self.tenant)?,
            reason,
        })
    }
}

impl SuppressionQuery {
    /// The query with its address normalised and its limit bounded.
    pub(crate) fn validated(self) -> Result<SuppressionQuery, ValidationError> {
        use crate::admin::limits::{DEFAULT_SUPPRESSIONS_PAGE, MAX_SUPPRESSIONS_PAGE};
        let limit = self.limit.unwrap_or(DEFAULT_SUPPRESSIONS_PAGE);
        if limit == 0 || limit > MAX_SUPPRESSIONS_PAGE {
            return Err(ValidationError::Range {
                what: "limit",
                max: MAX_SUPPRESSIONS_PAGE,
            });
        }
        Ok(SuppressionQuery {
            tenant: normalize_tenant(self.tenant)?,
            address: self.address.as_deref().map(normalize_address).transpose()?,
            after: self.after.map(|a| a.trim().to_lowercase()),
            limit: Some(limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalised_or_refused() {
        let cases: &[(&str, Option<&str>)] = &[
            ("User@Example.COM", Some("user@example.com")),
            ("  example.com. ", Some("example.com")),
            ("", None),
            ("@example.com", None),
            ("user@", None),
            ("us er@example.com", None),
            ("<user@example.com>", None),
        ];
        for (input, expected) in cases {
            let got = normalize_address(input).ok();
            assert_eq!(got.as_deref(), *expected, "{input:?}");
        }
        assert!(normalize_address(&format!("{}@example.com", "a".repeat(300))).is_err());
    }
}
