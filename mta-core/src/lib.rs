//! The MTA: configuration, lifecycle, and the SMTP server. The `mta` binary is a thin
//! command-line layer over this library; end-to-end tests use both.

pub mod client;
pub mod config;
pub mod delivery_log;
pub mod dns;
pub mod dsn;
pub mod lifecycle;
pub mod server;
