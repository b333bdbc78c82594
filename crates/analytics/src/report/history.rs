//! Figures that lean on history the data does not have yet. A customer is
//! "recurring" by the orders found in the months before; in the data's first
//! months those months are not there, so customers who ordered before the
//! data begins count as new (or as one-time) and repeat gaps reaching back
//! before it are missed. The report marks those figures instead of passing
//! them off as comparable with the rest.
//!
//! A question says how far it looks back in its header:
//!
//! - `-- looks back: 2 months`: each period's figure needs the 2 months
//!   before the period's start (question 03's 3-month window per month);
//! - `-- looks back: window`: the whole answer is judged over its
//!   `-- window months:` (questions 04 and 05 classify customers over it);
//!
//! and `-- short history:` says what the shortfall does to the figure.

use chrono::{Months, NaiveDate};

use crate::answers::{Answer, Cell, DataSpan};
use crate::questions::Question;

use super::format;
use super::periods::Period;

/// The header key saying how far back a question looks.
const LOOKS_BACK_HEADER: &str = "looks back";
/// The header key saying what too short a history does to the figure.
const CONSEQUENCE_HEADER: &str = "short history";
/// Said when a question names no consequence.
const DEFAULT_CONSEQUENCE: &str = "they may count customers as new who ordered before";

/// How far back a question's figures look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LookBack {
    /// Each period's figure reads this many months before the period's start.
    Months(u32),
    /// Every figure reads the question's whole window of months.
    Window,
}

fn look_back(question: &Question) -> Option<LookBack> {
    let value = question.optional_header(LOOKS_BACK_HEADER)?;
    if value == "window" {
        return Some(LookBack::Window);
    }
    let months = value.strip_suffix("months").or_else(|| value.strip_suffix("month"))?.trim().parse().ok()?;
    Some(LookBack::Months(months))
}

/// The sentence marking the figures of `answer` that lean on history before
/// the data's first order; `None` when none does. `window_months` is the
/// question's `-- window months:`, `span` the whole data's span.
pub fn note(question: &Question, answer: &Answer, span: &DataSpan, window_months: Option<u32>) -> Option<String> {
    let history_start = span.first_order.date();
    let consequence = question.optional_header(CONSEQUENCE_HEADER).unwrap_or(DEFAULT_CONSEQUENCE);
    let begins = format!("History begins {} (the first order)", format::day(history_start));
    match look_back(question)? {
        LookBack::Months(months) => {
            let (period, starts) = period_starts(answer)?;
            let short: Vec<String> = starts
                .into_iter()
                .filter(|start| start.checked_sub_months(Months::new(months)).is_some_and(|from| from < history_start))
                .map(|start| period.words(start))
                .collect();
            let (count, noun) = (short.len(), period.noun());
            let named = match short.as_slice() {
                [] => return None,
                [first, .., last] if count > 3 => format!("{first} to {last}"),
                all => all.join(", "),
            };
            let (first, verb) =
                if count == 1 { (noun.to_string(), "looks") } else { (format!("{count} {noun}s"), "look") };
            Some(format!(
                "{begins}: the first {first} ({named}) {verb} back {months} months, partly before it, so {consequence}."
            ))
        }
        LookBack::Window => {
            let window_start = window_start(span, window_months?);
            (window_start < history_start).then(|| {
                format!(
                    "{begins}: the {}-month window {} starts before it, so {consequence}.",
                    window_months.unwrap_or(0),
                    format::months(window_start, span.last_month),
                )
            })
        }
    }
}

/// The first day of the `months` months ending with `span.last_month`.
fn window_start(span: &DataSpan, months: u32) -> NaiveDate {
    span.last_month.checked_sub_months(Months::new(months.saturating_sub(1))).unwrap_or(span.last_month)
}

/// The period column of `answer` and its distinct starts, in order.
fn period_starts(answer: &Answer) -> Option<(Period, Vec<NaiveDate>)> {
    let (index, period) =
        answer.columns.iter().enumerate().find_map(|(index, name)| Period::of_column(name).map(|p| (index, p)))?;
    let mut starts: Vec<NaiveDate> = answer
        .rows
        .iter()
        .filter_map(|row| match row.get(index) {
            Some(Cell::Date(date)) => Some(*date),
            _ => None,
        })
        .collect();
    starts.sort_unstable();
    starts.dedup();
    Some((period, starts))
}

#[cfg(test)]
mod tests {
    use super::super::periods::tests::{date, span};
    use super::*;

    fn question(header: &str) -> Question {
        Question {
            key: "q".into(),
            title: "t".into(),
            display: "line".into(),
            description: "d".into(),
            sql: format!("{header}\nSELECT 1"),
        }
    }

    fn monthly(months: &[u32]) -> Answer {
        Answer {
            columns: vec!["month".into(), "recurring_average_basket".into()],
            rows: months
                .iter()
                .map(|m| vec![Cell::Date(date(2022, *m, 1)), Cell::Number { text: "50".into(), value: 50.0 }])
                .collect(),
        }
    }

    #[test]
    fn the_first_months_of_a_looking_back_question_are_named() {
        let q = question("-- looks back: 2 months\n-- short history: they count customers as new who may not be");
        let note = note(&q, &monthly(&[7, 8, 9, 10]), &span(), None).unwrap();
        // The data begins on 13 July: September's window (from 1 July) reaches before it too.
        assert_eq!(
            note,
            "History begins 13 Jul 2022 (the first order): the first 3 months (July 2022, August 2022, \
             September 2022) look back 2 months, partly before it, so they count customers as new who may not be."
        );
    }

    #[test]
    fn a_long_run_of_periods_is_named_by_its_ends() {
        let q = question("-- looks back: 3 months");
        let note = note(&q, &monthly(&[7, 8, 9, 10]), &span(), None).unwrap();
        assert!(note.contains("the first 4 months (July 2022 to October 2022) look back 3 months"), "{note}");
    }

    #[test]
    fn a_window_starting_before_the_data_marks_the_whole_answer() {
        let q = question("-- looks back: window");
        let note = note(&q, &monthly(&[]), &span(), Some(3)).unwrap();
        assert!(note.contains("the 3-month window July – September 2022 starts before it"), "{note}");
        assert!(note.contains(DEFAULT_CONSEQUENCE), "{note}");
        let later = DataSpan { last_month: date(2022, 10, 1), ..span() };
        assert_eq!(super::note(&q, &monthly(&[]), &later, Some(2)), None, "September and October are whole");
    }

    #[test]
    fn questions_that_do_not_look_back_get_no_note() {
        assert_eq!(note(&question("-- x: month"), &monthly(&[7, 8]), &span(), None), None);
        let q = question("-- looks back: 1 month");
        assert_eq!(note(&q, &monthly(&[9]), &span(), None), None, "August is in the data");
    }
}
