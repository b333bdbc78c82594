//! The series the exporter publishes. Backlog series share the
//! `orderstream_backlog_` prefix across processes, one per pipeline stage:
//! `unread_bytes` and `unacknowledged_records` (producer), `group_lag_records`
//! and `group_lag_seconds` and `freshness_seconds` (here).

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use telemetry::Registrar;

use crate::age::PartitionAge;
use crate::lag::GroupLag;

/// Where a measurement can fail, the `source` label of
/// `orderstream_lag_exporter_errors_total`.
pub const SOURCES: [&str; 2] = ["kafka", "database"];

/// Every series of the exporter.
#[derive(Clone)]
pub struct ExporterMetrics {
    /// The registry, for the HTTP endpoint.
    pub registry: Registry,
    partition_lag: IntGaugeVec,
    high_watermark: IntGaugeVec,
    committed: IntGaugeVec,
    group_lag: IntGaugeVec,
    members: IntGaugeVec,
    partition_lag_seconds: GaugeVec,
    group_lag_seconds: GaugeVec,
    freshness: Gauge,
    last_success: IntGauge,
    /// Failed measurements by source ([`SOURCES`]), counted by the events.
    pub(crate) errors: IntCounterVec,
}

impl ExporterMetrics {
    /// Creates and registers the series.
    pub fn new() -> Self {
        let metrics = Registrar::new();
        ExporterMetrics {
            partition_lag: metrics.gauge_vec(
                "orderstream_lag_exporter_partition_lag_records",
                "Records written to a partition and not yet committed by the group.",
                &["group", "topic", "partition"],
            ),
            high_watermark: metrics.gauge_vec(
                "orderstream_lag_exporter_high_watermark_offset",
                "One past the last record written to a partition.",
                &["topic", "partition"],
            ),
            committed: metrics.gauge_vec(
                "orderstream_lag_exporter_committed_offset",
                "The group's committed offset of a partition (-1: none yet).",
                &["group", "topic", "partition"],
            ),
            group_lag: metrics.gauge_vec(
                "orderstream_backlog_group_lag_records",
                "Records on the topic not yet committed by the group, all partitions.",
                &["group", "topic"],
            ),
            members: metrics.gauge_vec(
                "orderstream_lag_exporter_group_members",
                "Consumers in the group right now.",
                &["group"],
            ),
            partition_lag_seconds: metrics.float_gauge_vec(
                "orderstream_lag_exporter_partition_lag_seconds",
                "Seconds since the oldest record of a partition the group has not committed was written (0: none).",
                &["group", "topic", "partition"],
            ),
            group_lag_seconds: metrics.float_gauge_vec(
                "orderstream_backlog_group_lag_seconds",
                "Seconds since the oldest record the group has not committed was written, all partitions (0: none).",
                &["group", "topic"],
            ),
            freshness: metrics.float_gauge(
                "orderstream_backlog_freshness_seconds",
                "Seconds since the producer read the newest order committed to PostgreSQL.",
            ),
            last_success: metrics.gauge(
                "orderstream_lag_exporter_last_success_timestamp_seconds",
                "Unix time of the last complete measurement.",
            ),
            errors: metrics.counter_vec(
                "orderstream_lag_exporter_errors_total",
                "Failed measurements, by source.",
                "source",
                &SOURCES,
            ),
            registry: metrics.registry(),
        }
    }

    /// Publishes one measurement of the group.
    pub fn observe_lag(&self, group: &str, topic: &str, lag: &GroupLag) {
        for offsets in &lag.partitions {
            let partition = offsets.partition.to_string();
            self.partition_lag.with_label_values(&[group, topic, &partition]).set(offsets.lag());
            self.high_watermark.with_label_values(&[topic, &partition]).set(offsets.high);
            self.committed.with_label_values(&[group, topic, &partition]).set(offsets.committed.unwrap_or(-1));
        }
        let total = lag.partitions.iter().map(|offsets| offsets.lag()).sum();
        self.group_lag.with_label_values(&[group, topic]).set(total);
        self.members.with_label_values(&[group]).set(lag.members as i64);
    }

