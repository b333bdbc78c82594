//! The verdict and how it is shown: caught up, behind (and why), or a
//! service unreachable; the one-screen text, the JSON, the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use contract::lag::PartitionOffsets;
use contract::status::{ConsumerStatus, ProducerFile, ProducerStatus, ReportedError, UnreadableFile};
use serde::Serialize;

use crate::config::Topics;
use crate::gather::{DatabaseView, Gathered, KafkaView, Member, ProcessStatus};
use crate::saved::{FileSource, SavedDelivery, SavedFile};

/// The pipeline's state, which is the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every process answers; everything is delivered and applied.
    CaughtUp = 0,
    /// Something is behind, or a process is down.
    Behind = 1,
    /// Kafka or PostgreSQL cannot be reached.
    Unreachable = 2,
}

/// One partition's lag: Kafka's high watermark against the offset stored in
/// PostgreSQL (the truth about what is applied).
#[derive(Debug, Clone, Serialize)]
pub struct PartitionLag {
    /// The partition.
    pub partition: i32,
    /// The first offset Kafka still holds: retention deleted everything below.
    pub low_watermark: i64,
    /// One past the last record written to it.
    pub high_watermark: i64,
    /// The next offset the group applies, as stored with the rows.
    pub stored_offset: Option<i64>,
    /// Records written and not yet applied, including those retention
    /// deleted first: a lag that counted from the low watermark would read
    /// 0 while records were lost.
    pub lag: i64,
    /// Records retention deleted before they were applied (the low
    /// watermark above the stored offset): they can never be applied.
    pub deleted_by_retention: i64,
}

/// The consumer's dead-letter intake: the dead-letter topic against the
/// offsets the intake stored in PostgreSQL with the `dead_letters` rows.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterIntake {
    /// The dead-letter topic.
    pub topic: String,
    /// Lag per partition; empty when the topic does not exist yet.
    pub partitions: Vec<PartitionLag>,
    /// Dead letters on the topic not stored in `dead_letters` yet.
    pub lag: i64,
}

/// How fresh the data is.
#[derive(Debug, Clone, Serialize)]
pub struct Freshness {
    /// Newest `read_at` in `orders`.
    pub newest_read_at: Option<DateTime<Utc>>,
    /// Newest `written_at` in `orders`.
    pub newest_written_at: Option<DateTime<Utc>>,
    /// Seconds between the newest `written_at` and the database's clock.
    pub written_seconds_ago: Option<f64>,
}

/// One inbox file in the report, from the producer's `/status` or its saved
/// positions (`source` says which). In `--json` the keys are sorted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFile {
    /// The file in the inbox.
    pub path: String,
    /// Its size now; `null` when it cannot be looked at.
    pub size: Option<u64>,
    /// Bytes Kafka confirmed.
    pub delivered_bytes: u64,
    /// Newlines within those bytes.
    pub delivered_lines: u64,
    /// Delivered share, rounded down to a tenth (100 only when caught up).
    pub percent: f64,
    /// Every byte (every complete record, for a live file) is delivered.
    pub caught_up: bool,
    /// Records of it in flight: only the producer's `/status` knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<usize>,
    /// Bytes of a last line without its newline: only the producer's
    /// `/status` knows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unterminated_bytes: Option<u64>,
    /// Why the file cannot be opened, when it cannot: its lines wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// Where its delivery was read.
    pub source: FileSource,
}

impl ReportFile {
    /// A followed file of the producer's `/status`.
    fn live(file: &ProducerFile) -> ReportFile {
        ReportFile {
            path: file.path.clone(),
            size: file.size,
            delivered_bytes: file.delivered_bytes,
            delivered_lines: file.delivered_lines,
            percent: file.percent,
            caught_up: file.caught_up,
            in_flight: Some(file.in_flight),
            unterminated_bytes: Some(file.unterminated_bytes),
            unreadable: None,
            source: FileSource::Producer,
        }
    }

