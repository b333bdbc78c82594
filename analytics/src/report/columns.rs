//! What each answer column means to a reader: its heading in words, its unit
//! and how its values are written. The SQL files name columns for
//! developers (`average_basket`, `change_percent`); the report speaks to the
//! people who forward it.

use crate::answers::Cell;

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

const fn column(heading: &'static str, kind: Kind) -> Column {
    Column { heading, kind, axis: None, headline: false }
}

const fn charted(heading: &'static str, kind: Kind, axis: &'static str) -> Column {
    Column { heading, kind, axis: Some(axis), headline: false }
}

const fn headline(heading: &'static str, kind: Kind) -> Column {
    Column { heading, kind, axis: None, headline: true }
}

/// The shop's currency is whatever its exports are in: amounts carry no
/// symbol, the axis says what they are.
const MONEY_AXIS: &str = "Sales (item totals, shop currency)";

/// The columns of `metabase/questions/*.sql`, by name.
const KNOWN: &[(&str, Column)] = &[
    ("month", column("Month", Kind::Period(Period::Month))),
    ("week", column("Week (Monday to Sunday)", Kind::Period(Period::Week))),
    ("day", column("Day", Kind::Period(Period::Day))),
    ("sales", Column { axis: Some(MONEY_AXIS), ..headline("Sales", Kind::Money) }),
    ("previous_sales", column("Month before", Kind::Money)),
    ("change_percent", column("Change", Kind::Change)),
    ("orders", charted("Orders", Kind::Count, "Orders (count)")),
    (
        "average_basket",
        Column { axis: Some("Average basket (shop currency)"), ..headline("Average basket", Kind::Money) },
    ),
    ("previous_average_basket", column("Month before", Kind::Money)),
    ("one_time_sales", column("Sales to one-time customers", Kind::Money)),
    ("recurring_sales", column("Sales to recurring customers", Kind::Money)),
    ("ratio", headline("One-time ÷ recurring", Kind::Ratio)),
    ("first_month", column("From", Kind::Period(Period::Month))),
    ("last_month", column("To", Kind::Period(Period::Month))),
    (
        "recurring_average_basket",
        charted("Average basket of recurring customers", Kind::Money, "Average basket (shop currency)"),
    ),
    ("recurring_orders", column("Orders of recurring customers", Kind::Count)),
    ("customer_type", column("Customer type", Kind::Text)),
    ("average_days_between_orders", charted("Average days between orders", Kind::Days, "Days between orders")),
    ("repeat_orders", column("Repeat orders", Kind::Count)),
    ("kind", column("What", Kind::Text)),
    ("detail", column("Reason or flag", Kind::Text)),
    ("records", column("Records", Kind::Count)),
];

/// How the report shows the column `name`; a column it does not know keeps
/// its name, with spaces, and its values as PostgreSQL wrote them.
pub fn describe(name: &str) -> Column {
    KNOWN.iter().find(|(known, _)| *known == name).map_or(column("", Kind::Text), |(_, column)| *column)
}

/// The heading of the column `name`, in words.
pub fn heading(name: &str) -> String {
    match describe(name).heading {
        "" => name.replace('_', " "),
        heading => heading.to_string(),
    }
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
