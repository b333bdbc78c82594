//! Follows one CSV file: reads what is there, then what is appended, and turns
//! each complete record into an order, a rejection, or nothing (a header).
//!
//! The first record is the header. A later record that names most of the
//! required columns and is not a valid order is a header line too: a copy of
//! the header in force (exports concatenated with `cat`) is skipped, another
//! header (an exporter appending with a changed export) is honoured from that
//! line on. The offset of the header in force is saved with every delivered
//! position, so a restart in the middle of a file reads its records by the
//! header they were written under.
//!
//! Reading is positional (`pread`) on a file handle kept open, so a file
//! renamed or deleted while being read is still read to its end. Memory is
//! bounded: a record longer than the limit is walked past, not held.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schema::columns::{unknown_names, EXPECTED_HEADER};
use schema::message::{check_epoch, source_version};
use schema::{parse_order, Columns, Extra, Flag, FlagRules, HeaderError, HeaderRules, Order, Rejection, RejectionKind};
use tracing::{info, warn};

use crate::identity::{crc_of_range, FileIdentity};
use crate::positions::{DeliveredPosition, RecordCheck, TrackedFile};
use schema::records::{RecordSkipper, RecordSplitter, SkipProgress, SplitRecord};

/// How much is read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// How many bytes before the end of a record its content check covers: the
/// check stays as cheap for a 1 GB record as for a 40-byte one.
pub const TAIL_CHECK_BYTES: u64 = 4096;

/// What the tailer needs to know besides the file.
#[derive(Debug, Clone)]
pub struct TailerSettings {
    /// Records longer than this many bytes are dead-lettered unread.
    pub max_record_bytes: usize,
    /// How header names map to the order's fields, and what becomes of the others.
    pub header_rules: HeaderRules,
    /// When a valid order is flagged.
    pub flag_rules: FlagRules,
    /// How long the file must stay unchanged before the bytes after its
    /// last line terminator count as its final line and are published
    /// (`--close-inactive`): many exporters omit the last newline, and a
    /// line nobody finishes would otherwise never arrive.
    pub final_line_after: Duration,
}

/// What one record of the file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// A valid order, with its flags and the values of the export's extra
    /// columns, to publish on the orders topic.
    Order(Order, Vec<Flag>, Extra),
    /// Not a valid order: its original bytes go to the dead-letter topic.
    Rejected(Rejection),
    /// The header, or a copy of it: nothing to publish.
    Header,
}

/// One complete record of a file, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct TailedRecord {
    /// Byte offset where the record's own bytes start.
    pub offset: u64,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// The record's original bytes, without its line terminator (for a
    /// record over the size limit, only its first bytes).
    pub raw: Vec<u8>,
    /// The record's place in source order.
    pub version: i64,
    /// The file's position once this record is delivered.
    pub end: DeliveredPosition,
    /// Order, rejection or header.
    pub outcome: RecordOutcome,
    /// The header in force, its names as a JSON array (see
    /// `schema::message::headers::COLUMNS`); `None` when the file has no
    /// header (its first record was too long).
    pub columns: Option<Arc<str>>,
}

/// Something about a header that the run loop reports (once per header
/// read, not once per record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderNotice {
    /// The header cannot be used: the records under it are dead-lettered.
    Unusable(HeaderError),
    /// The header has columns beyond the known ones that the file's previous
    /// header (if any) did not have.
    NewColumns {
        /// 1-based line of the header.
        line: u64,
        /// The new columns' names, normalised, in file order.
        columns: Vec<String>,
    },
}

/// The header records are read by, and where it is.
#[derive(Debug)]
struct HeaderInForce {
    /// Byte offset of the header line, saved with every delivered position.
    offset: u64,
    /// Its names, normalised: a copy of the header is recognised by them.
    names: Vec<String>,
    /// The names as a JSON array, shared by every record read under it;
    /// `None` for the standard header, which is not sent.
    json: Option<Arc<str>>,
    /// The layout, or why there is none (its records are dead-lettered).
    columns: Result<Columns, HeaderError>,
}

/// Where reading a file starts, and why; logged once per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// No position was recorded: a new file, read from its first byte.
    NewFile,
    /// Resumed at the recorded position, whose bytes checked out.
    Resumed,
    /// The bytes before the recorded position are not the ones delivered (the
    /// file was rewritten, or its inode reused): read from the first byte.
    Rewritten,
    /// The file is shorter than the recorded position: read from the first byte.
    Truncated,
}

/// Decides where reading `file` starts, given what was recorded for its key.
/// The check reads the file's first bytes and its last delivered record, so a
/// rewritten file is noticed even when it is as long as before.
pub fn start_point(file: &File, known: Option<&TrackedFile>) -> io::Result<StartPoint> {
    let Some(known) = known else { return Ok(StartPoint::NewFile) };
    if !known.identity.same_file(file)? {
        return Ok(StartPoint::Rewritten);
    }
    let delivered = known.delivered;
    if delivered.offset > file.metadata()?.len() {
        return Ok(StartPoint::Truncated);
    }
    if !record_check_holds(file, delivered.last_record, delivered.offset)? {
        return Ok(StartPoint::Rewritten);
    }
    Ok(StartPoint::Resumed)
}

/// Whether the bytes `check` covers, up to `end`, still have its checksum
/// (no check: nothing to compare, it holds).
fn record_check_holds(file: &File, check: Option<RecordCheck>, end: u64) -> io::Result<bool> {
    let Some(check) = check else { return Ok(true) };
    Ok(end >= check.start && crc_of_range(file, check.start, end - check.start)? == Some(check.crc))
}

/// What reading found.
#[derive(Debug)]
pub enum Poll {
    /// Complete records (possibly none) in file order.
    Records(Vec<TailedRecord>),
    /// The file is now shorter than what was read: it was truncated
    /// (copytruncate) and must be restarted from its first byte.
    Truncated,
}

/// A record too long to hold, being walked past.
struct Skipping {
    skipper: RecordSkipper,
    offset: u64,
    line: u64,
}