    /// An inbox file the producer cannot open: nothing of it delivered,
    /// `unreadable` saying why.
    fn unreadable(file: &UnreadableFile) -> ReportFile {
        ReportFile {
            path: file.path.to_string_lossy().into_owned(),
            size: std::fs::metadata(&file.path).ok().map(|metadata| metadata.len()),
            delivered_bytes: 0,
            delivered_lines: 0,
            percent: 0.0,
            caught_up: false,
            in_flight: None,
            unterminated_bytes: None,
            unreadable: Some(file.error.clone()),
            source: FileSource::Producer,
        }
    }

    /// An inbox file as the producer's saved positions say.
    fn saved(file: &SavedFile) -> ReportFile {
        ReportFile {
            path: file.path.clone(),
            size: Some(file.size),
            delivered_bytes: file.delivered_bytes,
            delivered_lines: file.delivered_lines,
            percent: file.percent,
            caught_up: file.caught_up,
            in_flight: None,
            unterminated_bytes: None,
            unreadable: file.unreadable.clone(),
            source: file.source,
        }
    }
}

/// Everything the status shows (the `--json` document).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The verdict.
    pub state: Verdict,
    /// Why the pipeline is not caught up, one sentence each.
    pub problems: Vec<String>,
    /// The producer's answer.
    pub producer: ProcessStatus<ProducerStatus>,
    /// The consumer's answer.
    pub consumer: ProcessStatus<ConsumerStatus>,
    /// Each followed file.
    pub files: Vec<ReportFile>,
    /// The positions store the files were read from, when the producer does
    /// not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_positions: Option<PathBuf>,
    /// The orders topic.
    pub topic: String,
    /// The consumer group.
    pub group: String,
    /// The group's state in Kafka.
    pub group_state: Option<String>,
    /// The group's members in Kafka.
    pub members: Vec<Member>,
    /// Lag per partition.
    pub partitions: Vec<PartitionLag>,
    /// Total lag; `None` when Kafka or PostgreSQL did not answer.
    pub lag: Option<i64>,
    /// The dead-letter intake's lag; `None` when Kafka or PostgreSQL did
    /// not answer.
    pub dead_letter_intake: Option<DeadLetterIntake>,
    /// Rows in `orders`.
    pub orders: Option<i64>,
    /// How fresh the data is.
    pub freshness: Option<Freshness>,
    /// Reason → dead letters pending (neither redriven nor resolved).
    pub dead_letters_pending: BTreeMap<String, i64>,
    /// Kafka or PostgreSQL unreachable, with how to start it.
    pub unreachable: Vec<String>,
}

impl Report {
    /// Judges what was gathered.
    pub fn new(gathered: Gathered, topics: &Topics, group: &str) -> Report {
        let topic = topics.orders.as_str();
        let mut problems = Vec::new();
        let mut unreachable = Vec::new();
        let (files, saved_positions) = producer_files(&gathered.producer, gathered.saved, &mut problems);
        if !gathered.consumer.up {
            problems.push(format!("the consumer does not answer at {}", gathered.consumer.addr));
        }
        let (kafka, database) =
            (gathered.kafka.map_err(|e| e.to_string()), gathered.database.map_err(|e| e.to_string()));
        for error in [kafka.as_ref().err(), database.as_ref().err()].into_iter().flatten() {
            unreachable.push(error.clone());
        }
        let partitions = match (&kafka, &database) {
            (Ok(kafka), Ok(database)) => lag_per_partition(&kafka.watermarks, &database.stored_offsets),
            _ => Vec::new(),
        };
        let lag = (kafka.is_ok() && database.is_ok()).then(|| partitions.iter().map(|p| p.lag).sum::<i64>());
        if let Ok(kafka) = &kafka {
            if kafka.watermarks.is_empty() {
                problems.push(format!("the topic {topic} does not exist yet"));
            }
        }
        problems.extend(deleted_by_retention(topic, &partitions, "the consumer applied them"));
        let waiting: i64 = partitions.iter().map(|p| p.lag - p.deleted_by_retention).sum();
        if waiting > 0 {
            problems.push(format!("{waiting} record(s) in Kafka not applied to PostgreSQL yet"));
        }
        let dead_letter_intake = match (&kafka, &database) {
            (Ok(kafka), Ok(database)) => Some(dead_letter_intake(&topics.dead_letters, kafka, database)),
            _ => None,
        };
        if let Some(intake) = &dead_letter_intake {
            problems.extend(intake_problems(intake));
        }
        let state = if !unreachable.is_empty() {
            Verdict::Unreachable
        } else if problems.is_empty() {
            Verdict::CaughtUp
        } else {
            Verdict::Behind
        };
        let database = database.ok();
        Report {
            state,
            problems,
            producer: gathered.producer,
            consumer: gathered.consumer,
            files,
            saved_positions,
            topic: topic.to_string(),
            group: group.to_string(),
            group_state: kafka.as_ref().ok().map(|k| k.group_state.clone()),
            members: kafka.as_ref().map(|k| k.members.clone()).unwrap_or_default(),
            partitions,
            lag,
            dead_letter_intake,
            orders: database.as_ref().map(|d| d.orders),
            freshness: database.as_ref().map(|d| Freshness {
                newest_read_at: d.newest_read_at,
                newest_written_at: d.newest_written_at,
                written_seconds_ago: d
                    .now
                    .zip(d.newest_written_at)
                    .map(|(now, written)| ((now - written).num_milliseconds() as f64 / 1000.0).max(0.0)),
            }),
            dead_letters_pending: database.map(|d| d.dead_letters_pending).unwrap_or_default(),
            unreachable,
        }
    }

