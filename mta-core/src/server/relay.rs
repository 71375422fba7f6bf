//! Relay policy: who may send to which recipients.
//!
//! A trusted client (its address is in the listener's `relay_networks`, or it has
//! authenticated) may send anywhere. Anyone else may only send to the domains in
//! `accept_domains` and to `<postmaster>`, and never with a local part that asks a later hop
//! to route onwards (`%`, `!`, or an `@` inside a quoted local part): those are the classic
//! open-relay tricks (`u%evil@ours`, `"u@evil"@ours`). Source routes are already stripped by
//! the parser, and `u@ours.` is a grammar error there.

use std::collections::HashSet;

use smtp_proto::{ForwardPath, Host};

/// The domains we accept mail for from untrusted clients, lower-cased.
#[derive(Debug, Clone, Default)]
pub(crate) struct RelayPolicy {
    accept_domains: HashSet<String>,
}

impl RelayPolicy {
    /// A policy accepting mail from anyone for `domains`.
    pub(crate) fn new<'a>(domains: impl IntoIterator<Item = &'a String>) -> Self {
        RelayPolicy {
            accept_domains: domains.into_iter().map(|d| d.to_lowercase()).collect(),
        }
    }

    /// True if a client with this trust may send to `to`.
    pub(crate) fn allows(&self, trusted: bool, to: &ForwardPath<'_>) -> bool {
        if trusted {
            return true;
        }
        let mailbox = match to {
            ForwardPath::Postmaster => return true,
            ForwardPath::Mailbox(m) => m,
        };
        let Host::Domain(domain) = mailbox.host() else {
            return false;
        };
        if !self.accept_domains.contains(&domain.to_lowercase()) {
            return false;
        }
        !mailbox.local_part().contains(['%', '!', '@'])
    }
}

#[cfg(test)]
mod tests {
    use smtp_proto::{Command, CommandParser, Parsed};

    use super::*;

    fn rcpt(line: &str) -> ForwardPath<'static> {
        let wire = format!("RCPT TO:{line}\r\n");
        match CommandParser::new().parse(wire.as_bytes()) {
            Parsed::Item(Command::Rcpt { to, .. }, _) => to.into_owned(),
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn open_relay_tricks_are_refused_for_untrusted_clients() {
        let policy = RelayPolicy::new(&["ours.example".to_owned()]);
        let table = [
            ("<user@ours.example>", true),
            ("<User@OURS.Example>", true),
            ("<postmaster>", true),
            ("<user@evil.example>", false),
            ("<u%evil.example@ours.example>", false),
            ("<\"u@evil.example\"@ours.example>", false),
            ("<evil.example!u@ours.example>", false),
            ("<@ours.example:u@evil.example>", false),
            ("<@evil.example:u@ours.example>", true),
            ("<u@sub.ours.example>", false),
            ("<u@[127.0.0.1]>", false),
        ];
        for (path, allowed) in table {
            assert_eq!(policy.allows(false, &rcpt(path)), allowed, "{path}");
            assert!(policy.allows(true, &rcpt(path)), "{path} trusted");
        }
    }
}
