//! When a DSN is owed (RFC 3461 section 4.1 and RFC 5321 section 6.1).
//!
//! Invariant: a message with a null reverse-path never produces a DSN, whatever its
//! recipients asked for, so bounces cannot loop.

use queue::{Envelope, Notify, Recipient};

use super::Action;

/// `true` when `recipient` of the message `envelope` should be reported with `action`:
///
/// - never for a null sender (`MAIL FROM:<>`);
/// - never with `NOTIFY=NEVER`;
/// - without `NOTIFY`: failures and delays (RFC 3461 lets the MTA choose; this is the
///   customary `FAILURE,DELAY`). The engine decides whether it sends delay reports at all,
///   and only asks about [`Action::Delayed`] when it does;
/// - with `NOTIFY`: failures if `FAILURE`, delays if `DELAY`, and successes (`delivered`,
///   `relayed`, `expanded`) only if `SUCCESS` was asked for.
///
/// The global switch (`[delivery] bounces`) is the caller's to apply on top.
pub fn dsn_wanted(envelope: &Envelope, recipient: &Recipient, action: Action) -> bool {
    if envelope.is_null_sender() || recipient.notify.contains(Notify::NEVER) {
        return false;
    }
    let notify = recipient.notify;
    match action {
        Action::Failed => notify.is_empty() || notify.contains(Notify::FAILURE),
        Action::Delayed => notify.is_empty() || notify.contains(Notify::DELAY),
        Action::Delivered | Action::Relayed | Action::Expanded => notify.contains(Notify::SUCCESS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_table() {
        let none = Notify::empty();
        let s = Notify::SUCCESS;
        let f = Notify::FAILURE;
        let d = Notify::DELAY;
        let all = s | f | d;
        use Action::*;
        // (sender, notify, action, wanted)
        let table = [
            ("a@example.com", none, Failed, true),
            ("a@example.com", none, Delayed, true),
            ("a@example.com", none, Delivered, false),
            ("a@example.com", none, Relayed, false),
            ("a@example.com", none, Expanded, false),
            ("a@example.com", Notify::NEVER, Failed, false),
            ("a@example.com", Notify::NEVER, Delayed, false),
            ("a@example.com", Notify::NEVER, Delivered, false),
            ("a@example.com", f, Failed, true),
            ("a@example.com", f, Delayed, false),
            ("a@example.com", f, Delivered, false),
            ("a@example.com", d, Failed, false),
            ("a@example.com", d, Delayed, true),
            ("a@example.com", s, Failed, false),
            ("a@example.com", s, Delivered, true),
            ("a@example.com", s, Relayed, true),
            ("a@example.com", s, Expanded, true),
            ("a@example.com", all, Failed, true),
            ("a@example.com", all, Delayed, true),
            ("a@example.com", all, Delivered, true),
            // A null sender is never notified, whatever it asked for.
            ("", none, Failed, false),
            ("", all, Failed, false),
            ("", all, Delivered, false),
        ];
        for (sender, notify, action, wanted) in table {
            let mut recipient = Recipient::new("b@example.org");
            recipient.notify = notify;
            let envelope = Envelope::new(sender, vec![recipient.clone()], 0);
            assert_eq!(
                dsn_wanted(&envelope, &recipient, action),
                wanted,
                "sender {sender:?} notify {notify:?} {action:?}"
            );
        }
    }
}
