//! The orderstream consumer: a Kafka consumer group that applies order
//! records to PostgreSQL with an exactly-once effect.
//!
//! # Layout
//!
//! | module           | responsibility                                                          |
//! |------------------|-------------------------------------------------------------------------|
//! | [`config`]       | flags and environment variables, validated before anything connects      |
//! | [`migrate`]      | applies the schema crate's migrations once, safely under concurrency; `migrate` as the owner, start as the writer |
//! | [`db`]           | the connection pool; which errors are transient, which blame a record    |
//! | [`decode`]       | Kafka record → order record (with source version and flags) or dead letter |
//! | [`kept`]         | a record kept until its batch is written, in one allocation (for dead letters) |
//! | [`batch`]        | the newest record per id, in id order (pure)                             |
//! | `offsets`        | offsets stored in PostgreSQL: lock, plan (skip applied, detect gaps), store |
//! | [`upsert`]       | version-guarded upsert and outcome counting                               |
//! | [`source_files`] | the header each file was read with, for the data-quality question      |
//! | `bisect`         | finding the rows the database refuses (pure)                             |
//! | `apply`          | one batch, one transaction: offsets, rows, dead letters                  |
//! | [`dead_letters`] | the `orders.dlq` topic, the `dead_letters` table, its spreadsheet-safe CSV export |
//! | `intake`         | the dead-letter topic into `dead_letters`: the producer's bad lines, exactly once |
//! | [`triage`]       | `dead-letters list` and `resolve`: operating dead letters without SQL    |
//! | `redrive`        | re-publishing the consumer's dead letters once fixed                     |
//! | [`replay`]       | `replay`: the group's stored and committed offsets moved back together   |
//! | `metrics`        | Prometheus counters and histograms, declared once                        |
//! | `events`         | one type per happening: its log line and its metrics, emitted together   |
//! | `status`         | `/status`: group, assigned partitions, rows/s, last error; the rate log   |
//! | `storable`       | outside text made acceptable to PostgreSQL (no NUL), exact bytes beside it |
//! | `kafka`          | the Kafka clients: settings, rebalance tracking, topic wait, commit after the database |
//! | `retry`          | transient failures retried with backoff, never skipped                   |
//! | `error`          | why the consumer stops                                                   |
//! | `run`            | the loop only: gather, apply, commit, shutdown                           |
//!
//! # Guarantee
//!
//! Each record takes effect exactly once, whatever crashes: a batch's rows,
//! its dead letters and the next offsets of its partitions commit in one
//! PostgreSQL transaction, and every batch first locks its partitions'
//! stored offsets and applies only records at or after them. Kafka's
//! committed offsets are a hint for where to start and for lag monitoring;
//! PostgreSQL is the truth. On top, a version guard makes an older version of
//! an order never overwrite a newer one, so re-read files and redriven dead
//! letters are harmless too.

mod apply;
pub mod batch;
mod bisect;
pub mod config;
pub mod db;
pub mod dead_letters;
pub mod decode;
mod error;
mod events;
mod intake;
mod kafka;
pub mod kept;
mod metrics;
pub mod migrate;
mod offsets;
mod redrive;
pub mod replay;
mod retry;
mod run;
pub mod source_files;
mod status;
mod storable;
pub mod triage;
pub mod upsert;

pub use apply::{upsert_with_bisection, ApplyError, Upserted};
pub use config::Config;
pub use error::ConsumerError;
pub use redrive::{redrive, RedriveError};
pub use run::run;

/// The log message of a dead-letter intake transaction that stored new dead
/// letters (one line per transaction): what a log search or a test counts,
/// from the event that writes it.
pub const INTAKE_STORED_MESSAGE: &str = events::DeadLetterIntakeCommitted::MESSAGE;