    /// Publishes each partition's lag in seconds and the oldest of them. A
    /// partition whose oldest record was not read in time keeps its last
    /// value, so a slow read never shows a lagging group as caught up.
    pub fn observe_ages(&self, group: &str, topic: &str, ages: &[(i32, PartitionAge)]) {
        let mut oldest: f64 = 0.0;
        for (partition, age) in ages {
            let gauge = self.partition_lag_seconds.with_label_values(&[group, topic, &partition.to_string()]);
            match age {
                PartitionAge::CaughtUp => gauge.set(0.0),
                PartitionAge::Behind(seconds) => gauge.set(*seconds),
                PartitionAge::Unknown => {}
            }
            oldest = oldest.max(gauge.get());
        }
        self.group_lag_seconds.with_label_values(&[group, topic]).set(oldest);
    }

    /// Publishes the data's freshness.
    pub fn observe_freshness(&self, seconds: f64) {
        self.freshness.set(seconds);
    }

    /// Notes a complete measurement.
    pub fn succeeded(&self, unix_seconds: i64) {
        self.last_success.set(unix_seconds);
    }
}

impl Default for ExporterMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lag::PartitionOffsets;
    use prometheus::{Encoder, TextEncoder};

    #[test]
    fn lag_is_exported_per_partition_and_in_total() {
        let metrics = ExporterMetrics::new();
        let lag = GroupLag {
            partitions: vec![
                PartitionOffsets { partition: 0, low: 0, high: 10, committed: Some(4) },
                PartitionOffsets { partition: 1, low: 0, high: 5, committed: None },
            ],
            members: 0,
        };
        metrics.observe_lag("orderstream", "orders", &lag);
        let mut text = Vec::new();
        TextEncoder::new().encode(&metrics.registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains(
                r#"orderstream_lag_exporter_partition_lag_records{group="orderstream",partition="0",topic="orders"} 6"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"orderstream_backlog_group_lag_records{group="orderstream",topic="orders"} 11"#));
        assert!(text.contains(r#"orderstream_lag_exporter_group_members{group="orderstream"} 0"#));
        assert!(text.contains(
            r#"orderstream_lag_exporter_committed_offset{group="orderstream",partition="1",topic="orders"} -1"#
        ));
    }

    fn exported(metrics: &ExporterMetrics) -> String {
        let mut text = Vec::new();
        TextEncoder::new().encode(&metrics.registry.gather(), &mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn lag_in_seconds_is_the_oldest_partition_and_an_unread_one_keeps_its_last_age() {
        let metrics = ExporterMetrics::new();
        metrics.observe_ages("g", "orders", &[(0, PartitionAge::Behind(30.0)), (1, PartitionAge::Behind(90.0))]);
        metrics.observe_ages("g", "orders", &[(0, PartitionAge::Behind(35.0)), (1, PartitionAge::Unknown)]);
        let text = exported(&metrics);
        assert!(text.contains(r#"orderstream_backlog_group_lag_seconds{group="g",topic="orders"} 90"#), "{text}");
        assert!(text
            .contains(r#"orderstream_lag_exporter_partition_lag_seconds{group="g",partition="0",topic="orders"} 35"#));
    }

    #[test]
    fn a_caught_up_group_is_zero_seconds_behind() {
        let metrics = ExporterMetrics::new();
        metrics.observe_ages("g", "orders", &[(0, PartitionAge::Behind(30.0))]);
        metrics.observe_ages("g", "orders", &[(0, PartitionAge::CaughtUp)]);
        assert!(exported(&metrics).contains(r#"orderstream_backlog_group_lag_seconds{group="g",topic="orders"} 0"#));
    }
}
