//! How orderstream's processes reach PostgreSQL and Kafka: one place for the
//! connection flags, TLS, SASL and the redaction of the secrets they carry.
//!
//! Every binary used to build its own librdkafka settings and PostgreSQL
//! connection; a security setting added to one was then missing from the
//! others. Here the flags are declared once (clap `Args`, flattened into each
//! binary's configuration) and turned into clients once.
//!
//! # Layout
//!
//! | module       | responsibility                                                              |
//! |--------------|-----------------------------------------------------------------------------|
//! | [`postgres`] | `--database-url` with `sslmode` and `--database-ca-file`: a rustls connector, password redaction |
//! | [`headers`]  | record headers ↔ the (name, value) pairs of `schema`'s wire format          |
//! | [`kafka`]    | `--brokers`, TLS and SASL/SCRAM flags, pass-through `--kafka-option`s → librdkafka settings |
//! | [`partitions`] | a topic's partitions and watermarks; reading partitions to their high watermark |
//! | `secret`     | a password that never reaches a log line or a `Debug` output                |
//! | `topics`     | `--topic`, `--dlq-topic`, `--group`: where the records live in Kafka        |
//! | `faults`     | test builds only (`failpoints`): a fatal error raised in a Kafka client      |
//!
//! # Guarantee
//!
//! No secret this crate holds is ever shown: every type holding one redacts
//! it from `Debug`, and every error it returns is free of it.

#[cfg(feature = "failpoints")]
pub mod faults;
pub mod headers;
pub mod kafka;
pub mod partitions;
pub mod postgres;
mod secret;
mod topics;

pub use kafka::KafkaArgs;
pub use postgres::{Database, DatabaseArgs, DatabaseConfigError, TlsMode};
pub use secret::Secret;
pub use topics::{DeadLetterTopicArgs, GroupArgs, TopicArgs};
