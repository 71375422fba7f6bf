//! The reply classifier: every SMTP reply an ISP sends us becomes one [`Class`].
//!
//! A data-driven table of rules (reply code or code pattern, enhanced-code prefix, regex on
//! the text, optional provider) is checked in order: the operator's `[[classify]]` rules
//! first, then the built-in table (`default-rules.toml`, embedded: the documented replies of
//! Gmail, Yahoo/AOL, Microsoft, Apple iCloud, Comcast, GMX/Web.de, Orange, Mail.ru, Yandex and
//! the common DNS block lists, each family with its public source). The first rule that
//! matches wins. A reply no rule matches gets a class from its code alone ([`fallback`]): 2xx
//! delivered, 4xx transient (4.2.2 mailbox full), 5xx by the enhanced code's subject (5.1.x
//! bad mailbox or bad domain, 5.2.2 mailbox full, 5.7.x policy...).
//!
//! Invariants: classification is total (every reply, even a malformed one, gets a class) and
//! pure (same reply and provider, same class); the table is compiled once, at construction,
//! so a bad regex is a configuration error, never a run-time one. When the reply carries no
//! parsed enhanced code, one at the start of the text (`"4.7.28 Our system..."`) is used.
//! Rules see the text with every run of whitespace made one space (the lines of a multi-line
//! reply joined), so a rule's words match wherever the receiver broke its lines. A 2xx reply
//! is `delivered` unless one of the operator's rules says otherwise: the built-in rules are
//! for refusals, and a 250 that mentions "spam" is still a delivery.

mod class;
mod rule;

pub use class::{Class, UnknownClass};
pub use rule::{CodeSpec, RuleConfig};

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use regex::{RegexSet, SetMatches};
use serde::Deserialize;

use crate::IpwarmError;
use rule::Rule;

/// The built-in rule table (TOML, `[[rule]]` entries).
pub const DEFAULT_RULES: &str = include_str!("default-rules.toml");

/// An RFC 3463 enhanced status code, `class.subject.detail` (ordered by components).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnhancedCode {
    /// 2, 4 or 5.
    pub class: u8,
    /// The subject (`7` in `5.7.1`).
    pub subject: u16,
    /// The detail (`1` in `5.7.1`).
    pub detail: u16,
}

impl EnhancedCode {
    /// A code from its three components (not checked).
    pub const fn new(class: u8, subject: u16, detail: u16) -> EnhancedCode {
        EnhancedCode {
            class,
            subject,
            detail,
        }
    }

    /// The enhanced code at the start of a reply text (`"5.7.1 Unfortunately..."`), if any.
    pub fn at_start_of(text: &str) -> Option<EnhancedCode> {
        let token = text.trim_start().split([' ', '\t', '\r', '\n']).next()?;
        token.parse().ok()
    }
}

impl FromStr for EnhancedCode {
    type Err = ();

    /// Parses `5.7.1`: class 2, 4 or 5; subject and detail of 1 to 3 digits (RFC 3463).
    fn from_str(text: &str) -> Result<EnhancedCode, ()> {
        let mut parts = text.split('.');
        let mut next = |max_len: usize| -> Result<u16, ()> {
            let part = parts.next().ok_or(())?;
            if part.is_empty() || part.len() > max_len || !part.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(());
            }
            part.parse().map_err(|_| ())
        };
        let class = next(1)?;
        let subject = next(3)?;
        let detail = next(3)?;
        if parts.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return Err(());
        }
        Ok(EnhancedCode::new(class as u8, subject, detail))
    }
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// A reply as the client received it (borrowed: classification allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, if the client parsed one.
    pub enhanced: Option<EnhancedCode>,
    /// The text, lines of a multi-line reply joined by `\n`, without the code prefixes.
    pub text: &'a str,
}

impl<'a> Reply<'a> {
    /// A reply from its parts.
    pub fn new(code: u16, enhanced: Option<EnhancedCode>, text: &'a str) -> Reply<'a> {
        Reply {
            code,
            enhanced,
            text,
        }
    }
}

/// The result of classifying a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification<'c> {
    /// The class.
    pub class: Class,
    /// The name of the rule that matched, if a named rule did (`None`: an unnamed rule or
    /// the fallback by code).
    pub rule: Option<&'c str>,
    /// Whether the class came from the fallback by code (no rule matched).
    pub fallback: bool,
}

/// The compiled rule table.
#[derive(Debug, Clone)]
pub struct Classifier {
    rules: Vec<Rule>,
    /// How many of `rules` are the operator's (they come first).
    operator_rules: usize,
    /// Every rule's text pattern in one set, searched once per reply.
    texts: RegexSet,
    /// For each rule, its pattern's index in `texts`.
    text_index: Vec<Option<usize>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<RuleConfig>,
}