/// Follows one file.
pub struct FileTailer {
    path: PathBuf,
    file: File,
    identity: FileIdentity,
    epoch: u64,
    settings: TailerSettings,
    /// Bytes read from the file but not yet split into records.
    buffer: Vec<u8>,
    /// How many bytes at the front of `buffer` were already split.
    split: usize,
    /// The file offset of `buffer[0]`.
    buffer_offset: u64,
    /// Newlines in the file before `buffer[split]`.
    lines: u64,
    /// The header in force, once the first record was read; an unusable
    /// header makes every record under it a rejection.
    header: Option<HeaderInForce>,
    /// What the headers read say, until the run loop takes it to report it
    /// (once per header, not once per record).
    notices: Vec<HeaderNotice>,
    splitter: RecordSplitter,
    skipping: Option<Skipping>,
    /// The check of the last record read and where it ended: compared on
    /// every look at a changed file, so a file truncated and refilled past
    /// that point is noticed before its new bytes are read from the middle.
    last_read: Option<(RecordCheck, u64)>,
    /// Size and modification time at the last look.
    last_seen: Option<(u64, Option<std::time::SystemTime>)>,
    /// When the last look found the size or modification time changed (or
    /// the tailer started): the monotonic half of [`Self::unchanged_for`],
    /// which no step of the wall clock moves.
    last_change: Instant,
}

