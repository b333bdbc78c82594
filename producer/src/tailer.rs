//! Follows one CSV file: reads what is there, then what is appended, and turns
//! each complete record into an order, a rejection, or nothing (a header).
//!
//! Reading is positional (`pread`), so the tailer's only state is the offset
//! of the bytes it has not yet split, and resuming is opening the file at a
//! [`DeliveredPosition`].

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use schema::{parse_order, Columns, HeaderError, Order, Rejection, RejectionKind};
use tracing::{info, warn};

use crate::positions::DeliveredPosition;
use crate::records::{RecordSplitter, SplitRecord};

/// How much is read from the file at a time.
const READ_CHUNK: usize = 256 * 1024;

/// What one record of the file turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// A valid order, to publish on the orders topic.
    Order(Order),
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
    /// The record's original bytes, without its line terminator.
    pub raw: Vec<u8>,
    /// The file's position once this record is delivered.
    pub end: DeliveredPosition,
    /// Order, rejection or header.
    pub outcome: RecordOutcome,
}

/// Why reading resumed where it did; logged once per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartPoint {
    /// No position was recorded: a new file, read from its first byte.
    NewFile,
    /// Resumed at the recorded position.
    Resumed,
    /// A position was recorded for another file at this path (different
    /// inode): this one is read from its first byte.
    Replaced,
    /// The file is shorter than the recorded position: it was truncated, so
    /// it is read from its first byte.
    Truncated,
}

/// Follows one file.
pub struct FileTailer {
    path: PathBuf,
    file: File,
    device: u64,
    inode: u64,
    /// Bytes read from the file but not yet split into records.
    buffer: Vec<u8>,
    /// How many bytes at the front of `buffer` were already split.
    split: usize,
    /// The file offset of `buffer[0]`.
    buffer_offset: u64,
    /// Newlines in the file before `buffer[split]`.
    lines: u64,
    /// The column layout, once the header was read; an unusable header makes
    /// every record of the file a rejection.
    columns: Option<Result<Columns, HeaderError>>,
    splitter: RecordSplitter,
}

impl FileTailer {
    /// Opens `path`, resuming at `recorded` if it still describes this file.
    pub fn open(path: &Path, recorded: Option<DeliveredPosition>) -> io::Result<(FileTailer, StartPoint)> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        let (device, inode) = (metadata.dev(), metadata.ino());
        let start = match recorded {
            None => StartPoint::NewFile,
            Some(position) if (position.device, position.inode) != (device, inode) => StartPoint::Replaced,
            Some(position) if position.offset > metadata.len() => StartPoint::Truncated,
            Some(_) => StartPoint::Resumed,
        };
        let position = recorded.filter(|_| start == StartPoint::Resumed);
        let mut tailer = FileTailer {
            path: path.to_path_buf(),
            file,
            device,
            inode,
            buffer: Vec::new(),
            split: 0,
            buffer_offset: position.map_or(0, |p| p.offset),
            lines: position.map_or(0, |p| p.lines),
            columns: None,
            splitter: RecordSplitter::default(),
        };
        if tailer.buffer_offset > 0 {
            tailer.columns = Some(tailer.read_header()?);
        }
        Ok((tailer, start))
    }

    /// The path this tailer follows.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads up to `max` complete records that follow the last one returned.
    /// Fewer (or none) means the file has no more complete records for now.
    pub fn next_records(&mut self, max: usize, now: DateTime<Utc>) -> io::Result<Vec<TailedRecord>> {
        let mut records = Vec::new();
        while records.len() < max {
            match self.splitter.split(&self.buffer[self.split..]) {
                Some(split) => records.push(self.take(split, now)),
                None if self.read_more()? == 0 => break,
                None => {}
            }
        }
        Ok(records)
    }

    /// Reads the header record from the start of the file, for a tailer that
    /// resumes past it.
    fn read_header(&self) -> io::Result<Result<Columns, HeaderError>> {
        let mut splitter = RecordSplitter::default();
        let mut bytes = vec![0; READ_CHUNK];
        let read = self.file.read_at(&mut bytes, 0)?;
        let header = splitter.split(&bytes[..read]).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "resuming past a header that is no longer complete")
        })?;
        Ok(columns_of(&header))
    }

    fn read_more(&mut self) -> io::Result<usize> {
        if self.split > 0 {
            self.buffer.drain(..self.split);
            self.buffer_offset += self.split as u64;
            self.split = 0;
        }
        let filled = self.buffer.len();
        self.buffer.resize(filled + READ_CHUNK, 0);
        let read = self.file.read_at(&mut self.buffer[filled..], self.buffer_offset + filled as u64);
        self.buffer.truncate(filled + *read.as_ref().unwrap_or(&0));
        read
    }

    fn take(&mut self, split: SplitRecord, now: DateTime<Utc>) -> TailedRecord {
        let start = self.split + split.leading_blank;
        let raw = self.buffer[start..start + split.raw_len].to_vec();
        let offset = self.buffer_offset + start as u64;
        let line = self.lines + split.leading_newlines + 1;
        self.split += split.consumed;
        self.lines += split.newlines;
        let end = DeliveredPosition {
            device: self.device,
            inode: self.inode,
            offset: self.buffer_offset + self.split as u64,
            lines: self.lines,
        };
        let outcome = self.classify(&split, now);
        TailedRecord { offset, line, raw, end, outcome }
    }

    fn classify(&mut self, split: &SplitRecord, now: DateTime<Utc>) -> RecordOutcome {
        let Some(columns) = &self.columns else {
            let columns = columns_of(split);
            match &columns {
                Ok(_) => info!(message = "Header read.", file = %self.path.display()),
                Err(error) => {
                    warn!(message = "Unusable header; every record of the file is dead-lettered.",
                                    file = %self.path.display(), %error)
                }
            }
            self.columns = Some(columns);
            return RecordOutcome::Header;
        };
        let fields = match utf8_fields(split) {
            Ok(fields) => fields,
            Err(rejection) => return RecordOutcome::Rejected(rejection),
        };
        if Columns::is_header(fields.iter().copied()) {
            return RecordOutcome::Header;
        }
        let columns = match columns {
            Ok(columns) => columns,
            Err(error) => return RecordOutcome::Rejected(Rejection::new(RejectionKind::BadHeader, error.to_string())),
        };
        match parse_order(&fields, columns, now) {
            Ok(order) => RecordOutcome::Order(order),
            Err(rejection) => RecordOutcome::Rejected(rejection),
        }
    }
}

