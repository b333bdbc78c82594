//! One CSV record's fields → a validated [`Order`], or the reason it is not one.
//!
//! The rules, which docs/design.md repeats for users:
//! - exactly as many fields as the header;
//! - `id` and `user_id`: positive integers (64-bit);
//! - `completed_at`: `YYYY-MM-DD HH:MM`, with optional seconds and fraction,
//!   `T` or a space between date and time, and an optional UTC offset (`Z`,
//!   `+02`, `+0200`, `+02:00`). Without an offset the time is taken as UTC.
//!   It may not lie more than [`MAX_FUTURE`] ahead of the time of reading;
//! - `item_total`, `shipment_total`: plain decimals (`39.14`, `2.5`, `0`), not
//!   negative, at most two decimal places, below 10¹⁰ (PostgreSQL
//!   `NUMERIC(12,2)`).
//!
//! Surrounding white space in a field is ignored.

use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use thiserror::Error;

use crate::{Columns, Order};

/// How far in the future a completion time may lie: clocks of shop servers and
/// of this pipeline differ, orders from tomorrow do not exist.
pub const MAX_FUTURE: Duration = Duration::days(1);

/// Integer digits of the largest amount `NUMERIC(12,2)` holds, 9 999 999 999.99.
const MAX_INTEGER_DIGITS: usize = 10;

/// Why a record is not a valid order: a bounded set, used as the metric label
/// and the dead-letter header, so dashboards can group by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectionKind {
    /// The header itself cannot be read; every record of the file gets this.
    BadHeader,
    /// Not as many fields as the header has.
    FieldCount,
    /// `id` or `user_id` is not a positive integer.
    InvalidId,
    /// `completed_at` is not a timestamp in an accepted form.
    InvalidTimestamp,
    /// `completed_at` lies more than [`MAX_FUTURE`] ahead.
    FutureTimestamp,
    /// A total is not a plain decimal number, or is too large.
    InvalidAmount,
    /// A total is below zero.
    NegativeAmount,
    /// A total has more than two decimal places: it is not an amount of money.
    TooManyDecimals,
    /// The record is longer than the configured limit.
    RecordTooLong,
    /// The record's bytes are not UTF-8.
    InvalidUtf8,
    /// Kafka refused the record for good (too large for the topic, an
    /// invalid record): the message says what Kafka answered.
    RefusedByKafka,
}

impl RejectionKind {
    /// Every kind, for pre-registering metric labels.
    pub const ALL: [RejectionKind; 11] = [
        RejectionKind::BadHeader,
        RejectionKind::FieldCount,
        RejectionKind::InvalidId,
        RejectionKind::InvalidTimestamp,
        RejectionKind::FutureTimestamp,
        RejectionKind::InvalidAmount,
        RejectionKind::NegativeAmount,
        RejectionKind::TooManyDecimals,
        RejectionKind::RecordTooLong,
        RejectionKind::InvalidUtf8,
        RejectionKind::RefusedByKafka,
    ];

    /// The stable snake_case name used in headers, metrics and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::BadHeader => "bad_header",
            RejectionKind::FieldCount => "field_count",
            RejectionKind::InvalidId => "invalid_id",
            RejectionKind::InvalidTimestamp => "invalid_timestamp",
            RejectionKind::FutureTimestamp => "future_timestamp",
            RejectionKind::InvalidAmount => "invalid_amount",
            RejectionKind::NegativeAmount => "negative_amount",
            RejectionKind::TooManyDecimals => "too_many_decimals",
            RejectionKind::RecordTooLong => "record_too_long",
            RejectionKind::InvalidUtf8 => "invalid_utf8",
            RejectionKind::RefusedByKafka => "refused_by_kafka",
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record that is not a valid order: what kind of problem, and a message a
/// person can act on (it names the field and the offending value).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind}: {message}")]
pub struct Rejection {
    /// The bounded category.
    pub kind: RejectionKind,
    /// The human explanation.
    pub message: String,
}

impl Rejection {
    /// A rejection of the given kind.
    pub fn new(kind: RejectionKind, message: impl Into<String>) -> Self {
        Rejection { kind, message: message.into() }
    }
}

/// Parses and validates one record's fields, laid out as `columns` says.
///
/// `now` is the time of reading; it bounds how far in the future an order may
/// be. It is a parameter so that the result depends on the inputs alone.
pub fn parse_order(fields: &[&str], columns: &Columns, now: DateTime<Utc>) -> Result<Order, Rejection> {
    if fields.len() != columns.width {
        return Err(Rejection::new(
            RejectionKind::FieldCount,
            format!("expected {} fields, found {}", columns.width, fields.len()),
        ));
    }
    let completed_at = parse_timestamp(fields[columns.completed_at])?;
    if completed_at > now + MAX_FUTURE {
        return Err(Rejection::new(
            RejectionKind::FutureTimestamp,
            format!("completed_at {completed_at} is more than a day in the future"),
        ));
    }
    Ok(Order {
        id: parse_id("id", fields[columns.id])?,
        user_id: parse_id("user_id", fields[columns.user_id])?,
        completed_at,
        item_total: parse_money("item_total", fields[columns.item_total])?,
        shipment_total: parse_money("shipment_total", fields[columns.shipment_total])?,
    })
}

fn parse_id(field: &str, raw: &str) -> Result<i64, Rejection> {
    let value = raw.trim();
    let invalid = || Rejection::new(RejectionKind::InvalidId, format!("{field} `{value}` is not a positive integer"));
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match value.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(invalid()),
    }
}