    /// The exit code: the verdict.
    pub fn exit_code(&self) -> i32 {
        self.state as i32
    }

    /// The one-screen text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let state = match self.state {
            Verdict::CaughtUp => "caught up",
            Verdict::Behind => "BEHIND",
            Verdict::Unreachable => "UNREACHABLE",
        };
        let _ = writeln!(out, "orderstream: {state}");
        for line in self.unreachable.iter().chain(&self.problems) {
            let _ = writeln!(out, "  - {line}");
        }
        let _ = writeln!(out, "\nproducer  {}", up_line(&self.producer));
        if let Some(store) = &self.saved_positions {
            let _ = writeln!(out, "  saved positions (producer down), from {}:", store.display());
        }
        if !self.files.is_empty() {
            let _ = writeln!(out, "  {:>12}  {:>12}  {:>6}  file", "size", "delivered", "%");
        }
        for file in &self.files {
            let note = match (&file.unreadable, file.unterminated_bytes) {
                (Some(error), _) => format!("  (UNREADABLE: {error})"),
                (None, Some(bytes)) if bytes > 0 => format!("  ({bytes} bytes after the last newline)"),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  {:>12}  {:>12}  {:>6.1}  {}{note}",
                file.size.map_or("?".into(), |size| size.to_string()),
                file.delivered_bytes,
                file.percent,
                file.path,
            );
        }
        let _ = writeln!(out, "consumer  {}", up_line(&self.consumer));
        let _ = writeln!(
            out,
            "\ngroup {} on {}: {}, {} member(s){}",
            self.group,
            self.topic,
            self.group_state.as_deref().unwrap_or("unknown"),
            self.members.len(),
            self.members.iter().map(|m| format!(" {}@{}", m.client_id, m.host)).collect::<String>(),
        );
        if !self.partitions.is_empty() {
            let _ =
                writeln!(out, "  {:>9}  {:>14}  {:>14}  {:>10}", "partition", "high watermark", "stored offset", "lag");
        }
        for p in &self.partitions {
            let stored = p.stored_offset.map_or("-".to_string(), |offset| offset.to_string());
            let _ = writeln!(out, "  {:>9}  {:>14}  {:>14}  {:>10}", p.partition, p.high_watermark, stored, p.lag);
        }
        if let (Some(orders), Some(freshness)) = (self.orders, &self.freshness) {
            let ago = freshness.written_seconds_ago.map_or("never".into(), |s| format!("{s:.0} s ago"));
            let _ = writeln!(out, "\norders in PostgreSQL: {orders}; newest written {ago}");
        }
        if let Some(intake) = &self.dead_letter_intake {
            let _ = writeln!(out, "dead-letter intake from {}: lag {}", intake.topic, intake.lag);
        }
        let pending: Vec<String> = self.dead_letters_pending.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let _ = writeln!(
            out,
            "dead letters pending: {}",
            if pending.is_empty() { "none".to_string() } else { pending.join(", ") }
        );
        out
    }
}

