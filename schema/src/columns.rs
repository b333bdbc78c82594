//! The CSV header: where each field of an [`crate::Order`] is found.
//!
//! Columns are found by name, not position, so an export whose columns come in
//! another order still parses.

use thiserror::Error;

/// The header every order export must have, in its usual order.
pub const EXPECTED_HEADER: [&str; 5] = ["id", "user_id", "completed_at", "item_total", "shipment_total"];

/// The position of each order field within a CSV record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    /// Index of `id`.
    pub id: usize,
    /// Index of `user_id`.
    pub user_id: usize,
    /// Index of `completed_at`.
    pub completed_at: usize,
    /// Index of `item_total`.
    pub item_total: usize,
    /// Index of `shipment_total`.
    pub shipment_total: usize,
    /// How many fields a record must have: exactly as many as the header.
    pub width: usize,
}

/// Why a header cannot be used to read the file's records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// A required column is absent.
    #[error("header lacks the column `{0}` (expected {EXPECTED_HEADER:?})")]
    MissingColumn(&'static str),
    /// A column we do not know; refusing it catches exports of the wrong kind.
    #[error("header has the unknown column `{0}` (expected {EXPECTED_HEADER:?})")]
    UnknownColumn(String),
    /// The same column twice: which one would be meant is unknowable.
    #[error("header has the column `{0}` twice")]
    DuplicateColumn(String),
    /// The first record is longer than any record may be (a junk file, or
    /// one without line breaks): there is no header to read the rest by.
    #[error("the first record is longer than {0} bytes: no usable header")]
    TooLong(usize),
}

impl Columns {
    /// The layout of a file whose header is exactly [`EXPECTED_HEADER`].
    pub const STANDARD: Columns =
        Columns { id: 0, user_id: 1, completed_at: 2, item_total: 3, shipment_total: 4, width: 5 };

    /// Maps a header record's field names to positions.
    ///
    /// Names are compared after trimming white space and a UTF-8 byte-order
    /// mark, case-insensitively, because spreadsheet tools add both.
    pub fn from_header<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Columns, HeaderError> {
        let mut found: [Option<usize>; 5] = [None; 5];
        let mut width = 0;
        for (index, raw) in names.into_iter().enumerate() {
            width += 1;
            let name = normalise(raw);
            let Some(slot) = EXPECTED_HEADER.iter().position(|expected| *expected == name) else {
                return Err(HeaderError::UnknownColumn(name));
            };
            if found[slot].replace(index).is_some() {
                return Err(HeaderError::DuplicateColumn(name));
            }
        }
        let position = |slot: usize| found[slot].ok_or(HeaderError::MissingColumn(EXPECTED_HEADER[slot]));
        Ok(Columns {
            id: position(0)?,
            user_id: position(1)?,
            completed_at: position(2)?,
            item_total: position(3)?,
            shipment_total: position(4)?,
            width,
        })
    }

    /// Whether a record is a copy of the header (exports concatenated with
    /// `cat` repeat it mid-file); such a record is skipped, not rejected.
    pub fn is_header<'a>(fields: impl IntoIterator<Item = &'a str>) -> bool {
        let mut fields = fields.into_iter();
        fields.next().is_some_and(is_column_name) && fields.all(is_column_name)
    }
}

/// Whether `raw`, normalised, is one of [`EXPECTED_HEADER`]; compared in
/// place rather than through [`normalise`], because every record of a file
/// is checked and most are not headers.
fn is_column_name(raw: &str) -> bool {
    let name = raw.trim_start_matches('\u{feff}').trim();
    EXPECTED_HEADER.iter().any(|expected| expected.eq_ignore_ascii_case(name))
}

fn normalise(raw: &str) -> String {
    raw.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_header_maps_to_standard_columns() {
        assert_eq!(Columns::from_header(EXPECTED_HEADER), Ok(Columns::STANDARD));
    }

    #[test]
    fn reordered_header_is_read_by_name() {
        let columns = Columns::from_header(["shipment_total", "completed_at", "id", "item_total", "user_id"]).unwrap();
        assert_eq!(columns, Columns { id: 2, user_id: 4, completed_at: 1, item_total: 3, shipment_total: 0, width: 5 });
    }

    #[test]
    fn byte_order_mark_and_case_are_ignored() {
        let columns = Columns::from_header(["\u{feff}ID", " user_id", "completed_at", "item_total", "Shipment_Total"]);
        assert_eq!(columns, Ok(Columns::STANDARD));
    }

    #[test]
    fn missing_column_is_named() {
        let error = Columns::from_header(["id", "user_id", "completed_at", "item_total"]).unwrap_err();
        assert_eq!(error, HeaderError::MissingColumn("shipment_total"));
        assert!(error.to_string().contains("shipment_total"));
    }

    #[test]
    fn unknown_column_is_named() {
        let error = Columns::from_header(["id", "user_id", "completed_at", "item_total", "shipment_total", "coupon"])
            .unwrap_err();
        assert_eq!(error, HeaderError::UnknownColumn("coupon".into()));
    }

    #[test]
    fn duplicate_column_is_refused() {
        let error =
            Columns::from_header(["id", "id", "user_id", "completed_at", "item_total", "shipment_total"]).unwrap_err();
        assert_eq!(error, HeaderError::DuplicateColumn("id".into()));
    }

    #[test]
    fn repeated_header_is_recognised_but_data_is_not() {
        assert!(Columns::is_header(EXPECTED_HEADER));
        assert!(!Columns::is_header(["236777", "7258", "2022-07-01 00:19", "39.14", "2.5"]));
        assert!(Columns::is_header(["\u{feff}ID", " User_Id ", "completed_at"]));
        assert!(!Columns::is_header(["id", "ids"]));
        assert!(!Columns::is_header(Vec::<&str>::new()));
    }
}