impl FileTailer {
    /// Follows `file` (found at `path`) from the position `tracked` records.
    /// An epoch past the largest is refused (`InvalidInput`): its versions
    /// would wrap.
    pub fn new(path: &Path, file: File, tracked: &TrackedFile, settings: TailerSettings) -> io::Result<FileTailer> {
        let epoch = check_epoch(tracked.epoch).map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error))?;
        let mut tailer = FileTailer {
            path: path.to_path_buf(),
            file,
            identity: tracked.identity,
            epoch,
            settings,
            buffer: Vec::new(),
            split: 0,
            buffer_offset: tracked.delivered.offset,
            lines: tracked.delivered.lines,
            header: None,
            notices: Vec::new(),
            splitter: RecordSplitter::default(),
            skipping: None,
            last_read: tracked.delivered.last_record.map(|check| (check, tracked.delivered.offset)),
            last_seen: None,
            last_change: Instant::now(),
        };
        if tailer.buffer_offset > 0 {
            tailer.header = Some(tailer.read_header(tracked.delivered.header_offset)?);
        }
        Ok(tailer)
    }

    /// Starts over from the first byte, as a new source (after a truncation).
    pub fn restart(&mut self, tracked: &TrackedFile) {
        self.identity = tracked.identity;
        self.epoch = tracked.epoch;
        self.buffer.clear();
        self.split = 0;
        self.buffer_offset = 0;
        self.lines = 0;
        self.header = None;
        self.skipping = None;
        self.last_read = None;
        self.last_seen = None;
        self.last_change = Instant::now();
    }

    /// Whether the bytes read so far are still the file's. Looks at the
    /// file's size and modification time, and when either changed since the
    /// last look, at its content: the checksum of its first bytes and of the
    /// end of the last record read. `false` means the file was truncated or
    /// rewritten (copytruncate, then refilled, perhaps past where reading
    /// stood) and must be read again from its first byte.
    ///
    /// Called on every turn of the producer's loop, whether reading is
    /// paused or not, so a file rewritten while reading waits is noticed.
    pub fn still_holds_what_was_read(&mut self) -> io::Result<bool> {
        let metadata = self.file.metadata()?;
        let seen = (metadata.len(), metadata.modified().ok());
        if self.last_seen == Some(seen) {
            return Ok(true);
        }
        self.last_change = Instant::now();
        if metadata.len() < self.position() || !self.identity.same_file(&self.file)? {
            return Ok(false);
        }
        if let Some((check, end)) = self.last_read {
            if !record_check_holds(&self.file, Some(check), end)? {
                return Ok(false);
            }
        }
        self.last_seen = Some(seen);
        Ok(true)
    }

    /// How long the file has not changed: the shorter of the time since its
    /// modification time (the wall clock: right across restarts) and the
    /// time since a look at it last found its size or modification time
    /// changed (a monotonic clock). A forward step of the wall clock cannot
    /// make a file that is still being written look idle.
    pub fn unchanged_for(&self) -> Duration {
        let modified = self.file.metadata().and_then(|metadata| metadata.modified());
        let by_wall_clock = modified.ok().and_then(|modified| modified.elapsed().ok()).unwrap_or_default();
        by_wall_clock.min(self.last_change.elapsed())
    }

    /// The path the file was found at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes the file's new path after a rename.
    pub fn set_path(&mut self, path: &Path) {
        self.path = path.to_path_buf();
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The file's identity.
    pub fn identity(&self) -> &FileIdentity {
        &self.identity
    }

    /// The file's epoch in source order.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes between what was read and the end of the file.
    pub fn bytes_behind(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len().saturating_sub(self.buffer_offset + self.split as u64))
    }

    /// What the headers found by the last read say, once: the caller
    /// reports it (an unusable header's records are dead-lettered as
    /// `bad_header`; new columns are counted).
    pub fn take_header_notices(&mut self) -> Vec<HeaderNotice> {
        std::mem::take(&mut self.notices)
    }

    /// Reads up to `max` complete records that follow the last one returned.
    /// Fewer (or none) means the file has no more complete records for now.
    pub fn next_records(&mut self, max: usize, now: DateTime<Utc>) -> io::Result<Poll> {
        if self.file.metadata()?.len() < self.buffer_offset + self.buffer.len() as u64 {
            return Ok(Poll::Truncated);
        }
        let mut records = Vec::new();
        while records.len() < max {
            if self.skipping.is_some() {
                match self.skip_oversized()? {
                    Some(record) => push_sized(&mut records, record, max),
                    None => break,
                }
                continue;
            }
            match self.splitter.split(&self.buffer[self.split..]) {
                Some(split) => push_sized(&mut records, self.take(split, now), max),
                None if self.pending_record_len() > self.settings.max_record_bytes => self.start_skipping(),
                None if self.read_more()? == 0 => {
                    self.pass_trailing_blank_lines();
                    match self.take_final_line(now) {
                        Some(record) => push_sized(&mut records, record, max),
                        None => break,
                    }
                }
                None => {}
            }
        }
        Ok(Poll::Records(records))
    }

    /// Blank lines at the file's end belong to no record (the next record
    /// would skip them): passed at once, so a file ending with one is read
    /// to its end, shows no unread bytes, and is released once it leaves
    /// the inbox. Its saved position stays at its last record's end.
    fn pass_trailing_blank_lines(&mut self) {
        let pending = &self.buffer[self.split..];
        if !pending.is_empty() && leading_blank_len(pending) == pending.len() {
            self.lines += pending.iter().filter(|byte| **byte == b'\n').count() as u64;
            self.split = self.buffer.len();
        }
    }

    /// The bytes after the file's last line terminator as its final
    /// record, once the file has not changed for
    /// [`TailerSettings::final_line_after`]: the file is finished, and its
    /// writer omitted the last newline. The record is split, parsed and
    /// versioned like any other (its version is its offset's); reading
    /// goes on after it, so bytes appended later are a record of their own,
    /// at a larger offset and so a newer version. A quote still open is
    /// closed by the file's end, as CSV readers do at the end of input.
    fn take_final_line(&mut self, now: DateTime<Utc>) -> Option<TailedRecord> {
        if self.skipping.is_some()
            || self.pending_record_len() == 0
            || self.unchanged_for() < self.settings.final_line_after
        {
            return None;
        }
        let split = [&b"\n"[..], b"\"\n"].into_iter().find_map(|end| self.split_with_end(end))?;
        Some(self.take(split, now))
    }

    /// The pending bytes as one record, ended by `end` (bytes the file does
    /// not have), or `None` when they are not exactly one record so ended.
    fn split_with_end(&mut self, end: &[u8]) -> Option<SplitRecord> {
        let mut ended = self.buffer[self.split..].to_vec();
        ended.extend_from_slice(end);
        let mut split = self.splitter.split(&ended).filter(|split| split.consumed == ended.len())?;
        // The record ends at the file's last byte: nothing of `end` is in it.
        split.consumed -= end.len();
        split.newlines -= 1;
        split.raw_len -= end.len() - 1;
        Some(split)
    }

    /// Bytes after the file's last record that are not blank, when they
    /// reach the file's end: a last line without its newline (still being
    /// written, or never to be finished), published as the final line once
    /// the file is unchanged for [`TailerSettings::final_line_after`].
    pub fn unterminated_bytes(&self) -> u64 {
        let end = self.buffer_offset + self.buffer.len() as u64;
        let at_the_end = self.file.metadata().is_ok_and(|metadata| metadata.len() == end);
        if at_the_end {
            self.pending_record_len() as u64
        } else {
            0
        }
    }

    fn pending_record_len(&self) -> usize {
        let pending = &self.buffer[self.split..];
        pending.len() - leading_blank_len(pending)
    }

    /// Reads the header in force at `offset` (the first record, or a header
    /// line further down), for a tailer that resumes past it. Reads at most
    /// a record's limit: a file whose first record was too long has no
    /// usable header, as when it was first read.
    fn read_header(&self, offset: u64) -> io::Result<HeaderInForce> {
        let limit = self.settings.max_record_bytes;
        // The record, its line terminator, and blank lines before it.
        let window = (limit as u64 + 2).min(self.file.metadata()?.len().saturating_sub(offset)) as usize;
        let mut bytes = vec![0; window];
        let mut filled = 0;
        while filled < window {
            match self.file.read_at(&mut bytes[filled..], offset + filled as u64)? {
                0 => break,
                read => filled += read,
            }
        }
        let too_long =
            || HeaderInForce { offset, names: Vec::new(), json: None, columns: Err(HeaderError::TooLong(limit)) };
        match RecordSplitter::default().split(&bytes[..filled]) {
            Some(header) if header.raw_len <= limit => Ok(self.header_of(&header, offset)),
            Some(_) => Ok(too_long()),
            None if filled > limit => Ok(too_long()),
            None => {
                Err(io::Error::new(io::ErrorKind::InvalidData, "resuming past a header that is no longer complete"))
            }
        }
    }

    /// Reads what the file has beyond the buffer, at most [`READ_CHUNK`].
    /// Nothing is allocated for a file with nothing new, and a file read to
    /// its end gives its buffer back: an inbox may hold hundreds of finished
    /// files, each followed, none of which should hold memory.
    fn read_more(&mut self) -> io::Result<usize> {
        if self.split > 0 {
            self.buffer.drain(..self.split);
            self.buffer_offset += self.split as u64;
            self.split = 0;
        }
        let filled = self.buffer.len();
        let available = self.file.metadata()?.len().saturating_sub(self.buffer_offset + filled as u64);
        if available == 0 {
            if filled == 0 {
                self.buffer = Vec::new();
            }
            return Ok(0);
        }
        let chunk = available.min(READ_CHUNK as u64) as usize;
        self.buffer.resize(filled + chunk, 0);
        let read = self.file.read_at(&mut self.buffer[filled..], self.buffer_offset + filled as u64);
        self.buffer.truncate(filled + *read.as_ref().unwrap_or(&0));
        read
    }

    /// Bytes split into records so far: everything before was read and sent.
    pub fn position(&self) -> u64 {
        self.buffer_offset + self.split as u64
    }

    /// Bytes read past [`Self::position`] that are not a complete record yet.
    pub fn partial_bytes(&self) -> u64 {
        self.buffer.len().saturating_sub(self.split) as u64
    }

    fn take(&mut self, split: SplitRecord, now: DateTime<Utc>) -> TailedRecord {
        let start = self.split + split.leading_blank;
        let kept =
            if split.raw_len > self.settings.max_record_bytes { RecordSkipper::PREFIX_BYTES } else { split.raw_len };
        let raw = self.buffer[start..start + kept.min(split.raw_len)].to_vec();
        let end = self.split + split.consumed;
        let checked = start.max(end.saturating_sub(TAIL_CHECK_BYTES as usize));
        let check = RecordCheck {
            start: self.buffer_offset + checked as u64,
            crc: crc32fast::hash(&self.buffer[checked..end]),
        };
        let offset = self.buffer_offset + start as u64;
        let line = self.lines + split.leading_newlines + 1;
        self.split += split.consumed;
        self.lines += split.newlines;
        let outcome = if split.raw_len > self.settings.max_record_bytes {
            self.no_header_after_a_too_long_first_record();
            RecordOutcome::Rejected(too_long(split.raw_len as u64, self.settings.max_record_bytes))
        } else {
            self.classify(&split, offset, line, now)
        };
        self.record(offset, line, raw, check, outcome)
    }

    /// A first record too long to read is no header: the records after it
    /// are dead-lettered (`bad_header`), not read by a header guessed from
    /// the second line, until a header line comes.
    fn no_header_after_a_too_long_first_record(&mut self) {
        if self.header.is_none() {
            let columns = Err(HeaderError::TooLong(self.settings.max_record_bytes));
            self.header = Some(HeaderInForce { offset: 0, names: Vec::new(), json: None, columns });
        }
    }

    fn record(
        &mut self,
        offset: u64,
        line: u64,
        raw: Vec<u8>,
        check: RecordCheck,
        outcome: RecordOutcome,
    ) -> TailedRecord {
        let header = self.header.as_ref();
        let end = DeliveredPosition {
            offset: self.position(),
            lines: self.lines,
            last_record: Some(check),
            header_offset: header.map_or(0, |header| header.offset),
        };
        self.last_read = Some((check, end.offset));
        let columns = header.and_then(|header| header.json.clone());
        TailedRecord { offset, line, raw, version: self.version_at(offset), end, outcome, columns }
    }

    /// The version of the record at `offset`.
    fn version_at(&self, offset: u64) -> i64 {
        source_version(self.epoch, offset).expect("epochs are checked before a tailer gets one: new, allocate_epoch")
    }

    fn start_skipping(&mut self) {
        let blank = leading_blank_len(&self.buffer[self.split..]);
        self.lines += self.buffer[self.split..self.split + blank].iter().filter(|b| **b == b'\n').count() as u64;
        self.split += blank;
        warn!(message = "Record longer than the limit; dead-lettering it without reading it whole.",
              file = %self.path.display(), offset = self.position(), limit = self.settings.max_record_bytes);
        self.skipping = Some(Skipping { skipper: RecordSkipper::new(), offset: self.position(), line: self.lines + 1 });
    }

    /// Walks on through an oversized record; its rejection once it ended,
    /// `None` when the file has no more bytes for now.
    fn skip_oversized(&mut self) -> io::Result<Option<TailedRecord>> {
        loop {
            let skipping = self.skipping.as_mut().expect("called while skipping");
            match skipping.skipper.feed(&self.buffer[self.split..]) {
                SkipProgress::Done(used) => {
                    self.split += used;
                    let Skipping { skipper, offset, line } = self.skipping.take().expect("skipping");
                    self.lines += skipper.newlines;
                    self.no_header_after_a_too_long_first_record();
                    let rejection = too_long(skipper.skipped, self.settings.max_record_bytes);
                    let raw = skipper.prefix.clone();
                    let end = self.position();
                    let start = offset.max(end.saturating_sub(TAIL_CHECK_BYTES));
                    // The record's end is in the file (just read); a file cut
                    // meanwhile gets a check that fails, and is read again.
                    let crc = crc_of_range(&self.file, start, end - start)?.unwrap_or_default();
                    let check = RecordCheck { start, crc };
                    return Ok(Some(self.record(offset, line, raw, check, RecordOutcome::Rejected(rejection))));
                }
                SkipProgress::NeedMore => {
                    self.split = self.buffer.len();
                    if self.read_more()? == 0 {
                        return Ok(None);
                    }
                }
            }
        }
    }

    fn classify(&mut self, split: &SplitRecord, offset: u64, line: u64, now: DateTime<Utc>) -> RecordOutcome {
        let Some(header) = &self.header else {
            self.adopt_header(split, offset, line);
            return match &self.header.as_ref().expect("just adopted").columns {
                Ok(_) => RecordOutcome::Header,
                // Dead-lettered too: it may be a data line of a file without
                // a header, which would otherwise vanish.
                Err(error) => RecordOutcome::Rejected(unusable_first_line(split, error, &self.settings.header_rules)),
            };
        };
        let fields = match utf8_fields(split) {
            Ok(fields) => fields,
            Err(rejection) => return RecordOutcome::Rejected(rejection),
        };
        if Columns::is_header(fields.iter().copied(), &self.settings.header_rules) {
            let is_data = matches!(&header.columns, Ok(columns) if parse_order(&fields, columns, now).is_ok());
            if !is_data {
                if !schema::columns::same_names(&header.names, &fields) {
                    self.adopt_header(split, offset, line);
                }
                return RecordOutcome::Header;
            }
        }
        let columns = match &header.columns {
            Ok(columns) => columns,
            Err(error) => return RecordOutcome::Rejected(Rejection::new(RejectionKind::BadHeader, error.to_string())),
        };
        match parse_order(&fields, columns, now) {
            Ok(order) => {
                let flags = self.settings.flag_rules.flags(&order);
                RecordOutcome::Order(order, flags, columns.extra_values(&fields))
            }
            Err(rejection) => RecordOutcome::Rejected(rejection),
        }
    }

    /// Makes `split`, found at `offset` on `line`, the header in force, and
    /// notes what to report about it: unusable, or new columns compared with
    /// the header before it.
    fn adopt_header(&mut self, split: &SplitRecord, offset: u64, line: u64) {
        let rules = &self.settings.header_rules;
        let seen_before: Vec<&String> = match &self.header {
            Some(header) => unknown_names(&header.names, rules).collect(),
            None => Vec::new(),
        };
        let header = self.header_of(split, offset);
        let new_columns: Vec<String> =
            unknown_names(&header.names, rules).filter(|name| !seen_before.contains(name)).cloned().collect();
        // An unusable header's extra columns are named by its error; only a
        // usable header counts new columns, so a junk first line cannot fill
        // the metric with labels.
        match &header.columns {
            Ok(_) if !new_columns.is_empty() => {
                self.notices.push(HeaderNotice::NewColumns { line, columns: new_columns });
            }
            Ok(_) => info!(message = "Header read.", file = %self.path.display(), line),
            Err(error) => self.notices.push(HeaderNotice::Unusable(error.clone())),
        }
        self.header = Some(header);
    }

    /// The header a record at `offset` makes.
    fn header_of(&self, split: &SplitRecord, offset: u64) -> HeaderInForce {
        let names: Vec<String> =
            split.fields.iter().map(|field| schema::columns::normalise(&String::from_utf8_lossy(field))).collect();
        // The usual header travels as no header at all (see `headers::COLUMNS`).
        let json = (!schema::columns::is_standard_header(&names))
            .then(|| serde_json::to_string(&names).expect("names serialise").into());
        let columns = Columns::read_header(names.iter().map(String::as_str), &self.settings.header_rules);
        HeaderInForce { offset, names, json, columns }
    }
}

