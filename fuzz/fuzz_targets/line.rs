//! Any bytes through the producer's record splitter and the order validator:
//! no panic, progress on every record, and every accepted order keeps the
//! rules (no negative money, at most two decimals, not more than a day ahead)
//! and reads back identical when written out again as a CSV line.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use schema::records::RecordSplitter;
use schema::parse::{parse_order, MAX_FUTURE};
use schema::Columns;

fuzz_target!(|input: &[u8]| {
    let columns = Columns::from_header(["id", "user_id", "completed_at", "item_total", "shipment_total"]).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut splitter = RecordSplitter::default();
    let mut rest = input;
    while let Some(record) = splitter.split(rest) {
        assert!(record.consumed > 0 && record.consumed <= rest.len(), "a record consumes input");
        rest = &rest[record.consumed..];
        let Ok(fields) = record.fields.iter().map(|f| std::str::from_utf8(f)).collect::<Result<Vec<&str>, _>>() else {
            continue;
        };
        let Ok(order) = parse_order(&fields, &columns, now) else { continue };
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
        assert_eq!(parse_order(&fields, &columns, now).expect("a written order parses"), order);
    }
});
