//! The consumer's metrics, in a Prometheus registry it owns (served on
//! `/metrics` by the telemetry crate). What happens besides a committed
//! batch (a retry, a rebalance, skipped offsets) is counted by its event in
//! `crate::events`, together with its log line.

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};
use schema::RejectionKind;
use telemetry::Registrar;

use crate::dead_letters::reasons;
use crate::upsert::UpsertOutcome;

/// What was unavailable when a transient failure paused consumption, the
/// `dependency` label of `orderstream_consumer_unavailable_total`.
pub const DEPENDENCIES: [&str; 2] = ["database", "dead_letter_topic"];

/// The `reason` of a producer dead letter the intake stored whose
/// `error_kind` is none of the producer's [`RejectionKind`]s (a header
/// missing, or written by another tool): the label set stays bounded.
pub const OTHER_PRODUCER_REASON: &str = "other";

/// The `reason` label of a producer dead letter stored by the intake: its
/// `error_kind` when it is one of the producer's kinds, else
/// [`OTHER_PRODUCER_REASON`].
pub fn producer_reason_label(error_kind: &str) -> &'static str {
    RejectionKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .find(|name| *name == error_kind)
        .unwrap_or(OTHER_PRODUCER_REASON)
}

/// Every metric the consumer keeps.
#[derive(Clone)]
pub struct Metrics {
    /// The registry holding them, for an exporter to gather.
    pub registry: Registry,
    /// Upsert outcomes by `outcome` (inserted, updated, unchanged).
    outcomes: IntCounterVec,
    /// Dead letters by `reason`.
    dead_letters: IntCounterVec,
    /// Records skipped because the stored offsets say they were applied.
    pub(crate) already_applied: IntCounter,
    /// Retries of transient failures (database, dead-letter topic).
    pub(crate) retries: IntCounter,
    /// Transient failures by what was unavailable ([`DEPENDENCIES`]).
    pub(crate) unavailable: IntCounterVec,
    /// Partitions assigned to or revoked from this member, by `topic` and
    /// `kind` (the orders topic's group and the dead-letter intake's).
    pub(crate) rebalances: IntCounterVec,
    /// Schema migrations this process applied at start.
    pub(crate) migrations_applied: IntCounter,
    /// Records per written batch.
    batch_size: Histogram,
    /// Seconds from the start of a batch transaction to its commit.
    commit_seconds: Histogram,
    /// Records received from Kafka.
    records: IntCounter,
    /// Seconds from the producer reading a line to its row committing.
    end_to_end: Histogram,
    /// Offsets never read because Kafka no longer had them, by `partition`:
    /// data lost before the consumer saw it, which must not pass silently.
    pub(crate) skipped_offsets: IntCounterVec,
    /// Records neither written nor recorded in `dead_letters`: the only
    /// trace of them besides the dead-letter topic and the log.
    pub(crate) skipped_records: IntCounter,
    /// File headers `source_files` refused: their orders are stored, the
    /// data-quality question lacks those headers.
    pub(crate) unrecorded_file_headers: IntCounter,
    /// Producer dead letters the intake stored in `dead_letters`, by
    /// `reason`: beside the producer's own count, it shows the intake keep up
    /// or stall.
    pub(crate) intake_stored: IntCounterVec,
    /// Unix time the intake last stored a producer dead letter (0: not since
    /// this process started).
    pub(crate) intake_last_stored: IntGauge,
    /// Records of the dead-letter topic the intake committed past (stored,
    /// already stored, or the consumer's own): with the producer's dead
    /// letters, it tells a stalled intake from one with nothing new to store.
    pub(crate) intake_records: IntCounter,
}

/// Running totals: logged at shutdown and written to the final report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Inserted rows.
    pub inserted: u64,
    /// Updated rows.
    pub updated: u64,
    /// Unchanged rows (duplicates, replays, older versions).
    pub unchanged: u64,
    /// Dead-lettered records.
    pub dead_lettered: u64,
}

