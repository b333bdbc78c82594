//! Splits a byte stream into complete CSV records (RFC 4180).
//!
//! A record ends where the CSV record ends, not at the first newline: a quoted
//! field may span lines. A record is returned only once its terminator has
//! been read, so a half-written last line waits, however long, until the
//! writer finishes it; it is never cut short by a timeout.

use csv_core::{ReadRecordResult, Reader};

/// One complete record found at the start of the bytes given to
/// [`RecordSplitter::split`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitRecord {
    /// Bytes of the input this record used, blank lines before it and its
    /// terminator included: the next record starts this far on.
    pub consumed: usize,
    /// Where the record's own bytes begin within the consumed bytes (after any
    /// blank lines), so its offset and original bytes can be reported.
    pub leading_blank: usize,
    /// Length of the record's own bytes, terminator excluded.
    pub raw_len: usize,
    /// Newlines within the consumed bytes: how far the line counter moves.
    pub newlines: u64,
    /// Newlines in the leading blank lines: the record starts this many lines on.
    pub leading_newlines: u64,
    /// The unescaped fields, as bytes (UTF-8 is checked by the caller so that
    /// invalid bytes become a dead letter, not an error).
    pub fields: Fields,
}

/// A record's unescaped fields, kept in one buffer rather than one vector
/// each: a record is split for every line read, and the per-field
/// allocations showed in the producer's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    /// The fields' bytes, one after the other.
    bytes: Vec<u8>,
    /// Where each field ends in `bytes`.
    ends: Vec<usize>,
}

impl Fields {
    /// The fields in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        (0..self.ends.len()).map(|index| {
            let start = if index == 0 { 0 } else { self.ends[index - 1] };
            &self.bytes[start..self.ends[index]]
        })
    }

    /// How many fields there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

/// A reusable CSV record splitter; one per file.
pub struct RecordSplitter {
    reader: Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for RecordSplitter {
    fn default() -> Self {
        RecordSplitter { reader: Reader::new(), output: vec![0; 1024], ends: vec![0; 16] }
    }
}

impl RecordSplitter {
    /// Finds the first complete record in `input`, which must start at a
    /// record boundary. `None` means the input holds no complete record yet
    /// (only blank lines, or a record still being written).
    pub fn split(&mut self, input: &[u8]) -> Option<SplitRecord> {
        let leading_blank = input.iter().take_while(|b| **b == b'\n' || **b == b'\r').count();
        let body = &input[leading_blank..];
        self.reader.reset();
        let (mut nin_total, mut nout_total, mut nends_total) = (0, 0, 0);
        loop {
            // csv_core reads empty input as the end of the stream and would
            // close the record; here it only means "not written yet".
            if nin_total == body.len() {
                return None;
            }
            let (result, nin, nout, nends) = self.reader.read_record(
                &body[nin_total..],
                &mut self.output[nout_total..],
                &mut self.ends[nends_total..],
            );
            nin_total += nin;
            nout_total += nout;
            nends_total += nends;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::End => return None,
                ReadRecordResult::OutputFull => self.output.resize(self.output.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    return Some(self.record(input, leading_blank, nin_total, nout_total, nends_total))
                }
            }
        }
    }

    fn record(&self, input: &[u8], leading_blank: usize, nin: usize, nout: usize, nends: usize) -> SplitRecord {
        // csv_core stops right after the first terminator byte; a CRLF's LF is
        // consumed here so that the next record starts cleanly.
        let mut consumed = leading_blank + nin;
        if input[consumed - 1] == b'\r' && input.get(consumed) == Some(&b'\n') {
            consumed += 1;
        }
        let raw = &input[leading_blank..consumed];
        let raw_len = raw.len() - raw.iter().rev().take_while(|b| **b == b'\n' || **b == b'\r').count();
        let ends = &self.ends[..nends];
        let used = ends.last().copied().unwrap_or(0);
        debug_assert!(used <= nout);
        let fields = Fields { bytes: self.output[..used].to_vec(), ends: ends.to_vec() };
        SplitRecord {
            consumed,
            leading_blank,
            raw_len,
            newlines: count_newlines(&input[..consumed]),
            leading_newlines: count_newlines(&input[..leading_blank]),
            fields,
        }
    }
}

/// Walks past one record that is too long to hold, without keeping it: the
/// bytes are parsed (so quoted line breaks are honoured) and dropped, only a
/// prefix is kept to show in the dead letter.
pub struct RecordSkipper {
    reader: Reader,
    scratch: Vec<u8>,
    ends: Vec<usize>,
    /// Bytes of the record passed so far.
    pub skipped: u64,
    /// Newlines among them.
    pub newlines: u64,
    /// The record's first bytes, for the dead letter.
    pub prefix: Vec<u8>,
}

/// How far [`RecordSkipper::feed`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipProgress {
    /// The record ended within the input, after this many of its bytes
    /// (terminator included).
    Done(usize),
    /// The whole input belongs to the record; feed more.
    NeedMore,
}

impl RecordSkipper {
    /// How many of the record's first bytes are kept.
    pub const PREFIX_BYTES: usize = 1024;

    /// A skipper for a record starting at the next byte fed.
    pub fn new() -> Self {
        RecordSkipper {
            reader: Reader::new(),
            scratch: vec![0; 64 * 1024],
            ends: vec![0; 1024],
            skipped: 0,
            newlines: 0,
            prefix: Vec::new(),
        }
    }

