//! The orderstream consumer: a Kafka consumer group that upserts order
//! records into PostgreSQL.
//!
//! # Layout
//!
//! | module      | responsibility                                                     |
//! |-------------|--------------------------------------------------------------------|
//! | [`config`]  | flags and environment variables, validated before anything connects |
//! | [`migrate`] | applies the schema crate's migrations once, safely under concurrency |
//! | [`db`]      | the connection pool and which database errors are worth retrying    |
//! | [`batch`]   | records → the rows of one write and the offsets to commit (pure)    |
//! | [`upsert`]  | the multi-row idempotent upsert                                     |
//! | [`run`]     | the loop: batch, write, commit offsets; shutdown                    |
//!
//! # Guarantee
//!
//! At-least-once delivery with an idempotent effect: Kafka offsets are
//! committed only after the PostgreSQL transaction holding their records
//! committed, and writing a record that is already stored changes nothing.

pub mod batch;
pub mod config;
pub mod db;
pub mod migrate;
pub mod run;
pub mod upsert;

pub use config::Config;
pub use run::{run, ConsumerError};
