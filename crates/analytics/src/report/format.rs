//! How numbers, changes and dates read in the report: the way a shop manager
//! writes them (`83,948.74`, `▼ 11.7 %`, "September 2022 vs August 2022"),
//! not the way PostgreSQL prints them. Pure functions, tested below.
//!
//! Money stays a [`Decimal`] all the way to its text: a float would round
//! cents of large totals.

use chrono::{Datelike, NaiveDate, NaiveDateTime};
use rust_decimal::{Decimal, RoundingStrategy};

/// `value` rounded half away from zero to `places` decimals, with a comma
/// between thousands: `83948.736` → `83,948.74` (2 places), `1665` → `1,665`.
pub fn thousands(value: Decimal, places: u32) -> String {
    let rounded = value.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
    let text = format!("{:.*}", places as usize, rounded.abs());
    let (whole, fraction) = text.split_once('.').map_or((text.as_str(), None), |(w, f)| (w, Some(f)));
    let mut grouped = String::with_capacity(text.len() + whole.len() / 3 + 1);
    if rounded.is_sign_negative() && !rounded.is_zero() {
        grouped.push('-');
    }
    for (index, digit) in whole.chars().enumerate() {
        if index > 0 && (whole.len() - index) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

/// An amount of money: two decimals, thousands separated.
pub fn money(value: Decimal) -> String {
    thousands(value, 2)
}

/// A count: no decimals, thousands separated.
pub fn count(value: Decimal) -> String {
    thousands(value, 0)
}

/// Which way a figure moved, for the arrow and its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Went up.
    Up,
    /// Went down.
    Down,
    /// Unchanged at one decimal.
    Flat,
}

impl Direction {
    /// The CSS class of the change's colour.
    pub fn class(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
            Direction::Flat => "flat",
        }
    }
}

/// A change in percent with one decimal and its arrow, the arrow giving the
/// sign: `-11.66` → (`▼ 11.7 %`, Down), `24.7` → (`▲ 24.7 %`, Up).
pub fn change(percent: Decimal) -> (String, Direction) {
    let rounded = percent.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
    let direction = if rounded.is_zero() {
        Direction::Flat
    } else if rounded.is_sign_negative() {
        Direction::Down
    } else {
        Direction::Up
    };
    let arrow = match direction {
        Direction::Up => '▲',
        Direction::Down => '▼',
        Direction::Flat => '=',
    };
    (format!("{arrow} {} %", thousands(rounded.abs(), 1)), direction)
}

/// A month in words: `2022-09-01` → "September 2022".
pub fn month(first_day: NaiveDate) -> String {
    first_day.format("%B %Y").to_string()
}

/// A month against the one before: "September 2022 vs August 2022".
pub fn month_against_previous(first_day: NaiveDate) -> String {
    let previous = first_day.checked_sub_months(chrono::Months::new(1)).unwrap_or(first_day);
    format!("{} vs {}", month(first_day), month(previous))
}

/// A range of months: "July – September 2022", or "November 2022 – January
/// 2023" across a year's end.
pub fn months(first: NaiveDate, last: NaiveDate) -> String {
    if first.year() == last.year() {
        format!("{} – {}", first.format("%B"), month(last))
    } else {
        format!("{} – {}", month(first), month(last))
    }
}

/// A day with its year: "29 Aug 2022".
pub fn day(date: NaiveDate) -> String {
    date.format("%-d %b %Y").to_string()
}

/// A moment in words: "Tuesday 4 October 2022, 13:20".
pub fn moment(at: NaiveDateTime) -> String {
    at.format("%A %-d %B %Y, %H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn amounts_have_thousands_separators_and_two_decimals() {
        assert_eq!(money(decimal("83948.74")), "83,948.74");
        assert_eq!(money(decimal("1234567.5")), "1,234,567.50");
        assert_eq!(money(decimal("999.999")), "1,000.00", "rounded half away from zero");
        assert_eq!(money(decimal("0")), "0.00");
        assert_eq!(money(decimal("-1234.5")), "-1,234.50");
        assert_eq!(money(decimal("-0.001")), "0.00", "no negative zero");
        assert_eq!(money(decimal("123")), "123.00");
    }

    #[test]
    fn money_keeps_cents_a_float_would_lose() {
        // 2^53 + 1 cents: not representable as f64.
        assert_eq!(money(decimal("90071992547409.93")), "90,071,992,547,409.93");
    }

    #[test]
    fn counts_have_thousands_separators_and_no_decimals() {
        assert_eq!(count(decimal("1665")), "1,665");
        assert_eq!(count(decimal("100")), "100");
        assert_eq!(count(decimal("1000000")), "1,000,000");
    }

    #[test]
    fn change_is_an_arrow_and_a_percentage_with_one_decimal() {
        assert_eq!(change(decimal("-11.66")), ("▼ 11.7 %".to_string(), Direction::Down));
        assert_eq!(change(decimal("24.7")), ("▲ 24.7 %".to_string(), Direction::Up));
        assert_eq!(change(decimal("0.04")), ("= 0.0 %".to_string(), Direction::Flat));
        assert_eq!(change(decimal("-0.04")), ("= 0.0 %".to_string(), Direction::Flat));
        assert_eq!(change(decimal("1250")), ("▲ 1,250.0 %".to_string(), Direction::Up));
    }

    #[test]
    fn periods_read_in_words() {
        assert_eq!(month_against_previous(date(2022, 9, 1)), "September 2022 vs August 2022");
        assert_eq!(month_against_previous(date(2023, 1, 1)), "January 2023 vs December 2022");
        assert_eq!(months(date(2022, 7, 1), date(2022, 9, 1)), "July – September 2022");
        assert_eq!(months(date(2022, 11, 1), date(2023, 1, 1)), "November 2022 – January 2023");
    }

    #[test]
    fn dates_carry_their_year() {
        assert_eq!(day(date(2022, 8, 29)), "29 Aug 2022");
        let at = date(2022, 10, 4).and_hms_opt(13, 20, 0).unwrap();
        assert_eq!(moment(at), "Tuesday 4 October 2022, 13:20");
    }
}