    /// Feeds the next bytes of the record.
    pub fn feed(&mut self, input: &[u8]) -> SkipProgress {
        let mut used = 0;
        loop {
            // Empty input would read as the end of the stream (see `split`).
            if used == input.len() {
                self.account(input);
                return SkipProgress::NeedMore;
            }
            let (result, nin, _, _) = self.reader.read_record(&input[used..], &mut self.scratch, &mut self.ends);
            used += nin;
            match result {
                ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => continue,
                ReadRecordResult::InputEmpty | ReadRecordResult::End => {
                    self.account(&input[..used]);
                    return SkipProgress::NeedMore;
                }
                ReadRecordResult::Record => {
                    if input[used - 1] == b'\r' && input.get(used) == Some(&b'\n') {
                        used += 1;
                    }
                    self.account(&input[..used]);
                    return SkipProgress::Done(used);
                }
            }
        }
    }

    fn account(&mut self, bytes: &[u8]) {
        let room = Self::PREFIX_BYTES.saturating_sub(self.prefix.len());
        self.prefix.extend_from_slice(&bytes[..room.min(bytes.len())]);
        self.skipped += bytes.len() as u64;
        self.newlines += count_newlines(bytes);
    }
}

impl Default for RecordSkipper {
    fn default() -> Self {
        Self::new()
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(record: &SplitRecord) -> Vec<String> {
        record.fields.iter().map(|f| String::from_utf8(f.to_vec()).unwrap()).collect()
    }

    fn split_all(input: &[u8]) -> (Vec<Vec<String>>, usize) {
        let mut splitter = RecordSplitter::default();
        let mut offset = 0;
        let mut records = Vec::new();
        while let Some(record) = splitter.split(&input[offset..]) {
            records.push(fields(&record));
            offset += record.consumed;
        }
        (records, offset)
    }

    #[test]
    fn complete_lines_split_into_fields() {
        let (records, consumed) = split_all(b"id,user_id\n1,2\n");
        assert_eq!(records, vec![vec!["id", "user_id"], vec!["1", "2"]]);
        assert_eq!(consumed, 15);
    }

    #[test]
    fn unterminated_last_line_waits() {
        let (records, consumed) = split_all(b"1,2\n3,4");
        assert_eq!(records, vec![vec!["1", "2"]]);
        assert_eq!(consumed, 4, "the partial record is not consumed");
    }

    #[test]
    fn quoted_field_spans_lines_and_ends_with_the_record() {
        let input = b"1,\"two\nlines\"\n3,4\n";
        let (records, consumed) = split_all(input);
        assert_eq!(records, vec![vec!["1", "two\nlines"], vec!["3", "4"]]);
        assert_eq!(consumed, input.len());
    }

    #[test]
    fn open_quote_waits_for_its_closing_quote() {
        let (records, consumed) = split_all(b"1,\"still\nbeing written");
        assert!(records.is_empty());
        assert_eq!(consumed, 0);
    }

    #[test]
    fn crlf_is_one_terminator() {
        let input = b"1,2\r\n3,4\r\n";
        let mut splitter = RecordSplitter::default();
        let first = splitter.split(input).unwrap();
        assert_eq!(first.consumed, 5);
        assert_eq!(first.raw_len, 3);
        let (records, consumed) = split_all(input);
        assert_eq!(records, vec![vec!["1", "2"], vec!["3", "4"]]);
        assert_eq!(consumed, input.len());
    }

    #[test]
    fn blank_lines_are_skipped_and_counted() {
        let mut splitter = RecordSplitter::default();
        let record = splitter.split(b"\n\r\n1,2\n").unwrap();
        assert_eq!(fields(&record), vec!["1", "2"]);
        assert_eq!(record.leading_blank, 3);
        assert_eq!(record.leading_newlines, 2);
        assert_eq!(record.newlines, 3);
        assert_eq!(record.consumed, 7);
        assert!(splitter.split(b"\n\n").is_none(), "only blank lines: nothing to publish");
    }

    #[test]
    fn escaped_quotes_are_unescaped() {
        let (records, _) = split_all(b"\"a \"\"quoted\"\" word\",2\n");
        assert_eq!(records, vec![vec!["a \"quoted\" word", "2"]]);
    }

    #[test]
    fn skipper_passes_a_record_fed_in_pieces_and_keeps_its_prefix() {
        let mut skipper = RecordSkipper::new();
        let long = "y".repeat(5_000);
        assert_eq!(skipper.feed(format!("1,\"{long}").as_bytes()), SkipProgress::NeedMore);
        assert_eq!(skipper.feed(b"\nstill quoted"), SkipProgress::NeedMore);
        assert_eq!(skipper.feed(b"\",3\r\n4,5\n"), SkipProgress::Done(5));
        assert_eq!(skipper.skipped, 5_003 + 13 + 5);
        assert_eq!(skipper.newlines, 2);
        assert_eq!(skipper.prefix.len(), RecordSkipper::PREFIX_BYTES);
        assert!(skipper.prefix.starts_with(b"1,\"yyy"));
    }

    #[test]
    fn long_records_grow_the_buffers() {
        let long = "x".repeat(10_000);
        let line = format!("{long},{}\n", (0..100).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        let (records, consumed) = split_all(line.as_bytes());
        assert_eq!(records[0][0], long);
        assert_eq!(records[0].len(), 101);
        assert_eq!(consumed, line.len());
    }
}
