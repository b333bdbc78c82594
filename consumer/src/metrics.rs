//! The consumer's metrics, in a Prometheus registry it owns (served on
//! `/metrics` by the telemetry crate), and the periodic summary log line built
//! from them, so the log and the metrics never disagree.

use std::collections::BTreeMap;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use tracing::{error, info, warn};

use crate::dead_letters::reasons;
use crate::upsert::UpsertOutcome;

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
    already_applied: IntCounter,
    /// Retries of transient database failures.
    retries: IntCounter,
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
    skipped_offsets: IntCounterVec,
    /// Records neither written nor recorded in `dead_letters`: the only
    /// trace of them besides the dead-letter topic and the log.
    skipped_records: IntCounter,
}

/// Running totals, as logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
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
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let outcomes = IntCounterVec::new(
            Opts::new("orderstream_consumer_upserts_total", "Records applied, by outcome."),
            &["outcome"],
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new("orderstream_consumer_dead_letters_total", "Records dead-lettered, by reason."),
            &["reason"],
        )?;
        let already_applied = IntCounter::new(
            "orderstream_consumer_already_applied_total",
            "Records skipped because PostgreSQL's stored offsets show them applied.",
        )?;
        let retries = IntCounter::new("orderstream_consumer_retries_total", "Retries of transient database failures.")?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new("orderstream_consumer_batch_records", "Records per written batch.")
                .buckets(vec![1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0]),
        )?;
        let commit_seconds = Histogram::with_opts(HistogramOpts::new(
            "orderstream_consumer_batch_commit_seconds",
            "Duration of a batch transaction, begin to commit.",
        ))?;
        let records = IntCounter::new("orderstream_consumer_records_total", "Records received from Kafka.")?;
        let end_to_end = Histogram::with_opts(
            HistogramOpts::new(
                "orderstream_consumer_end_to_end_latency_seconds",
                "Seconds from the producer reading a line to its row committing in PostgreSQL.",
            )
            .buckets(vec![0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]),
        )?;
        let skipped_offsets = IntCounterVec::new(
            Opts::new(
                "orderstream_consumer_skipped_offsets_total",
                "Offsets never read because they no longer existed in Kafka when the consumer resumed at its stored \
                 offset (deleted by retention before being applied, or transaction markers), by partition; the \
                 value counts offsets, not events.",
            ),
            &["partition"],
        )?;
        let skipped_records = IntCounter::new(
            "orderstream_consumer_skipped_records_total",
            "Records neither written nor recorded in the dead_letters table (the table refused even their \
             storable form): published to the dead-letter topic, logged, and passed with their offset stored.",
        )?;
        for outcome in ["inserted", "updated", "unchanged"] {
            outcomes.with_label_values(&[outcome]);
        }
        for reason in reasons::ALL {
            dead_letters.with_label_values(&[reason]);
        }
        registry.register(Box::new(outcomes.clone()))?;
        registry.register(Box::new(dead_letters.clone()))?;
        registry.register(Box::new(already_applied.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(commit_seconds.clone()))?;
        registry.register(Box::new(records.clone()))?;
        registry.register(Box::new(end_to_end.clone()))?;
        registry.register(Box::new(skipped_offsets.clone()))?;
        registry.register(Box::new(skipped_records.clone()))?;
        Ok(Metrics {
            registry,
            outcomes,
            dead_letters,
            already_applied,
            retries,
            batch_size,
            commit_seconds,
            records,
            end_to_end,
            skipped_offsets,
            skipped_records,
        })
    }

    /// Offsets found missing in Kafka (partition → how many): logged and counted.
    pub fn offsets_skipped(&self, skipped: &BTreeMap<i32, i64>) {
        for (&partition, &count) in skipped {
            warn!(
                message = "Offsets skipped: they no longer exist in Kafka (retention deleted them before they were applied, or transaction markers).",
                partition,
                skipped = count
            );
            self.skipped_offsets.with_label_values(&[&partition.to_string()]).inc_by(count.max(0) as u64);
        }
    }

    /// Dead letters the table refused (source, the database's reason):
    /// logged and counted, each one.
    pub fn dead_letters_unrecorded(&self, unrecorded: &[(String, String)]) {
        for (source, reason) in unrecorded {
            error!(
                message = "Record skipped: the dead_letters table refused it; it is only on the dead-letter topic.",
                source = %source,
                %reason
            );
            self.skipped_records.inc();
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

    /// Records one retry of a transient failure.
    pub fn retried(&self) {
        self.retries.inc();
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

    /// Logs the totals; `final_` marks the line written at shutdown.
    pub fn log_summary(&self, final_: bool) {
        let totals = self.totals();
        info!(
            message = if final_ { "Consumer totals at shutdown." } else { "Consumer totals." },
            inserted = totals.inserted,
            updated = totals.updated,
            unchanged = totals.unchanged,
            dead_lettered = totals.dead_lettered,
            already_applied = self.already_applied.get(),
            retries = self.retries.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_add_up_committed_batches() {
        let metrics = Metrics::new().unwrap();
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
    fn skipped_offsets_count_offsets_per_partition_and_skipped_records_each_record() {
        let metrics = Metrics::new().unwrap();
        metrics.offsets_skipped(&BTreeMap::from([(2, 100), (5, 1)]));
        metrics.offsets_skipped(&BTreeMap::from([(2, 3)]));
        metrics.dead_letters_unrecorded(&[("orders/0/1".into(), "refused".into())]);
        assert_eq!(metrics.skipped_offsets.with_label_values(&["2"]).get(), 103);
        assert_eq!(metrics.skipped_offsets.with_label_values(&["5"]).get(), 1);
        assert_eq!(metrics.skipped_records.get(), 1);
    }

    #[test]
    fn counters_are_named_for_prometheus() {
        let names: Vec<String> =
            Metrics::new().unwrap().registry.gather().iter().map(|f| f.name().to_string()).collect();
        assert!(names.contains(&"orderstream_consumer_upserts_total".to_string()), "{names:?}");
        assert!(names.iter().all(|name| name.starts_with("orderstream_consumer_")));
    }
}
