//! The producer's `/status`: every followed file with its size, delivered
//! bytes and percentage, what is in flight, the last error, when it started;
//! the inbox files it cannot open, and last lines waiting for their newline
//! or for their file to be finished: a file is caught up only when neither
//! holds anything back.
//!
//! The loop publishes a [`Snapshot`] with each position flush (every
//! `--position-flush-interval`); a request only adds one `stat` per file for its
//! current size, so asking often costs the producer nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use contract::status::UnreadableFile;
use contract::status::{ProducerFile, ProducerStatus};
use telemetry::{LastError, StatusReport};

/// One followed file, as the loop last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnapshot {
    /// Where the file is now.
    pub path: PathBuf,
    /// Bytes up to the end of the last record Kafka confirmed.
    pub delivered_bytes: u64,
    /// Newlines within those bytes.
    pub delivered_lines: u64,
    /// Bytes split into records (sent or being sent).
    pub read_bytes: u64,
    /// Bytes read past `read_bytes` that do not form a complete record yet:
    /// at the end of a file, a line still being written.
    pub partial_bytes: u64,
    /// Of those, the bytes of a last line without its newline that reach
    /// the file's end: published once the file is finished.
    pub unterminated_bytes: u64,
    /// Records read from the file that Kafka has not confirmed yet.
    pub unconfirmed: usize,
}

/// What the loop knows, published for `/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every followed file.
    pub files: Vec<FileSnapshot>,
    /// Inbox files that cannot be opened, retried on every scan.
    pub unreadable: Vec<UnreadableFile>,
    /// Records sent and not yet confirmed, all files together.
    pub in_flight: usize,
    /// `--close-inactive`: how long a file must be unchanged before its last
    /// line without a newline is published, for the status to say when.
    pub close_inactive: std::time::Duration,
}

/// Shared between the loop (which publishes snapshots and errors) and the
/// endpoint (which reads them).
#[derive(Clone)]
pub struct StatusBoard {
    /// `None` until the loop has scanned the inbox once: before that, an
    /// empty file list would read as "nothing to deliver".
    snapshot: Arc<Mutex<Option<Snapshot>>>,
    /// The last error met, shown until another replaces it.
    pub last_error: LastError,
    started_at: chrono::DateTime<chrono::Utc>,
}

impl StatusBoard {
    /// A board for a producer starting now.
    pub fn new() -> Self {
        StatusBoard { snapshot: Arc::default(), last_error: LastError::default(), started_at: chrono::Utc::now() }
    }

    /// Replaces the published snapshot.
    pub fn publish(&self, snapshot: Snapshot) {
        *self.snapshot.lock().expect("status lock") = Some(snapshot);
    }

    /// The `/status` handler.
    pub fn report(&self) -> StatusReport {
        let board = self.clone();
        Arc::new(move || board.to_json())
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.status()).expect("the producer's status serialises")
    }

    /// What `/status` says now: a `stat` per file for its size.
    fn status(&self) -> ProducerStatus {
        let snapshot = self.snapshot.lock().expect("status lock").clone();
        let files: Option<Vec<ProducerFile>> =
            snapshot.as_ref().map(|snapshot| snapshot.files.iter().map(file_status).collect());
        let unreadable = snapshot.as_ref().map(|snapshot| snapshot.unreadable.clone()).unwrap_or_default();
        let caught_up = files.as_ref().is_some_and(|files| files.iter().all(|file| file.caught_up));
        ProducerStatus {
            process: "producer".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            started_at: self.started_at.to_rfc3339(),
            scanned: snapshot.is_some(),
            caught_up: caught_up && unreadable.is_empty(),
            in_flight: snapshot.as_ref().map_or(0, |snapshot| snapshot.in_flight),
            close_inactive_seconds: snapshot.as_ref().map_or(0, |snapshot| snapshot.close_inactive.as_secs()),
            files: files.unwrap_or_default(),
            unreadable_files: unreadable,
            last_error: serde_json::from_value(self.last_error.to_json()).expect("a last error is null or one"),
        }
    }
}

impl Default for StatusBoard {
    fn default() -> Self {
        Self::new()
    }
}

fn file_status(file: &FileSnapshot) -> ProducerFile {
    let size = std::fs::metadata(&file.path).ok().map(|metadata| metadata.len());
    let (percent, caught_up) = match size {
        Some(size) => progress(file, size),
        None => (0.0, false),
    };
    ProducerFile {
        path: file.path.to_string_lossy().into_owned(),
        size,
        delivered_bytes: file.delivered_bytes,
        delivered_lines: file.delivered_lines,
        percent,
        caught_up: caught_up && file.unterminated_bytes == 0,
        in_flight: file.unconfirmed,
        unterminated_bytes: file.unterminated_bytes,
    }
}

