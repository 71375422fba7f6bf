//! End-to-end tests of the `mta` SMTP server: real sockets on loopback, real TLS, real
//! independent clients (swaks, Python smtplib), and a SIGKILL crash test.

#![allow(dead_code, unreachable_pub, missing_docs)]

mod common;

mod admin;
mod clients;
mod crash;
mod delivery;
mod dkim;
mod ipwarm;
mod limits;
mod protocol;
mod relay_auth;
mod world;
