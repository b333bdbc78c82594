//! What happens in the producer, one type per happening: each event's
//! `emit` writes its log line and updates its metrics together, so the log
//! and `/metrics` never disagree, and its message is a constant.
//!
//! Tests and scripts never match these messages: they read the metric an
//! event updates (or `/status`); the constants are for people reading the
//! code and for the rare test that must name a message.

use std::path::Path;

use schema::{HeaderError, RejectionKind};
use tracing::{error, info, warn};

use crate::metrics::ProducerMetrics;
use crate::tailer::StartPoint;

/// Start-up is done: the inbox is watched and files are being read.
pub struct ProducerStarted<'a> {
    /// The folder followed.
    pub inbox: &'a Path,
    /// The file name pattern.
    pub pattern: &'a str,
    /// The orders topic.
    pub topic: &'a str,
    /// Whether filesystem notifications wake the producer (else it polls).
    pub notifications: bool,
}

impl ProducerStarted<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Producer started.";

    /// Logs it (`/status` shows `"scanned": true` once the first scan is done).
    pub fn emit(&self) {
        info!(message = Self::MESSAGE, inbox = %self.inbox.display(), pattern = %self.pattern,
              topic = %self.topic, notifications = self.notifications);
    }
}

/// Reading a file started: new, resumed at its delivered position, or from
/// its first byte because it changed since the last run.
pub struct FileFollowed<'a> {
    /// The file.
    pub file: &'a Path,
    /// Where reading starts, and why.
    pub start: StartPoint,
}

impl FileFollowed<'_> {
    /// The message for a new file.
    pub const NEW: &'static str = "Following new file.";
    /// The message for a file resumed where the last run stopped.
    pub const RESUMED: &'static str = "Resuming file at its delivered position.";
    /// The message for a file whose delivered bytes changed between runs.
    pub const REWRITTEN: &'static str = "File's delivered bytes changed since the last run; reading it from the start.";
    /// The message for a file shorter than its delivered position.
    pub const TRUNCATED: &'static str = "File shorter than its delivered position; reading it from the start.";

    /// Logs it; counts it by start (`orderstream_producer_files_followed_total`),
    /// and a changed file also as a rewrite.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        let file = self.file.display();
        let label = match self.start {
            StartPoint::NewFile => {
                info!(message = Self::NEW, %file);
                "new"
            }
            StartPoint::Resumed => {
                info!(message = Self::RESUMED, %file);
                "resumed"
            }
            StartPoint::Rewritten => {
                warn!(message = Self::REWRITTEN, %file);
                "rewritten"
            }
            StartPoint::Truncated => {
                warn!(message = Self::TRUNCATED, %file);
                "truncated"
            }
        };
        metrics.files_followed.with_label_values(&[label]).inc();
        if matches!(self.start, StartPoint::Rewritten | StartPoint::Truncated) {
            metrics.rewrites.inc();
        }
    }
}

/// A followed file was found under another name in the inbox; its position
/// is kept.
pub struct FileRenamed<'a> {
    /// The old path.
    pub from: &'a Path,
    /// The new path.
    pub to: &'a Path,
}

impl FileRenamed<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "File renamed; following it under its new name.";

    /// Logs and counts it (`orderstream_producer_files_renamed_total`).
    pub fn emit(&self, metrics: &ProducerMetrics) {
        info!(message = Self::MESSAGE, from = %self.from.display(), to = %self.to.display());
        metrics.files_renamed.inc();
    }
}

/// A followed file became shorter than what was read, or its bytes changed
/// (copytruncate): it is followed again from its first byte.
pub struct FileTruncated<'a> {
    /// The file.
    pub file: &'a Path,
}

impl FileTruncated<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "File truncated or rewritten; following it from its start.";

    /// Logs and counts it (`orderstream_producer_truncations_total`).
    pub fn emit(&self, metrics: &ProducerMetrics) {
        warn!(message = Self::MESSAGE, file = %self.file.display());
        metrics.truncations.inc();
    }
}

/// A file was moved into `--archive-dir`, fully delivered and inactive.
pub struct FileArchived<'a> {
    /// Where it was.
    pub from: &'a Path,
    /// Where it is now.
    pub to: &'a Path,
}

impl FileArchived<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "File archived.";

    /// Logs and counts it (`orderstream_producer_files_archived_total`).
    pub fn emit(&self, metrics: &ProducerMetrics) {
        info!(message = Self::MESSAGE, from = %self.from.display(), to = %self.to.display());
        metrics.files_archived.inc();
    }
}

/// An inbox file cannot be opened (an uploader's umask left it mode 000):
/// it waits, is retried on every scan and `/status` names it, so that a
/// `chmod` later makes it load. Emitted once per file until it can be
/// opened or leaves the inbox, so a file left unreadable does not flood
/// the log; `orderstream_producer_unreadable_files` counts them meanwhile.
pub struct FileUnreadable<'a> {
    /// The file.
    pub file: &'a Path,
    /// Why it cannot be opened.
    pub error: &'a std::io::Error,
}

impl FileUnreadable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Cannot open inbox file; it waits and is retried on every scan.";

    /// Logs it, as an error: its lines wait until someone fixes the file.
    pub fn emit(&self) {
        error!(message = Self::MESSAGE, file = %self.file.display(), error = %self.error);
    }
}