/// Delivered share of the file's complete records, and whether all of them
/// are delivered. A trailing line still being written is not counted: it is
/// not a record yet.
pub fn progress(file: &FileSnapshot, size: u64) -> (f64, bool) {
    let read_to_the_end = size == file.read_bytes + file.partial_bytes;
    let complete = if read_to_the_end { file.read_bytes } else { size };
    let caught_up = file.unconfirmed == 0 && file.delivered_bytes >= complete;
    let percent =
        if complete == 0 { 100.0 } else { file.delivered_bytes.min(complete) as f64 * 100.0 / complete as f64 };
    (if caught_up { 100.0 } else { (percent * 10.0).floor() / 10.0 }, caught_up)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(delivered: u64, read: u64, partial: u64, unconfirmed: usize) -> FileSnapshot {
        FileSnapshot {
            path: "f.csv".into(),
            delivered_bytes: delivered,
            delivered_lines: 0,
            read_bytes: read,
            partial_bytes: partial,
            unterminated_bytes: 0,
            unconfirmed,
        }
    }

    #[test]
    fn a_line_still_being_written_does_not_hold_a_file_back() {
        assert_eq!(progress(&file(100, 100, 7, 0), 107), (100.0, true));
    }

    #[test]
    fn unreadable_files_and_unfinished_last_lines_are_not_caught_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "id\n1\n2").unwrap();
        let board = StatusBoard::new();
        let waiting = FileSnapshot { path: path.clone(), unterminated_bytes: 1, ..file(5, 5, 1, 0) };
        board.publish(Snapshot { files: vec![waiting], ..Snapshot::default() });
        let json = board.to_json();
        assert_eq!(
            (json["caught_up"].as_bool(), json["files"][0]["unterminated_bytes"].as_u64()),
            (Some(false), Some(1))
        );
        let unreadable = UnreadableFile { path: dir.path().join("b.csv"), error: "Permission denied".into() };
        let finished = FileSnapshot { path, ..file(7, 7, 0, 0) };
        board.publish(Snapshot { files: vec![finished], unreadable: vec![unreadable], ..Snapshot::default() });
        let json = board.to_json();
        assert_eq!(json["files"][0]["caught_up"], true);
        assert_eq!(json["caught_up"], false, "an unreadable file waits: {json}");
        assert_eq!(json["unreadable_files"][0]["error"], "Permission denied");
    }

    /// The bytes of `/status` as the producer serves them, with the clock's
    /// fields fixed: `orderstream-status` and scripts read exactly these.
    #[test]
    fn status_json_bytes_stay_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, "id\n1\n2").unwrap();
        let board = StatusBoard::new();
        let waiting = FileSnapshot { path, unterminated_bytes: 1, ..file(5, 5, 1, 2) };
        let gone = FileSnapshot { path: "inbox/gone.csv".into(), ..file(3, 3, 0, 0) };
        let unreadable = UnreadableFile { path: "inbox/b.csv".into(), error: "Permission denied".into() };
        board.publish(Snapshot {
            files: vec![waiting, gone],
            unreadable: vec![unreadable],
            in_flight: 2,
            close_inactive: std::time::Duration::from_secs(300),
        });
        board.last_error.set(&"Kafka unreachable");
        let mut json = board.to_json();
        json["started_at"] = "2026-12-07T10:00:00+00:00".into();
        json["last_error"]["at"] = "2026-12-07T10:01:00+00:00".into();
        json["files"][0]["path"] = "inbox/a.csv".into();
        assert_eq!(
            json.to_string(),
            r#"{"caught_up":false,"close_inactive_seconds":300,"files":[{"caught_up":false,"delivered_bytes":5,"delivered_lines":0,"in_flight":2,"path":"inbox/a.csv","percent":100.0,"size":6,"unterminated_bytes":1},{"caught_up":false,"delivered_bytes":3,"delivered_lines":0,"in_flight":0,"path":"inbox/gone.csv","percent":0.0,"size":null,"unterminated_bytes":0}],"in_flight":2,"last_error":{"at":"2026-12-07T10:01:00+00:00","message":"Kafka unreachable"},"process":"producer","scanned":true,"started_at":"2026-12-07T10:00:00+00:00","unreadable_files":[{"error":"Permission denied","path":"inbox/b.csv"}],"version":"0.1.0"}"#
        );
        let unscanned = StatusBoard::new().to_json();
        assert_eq!(
            (unscanned["scanned"].as_bool(), unscanned["files"].to_string(), unscanned["last_error"].is_null()),
            (Some(false), "[]".to_string(), true)
        );
    }

    #[test]
    fn unread_or_unconfirmed_bytes_are_behind() {
        assert_eq!(progress(&file(50, 100, 0, 0), 200), (25.0, false));
        assert_eq!(progress(&file(100, 100, 0, 3), 100), (100.0, false), "records in flight: not caught up yet");
        assert_eq!(progress(&file(0, 0, 0, 0), 0), (100.0, true), "an empty file is delivered");
    }
}