/// What a process's line on the screen shows of its `/status`.
trait ProcessLine {
    /// Its version.
    fn version(&self) -> &str;
    /// Its last error, if any.
    fn last_error(&self) -> Option<&ReportedError>;
    /// ", LABEL VALUE": the one figure that says it is working.
    fn figure(&self) -> String;
}

impl ProcessLine for ProducerStatus {
    fn version(&self) -> &str {
        &self.version
    }
    fn last_error(&self) -> Option<&ReportedError> {
        self.last_error.as_ref()
    }
    fn figure(&self) -> String {
        format!(", in flight {}", self.in_flight)
    }
}

impl ProcessLine for ConsumerStatus {
    fn version(&self) -> &str {
        &self.version
    }
    fn last_error(&self) -> Option<&ReportedError> {
        self.last_error.as_ref()
    }
    fn figure(&self) -> String {
        // As JSON writes it: an idle rate reads 0.0.
        format!(", rows/s {}", serde_json::Value::from(self.rows_per_second))
    }
}

/// "up at ADDR, …" or "DOWN at ADDR (why)", with the last error if any.
fn up_line(process: &ProcessStatus<impl ProcessLine>) -> String {
    let Some(status) = process.status.as_ref().filter(|_| process.up) else {
        return format!("DOWN at {} ({})", process.addr, process.error.as_deref().unwrap_or("no answer"));
    };
    let mut line = format!("up at {}, version {}{}", process.addr, status.version(), status.figure());
    if let Some(error) = status.last_error() {
        let _ = write!(line, "\n  last error at {}: {}", error.at, error.message);
    }
    line
}

/// The producer's files, from its `/status` or, when it does not answer,
/// from its saved positions (with the store read); and what keeps it from
/// being caught up.
fn producer_files(
    producer: &ProcessStatus<ProducerStatus>,
    saved: Option<Result<SavedDelivery, String>>,
    problems: &mut Vec<String>,
) -> (Vec<ReportFile>, Option<PathBuf>) {
    let (files, store) = match producer.status.as_ref().filter(|_| producer.up) {
        Some(status) => {
            if !status.scanned {
                problems.push("the producer has not looked at its inbox yet".into());
            }
            let mut files: Vec<ReportFile> = status.files.iter().map(ReportFile::live).collect();
            problems.extend(unterminated_lines(&files, status.close_inactive_seconds));
            let unreadable: Vec<ReportFile> = status.unreadable_files.iter().map(ReportFile::unreadable).collect();
            problems.extend(unreadable.iter().map(unreadable_problem));
            files.extend(unreadable);
            (files, None)
        }
        None => {
            problems.push(format!("the producer does not answer at {}", producer.addr));
            match saved {
                Some(Ok(saved)) => {
                    let files: Vec<ReportFile> = saved.files.iter().map(ReportFile::saved).collect();
                    problems.extend(files.iter().filter(|file| file.unreadable.is_some()).map(unreadable_problem));
                    (files, Some(saved.store))
                }
                Some(Err(error)) => {
                    problems.push(format!("cannot read the producer's saved positions: {error}"));
                    (Vec::new(), None)
                }
                None => (Vec::new(), None),
            }
        }
    };
    // Unreadable files and last lines waiting for their file to finish
    // were named above, one sentence each.
    let behind = files
        .iter()
        .filter(|file| !file.caught_up && file.unreadable.is_none())
        .filter(|file| file.unterminated_bytes.unwrap_or(0) == 0 || file.percent != 100.0)
        .count();
    if behind > 0 {
        problems.push(format!("{behind} file(s) not completely delivered to Kafka yet"));
    }
    (files, store)
}

