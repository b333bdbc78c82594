//! How a question's answer is shown, as its file header says: which column
//! is the key figure, what the axes carry, the currency of its amounts, and
//! where the question appears.
//!
//! ```sql
//! -- title: Weekly sales and order count
//! -- display: bar
//! -- description: …
//! -- x: week
//! -- y: sales, orders
//! ```
//!
//! Every key is optional; a list is comma-separated. The keys name result
//! columns, so [`Presentation::from_question`] refuses a column the SQL never
//! mentions: a typo fails at load, not as a silently unformatted card.
//! Metabase's `visualization_settings` are built from this in
//! [`crate::visualization`]. What a column is called and how its values are
//! written (axis titles, money, percentages) is not a header key: it comes
//! from [`crate::labels`], which the HTML report reads too, so the two never
//! disagree; a file still carrying one of the former keys for it
//! (`x-title`, `y-title`, `money`, `percent`, `decimal`) is refused.

use thiserror::Error;

use crate::labels;

/// Where a question appears (`-- only-in:`; absent: everywhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The Metabase dashboard and the HTML report.
    Everywhere,
    /// Only the Metabase dashboard: a Metabase-specific view (the trend
    /// cards) of a figure the report shows in its own way.
    Metabase,
    /// Only the HTML report.
    Report,
}

/// The presentation keys of one question's header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Presentation {
    /// `-- value:` the column a key figure or trend card shows.
    pub value: Option<String>,
    /// `-- x:` the x-axis column, then any column that splits the series.
    pub x: Vec<String>,
    /// `-- y:` the columns plotted.
    pub y: Vec<String>,
    /// `-- currency:` the ISO code shown with money columns (e.g. `EUR`);
    /// absent: amounts are shown as plain numbers, since the order exports
    /// do not say their currency.
    pub currency: Option<String>,
    /// The columns of [`crate::labels`] the SQL mentions: the ones a card
    /// gets a title and a number format for.
    pub labelled: Vec<String>,
}

/// Header keys that used to set labels and formats per file, now in
/// [`crate::labels`] for the report and Metabase alike.
const RETIRED_KEYS: [&str; 5] = ["x-title", "y-title", "money", "percent", "decimal"];

/// Why a presentation header cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PresentationError {
    /// `-- only-in:` names neither `metabase` nor `report`.
    #[error("`-- only-in: {0}` is neither `metabase` nor `report`")]
    UnknownAudience(String),
    /// A key names a column the SQL does not mention.
    #[error("`-- {key}:` names the column `{column}`, which the SQL never mentions")]
    UnknownColumn {
        /// The header key.
        key: &'static str,
        /// The column named.
        column: String,
    },
    /// A key whose work [`crate::labels`] now does.
    #[error("`-- {0}:` is no longer read: column titles and formats come from crates/analytics/src/labels.rs, shared by the report and Metabase")]
    Retired(&'static str),
    /// A trend card without `-- value:`.
    #[error("a `smartscalar` card needs `-- value: <column>` (the number it shows)")]
    MissingValue,
}

/// What a presentation reads of a question file: its header keys, its SQL
/// and its display. A trait, so that this module needs nothing of how
/// question files are found and parsed (`questions` implements it).
pub trait QuestionText {
    /// The value of header key `key` (`-- key: value`), if present.
    fn header(&self, key: &str) -> Option<&str>;
    /// The SQL.
    fn body(&self) -> &str;
    /// The Metabase display (`table`, `line`, `smartscalar`, …).
    fn display(&self) -> &str;
}

impl Presentation {
    /// Reads the presentation keys of `question`'s header and checks that
    /// every column they name appears in its SQL.
    pub fn from_question(question: &impl QuestionText) -> Result<Self, PresentationError> {
        let list = |key| split_list(question.header(key));
        let text = |key: &str| question.header(key).map(str::to_string);
        if let Some(retired) = RETIRED_KEYS.iter().find(|key| question.header(key).is_some()) {
            return Err(PresentationError::Retired(retired));
        }
        let body = question.body();
        let presentation = Presentation {
            value: text("value"),
            x: list("x"),
            y: list("y"),
            currency: text("currency"),
            labelled: labels::LABELS
                .iter()
                .map(|(column, _)| *column)
                .filter(|column| mentions(body, column))
                .map(str::to_string)
                .collect(),
        };
        presentation.check_columns(question)?;
        if question.display() == "smartscalar" && presentation.value.is_none() {
            return Err(PresentationError::MissingValue);
        }
        Ok(presentation)
    }

