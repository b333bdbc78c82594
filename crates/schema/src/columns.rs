//! The CSV header: where each field of an [`crate::Order`] is found, and what
//! becomes of the columns beyond them.
//!
//! Columns are found by name, not position, so an export whose columns come in
//! another order still parses. Shops change their exports: a column the
//! record does not know is kept by default ([`UnknownColumns`]), a renamed
//! column is mapped back by a [`ColumnAlias`], and a header lacking a required
//! column names exactly what is missing ([`HeaderError::MissingColumns`]).

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// The header every order export must have, in its usual order.
pub const EXPECTED_HEADER: [&str; 5] = ["id", "user_id", "completed_at", "item_total", "shipment_total"];

/// [`EXPECTED_HEADER`] as the `columns` header's JSON array, the value a
/// record without that header stands for (see
/// [`crate::message::headers::COLUMNS`]).
pub const STANDARD_COLUMNS_JSON: &str = r#"["id","user_id","completed_at","item_total","shipment_total"]"#;

/// Whether normalised header names are the standard five in their usual
/// order: records read under them travel without a `columns` header.
pub fn is_standard_header(names: &[String]) -> bool {
    names.iter().map(String::as_str).eq(EXPECTED_HEADER)
}

/// How many of the required column names a record must hold to be read as a
/// header line: a majority. Data never holds them (ids, times and amounts are
/// not names); requiring several keeps a stray word in a free-text column
/// from being taken for a header.
pub const HEADER_LINE_MIN_NAMES: usize = 3;

/// What to do with columns beyond the five the record knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnknownColumns {
    /// Ingest the file and carry the extra values with each order, so nothing
    /// in the export is lost and a later migration can promote a column.
    #[default]
    Keep,
    /// Ingest the file and drop the extra values.
    Ignore,
    /// Dead-letter every record of the file (`bad_header`): for pipelines
    /// that must notice any change of the export before taking it.
    Reject,
}

impl UnknownColumns {
    /// The accepted spellings, for the command line's help.
    pub const NAMES: [&'static str; 3] = ["keep", "ignore", "reject"];
}

impl FromStr for UnknownColumns {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "keep" => Ok(UnknownColumns::Keep),
            "ignore" => Ok(UnknownColumns::Ignore),
            "reject" => Ok(UnknownColumns::Reject),
            other => Err(format!("`{other}` is none of keep, ignore, reject")),
        }
    }
}

impl fmt::Display for UnknownColumns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnknownColumns::Keep => "keep",
            UnknownColumns::Ignore => "ignore",
            UnknownColumns::Reject => "reject",
        })
    }
}

/// A renamed column read as a known one: `order_id=id` reads a column
/// `order_id` as `id`. Names compare as header names do (case-insensitive,
/// byte-order mark and white space ignored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnAlias {
    /// The name in the export, normalised.
    pub from: String,
    /// The known column it stands for.
    pub to: &'static str,
}

/// Why a `FROM=TO` alias cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AliasError {
    /// No `=`, or an empty side.
    #[error("`{0}` is not FROM=TO")]
    Malformed(String),
    /// The target is not a column of the record: a typo would otherwise
    /// silently keep the column as an extra.
    #[error("`{0}` is not a known column (known: {EXPECTED_HEADER:?})")]
    UnknownTarget(String),
}

impl FromStr for ColumnAlias {
    type Err = AliasError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (from, to) = text.split_once('=').ok_or_else(|| AliasError::Malformed(text.to_string()))?;
        let (from, to) = (normalise(from), normalise(to));
        if from.is_empty() || to.is_empty() {
            return Err(AliasError::Malformed(text.to_string()));
        }
        let to = EXPECTED_HEADER.iter().find(|known| **known == to).ok_or(AliasError::UnknownTarget(to))?;
        Ok(ColumnAlias { from, to })
    }
}

/// How a header's names are matched to the record's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Renamed columns, read as the known column they stand for.
    pub aliases: Vec<ColumnAlias>,
    /// What becomes of the other columns.
    pub unknown: UnknownColumns,
}