/// "PATH cannot be opened (why): …" for a file of the report.
fn unreadable_problem(file: &ReportFile) -> String {
    format!(
        "{} cannot be opened by the producer ({}): its lines wait; it is tried again on every scan",
        file.path,
        file.unreadable.as_deref().unwrap_or("?"),
    )
}

/// One sentence per file whose last line has no newline yet: it is
/// published once the file is unchanged for `--close-inactive`.
fn unterminated_lines(files: &[ReportFile], close_inactive_seconds: u64) -> Vec<String> {
    let close_inactive = humantime::format_duration(Duration::from_secs(close_inactive_seconds));
    files
        .iter()
        .filter_map(|file| {
            let bytes = file.unterminated_bytes.filter(|bytes| *bytes > 0)?;
            Some(format!(
                "{}: {bytes} bytes after its last newline, published when the file is finished \
                 (unchanged for close-inactive {close_inactive})",
                file.path,
            ))
        })
        .collect()
}

/// Lag of every partition of the topic against the offsets stored in
/// PostgreSQL. A partition without one has had nothing applied: it is
/// behind by everything ever written to it, and whatever retention already
/// deleted of it is lost to the group.
pub fn lag_per_partition(watermarks: &BTreeMap<i32, (i64, i64)>, stored: &BTreeMap<i32, i64>) -> Vec<PartitionLag> {
    watermarks
        .iter()
        .map(|(&partition, &(low, high))| {
            let stored_offset = stored.get(&partition).copied();
            let offsets = PartitionOffsets { partition, low, high, committed: Some(stored_offset.unwrap_or(0)) };
            PartitionLag {
                partition,
                low_watermark: low,
                high_watermark: high,
                stored_offset,
                lag: offsets.lag(),
                deleted_by_retention: offsets.deleted_before_committed(),
            }
        })
        .collect()
}

/// One sentence per partition whose records retention deleted before
/// `reader` (who was to take them).
fn deleted_by_retention<'a>(
    topic: &'a str,
    partitions: &'a [PartitionLag],
    reader: &'a str,
) -> impl Iterator<Item = String> + 'a {
    partitions.iter().filter(|p| p.deleted_by_retention > 0).map(move |p| {
        format!(
            "{} record(s) on {topic}/{} were deleted by retention before {reader} (stored offset {}, low watermark {})",
            p.deleted_by_retention,
            p.partition,
            p.stored_offset.unwrap_or(0),
            p.low_watermark,
        )
    })
}

/// The dead-letter topic against the offsets the intake stored.
fn dead_letter_intake(topic: &str, kafka: &KafkaView, database: &DatabaseView) -> DeadLetterIntake {
    let partitions = lag_per_partition(&kafka.dead_letter_watermarks, &database.dead_letter_stored_offsets);
    let lag = partitions.iter().map(|p| p.lag).sum();
    DeadLetterIntake { topic: topic.to_string(), partitions, lag }
}

