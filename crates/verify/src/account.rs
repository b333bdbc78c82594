//! What became of one line, decided from what the database holds for it,
//! and one file's tally of those verdicts. Pure: no I/O, so every rule is
//! pinned down by a unit test.

use serde::Serialize;

/// The order row stored under a line's order id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// Its `source_version`.
    pub version: i64,
    /// Its `source_file`: where the winning line was read.
    pub file: String,
    /// Its `source_line`.
    pub line: i64,
    /// Its `source_offset`.
    pub offset: i64,
    /// Whether its values are the line's (id, user, time, totals, extra columns).
    pub same_values: bool,
}

/// A dead letter that names a line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterFact {
    /// Its `reason` (`bad_amount`, `rejected_by_database`, …).
    pub reason: String,
    /// Neither redriven nor resolved: someone still has to act on it.
    pub pending: bool,
}

/// Everything known about one line of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Byte offset where the record starts.
    pub offset: u64,
    /// Byte offset where the record ends (after its line terminator): it
    /// was delivered once the producer's saved position reaches it.
    pub end: u64,
    /// The order id, when the line is a valid order.
    pub order_id: Option<i64>,
    /// The row stored under that id.
    pub stored: Option<StoredRow>,
    /// A dead letter naming this line.
    pub dead_letter: Option<DeadLetterFact>,
}

/// What the pipeline is still doing, as far as this run can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The version this file's lines carry: `epoch × 2³⁶`; `None` when
    /// neither the stored rows nor the producer's positions tell it.
    pub epoch_base: Option<i64>,
    /// Bytes of the file the producer saved as delivered; `None`: all of it
    /// (a file the producer does not follow, such as a copy elsewhere).
    pub delivered: Option<u64>,
    /// Records published but not yet applied by the consumer group; `None`
    /// when Kafka could not be asked.
    pub lag: Option<i64>,
}

/// Why a line is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlight {
    /// The producer has not delivered it to Kafka yet.
    NotDelivered,
    /// Delivered, and the consumer group is behind.
    NotApplied,
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineState {
    /// The order's row is this line's version, with its values.
    Stored,
    /// The order's row is this line's version, but its values differ (edited by hand).
    Altered,
    /// A newer version is stored: the file and line that won.
    Superseded {
        /// `source_file` of the row.
        file: String,
        /// `source_line` of the row.
        line: i64,
    },
    /// A dead letter names this line.
    DeadLettered(DeadLetterFact),
    /// Not there yet, and the pipeline is still working.
    InFlight(InFlight),
    /// None of the above: the number that must be 0.
    Missing,
}

/// Decides what became of `line`; see `docs/verify.md` for each state.
pub fn classify(line: &LineFacts, progress: &Progress) -> LineState {
    if let (Some(_), Some(row)) = (line.order_id, &line.stored) {
        let own_version = progress.epoch_base.map(|base| base + line.offset as i64);
        let is_this_line = match own_version {
            Some(version) => row.version == version,
            None => row.offset == line.offset as i64 && row.line == line.line as i64,
        };
        if is_this_line {
            return if row.same_values { LineState::Stored } else { LineState::Altered };
        }
        let older_row = own_version.is_some_and(|version| row.version < version);
        if !older_row {
            return LineState::Superseded { file: row.file.clone(), line: row.line };
        }
    }
    if let Some(dead_letter) = &line.dead_letter {
        return LineState::DeadLettered(dead_letter.clone());
    }
    if progress.delivered.is_some_and(|delivered| line.end > delivered) {
        return LineState::InFlight(InFlight::NotDelivered);
    }
    if progress.lag.is_some_and(|lag| lag > 0) {
        return LineState::InFlight(InFlight::NotApplied);
    }
    LineState::Missing
}

/// A line named in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamedLine {
    /// Its line number.
    pub line: u64,
    /// Its byte offset.
    pub offset: u64,
    /// Its order id; `None` for a line that is no valid order.
    pub order_id: Option<i64>,
    /// For a superseded line, the `file:line` that won.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub won_by: Option<String>,
}

/// One export's tally.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileAccount {
    /// The export.
    pub file: String,
    /// The epoch its versions carry, when known.
    pub epoch: Option<u64>,
    /// Records that are not headers (a line still being written included).
    pub lines: u64,
    /// Lines whose version is stored with their values.
    pub stored: u64,
    /// Lines a newer version replaced.
    pub superseded: u64,
    /// Lines a dead letter names, pending or resolved.
    pub dead_lettered: u64,
    /// Of those, the ones still pending (neither redriven nor resolved).
    pub dead_lettered_pending: u64,
    /// Lines not yet delivered by the producer (a line still being written included).
    pub in_flight_not_delivered: u64,
    /// Lines delivered but not yet applied while the group is behind.
    pub in_flight_not_applied: u64,
    /// Lines whose row differs from them (edited in the database).
    pub altered: u64,
    /// Lines accounted for by nothing: must be 0.
    pub missing: u64,
    /// The first missing lines.
    pub first_missing: Vec<NamedLine>,
    /// The first altered lines.
    pub first_altered: Vec<NamedLine>,
    /// The first superseded lines, with what won.
    pub first_superseded: Vec<NamedLine>,
}

impl FileAccount {
    /// An empty tally for `file`.
    pub fn new(file: String, epoch: Option<u64>) -> FileAccount {
        FileAccount { file, epoch, ..FileAccount::default() }
    }