impl Classifier {
    /// The operator's rules (checked first; error keys `classify[i]...`), then, if `builtin`,
    /// the built-in table.
    pub fn new(operator: &[RuleConfig], builtin: bool) -> Result<Classifier, IpwarmError> {
        let mut rules = operator
            .iter()
            .enumerate()
            .map(|(i, rule)| Rule::compile(rule, &format!("classify[{i}]")))
            .collect::<Result<Vec<_>, _>>()?;
        let operator_rules = rules.len();
        if builtin {
            rules.extend(builtin_rules());
        }
        Ok(Classifier::from_rules(rules, operator_rules))
    }

    /// Only the built-in table.
    pub fn builtin() -> Classifier {
        Classifier::from_rules(builtin_rules(), 0)
    }

    fn from_rules(rules: Vec<Rule>, operator_rules: usize) -> Classifier {
        let mut patterns = Vec::new();
        let text_index = rules
            .iter()
            .map(|rule| {
                rule.text_pattern().map(|p| {
                    patterns.push(p);
                    patterns.len() - 1
                })
            })
            .collect();
        // Each pattern compiled alone already, so the set compiles too.
        let texts = RegexSet::new(patterns).expect("patterns that compiled alone form a set");
        Classifier {
            rules,
            operator_rules,
            texts,
            text_index,
        }
    }

    /// Number of rules (operator's and built-in).
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules at all (every reply goes to the fallback).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of the operator's rules.
    pub fn operator_rules(&self) -> usize {
        self.operator_rules
    }

    /// Classifies a reply from `provider` (the engine's provider name, `None` if the site
    /// matched no provider rule).
    pub fn classify<'c>(&'c self, reply: &Reply<'_>, provider: Option<&str>) -> Classification<'c> {
        let enhanced = reply
            .enhanced
            .or_else(|| EnhancedCode::at_start_of(reply.text));
        let text = one_line(reply.text);
        let reply = Reply {
            text: &text,
            ..*reply
        };
        // A 2xx reply is a delivery whatever its text says ("queued, spam score 0.1"): only
        // the operator's rules may say otherwise.
        let rules = if reply.code / 100 == 2 {
            &self.rules[..self.operator_rules]
        } else {
            &self.rules[..]
        };
        let mut text_matches: Option<SetMatches> = None;
        for (i, rule) in rules.iter().enumerate() {
            let text_match = || {
                let set = text_matches.get_or_insert_with(|| self.texts.matches(&text));
                self.text_index[i].is_some_and(|j| set.matched(j))
            };
            if rule.matches(&reply, enhanced, provider, text_match) {
                return Classification {
                    class: rule.class,
                    rule: rule.name.as_deref(),
                    fallback: false,
                };
            }
        }
        Classification {
            class: fallback(reply.code, enhanced),
            rule: None,
            fallback: true,
        }
    }
}

/// The text with every run of whitespace (line breaks of a multi-line reply included) made
/// one space, so that rules match wherever the receiver broke its lines. Borrowed when
/// nothing changes (a single-line reply with single spaces).
fn one_line(text: &str) -> Cow<'_, str> {
    let needs_work = text
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_whitespace() && (w[0] != b' ' || w[1].is_ascii_whitespace()))
        || text
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_whitespace() && b != b' ');
    if !needs_work {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    Cow::Owned(out)
}

fn builtin_rules() -> Vec<Rule> {
    let file: RuleFile = toml::from_str(DEFAULT_RULES).expect("the built-in rule file parses");
    file.rule
        .iter()
        .enumerate()
        .map(|(i, rule)| Rule::compile(rule, &format!("builtin rule[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .expect("the built-in rules compile")
}

/// The class of a reply that no rule matched, from its code and enhanced code.
///
/// | reply | class |
/// |---|---|
/// | 2xx | delivered |
/// | 4xx with 4.2.2 | mailbox_full |
/// | other 4xx, any other code | transient |
/// | 5.1.0, 5.1.1, 5.1.3, 5.1.6, 5.1.10, 5.2.1 | bad_mailbox |
/// | 5.1.2, 5.4.4 | bad_domain |
/// | 5.2.2 | mailbox_full |
/// | 5.7.x | policy |
/// | other 5xx | permanent |
pub fn fallback(code: u16, enhanced: Option<EnhancedCode>) -> Class {
    match code / 100 {
        2 => Class::Delivered,
        4 => match enhanced {
            Some(EnhancedCode {
                class: 4,
                subject: 2,
                detail: 2,
            }) => Class::MailboxFull,
            _ => Class::Transient,
        },
        5 => match enhanced.filter(|e| e.class == 5) {
            Some(e) => match (e.subject, e.detail) {
                (1, 0 | 1 | 3 | 6 | 10) | (2, 1) => Class::BadMailbox,
                (1, 2) | (4, 4) => Class::BadDomain,
                (2, 2) => Class::MailboxFull,
                (7, _) => Class::Policy,
                _ => Class::Permanent,
            },
            None => Class::Permanent,
        },
        _ => Class::Transient,
    }
}

#[cfg(test)]
mod tests;
