//! Egress IP pools, warmup schedules, reply classification and reputation-aware throttling.
//!
//! This crate is a placeholder until the ipwarm issue is worked on: it exports nothing yet.
