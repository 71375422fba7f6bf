//! [`Class`]: what a reply means for the sending IP, the recipient and the message.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a reply means. Every reply gets exactly one class; its string form
/// ([`Class::as_str`]) is stable and is what the delivery log's `class` field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Accepted (2xx).
    Delivered,
    /// The receiver wants us to send slower from this IP ("unusual rate", "too many
    /// connections", "rate limited"). Throttling: multiplicative decrease.
    RateLimited,
    /// The receiver refuses this IP for its own reputation reasons (its internal block list,
    /// "poor reputation", "banned sending IP"). Throttling: suspension with expiry.
    ReputationBlock,
    /// The IP (or a domain in the message) is on a public DNS block list: Spamhaus,
    /// Barracuda, SpamCop, UCEPROTECT, SORBS, Cloudmark. Throttling: suspension.
    Blocklisted,
    /// Sender authentication failed or is missing: SPF, DKIM, DMARC, alignment, reverse DNS.
    /// A sender-domain problem, not an IP-rate problem: no throttling change.
    AuthFailure,
    /// This message was judged spam or unwanted by content or links.
    ContentSpam,
    /// The mailbox does not exist or is disabled. Suppresses the recipient; counts towards
    /// the source's bounce rate.
    BadMailbox,
    /// The recipient's domain does not exist or accepts no mail. Counts towards the bounce
    /// rate.
    BadDomain,
    /// The mailbox is over quota.
    MailboxFull,
    /// Refused by another policy (TLS required, relay denied, message too big, local rules).
    Policy,
    /// Any other temporary failure (4xx).
    Transient,
    /// Any other permanent failure (5xx).
    Permanent,
}

impl Class {
    /// Every class, in declaration order.
    pub const ALL: [Class; 12] = [
        Class::Delivered,
        Class::RateLimited,
        Class::ReputationBlock,
        Class::Blocklisted,
        Class::AuthFailure,
        Class::ContentSpam,
        Class::BadMailbox,
        Class::BadDomain,
        Class::MailboxFull,
        Class::Policy,
        Class::Transient,
        Class::Permanent,
    ];

    /// The stable string form (`rate_limited`), as in the delivery log and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Delivered => "delivered",
            Class::RateLimited => "rate_limited",
            Class::ReputationBlock => "reputation_block",
            Class::Blocklisted => "blocklisted",
            Class::AuthFailure => "auth_failure",
            Class::ContentSpam => "content_spam",
            Class::BadMailbox => "bad_mailbox",
            Class::BadDomain => "bad_domain",
            Class::MailboxFull => "mailbox_full",
            Class::Policy => "policy",
            Class::Transient => "transient",
            Class::Permanent => "permanent",
        }
    }

    /// The class's position in [`Class::ALL`] (for per-class counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the reply is about the sending IP rather than the recipient or the message:
    /// the engine should not bounce a recipient for it even on a 5xx if it can retry from
    /// another source or later (rate limits, reputation blocks, block lists).
    pub fn blames_source(self) -> bool {
        matches!(
            self,
            Class::RateLimited | Class::ReputationBlock | Class::Blocklisted
        )
    }

    /// Whether a recipient whose reply has this class should be suppressed.
    pub fn suppresses_recipient(self) -> bool {
        self == Class::BadMailbox
    }

    /// Whether the reply is a verdict on one recipient (it counts in the bounce-rate window).
    pub(crate) fn is_recipient_verdict(self) -> bool {
        !matches!(
            self,
            Class::RateLimited | Class::ReputationBlock | Class::Blocklisted | Class::Transient
        )
    }

    /// Whether the reply counts as a bad recipient for the bounce-rate threshold.
    pub(crate) fn is_bad_recipient(self) -> bool {
        matches!(self, Class::BadMailbox | Class::BadDomain)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A class name that is not one of [`Class::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown class {0:?}")]
pub struct UnknownClass(pub String);

impl FromStr for Class {
    type Err = UnknownClass;

    fn from_str(text: &str) -> Result<Class, UnknownClass> {
        Class::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| UnknownClass(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_forms_are_stable_and_round_trip() {
        let expected = [
            "delivered",
            "rate_limited",
            "reputation_block",
            "blocklisted",
            "auth_failure",
            "content_spam",
            "bad_mailbox",
            "bad_domain",
            "mailbox_full",
            "policy",
            "transient",
            "permanent",
        ];
        for (i, class) in Class::ALL.into_iter().enumerate() {
            assert_eq!(class.as_str(), expected[i]);
            assert_eq!(class.index(), i);
            assert_eq!(class.as_str().parse::<Class>(), Ok(class));
            // Serde uses the same form.
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", expected[i]));
        }
        assert!("blocked".parse::<Class>().is_err());
    }
}
