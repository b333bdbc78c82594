//! The producer's metrics, registered once; the telemetry crate serves them
//! on `/metrics`. Names follow Prometheus conventions: `orderstream_producer_`
//! prefix, base units, `_total` on counters; label values come from small,
//! fixed sets (rejection kinds, flags) or the followed files.

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use schema::{Flag, RejectionKind};
use telemetry::Registrar;

/// How reading a file started, the `start` label of
/// `orderstream_producer_files_followed_total`.
pub const FILE_STARTS: [&str; 4] = ["new", "resumed", "rewritten", "truncated"];

/// Every metric of the producer.
#[derive(Clone)]
pub struct ProducerMetrics {
    /// The registry holding them, for the HTTP endpoint.
    pub registry: Registry,
    /// Complete records read from files (headers included).
    pub records_read: IntCounter,
    /// Orders Kafka confirmed on the orders topic.
    pub records_published: IntCounter,
    /// Records Kafka confirmed on the dead-letter topic, by rejection kind.
    pub dead_lettered: IntCounterVec,
    /// Valid orders published with a flag, by flag.
    pub flagged: IntCounterVec,
    /// Files found shorter than what was read (copytruncate).
    pub truncations: IntCounter,
    /// Files whose bytes before the saved position changed between runs.
    pub rewrites: IntCounter,
    /// Files whose reading started, by how ([`FILE_STARTS`]): a restart that
    /// resumes where it stopped shows as `resumed`, not `new`.
    pub files_followed: IntCounterVec,
    /// Followed files found under another name in the inbox.
    pub files_renamed: IntCounter,
    /// Files whose header could not be used (their records dead-lettered).
    pub unusable_headers: IntCounter,
    /// Bytes between what was read and the end of each followed file.
    pub bytes_behind: IntGaugeVec,
    /// Files followed.
    pub files_tracked: IntGauge,
    /// Records sent and not yet confirmed by Kafka (a backlog stage).
    pub in_flight: IntGauge,
    /// Bytes of followed files not yet read, all files (a backlog stage).
    pub unread_bytes: IntGauge,
    /// Records Kafka refused for good.
    pub delivery_errors: IntCounter,
    /// Failed attempts to save the position store.
    pub position_write_errors: IntCounter,
    /// 1 while the positions cannot be saved and reading is stopped, else 0.
    pub positions_unsaveable: IntGauge,
    /// Seconds from reading a record to Kafka's confirmation.
    pub publish_latency: Histogram,
    /// Files moved into `--archive-dir` by `--archive-after`.
    pub files_archived: IntCounter,
    /// Tracked files found neither in the inbox nor in the archive at start:
    /// whatever of them was not yet delivered cannot be read any more.
    pub files_missing: IntCounter,
    /// Failed reads of the highest epoch on the topics before new files.
    pub epoch_floor_errors: IntCounter,
}

impl ProducerMetrics {
    /// Creates and registers every metric, with every rejection kind, flag
    /// and start label present from the start so that rates are defined
    /// before the first event.
    pub fn new() -> Self {
        let metrics = Registrar::new();
        let kinds: Vec<&str> = RejectionKind::ALL.iter().map(|kind| kind.as_str()).collect();
        let flags: Vec<&str> = Flag::ALL.iter().map(|flag| flag.as_str()).collect();
        ProducerMetrics {
            records_read: metrics
                .counter("orderstream_producer_records_read_total", "Complete records read from files."),
            records_published: metrics.counter(
                "orderstream_producer_records_published_total",
                "Orders confirmed by Kafka on the orders topic.",
            ),
            dead_lettered: metrics.counter_vec(
                "orderstream_producer_dead_letters_total",
                "Records confirmed on the dead-letter topic, by reason.",
                "reason",
                &kinds,
            ),
            flagged: metrics.counter_vec(
                "orderstream_producer_flagged_total",
                "Orders published with a flag, by flag.",
                "flag",
                &flags,
            ),
            truncations: metrics
                .counter("orderstream_producer_truncations_total", "Files found truncated while followed."),
            rewrites: metrics.counter(
                "orderstream_producer_rewrites_total",
                "Files whose delivered bytes changed between runs; read again from the start.",
            ),
            files_followed: metrics.counter_vec(
                "orderstream_producer_files_followed_total",
                "Files whose reading started, by start: new, resumed (at the delivered position), rewritten or \
                 truncated (from the first byte).",
                "start",
                &FILE_STARTS,
            ),
            files_renamed: metrics.counter(
                "orderstream_producer_files_renamed_total",
                "Followed files found under a new name in the inbox; their position kept.",
            ),
            unusable_headers: metrics.counter(
                "orderstream_producer_unusable_headers_total",
                "Files whose header could not be used; every record of such a file is dead-lettered as bad_header.",
            ),
            bytes_behind: metrics.gauge_vec(
                "orderstream_producer_unread_bytes",
                "Bytes between what was read and the end of the file.",
                &["file"],
            ),
            files_tracked: metrics.gauge("orderstream_producer_tracked_files", "Files followed."),
            in_flight: metrics.gauge(
                "orderstream_backlog_unacknowledged_records",
                "Records read and sent, not yet acknowledged by Kafka.",
            ),
            unread_bytes: metrics.gauge("orderstream_backlog_unread_bytes", "Bytes of followed files not yet read."),
            delivery_errors: metrics
                .counter("orderstream_producer_delivery_errors_total", "Records Kafka refused for good."),
            position_write_errors: metrics.counter(
                "orderstream_producer_position_write_errors_total",
                "Failed attempts to save the delivered positions.",
            ),
            positions_unsaveable: metrics.gauge(
                "orderstream_producer_positions_unsaveable",
                "1 while the delivered positions cannot be saved (a full disk) and reading is stopped, else 0.",
            ),
            publish_latency: metrics.histogram(
                "orderstream_producer_publish_latency_seconds",
                "Seconds from reading a record to Kafka's confirmation.",
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0],
            ),
            files_archived: metrics.counter(
                "orderstream_producer_files_archived_total",
                "Files moved into the archive folder once fully delivered and inactive.",
            ),
            files_missing: metrics.counter(
                "orderstream_producer_files_missing_total",
                "Tracked files found neither in the inbox nor in the archive folder at start.",
            ),
            epoch_floor_errors: metrics.counter(
                "orderstream_producer_epoch_floor_errors_total",
                "Failed reads of the highest file epoch on the topics before new files were versioned.",
            ),
            registry: metrics.registry(),
        }
    }
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        Self::new()
    }
}
