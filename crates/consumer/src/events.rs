//! What happens in the consumer, one type per happening: each event's
//! `emit` writes its log line and updates its metrics together, so the log
//! and `/metrics` never disagree, and its message is a constant.
//!
//! Tests and scripts never match these messages: they read the metric an
//! event updates, `/status`, or the final report written at shutdown.

use std::time::Duration;

use tracing::{error, info, warn};

use crate::metrics::{producer_reason_label, Metrics, Totals};

/// The consumer joined its group and reads.
pub struct ConsumerStarted<'a> {
    /// The orders topic.
    pub topic: &'a str,
    /// The consumer group.
    pub group: &'a str,
    /// Records per batch at most.
    pub batch_size: usize,
}

impl ConsumerStarted<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Consumer started.";

    /// Logs it (`/readyz` turns ready at the same moment).
    pub fn emit(&self) {
        info!(message = Self::MESSAGE, topic = %self.topic, group = %self.group, batch_size = self.batch_size);
    }
}

/// A rebalance gave this member partitions of `topic`.
pub struct PartitionsAssigned<'a> {
    /// The topic (orders, or the dead-letter topic for the intake).
    pub topic: &'a str,
    /// The partitions added.
    pub partitions: &'a [i32],
}

impl PartitionsAssigned<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Partitions assigned.";

    /// Logs and counts it (`orderstream_consumer_rebalances_total{kind="assigned"}`).
    pub fn emit(&self, metrics: &Metrics) {
        info!(message = Self::MESSAGE, topic = %self.topic, partitions = ?self.partitions);
        metrics.rebalances.with_label_values(&[self.topic, "assigned"]).inc();
    }
}

/// A rebalance took partitions of `topic` from this member.
pub struct PartitionsRevoked<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partitions taken away.
    pub partitions: &'a [i32],
}

impl PartitionsRevoked<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Partitions revoked.";

    /// Logs and counts it (`orderstream_consumer_rebalances_total{kind="revoked"}`).
    pub fn emit(&self, metrics: &Metrics) {
        info!(message = Self::MESSAGE, topic = %self.topic, partitions = ?self.partitions);
        metrics.rebalances.with_label_values(&[self.topic, "revoked"]).inc();
    }
}

/// The database failed transiently (connection lost, restart, deadlock,
/// timeout): the batch is rolled back and tried again after `retry_in`.
pub struct DatabaseUnavailable<'a> {
    /// What was being done (`write`, `migrate`, `dead-letter intake`).
    pub operation: &'a str,
    /// The failure.
    pub error: &'a dyn std::fmt::Display,
    /// The pause before the next try.
    pub retry_in: Duration,
}

impl DatabaseUnavailable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Database unavailable; retrying.";

    /// Logs it; counts a retry and `orderstream_consumer_unavailable_total{dependency="database"}`.
    pub fn emit(&self, metrics: &Metrics) {
        warn!(message = Self::MESSAGE, operation = self.operation, error = %self.error,
              retry_in_ms = self.retry_in.as_millis() as u64);
        metrics.retries.inc();
        metrics.unavailable.with_label_values(&["database"]).inc();
    }
}

/// The dead-letter topic refused a dead letter: the batch waits, and nothing
/// past it is committed, until the topic takes it.
pub struct DeadLetterTopicUnwritable<'a> {
    /// What was being done.
    pub operation: &'a str,
    /// Kafka's answer.
    pub error: &'a dyn std::fmt::Display,
    /// The pause before the next try.
    pub retry_in: Duration,
}

impl DeadLetterTopicUnwritable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Dead-letter topic unwritable; the batch waits, nothing past it is committed.";

    /// Logs it; counts a retry and
    /// `orderstream_consumer_unavailable_total{dependency="dead_letter_topic"}`.
    pub fn emit(&self, metrics: &Metrics) {
        error!(message = Self::MESSAGE, operation = self.operation, error = %self.error,
               retry_in_ms = self.retry_in.as_millis() as u64);
        metrics.retries.inc();
        metrics.unavailable.with_label_values(&["dead_letter_topic"]).inc();
    }
}

/// The dead-letter producer is in librdkafka's fatal state: the consumer
/// exits (non-zero) for its supervisor to restart it.
pub struct DeadLetterProducerFailed<'a> {
    /// What was being done.
    pub operation: &'a str,
    /// The fatal error.
    pub error: &'a dyn std::fmt::Display,
}

impl DeadLetterProducerFailed<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Dead-letter producer failed fatally; exiting.";

    /// Logs it (the exit status and `/readyz` say it too).
    pub fn emit(&self) {
        error!(message = Self::MESSAGE, operation = self.operation, error = %self.error);
    }
}