/// Parses an amount of money: a plain decimal, not negative, at most two
/// decimal places, within `NUMERIC(12,2)`.
///
/// The text is read digit by digit, never handed to a decimal parser that
/// rounds: `rust_decimal` keeps at most 28 decimals and silently rounds the
/// rest, so `0.000…0001` with 29 decimals would have become `0.00`.
pub fn parse_money(field: &str, raw: &str) -> Result<Decimal, Rejection> {
    let value = raw.trim();
    let digits = PlainDecimal::read(value).ok_or_else(|| {
        Rejection::new(RejectionKind::InvalidAmount, format!("{field} `{value}` is not a decimal number"))
    })?;
    if digits.negative && !digits.is_zero() {
        return Err(Rejection::new(RejectionKind::NegativeAmount, format!("{field} {value} is negative")));
    }
    if digits.significant_fraction().len() > 2 {
        return Err(Rejection::new(
            RejectionKind::TooManyDecimals,
            format!("{field} {value} has more than two decimal places"),
        ));
    }
    digits.cents().map(|cents| Decimal::new(cents, 2)).ok_or_else(|| {
        Rejection::new(RejectionKind::InvalidAmount, format!("{field} {value} does not fit NUMERIC(12,2)"))
    })
}

/// The parts of a plain decimal's text (`-12.50`, `.5`, `7.`), unconverted.
struct PlainDecimal<'a> {
    negative: bool,
    /// Digits before the point, leading zeros removed.
    integer: &'a str,
    /// Digits after the point, as written.
    fraction: &'a str,
}

impl<'a> PlainDecimal<'a> {
    /// Splits `value` into sign, integer and fraction digits; `None` unless it
    /// is an optional `-`, digits, and at most one point, with a digit somewhere.
    fn read(value: &'a str) -> Option<Self> {
        let (negative, unsigned) = match value.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, value),
        };
        let (integer, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let all_digits = |text: &str| text.bytes().all(|b| b.is_ascii_digit());
        if integer.is_empty() && fraction.is_empty() || !all_digits(integer) || !all_digits(fraction) {
            return None;
        }
        Some(PlainDecimal { negative, integer: integer.trim_start_matches('0'), fraction })
    }

    fn is_zero(&self) -> bool {
        self.integer.is_empty() && self.significant_fraction().is_empty()
    }

    /// The fraction without trailing zeros: `1.500` has one decimal that counts.
    fn significant_fraction(&self) -> &'a str {
        self.fraction.trim_end_matches('0')
    }

    /// The amount in cents, if it fits `NUMERIC(12,2)`; the fraction must
    /// have at most two significant digits.
    fn cents(&self) -> Option<i64> {
        if self.integer.len() > MAX_INTEGER_DIGITS {
            return None;
        }
        let fraction = self.significant_fraction();
        let digits = self.integer.bytes().chain(fraction.bytes()).chain(std::iter::repeat_n(b'0', 2 - fraction.len()));
        Some(digits.fold(0i64, |cents, digit| cents * 10 + i64::from(digit - b'0')))
    }
}