/// What keeps the dead-letter intake from being caught up.
fn intake_problems(intake: &DeadLetterIntake) -> Vec<String> {
    let mut problems: Vec<String> =
        deleted_by_retention(&intake.topic, &intake.partitions, "the dead-letter intake stored them").collect();
    let waiting: i64 = intake.partitions.iter().map(|p| p.lag - p.deleted_by_retention).sum();
    if waiting > 0 {
        problems.push(format!(
            "{waiting} dead letter(s) on {} not stored in PostgreSQL by the dead-letter intake yet",
            intake.topic
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_counts_from_the_stored_offset_and_everything_without_one() {
        let watermarks = BTreeMap::from([(0, (0, 10)), (1, (0, 5)), (2, (0, 0))]);
        let stored = BTreeMap::from([(0, 10), (1, 2)]);
        let lags: Vec<(i32, i64)> =
            lag_per_partition(&watermarks, &stored).iter().map(|p| (p.partition, p.lag)).collect();
        assert_eq!(lags, [(0, 0), (1, 3), (2, 0)]);
        let lags: Vec<i64> = lag_per_partition(&watermarks, &BTreeMap::new()).iter().map(|p| p.lag).collect();
        assert_eq!(lags, [10, 5, 0], "no stored offset: behind by everything held");
    }

    /// Both processes up, every inbox file delivered; Kafka and PostgreSQL
    /// as given.
    fn gathered(kafka: KafkaView, database: DatabaseView) -> Gathered {
        gathered_with_producer(serde_json::json!({}), kafka, database)
    }

    /// A producer's `/status`: a scanned, empty inbox but for `fields`.
    fn producer_status(fields: serde_json::Value) -> ProducerStatus {
        let mut status = serde_json::json!({
            "process": "producer", "version": "0", "started_at": "2026-12-07T10:00:00+00:00", "scanned": true,
            "caught_up": true, "in_flight": 0, "close_inactive_seconds": 300, "files": [],
            "unreadable_files": [], "last_error": null,
        });
        for (key, value) in fields.as_object().expect("fields of the producer's status") {
            status[key] = value.clone();
        }
        serde_json::from_value(status).expect("a producer's status")
    }

    /// An idle consumer's `/status`.
    fn consumer_status() -> ConsumerStatus {
        serde_json::from_value(serde_json::json!({
            "process": "consumer", "version": "0", "started_at": "2026-12-07T10:00:00+00:00", "group": "group",
            "assigned_partitions": [0], "rows_per_second": 0.0, "rows_total": 0, "batches_total": 0,
            "last_error": null,
        }))
        .expect("a consumer's status")
    }

    /// A process that answered at `port`.
    fn up<S>(port: u16, status: S) -> ProcessStatus<S> {
        ProcessStatus { addr: ([127, 0, 0, 1], port).into(), up: true, error: None, status: Some(status) }
    }

    fn gathered_with_producer(producer: serde_json::Value, kafka: KafkaView, database: DatabaseView) -> Gathered {
        Gathered {
            producer: up(1, producer_status(producer)),
            consumer: up(2, consumer_status()),
            kafka: Ok(kafka),
            database: Ok(database),
            saved: None,
        }
    }

    fn applied() -> (KafkaView, DatabaseView) {
        let database = DatabaseView { stored_offsets: BTreeMap::from([(0, 5)]), ..DatabaseView::default() };
        (kafka(BTreeMap::from([(0, (0, 5))]), BTreeMap::new()), database)
    }

    #[test]
    fn an_inbox_file_the_producer_cannot_open_is_listed_and_waits() {
        let producer = serde_json::json!({
            "unreadable_files": [{ "path": "inbox/b.csv", "error": "Permission denied (os error 13)" }],
        });
        let (kafka, database) = applied();
        let report = Report::new(gathered_with_producer(producer, kafka, database), &topics(), "group");
        assert_eq!(report.exit_code(), 1);
        assert_eq!(
            report.problems,
            ["inbox/b.csv cannot be opened by the producer (Permission denied (os error 13)): its lines wait; \
              it is tried again on every scan"]
        );
        assert_eq!(
            (report.files[0].path.as_str(), report.files[0].caught_up, report.files[0].source),
            ("inbox/b.csv", false, FileSource::Producer)
        );
        assert!(report.render().contains("inbox/b.csv  (UNREADABLE: Permission denied"), "{}", report.render());
    }

    #[test]
    fn a_last_line_without_its_newline_is_named_and_waits() {
        let producer = serde_json::json!({
            "files": [{ "path": "inbox/a.csv", "size": 142, "delivered_bytes": 100, "delivered_lines": 4,
                        "percent": 100.0, "caught_up": false, "in_flight": 0, "unterminated_bytes": 42 }],
        });
        let (kafka, database) = applied();
        let report = Report::new(gathered_with_producer(producer, kafka, database), &topics(), "group");
        assert_eq!(report.exit_code(), 1);
        assert_eq!(
            report.problems,
            ["inbox/a.csv: 42 bytes after its last newline, published when the file is finished \
              (unchanged for close-inactive 5m)"]
        );
    }

    /// `--json` as it was when the files were JSON passed through: keys
    /// sorted, a live file with every key of the producer's, an unreadable
    /// one without `in_flight` and `unterminated_bytes`.
    #[test]
    fn the_json_report_bytes_stay_the_same() {
        let producer = serde_json::json!({
            "files": [{ "path": "inbox/a.csv", "size": 142, "delivered_bytes": 100, "delivered_lines": 4,
                        "percent": 100.0, "caught_up": false, "in_flight": 1, "unterminated_bytes": 42 }],
            "unreadable_files": [{ "path": "inbox/gone.csv", "error": "Permission denied (os error 13)" }],
            "last_error": { "message": "Kafka unreachable", "at": "2026-12-07T10:01:00+00:00" },
        });
        let (kafka, database) = applied();
        let report = Report::new(gathered_with_producer(producer, kafka, database), &topics(), "group");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["files"].to_string(), FILES_SAMPLE);
        assert_eq!(json["producer"].to_string(), PRODUCER_SAMPLE);
        assert_eq!(json["consumer"].to_string(), CONSUMER_SAMPLE);
        let screen = report.render();
        assert!(
            screen.contains(
                "producer  up at 127.0.0.1:1, version 0, in flight 0\n  \
                 last error at 2026-12-07T10:01:00+00:00: Kafka unreachable\n"
            ),
            "{screen}"
        );
        assert!(screen.contains("\nconsumer  up at 127.0.0.1:2, version 0, rows/s 0.0\n"), "{screen}");
    }

    const FILES_SAMPLE: &str = r#"[{"caught_up":false,"delivered_bytes":100,"delivered_lines":4,"in_flight":1,"path":"inbox/a.csv","percent":100.0,"size":142,"source":"producer","unterminated_bytes":42},{"caught_up":false,"delivered_bytes":0,"delivered_lines":0,"path":"inbox/gone.csv","percent":0.0,"size":null,"source":"producer","unreadable":"Permission denied (os error 13)"}]"#;
    const PRODUCER_SAMPLE: &str = r#"{"addr":"127.0.0.1:1","status":{"caught_up":true,"close_inactive_seconds":300,"files":[{"caught_up":false,"delivered_bytes":100,"delivered_lines":4,"in_flight":1,"path":"inbox/a.csv","percent":100.0,"size":142,"unterminated_bytes":42}],"in_flight":0,"last_error":{"at":"2026-12-07T10:01:00+00:00","message":"Kafka unreachable"},"process":"producer","scanned":true,"started_at":"2026-12-07T10:00:00+00:00","unreadable_files":[{"error":"Permission denied (os error 13)","path":"inbox/gone.csv"}],"version":"0"},"up":true}"#;
    const CONSUMER_SAMPLE: &str = r#"{"addr":"127.0.0.1:2","status":{"assigned_partitions":[0],"batches_total":0,"group":"group","last_error":null,"process":"consumer","rows_per_second":0.0,"rows_total":0,"started_at":"2026-12-07T10:00:00+00:00","version":"0"},"up":true}"#;

    fn kafka(orders: BTreeMap<i32, (i64, i64)>, dead_letters: BTreeMap<i32, (i64, i64)>) -> KafkaView {
        KafkaView {
            watermarks: orders,
            dead_letter_watermarks: dead_letters,
            members: Vec::new(),
            group_state: "Stable".into(),
        }
    }

    #[test]
    fn records_deleted_by_retention_before_they_were_applied_are_not_caught_up() {
        let database = DatabaseView { stored_offsets: BTreeMap::from([(0, 5), (3, 4)]), ..DatabaseView::default() };
        let kafka = kafka(BTreeMap::from([(0, (0, 5)), (3, (10, 10))]), BTreeMap::new());
        let report = Report::new(gathered(kafka, database), &topics(), "group");
        assert_eq!(report.exit_code(), 1, "{:?}", report.problems);
        assert_eq!(report.lag, Some(6), "the deleted records stay in the lag");
        assert_eq!(report.partitions[1].deleted_by_retention, 6);
        assert_eq!(
            report.problems,
            ["6 record(s) on orders/3 were deleted by retention before the consumer applied them \
              (stored offset 4, low watermark 10)"]
        );
    }

    #[test]
    fn the_dead_letter_intake_lag_is_shown_and_waits() {
        let database = DatabaseView {
            stored_offsets: BTreeMap::from([(0, 5)]),
            dead_letter_stored_offsets: BTreeMap::from([(0, 1)]),
            ..DatabaseView::default()
        };
        let kafka = kafka(BTreeMap::from([(0, (0, 5))]), BTreeMap::from([(0, (0, 3)), (1, (0, 2))]));
        let report = Report::new(gathered(kafka, database), &topics(), "group");
        assert_eq!(report.exit_code(), 1);
        assert_eq!(report.dead_letter_intake.as_ref().map(|intake| intake.lag), Some(4));
        assert_eq!(
            report.problems,
            ["4 dead letter(s) on orders.dlq not stored in PostgreSQL by the dead-letter intake yet"]
        );
        assert!(report.render().contains("dead-letter intake from orders.dlq: lag 4"), "{}", report.render());
    }

    #[test]
    fn everything_applied_and_stored_is_caught_up() {
        let database = DatabaseView {
            stored_offsets: BTreeMap::from([(0, 5)]),
            dead_letter_stored_offsets: BTreeMap::from([(0, 3)]),
            ..DatabaseView::default()
        };
        let kafka = kafka(BTreeMap::from([(0, (2, 5))]), BTreeMap::from([(0, (0, 3))]));
        let report = Report::new(gathered(kafka, database), &topics(), "group");
        assert_eq!(report.exit_code(), 0, "{:?}", report.problems);
    }

    fn gathered_with_the_producer_down(saved: Result<SavedDelivery, String>) -> Gathered {
        let down = ProcessStatus {
            addr: ([127, 0, 0, 1], 1).into(),
            up: false,
            error: Some("connection refused".into()),
            status: None,
        };
        Gathered {
            producer: down,
            consumer: up(2, consumer_status()),
            kafka: Ok(KafkaView {
                watermarks: BTreeMap::from([(0, (0, 3))]),
                dead_letter_watermarks: BTreeMap::new(),
                members: Vec::new(),
                group_state: "Stable".into(),
            }),
            database: Ok(DatabaseView { stored_offsets: BTreeMap::from([(0, 3)]), ..DatabaseView::default() }),
            saved: Some(saved),
        }
    }

    fn topics() -> Topics {
        Topics { orders: "orders".into(), dead_letters: "orders.dlq".into() }
    }

    #[test]
    fn with_the_producer_down_the_files_come_from_its_saved_positions() {
        let file = SavedFile {
            path: "inbox/a.csv".into(),
            size: 200,
            delivered_bytes: 150,
            delivered_lines: 3,
            percent: 75.0,
            caught_up: false,
            source: FileSource::SavedPositions,
            unreadable: None,
        };
        let saved = Ok(SavedDelivery { store: "state/positions.json".into(), files: vec![file] });
        let report = Report::new(gathered_with_the_producer_down(saved), &topics(), "group");
        assert_eq!(report.exit_code(), 1, "the producer is down");
        assert_eq!((report.files[0].source, report.files[0].percent), (FileSource::SavedPositions, 75.0));
        assert_eq!(report.saved_positions, Some(PathBuf::from("state/positions.json")));
        let screen = report.render();
        assert!(screen.contains("saved positions (producer down), from state/positions.json"), "{screen}");
        assert!(screen.contains("inbox/a.csv"), "{screen}");
    }

    #[test]
    fn an_unreadable_store_is_a_problem_not_an_empty_inbox() {
        let saved = Err("the position store state/positions.json is corrupt".into());
        let report = Report::new(gathered_with_the_producer_down(saved), &topics(), "group");
        assert_eq!(report.exit_code(), 1);
        assert!(report.files.is_empty() && report.saved_positions.is_none());
        assert!(report.problems.iter().any(|problem| problem.contains("corrupt")), "{:?}", report.problems);
    }
}
