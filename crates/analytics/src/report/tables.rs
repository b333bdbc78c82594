//! Answers as short tables: the latest periods in view, the earlier ones
//! folded in an HTML `<details>` (no JavaScript), headings in words, values
//! written for readers, partial periods marked.

use std::collections::BTreeSet;
use std::fmt::Write;

use chrono::NaiveDate;

use crate::answers::{Answer, Cell, DataSpan};

use super::columns;
use super::escape;
use super::periods::Period;

/// How many periods (weeks, months, days) stay in view.
const RECENT_PERIODS: usize = 4;

/// How many rows stay in view when the answer has no period column.
const RECENT_ROWS: usize = 8;

/// The answer as a table whose last periods are in view and the rest
/// folded away; partial periods are marked "(partial)".
pub fn table(answer: &Answer, span: Option<&DataSpan>) -> String {
    let period =
        answer.columns.iter().enumerate().find_map(|(index, name)| Period::of_column(name).map(|p| (index, p)));
    let (recent, earlier): (Vec<&Vec<Cell>>, Vec<&Vec<Cell>>) = match period {
        Some((index, _)) => {
            let starts: BTreeSet<NaiveDate> = answer.rows.iter().filter_map(|row| date(&row[index])).collect();
            let first_recent = starts.iter().nth_back(RECENT_PERIODS - 1).or_else(|| starts.first()).copied();
            answer.rows.iter().partition(|row| date(&row[index]) >= first_recent)
        }
        None => {
            let cut = answer.rows.len().saturating_sub(RECENT_ROWS);
            let (earlier, recent) = answer.rows.split_at(cut);
            (recent.iter().collect(), earlier.iter().collect())
        }
    };
    let noun = period.map_or("row", |(_, p)| p.noun());
    let mut html = String::new();
    if !earlier.is_empty() {
        let periods = period
            .map_or(0, |(index, _)| earlier.iter().filter_map(|row| date(&row[index])).collect::<BTreeSet<_>>().len());
        let summary = match period {
            Some(_) => format!("Earlier {noun}s ({periods})"),
            None => format!("Earlier rows ({})", earlier.len()),
        };
        let _ = write!(
            html,
            "<p class=\"table-caption\">The last {} {noun}s:</p>{}<details><summary>{}</summary>{}</details>",
            if period.is_some() { RECENT_PERIODS } else { RECENT_ROWS },
            rows_table(answer, &recent, period, span),
            escape(&summary),
            rows_table(answer, &earlier, period, span)
        );
    } else {
        html.push_str(&rows_table(answer, &recent, period, span));
    }
    html
}

fn date(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Date(date) => Some(*date),
        _ => None,
    }
}

fn rows_table(
    answer: &Answer,
    rows: &[&Vec<Cell>],
    period: Option<(usize, Period)>,
    span: Option<&DataSpan>,
) -> String {
    let kinds: Vec<columns::Kind> = answer.columns.iter().map(|name| columns::describe(name).kind).collect();
    let mut html = String::from("<div class=\"table\"><table><thead><tr>");
    for (name, kind) in answer.columns.iter().zip(&kinds) {
        let _ = write!(html, "<th class=\"{}\">{}</th>", class(*kind), escape(&columns::heading(name)));
    }
    html.push_str("</tr></thead><tbody>");
    for row in rows {
        html.push_str("<tr>");
        for (index, (cell, kind)) in row.iter().zip(&kinds).enumerate() {
            let mut text = columns::value(*kind, cell);
            if let (Some((period_index, period)), Some(span), Some(start)) = (period, span, date(cell)) {
                if index == period_index && period.is_partial(start, span) {
                    text.push_str(" (partial)");
                }
            }
            let _ = write!(html, "<td class=\"{}\">{}</td>", class(*kind), escape(&text));
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table></div>");
    html
}

/// Numbers align right, words left.
fn class(kind: columns::Kind) -> &'static str {
    match kind {
        columns::Kind::Period(_) | columns::Kind::Text => "words",
        _ => "number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn week(day: u32) -> Cell {
        Cell::Date(NaiveDate::from_ymd_opt(2022, 8, 1).unwrap() + chrono::Duration::days(7 * i64::from(day)))
    }

    fn number(value: f64) -> Cell {
        Cell::Number { text: value.to_string(), value }
    }

    #[test]
    fn the_last_periods_stay_in_view_and_the_rest_is_folded() {
        let answer = Answer {
            columns: vec!["week".into(), "sales".into()],
            rows: (0..10).map(|n| vec![week(n), number(1000.0 + f64::from(n))]).collect(),
        };
        let html = table(&answer, None);
        let (shown, folded) = html.split_once("<details>").unwrap();
        assert_eq!(shown.matches("<tr>").count(), 1 + RECENT_PERIODS, "heading and the last 4 weeks");
        assert_eq!(folded.matches("<tr>").count(), 1 + 6);
        assert!(folded.contains("<summary>Earlier weeks (6)</summary>"));
        assert!(shown.contains("<th class=\"words\">Week (Monday to Sunday)</th><th class=\"number\">Sales</th>"));
        assert!(shown.contains("1,009.00"));
    }

    #[test]
    fn a_short_answer_is_not_folded() {
        let answer = Answer { columns: vec!["week".into(), "orders".into()], rows: vec![vec![week(0), number(5.0)]] };
        assert!(!table(&answer, None).contains("<details>"));
    }

    #[test]
    fn partial_periods_are_marked() {
        let span = DataSpan {
            first_order: NaiveDate::from_ymd_opt(2022, 8, 3).unwrap().and_hms_opt(9, 0, 0).unwrap(),
            newest_order: NaiveDate::from_ymd_opt(2022, 8, 20).unwrap().and_hms_opt(9, 0, 0).unwrap(),
            last_month: NaiveDate::from_ymd_opt(2022, 8, 1).unwrap(),
        };
        let answer = Answer {
            columns: vec!["week".into(), "orders".into()],
            rows: vec![vec![week(0), number(5.0)], vec![week(1), number(9.0)]],
        };
        let html = table(&answer, Some(&span));
        assert!(html.contains("Week of 1 Aug 2022 (partial)"));
        assert!(html.contains("Week of 8 Aug 2022<"));
    }
}
