//! The lag exporter: how far behind the pipeline is, measured from outside
//! it.
//!
//! Consumers can export their own lag only while they run; when every
//! consumer is down, lag is exactly what must stay visible. This process reads
//! the group's committed offsets and the partitions' high watermarks from the
//! broker, the age of the oldest record not applied yet (lag in seconds),
//! and the data's freshness and pending dead letters from PostgreSQL, on
//! its own schedule.
//!
//! # Layout
//!
//! | module      | responsibility                                              |
//! |-------------|-------------------------------------------------------------|
//! | [`config`]  | flags and environment variables                             |
//! | [`lag`]     | lag arithmetic (pure) and reading offsets from the broker   |
//! | [`database`] | freshness and pending dead letters, read from PostgreSQL   |
//! | [`age`]     | lag in seconds: the oldest unapplied record of each partition |
//! | `metrics`   | the exported series                                         |
//! | `events`    | one type per happening: its log line and its metrics together |
//! | `run`       | the polling loop                                            |

pub mod age;
pub mod config;
pub mod database;
pub mod events;
pub mod lag;
mod metrics;
mod run;

pub use config::Config;
pub use run::run;
