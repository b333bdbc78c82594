//! The end-to-end test suite: its tests are `tests/*.rs`, built with the
//! `integration-tests` feature (`make test`); what they run on is the
//! `orderstream-harness` crate (`crates/harness`).
