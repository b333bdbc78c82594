//! The producer's and the consumer's `GET /status` documents: each process
//! serialises its own, `orderstream-status` deserialises both, with the
//! same types. The processes serve them as JSON objects whose keys are
//! sorted (through `serde_json::Value`), so field order here changes no byte.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The producer's `/status`: every followed file, the files it cannot open,
/// what is in flight, the last error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerStatus {
    /// Always `producer`: says which process answered at an address.
    pub process: String,
    /// The producer's version, to tell a stale process after an upgrade.
    pub version: String,
    /// When it started (RFC 3339), to tell a restart.
    pub started_at: String,
    /// It has looked at its inbox once: before that, no files means
    /// "not looked", not "nothing to deliver".
    pub scanned: bool,
    /// Every file is delivered and none waits (unreadable, or a last line
    /// without its newline).
    pub caught_up: bool,
    /// Records sent and not yet confirmed by Kafka, all files together.
    pub in_flight: usize,
    /// `--close-inactive` in seconds: when a last line without its newline
    /// is published, for the reader to say when.
    pub close_inactive_seconds: u64,
    /// Every followed file.
    pub files: Vec<ProducerFile>,
    /// Inbox files it cannot open: their lines wait.
    pub unreadable_files: Vec<UnreadableFile>,
    /// The last error it met; `null` when none.
    pub last_error: Option<ReportedError>,
}

/// One followed file in the producer's `/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProducerFile {
    /// Where the file is now.
    pub path: String,
    /// Size now (`stat`); `null` if the file cannot be looked at.
    pub size: Option<u64>,
    /// Bytes up to the end of the last record Kafka confirmed.
    pub delivered_bytes: u64,
    /// Newlines within those bytes.
    pub delivered_lines: u64,
    /// Delivered share of the complete records the file holds, rounded down
    /// to a tenth (100 only when caught up).
    pub percent: f64,
    /// Every complete record of the file is confirmed by Kafka, and no last
    /// line waits for its newline.
    pub caught_up: bool,
    /// Records of this file sent and not yet confirmed.
    pub in_flight: usize,
    /// Bytes of a last line without its newline, published once the file is
    /// unchanged for `--close-inactive`.
    pub unterminated_bytes: u64,
}

/// An inbox file the producer cannot open: its lines wait.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadableFile {
    /// The file in the inbox.
    pub path: PathBuf,
    /// Why it cannot be opened.
    pub error: String,
}

/// The consumer's `/status`: its group, its partitions, its rate, the last
/// error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerStatus {
    /// Always `consumer`: says which process answered at an address.
    pub process: String,
    /// The consumer's version, to tell a stale process after an upgrade.
    pub version: String,
    /// When it started (RFC 3339), to tell a restart.
    pub started_at: String,
    /// The group it is a member of.
    pub group: String,
    /// The partitions assigned to this member now.
    pub assigned_partitions: Vec<i32>,
    /// Rows written per second over the last ten seconds, to a tenth.
    pub rows_per_second: f64,
    /// Rows written since start (applied or dead-lettered).
    pub rows_total: u64,
    /// Batches committed since start.
    pub batches_total: u64,
    /// The last error it met; `null` when none.
    pub last_error: Option<ReportedError>,
}

/// The last error a process met, shown until another replaces it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedError {
    /// What failed.
    pub message: String,
    /// When (RFC 3339).
    pub at: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A producer's `/status` as it served it before these types existed.
    const PRODUCER_SAMPLE: &str = r#"{"caught_up":false,"close_inactive_seconds":300,"files":[{"caught_up":false,"delivered_bytes":5,"delivered_lines":0,"in_flight":2,"path":"inbox/a.csv","percent":100.0,"size":6,"unterminated_bytes":1},{"caught_up":false,"delivered_bytes":3,"delivered_lines":0,"in_flight":0,"path":"inbox/gone.csv","percent":0.0,"size":null,"unterminated_bytes":0}],"in_flight":2,"last_error":{"at":"2026-12-07T10:01:00+00:00","message":"Kafka unreachable"},"process":"producer","scanned":true,"started_at":"2026-12-07T10:00:00+00:00","unreadable_files":[{"error":"Permission denied","path":"inbox/b.csv"}],"version":"0.1.0"}"#;

    /// A consumer's `/status` as it served it before these types existed.
    const CONSUMER_SAMPLE: &str = r#"{"assigned_partitions":[0,2],"batches_total":1,"group":"orderstream","last_error":null,"process":"consumer","rows_per_second":12.5,"rows_total":7,"started_at":"2026-12-07T10:00:00+00:00","version":"0.1.0"}"#;

    /// Read, then served again as the processes serve it: the same bytes.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(sample: &str) -> String {
        let typed: T = serde_json::from_str(sample).unwrap();
        serde_json::to_value(&typed).unwrap().to_string()
    }

    #[test]
    fn the_producer_status_reads_and_serves_the_same_bytes() {
        assert_eq!(round_trip::<ProducerStatus>(PRODUCER_SAMPLE), PRODUCER_SAMPLE);
        let status: ProducerStatus = serde_json::from_str(PRODUCER_SAMPLE).unwrap();
        assert_eq!((status.files[1].size, status.files[0].unterminated_bytes), (None, 1));
        assert_eq!(status.last_error.map(|error| error.message).as_deref(), Some("Kafka unreachable"));
    }

    #[test]
    fn the_consumer_status_reads_and_serves_the_same_bytes() {
        assert_eq!(round_trip::<ConsumerStatus>(CONSUMER_SAMPLE), CONSUMER_SAMPLE);
        let status: ConsumerStatus = serde_json::from_str(CONSUMER_SAMPLE).unwrap();
        assert_eq!((status.assigned_partitions, status.last_error), (vec![0, 2], None));
    }

    #[test]
    fn an_idle_rate_is_still_written_as_a_decimal() {
        let mut status: ConsumerStatus = serde_json::from_str(CONSUMER_SAMPLE).unwrap();
        status.rows_per_second = 0.0;
        assert!(serde_json::to_value(&status).unwrap().to_string().contains(r#""rows_per_second":0.0"#));
    }
}
