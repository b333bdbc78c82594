//! Why the producer stops.

use std::path::PathBuf;

use chrono::Utc;
use rdkafka::error::KafkaError;
use schema::message::EpochOutOfRange;
use telemetry::ServeError;
use thiserror::Error;

use crate::archive::ArchiveError;
use crate::positions::PositionStoreError;
use crate::publisher::{DeliveryError, PublishError};

/// Why the producer stopped.
#[derive(Debug, Error)]
pub enum ProducerError {
    /// Kafka refused a record or a topic.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// Kafka's answer to a record cannot count as its delivery.
    #[error(transparent)]
    Delivery(#[from] DeliveryError),
    /// The positions could not be read at start.
    #[error(transparent)]
    Positions(#[from] PositionStoreError),
    /// The metrics endpoint cannot be opened.
    #[error(transparent)]
    Telemetry(#[from] ServeError),
    /// The highest epoch on the topics cannot be read at start; without it
    /// a producer whose state folder was lost could version new files below
    /// ones already published.
    #[error("cannot read the highest file epoch on the topics")]
    EpochFloor(#[source] KafkaError),
    /// The wall clock is past the last epoch (mid-2062): a file read now
    /// could only be versioned by wrapping, below every stored record.
    #[error("the clock ({now}) is past the last file epoch (mid-2062): a new file's versions would wrap")]
    ClockPastLastEpoch {
        /// The clock's time.
        now: chrono::DateTime<Utc>,
        /// The clock's epoch, refused.
        source: EpochOutOfRange,
    },
    /// Every epoch up to the largest was given (the topics or the saved
    /// state hold the largest, e.g. after a replay with `--epoch` at the
    /// limit): a new or rewritten file cannot be versioned above them.
    #[error("no file epoch is left above those already given: a new file's versions would wrap")]
    NoEpochLeft(#[source] EpochOutOfRange),
    /// The ready file (`--ready-file`) cannot be written.
    #[error("cannot write the ready file {path}")]
    ReadyFile {
        /// The file asked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The archive folder (`--archive-dir`) cannot be created, listed or,
    /// with `--archive-after`, written.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The inbox folder cannot be listed at start.
    #[error("cannot list the inbox {path}")]
    Inbox {
        /// The inbox.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
