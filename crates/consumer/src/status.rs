//! The consumer's `/status`: its group, the partitions assigned to it, the
//! rows it writes per second, the last error; and the periodic rate log.
//!
//! The loop notes each committed batch here; a request only reads (and
//! ages the rate window), so asking often costs the consumer nothing.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use contract::status::ConsumerStatus;
use telemetry::{LastError, Rate, StatusReport};
use tracing::info;

/// The window rows per second are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// Shared between the loop (which notes batches and errors), the rebalance
/// callbacks (which keep the assignment) and the endpoint (which reads).
#[derive(Clone)]
pub struct StatusBoard {
    group: String,
    /// Partitions assigned to this member now (kept by the rebalance callbacks).
    pub assigned: Arc<Mutex<BTreeSet<i32>>>,
    /// The last error met, shown until another replaces it.
    pub last_error: LastError,
    progress: Arc<Mutex<Progress>>,
    started_at: chrono::DateTime<chrono::Utc>,
}

/// Totals since start, and the rate window.
struct Progress {
    rows: u64,
    batches: u64,
    rate: Rate,
    /// Batches at the last rate log, for "batches since".
    batches_logged: u64,
}

impl StatusBoard {
    /// A board for a member of `group` starting now.
    pub fn new(group: &str) -> Self {
        StatusBoard {
            group: group.to_string(),
            assigned: Arc::default(),
            last_error: LastError::default(),
            progress: Arc::new(Mutex::new(Progress {
                rows: 0,
                batches: 0,
                rate: Rate::new(RATE_WINDOW),
                batches_logged: 0,
            })),
            started_at: chrono::Utc::now(),
        }
    }

    /// Notes a committed batch of `records` (applied or dead-lettered).
    pub fn batch_committed(&self, records: usize) {
        let mut progress = self.progress.lock().expect("status lock");
        progress.rows += records as u64;
        progress.batches += 1;
        let rows = progress.rows;
        progress.rate.record(rows);
    }

    /// Rows per second over the last [`RATE_WINDOW`] (0 when idle).
    pub fn rows_per_second(&self) -> f64 {
        let mut progress = self.progress.lock().expect("status lock");
        let rows = progress.rows;
        // A sample now, so that the rate falls to 0 when nothing comes.
        progress.rate.record(rows);
        progress.rate.per_second()
    }

    /// Logs the rate and the batches since the last such line.
    pub fn log_rate(&self) {
        let rows_per_second = self.rows_per_second();
        let mut progress = self.progress.lock().expect("status lock");
        let batches = progress.batches - progress.batches_logged;
        progress.batches_logged = progress.batches;
        info!(
            message = "Consumer rate.",
            rows_per_second = format!("{rows_per_second:.0}"),
            batches,
            rows_total = progress.rows
        );
    }

    /// The `/status` handler.
    pub fn report(&self) -> StatusReport {
        let board = self.clone();
        Arc::new(move || board.to_json())
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.status()).expect("the consumer's status serialises")
    }

    /// What `/status` says now.
    fn status(&self) -> ConsumerStatus {
        let rows_per_second = self.rows_per_second();
        let assigned: Vec<i32> = self.assigned.lock().map(|set| set.iter().copied().collect()).unwrap_or_default();
        let progress = self.progress.lock().expect("status lock");
        ConsumerStatus {
            process: "consumer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at.to_rfc3339(),
            group: self.group.clone(),
            assigned_partitions: assigned,
            rows_per_second: (rows_per_second * 10.0).round() / 10.0,
            rows_total: progress.rows,
            batches_total: progress.batches,
            last_error: serde_json::from_value(self.last_error.to_json()).expect("a last error is null or one"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_shows_group_assignment_totals_and_last_error() {
        let board = StatusBoard::new("orderstream");
        board.assigned.lock().unwrap().extend([0, 3]);
        board.batch_committed(40);
        board.batch_committed(2);
        board.last_error.set(&"database unavailable");
        let status = board.to_json();
        assert_eq!(status["group"], "orderstream");
        assert_eq!(status["assigned_partitions"], serde_json::json!([0, 3]));
        assert_eq!((status["rows_total"].as_u64(), status["batches_total"].as_u64()), (Some(42), Some(2)));
        assert_eq!(status["last_error"]["message"], "database unavailable");
    }

    /// The bytes of `/status` as the consumer serves them, with the clock's
    /// fields fixed: `orderstream-status` and scripts read exactly these.
    #[test]
    fn status_json_bytes_stay_the_same() {
        let board = StatusBoard::new("orderstream");
        board.assigned.lock().unwrap().extend([2, 0]);
        board.batch_committed(7);
        let mut json = board.to_json();
        assert!(json["rows_per_second"].is_f64(), "a rate, written 0.0 when idle: {json}");
        json["started_at"] = "2026-12-07T10:00:00+00:00".into();
        json["rows_per_second"] = 12.5.into();
        assert_eq!(
            json.to_string(),
            r#"{"assigned_partitions":[0,2],"batches_total":1,"group":"orderstream","last_error":null,"process":"consumer","rows_per_second":12.5,"rows_total":7,"started_at":"2026-12-07T10:00:00+00:00","version":"0.1.0"}"#
        );
    }
}
