//! Key-figure cards: one figure large, its change with an arrow, the period
//! in words and what the question measures, for the questions Metabase shows
//! as a single number (`display: scalar`).

use std::fmt::Write;

use crate::answers::{Answer, Cell};
use crate::questions::Question;

use super::columns::{self, Kind};
use super::{escape, format};

/// The columns a card reads by role rather than listing them.
const CHANGE: &str = "change_percent";
const MONTH: &str = "month";
const FIRST_MONTH: &str = "first_month";
const LAST_MONTH: &str = "last_month";

/// The card of a scalar question, from the first row of its answer, with
/// `history_note` when its figure leans on history the data lacks.
pub fn card(question: &Question, answer: &Answer, history_note: Option<&str>) -> String {
    let mut html = format!("<article class=\"card\"><h2>{}</h2>", escape(&question.title));
    let Some(row) = answer.rows.first() else {
        let _ = write!(html, "<p class=\"figure\">—</p><p>No orders in this period.</p>");
        return html + "</article>";
    };
    let cell = |name: &str| answer.column(name).and_then(|index| row.get(index));
    let figure = headline_column(answer);
    if let Some(period) = period_words(answer, row) {
        let _ = write!(html, "<p class=\"period\">{}</p>", escape(&period));
    }
    if let Some((name, kind)) = figure {
        let shown = cell(name).map_or_else(String::new, |value| columns::value(kind, value));
        let _ = write!(html, "<p class=\"figure\">{}</p>", escape(&shown));
        if let Some(percent) = cell(CHANGE).and_then(Cell::decimal) {
            let (change, direction) = format::change(percent);
            let previous = cell(&format!("previous_{name}")).filter(|c| **c != Cell::Null);
            let against = previous.map_or_else(String::new, |p| format!(" against {}", columns::value(kind, p)));
            let _ = write!(
                html,
                "<p class=\"change {}\">{}<span>{}</span></p>",
                direction.class(),
                escape(&change),
                escape(&against)
            );
        }
    }
    let details: Vec<String> = answer
        .columns
        .iter()
        .zip(row)
        .filter(|(name, _)| is_detail(name, figure.map(|(f, _)| f)))
        .map(|(name, value)| {
            let column = columns::describe(name);
            format!(
                "<dt>{}</dt><dd>{}</dd>",
                escape(&columns::heading(name)),
                escape(&columns::value(column.kind, value))
            )
        })
        .collect();
    if !details.is_empty() {
        let _ = write!(html, "<dl>{}</dl>", details.concat());
    }
    let _ = write!(html, "<p class=\"description\">{}</p>", escape(&question.description));
    if let Some(note) = history_note {
        let _ = write!(html, "<p class=\"note history\">{}</p>", escape(note));
    }
    html.push_str("</article>");
    html
}

/// The column shown large: the first the vocabulary marks as a headline,
/// else the first number.
fn headline_column(answer: &Answer) -> Option<(&str, Kind)> {
    let named = answer.columns.iter().find(|name| columns::describe(name).headline);
    let first_number = || {
        let row = answer.rows.first()?;
        answer.columns.iter().zip(row).find(|(_, cell)| cell.decimal().is_some()).map(|(name, _)| name)
    };
    named.or_else(first_number).map(|name| (name.as_str(), columns::describe(name).kind))
}

/// Columns listed under the figure: everything but the figure, its previous
/// value, its change and the period.
fn is_detail(name: &str, figure: Option<&str>) -> bool {
    let is_figure_or_previous = figure.is_some_and(|f| name == f || name.strip_prefix("previous_") == Some(f));
    !is_figure_or_previous && ![CHANGE, MONTH, FIRST_MONTH, LAST_MONTH].contains(&name)
}

/// "September 2022 vs August 2022" for a month compared with the one before,
/// "July – September 2022" for a window of months.
fn period_words(answer: &Answer, row: &[Cell]) -> Option<String> {
    let date = |name: &str| match answer.column(name).and_then(|index| row.get(index)) {
        Some(Cell::Date(date)) => Some(*date),
        _ => None,
    };
    if let (Some(first), Some(last)) = (date(FIRST_MONTH), date(LAST_MONTH)) {
        return Some(format::months(first, last));
    }
    let month = date(MONTH)?;
    Some(if answer.column(CHANGE).is_some() { format::month_against_previous(month) } else { format::month(month) })
}