impl HeaderRules {
    /// Whether a header name, as written, stands for a known column.
    pub fn names_a_known_column(&self, raw: &str) -> bool {
        self.known_column_as_written(raw).is_some()
    }

    /// [`Self::known_column`] of a name as written, compared in place rather
    /// than through [`normalise`]: every record of a file is checked for
    /// being a header line, and most are not.
    fn known_column_as_written(&self, raw: &str) -> Option<usize> {
        let name = raw.trim_start_matches('\u{feff}').trim();
        let name =
            self.aliases.iter().find(|alias| alias.from.eq_ignore_ascii_case(name)).map_or(name, |alias| alias.to);
        EXPECTED_HEADER.iter().position(|expected| expected.eq_ignore_ascii_case(name))
    }

    /// The known column a header name stands for, after aliases.
    fn known_column(&self, name: &str) -> Option<usize> {
        let name = self.aliases.iter().find(|alias| alias.from == name).map_or(name, |alias| alias.to);
        EXPECTED_HEADER.iter().position(|expected| *expected == name)
    }
}

/// A column beyond the known ones whose values travel with the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraColumn {
    /// Its position in a record.
    pub index: usize,
    /// Its name, normalised (lower case, trimmed): the key its values are stored under.
    pub name: String,
}

/// The position of each order field within a CSV record.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// The columns beyond the known ones whose values are kept, in file
    /// order (empty with [`UnknownColumns::Ignore`]).
    pub extra: Vec<ExtraColumn>,
    /// Every name of the header, normalised, in file order: what travels
    /// with the records so that a change of header between files shows.
    pub names: Vec<String>,
}

/// Why a header cannot be used to read the file's records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HeaderError {
    /// Required columns are absent: the records cannot be orders.
    #[error("header lacks the column(s) {} (extra columns seen: {})", quoted(missing), quoted_or_none(extra))]
    MissingColumns {
        /// The required columns absent, in [`EXPECTED_HEADER`] order.
        missing: Vec<&'static str>,
        /// The header's columns that are not known ones, in file order.
        extra: Vec<String>,
    },
    /// Columns beyond the known ones, with `--unknown-columns reject`.
    #[error("header has the unknown column(s) {} (expected {EXPECTED_HEADER:?}; --unknown-columns is reject)", quoted(.0))]
    UnknownColumns(Vec<String>),
    /// The same column twice: which one would be meant is unknowable.
    #[error("header has the column `{0}` twice")]
    DuplicateColumn(String),
    /// The first record is longer than any record may be (a junk file, or
    /// one without line breaks): there is no header to read the rest by.
    #[error("the first record is longer than {0} bytes: no usable header")]
    TooLong(usize),
}

fn quoted<S: AsRef<str>>(names: &[S]) -> String {
    names.iter().map(|name| format!("`{}`", name.as_ref())).collect::<Vec<_>>().join(", ")
}

fn quoted_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        quoted(names)
    }
}

impl Columns {
    /// Maps a header record's field names to positions with the default
    /// rules: no aliases, extra columns kept.
    pub fn from_header<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Columns, HeaderError> {
        Columns::read_header(names, &HeaderRules::default())
    }

