//! The orderstream producer: follows the order CSV files of an inbox folder
//! and publishes every record to Kafka.
//!
//! # Layout
//!
//! | module        | responsibility                                                        |
//! |---------------|-----------------------------------------------------------------------|
//! | [`config`]    | flags and environment variables, validated before anything connects   |
//! | `watch`       | filesystem notifications that wake the loop (polling otherwise)       |
//! | `identity`    | which file a path holds (`contract::identity`, the positions file's key) |
//! | [`schema::records`] | bytes → complete CSV records (a half-written record waits)    |
//! | `tailer`      | one file: read, follow appends, detect truncation, classify records   |
//! | [`epoch_search`] | which epoch a replayed file had: candidates on the topics, checked line by line |
//! | `epoch_floor` | the highest file epoch already on the topics, which new epochs stay above |
//! | `archive`     | `--archive-dir`: checked at start, searched for files that left the inbox, moves across filesystems |
//! | `positions`   | the delivered position of every file, saved atomically and durably (format: `contract::positions`) |
//! | `publisher`   | records → Kafka (orders topic, dead-letter topic); what a refusal means for the record |
//! | `delivery`    | Kafka's answers handed back in send order: a ticket per record, no future per record |
//! | `metrics`     | the producer's Prometheus metrics                                     |
//! | `events`      | one type per happening: its log line and its metrics, emitted together |
//! | `status`      | `/status`: each file's size, delivered bytes and percentage; last error |
//! | [`error`]     | why the producer stops                                                |
//! | `inbox`       | the inbox's files: listing, renames, files that left it, archive and release |
//! | `followed`    | one followed file: its tailer, whether it left the inbox, its unconfirmed records, its progress log |
//! | `run`         | the loop tying them together, and shutdown                            |
//! | [`replay`]    | `replay FILE`: one export published again with its original versions |
//! | [`export`]    | one export read as the producer reads it, publishing nothing (`orderstream-verify`) |
//!
//! # Guarantee
//!
//! No line is lost, across crashes and restarts: a file's position is saved
//! only after Kafka confirmed every record before it, so a restart resumes at
//! or before the first unconfirmed record. Records in flight at a crash may be
//! sent twice; the consumer's idempotent upsert makes that harmless.

mod archive;
pub mod config;
mod delivery;
mod epoch_floor;
pub mod epoch_search;
pub mod error;
mod events;
pub mod export;
mod followed;
mod inbox;
mod metrics;
mod positions;
mod publisher;
pub mod replay;
mod run;
mod status;
mod tailer;
mod watch;

/// Which file a path holds: the positions file keys files by it, so it is
/// `contract`'s.
use contract::identity;

pub use config::Config;
pub use error::ProducerError;
pub use positions::{DeliveredPosition, PositionStoreError, SavedPositions};
pub use publisher::PublishError;
pub use run::run;