/// Pushes a record, sizing the vector for `max` on the first one: not up
/// front (most polls of a finished file find nothing), nor by doubling (each
/// step would move every record read so far).
fn push_sized(records: &mut Vec<TailedRecord>, record: TailedRecord, max: usize) {
    if records.capacity() == 0 {
        records.reserve_exact(max);
    }
    records.push(record);
}

fn too_long(length: u64, limit: usize) -> Rejection {
    Rejection::new(
        RejectionKind::RecordTooLong,
        format!(
            "record is {length} bytes, longer than the {limit}-byte limit; only its first {} bytes are kept",
            RecordSkipper::PREFIX_BYTES
        ),
    )
}

fn leading_blank_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| **b == b'\n' || **b == b'\r').count()
}

/// The rejection of a first line that is not a usable header, saying
/// whether it looks like no header at all (none of its fields is a column name).
fn unusable_first_line(split: &SplitRecord, error: &HeaderError, rules: &HeaderRules) -> Rejection {
    let names: Vec<String> = split.fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let names_a_column = names.iter().any(|name| rules.names_a_known_column(name));
    let message = if names_a_column {
        format!("the first line is an unusable header: {error}")
    } else {
        format!("the first line is not a header (expected {}): {error}", EXPECTED_HEADER.join(","))
    };
    Rejection::new(RejectionKind::BadHeader, message)
}

