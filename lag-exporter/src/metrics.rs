//! The series the exporter publishes. Backlog series share the
//! `orderstream_backlog_` prefix across processes, one per pipeline stage:
//! `unread_bytes` and `unacknowledged_records` (producer), `group_lag_records`
//! and `freshness_seconds` (here).

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::lag::GroupLag;

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
    freshness: Gauge,
    last_success: IntGauge,
    errors: IntCounterVec,
}

impl ExporterMetrics {
    /// Creates and registers the series.
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let metric = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(metric.clone())).expect("unique metric");
            metric
        };
        let freshness = Gauge::new(
            "orderstream_backlog_freshness_seconds",
            "Seconds since the producer read the newest order committed to PostgreSQL.",
        )
        .expect("valid metric");
        registry.register(Box::new(freshness.clone())).expect("unique metric");
        let last_success = IntGauge::new(
            "orderstream_lag_exporter_last_success_timestamp_seconds",
            "Unix time of the last complete measurement.",
        )
        .expect("valid metric");
        registry.register(Box::new(last_success.clone())).expect("unique metric");
        let errors = IntCounterVec::new(
            Opts::new("orderstream_lag_exporter_errors_total", "Failed measurements, by source."),
            &["source"],
        )
        .expect("valid metric");
        registry.register(Box::new(errors.clone())).expect("unique metric");
        for source in ["kafka", "database"] {
            errors.with_label_values(&[source]);
        }
        ExporterMetrics {
            partition_lag: gauge_vec(
                "orderstream_consumer_lag_records",
                "Records written to a partition and not yet committed by the group.",
                &["group", "topic", "partition"],
            ),
            high_watermark: gauge_vec(
                "orderstream_topic_high_watermark",
                "One past the last record written to a partition.",
                &["topic", "partition"],
            ),
            committed: gauge_vec(
                "orderstream_consumer_committed_offset",
                "The group's committed offset of a partition (-1: none yet).",
                &["group", "topic", "partition"],
            ),
            group_lag: gauge_vec(
                "orderstream_backlog_group_lag_records",
                "Records on the topic not yet committed by the group, all partitions.",
                &["group", "topic"],
            ),
            members: gauge_vec("orderstream_consumer_group_members", "Consumers in the group right now.", &["group"]),
            freshness,
            last_success,
            errors,
            registry,
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

    /// Publishes the data's freshness.
    pub fn observe_freshness(&self, seconds: f64) {
        self.freshness.set(seconds);
    }

    /// Notes a complete measurement.
    pub fn succeeded(&self, unix_seconds: i64) {
        self.last_success.set(unix_seconds);
    }

    /// Counts a failed measurement.
    pub fn failed(&self, source: &str) {
        self.errors.with_label_values(&[source]).inc();
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
            text.contains(r#"orderstream_consumer_lag_records{group="orderstream",partition="0",topic="orders"} 6"#),
            "{text}"
        );
        assert!(text.contains(r#"orderstream_backlog_group_lag_records{group="orderstream",topic="orders"} 11"#));
        assert!(text.contains(r#"orderstream_consumer_group_members{group="orderstream"} 0"#));
        assert!(text
            .contains(r#"orderstream_consumer_committed_offset{group="orderstream",partition="1",topic="orders"} -1"#));
    }
}
