//! The MTA: configuration, lifecycle, the SMTP server that accepts mail, and the delivery
//! engine that sends it on. The `mta` binary is a thin command-line layer over this library;
//! end-to-end tests use both.
//!
//! Inbound: `server` (SMTP sessions) → the spool (`queue` crate) → `delivery` (scheduler,
//! routing, pools) → `client` (SMTP to the next hop). Alongside: `dns` (MX resolution),
//! `dsn` (bounces), `delivery_log` (one JSON record per event), `config`, `lifecycle`.

pub mod admin;
pub mod client;
pub mod config;
pub mod ctl;
pub(crate) mod date;
pub mod delivery;
pub mod delivery_log;
pub mod dns;
pub mod dsn;
pub mod lifecycle;
pub mod server;