impl Metrics {
    /// Creates and registers every metric, with every label value
    /// pre-registered so dashboards show zeros rather than gaps.
    pub fn new() -> Self {
        let metrics = Registrar::new();
        Metrics {
            outcomes: metrics.counter_vec(
                "orderstream_consumer_upserts_total",
                "Records applied, by outcome.",
                "outcome",
                &["inserted", "updated", "unchanged"],
            ),
            dead_letters: metrics.counter_vec(
                "orderstream_consumer_dead_letters_total",
                "Records dead-lettered, by reason.",
                "reason",
                &reasons::ALL,
            ),
            already_applied: metrics.counter(
                "orderstream_consumer_already_applied_total",
                "Records skipped because PostgreSQL's stored offsets show them applied.",
            ),
            retries: metrics.counter("orderstream_consumer_retries_total", "Retries of transient database failures."),
            unavailable: metrics.counter_vec(
                "orderstream_consumer_unavailable_total",
                "Transient failures that paused consumption (each followed by a retry), by what was unavailable: \
                 the database or the dead-letter topic.",
                "dependency",
                &DEPENDENCIES,
            ),
            rebalances: metrics.counters(
                "orderstream_consumer_rebalances_total",
                "Rebalances that assigned partitions to this consumer or revoked them, by topic and kind \
                 (assigned, revoked).",
                &["topic", "kind"],
            ),
            migrations_applied: metrics.counter(
                "orderstream_consumer_migrations_applied_total",
                "Schema migrations this consumer applied at start (0 when the schema was current).",
            ),
            batch_size: metrics.histogram(
                "orderstream_consumer_batch_records",
                "Records per written batch.",
                &[1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0],
            ),
            commit_seconds: metrics.histogram(
                "orderstream_consumer_batch_commit_seconds",
                "Duration of a batch transaction, begin to commit.",
                &[],
            ),
            records: metrics.counter("orderstream_consumer_records_total", "Records received from Kafka."),
            end_to_end: metrics.histogram(
                "orderstream_consumer_end_to_end_latency_seconds",
                "Seconds from the producer reading a line to its row committing in PostgreSQL.",
                &[0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
            ),
            skipped_offsets: metrics.counters(
                "orderstream_consumer_skipped_offsets_total",
                "Offsets never read because they no longer existed in Kafka when the consumer resumed at its stored \
                 offset (deleted by retention before being applied, or transaction markers), by partition; the \
                 value counts offsets, not events.",
                &["partition"],
            ),
            skipped_records: metrics.counter(
                "orderstream_consumer_skipped_records_total",
                "Records neither written nor recorded in the dead_letters table (the table refused even their \
                 storable form): published to the dead-letter topic, logged, and passed with their offset stored.",
            ),
            unrecorded_file_headers: metrics.counter(
                "orderstream_consumer_unrecorded_file_headers_total",
                "File headers the source_files table refused (logged with the database's reason): their orders \
                 are stored, the data-quality question lacks those headers.",
            ),
            intake_stored: {
                let reasons: Vec<&str> =
                    RejectionKind::ALL.iter().map(|kind| kind.as_str()).chain([OTHER_PRODUCER_REASON]).collect();
                metrics.counter_vec(
                    "orderstream_consumer_intake_dead_letters_total",
                    "Producer dead letters (bad CSV lines from the dead-letter topic) the dead-letter intake stored in \
                     the dead_letters table, by reason; lines already stored are not counted.",
                    "reason",
                    &reasons,
                )
            },
            intake_last_stored: metrics.gauge(
                "orderstream_consumer_intake_last_stored_timestamp_seconds",
                "Unix time the dead-letter intake last stored a producer dead letter (0: not since this consumer \
                 started).",
            ),
            intake_records: metrics.counter(
                "orderstream_consumer_intake_records_total",
                "Records of the dead-letter topic the dead-letter intake committed past: stored, already stored, or \
                 the consumer's own dead letters.",
            ),
            registry: metrics.registry(),
        }
    }

    /// Records a batch received from Kafka.
    pub fn received(&self, records: usize) {
        self.records.inc_by(records as u64);
    }

    /// Records how long each committed order took from being read to now.
    pub fn committed_at(&self, read_at: &[chrono::DateTime<chrono::Utc>], now: chrono::DateTime<chrono::Utc>) {
        for read in read_at {
            self.end_to_end.observe((now - *read).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6);
        }
    }

    /// Records a committed batch.
    pub fn batch_committed(
        &self,
        records: usize,
        outcome: UpsertOutcome,
        dead_letter_reasons: &[&str],
        already_applied: u64,
        seconds: f64,
    ) {
        self.outcomes.with_label_values(&["inserted"]).inc_by(outcome.inserted);
        self.outcomes.with_label_values(&["updated"]).inc_by(outcome.updated);
        self.outcomes.with_label_values(&["unchanged"]).inc_by(outcome.unchanged);
        for reason in dead_letter_reasons {
            self.dead_letters.with_label_values(&[reason]).inc();
        }
        self.already_applied.inc_by(already_applied);
        self.batch_size.observe(records as f64);
        self.commit_seconds.observe(seconds);
    }

    /// The totals so far.
    pub fn totals(&self) -> Totals {
        let outcome = |name: &str| self.outcomes.with_label_values(&[name]).get();
        Totals {
            inserted: outcome("inserted"),
            updated: outcome("updated"),
            unchanged: outcome("unchanged"),
            dead_lettered: reasons::ALL.iter().map(|reason| self.dead_letters.with_label_values(&[reason]).get()).sum(),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_committed_batches() {
        let metrics = Metrics::new();
        metrics.batch_committed(
            5,
            UpsertOutcome { inserted: 3, updated: 1, unchanged: 0 },
            &[reasons::UNDECODABLE_VALUE],
            0,
            0.01,
        );
        metrics.batch_committed(2, UpsertOutcome { inserted: 0, updated: 0, unchanged: 2 }, &[], 4, 0.01);
        assert_eq!(metrics.totals(), Totals { inserted: 3, updated: 1, unchanged: 2, dead_lettered: 1 });
    }

    #[test]
    fn counters_are_named_for_prometheus() {
        let names: Vec<String> = Metrics::new().registry.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(names.contains(&"orderstream_consumer_upserts_total".to_string()), "{names:?}");
        // Its own series carry its prefix; besides them only what every
        // process exports (`process_*`, `orderstream_build_info`).
        let foreign = |name: &&String| !name.starts_with("process_") && *name != "orderstream_build_info";
        assert!(names.iter().filter(foreign).all(|name| name.starts_with("orderstream_consumer_")), "{names:?}");
    }
}
