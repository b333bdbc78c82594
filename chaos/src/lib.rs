//! orderstream's reliability suite (`make chaos`): fault scenarios on real
//! Kafka and PostgreSQL, each checked against a data invariant computed from
//! the lines written, plus a soak run.

pub mod edges;
pub mod invariant;
pub mod ledger;
pub mod load;
pub mod monitor;
pub mod proxy;
pub mod report;
pub mod rig;
pub mod scenarios;
pub mod soak;
