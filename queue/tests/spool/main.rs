//! Integration tests of the spool: one test binary, a module per concern.
//!
//! Every test uses its own directory under `std::env::temp_dir()` (removed when the test ends)
//! and bounded loops; the whole binary runs in a few seconds.

mod common;
mod concurrency;
mod crash;
mod disk;
mod durability;
mod lazy;
mod metrics;
mod quarantine;
mod round_trip;