/// Offsets of a partition were never read: Kafka no longer had them when
/// the consumer resumed at its stored offset.
pub struct OffsetsSkipped {
    /// The partition.
    pub partition: i32,
    /// How many offsets.
    pub count: i64,
}

impl OffsetsSkipped {
    /// The log message.
    pub const MESSAGE: &'static str = "Offsets skipped: they no longer exist in Kafka (retention deleted them before \
                                       they were applied, or transaction markers).";

    /// Logs it and counts the offsets (`orderstream_consumer_skipped_offsets_total{partition}`).
    pub fn emit(&self, metrics: &Metrics) {
        warn!(message = Self::MESSAGE, partition = self.partition, skipped = self.count);
        metrics.skipped_offsets.with_label_values(&[&self.partition.to_string()]).inc_by(self.count.max(0) as u64);
    }
}

/// A dead letter the `dead_letters` table refused even in its storable
/// form: it is only on the dead-letter topic.
pub struct RecordSkipped<'a> {
    /// The record's topic/partition/offset.
    pub source: &'a str,
    /// The database's reason.
    pub reason: &'a str,
}

impl RecordSkipped<'_> {
    /// The log message.
    pub const MESSAGE: &'static str =
        "Record skipped: the dead_letters table refused it; it is only on the dead-letter topic.";

    /// Logs and counts it (`orderstream_consumer_skipped_records_total`).
    pub fn emit(&self, metrics: &Metrics) {
        error!(message = Self::MESSAGE, source = %self.source, reason = %self.reason);
        metrics.skipped_records.inc();
    }
}

/// A file's header the `source_files` table refused: the batch's orders
/// are written all the same; only the data-quality question misses it.
pub struct FileHeaderUnrecorded<'a> {
    /// The file.
    pub file: &'a str,
    /// The database's reason.
    pub reason: &'a str,
}

impl FileHeaderUnrecorded<'_> {
    /// The log message.
    pub const MESSAGE: &'static str =
        "File header not recorded: source_files refused it; the file's orders are stored.";

    /// Logs and counts it (`orderstream_consumer_unrecorded_file_headers_total`).
    pub fn emit(&self, metrics: &Metrics) {
        warn!(message = Self::MESSAGE, file = %self.file, reason = %self.reason);
        metrics.unrecorded_file_headers.inc();
    }
}

/// The dead-letter intake committed a transaction: the producer dead letters
/// new in `dead_letters`, and records it passed.
pub struct DeadLetterIntakeCommitted<'a> {
    /// The `error_kind` of each dead letter new in the table.
    pub reasons: &'a [&'a str],
    /// Records passed in the same transaction: the consumer's own, or lines
    /// already stored.
    pub passed: u64,
    /// When it committed.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl DeadLetterIntakeCommitted<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Producer dead letters stored.";

    /// Counts every record committed past
    /// (`orderstream_consumer_intake_records_total`); when some dead letters
    /// were new, logs it, counts each by reason
    /// (`orderstream_consumer_intake_dead_letters_total{reason}`) and sets
    /// `orderstream_consumer_intake_last_stored_timestamp_seconds`.
    pub fn emit(&self, metrics: &Metrics) {
        metrics.intake_records.inc_by(self.reasons.len() as u64 + self.passed);
        if self.reasons.is_empty() {
            return;
        }
        info!(message = Self::MESSAGE, stored = self.reasons.len(), passed = self.passed);
        for reason in self.reasons {
            metrics.intake_stored.with_label_values(&[producer_reason_label(reason)]).inc();
        }
        metrics.intake_last_stored.set(self.at.timestamp());
    }
}

/// One schema migration was applied (inside the migration transaction).
pub struct MigrationApplied<'a> {
    /// Its version.
    pub version: i32,
    /// Its name.
    pub name: &'a str,
}

impl MigrationApplied<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Migration applied.";

    /// Logs it (also from `migrate`, which has no metrics: the running
    /// consumer counts its migrations with [`SchemaMigrated`]).
    pub fn emit(&self) {
        info!(message = Self::MESSAGE, version = self.version, name = self.name);
    }
}

/// At start, the schema was brought up to date (or was already).
pub struct SchemaMigrated {
    /// How many migrations this process applied.
    pub applied: usize,
}

impl SchemaMigrated {
    /// The log message.
    pub const MESSAGE: &'static str = "Schema is current.";

    /// Logs it and counts the migrations (`orderstream_consumer_migrations_applied_total`).
    pub fn emit(&self, metrics: &Metrics) {
        info!(message = Self::MESSAGE, applied = self.applied);
        metrics.migrations_applied.inc_by(self.applied as u64);
    }
}