/// A tracked file is in neither the inbox nor the archive at start: what of
/// it was not delivered cannot be read any more.
pub struct FileMissing<'a> {
    /// Where it was last seen.
    pub file: &'a Path,
    /// Bytes of it that were delivered.
    pub delivered_bytes: u64,
}

impl FileMissing<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Tracked file is no longer in the inbox nor the archive; forgetting it.";

    /// Logs and counts it (`orderstream_producer_files_missing_total`).
    pub fn emit(&self, metrics: &ProducerMetrics) {
        warn!(message = Self::MESSAGE, file = %self.file.display(), delivered_bytes = self.delivered_bytes);
        metrics.files_missing.inc();
    }
}

/// A file's header cannot be used (a required column missing, columns
/// refused by `--unknown-columns reject`, or too long): every record under
/// it is dead-lettered as `bad_header`, with the same reason. Reported once
/// per header, not once per record.
pub struct HeaderUnusable<'a> {
    /// The file.
    pub file: &'a Path,
    /// What is wrong with its header: names exactly the missing columns and
    /// the extra ones seen.
    pub error: &'a HeaderError,
}

impl HeaderUnusable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Unusable header; every record under it is dead-lettered.";

    /// Counts the file (`orderstream_producer_unusable_headers_total`) and logs it.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        warn!(message = Self::MESSAGE, file = %self.file.display(), error = %self.error);
        metrics.unusable_headers.inc();
    }
}

/// A file's header has columns beyond the known ones that its previous
/// header (if any) did not have: the export changed. Their values travel
/// with the orders (`--unknown-columns keep`) or are dropped (`ignore`).
pub struct NewColumnsSeen<'a> {
    /// The file.
    pub file: &'a Path,
    /// 1-based line of the header.
    pub line: u64,
    /// The new columns, normalised, in file order.
    pub columns: &'a [String],
}

impl NewColumnsSeen<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Header has new columns; the export changed.";

    /// Longest column name used as a label value; longer ones are cut there.
    pub const MAX_LABEL_CHARS: usize = 64;

    /// Logs it once, with the file, and counts each column
    /// (`orderstream_producer_new_columns_total{column}`): the file is in
    /// the log line, not a label, and past a bounded number of distinct
    /// names the rest count under one label, so the series stay few.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        info!(message = Self::MESSAGE, file = %self.file.display(), line = self.line,
              columns = %self.columns.join(","));
        for column in self.columns {
            let label: String = column.chars().take(Self::MAX_LABEL_CHARS).collect();
            metrics.new_columns.inc(&label);
        }
    }
}

/// The positions could not be saved (a full disk): reading stops until a
/// save succeeds.
pub struct PositionsUnsaveable<'a> {
    /// Why the save failed (logged with its causes).
    pub error: &'a (dyn std::error::Error + 'static),
    /// Whether the previous save failed too: then only counted, not logged
    /// again, so a full disk writes one error line, not one per flush.
    pub already_failing: bool,
}

impl PositionsUnsaveable<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Cannot save positions; reading stops until they can be saved.";

    /// Counts the failed save (`orderstream_producer_position_write_errors_total`),
    /// sets `orderstream_producer_positions_unsaveable` and logs the first.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        metrics.position_write_errors.inc();
        metrics.positions_unsaveable.set(1);
        if !self.already_failing {
            error!(message = Self::MESSAGE, error = %clients::postgres::describe(self.error));
        }
    }
}

/// The positions were saved after failing: reading resumes.
pub struct PositionsSavedAgain;

impl PositionsSavedAgain {
    /// The log message.
    pub const MESSAGE: &'static str = "Positions saved again; reading resumes.";

    /// Logs it and clears `orderstream_producer_positions_unsaveable`.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        info!(message = Self::MESSAGE);
        metrics.positions_unsaveable.set(0);
    }
}

/// Kafka refused an order for good (too large, invalid); its dead letter was
/// published in its place.
pub struct OrderRefusedByKafka<'a> {
    /// The order's file.
    pub file: &'a str,
    /// Its byte offset in the file.
    pub offset: u64,
    /// Kafka's answer.
    pub refusal: &'a dyn std::fmt::Display,
}

impl OrderRefusedByKafka<'_> {
    /// The log message.
    pub const MESSAGE: &'static str = "Kafka refused an order for good; dead-lettered it instead.";

    /// Logs it; counts a delivery error and a `refused_by_kafka` dead letter.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        warn!(message = Self::MESSAGE, file = %self.file, offset = self.offset, error = %self.refusal);
        metrics.delivery_errors.inc();
        metrics.dead_lettered.with_label_values(&[RejectionKind::RefusedByKafka.as_str()]).inc();
    }
}

/// The producer stopped after its shutdown drain.
pub struct ProducerStopped;

impl ProducerStopped {
    /// The log message.
    pub const MESSAGE: &'static str = "Producer stopped.";

    /// Logs the totals the metrics hold.
    pub fn emit(&self, metrics: &ProducerMetrics) {
        info!(message = Self::MESSAGE, published = metrics.records_published.get(), read = metrics.records_read.get());
    }
}
