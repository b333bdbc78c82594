//! The month a report is about, as `--month` takes it. A report covers whole
//! months, so `2022-07` (or `2022-07-01`) is a month, while `2022-07-15`
//! is refused rather than read as a month no order belongs to (which used to
//! show every figure as 0.00); a month with no orders is refused too.

use chrono::{Datelike, NaiveDate};
use thiserror::Error;

use crate::answers::DataSpan;

use super::format;
use super::periods::Period;

/// Why `--month` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MonthError {
    /// Neither `YYYY-MM` nor a date.
    #[error("`{0}` is not a month: write it as YYYY-MM, e.g. 2022-07")]
    NotAMonth(String),
    /// A date other than a month's first day.
    #[error("`{given}` is a day, not a month: write {month} (the report covers whole months)")]
    NotAMonthStart {
        /// What was given.
        given: String,
        /// The month it falls in, as it should be written.
        month: String,
    },
    /// A month the data has no order in.
    #[error("no orders in {month}: the data runs from {first} to {newest}")]
    OutsideTheData {
        /// The month asked for, in words.
        month: String,
        /// The day of the first order.
        first: String,
        /// The day of the newest order.
        newest: String,
    },
}

/// Parses `--month`: `YYYY-MM`, or `YYYY-MM-01`; returns the month's first day.
pub fn parse(text: &str) -> Result<NaiveDate, MonthError> {
    let text = text.trim();
    if let Ok(month) = NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d") {
        return Ok(month);
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| MonthError::NotAMonth(text.to_string()))?;
    match day.with_day0(0) {
        Some(first) if first == day => Ok(first),
        _ => Err(MonthError::NotAMonthStart { given: text.to_string(), month: day.format("%Y-%m").to_string() }),
    }
}

/// Refuses a month the orders of `span` do not reach, so a report never
/// shows a month of zeros as if it were one without sales.
pub fn check_in_data(month: NaiveDate, span: &DataSpan) -> Result<(), MonthError> {
    let (first, newest) = (span.first_order.date(), span.newest_order.date());
    if Period::Month.last_day(month) < first || month > newest {
        return Err(MonthError::OutsideTheData {
            month: format::month(month),
            first: format::day(first),
            newest: format::day(newest),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::periods::tests::{date, span};
    use super::*;

    #[test]
    fn a_month_is_written_year_dash_month() {
        assert_eq!(parse("2022-07"), Ok(date(2022, 7, 1)));
        assert_eq!(parse("2022-07-01"), Ok(date(2022, 7, 1)), "its first day is accepted too");
    }

    #[test]
    fn a_day_inside_a_month_is_refused_with_the_month_to_write() {
        let error = parse("2022-07-15").unwrap_err();
        assert_eq!(error, MonthError::NotAMonthStart { given: "2022-07-15".into(), month: "2022-07".into() });
        assert!(error.to_string().contains("write 2022-07"), "{error}");
    }

    #[test]
    fn anything_else_is_not_a_month() {
        assert!(matches!(parse("July"), Err(MonthError::NotAMonth(_))));
        assert!(matches!(parse("2022-13"), Err(MonthError::NotAMonth(_))));
    }

    #[test]
    fn a_month_without_orders_is_refused() {
        assert_eq!(check_in_data(date(2022, 7, 1), &span()), Ok(()), "the data starts on 13 July");
        assert_eq!(check_in_data(date(2022, 10, 1), &span()), Ok(()), "and ends on 4 October");
        let error = check_in_data(date(2022, 6, 1), &span()).unwrap_err();
        assert_eq!(error.to_string(), "no orders in June 2022: the data runs from 13 Jul 2022 to 4 Oct 2022");
        assert!(check_in_data(date(2022, 11, 1), &span()).is_err());
    }
}
