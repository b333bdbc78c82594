//! The producer's metrics, registered once; the telemetry crate serves them
//! on `/metrics`. Names follow Prometheus conventions: `orderstream_producer_`
//! prefix, base units, `_total` on counters; label values come from small,
//! fixed sets (rejection kinds, flags) or the followed files.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use schema::{Flag, RejectionKind};

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
    /// Creates and registers every metric, with every rejection kind and flag
    /// label present from the start so that rates are defined before the
    /// first event.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| {
            let metric = IntCounter::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let counter_vec = |name: &str, help: &str, label: &str| {
            let metric = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let gauge = |name: &str, help: &str| {
            let metric = IntGauge::new(name, help).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let bytes_behind = IntGaugeVec::new(
            Opts::new("orderstream_producer_bytes_behind", "Bytes between what was read and the end of the file."),
            &["file"],
        )
        .expect("valid metric");
        registry.register(Box::new(bytes_behind.clone())).expect("unique metric");
        let publish_latency = Histogram::with_opts(
            HistogramOpts::new(
                "orderstream_producer_publish_latency_seconds",
                "Seconds from reading a record to Kafka's confirmation.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
        )
        .expect("valid metric");
        registry.register(Box::new(publish_latency.clone())).expect("unique metric");
        let metrics = ProducerMetrics {
            records_read: counter("orderstream_producer_records_read_total", "Complete records read from files."),
            records_published: counter(
                "orderstream_producer_records_published_total",
                "Orders confirmed by Kafka on the orders topic.",
            ),
            dead_lettered: counter_vec(
                "orderstream_producer_dead_letters_total",
                "Records confirmed on the dead-letter topic, by reason.",
                "reason",
            ),
            flagged: counter_vec(
                "orderstream_producer_flagged_total",
                "Orders published with a flag, by flag.",
                "flag",
            ),
            truncations: counter("orderstream_producer_truncations_total", "Files found truncated while followed."),
            rewrites: counter(
                "orderstream_producer_rewrites_total",
                "Files whose delivered bytes changed between runs; read again from the start.",
            ),
            files_tracked: gauge("orderstream_producer_files_tracked", "Files followed."),
            in_flight: gauge(
                "orderstream_backlog_unacknowledged_records",
                "Records read and sent, not yet acknowledged by Kafka.",
            ),
            unread_bytes: gauge("orderstream_backlog_unread_bytes", "Bytes of followed files not yet read."),
            delivery_errors: counter("orderstream_producer_delivery_errors_total", "Records Kafka refused for good."),
            position_write_errors: counter(
                "orderstream_producer_position_write_errors_total",
                "Failed attempts to save the delivered positions.",
            ),
            files_archived: counter(
                "orderstream_producer_files_archived_total",
                "Files moved into the archive folder once fully delivered and inactive.",
            ),
            files_missing: counter(
                "orderstream_producer_files_missing_total",
                "Tracked files found neither in the inbox nor in the archive folder at start.",
            ),
            epoch_floor_errors: counter(
                "orderstream_producer_epoch_floor_errors_total",
                "Failed reads of the highest file epoch on the topics before new files were versioned.",
            ),
            bytes_behind,
            publish_latency,
            registry,
        };
        for kind in RejectionKind::ALL {
            metrics.dead_lettered.with_label_values(&[kind.as_str()]);
        }
        for flag in Flag::ALL {
            metrics.flagged.with_label_values(&[flag.as_str()]);
        }
        metrics
    }
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        Self::new()
    }
}
