//! orderstream's reliability suite (`make chaos`): fault scenarios on real
//! Kafka and PostgreSQL, each checked against a data invariant computed from
//! the lines written, plus a soak run.

mod edges;
mod invariant;
mod ledger;
mod load;
mod monitor;
mod proxy;
pub mod report;
pub mod rig;
pub mod scenarios;
pub mod soak;