/// Parses a completion time in any accepted form (see the module doc) to UTC.
pub fn parse_timestamp(raw: &str) -> Result<DateTime<Utc>, Rejection> {
    let value = raw.trim();
    parse_plain_timestamp(value).or_else(|| parse_formatted_timestamp(value)).ok_or_else(|| {
        Rejection::new(
            RejectionKind::InvalidTimestamp,
            format!("completed_at `{value}` is not a timestamp like 2022-07-01 00:19[:05][+02:00]"),
        )
    })
}

/// Reads a trimmed completion time in any accepted form with chrono's
/// format strings; the general (and slow) path.
fn parse_formatted_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let normalised = normalise_timestamp(value);
    const WITH_OFFSET: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%d %H:%M%#z"];
    const WITHOUT_OFFSET: [&str; 2] = ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M"];
    WITH_OFFSET
        .iter()
        .find_map(|format| DateTime::parse_from_str(&normalised, format).ok())
        .map(|time| time.with_timezone(&Utc))
        .or_else(|| {
            WITHOUT_OFFSET
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(&normalised, format).ok())
                .map(|naive| naive.and_utc())
        })
}

/// The export's own form, `YYYY-MM-DD HH:MM[:SS]` (or with `T`), without
/// offset or fraction, read by hand: nearly every record has it, and chrono's
/// format-string parser, tried with up to four formats, cost a tenth of the
/// producer's CPU. `None` for anything else (including invalid dates and a
/// leap second), which the general parser then reads or rejects exactly as
/// before, so the result never differs from the general path.
fn parse_plain_timestamp(value: &str) -> Option<DateTime<Utc>> {
    let bytes = value.as_bytes();
    let shape_ok = matches!(bytes.len(), 16 | 19)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b' ' | b'T')
        && bytes[13] == b':'
        && (bytes.len() == 16 || bytes[16] == b':');
    if !shape_ok {
        return None;
    }
    let number = |range: std::ops::Range<usize>| {
        bytes[range].iter().try_fold(0u32, |n, b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
    };
    let second = if bytes.len() == 19 { number(17..19)? } else { 0 };
    if second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(number(0..4)? as i32, number(5..7)?, number(8..10)?)?;
    Some(date.and_hms_opt(number(11..13)?, number(14..16)?, second)?.and_utc())
}

