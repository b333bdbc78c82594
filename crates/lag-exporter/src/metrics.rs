//! The series the exporter publishes. Backlog series share the
//! `orderstream_backlog_` prefix across processes, one per pipeline stage:
//! `unread_bytes` and `unacknowledged_records` (producer), `group_lag_records`
//! and `group_lag_seconds` and `freshness_seconds` (here). `orderstream_dead_letters_pending` is the
//! dead letters waiting for a person, read from PostgreSQL.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Registry};
use telemetry::Registrar;

use crate::age::PartitionAge;
use crate::database::PendingDeadLetters;
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
    deleted_before_committed: IntGaugeVec,
    group_lag: IntGaugeVec,
    members: IntGaugeVec,
    expected_members: IntGaugeVec,
    partition_lag_seconds: GaugeVec,
    group_lag_seconds: GaugeVec,
    freshness: Gauge,
    dead_letters_pending: IntGaugeVec,
    /// The (stage, reason) pairs ever published: one that has no pending
    /// dead letter any more is set to 0 rather than dropped, so the series
    /// never vanishes between two scrapes.
    dead_letters_published: Arc<Mutex<BTreeSet<(String, String)>>>,
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
            deleted_before_committed: metrics.gauge_vec(
                "orderstream_lag_exporter_deleted_unconsumed_records",
                "Records of a partition retention deleted before the group committed past them: lost to it.",
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
            expected_members: metrics.gauge_vec(
                "orderstream_lag_exporter_group_members_expected",
                "Consumers the group is configured to have (--expected-consumers).",
                &["group"],
            ),
            dead_letters_pending: metrics.gauge_vec(
                "orderstream_dead_letters_pending",
                "Dead letters neither redriven nor resolved, by stage and reason.",
                &["stage", "reason"],
            ),
            dead_letters_published: Arc::default(),
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
            self.deleted_before_committed
                .with_label_values(&[group, topic, &partition])
                .set(offsets.deleted_before_committed());
        }
        let total = lag.partitions.iter().map(|offsets| offsets.lag()).sum();
        self.group_lag.with_label_values(&[group, topic]).set(total);
        self.members.with_label_values(&[group]).set(lag.members as i64);
    }

    /// Publishes how many consumers the group should have, once at start.
    pub fn expect_members(&self, group: &str, expected: u32) {
        self.expected_members.with_label_values(&[group]).set(i64::from(expected));
    }

    /// Publishes the pending dead letters; pairs no longer pending go to 0.
    pub fn observe_dead_letters_pending(&self, pending: &[PendingDeadLetters]) {
        let mut published = self.dead_letters_published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now: BTreeSet<(String, String)> =
            pending.iter().map(|entry| (entry.stage.clone(), entry.reason.clone())).collect();
        for (stage, reason) in published.difference(&now) {
            self.dead_letters_pending.with_label_values(&[stage, reason]).set(0);
        }
        for entry in pending {
            self.dead_letters_pending.with_label_values(&[&entry.stage, &entry.reason]).set(entry.count);
        }
        published.extend(now);
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

    fn exported(metrics: &ExporterMetrics) -> String {
        let mut text = Vec::new();
        TextEncoder::new().encode(&metrics.registry.gather(), &mut text).unwrap();
        String::from_utf8(text).unwrap()
    }

    fn pending(stage: &str, reason: &str, count: i64) -> PendingDeadLetters {
        PendingDeadLetters { stage: stage.into(), reason: reason.into(), count }
    }

    #[test]
    fn pending_dead_letters_are_exported_and_go_to_zero_once_dealt_with() {
        let metrics = ExporterMetrics::new();
        metrics.observe_dead_letters_pending(&[
            pending("producer", "invalid_amount", 3),
            pending("consumer", "undecodable", 1),
        ]);
        let text = exported(&metrics);
        assert!(
            text.contains(r#"orderstream_dead_letters_pending{reason="invalid_amount",stage="producer"} 3"#),
            "{text}"
        );
        assert!(
            text.contains(r#"orderstream_dead_letters_pending{reason="undecodable",stage="consumer"} 1"#),
            "{text}"
        );

        metrics.observe_dead_letters_pending(&[pending("producer", "invalid_amount", 1)]);
        let text = exported(&metrics);
        assert!(
            text.contains(r#"orderstream_dead_letters_pending{reason="invalid_amount",stage="producer"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"orderstream_dead_letters_pending{reason="undecodable",stage="consumer"} 0"#),
            "{text}"
        );
    }

    #[test]
    fn the_expected_group_size_is_exported() {
        let metrics = ExporterMetrics::new();
        metrics.expect_members("orderstream", 3);
        assert!(
            exported(&metrics).contains(r#"orderstream_lag_exporter_group_members_expected{group="orderstream"} 3"#)
        );
    }

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
