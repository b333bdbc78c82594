//! The producer's metrics, registered once; the telemetry crate serves them
//! on `/metrics`. Names follow Prometheus conventions: `orderstream_producer_`
//! prefix, base units, `_total` on counters; label values come from small,
//! fixed sets (rejection kinds, flags), the files followed now (a series
//! leaves with its file), or a bounded set of column names.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use schema::{Flag, RejectionKind};
use telemetry::Registrar;

/// How reading a file started, the `start` label of
/// `orderstream_producer_files_followed_total`.
pub const FILE_STARTS: [&str; 4] = ["new", "resumed", "rewritten", "truncated"];

/// Distinct column names `orderstream_producer_new_columns_total` counts
/// under their own label, per process: enough for every export a shop
/// plausibly has, few enough that one wide header cannot flood Prometheus.
pub const MAX_COLUMN_LABELS: usize = 100;

/// The `column` label of the new columns past [`MAX_COLUMN_LABELS`]; not a
/// possible column name label (names are trimmed, never parenthesised
/// like this by the exports seen).
pub const OTHER_COLUMNS: &str = "(other)";

/// `orderstream_producer_new_columns_total{column}`, with at most
/// [`MAX_COLUMN_LABELS`] column labels: later names are counted under
/// [`OTHER_COLUMNS`], so the number of series is bounded whatever the
/// headers hold.
#[derive(Clone)]
pub struct NewColumnsCounter {
    counter: IntCounterVec,
    /// The column names that have their own label: shared by every clone.
    labelled: Arc<Mutex<BTreeSet<String>>>,
}

impl NewColumnsCounter {
    /// Counts one new column.
    pub fn inc(&self, column: &str) {
        let label = self.label_for(column);
        self.counter.with_label_values(&[&label]).inc();
    }

    /// The column's own name while fewer than [`MAX_COLUMN_LABELS`] names
    /// have a label (or it has one), else [`OTHER_COLUMNS`].
    fn label_for(&self, column: &str) -> String {
        let mut labelled = self.labelled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if labelled.contains(column) || labelled.len() < MAX_COLUMN_LABELS {
            labelled.insert(column.to_owned());
            column.to_owned()
        } else {
            OTHER_COLUMNS.to_owned()
        }
    }
}

/// `orderstream_producer_unread_bytes{file}`: one series per file followed
/// now. A file released, archived or renamed loses its old series at the
/// next update, so the series never outnumber the files followed.
#[derive(Clone)]
pub struct UnreadBytesByFile {
    gauge: IntGaugeVec,
    /// The `file` labels set by the last update: shared by every clone.
    labelled: Arc<Mutex<BTreeSet<String>>>,
}

