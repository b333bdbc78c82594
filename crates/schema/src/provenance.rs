//! Where a record came from, as it travels in Kafka headers: its encoder
//! and its decoder side by side, so the producer and every reader agree on
//! the names, the value encodings and the order.
//!
//! Since wire version 3 (see [`crate::message`]) the producer writes the
//! provenance packed into one header, numbers in decimal ASCII, separated
//! by single spaces, the path last (it may hold spaces):
//!
//! | header       | value                                                              | when          |
//! |--------------|--------------------------------------------------------------------|---------------|
//! | `provenance` | `<line> <byte_offset> <source_version> <read_at_ms> <fingerprint> <source_file>` | always |
//! | `columns`    | the header's names as a JSON array                                 | non-standard header only |
//!
//! e.g. `42 3917 1099511631693 1764374400123 801:2a:9f86d081 inbox/2022_07.csv`.
//! One header instead of six takes the header names and five of
//! librdkafka's per-header blocks off every record (BENCHMARKS.md).
//!
//! Records written before version 3, and hand-made ones, carry the same
//! fields as six headers of their own, which every reader still reads:
//! `source_file`, `source_fingerprint`, `line`, `byte_offset`,
//! `source_version`, `read_at_ms`.
//!
//! Both directions run once per record at the producer's and the consumer's
//! full rate: the encoder allocates the packed value once, and the decoder
//! borrows the header values it finds.

use thiserror::Error;

use crate::message::headers;

/// A record's provenance: the file, place and time it was read from. What
/// the producer writes on every record, orders and dead letters alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// Path of the CSV file the record was read from.
    pub source_file: &'a str,
    /// The file's identity across renames (device, inode, checksum): hex
    /// and colons, never a space, which separates the packed fields.
    pub fingerprint: &'a str,
    /// 1-based line number where the record starts.
    pub line: u64,
    /// Byte offset where the record starts in its file.
    pub byte_offset: u64,
    /// The record's place in source order (see [`crate::message::source_version`]).
    pub source_version: i64,
    /// When the producer read the record, Unix milliseconds.
    pub read_at_ms: i64,
    /// The header in force as a JSON array; `None` for the standard one,
    /// which travels as no header at all (see [`headers::COLUMNS`]).
    pub columns: Option<&'a str>,
}

impl<'a> Provenance<'a> {
    /// The headers to send, in wire order: the packed provenance, then
    /// `columns` when set.
    pub fn to_headers(&self) -> ProvenanceHeaders<'a> {
        debug_assert!(!self.fingerprint.as_bytes().contains(&SEPARATOR), "a fingerprint never holds a space");
        let numbers = [
            DecimalText::unsigned(self.line),
            DecimalText::unsigned(self.byte_offset),
            DecimalText::signed(self.source_version),
            DecimalText::signed(self.read_at_ms),
        ];
        let mut packed = Vec::with_capacity(4 * 21 + self.fingerprint.len() + 1 + self.source_file.len());
        for number in &numbers {
            packed.extend_from_slice(number.digits());
            packed.push(SEPARATOR);
        }
        packed.extend_from_slice(self.fingerprint.as_bytes());
        packed.push(SEPARATOR);
        packed.extend_from_slice(self.source_file.as_bytes());
        ProvenanceHeaders { packed, columns: self.columns }
    }

    /// Reads a record's provenance from its headers, every field required
    /// but `columns`. Readers that make do with part of it use
    /// [`FoundProvenance`] and its per-field accessors.
    pub fn from_headers<I>(headers: I) -> Result<Provenance<'a>, ProvenanceError>
    where
        I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    {
        FoundProvenance::find(headers).provenance()
    }
}

/// What separates the packed fields: no number holds it, nor a fingerprint.
const SEPARATOR: u8 = b' ';

/// [`Provenance`] encoded: the header values, ready to be copied into a
/// Kafka record.
#[derive(Debug, Clone)]
pub struct ProvenanceHeaders<'a> {
    /// The `provenance` header's value.
    packed: Vec<u8>,
    /// The `columns` header's value, when sent.
    columns: Option<&'a str>,
}

impl ProvenanceHeaders<'_> {
    /// (name, value) pairs in wire order; `columns` last and only when set.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> + '_ {
        let columns = self.columns.map(|columns| (headers::COLUMNS, columns.as_bytes()));
        std::iter::once((headers::PROVENANCE, self.packed.as_slice())).chain(columns)
    }
}

/// Why a field of a record's provenance cannot be read. `header` names the
/// field as its header of its own does (`line`, `source_file`, …).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProvenanceError {
    /// The field is absent (or its header has no value).
    #[error("the record's provenance has no `{header}`")]
    Missing {
        /// The field's name.
        header: &'static str,
    },
    /// The field is not UTF-8 text.
    #[error("the provenance's `{header}` is not UTF-8 text")]
    NotText {
        /// The field's name.
        header: &'static str,
    },
    /// The field is not a decimal integer of its type.
    #[error("the provenance's `{header}` is not a number: {value:?}")]
    BadNumber {
        /// The field's name.
        header: &'static str,
        /// The value found, lossily as text.
        value: String,
    },
}

