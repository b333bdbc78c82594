//! What each answer column is called and how its values are written: the one
//! vocabulary the HTML report and the Metabase cards both read, so the same
//! chart carries the same axis titles and the same number formats in
//! either. The SQL files name columns for developers (`average_basket`,
//! `change_percent`); these are the words their readers see.
//!
//! The report turns a [`Label`] into table headings, card figures and chart
//! axes ([`crate::report`]); provisioning turns it into a card's
//! `column_settings` (`column_title` and the number format) and its axis
//! titles ([`crate::visualization`]). A column missing here keeps its name
//! (with spaces) and the defaults of each.

/// How a column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An amount of item totals, two decimals and thousands separated: `83,948.74`.
    Money,
    /// A number of things, no decimals: `1,665`.
    Count,
    /// A change held as a number of percent (`-11.7`): one decimal and `%`.
    Change,
    /// A plain ratio, two decimals: `2.45`.
    Ratio,
    /// A duration in days, two decimals: `12.34`.
    Days,
    /// The first day of a week (Monday): "Week of 29 Aug 2022".
    Week,
    /// The first day of a month: "August 2022".
    Month,
    /// A day: "29 Aug 2022".
    Day,
    /// Words.
    Text,
}

/// One column as readers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    /// The column's heading, in words: table headings, card details,
    /// Metabase's `column_title`, the x-axis title.
    pub heading: &'static str,
    /// How its values are written.
    pub format: Format,
    /// The y-axis title when it is charted, with its unit; `None` if never charted.
    pub axis: Option<&'static str>,
    /// Whether a key-figure card shows it large, as the figure.
    pub headline: bool,
}

const fn column(heading: &'static str, format: Format) -> Label {
    Label { heading, format, axis: None, headline: false }
}

const fn charted(heading: &'static str, format: Format, axis: &'static str) -> Label {
    Label { heading, format, axis: Some(axis), headline: false }
}

const fn headline(heading: &'static str, format: Format, axis: Option<&'static str>) -> Label {
    Label { heading, format, axis, headline: true }
}

/// The shop's currency is whatever its exports are in: amounts carry no
/// symbol (unless a question names its `-- currency:`), the axis says what they are.
const SALES_AXIS: &str = "Sales (item totals, shop currency)";
/// The axis of every average basket.
const BASKET_AXIS: &str = "Average basket (shop currency)";

/// The columns of `metabase/questions/*.sql`, by name.
pub const LABELS: &[(&str, Label)] = &[
    ("month", column("Month", Format::Month)),
    ("week", column("Week (Monday to Sunday)", Format::Week)),
    ("day", column("Day", Format::Day)),
    ("sales", headline("Sales", Format::Money, Some(SALES_AXIS))),
    ("previous_sales", column("Month before", Format::Money)),
    ("change_percent", column("Change", Format::Change)),
    ("orders", charted("Orders", Format::Count, "Orders (count)")),
    ("average_basket", headline("Average basket", Format::Money, Some(BASKET_AXIS))),
    ("previous_average_basket", column("Month before", Format::Money)),
    ("one_time_sales", column("Sales to one-time customers", Format::Money)),
    ("recurring_sales", column("Sales to recurring customers", Format::Money)),
    ("ratio", headline("One-time ÷ recurring", Format::Ratio, None)),
    ("first_month", column("From", Format::Month)),
    ("last_month", column("To", Format::Month)),
    ("recurring_average_basket", charted("Average basket of recurring customers", Format::Money, BASKET_AXIS)),
    ("recurring_orders", column("Orders of recurring customers", Format::Count)),
    ("customer_type", column("Customer type", Format::Text)),
    ("average_days_between_orders", charted("Average days between orders", Format::Days, "Days between orders")),
    ("repeat_orders", column("Repeat orders", Format::Count)),
    ("kind", column("What", Format::Text)),
    ("detail", column("Reason or flag", Format::Text)),
    ("records", column("Records", Format::Count)),
];

/// The label of the column `name`, if the vocabulary has it.
pub fn label(name: &str) -> Option<Label> {
    LABELS.iter().find(|(known, _)| *known == name).map(|(_, label)| *label)
}

/// The heading of the column `name`: its label's, else its name with spaces.
pub fn heading(name: &str) -> String {
    label(name).map_or_else(|| name.replace('_', " "), |label| label.heading.to_string())
}

/// The y-axis title of a chart of `columns`: each one's axis title (its
/// heading if it has none), once each, joined by " / ".
pub fn axis_title(columns: &[String]) -> Option<String> {
    let mut titles: Vec<String> = Vec::new();
    for column in columns {
        let title = label(column).and_then(|label| label.axis).map_or_else(|| heading(column), str::to_string);
        if !titles.contains(&title) {
            titles.push(title);
        }
    }
    (!titles.is_empty()).then(|| titles.join(" / "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_are_words_and_unknown_columns_keep_their_name() {
        assert_eq!(heading("average_basket"), "Average basket");
        assert_eq!(heading("some_new_column"), "some new column");
    }

    #[test]
    fn a_chart_axis_says_its_unit_once() {
        assert_eq!(axis_title(&["average_basket".into()]).unwrap(), "Average basket (shop currency)");
        assert_eq!(
            axis_title(&["sales".into(), "orders".into()]).unwrap(),
            "Sales (item totals, shop currency) / Orders (count)"
        );
        assert_eq!(axis_title(&[]), None);
    }

    #[test]
    fn every_column_the_questions_show_has_a_label() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../metabase/questions");
        for question in crate::questions::load_questions(&folder).unwrap() {
            let presentation = question.presentation().unwrap();
            let shown = presentation.x.iter().chain(&presentation.y).chain(presentation.value.as_slice());
            for column in shown {
                assert!(label(column).is_some(), "{}: column {column} has no label", question.key);
            }
        }
    }
}
