//! What happens in the lag exporter, one type per happening: each event's
//! `emit` writes its log line and updates its metrics together, its message
//! a constant. Tests read the metric, never the message.

use tracing::{info, warn};

use crate::metrics::ExporterMetrics;

/// The exporter is serving and measuring.
pub struct ExporterStarted<'a> {
    /// The topic measured.
    pub topic: &'a str,
    /// The group measured.
    pub group: &'a str,
    /// Where `/metrics` is served.
    pub addr: std::net::SocketAddr,
}

impl ExporterStarted<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Lag exporter started.";

    /// Logs it.
    pub fn emit(&self) {
        info!(message = Self::MESSAGE, topic = %self.topic, group = %self.group, metrics = %self.addr);
    }
}

/// The group's offsets could not be read from Kafka (or the reader panicked).
pub struct OffsetsUnreadable<'a> {
    /// Why.
    pub error: &'a dyn std::fmt::Display,
}

impl OffsetsUnreadable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Cannot read offsets from Kafka.";

    /// Logs and counts it (`orderstream_lag_exporter_errors_total{source="kafka"}`).
    pub fn emit(&self, metrics: &ExporterMetrics) {
        warn!(message = Self::MESSAGE, error = %self.error);
        metrics.errors.with_label_values(&["kafka"]).inc();
    }
}

/// The oldest unapplied records could not be read from Kafka: lag in
/// seconds keeps its last values.
pub struct OldestUnappliedUnreadable<'a> {
    /// Why.
    pub error: &'a dyn std::fmt::Display,
}

impl OldestUnappliedUnreadable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Cannot read the oldest unapplied records from Kafka.";

    /// Logs and counts it (`orderstream_lag_exporter_errors_total{source="kafka"}`).
    pub fn emit(&self, metrics: &ExporterMetrics) {
        warn!(message = Self::MESSAGE, error = %self.error);
        metrics.errors.with_label_values(&["kafka"]).inc();
    }
}

/// Freshness and pending dead letters could not be read from PostgreSQL.
pub struct DatabaseUnreadable<'a> {
    /// Why, with the server's own words and no secret.
    pub error: &'a str,
}

impl DatabaseUnreadable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Cannot read freshness and dead letters from PostgreSQL.";

    /// Logs and counts it (`orderstream_lag_exporter_errors_total{source="database"}`).
    pub fn emit(&self, metrics: &ExporterMetrics) {
        warn!(message = Self::MESSAGE, error = %self.error);
        metrics.errors.with_label_values(&["database"]).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_measurements_are_counted_by_source() {
        let metrics = ExporterMetrics::new();
        OffsetsUnreadable { error: &"timed out" }.emit(&metrics);
        DatabaseUnreadable { error: "connection refused" }.emit(&metrics);
        DatabaseUnreadable { error: "connection refused" }.emit(&metrics);
        assert_eq!(metrics.errors.with_label_values(&["kafka"]).get(), 1);
        assert_eq!(metrics.errors.with_label_values(&["database"]).get(), 2);
    }
}