    /// Maps a header record's field names to positions.
    ///
    /// Names are compared after trimming white space and a UTF-8 byte-order
    /// mark, case-insensitively, because spreadsheet tools add both; an
    /// alias maps a renamed column to the known one. A nameless column (a
    /// trailing comma) counts in the width but is not kept.
    pub fn read_header<'a>(
        names: impl IntoIterator<Item = &'a str>,
        rules: &HeaderRules,
    ) -> Result<Columns, HeaderError> {
        let mut found: [Option<usize>; 5] = [None; 5];
        let names: Vec<String> = names.into_iter().map(normalise).collect();
        let mut extra: Vec<ExtraColumn> = Vec::new();
        for (index, name) in names.iter().enumerate() {
            match rules.known_column(name) {
                Some(slot) => {
                    if found[slot].replace(index).is_some() {
                        return Err(HeaderError::DuplicateColumn(EXPECTED_HEADER[slot].to_string()));
                    }
                }
                None if name.is_empty() => {}
                None if extra.iter().any(|seen| seen.name == *name) => {
                    return Err(HeaderError::DuplicateColumn(name.clone()));
                }
                None => extra.push(ExtraColumn { index, name: name.clone() }),
            }
        }
        let missing: Vec<&'static str> =
            EXPECTED_HEADER.iter().zip(found).filter(|(_, index)| index.is_none()).map(|(name, _)| *name).collect();
        if !missing.is_empty() {
            return Err(HeaderError::MissingColumns { missing, extra: extra.into_iter().map(|c| c.name).collect() });
        }
        match rules.unknown {
            UnknownColumns::Reject if !extra.is_empty() => {
                return Err(HeaderError::UnknownColumns(extra.into_iter().map(|c| c.name).collect()))
            }
            UnknownColumns::Ignore => extra.clear(),
            _ => {}
        }
        let position = |slot: usize| found[slot].expect("no column is missing");
        Ok(Columns {
            id: position(0),
            user_id: position(1),
            completed_at: position(2),
            item_total: position(3),
            shipment_total: position(4),
            width: names.len(),
            extra,
            names,
        })
    }

    /// The layout of a file whose header is exactly [`EXPECTED_HEADER`].
    pub fn standard() -> Columns {
        Columns::from_header(EXPECTED_HEADER).expect("the expected header is usable")
    }

    /// Whether a record is a header line: it names at least
    /// [`HEADER_LINE_MIN_NAMES`] distinct required columns (after aliases).
    /// Inside a file such a line is a copy of the header (exports
    /// concatenated with `cat`) or a new one (an exporter appending with a
    /// changed header); the caller also checks that it is not a valid order.
    pub fn is_header<'a>(fields: impl IntoIterator<Item = &'a str>, rules: &HeaderRules) -> bool {
        let mut named = [false; 5];
        for field in fields {
            if let Some(slot) = rules.known_column_as_written(field) {
                named[slot] = true;
            }
        }
        named.iter().filter(|named| **named).count() >= HEADER_LINE_MIN_NAMES
    }

    /// The values of the kept extra columns of a record (of [`Self::width`]
    /// fields), exactly as written, in file order.
    pub fn extra_values(&self, fields: &[&str]) -> Extra {
        self.extra.iter().map(|column| (column.name.clone(), fields[column.index].to_string())).collect()
    }
}

/// The names among a header's (normalised, see [`Columns::names`]) that
/// stand for no known column: its extra columns, kept or not.
pub fn unknown_names<'a>(names: &'a [String], rules: &'a HeaderRules) -> impl Iterator<Item = &'a String> + 'a {
    names.iter().filter(move |name| !name.is_empty() && rules.known_column(name).is_none())
}

/// Whether a record's fields, normalised, are these header names (see
/// [`Columns::names`]): a copy of the header in force, skipped.
pub fn same_names(names: &[String], fields: &[&str]) -> bool {
    names.len() == fields.len() && names.iter().zip(fields).all(|(name, field)| normalise(field) == *name)
}

/// Values of columns beyond the known ones: column name → value, in file order.
pub type Extra = indexmap::IndexMap<String, String>;