    fn check_columns(&self, question: &impl QuestionText) -> Result<(), PresentationError> {
        let named = [("value", self.value.as_slice()), ("x", &self.x), ("y", &self.y)];
        let body = question.body();
        for (key, columns) in named {
            if let Some(column) = columns.iter().find(|column| !mentions(body, column)) {
                return Err(PresentationError::UnknownColumn { key, column: column.clone() });
            }
        }
        Ok(())
    }
}

/// Reads `-- only-in:` of `question`.
pub fn audience(question: &impl QuestionText) -> Result<Audience, PresentationError> {
    match question.header("only-in") {
        None => Ok(Audience::Everywhere),
        Some("metabase") => Ok(Audience::Metabase),
        Some("report") => Ok(Audience::Report),
        Some(other) => Err(PresentationError::UnknownAudience(other.to_string())),
    }
}

fn split_list(value: Option<&str>) -> Vec<String> {
    value
        .map(|value| value.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
}

/// Whether `sql` mentions `column` as a whole word.
fn mentions(sql: &str, column: &str) -> bool {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    sql.match_indices(column).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + column.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::questions::Question;

    fn question(display: &str, text: &str) -> Question {
        Question {
            key: "q".into(),
            title: "t".into(),
            display: display.into(),
            description: "d".into(),
            sql: text.into(),
        }
    }

    #[test]
    fn header_keys_become_a_presentation() {
        let q = question(
            "bar",
            "-- x: week\n-- y: sales, orders\n\
             SELECT week, sum(item_total) AS sales, count(*) AS orders FROM analysis_orders GROUP BY week",
        );
        let presentation = Presentation::from_question(&q).unwrap();
        assert_eq!(presentation.x, ["week"]);
        assert_eq!(presentation.y, ["sales", "orders"]);
        assert_eq!(presentation.labelled, ["week", "sales", "orders"]);
        assert_eq!(presentation.value, None);
    }

    #[test]
    fn a_column_the_sql_never_mentions_is_refused() {
        let q = question("scalar", "-- value: salse\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert_eq!(
            Presentation::from_question(&q),
            Err(PresentationError::UnknownColumn { key: "value", column: "salse".into() })
        );
        let q = question("scalar", "-- value: sale\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert!(Presentation::from_question(&q).is_err(), "a column is matched as a whole word");
    }

    #[test]
    fn labels_in_a_header_are_refused_for_the_shared_vocabulary() {
        let q =
            question("line", "-- y: sales\n-- y-title: Revenue\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert_eq!(Presentation::from_question(&q), Err(PresentationError::Retired("y-title")));
        let q = question("scalar", "-- money: sales\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert_eq!(Presentation::from_question(&q), Err(PresentationError::Retired("money")));
    }

    #[test]
    fn a_trend_card_needs_its_value() {
        let q = question("smartscalar", "SELECT month, sum(item_total) AS sales FROM analysis_orders GROUP BY 1");
        assert_eq!(Presentation::from_question(&q), Err(PresentationError::MissingValue));
    }

    #[test]
    fn audience_defaults_to_everywhere() {
        assert_eq!(audience(&question("line", "SELECT 1")), Ok(Audience::Everywhere));
        assert_eq!(audience(&question("line", "-- only-in: metabase\nSELECT 1")), Ok(Audience::Metabase));
        assert_eq!(audience(&question("line", "-- only-in: report\nSELECT 1")), Ok(Audience::Report));
        assert!(audience(&question("line", "-- only-in: grafana\nSELECT 1")).is_err());
    }
}
