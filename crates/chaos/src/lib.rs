//! orderstream's reliability suite (`make chaos`): fault scenarios on real
//! Kafka and PostgreSQL, each checked against a data invariant computed from
//! the lines written, plus a soak run; and `make chaos-cluster`, the same
//! load and checks on a three-node Kafka cluster whose brokers fail
//! (`cluster` drives the nodes, `cluster_scenarios` breaks them).

pub mod cluster;
pub mod cluster_scenarios;
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
