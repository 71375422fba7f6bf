//! The persistent on-disk spool and the retry scheduler.
//!
//! This crate is a placeholder until the spool issue is worked on: it exports nothing yet.
