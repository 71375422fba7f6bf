//! Classification rules: how they are written ([`RuleConfig`]) and matched ([`Rule`]).
//!
//! A rule has up to four conditions, all of which must hold:
//! - `code`: a reply code (`421`) or a pattern with `x` for any digit (`"4xx"`, `"55x"`);
//! - `enhanced`: an enhanced status code or a prefix of one by components: `"5"`, `"5.7"`,
//!   `"5.7.1"`, or a range of the last component `"5.7.606-649"`. `"5.7.1"` does not match
//!   `5.7.10` (components are compared, not characters);
//! - `text`: a regular expression searched in the reply text (Rust `regex` syntax; add `(?i)`
//!   for case-insensitive);
//! - `provider`: the provider name the engine passed (`gmail`), compared case-insensitively.
//!
//! A rule needs at least one of `code`, `enhanced`, `text`.

use std::fmt;

use regex::Regex;
use serde::Deserialize;

use super::{Class, EnhancedCode, Reply};
use crate::IpwarmError;

/// A rule as written (`[[classify]]` in the configuration, `[[rule]]` in the built-in file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// A name for logs and the admin view (`gmail-unusual-rate`).
    pub name: Option<String>,
    /// Reply code or pattern: `421` or `"4xx"`.
    pub code: Option<CodeSpec>,
    /// Enhanced status code or prefix: `"4.7.28"`, `"5.1"`, `"5.7.606-649"`.
    pub enhanced: Option<String>,
    /// Regular expression searched in the reply text.
    pub text: Option<String>,
    /// Only for replies from this provider.
    pub provider: Option<String>,
    /// The class a matching reply gets.
    pub class: Class,
}

/// A `code` as written: a number or a pattern string.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum CodeSpec {
    /// An exact code, `421`.
    Exact(u16),
    /// A pattern, `"4xx"`, `"45x"` or `"421"`.
    Pattern(String),
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: Option<String>,
    code: Option<CodePattern>,
    enhanced: Option<EnhancedPattern>,
    text: Option<Regex>,
    provider: Option<String>,
    pub(crate) class: Class,
}

/// Three digits, each fixed or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodePattern([Option<u8>; 3]);

impl CodePattern {
    fn parse(spec: &CodeSpec) -> Option<CodePattern> {
        let text = match spec {
            CodeSpec::Exact(code) => code.to_string(),
            CodeSpec::Pattern(text) => text.to_ascii_lowercase(),
        };
        let bytes = text.as_bytes();
        if bytes.len() != 3 || !(b'2'..=b'5').contains(&bytes[0]) {
            return None;
        }
        let mut digits = [None; 3];
        for (slot, &b) in digits.iter_mut().zip(bytes) {
            *slot = match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'x' => None,
                _ => return None,
            };
        }
        Some(CodePattern(digits))
    }

    fn matches(self, code: u16) -> bool {
        if !(100..1000).contains(&code) {
            return false;
        }
        let digits = [
            (code / 100) as u8,
            (code / 10 % 10) as u8,
            (code % 10) as u8,
        ];
        self.0
            .iter()
            .zip(digits)
            .all(|(want, got)| want.is_none_or(|w| w == got))
    }
}

/// Enhanced code components, the last possibly a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EnhancedPattern {
    class: u8,
    subject: Option<u16>,
    detail: Option<(u16, u16)>,
}

impl EnhancedPattern {
    fn parse(text: &str) -> Option<EnhancedPattern> {
        let mut parts = text.trim().split('.');
        let class: u8 = parts.next()?.parse().ok()?;
        if !matches!(class, 2 | 4 | 5) {
            return None;
        }
        let subject = parts.next().map(|s| s.parse::<u16>()).transpose().ok()?;
        let detail = match parts.next() {
            None => None,
            Some(d) => Some(match d.split_once('-') {
                Some((low, high)) => {
                    let (low, high) = (low.parse().ok()?, high.parse().ok()?);
                    if low > high {
                        return None;
                    }
                    (low, high)
                }
                None => {
                    let d = d.parse().ok()?;
                    (d, d)
                }
            }),
        };
        if parts.next().is_some() || (subject.is_none() && detail.is_some()) {
            return None;
        }
        Some(EnhancedPattern {
            class,
            subject,
            detail,
        })
    }

    fn matches(self, code: EnhancedCode) -> bool {
        self.class == code.class
            && self.subject.is_none_or(|s| s == code.subject)
            && self
                .detail
                .is_none_or(|(low, high)| (low..=high).contains(&code.detail))
    }
}

