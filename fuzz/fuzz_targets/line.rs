//! Any bytes through the producer's record splitter, header matching and
//! the order validator: the first record is read as the header (with an
//! alias and extra columns kept, as the producer does; the usual header when
//! it is unusable), every record is also tried as a header line. No panic,
//! progress on every record, extra values as many as the kept extra columns,
//! and every accepted order keeps the
//! rules (no negative money, at most two decimals, not more than a day ahead)
//! and reads back identical when written out again as a CSV line. Every
//! money field is also checked against [`reference_money`], a plain
//! reference parser written here, so the parser is never its own oracle.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use schema::records::RecordSplitter;
use schema::parse::{parse_money, parse_order, RejectionKind, MAX_FUTURE};
use schema::{Columns, HeaderRules};

fuzz_target!(|input: &[u8]| {
    let standard = Columns::standard();
    let rules = HeaderRules { aliases: vec!["order_id=id".parse().unwrap()], ..HeaderRules::default() };
    let mut columns: Option<Columns> = None;
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut splitter = RecordSplitter::default();
    let mut rest = input;
    while let Some(record) = splitter.split(rest) {
        assert!(record.consumed > 0 && record.consumed <= rest.len(), "a record consumes input");
        rest = &rest[record.consumed..];
        let Ok(fields) = record.fields.iter().map(|f| std::str::from_utf8(f)).collect::<Result<Vec<&str>, _>>() else {
            continue;
        };
        for field in &fields {
            let found = parse_money("item_total", field).map(|amount| amount.to_string()).map_err(|r| r.kind);
            assert_eq!(found, reference_money(field), "money field {field:?}");
        }
        let _ = Columns::is_header(fields.iter().copied(), &rules);
        let Some(columns) = &columns else {
            let header = Columns::read_header(fields.iter().copied(), &rules);
            if let Ok(header) = &header {
                assert_eq!(header.width, fields.len());
                assert!(header.extra.iter().all(|extra| extra.index < header.width));
            }
            columns = Some(header.unwrap_or_else(|_| standard.clone()));
            continue;
        };
        let Ok(order) = parse_order(&fields, columns, now) else { continue };
        assert_eq!(columns.extra_values(&fields).len(), columns.extra.len(), "one value per kept extra column");
        assert!(order.item_total >= rust_decimal::Decimal::ZERO && order.shipment_total >= rust_decimal::Decimal::ZERO);
        assert!(order.item_total.scale() <= 2 && order.shipment_total.scale() <= 2);
        assert!(order.completed_at <= now + MAX_FUTURE);
        let line = format!(
            "{},{},{},{},{}\n",
            order.id,
            order.user_id,
            order.completed_at.format("%Y-%m-%d %H:%M:%S%.f%:z"),
            order.item_total,
            order.shipment_total
        );
        let again = splitter.split(line.as_bytes()).expect("a written line splits");
        let fields: Vec<&str> = again.fields.iter().map(|f| std::str::from_utf8(f).unwrap()).collect();
        assert_eq!(parse_order(&fields, &standard, now).expect("a written order parses"), order);
    }
});

/// What reading `text` as money must give: its canonical two-decimal text, or
/// the rejection kind. Written as plainly as possible, character by
/// character with 128-bit arithmetic, and independent of the parser's code.
fn reference_money(text: &str) -> Result<String, RejectionKind> {
    let text = text.trim();
    let mut negative = false;
    let mut seen_point = false;
    let mut digits = 0;
    let mut whole: u128 = 0;
    let mut whole_digits = 0;
    let mut decimals: Vec<u8> = Vec::new();
    for (index, c) in text.chars().enumerate() {
        match c {
            '-' if index == 0 => negative = true,
            '.' if !seen_point => seen_point = true,
            '0'..='9' => {
                digits += 1;
                let digit = c as u8 - b'0';
                if seen_point {
                    decimals.push(digit);
                } else {
                    if whole > 0 || digit > 0 {
                        whole_digits += 1;
                    }
                    whole = (whole * 10 + u128::from(digit)) % 1_000_000_000_000_000_000_000;
                }
            }
            _ => return Err(RejectionKind::InvalidAmount),
        }
    }
    if digits == 0 {
        return Err(RejectionKind::InvalidAmount);
    }
    while decimals.last() == Some(&0) {
        decimals.pop();
    }
    let zero = whole_digits == 0 && decimals.is_empty();
    if negative && !zero {
        return Err(RejectionKind::NegativeAmount);
    }
    if decimals.len() > 2 {
        return Err(RejectionKind::TooManyDecimals);
    }
    if whole_digits > 10 {
        return Err(RejectionKind::InvalidAmount);
    }
    decimals.resize(2, 0);
    Ok(format!("{whole}.{}{}", decimals[0], decimals[1]))
}
