//! What each answer column means to a reader, as the report shows it: the
//! shared vocabulary of [`crate::labels`] (the Metabase cards read the same),
//! turned into the report's kinds of values.

use crate::answers::Cell;
use crate::labels::{self, Format};

use super::format;
use super::periods::Period;

/// How a column's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An amount of item totals: `83,948.74`.
    Money,
    /// A number of things: `1,665`.
    Count,
    /// A change in percent: `▲ 24.7 %`.
    Change,
    /// A plain ratio: `2.45`.
    Ratio,
    /// A duration in days: `12.34`.
    Days,
    /// The start of a period: "Week of 29 Aug 2022".
    Period(Period),
    /// Words, shown as written with `_` read as a space.
    Text,
}

/// One column as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The heading, in words.
    pub heading: &'static str,
    /// How its values read.
    pub kind: Kind,
    /// The axis title when charted, with the unit; `None` if never charted.
    pub axis: Option<&'static str>,
    /// Whether a key-figure card shows it large, as the figure.
    pub headline: bool,
}

/// How the report shows the column `name`; a column it does not know keeps
/// its name, with spaces, and its values as PostgreSQL wrote them.
pub fn describe(name: &str) -> Column {
    let Some(label) = labels::label(name) else {
        return Column { heading: "", kind: Kind::Text, axis: None, headline: false };
    };
    let kind = match label.format {
        Format::Money => Kind::Money,
        Format::Count => Kind::Count,
        Format::Change => Kind::Change,
        Format::Ratio => Kind::Ratio,
        Format::Days => Kind::Days,
        Format::Week => Kind::Period(Period::Week),
        Format::Month => Kind::Period(Period::Month),
        Format::Day => Kind::Period(Period::Day),
        Format::Text => Kind::Text,
    };
    Column { heading: label.heading, kind, axis: label.axis, headline: label.headline }
}

/// The heading of the column `name`, in words.
pub fn heading(name: &str) -> String {
    labels::heading(name)
}

/// A cell as text for a reader, by its column's kind.
pub fn value(kind: Kind, cell: &Cell) -> String {
    let decimal = cell.decimal();
    match (kind, cell, decimal) {
        (_, Cell::Null, _) => "—".to_string(),
        (Kind::Money, _, Some(amount)) => format::money(amount),
        (Kind::Count, _, Some(number)) => format::count(number),
        (Kind::Change, _, Some(percent)) => format::change(percent).0,
        (Kind::Ratio | Kind::Days, _, Some(number)) => format::thousands(number, 2),
        (Kind::Period(period), Cell::Date(start), _) => period.words(*start),
        (_, Cell::Text(text), _) => text.replace('_', " "),
        _ => cell.display(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> Cell {
        Cell::Number { text: text.into(), value: text.parse().unwrap() }
    }

    #[test]
    fn headings_are_words() {
        assert_eq!(heading("average_basket"), "Average basket");
        assert_eq!(heading("some_new_column"), "some new column");
    }

    #[test]
    fn values_read_by_kind() {
        assert_eq!(value(Kind::Money, &number("83948.74")), "83,948.74");
        assert_eq!(value(Kind::Count, &number("1665")), "1,665");
        assert_eq!(value(Kind::Change, &number("-11.7")), "▼ 11.7 %");
        assert_eq!(value(Kind::Text, &Cell::Text("zero_totals".into())), "zero totals");
        assert_eq!(value(Kind::Money, &Cell::Null), "—");
        let week = Cell::Date(chrono::NaiveDate::from_ymd_opt(2022, 8, 29).unwrap());
        assert_eq!(value(Kind::Period(Period::Week), &week), "Week of 29 Aug 2022");
    }
}
