//! How a question's answer is shown, as its file header says: which column
//! is the key figure, what the axes carry and are titled, which columns are
//! money, percentages or plain decimals, and where the question appears.
//!
//! ```sql
//! -- title: Weekly sales and order count
//! -- display: bar
//! -- description: …
//! -- x: week
//! -- y: sales, orders
//! -- x-title: Week (starting Monday)
//! -- y-title: Sales / orders
//! -- money: sales
//! ```
//!
//! Every key is optional; a list is comma-separated. The keys name result
//! columns, so [`Presentation::from_question`] refuses a column the SQL never
//! mentions: a typo fails at load, not as a silently unformatted card.
//! Metabase's `visualization_settings` are built from this in
//! [`crate::visualization`]; the HTML report may read it too.

use thiserror::Error;

use crate::questions::Question;

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
    /// `-- x-title:` the x-axis title.
    pub x_title: Option<String>,
    /// `-- y-title:` the y-axis title, with its unit.
    pub y_title: Option<String>,
    /// `-- money:` amounts: thousands separators and two decimals.
    pub money: Vec<String>,
    /// `-- currency:` the ISO code shown with money columns (e.g. `EUR`);
    /// absent: amounts are shown as plain numbers, since the order exports
    /// do not say their currency.
    pub currency: Option<String>,
    /// `-- percent:` columns holding a percentage as a number of percent
    /// (`-3.8` for −3.8 %): one decimal and a `%` sign.
    pub percent: Vec<String>,
    /// `-- decimal:` other numbers shown with two decimals.
    pub decimal: Vec<String>,
}

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
    /// A trend card without `-- value:`.
    #[error("a `smartscalar` card needs `-- value: <column>` (the number it shows)")]
    MissingValue,
}

impl Presentation {
    /// Reads the presentation keys of `question`'s header and checks that
    /// every column they name appears in its SQL.
    pub fn from_question(question: &Question) -> Result<Self, PresentationError> {
        let list = |key| split_list(question.header(key));
        let text = |key: &str| question.header(key).map(str::to_string);
        let presentation = Presentation {
            value: text("value"),
            x: list("x"),
            y: list("y"),
            x_title: text("x-title"),
            y_title: text("y-title"),
            money: list("money"),
            currency: text("currency"),
            percent: list("percent"),
            decimal: list("decimal"),
        };
        presentation.check_columns(question)?;
        if question.display == "smartscalar" && presentation.value.is_none() {
            return Err(PresentationError::MissingValue);
        }
        Ok(presentation)
    }

    fn check_columns(&self, question: &Question) -> Result<(), PresentationError> {
        let named = [
            ("value", self.value.as_slice()),
            ("x", &self.x),
            ("y", &self.y),
            ("money", &self.money),
            ("percent", &self.percent),
            ("decimal", &self.decimal),
        ];
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
pub fn audience(question: &Question) -> Result<Audience, PresentationError> {
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
            "-- x: week\n-- y: sales, orders\n-- y-title: Sales\n-- money: sales\n\
             SELECT week, sum(item_total) AS sales, count(*) AS orders FROM analysis_orders GROUP BY week",
        );
        let presentation = Presentation::from_question(&q).unwrap();
        assert_eq!(presentation.x, ["week"]);
        assert_eq!(presentation.y, ["sales", "orders"]);
        assert_eq!(presentation.y_title.as_deref(), Some("Sales"));
        assert_eq!(presentation.money, ["sales"]);
        assert_eq!(presentation.value, None);
    }

    #[test]
    fn a_column_the_sql_never_mentions_is_refused() {
        let q = question("scalar", "-- value: salse\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert_eq!(
            Presentation::from_question(&q),
            Err(PresentationError::UnknownColumn { key: "value", column: "salse".into() })
        );
        let q = question("scalar", "-- money: sale\nSELECT sum(item_total) AS sales FROM analysis_orders");
        assert!(Presentation::from_question(&q).is_err(), "a column is matched as a whole word");
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
