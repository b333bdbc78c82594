//! Why the consumer stops: the errors its loop does not retry.

use rdkafka::error::KafkaError;
use telemetry::ServeError;
use thiserror::Error;

use crate::apply::ApplyError;
use crate::migrate::MigrateError;

/// Why the consumer stopped.
#[derive(Debug, Error)]
pub enum ConsumerError {
    /// The database URL is unusable.
    #[error("invalid database configuration")]
    DatabaseConfig(#[from] clients::DatabaseConfigError),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka")]
    Kafka(#[from] KafkaError),
    /// The database refused a batch for a reason retrying cannot fix and
    /// that no single record explains (a missing table, a privilege).
    #[error("batch refused")]
    Write(#[source] ApplyError),
    /// The dead-letter producer is in librdkafka's fatal state. The process
    /// exits rather than rebuilding the client: the batch is not committed,
    /// so a restart by the supervisor (Compose's `restart: unless-stopped`)
    /// loses nothing, gets a new producer identity and fresh consumer and
    /// pool too, and is the one path already proven by the crash tests; a
    /// client swapped inside a running process would be a new, untested one.
    #[error("the dead-letter producer is unusable; exiting so that the supervisor restarts the consumer with a new producer")]
    DeadLetterProducer(#[source] ApplyError),
    /// The ready file (`--ready-file`) cannot be written.
    #[error("cannot write the ready file {path}")]
    ReadyFile {
        /// The file asked for.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The metrics endpoint cannot be opened.
    #[error(transparent)]
    Telemetry(#[from] ServeError),
}