    /// Counts one line, naming it when it is among the first `examples` of
    /// its kind.
    pub fn count(&mut self, line: &LineFacts, state: LineState, examples: usize) {
        self.lines += 1;
        let named = |won_by| NamedLine { line: line.line, offset: line.offset, order_id: line.order_id, won_by };
        let keep = |list: &mut Vec<NamedLine>, entry: NamedLine| {
            if list.len() < examples {
                list.push(entry);
            }
        };
        match state {
            LineState::Stored => self.stored += 1,
            LineState::Altered => {
                self.altered += 1;
                keep(&mut self.first_altered, named(None));
            }
            LineState::Superseded { file, line } => {
                self.superseded += 1;
                keep(&mut self.first_superseded, named(Some(format!("{file}:{line}"))));
            }
            LineState::DeadLettered(dead_letter) => {
                self.dead_lettered += 1;
                self.dead_lettered_pending += u64::from(dead_letter.pending);
            }
            LineState::InFlight(InFlight::NotDelivered) => self.in_flight_not_delivered += 1,
            LineState::InFlight(InFlight::NotApplied) => self.in_flight_not_applied += 1,
            LineState::Missing => {
                self.missing += 1;
                keep(&mut self.first_missing, named(None));
            }
        }
    }

    /// Counts a line still being written at the end of the file: the
    /// producer publishes it once it is complete.
    pub fn count_unfinished_line(&mut self) {
        self.lines += 1;
        self.in_flight_not_delivered += 1;
    }

    /// Lines in flight, for either reason.
    pub fn in_flight(&self) -> u64 {
        self.in_flight_not_delivered + self.in_flight_not_applied
    }

    /// Adds another file's counts (for the total; no examples).
    pub fn add(&mut self, other: &FileAccount) {
        self.lines += other.lines;
        self.stored += other.stored;
        self.superseded += other.superseded;
        self.dead_lettered += other.dead_lettered;
        self.dead_lettered_pending += other.dead_lettered_pending;
        self.in_flight_not_delivered += other.in_flight_not_delivered;
        self.in_flight_not_applied += other.in_flight_not_applied;
        self.altered += other.altered;
        self.missing += other.missing;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: i64 = 70 << 36;

    fn order_line(stored: Option<StoredRow>) -> LineFacts {
        LineFacts { line: 3, offset: 120, end: 160, order_id: Some(42), stored, dead_letter: None }
    }

    fn row(version: i64, same_values: bool) -> StoredRow {
        StoredRow { version, file: "/inbox/b.csv".into(), line: 7, offset: 300, same_values }
    }

    fn caught_up() -> Progress {
        Progress { epoch_base: Some(BASE), delivered: None, lag: Some(0) }
    }

    #[test]
    fn the_lines_own_version_with_its_values_is_stored_and_with_others_altered() {
        assert_eq!(classify(&order_line(Some(row(BASE + 120, true))), &caught_up()), LineState::Stored);
        assert_eq!(classify(&order_line(Some(row(BASE + 120, false))), &caught_up()), LineState::Altered);
    }

    #[test]
    fn a_newer_version_supersedes_and_names_the_line_that_won() {
        let newer = row((71 << 36) + 5, true);
        assert_eq!(
            classify(&order_line(Some(newer)), &caught_up()),
            LineState::Superseded { file: "/inbox/b.csv".into(), line: 7 }
        );
    }

    #[test]
    fn an_older_version_stored_or_no_row_is_missing_once_the_pipeline_caught_up() {
        assert_eq!(classify(&order_line(Some(row(BASE - 1, true))), &caught_up()), LineState::Missing);
        assert_eq!(classify(&order_line(None), &caught_up()), LineState::Missing);
    }

    #[test]
    fn a_dead_letter_accounts_for_a_line_without_its_row() {
        let mut line = order_line(None);
        line.order_id = None;
        line.dead_letter = Some(DeadLetterFact { reason: "bad_amount".into(), pending: true });
        assert!(matches!(classify(&line, &caught_up()), LineState::DeadLettered(_)));
    }

    #[test]
    fn undelivered_lines_and_a_lagging_group_are_in_flight_not_missing() {
        let undelivered = Progress { delivered: Some(159), ..caught_up() };
        assert_eq!(classify(&order_line(None), &undelivered), LineState::InFlight(InFlight::NotDelivered));
        let delivered = Progress { delivered: Some(160), ..caught_up() };
        assert_eq!(classify(&order_line(None), &delivered), LineState::Missing);
        let lagging = Progress { lag: Some(3), ..caught_up() };
        assert_eq!(classify(&order_line(None), &lagging), LineState::InFlight(InFlight::NotApplied));
    }

    #[test]
    fn without_a_known_epoch_the_lines_place_decides() {
        let unknown = Progress { epoch_base: None, ..caught_up() };
        let mut same_place = row(12345, true);
        (same_place.offset, same_place.line) = (120, 3);
        assert_eq!(classify(&order_line(Some(same_place)), &unknown), LineState::Stored);
        assert!(matches!(classify(&order_line(Some(row(12345, true))), &unknown), LineState::Superseded { .. }));
    }

    #[test]
    fn the_tally_names_only_the_first_examples() {
        let mut account = FileAccount::new("a.csv".into(), Some(70));
        for _ in 0..3 {
            account.count(&order_line(None), LineState::Missing, 2);
        }
        account.count_unfinished_line();
        assert_eq!((account.lines, account.missing, account.in_flight()), (4, 3, 1));
        assert_eq!(account.first_missing.len(), 2);
        assert_eq!(account.first_missing[0].order_id, Some(42));
    }
}