/// A header name as compared: without a byte-order mark or surrounding white
/// space, in lower case.
pub fn normalise(raw: &str) -> String {
    raw.trim_start_matches('\u{feff}').trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_standard_columns_json_is_the_expected_header_as_the_producer_writes_it() {
        assert_eq!(serde_json::to_string(&EXPECTED_HEADER).unwrap(), STANDARD_COLUMNS_JSON);
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        assert!(is_standard_header(&names(&EXPECTED_HEADER)));
        assert!(!is_standard_header(&names(&["user_id", "id", "completed_at", "item_total", "shipment_total"])));
        assert!(!is_standard_header(&names(&["id", "user_id", "completed_at", "item_total", "shipment_total", "x"])));
    }
    use super::*;

    fn rules(aliases: &[&str], unknown: UnknownColumns) -> HeaderRules {
        HeaderRules { aliases: aliases.iter().map(|alias| alias.parse().unwrap()).collect(), unknown }
    }

    fn positions(columns: &Columns) -> [usize; 6] {
        [columns.id, columns.user_id, columns.completed_at, columns.item_total, columns.shipment_total, columns.width]
    }

    #[test]
    fn standard_header_maps_to_standard_columns() {
        let columns = Columns::from_header(EXPECTED_HEADER).unwrap();
        assert_eq!(positions(&columns), [0, 1, 2, 3, 4, 5]);
        assert!(columns.extra.is_empty());
        assert_eq!(columns, Columns::standard());
    }

    #[test]
    fn reordered_header_is_read_by_name() {
        let columns = Columns::from_header(["shipment_total", "completed_at", "id", "item_total", "user_id"]).unwrap();
        assert_eq!(positions(&columns), [2, 4, 1, 3, 0, 5]);
    }

    #[test]
    fn byte_order_mark_and_case_are_ignored() {
        let columns =
            Columns::from_header(["\u{feff}ID", " user_id", "completed_at", "item_total", "Shipment_Total"]).unwrap();
        assert_eq!(positions(&columns), [0, 1, 2, 3, 4, 5]);
        assert_eq!(columns.names, EXPECTED_HEADER);
    }

    #[test]
    fn missing_columns_are_named_with_the_extra_columns_seen() {
        let error = Columns::from_header(["id", "Currency", "completed_at", "item_total", "coupon"]).unwrap_err();
        assert_eq!(
            error,
            HeaderError::MissingColumns {
                missing: vec!["user_id", "shipment_total"],
                extra: vec!["currency".into(), "coupon".into()]
            }
        );
        assert_eq!(
            error.to_string(),
            "header lacks the column(s) `user_id`, `shipment_total` (extra columns seen: `currency`, `coupon`)"
        );
        let error = Columns::from_header(["id", "user_id", "completed_at", "item_total"]).unwrap_err();
        assert_eq!(error.to_string(), "header lacks the column(s) `shipment_total` (extra columns seen: none)");
    }

    #[test]
    fn extra_columns_are_kept_in_file_order_by_default() {
        let columns = Columns::from_header([
            "Coupon_Code",
            "id",
            "user_id",
            "completed_at",
            "item_total",
            "shipment_total",
            "currency",
        ])
        .unwrap();
        assert_eq!(positions(&columns), [1, 2, 3, 4, 5, 7]);
        let names: Vec<_> = columns.extra.iter().map(|c| (c.index, c.name.as_str())).collect();
        assert_eq!(names, [(0, "coupon_code"), (6, "currency")]);
        let fields = ["SUMMER ", "1", "2", "2022-07-01 00:19", "1", "1", "EUR"];
        let extra: Vec<_> = columns.extra_values(&fields).into_iter().collect();
        assert_eq!(extra, [("coupon_code".into(), "SUMMER ".into()), ("currency".into(), "EUR".into())]);
    }

    #[test]
    fn ignored_extra_columns_count_in_the_width_but_are_not_kept() {
        let header = ["id", "user_id", "completed_at", "item_total", "shipment_total", "coupon"];
        let columns = Columns::read_header(header, &rules(&[], UnknownColumns::Ignore)).unwrap();
        assert_eq!((columns.width, columns.extra.len()), (6, 0));
        let default_rules = HeaderRules::default();
        assert_eq!(unknown_names(&columns.names, &default_rules).collect::<Vec<_>>(), ["coupon"]);
    }

    #[test]
    fn rejected_extra_columns_are_named() {
        let header = ["id", "user_id", "completed_at", "item_total", "shipment_total", "coupon"];
        let error = Columns::read_header(header, &rules(&[], UnknownColumns::Reject)).unwrap_err();
        assert_eq!(error, HeaderError::UnknownColumns(vec!["coupon".into()]));
        assert!(error.to_string().contains("`coupon`"), "{error}");
        assert!(Columns::read_header(EXPECTED_HEADER, &rules(&[], UnknownColumns::Reject)).is_ok());
    }

    #[test]
    fn an_alias_maps_a_renamed_column_case_insensitively() {
        let rules = rules(&["Order_ID=id", "customer = USER_ID"], UnknownColumns::Keep);
        let columns = Columns::read_header(
            ["\u{feff}ORDER_ID", "Customer", "completed_at", "item_total", "shipment_total"],
            &rules,
        )
        .unwrap();
        assert_eq!(positions(&columns), [0, 1, 2, 3, 4, 5]);
        assert!(columns.extra.is_empty());
        assert_eq!(columns.names[0], "order_id", "the names travel as written");
    }

    #[test]
    fn an_alias_and_its_target_together_are_a_duplicate() {
        let rules = rules(&["order_id=id"], UnknownColumns::Keep);
        let error =
            Columns::read_header(["order_id", "id", "user_id", "completed_at", "item_total", "shipment_total"], &rules)
                .unwrap_err();
        assert_eq!(error, HeaderError::DuplicateColumn("id".into()));
    }

    #[test]
    fn malformed_aliases_are_refused() {
        assert_eq!("order_id".parse::<ColumnAlias>(), Err(AliasError::Malformed("order_id".into())));
        assert_eq!("=id".parse::<ColumnAlias>(), Err(AliasError::Malformed("=id".into())));
        assert_eq!("a=ident".parse::<ColumnAlias>(), Err(AliasError::UnknownTarget("ident".into())));
        assert_eq!("A=ID".parse::<ColumnAlias>(), Ok(ColumnAlias { from: "a".into(), to: "id" }));
    }

    #[test]
    fn unknown_columns_modes_parse() {
        assert_eq!("KEEP".parse(), Ok(UnknownColumns::Keep));
        assert_eq!("ignore".parse(), Ok(UnknownColumns::Ignore));
        assert_eq!("reject".parse(), Ok(UnknownColumns::Reject));
        assert!("drop".parse::<UnknownColumns>().is_err());
        assert_eq!(UnknownColumns::default(), UnknownColumns::Keep);
    }

    #[test]
    fn duplicate_column_is_refused() {
        let error =
            Columns::from_header(["id", "id", "user_id", "completed_at", "item_total", "shipment_total"]).unwrap_err();
        assert_eq!(error, HeaderError::DuplicateColumn("id".into()));
        let error = Columns::from_header(["id", "user_id", "completed_at", "item_total", "shipment_total", "x", "X"])
            .unwrap_err();
        assert_eq!(error, HeaderError::DuplicateColumn("x".into()));
    }

    #[test]
    fn a_nameless_column_counts_but_is_not_kept() {
        let columns =
            Columns::from_header(["id", "user_id", "completed_at", "item_total", "shipment_total", ""]).unwrap();
        assert_eq!((columns.width, columns.extra.len()), (6, 0));
    }

    #[test]
    fn header_lines_are_recognised_but_data_is_not() {
        let rules = rules(&["order_id=id"], UnknownColumns::Keep);
        assert!(Columns::is_header(EXPECTED_HEADER, &rules));
        assert!(Columns::is_header(["currency", "order_id", "USER_ID", "completed_at", "total"], &rules));
        assert!(Columns::is_header(["\u{feff}ID", " User_Id ", "completed_at"], &rules));
        assert!(!Columns::is_header(["236777", "7258", "2022-07-01 00:19", "39.14", "2.5"], &rules));
        assert!(!Columns::is_header(["1", "2", "2022-07-01 00:19", "3", "4", "id", "user_id"], &rules), "two names");
        assert!(!Columns::is_header(["id", "ids"], &rules));
        assert!(!Columns::is_header(Vec::<&str>::new(), &rules));
    }

    #[test]
    fn a_copy_of_the_header_is_the_same_header() {
        let columns =
            Columns::from_header(["id", "user_id", "completed_at", "item_total", "shipment_total", "x"]).unwrap();
        assert!(same_names(&columns.names, &["ID ", "user_id", "completed_at", "item_total", "shipment_total", "x"]));
        assert!(!same_names(&columns.names, &EXPECTED_HEADER));
        assert!(!same_names(
            &columns.names,
            &["id", "user_id", "completed_at", "item_total", "shipment_total", "x", "y"]
        ));
    }
}