impl Rule {
    /// Compiles a rule; `key` prefixes error keys (`classify[3]`).
    pub(crate) fn compile(config: &RuleConfig, key: &str) -> Result<Rule, IpwarmError> {
        if config.code.is_none() && config.enhanced.is_none() && config.text.is_none() {
            return Err(IpwarmError::config(
                key,
                "a rule needs at least one of code, enhanced, text",
            ));
        }
        let code = config
            .code
            .as_ref()
            .map(|spec| {
                CodePattern::parse(spec).ok_or_else(|| {
                    IpwarmError::config(
                        format!("{key}.code"),
                        "expected a reply code 200-599 or a pattern like \"4xx\"",
                    )
                })
            })
            .transpose()?;
        let enhanced = config
            .enhanced
            .as_deref()
            .map(|text| {
                EnhancedPattern::parse(text).ok_or_else(|| {
                    IpwarmError::config(
                        format!("{key}.enhanced"),
                        format!(
                            "{text:?} is not an enhanced status code or prefix (\"5\", \"5.7\", \"5.7.1\", \"5.7.606-649\")"
                        ),
                    )
                })
            })
            .transpose()?;
        if let (Some(code), Some(enhanced)) = (code, enhanced)
            && code.0[0].is_some_and(|c| c != enhanced.class)
        {
            return Err(IpwarmError::config(
                format!("{key}.enhanced"),
                "its class digit differs from the code's, so the rule never matches",
            ));
        }
        let text = config
            .text
            .as_deref()
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| {
                    IpwarmError::config(format!("{key}.text"), format!("invalid regex: {e}"))
                })
            })
            .transpose()?;
        if config.provider.as_deref().is_some_and(str::is_empty) {
            return Err(IpwarmError::config(
                format!("{key}.provider"),
                "must not be empty",
            ));
        }
        Ok(Rule {
            name: config.name.clone(),
            code,
            enhanced,
            text,
            provider: config.provider.as_ref().map(|p| p.to_ascii_lowercase()),
            class: config.class,
        })
    }

    /// The rule's text pattern, if it has one.
    pub(crate) fn text_pattern(&self) -> Option<&str> {
        self.text.as_ref().map(Regex::as_str)
    }

    /// Whether the reply matches every condition. Cheap conditions first; the text last,
    /// through `text_matches` (the classifier answers it for all rules in one pass).
    pub(crate) fn matches(
        &self,
        reply: &Reply<'_>,
        enhanced: Option<EnhancedCode>,
        provider: Option<&str>,
        text_matches: impl FnOnce() -> bool,
    ) -> bool {
        if let Some(code) = self.code
            && !code.matches(reply.code)
        {
            return false;
        }
        if let Some(pattern) = self.enhanced
            && !enhanced.is_some_and(|e| pattern.matches(e))
        {
            return false;
        }
        if let Some(want) = &self.provider
            && !provider.is_some_and(|p| p.eq_ignore_ascii_case(want))
        {
            return false;
        }
        self.text.is_none() || text_matches()
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name.as_deref().unwrap_or("(unnamed)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_patterns() {
        let table: [(CodeSpec, &[(u16, bool)]); 5] = [
            (
                CodeSpec::Exact(421),
                &[(421, true), (451, false), (521, false)],
            ),
            (
                CodeSpec::Pattern("4xx".into()),
                &[
                    (400, true),
                    (421, true),
                    (499, true),
                    (550, false),
                    (42, false),
                ],
            ),
            (
                CodeSpec::Pattern("45X".into()),
                &[(450, true), (451, true), (421, false)],
            ),
            (
                CodeSpec::Pattern("5x0".into()),
                &[(550, true), (554, false)],
            ),
            (
                CodeSpec::Pattern("250".into()),
                &[(250, true), (251, false)],
            ),
        ];
        for (spec, cases) in table {
            let pattern = CodePattern::parse(&spec).unwrap();
            for &(code, expected) in cases {
                assert_eq!(pattern.matches(code), expected, "{spec:?} {code}");
            }
        }
        for bad in ["4x", "4xxx", "6xx", "1xx", "x21", "4y1", ""] {
            assert_eq!(
                CodePattern::parse(&CodeSpec::Pattern(bad.into())),
                None,
                "{bad}"
            );
        }
        assert_eq!(CodePattern::parse(&CodeSpec::Exact(600)), None);
        assert_eq!(CodePattern::parse(&CodeSpec::Exact(99)), None);
    }

    #[test]
    fn enhanced_patterns_compare_components() {
        let e = |c, s, d| EnhancedCode::new(c, s, d);
        let table = [
            ("5", e(5, 7, 1), true),
            ("5", e(4, 7, 1), false),
            ("5.7", e(5, 7, 606), true),
            ("5.7", e(5, 1, 1), false),
            ("5.7.1", e(5, 7, 1), true),
            ("5.7.1", e(5, 7, 10), false),
            ("5.1.10", e(5, 1, 10), true),
            ("5.1.1", e(5, 1, 10), false),
            ("5.7.606-649", e(5, 7, 606), true),
            ("5.7.606-649", e(5, 7, 649), true),
            ("5.7.606-649", e(5, 7, 650), false),
            ("5.7.606-649", e(5, 7, 60), false),
            ("4.7.650-652", e(4, 7, 651), true),
        ];
        for (text, code, expected) in table {
            let pattern = EnhancedPattern::parse(text).unwrap();
            assert_eq!(pattern.matches(code), expected, "{text} vs {code}");
        }
        for bad in [
            "", "6", "5.", "5.x", "5.7.1.2", "5.7.9-3", "5.7.a-b", "x.7.1",
        ] {
            assert_eq!(EnhancedPattern::parse(bad), None, "{bad:?}");
        }
    }
}