fn utf8_fields(split: &SplitRecord) -> Result<Vec<&str>, Rejection> {
    split
        .fields
        .iter()
        .enumerate()
        .map(|(index, field)| {
            std::str::from_utf8(field).map_err(|error| {
                Rejection::new(RejectionKind::InvalidUtf8, format!("field {} is not UTF-8: {error}", index + 1))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const HEADER: &str = "id,user_id,completed_at,item_total,shipment_total\n";

    fn now() -> DateTime<Utc> {
        "2022-09-01T00:00:00Z".parse().unwrap()
    }

    fn settings() -> TailerSettings {
        TailerSettings {
            max_record_bytes: 200,
            header_rules: HeaderRules::default(),
            flag_rules: FlagRules::default(),
            final_line_after: Duration::from_secs(3600),
        }
    }

    fn append(path: &Path, text: &[u8]) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text).unwrap();
    }

    fn tracked(path: &Path, epoch: u64, delivered: DeliveredPosition) -> TrackedFile {
        let identity = FileIdentity::of(&File::open(path).unwrap()).unwrap();
        TrackedFile { path: path.to_path_buf(), identity, epoch, delivered }
    }

    fn open(path: &Path) -> FileTailer {
        FileTailer::new(path, File::open(path).unwrap(), &tracked(path, 1, DeliveredPosition::default()), settings())
            .unwrap()
    }

    fn records(tailer: &mut FileTailer) -> Vec<TailedRecord> {
        match tailer.next_records(100, now()).unwrap() {
            Poll::Records(records) => records,
            Poll::Truncated => panic!("unexpected truncation"),
        }
    }

    fn summary(records: &[TailedRecord]) -> Vec<String> {
        records
            .iter()
            .map(|r| match &r.outcome {
                RecordOutcome::Order(order, flags, extra) if !extra.is_empty() => {
                    let extra: Vec<String> = extra.iter().map(|(name, value)| format!("{name}={value}")).collect();
                    format!("order {} {}", order.id, extra.join(" "))
                }
                RecordOutcome::Order(order, flags, _) if flags.is_empty() => format!("order {}", order.id),
                RecordOutcome::Order(order, flags, _) => format!("order {} {flags:?}", order.id),
                RecordOutcome::Rejected(rejection) => rejection.kind.to_string(),
                RecordOutcome::Header => "header".into(),
            })
            .collect()
    }

    #[test]
    fn an_unterminated_last_line_waits_while_the_file_may_still_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let tail = "2,11,2022-07-01 00:20,10.00,2.5";
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n{tail}").as_bytes());
        let mut tailer = open(&path);
        assert_eq!(summary(&records(&mut tailer)), ["header", "order 1"]);
        assert_eq!(tailer.unterminated_bytes(), tail.len() as u64, "named, not published");
    }

    #[test]
    fn an_unterminated_last_line_is_the_final_line_of_a_finished_file_and_later_bytes_are_newer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n2,11,2022-07-01 00:20,10.00,2.5").as_bytes());
        let finished = TailerSettings { final_line_after: Duration::ZERO, ..settings() };
        let mut tailer = open_with(&path, finished.clone());
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["header", "order 1", "order 2"]);
        let last = read.last().unwrap();
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!((last.end.offset, last.end.lines), (size, 2), "delivered to the file's last byte");
        assert_eq!(last.raw, b"2,11,2022-07-01 00:20,10.00,2.5");
        assert_eq!(tailer.unterminated_bytes(), 0);
        assert!(records(&mut tailer).is_empty(), "published once");

        append(&path, b"\n3,12,2022-07-01 00:21,10.00,2.5\n");
        let later = records(&mut tailer);
        assert_eq!(summary(&later), ["order 3"]);
        assert!(later[0].version > last.version, "an append after the final line is newer");
        let mut resumed =
            FileTailer::new(&path, File::open(&path).unwrap(), &tracked(&path, 1, last.end), finished).unwrap();
        let after_restart = records(&mut resumed);
        assert_eq!(summary(&after_restart), ["order 3"], "a restart resumes after the final line");
        assert_eq!(after_restart[0].version, later[0].version);
    }

    #[test]
    fn blank_lines_at_the_end_leave_nothing_unread_and_keep_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n\r\n\n").as_bytes());
        let mut tailer = open(&path);
        assert_eq!(summary(&records(&mut tailer)), ["header", "order 1"]);
        assert_eq!((tailer.bytes_behind().unwrap(), tailer.unterminated_bytes()), (0, 0));
        let second = b"2,11,2022-07-01 00:20,10.00,2.5\n";
        append(&path, second);
        let later = records(&mut tailer);
        assert_eq!(summary(&later), ["order 2"]);
        assert_eq!(later[0].line, 5, "the blank lines still count");
        let size = std::fs::metadata(&path).unwrap().len();
        assert_eq!(later[0].offset, size - second.len() as u64, "its offset, so its version, is unchanged");
    }

    #[test]
    fn a_final_line_with_its_quote_still_open_is_closed_by_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,\"2.5").as_bytes());
        let mut tailer = open_with(&path, TailerSettings { final_line_after: Duration::ZERO, ..settings() });
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["header", "order 1"]);
        assert_eq!(read[1].raw, b"1,10,2022-07-01 00:19,39.14,\"2.5");
        assert_eq!(read[1].end.offset, std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn a_file_read_to_its_end_holds_no_read_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut tailer = open(&path);
        assert_eq!(summary(&records(&mut tailer)), ["header", "order 1"]);
        assert_eq!(tailer.buffer.capacity(), 0, "a caught-up file gives its buffer back");
        assert!(records(&mut tailer).is_empty());
        assert_eq!(tailer.buffer.capacity(), 0, "polling a file with nothing new allocates nothing");
        append(&path, b"2,11,2022-07-01 00:20,10.00,2.5\n3,12");
        assert_eq!(summary(&records(&mut tailer)), ["order 2"]);
        assert!(tailer.buffer.capacity() > 0, "a partial record is kept");
    }

    #[test]
    fn existing_then_appended_records_are_read_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut tailer = open(&path);
        let first = records(&mut tailer);
        assert_eq!(summary(&first), ["header", "order 1"]);
        assert_eq!((first[1].line, first[1].offset), (2, HEADER.len() as u64));
        assert!(records(&mut tailer).is_empty());

        append(&path, b"2,11,2022-07-01 00:20,10.00,2.5\n3,12,2022-07-01");
        assert_eq!(summary(&records(&mut tailer)), ["order 2"], "the partial line waits");
        append(&path, b" 00:21,5,0\n");
        let third = records(&mut tailer);
        assert_eq!(summary(&third), ["order 3"]);
        assert_eq!(third[0].line, 4);
    }

    #[test]
    fn versions_grow_down_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,1,1\n1,10,2022-07-01 00:19,2,1\n").as_bytes());
        let read = records(&mut open(&path));
        assert!(read[1].version < read[2].version);
        assert_eq!(read[1].version, source_version(1, read[1].offset).unwrap());
    }

    #[test]
    fn resuming_at_a_delivered_position_skips_what_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n2,11,2022-07-01 00:20,1,0\n").as_bytes());
        let delivered = records(&mut open(&path))[1].end;
        let known = tracked(&path, 1, delivered);
        let file = File::open(&path).unwrap();
        assert_eq!(start_point(&file, Some(&known)).unwrap(), StartPoint::Resumed);
        let rest = records(&mut FileTailer::new(&path, file, &known, settings()).unwrap());
        assert_eq!(summary(&rest), ["order 2"]);
        assert_eq!(rest[0].line, 3);
    }

    #[test]
    fn rewritten_bytes_before_the_position_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let delivered = records(&mut open(&path))[1].end;
        let known = tracked(&path, 1, delivered);
        // Same length, same head, different last record.
        let rewritten = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        rewritten.write_at(b"9", HEADER.len() as u64).unwrap();
        assert_eq!(start_point(&File::open(&path).unwrap(), Some(&known)).unwrap(), StartPoint::Rewritten);
    }

    #[test]
    fn shorter_file_than_the_position_is_truncated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut known = tracked(&path, 1, DeliveredPosition::default());
        known.delivered.offset = 10_000;
        assert_eq!(start_point(&File::open(&path).unwrap(), Some(&known)).unwrap(), StartPoint::Truncated);
    }

    #[test]
    fn truncation_while_following_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut tailer = open(&path);
        records(&mut tailer);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        assert!(matches!(tailer.next_records(10, now()).unwrap(), Poll::Truncated));
        append(&path, format!("{HEADER}2,10,2022-07-01 00:19,1,1\n").as_bytes());
        let fresh = tracked(&path, 2, DeliveredPosition::default());
        tailer.restart(&fresh);
        let again = records(&mut tailer);
        assert_eq!(summary(&again), ["header", "order 2"]);
        assert_eq!(again[1].version, source_version(2, again[1].offset).unwrap());
    }

    #[test]
    fn a_file_truncated_and_refilled_past_the_read_position_is_noticed_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut tailer = open(&path);
        records(&mut tailer);
        assert!(tailer.still_holds_what_was_read().unwrap());
        // copytruncate, then more than before is written: longer than what was read.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
        append(&path, format!("{HEADER}2,10,2022-07-01 00:19,1,1\n3,10,2022-07-01 00:19,1,1\n").as_bytes());
        assert!(!tailer.still_holds_what_was_read().unwrap(), "the new bytes would be read from the middle");
    }

    #[test]
    fn appending_keeps_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let mut tailer = open(&path);
        records(&mut tailer);
        append(&path, b"2,10,2022-07-01 00:19,1,1\n");
        assert!(tailer.still_holds_what_was_read().unwrap());
        assert_eq!(summary(&records(&mut tailer)), ["order 2"]);
    }

    #[test]
    fn a_record_check_covers_only_the_end_of_a_long_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let long = "7".repeat(READ_CHUNK * 2);
        append(&path, format!("{HEADER}{long}\n").as_bytes());
        let read = records(&mut open(&path));
        let check = read[1].end.last_record.unwrap();
        assert_eq!(read[1].end.offset - check.start, TAIL_CHECK_BYTES);
        let file = File::open(&path).unwrap();
        assert_eq!(start_point(&file, Some(&tracked(&path, 1, read[1].end))).unwrap(), StartPoint::Resumed);
    }

    #[test]
    fn a_too_long_first_record_is_no_header_now_or_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let junk = "j".repeat(READ_CHUNK * 2);
        append(&path, format!("{junk}\n1,10,2022-07-01 00:19,1,1\n{HEADER}2,10,2022-07-01 00:19,1,1\n").as_bytes());
        let read = records(&mut open(&path));
        // No header is guessed from the second line; a header line further
        // down is honoured from there on.
        assert_eq!(summary(&read), ["record_too_long", "bad_header", "header", "order 2"]);
        // Resuming after the junk record reads the same (no) header, holding
        // no more than a record's limit.
        let known = tracked(&path, 1, read[0].end);
        let mut resumed = FileTailer::new(&path, File::open(&path).unwrap(), &known, settings()).unwrap();
        assert_eq!(summary(&records(&mut resumed)), ["bad_header", "header", "order 2"]);
    }

    fn with_rules(rules: HeaderRules) -> TailerSettings {
        TailerSettings { header_rules: rules, ..settings() }
    }

    fn open_with(path: &Path, settings: TailerSettings) -> FileTailer {
        FileTailer::new(path, File::open(path).unwrap(), &tracked(path, 1, DeliveredPosition::default()), settings)
            .unwrap()
    }

    #[test]
    fn the_standard_header_does_not_travel_with_each_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"ID,user_id,completed_at,item_total,shipment_total\n1,10,2022-07-01 00:19,39.14,2.5\n");
        let read = records(&mut open(&path));
        assert_eq!(summary(&read), ["header", "order 1"]);
        assert_eq!(read[1].columns, None, "the usual five names, normalised, are not sent");
    }

    #[test]
    fn extra_columns_travel_with_the_order_and_are_reported_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let header = "coupon_code,shipment_total,completed_at,Id,item_total,user_id,Currency\n";
        append(
            &path,
            format!("{header}SUMMER,2.5,2022-07-01 00:19,1,39.14,10,EUR\n,0,2022-07-01 00:20,2,1,11,\n").as_bytes(),
        );
        let mut tailer = open(&path);
        let read = records(&mut tailer);
        assert_eq!(
            summary(&read),
            ["header", "order 1 coupon_code=SUMMER currency=EUR", "order 2 coupon_code= currency="]
        );
        let json = r#"["coupon_code","shipment_total","completed_at","id","item_total","user_id","currency"]"#;
        assert_eq!(read[1].columns.as_deref(), Some(json), "the header travels with the record");
        let notices = tailer.take_header_notices();
        assert_eq!(
            notices,
            [HeaderNotice::NewColumns { line: 1, columns: vec!["coupon_code".into(), "currency".into()] }]
        );
        append(&path, format!("{header}3,x\n").as_bytes());
        assert_eq!(summary(&records(&mut tailer)), ["header", "field_count"], "a copy of the header is skipped");
        assert!(tailer.take_header_notices().is_empty(), "reported once per header");
    }

    #[test]
    fn ignored_columns_are_dropped_and_rejected_ones_dead_letter_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"id,user_id,completed_at,item_total,shipment_total,coupon\n1,10,2022-07-01 00:19,1,1,X\n");
        let ignore = HeaderRules { unknown: schema::UnknownColumns::Ignore, ..HeaderRules::default() };
        assert_eq!(summary(&records(&mut open_with(&path, with_rules(ignore)))), ["header", "order 1"]);
        let reject = HeaderRules { unknown: schema::UnknownColumns::Reject, ..HeaderRules::default() };
        let mut tailer = open_with(&path, with_rules(reject));
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["bad_header", "bad_header"]);
        let RecordOutcome::Rejected(rejection) = &read[1].outcome else { unreachable!() };
        assert!(
            rejection.message.contains("`coupon`") && rejection.message.contains("reject"),
            "{}",
            rejection.message
        );
        let notices = tailer.take_header_notices();
        assert_eq!(notices, [HeaderNotice::Unusable(HeaderError::UnknownColumns(vec!["coupon".into()]))]);
    }

    #[test]
    fn an_aliased_header_reads_as_the_known_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(
            &path,
            b"\xef\xbb\xbfOrder_ID,Customer,completed_at,item_total,shipment_total\n7,10,2022-07-01 00:19,1,1\n",
        );
        let rules = HeaderRules {
            aliases: vec!["order_id=id".parse().unwrap(), "customer=user_id".parse().unwrap()],
            ..HeaderRules::default()
        };
        let mut tailer = open_with(&path, with_rules(rules));
        assert_eq!(summary(&records(&mut tailer)), ["header", "order 7"]);
        assert!(tailer.take_header_notices().is_empty(), "aliased columns are not new columns");
    }

    #[test]
    fn a_missing_column_dead_letters_the_records_naming_it_and_the_extra_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"id,user_id,completed_at,total,currency\n1,10,2022-07-01 00:19,1,EUR\n");
        let mut tailer = open(&path);
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["bad_header", "bad_header"]);
        let RecordOutcome::Rejected(rejection) = &read[1].outcome else { unreachable!() };
        assert_eq!(
            rejection.message,
            "header lacks the column(s) `item_total`, `shipment_total` (extra columns seen: `total`, `currency`)"
        );
        assert_eq!(tailer.take_header_notices().len(), 1, "one notice for the file, not one per record");
    }

    #[test]
    fn a_header_changed_inside_the_file_is_honoured_from_that_line_on_and_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let changed = "currency,id,user_id,completed_at,item_total,shipment_total,coupon\n";
        append(
            &path,
            format!("{HEADER}1,10,2022-07-01 00:19,1,1\n{changed}EUR,2,10,2022-07-01 00:19,1,1,X\nUSD,3,10,2022-07-01 00:19,1,1,\n")
                .as_bytes(),
        );
        let mut tailer = open(&path);
        let read = records(&mut tailer);
        assert_eq!(
            summary(&read),
            ["header", "order 1", "header", "order 2 currency=EUR coupon=X", "order 3 currency=USD coupon="]
        );
        let notices = tailer.take_header_notices();
        assert_eq!(notices, [HeaderNotice::NewColumns { line: 3, columns: vec!["currency".into(), "coupon".into()] }]);
        assert_eq!(read[3].end.header_offset, read[2].offset, "the position knows the header in force");
        assert_eq!(read[1].end.header_offset, 0);
        // A restart after order 2 reads order 3 by the changed header.
        let known = tracked(&path, 1, read[3].end);
        let mut resumed = FileTailer::new(&path, File::open(&path).unwrap(), &known, settings()).unwrap();
        assert_eq!(summary(&records(&mut resumed)), ["order 3 currency=USD coupon="]);
        assert!(resumed.take_header_notices().is_empty(), "reported by the run that read the header");
        // Back to the first header: only columns the previous header lacked are new.
        append(&path, format!("{HEADER}4,10,2022-07-01 00:19,1,1\n").as_bytes());
        assert_eq!(summary(&records(&mut resumed)), ["header", "order 4"]);
        assert!(resumed.take_header_notices().is_empty());
    }

    #[test]
    fn a_data_line_holding_column_names_is_still_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let header = "id,user_id,completed_at,item_total,shipment_total,a,b,c\n";
        append(&path, format!("{header}1,10,2022-07-01 00:19,1,1,id,user_id,item_total\n").as_bytes());
        assert_eq!(summary(&records(&mut open(&path))), ["header", "order 1 a=id b=user_id c=item_total"]);
    }

    #[test]
    fn bad_records_are_rejected_and_good_neighbours_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut bytes =
            format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n2,x,2022-07-01 00:19,1,1\n{HEADER}\n").into_bytes();
        bytes.extend_from_slice(b"3,1,2022-07-01 00:19,1,\xff\n4,10,2022-07-01 00:19,1,1\n");
        append(&path, &bytes);
        let read = records(&mut open(&path));
        assert_eq!(summary(&read), ["header", "order 1", "invalid_id", "header", "invalid_utf8", "order 4"]);
        assert_eq!(read[2].raw, b"2,x,2022-07-01 00:19,1,1");
        assert_eq!(read[5].line, 7, "the blank line is counted");
    }

    #[test]
    fn suspicious_orders_are_kept_and_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}247792,1,2022-07-01 00:19,0,0\n2,1,2022-07-01 00:19,99999.00,2.5\n").as_bytes());
        assert_eq!(
            summary(&records(&mut open(&path))),
            ["header", "order 247792 [ZeroTotals]", "order 2 [UnusualAmount]"]
        );
    }

    #[test]
    fn unusable_header_rejects_every_record_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"id,user_id,completed_at,item_total\n1,10,2022-07-01 00:19,39.14\n");
        match &records(&mut open(&path))[1].outcome {
            RecordOutcome::Rejected(rejection) => {
                assert_eq!(rejection.kind, RejectionKind::BadHeader);
                assert!(rejection.message.contains("shipment_total"), "{}", rejection.message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn file_without_header_dead_letters_its_first_line_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"1,10,2022-07-01 00:19,39.14,2.5\n2,10,2022-07-01 00:19,1,1\n");
        let read = records(&mut open(&path));
        assert_eq!(summary(&read), ["bad_header", "bad_header"]);
        assert_eq!((read[0].raw.as_slice(), read[0].line), (&b"1,10,2022-07-01 00:19,39.14,2.5"[..], 1));
        let RecordOutcome::Rejected(first) = &read[0].outcome else { unreachable!() };
        assert!(first.message.starts_with("the first line is not a header"), "{}", first.message);
    }

    #[test]
    fn unusable_header_line_is_dead_lettered_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"id,user_id,completed_at,total\n");
        let RecordOutcome::Rejected(header) = &records(&mut open(&path))[0].outcome else { panic!("not rejected") };
        assert_eq!(header.kind, RejectionKind::BadHeader);
        assert!(header.message.starts_with("the first line is an unusable header"), "{}", header.message);
    }

    #[test]
    fn oversized_record_is_rejected_without_holding_it_and_neighbours_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let huge = "z".repeat(READ_CHUNK * 3);
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,1,1\n{huge},1\n2,10,2022-07-01 00:19,1,1\n").as_bytes());
        let mut tailer = open(&path);
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["header", "order 1", "record_too_long", "order 2"]);
        assert_eq!(read[2].raw.len(), RecordSkipper::PREFIX_BYTES);
        assert_eq!(read[3].line, 4);
        let small = "s".repeat(300);
        append(&path, format!("{small},1\n3,10,2022-07-01 00:19,1,1\n").as_bytes());
        let read = records(&mut tailer);
        assert_eq!(summary(&read), ["record_too_long", "order 3"], "a complete record over the limit");
        assert_eq!(read[0].raw.len(), RecordSkipper::PREFIX_BYTES.min(302));
        assert!(tailer.buffer.capacity() < READ_CHUNK * 3, "the huge record was never held whole");
    }

    #[test]
    fn oversized_record_still_being_written_waits_for_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}{}", "q".repeat(500)).as_bytes());
        let mut tailer = open(&path);
        assert_eq!(summary(&records(&mut tailer)), ["header"]);
        append(&path, b"more\n5,10,2022-07-01 00:19,1,1\n");
        assert_eq!(summary(&records(&mut tailer)), ["record_too_long", "order 5"]);
    }
}