impl UnreadBytesByFile {
    /// Sets the series of exactly the files in `unread` (path → bytes) and
    /// removes every series of a file not in it.
    pub fn update(&self, unread: &BTreeMap<String, i64>) {
        let mut labelled = self.labelled.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for gone in labelled.iter().filter(|file| !unread.contains_key(*file)) {
            self.gauge.remove_label_values(&[gone]).ok();
        }
        for (file, bytes) in unread {
            self.gauge.with_label_values(&[file]).set(*bytes);
        }
        *labelled = unread.keys().cloned().collect();
    }
}

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
    /// Columns beyond the known ones, counted once per file (and header)
    /// that has them for the first time, labelled by column name (a
    /// bounded set of names, see [`NewColumnsCounter`]).
    pub new_columns: NewColumnsCounter,
    /// Bytes between what was read and the end of each followed file.
    pub bytes_behind: UnreadBytesByFile,
    /// Files followed.
    pub files_tracked: IntGauge,
    /// Records sent and not yet confirmed by Kafka (a backlog stage).
    pub in_flight: IntGauge,
    /// Bytes of followed files not yet read, all files (a backlog stage);
    /// an unterminated last line is not counted: it is not late, it waits
    /// for its newline or for the file to be finished.
    pub unread_bytes: IntGauge,
    /// Bytes after the last line terminator of followed files, all files:
    /// last lines published once their file is finished (`--close-inactive`).
    pub unterminated_bytes: IntGauge,
    /// Inbox files the producer cannot open (permissions): they wait, retried
    /// on every scan. One series, so its cardinality is bounded; `/status`
    /// names the files.
    pub unreadable_files: IntGauge,
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
            new_columns: NewColumnsCounter {
                counter: metrics.counters(
                    "orderstream_producer_new_columns_total",
                    "Columns beyond the known ones, once per file header that has them first, by column name; \
                     past the first 100 names, under column=\"(other)\".",
                    &["column"],
                ),
                labelled: Arc::default(),
            },
            bytes_behind: UnreadBytesByFile {
                gauge: metrics.gauge_vec(
                    "orderstream_producer_unread_bytes",
                    "Bytes between what was read and the end of the file, for each file followed now.",
                    &["file"],
                ),
                labelled: Arc::default(),
            },
            files_tracked: metrics.gauge("orderstream_producer_tracked_files", "Files followed."),
            in_flight: metrics.gauge(
                "orderstream_backlog_unacknowledged_records",
                "Records read and sent, not yet acknowledged by Kafka.",
            ),
            unread_bytes: metrics.gauge(
                "orderstream_backlog_unread_bytes",
                "Bytes of followed files not yet read, but for last lines without their newline.",
            ),
            unterminated_bytes: metrics.gauge(
                "orderstream_producer_unterminated_bytes",
                "Bytes after the last newline of followed files: published once the file is unchanged for --close-inactive.",
            ),
            unreadable_files: metrics.gauge(
                "orderstream_producer_unreadable_files",
                "Inbox files the producer cannot open (permissions), retried on every scan.",
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The labelled series of one metric, as `/metrics` shows them: (the
    /// label's value, the series' value).
    fn series(metrics: &ProducerMetrics, name: &str) -> Vec<(String, f64)> {
        let text = prometheus::TextEncoder::new().encode_to_string(&metrics.registry.gather()).unwrap();
        let prefix = format!("{name}{{");
        text.lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .map(|rest| {
                let (labels, value) = rest.split_once("} ").unwrap();
                let label = labels.split_once('=').unwrap().1.trim_matches('"');
                (label.to_owned(), value.parse().unwrap())
            })
            .collect()
    }

    #[test]
    fn one_wide_header_adds_at_most_the_bounded_number_of_column_series() {
        let metrics = ProducerMetrics::new();
        let columns: Vec<String> = (0..400).map(|n| format!("shop_field_{n:03}")).collect();
        crate::events::NewColumnsSeen { file: std::path::Path::new("/inbox/wide.csv"), line: 1, columns: &columns }
            .emit(&metrics);
        let counted = series(&metrics, "orderstream_producer_new_columns_total");
        assert_eq!(counted.len(), MAX_COLUMN_LABELS + 1, "the first names, and (other)");
        assert!(counted.contains(&("shop_field_000".into(), 1.0)));
        assert!(counted.contains(&(OTHER_COLUMNS.into(), 300.0)), "{counted:?}");
        // A name labelled before keeps its label once the bound is reached.
        metrics.new_columns.inc("shop_field_001");
        assert!(series(&metrics, "orderstream_producer_new_columns_total").contains(&("shop_field_001".into(), 2.0)));
    }

    #[test]
    fn unread_bytes_series_leave_with_their_files() {
        let metrics = ProducerMetrics::new();
        let unread = |files: &[(&str, i64)]| files.iter().map(|(file, bytes)| (file.to_string(), *bytes)).collect();
        metrics.bytes_behind.update(&unread(&[("/inbox/a.csv", 10), ("/inbox/b.csv", 0)]));
        metrics.bytes_behind.update(&unread(&[("/archive/a.csv", 4)]));
        assert_eq!(series(&metrics, "orderstream_producer_unread_bytes"), [("/archive/a.csv".to_string(), 4.0)]);
        metrics.bytes_behind.update(&BTreeMap::new());
        assert_eq!(series(&metrics, "orderstream_producer_unread_bytes"), []);
    }
}
