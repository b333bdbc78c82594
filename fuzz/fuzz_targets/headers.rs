//! Arbitrary header sets (names, repetitions, sizes, bytes) on a record of
//! the orders topic and of the dead-letter topic, through the consumer's
//! decoder and the rows its side tables are written from: no panic, and
//! nothing PostgreSQL would refuse for a reason no retry can fix. Every read
//! time lies in the plausible range, no readable text holds a NUL, a
//! dead letter's indexed reason is bounded, and every recorded file header
//! is a JSON array of names, one row per file and header.
#![no_main]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use consumer::dead_letters::{DeadLetter, ProducerDeadLetter, REASON_MAX_BYTES};
use consumer::decode::{decode, READ_TIME_FUTURE_TOLERANCE};
use consumer::source_files::file_headers;
use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
use schema::message::headers;

/// The header names the consumer reads: most generated headers use one, so
/// that their values, not their names, are what varies.
const KNOWN: [&str; 12] = [
    headers::SOURCE_FILE,
    headers::LINE,
    headers::BYTE_OFFSET,
    headers::READ_AT_MS,
    headers::SOURCE_FINGERPRINT,
    headers::SOURCE_VERSION,
    headers::FLAGS,
    headers::ERROR_KIND,
    headers::ERROR_MESSAGE,
    headers::COLUMNS,
    headers::STAGE,
    "other",
];

/// A valid order value, so that most inputs reach the side tables.
const ORDER: &[u8] = br#"{"schema_version":2,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5","extra":{"currency":"EUR"}}"#;

/// One header: a known or arbitrary name; absent, arbitrary bytes, a
/// number, or a JSON array of arbitrary names (a `columns` header).
fn header(input: &mut Unstructured<'_>) -> Result<(String, Option<Vec<u8>>)> {
    let name = match input.int_in_range(0..=KNOWN.len())? {
        index if index < KNOWN.len() => KNOWN[index].to_string(),
        _ => input.arbitrary()?,
    };
    let value = match input.int_in_range(0..=3u8)? {
        0 => None,
        1 => Some(input.arbitrary::<Vec<u8>>()?),
        2 => Some(input.arbitrary::<i64>()?.to_string().into_bytes()),
        _ => Some(serde_json::to_vec(&input.arbitrary::<Vec<String>>()?).expect("names serialise")),
    };
    Ok((name, value))
}

/// A record of `topic` with the headers, a valid order value or arbitrary
/// bytes, and an arbitrary Kafka timestamp.
fn record(input: &mut Unstructured<'_>, topic: &str, headers: &[(String, Option<Vec<u8>>)]) -> Result<OwnedMessage> {
    let mut kafka_headers = OwnedHeaders::new();
    for (key, value) in headers {
        kafka_headers = kafka_headers.insert(Header { key, value: value.as_deref() });
    }
    let value = if input.arbitrary()? { ORDER.to_vec() } else { input.arbitrary()? };
    let timestamp = match input.arbitrary::<Option<i64>>()? {
        Some(ms) => Timestamp::CreateTime(ms),
        None => Timestamp::NotAvailable,
    };
    Ok(OwnedMessage::new(Some(value), Some(b"7".to_vec()), topic.into(), timestamp, 0, 1, Some(kafka_headers)))
}

fn assert_storable(what: &str, text: &str) {
    assert!(!text.contains('\0'), "{what} holds a NUL: {text:?}");
}

fn check(input: &mut Unstructured<'_>) -> Result<()> {
    let count = input.int_in_range(0..=16)?;
    let headers: Vec<_> = (0..count).map(|_| header(input)).collect::<Result<_>>()?;
    let mut records = Vec::new();
    for _ in 0..input.int_in_range(1..=3)? {
        let decoded = decode(&record(input, "orders", &headers)?);
        match decoded.record {
            Ok(order) => {
                let read_at = order.source.read_at;
                assert!(read_at >= DateTime::UNIX_EPOCH, "read before 1970: {read_at}");
                assert!(read_at <= Utc::now() + READ_TIME_FUTURE_TOLERANCE, "read in the future: {read_at}");
                assert_storable("source file", &order.source.file);
                records.push(order);
            }
            Err(letter) => check_dead_letter(&letter),
        }
    }

    let recorded = file_headers(&records);
    let mut keys = BTreeSet::new();
    for row in &recorded {
        assert_storable("file", &row.file);
        let names: Vec<String> = serde_json::from_str(&row.columns).expect("a JSON array of names");
        names.iter().for_each(|name| assert_storable("column name", name));
        assert!(keys.insert((row.file.clone(), names)), "one row per file and header: {recorded:?}");
        assert!(records.iter().any(|order| order.source.read_at == row.first_read_at));
    }

    let letter = record(input, "orders.dlq", &headers)?;
    if let Some(letter) = ProducerDeadLetter::from_message(&letter) {
        assert!(letter.reason.len() <= REASON_MAX_BYTES, "an indexed reason of {} bytes", letter.reason.len());
        for (what, text) in [("reason", &letter.reason), ("message", &letter.message), ("source", &letter.source)] {
            assert_storable(what, text);
        }
        letter.origin.file.iter().for_each(|file| assert_storable("origin file", file));
        letter.origin.fingerprint.iter().for_each(|fingerprint| assert_storable("fingerprint", fingerprint));
    }
    Ok(())
}

/// A consumer's dead letter: readable columns storable, headers' JSON too.
fn check_dead_letter(letter: &DeadLetter) {
    assert_storable("source", &letter.source);
    assert_storable("message", &letter.message);
    let json: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&letter.headers_json()).expect("headers as a JSON object");
    for (name, value) in &json {
        assert_storable("header name", name);
        assert_storable("header value", value.as_str().expect("text values"));
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = check(&mut Unstructured::new(data));
});
