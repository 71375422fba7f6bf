//! DKIM signing for the MTA: key store, selectors and per-domain signing policy.
//!
//! This crate is a placeholder until the DKIM issue is worked on: it exports nothing yet,
//! so nothing can call into a signer that does not exist.
