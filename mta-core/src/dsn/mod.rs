//! Delivery status notifications (RFC 3464): the bounces, delay warnings and success reports
//! the MTA sends to a message's sender.
//!
//! - [`input`]: what a DSN is built from ([`DsnInput`], [`RecipientOutcome`], [`Action`]).
//! - [`rules`]: [`dsn_wanted`], whether a recipient's outcome is to be reported (NOTIFY, null
//!   sender).
//! - [`build`]: [`build_dsn`] / [`build_dsn_message`], the `multipart/report` message.
//! - `date`: RFC 5322 dates.
//!
//! Invariants: a null reverse-path never gets a DSN; a DSN is built from its input alone
//! (time is passed in, nothing random), has CRLF line ends, and carries no field taken raw
//! from the input (control characters are replaced), so a remote reply cannot inject
//! headers. The caller queues the result with a null reverse-path (`MAIL FROM:<>`) so it is
//! never bounced in turn.
//!
//! Operator documentation: `docs/bounces.md`.

pub mod build;
pub mod input;
pub mod rules;

#[cfg(test)]
mod tests;

pub use build::{Dsn, ReportKind, build_dsn, build_dsn_message};
pub use input::{Action, DEFAULT_RETURN_LIMIT, Diagnostic, DsnInput, Original, RecipientOutcome};
pub use rules::dsn_wanted;