/// The provenance of one record as found, values borrowed, read in one
/// pass over the headers, packed or as six headers of their own. Where a
/// field repeats, the last value wins (a later stage's header overrides the
/// original record's; a `provenance` header sets all six fields, a field it
/// lacks to none). Each field is checked only when asked for, so a reader
/// that tolerates a missing line still gets the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FoundProvenance<'a> {
    /// `source_file`'s value.
    source_file: Option<&'a [u8]>,
    /// `source_fingerprint`'s value.
    fingerprint: Option<&'a [u8]>,
    /// `line`'s value.
    line: Option<&'a [u8]>,
    /// `byte_offset`'s value.
    byte_offset: Option<&'a [u8]>,
    /// `source_version`'s value.
    source_version: Option<&'a [u8]>,
    /// `read_at_ms`'s value.
    read_at_ms: Option<&'a [u8]>,
    /// `columns`' value.
    columns: Option<&'a [u8]>,
}

impl<'a> FoundProvenance<'a> {
    /// Picks the provenance headers out of a record's (name, value) pairs;
    /// other headers are passed over.
    pub fn find<I>(headers: I) -> FoundProvenance<'a>
    where
        I: IntoIterator<Item = (&'a str, Option<&'a [u8]>)>,
    {
        let mut found = FoundProvenance::default();
        for (name, value) in headers {
            let slot = match name {
                headers::PROVENANCE => {
                    found.unpack(value);
                    continue;
                }
                headers::SOURCE_FILE => &mut found.source_file,
                headers::SOURCE_FINGERPRINT => &mut found.fingerprint,
                headers::LINE => &mut found.line,
                headers::BYTE_OFFSET => &mut found.byte_offset,
                headers::SOURCE_VERSION => &mut found.source_version,
                headers::READ_AT_MS => &mut found.read_at_ms,
                headers::COLUMNS => &mut found.columns,
                _ => continue,
            };
            *slot = value;
        }
        found
    }

    /// Sets the six fields from a `provenance` header's value (none for an
    /// absent value or a field it lacks).
    fn unpack(&mut self, value: Option<&'a [u8]>) {
        let mut fields = value.unwrap_or_default().splitn(6, |byte| *byte == SEPARATOR);
        let mut next = || fields.next().filter(|_| value.is_some());
        self.line = next();
        self.byte_offset = next();
        self.source_version = next();
        self.read_at_ms = next();
        self.fingerprint = next();
        self.source_file = next();
    }

    /// Every field, or the first that is missing or unreadable.
    pub fn provenance(&self) -> Result<Provenance<'a>, ProvenanceError> {
        Ok(Provenance {
            source_file: self.source_file()?,
            fingerprint: self.fingerprint()?,
            line: self.line()?,
            byte_offset: self.byte_offset()?,
            source_version: self.source_version()?,
            read_at_ms: self.read_at_ms()?,
            columns: self.columns()?,
        })
    }

    /// The source file's path.
    pub fn source_file(&self) -> Result<&'a str, ProvenanceError> {
        text(headers::SOURCE_FILE, self.source_file)
    }

    /// The source file's path as its bytes, for readers that keep a
    /// non-UTF-8 value (lossily) rather than drop it.
    pub fn source_file_bytes(&self) -> Option<&'a [u8]> {
        self.source_file
    }

    /// The file's identity.
    pub fn fingerprint(&self) -> Result<&'a str, ProvenanceError> {
        text(headers::SOURCE_FINGERPRINT, self.fingerprint)
    }

    /// The file's identity as its bytes (see [`Self::source_file_bytes`]).
    pub fn fingerprint_bytes(&self) -> Option<&'a [u8]> {
        self.fingerprint
    }

    /// Each field found, as written, under its own header's name: how a
    /// reader shows either wire version the same way.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &'a [u8])> {
        [
            (headers::SOURCE_FILE, self.source_file),
            (headers::SOURCE_FINGERPRINT, self.fingerprint),
            (headers::LINE, self.line),
            (headers::BYTE_OFFSET, self.byte_offset),
            (headers::SOURCE_VERSION, self.source_version),
            (headers::READ_AT_MS, self.read_at_ms),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value?)))
    }

    /// The line as its bytes, for readers that show it as written.
    pub fn line_bytes(&self) -> Option<&'a [u8]> {
        self.line
    }

    /// The 1-based line.
    pub fn line(&self) -> Result<u64, ProvenanceError> {
        number(headers::LINE, self.line)
    }

    /// The byte offset.
    pub fn byte_offset(&self) -> Result<u64, ProvenanceError> {
        number(headers::BYTE_OFFSET, self.byte_offset)
    }

    /// The source version, as written (callers decide what a negative one means).
    pub fn source_version(&self) -> Result<i64, ProvenanceError> {
        number(headers::SOURCE_VERSION, self.source_version)
    }

    /// The read time, Unix milliseconds.
    pub fn read_at_ms(&self) -> Result<i64, ProvenanceError> {
        number(headers::READ_AT_MS, self.read_at_ms)
    }

    /// The header's names as a JSON array; `Ok(None)` when absent, which
    /// means the standard header ([`crate::columns::STANDARD_COLUMNS_JSON`]).
    pub fn columns(&self) -> Result<Option<&'a str>, ProvenanceError> {
        match self.columns {
            None => Ok(None),
            value => text(headers::COLUMNS, value).map(Some),
        }
    }
}