fn columns_of(header: &SplitRecord) -> Result<Columns, HeaderError> {
    let names: Vec<String> = header.fields.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    Columns::from_header(names.iter().map(String::as_str))
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

    fn append(path: &Path, text: &[u8]) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text).unwrap();
    }

    fn ids(records: &[TailedRecord]) -> Vec<Option<i64>> {
        records
            .iter()
            .filter(|r| r.outcome != RecordOutcome::Header)
            .map(|r| match &r.outcome {
                RecordOutcome::Order(order) => Some(order.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn existing_then_appended_records_are_read_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let (mut tailer, start) = FileTailer::open(&path, None).unwrap();
        assert_eq!(start, StartPoint::NewFile);
        let first = tailer.next_records(100, now()).unwrap();
        assert_eq!(first[0].outcome, RecordOutcome::Header);
        assert_eq!(ids(&first), vec![Some(1)]);
        assert_eq!((first[1].line, first[1].offset), (2, HEADER.len() as u64));
        assert!(tailer.next_records(100, now()).unwrap().is_empty());

        append(&path, b"2,11,2022-07-01 00:20,10.00,2.5\n3,12,2022-07-01");
        let second = tailer.next_records(100, now()).unwrap();
        assert_eq!(ids(&second), vec![Some(2)], "the partial line waits");
        append(&path, b" 00:21,5,0\n");
        let third = tailer.next_records(100, now()).unwrap();
        assert_eq!(ids(&third), vec![Some(3)]);
        assert_eq!(third[0].line, 4);
    }

    #[test]
    fn resuming_at_a_delivered_position_skips_what_was_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n2,11,2022-07-01 00:20,1,0\n").as_bytes());
        let (mut tailer, _) = FileTailer::open(&path, None).unwrap();
        let records = tailer.next_records(2, now()).unwrap();
        let delivered = records[1].end;

        let (mut resumed, start) = FileTailer::open(&path, Some(delivered)).unwrap();
        assert_eq!(start, StartPoint::Resumed);
        let rest = resumed.next_records(100, now()).unwrap();
        assert_eq!(ids(&rest), vec![Some(2)]);
        assert_eq!(rest[0].line, 3);
    }

    #[test]
    fn position_of_another_inode_is_not_inherited() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n").as_bytes());
        let (tailer, _) = FileTailer::open(&path, None).unwrap();
        let stale = DeliveredPosition { device: tailer.device, inode: tailer.inode + 1, offset: 10, lines: 1 };
        let (mut replaced, start) = FileTailer::open(&path, Some(stale)).unwrap();
        assert_eq!(start, StartPoint::Replaced);
        assert_eq!(ids(&replaced.next_records(100, now()).unwrap()), vec![Some(1)]);
    }

    #[test]
    fn bad_records_are_rejected_and_good_neighbours_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        let mut bytes =
            format!("{HEADER}1,10,2022-07-01 00:19,39.14,2.5\n2,x,2022-07-01 00:19,1,1\n{HEADER}\n").into_bytes();
        bytes.extend_from_slice(b"3,1,2022-07-01 00:19,1,\xff\n4,10,2022-07-01 00:19,1,1\n");
        append(&path, &bytes);
        let (mut tailer, _) = FileTailer::open(&path, None).unwrap();
        let records = tailer.next_records(100, now()).unwrap();
        let kinds: Vec<_> = records
            .iter()
            .map(|r| match &r.outcome {
                RecordOutcome::Order(o) => format!("order {}", o.id),
                RecordOutcome::Rejected(r) => r.kind.to_string(),
                RecordOutcome::Header => "header".into(),
            })
            .collect();
        assert_eq!(kinds, ["header", "order 1", "invalid_id", "header", "invalid_utf8", "order 4"]);
        assert_eq!(records[2].raw, b"2,x,2022-07-01 00:19,1,1");
        assert_eq!(records[5].line, 7, "the blank line is counted");
    }

    #[test]
    fn unusable_header_rejects_every_record_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        append(&path, b"id,user_id,completed_at,item_total\n1,10,2022-07-01 00:19,39.14\n");
        let (mut tailer, _) = FileTailer::open(&path, None).unwrap();
        let records = tailer.next_records(100, now()).unwrap();
        match &records[1].outcome {
            RecordOutcome::Rejected(rejection) => {
                assert_eq!(rejection.kind, RejectionKind::BadHeader);
                assert!(rejection.message.contains("shipment_total"), "{}", rejection.message);
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
}
