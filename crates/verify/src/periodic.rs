//! `--every DURATION`: verify again and again, and say so in
//! `orderstream_verify_*` metrics on `/metrics`, so Prometheus can alert
//! when a line goes missing (`OrderstreamLinesMissing`) without anyone
//! running `make verify`.
//!
//! Each verification's outcome is one event ([`Verified`] or
//! [`VerifyFailed`]) whose `emit` writes the log line and the metrics
//! together.

use std::future::Future;
use std::time::{Duration, Instant};

use prometheus::{Gauge, IntCounterVec, IntGauge, IntGaugeVec};
use telemetry::{Readiness, Registrar, ServeError};

use crate::config::Config;
use crate::report::Report;
use crate::{verify, VerifyError};

/// The states counted in `orderstream_verify_lines{state}`.
pub const STATES: [&str; 6] = ["stored", "superseded", "dead_lettered", "in_flight", "altered", "missing"];

/// The verifier's metrics.
#[derive(Clone)]
pub struct VerifyMetrics {
    /// Lines of every export by state, as of the last verification.
    lines: IntGaugeVec,
    /// Exports verified by the last verification.
    files: IntGauge,
    /// Exports the last verification could not read.
    unreadable_files: IntGauge,
    /// Verifications by outcome (`verified`, `failed`).
    runs: IntCounterVec,
    /// When the last verification finished (Unix seconds): its age says
    /// whether the numbers above are current.
    last_verified: Gauge,
    /// How long the last verification took.
    duration: Gauge,
}

impl VerifyMetrics {
    /// Declares the metrics in `registrar`.
    pub fn new(registrar: &Registrar) -> VerifyMetrics {
        let lines = registrar.gauge_vec(
            "orderstream_verify_lines",
            "Lines of every export by state at the last verification; missing must be 0.",
            &["state"],
        );
        for state in STATES {
            lines.with_label_values(&[state]);
        }
        VerifyMetrics {
            lines,
            files: registrar.gauge("orderstream_verify_files", "Exports verified by the last verification."),
            unreadable_files: registrar
                .gauge("orderstream_verify_unreadable_files", "Exports the last verification could not read."),
            runs: registrar.counter_vec(
                "orderstream_verify_runs_total",
                "Verifications by outcome: verified, or failed (PostgreSQL or the inbox unreadable).",
                "outcome",
                &["verified", "failed"],
            ),
            last_verified: registrar.float_gauge(
                "orderstream_verify_last_verified_timestamp_seconds",
                "When the last verification finished, Unix seconds.",
            ),
            duration: registrar
                .float_gauge("orderstream_verify_duration_seconds", "How long the last verification took, in seconds."),
        }
    }
}

/// A verification finished with its report.
pub struct Verified<'a> {
    /// What it found.
    pub report: &'a Report,
    /// How long it took.
    pub took: Duration,
}

impl Verified<'_> {
    /// The log line.
    pub const MESSAGE: &'static str = "Exports verified.";

    /// Logs it and sets the metrics.
    pub fn emit(&self, metrics: &VerifyMetrics) {
        let total = &self.report.total;
        let counts =
            [total.stored, total.superseded, total.dead_lettered, total.in_flight(), total.altered, total.missing];
        for (state, count) in STATES.iter().zip(counts) {
            metrics.lines.with_label_values(&[state]).set(count as i64);
        }
        metrics.files.set(self.report.files.len() as i64);
        metrics.unreadable_files.set(self.report.unreadable.len() as i64);
        metrics.runs.with_label_values(&["verified"]).inc();
        metrics.last_verified.set(chrono::Utc::now().timestamp_millis() as f64 / 1000.0);
        metrics.duration.set(self.took.as_secs_f64());
        tracing::info!(
            message = Self::MESSAGE,
            files = self.report.files.len(),
            lines = total.lines,
            missing = total.missing,
            altered = total.altered,
            in_flight = total.in_flight(),
            seconds = self.took.as_secs_f64()
        );
    }
}

/// A verification could not finish.
pub struct VerifyFailed<'a> {
    /// Why.
    pub error: &'a VerifyError,
}

impl VerifyFailed<'_> {
    /// The log line.
    pub const MESSAGE: &'static str = "Verification failed.";

    /// Logs it and counts it.
    pub fn emit(&self, metrics: &VerifyMetrics) {
        metrics.runs.with_label_values(&["failed"]).inc();
        tracing::warn!(message = Self::MESSAGE, error = %self.error);
    }
}

/// Serves `/metrics` on `--metrics-addr` and verifies every `every` until
/// `shutdown` resolves. Ready once a verification finished.
pub async fn run_every(config: &Config, every: Duration, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let registrar = Registrar::new();
    let metrics = VerifyMetrics::new(&registrar);
    let readiness = Readiness::new("no verification finished yet");
    let addr = telemetry::serve(config.metrics_addr, registrar.registry(), readiness.clone()).await?;
    tracing::info!(message = "Verifying periodically.", %addr, every = %humantime::format_duration(every));
    tokio::pin!(shutdown);
    loop {
        let started = Instant::now();
        match verify(config).await {
            Ok(report) => {
                Verified { report: &report, took: started.elapsed() }.emit(&metrics);
                readiness.ready();
            }
            Err(error) => {
                VerifyFailed { error: &error }.emit(&metrics);
                readiness.not_ready(&error.to_string());
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = &mut shutdown => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::FileAccount;

    #[test]
    fn a_verification_sets_every_state_and_the_run_count() {
        let registrar = Registrar::new();
        let metrics = VerifyMetrics::new(&registrar);
        let mut report = Report::default();
        let mut account = FileAccount::new("a.csv".into(), None);
        (account.lines, account.stored, account.missing) = (3, 1, 2);
        report.push(account);
        Verified { report: &report, took: Duration::from_millis(5) }.emit(&metrics);
        assert_eq!(metrics.lines.with_label_values(&["missing"]).get(), 2);
        assert_eq!(metrics.lines.with_label_values(&["stored"]).get(), 1);
        assert_eq!(metrics.runs.with_label_values(&["verified"]).get(), 1);
        assert_eq!(metrics.files.get(), 1);
    }
}