/// A header's value as text.
fn text<'a>(header: &'static str, value: Option<&'a [u8]>) -> Result<&'a str, ProvenanceError> {
    let value = value.ok_or(ProvenanceError::Missing { header })?;
    std::str::from_utf8(value).map_err(|_| ProvenanceError::NotText { header })
}

/// A header's value as a decimal integer; surrounding ASCII whitespace is
/// allowed (the producer writes none, hand-made records may).
fn number<T: std::str::FromStr>(header: &'static str, value: Option<&[u8]>) -> Result<T, ProvenanceError> {
    let bad =
        || ProvenanceError::BadNumber { header, value: String::from_utf8_lossy(value.unwrap_or_default()).into() };
    text(header, value)?.trim().parse().map_err(|_| bad())
}

/// An integer in decimal, as `to_string` writes it, formatted on the stack:
/// four numbers per record each cost an allocation as `String`s.
#[derive(Debug, Clone, Copy)]
struct DecimalText {
    /// Room for the longest 64-bit value, `u64::MAX` or `i64::MIN` (20 bytes).
    bytes: [u8; 20],
    /// Where the text starts; it ends at the end of `bytes`.
    start: usize,
}

impl DecimalText {
    /// `value` in decimal.
    fn unsigned(mut value: u64) -> Self {
        let mut text = DecimalText { bytes: [0; 20], start: 20 };
        loop {
            text.start -= 1;
            text.bytes[text.start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return text;
            }
        }
    }

    /// `value` in decimal, with a leading `-` when negative.
    fn signed(value: i64) -> Self {
        let mut text = Self::unsigned(value.unsigned_abs());
        if value < 0 {
            text.start -= 1;
            text.bytes[text.start] = b'-';
        }
        text
    }