/// The running totals, every ten seconds while records flow and once at
/// shutdown.
pub struct TotalsReached {
    /// The totals.
    pub totals: Totals,
    /// Whether this is the line written at shutdown.
    pub at_shutdown: bool,
}

impl TotalsReached {
    /// The periodic message.
    pub const MESSAGE: &'static str = "Consumer totals.";
    /// The message at shutdown.
    pub const AT_SHUTDOWN: &'static str = "Consumer totals at shutdown.";

    /// Logs the totals, with the retries and already-applied records the
    /// metrics hold.
    pub fn emit(&self, metrics: &Metrics) {
        let totals = self.totals;
        info!(
            message = if self.at_shutdown { Self::AT_SHUTDOWN } else { Self::MESSAGE },
            inserted = totals.inserted,
            updated = totals.updated,
            unchanged = totals.unchanged,
            dead_lettered = totals.dead_lettered,
            already_applied = metrics.already_applied.get(),
            retries = metrics.retries.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_offsets_count_offsets_per_partition_and_skipped_records_each_record() {
        let metrics = Metrics::new();
        OffsetsSkipped { partition: 2, count: 100 }.emit(&metrics);
        OffsetsSkipped { partition: 5, count: 1 }.emit(&metrics);
        OffsetsSkipped { partition: 2, count: 3 }.emit(&metrics);
        RecordSkipped { source: "orders/0/1", reason: "refused" }.emit(&metrics);
        assert_eq!(metrics.skipped_offsets.with_label_values(&["2"]).get(), 103);
        assert_eq!(metrics.skipped_offsets.with_label_values(&["5"]).get(), 1);
        assert_eq!(metrics.skipped_records.get(), 1);
    }

    #[test]
    fn an_unrecorded_file_header_is_counted() {
        let metrics = Metrics::new();
        FileHeaderUnrecorded { file: "wide.csv", reason: "refused" }.emit(&metrics);
        assert_eq!(metrics.unrecorded_file_headers.get(), 1);
    }

    #[test]
    fn retries_are_counted_by_what_was_unavailable() {
        let metrics = Metrics::new();
        let error = "connection refused";
        let retry_in = Duration::from_millis(100);
        DatabaseUnavailable { operation: "write", error: &error, retry_in }.emit(&metrics);
        DatabaseUnavailable { operation: "write", error: &error, retry_in }.emit(&metrics);
        DeadLetterTopicUnwritable { operation: "write", error: &error, retry_in }.emit(&metrics);
        assert_eq!(metrics.retries.get(), 3);
        assert_eq!(metrics.unavailable.with_label_values(&["database"]).get(), 2);
        assert_eq!(metrics.unavailable.with_label_values(&["dead_letter_topic"]).get(), 1);
    }

    #[test]
    fn stored_producer_dead_letters_are_counted_by_a_bounded_reason() {
        let metrics = Metrics::new();
        let at: chrono::DateTime<chrono::Utc> = "2026-11-29T10:00:00Z".parse().unwrap();
        assert_eq!(metrics.intake_last_stored.get(), 0, "nothing stored yet");
        let reasons = ["invalid_amount", "invalid_amount", "field_count", "made_up_by_another_tool"];
        DeadLetterIntakeCommitted { reasons: &reasons, passed: 2, at }.emit(&metrics);
        let stored = |reason| metrics.intake_stored.with_label_values(&[reason]).get();
        assert_eq!((stored("invalid_amount"), stored("field_count"), stored("other")), (2, 1, 1));
        assert_eq!(metrics.intake_last_stored.get(), at.timestamp());
        assert_eq!(metrics.intake_records.get(), 6, "stored and passed");

        let later: chrono::DateTime<chrono::Utc> = "2026-11-29T11:00:00Z".parse().unwrap();
        DeadLetterIntakeCommitted { reasons: &[], passed: 3, at: later }.emit(&metrics);
        assert_eq!(metrics.intake_records.get(), 9, "records passed with nothing new still count");
        assert_eq!(metrics.intake_last_stored.get(), at.timestamp(), "nothing new stored: unchanged");
    }

    #[test]
    fn rebalances_are_counted_per_topic_and_kind() {
        let metrics = Metrics::new();
        PartitionsAssigned { topic: "orders", partitions: &[0, 1] }.emit(&metrics);
        PartitionsRevoked { topic: "orders", partitions: &[1] }.emit(&metrics);
        PartitionsAssigned { topic: "orders", partitions: &[1] }.emit(&metrics);
        assert_eq!(metrics.rebalances.with_label_values(&["orders", "assigned"]).get(), 2);
        assert_eq!(metrics.rebalances.with_label_values(&["orders", "revoked"]).get(), 1);
    }
}