/// `2022-07-01T00:19Z` → `2022-07-01 00:19+00:00`, so one set of formats
/// covers both the export's form and ISO 8601.
fn normalise_timestamp(value: &str) -> String {
    let mut normalised = value.replacen('T', " ", 1);
    if normalised.ends_with('Z') || normalised.ends_with('z') {
        normalised.pop();
        normalised.push_str("+00:00");
    }
    normalised
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2022, 9, 1, 0, 0, 0).unwrap()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn parse(line: &str) -> Result<Order, Rejection> {
        let fields: Vec<&str> = line.split(',').collect();
        parse_order(&fields, &Columns::standard(), now())
    }

    #[test]
    fn seed_line_parses_to_exact_values() {
        let order = parse("236777,7258,2022-07-01 00:19,39.14,2.5").unwrap();
        assert_eq!(
            order,
            Order {
                id: 236777,
                user_id: 7258,
                completed_at: utc(2022, 7, 1, 0, 19, 0),
                item_total: Decimal::new(3914, 2),
                shipment_total: Decimal::new(25, 1),
            }
        );
    }

    #[test]
    fn every_accepted_timestamp_form_parses() {
        let cases = [
            ("2022-07-01 00:19", utc(2022, 7, 1, 0, 19, 0)),
            ("2022-07-01 00:19:05", utc(2022, 7, 1, 0, 19, 5)),
            ("2022-07-01T00:19", utc(2022, 7, 1, 0, 19, 0)),
            ("2022-07-01T00:19:05", utc(2022, 7, 1, 0, 19, 5)),
            ("2022-07-01T00:19:05Z", utc(2022, 7, 1, 0, 19, 5)),
            ("2022-07-01T02:19:05+02:00", utc(2022, 7, 1, 0, 19, 5)),
            ("2022-07-01T02:19+02:00", utc(2022, 7, 1, 0, 19, 0)),
            ("2022-07-01 02:19:05+0200", utc(2022, 7, 1, 0, 19, 5)),
            ("2022-06-30T23:19:05-01", utc(2022, 7, 1, 0, 19, 5)),
            (" 2022-07-01 00:19 ", utc(2022, 7, 1, 0, 19, 0)),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_timestamp(raw), Ok(expected), "{raw}");
        }
        let fractional = parse_timestamp("2022-07-01T00:19:05.250Z").unwrap();
        assert_eq!(fractional.timestamp_millis(), utc(2022, 7, 1, 0, 19, 5).timestamp_millis() + 250);
    }

    #[test]
    fn plain_form_reads_exactly_as_the_general_parser() {
        let mut cases: Vec<String> = [
            "2022-07-01 00:19",
            "2022-07-01T00:19",
            "2022-07-01 00:19:05",
            "2022-07-01T23:59:59",
            "0000-01-01 00:00",
            "9999-12-31 23:59",
            "2024-02-29 12:00",
            "2023-02-29 12:00",
            "2022-13-01 00:19",
            "2022-00-10 00:19",
            "2022-07-32 00:19",
            "2022-07-01 24:00",
            "2022-07-01 00:60",
            "2022-07-01 00:19:60",
            "2022-07-01 00:19:61",
            "2022-07-01x00:19",
            "2022-07-01 00-19",
            "2022-07-01 00:19-05",
            "2022-07-01 0a:19",
            "+022-07-01 00:19",
            "2022-07-01 00:19:5 ",
            "2022-07-01 00:1",
            "2022-7-01 00:19:05",
        ]
        .map(String::from)
        .to_vec();
        for (month, day, hour, minute) in [(1, 1, 0, 0), (6, 15, 12, 30), (12, 31, 23, 59), (2, 28, 7, 5)] {
            cases.push(format!("2022-{month:02}-{day:02} {hour:02}:{minute:02}"));
            cases.push(format!("1999-{month:02}-{day:02}T{hour:02}:{minute:02}:{minute:02}"));
        }
        for case in &cases {
            let plain = parse_plain_timestamp(case);
            if plain.is_some() {
                assert_eq!(plain, parse_formatted_timestamp(case), "{case}");
            }
            assert_eq!(parse_timestamp(case).ok(), parse_formatted_timestamp(case.trim()), "{case}");
        }
        assert!(parse_plain_timestamp("2022-07-01 00:19").is_some(), "the export's form takes the fast path");
    }

    #[test]
    fn malformed_timestamps_are_rejected() {
        for raw in ["", "2022-07-01", "01/07/2022 00:19", "2022-13-01 00:19", "2022-07-01 25:00", "yesterday"] {
            let rejection = parse_timestamp(raw).unwrap_err();
            assert_eq!(rejection.kind, RejectionKind::InvalidTimestamp, "{raw}");
        }
    }

    #[test]
    fn timestamp_more_than_a_day_ahead_is_rejected() {
        let rejection = parse("1,1,2022-09-02 00:01,10.00,2.5").unwrap_err();
        assert_eq!(rejection.kind, RejectionKind::FutureTimestamp);
        assert!(parse("1,1,2022-09-01 23:59,10.00,2.5").is_ok());
    }

    #[test]
    fn decimals_keep_their_exact_value() {
        assert_eq!(parse_money("item_total", "39.14"), Ok(Decimal::new(3914, 2)));
        assert_eq!(parse_money("item_total", "2.5"), Ok(Decimal::new(25, 1)));
        assert_eq!(parse_money("item_total", "0"), Ok(Decimal::ZERO));
        assert_eq!(parse_money("item_total", "7.10"), Ok(Decimal::new(710, 2)));
        assert_eq!(parse_money("item_total", "9999999999.99"), Ok(Decimal::new(999_999_999_999, 2)));
    }

    #[test]
    fn bad_amounts_are_rejected_with_their_kind() {
        let cases = [
            ("-1.00", RejectionKind::NegativeAmount),
            ("1.005", RejectionKind::TooManyDecimals),
            ("abc", RejectionKind::InvalidAmount),
            ("", RejectionKind::InvalidAmount),
            ("1e3", RejectionKind::InvalidAmount),
            ("1,5", RejectionKind::InvalidAmount),
            ("NaN", RejectionKind::InvalidAmount),
            ("1.2.3", RejectionKind::InvalidAmount),
            ("10000000000", RejectionKind::InvalidAmount),
        ];
        for (raw, kind) in cases {
            assert_eq!(parse_money("item_total", raw).map_err(|r| r.kind), Err(kind), "{raw}");
        }
    }

    #[test]
    fn more_decimals_than_rust_decimal_keeps_are_rejected_not_rounded() {
        // 29 and more decimals: rust_decimal would round these to 0.00 / 1.00.
        let tiny = format!("0.{}1", "0".repeat(28));
        let almost_one = format!("0.{}", "9".repeat(40));
        let long_zero_tail = format!("1.5{}1", "0".repeat(30));
        for raw in [tiny.as_str(), almost_one.as_str(), long_zero_tail.as_str()] {
            assert_eq!(
                parse_money("item_total", raw).map_err(|r| r.kind),
                Err(RejectionKind::TooManyDecimals),
                "{raw}"
            );
        }
    }

    #[test]
    fn any_number_of_trailing_zeros_is_exact() {
        let padded = format!("12.5{}", "0".repeat(60));
        assert_eq!(parse_money("item_total", &padded).unwrap().to_string(), "12.50");
        let leading = format!("{}7.25", "0".repeat(60));
        assert_eq!(parse_money("item_total", &leading).unwrap().to_string(), "7.25");
    }

    #[test]
    fn plain_decimal_edges_keep_their_old_meaning() {
        let accepted = [(".5", "0.50"), ("5.", "5.00"), ("-0", "0.00"), ("-.00", "0.00"), (" 3 ", "3.00")];
        for (raw, canonical) in accepted {
            assert_eq!(parse_money("item_total", raw).unwrap().to_string(), canonical, "{raw}");
        }
        let invalid = [".", "-", "--1", "1-", "+1", "1_000", " ", "1 000", "0x10", "١"];
        for raw in invalid {
            assert_eq!(parse_money("item_total", raw).map_err(|r| r.kind), Err(RejectionKind::InvalidAmount), "{raw}");
        }
        assert_eq!(parse_money("item_total", "-0.001").map_err(|r| r.kind), Err(RejectionKind::NegativeAmount));
        let huge = "9".repeat(40);
        assert_eq!(parse_money("item_total", &huge).map_err(|r| r.kind), Err(RejectionKind::InvalidAmount));
    }

    #[test]
    fn trailing_zero_decimals_are_not_too_many() {
        assert_eq!(parse_money("item_total", "1.500"), Ok(Decimal::new(1500, 3)));
    }

    #[test]
    fn money_is_returned_canonical_never_with_three_decimals() {
        // Regression: the `line` fuzz target found `"1.050"` kept as scale 3.
        let amount = parse_money("item_total", "1.050").unwrap();
        assert_eq!((amount.to_string(), amount.scale()), ("1.05".to_string(), 2));
        assert_eq!(parse_money("item_total", "2.5").unwrap().to_string(), "2.50");
        assert_eq!(parse_money("item_total", "6").unwrap().to_string(), "6.00");
        assert_eq!(parse_money("item_total", "-0.00").unwrap().to_string(), "0.00");
    }

    #[test]
    fn ids_must_be_positive_integers() {
        for line in [
            "0,1,2022-07-01 00:19,1,1",
            "-5,1,2022-07-01 00:19,1,1",
            "x,1,2022-07-01 00:19,1,1",
            "1,1.5,2022-07-01 00:19,1,1",
            "99999999999999999999,1,2022-07-01 00:19,1,1",
        ] {
            assert_eq!(parse(line).map_err(|r| r.kind), Err(RejectionKind::InvalidId), "{line}");
        }
    }

    #[test]
    fn wrong_field_count_is_rejected() {
        let rejection = parse("1,1,2022-07-01 00:19,1").unwrap_err();
        assert_eq!(rejection.kind, RejectionKind::FieldCount);
        assert_eq!(rejection.message, "expected 5 fields, found 4");
    }

    #[test]
    fn reordered_columns_parse_by_name() {
        let columns = Columns::from_header(["shipment_total", "completed_at", "id", "item_total", "user_id"]).unwrap();
        let order = parse_order(&["2.5", "2022-07-01 00:19", "236777", "39.14", "7258"], &columns, now()).unwrap();
        assert_eq!(order.id, 236777);
        assert_eq!(order.user_id, 7258);
        assert_eq!(order.shipment_total, Decimal::new(25, 1));
    }

    #[test]
    fn rejection_kinds_have_distinct_names() {
        let mut names: Vec<_> = RejectionKind::ALL.iter().map(|kind| kind.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RejectionKind::ALL.len());
    }
}