    /// The text's bytes: ASCII digits and a sign, so no UTF-8 check.
    fn digits(&self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Provenance<'static> {
        Provenance {
            source_file: "inbox/2022_07.csv",
            fingerprint: "2049:131074:9f86d081",
            line: 42,
            byte_offset: 3_917,
            source_version: 1_099_511_631_693,
            read_at_ms: 1_764_374_400_123,
            columns: Some(r#"["id","user_id","currency"]"#),
        }
    }

    fn pairs(headers: &ProvenanceHeaders<'_>) -> Vec<(&'static str, Vec<u8>)> {
        headers.iter().map(|(name, value)| (name, value.to_vec())).collect()
    }

    #[test]
    fn the_wire_bytes_are_pinned_names_values_and_order() {
        let expected: Vec<(&str, &[u8])> = vec![
            ("provenance", b"42 3917 1099511631693 1764374400123 2049:131074:9f86d081 inbox/2022_07.csv"),
            ("columns", br#"["id","user_id","currency"]"#),
        ];
        let expected: Vec<(&str, Vec<u8>)> = expected.into_iter().map(|(name, value)| (name, value.to_vec())).collect();
        assert_eq!(pairs(&sample().to_headers()), expected);
        let standard = Provenance { columns: None, ..sample() };
        assert_eq!(pairs(&standard.to_headers()), expected[..1], "the standard header travels as none");
    }

    #[test]
    fn provenance_round_trips() {
        let spaced = Provenance { source_file: "in box/a b.csv", fingerprint: "", ..sample() };
        for provenance in
            [sample(), Provenance { columns: None, source_version: -3, read_at_ms: i64::MIN, ..sample() }, spaced]
        {
            let headers = provenance.to_headers();
            let read = Provenance::from_headers(headers.iter().map(|(name, value)| (name, Some(value))));
            assert_eq!(read, Ok(provenance));
        }
    }

    #[test]
    fn the_six_headers_of_versions_before_3_are_still_read() {
        let six: [(&str, Option<&[u8]>); 6] = [
            ("source_file", Some(b"inbox/2022_07.csv")),
            ("source_fingerprint", Some(b"2049:131074:9f86d081")),
            ("line", Some(b"42")),
            ("byte_offset", Some(b"3917")),
            ("source_version", Some(b"1099511631693")),
            ("read_at_ms", Some(b"1764374400123")),
        ];
        assert_eq!(Provenance::from_headers(six), Ok(Provenance { columns: None, ..sample() }));
    }

    #[test]
    fn a_field_after_the_packed_header_overrides_it_and_the_packed_one_overrides_all() {
        let packed = sample().to_headers();
        let packed = packed.iter().next().unwrap().1;
        let later = FoundProvenance::find([(headers::PROVENANCE, Some(packed)), (headers::LINE, Some(&b"7"[..]))]);
        assert_eq!((later.line(), later.source_file()), (Ok(7), Ok("inbox/2022_07.csv")));
        let earlier = FoundProvenance::find([(headers::LINE, Some(&b"7"[..])), (headers::PROVENANCE, Some(packed))]);
        assert_eq!(earlier.line(), Ok(42));
    }

    #[test]
    fn the_fields_found_are_listed_under_their_own_names_as_written() {
        let short = FoundProvenance::find([(headers::PROVENANCE, Some(&b"42 3917"[..]))]);
        assert_eq!(short.fields().collect::<Vec<_>>(), [("line", &b"42"[..]), ("byte_offset", b"3917")]);
    }

    #[test]
    fn a_short_or_valueless_packed_header_leaves_the_rest_missing() {
        let short = FoundProvenance::find([(headers::PROVENANCE, Some(&b"42 3917"[..]))]);
        assert_eq!((short.line(), short.byte_offset()), (Ok(42), Ok(3917)));
        assert_eq!(short.source_version(), Err(ProvenanceError::Missing { header: "source_version" }));
        assert_eq!(short.source_file(), Err(ProvenanceError::Missing { header: "source_file" }));
        let valueless =
            FoundProvenance::find([(headers::SOURCE_FILE, Some(&b"a.csv"[..])), (headers::PROVENANCE, None)]);
        assert_eq!(valueless.source_file(), Err(ProvenanceError::Missing { header: "source_file" }));
        assert_eq!(valueless.line(), Err(ProvenanceError::Missing { header: "line" }));
    }

    #[test]
    fn a_missing_header_is_named() {
        let six = [(headers::SOURCE_FILE, Some(&b"a.csv"[..])), (headers::BYTE_OFFSET, Some(b"1"))];
        let without_line = FoundProvenance::find(six);
        assert_eq!(without_line.provenance(), Err(ProvenanceError::Missing { header: "source_fingerprint" }));
        assert_eq!(without_line.line(), Err(ProvenanceError::Missing { header: "line" }));
        let valueless = [(headers::SOURCE_FILE, None)];
        assert_eq!(
            FoundProvenance::find(valueless).source_file(),
            Err(ProvenanceError::Missing { header: "source_file" })
        );
    }

    #[test]
    fn a_bad_number_is_reported_with_its_value() {
        let found = FoundProvenance::find([(headers::LINE, Some(&b"seven"[..])), (headers::BYTE_OFFSET, Some(b"-1"))]);
        assert_eq!(found.line(), Err(ProvenanceError::BadNumber { header: "line", value: "seven".into() }));
        assert_eq!(found.byte_offset(), Err(ProvenanceError::BadNumber { header: "byte_offset", value: "-1".into() }));
        let not_text = FoundProvenance::find([(headers::SOURCE_VERSION, Some(&b"7\xff"[..]))]);
        assert_eq!(not_text.source_version(), Err(ProvenanceError::NotText { header: "source_version" }));
        assert_eq!(FoundProvenance::find([(headers::READ_AT_MS, Some(&b" 12 "[..]))]).read_at_ms(), Ok(12));
    }

    #[test]
    fn the_last_of_a_repeated_header_wins_and_others_are_passed_over() {
        let found = FoundProvenance::find([
            (headers::SOURCE_FILE, Some(&b"first.csv"[..])),
            ("error_kind", Some(b"field_count")),
            (headers::SOURCE_FILE, Some(b"last.csv")),
        ]);
        assert_eq!(found.source_file(), Ok("last.csv"));
        assert_eq!(found.columns(), Ok(None), "absent columns: the standard header");
    }

    #[test]
    fn decimal_text_writes_what_to_string_writes() {
        for value in [0, 1, 9, 10, 99, 100, 1_234_567, u64::MAX / 10, u64::MAX - 1, u64::MAX] {
            assert_eq!(DecimalText::unsigned(value).digits(), value.to_string().as_bytes());
        }
        for value in [0, 1, -1, 10, -10, 1_700_000_000_000, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(DecimalText::signed(value).digits(), value.to_string().as_bytes());
        }
    }
}
