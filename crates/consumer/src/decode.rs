//! A Kafka record → an [`OrderRecord`], or the [`DeadLetter`] it becomes.
//!
//! Decoding is pure and happens before any transaction, so a batch's
//! undecodable records are known before the database is touched.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use rdkafka::message::{Headers, Message};
use schema::columns::STANDARD_COLUMNS_JSON;
use schema::{DecodeError, FoundProvenance, OrderMessage, ProvenanceError};

use crate::batch::{OrderRecord, Source};
use crate::dead_letters::{reasons, DeadLetter};
use crate::kept::KeptRecord;
use crate::storable::storable;

/// One record of a batch, decoded or not.
#[derive(Debug)]
pub struct Decoded {
    /// The record as read from Kafka (for dead letters and positions),
    /// copied once.
    pub message: KeptRecord,
    /// The order, or why it cannot be one.
    pub record: Result<OrderRecord, DeadLetter>,
}

/// Decodes one Kafka record on its own.
pub fn decode(message: &impl Message) -> Decoded {
    Decoder::default().decode(message)
}

/// Decodes the records of a batch. Consecutive records mostly come from one
/// file, so they share its name ([`Source::file`]) rather than each
/// allocating a copy: one of the per-record allocations that kept the
/// consumer in `malloc`.
#[derive(Debug, Default)]
pub struct Decoder {
    /// The source file of the last record decoded.
    last_file: Option<Arc<str>>,
}

impl Decoder {
    /// Decodes one Kafka record, read where librdkafka holds it, and keeps
    /// a copy of it (see [`KeptRecord`]).
    pub fn decode(&mut self, message: &impl Message) -> Decoded {
        let record = self.decode_record(message);
        Decoded { message: KeptRecord::of(message), record }
    }

    /// The file's name, escaped (a NUL would make PostgreSQL refuse the row,
    /// see `storable`), shared with the previous record's when equal.
    fn file_name(&mut self, found: &str) -> Arc<str> {
        let name = storable(found);
        match &self.last_file {
            Some(last) if **last == *name => Arc::clone(last),
            _ => Arc::clone(self.last_file.insert(Arc::from(name.as_ref()))),
        }
    }

    #[allow(clippy::result_large_err)] // built once per bad record, not worth a box per good one
    fn decode_record(&mut self, message: &impl Message) -> Result<OrderRecord, DeadLetter> {
        let payload = message.payload().unwrap_or_default();
        let decoded = OrderMessage::decode(payload).map_err(|error| {
            let reason = match error {
                DecodeError::UnknownVersion { .. } => reasons::UNKNOWN_SCHEMA_VERSION,
                DecodeError::Malformed(_) => reasons::UNDECODABLE_VALUE,
            };
            DeadLetter::from_message(message, reason, clients::postgres::describe(&error))
        })?;
        let provenance = FoundProvenance::find(clients::headers::header_pairs(message.headers()));
        let read_at = read_time(provenance.read_at_ms().ok(), message.timestamp().to_millis(), Utc::now());
        let source = Source {
            file: self.file_name(provenance.source_file().unwrap_or_default()),
            line: stored_number(provenance.line()),
            offset: stored_number(provenance.byte_offset()),
            read_at,
            version: source_version(provenance.source_version().ok()),
            // Absent: the standard header (see `headers::COLUMNS`).
            columns: Some(match provenance.columns().ok().flatten() {
                Some(columns) => Cow::Owned(columns.to_string()),
                None => Cow::Borrowed(STANDARD_COLUMNS_JSON),
            }),
        };
        // Escaped like the source file: a NUL would make `jsonb` refuse the row.
        let extra = decoded
            .extra
            .into_iter()
            .map(|(name, value)| (storable(&name).into_owned(), storable(&value).into_owned()))
            .collect();
        Ok(OrderRecord {
            order: decoded.order,
            flags: decoded.flags,
            extra,
            source,
            partition: message.partition(),
            offset: message.offset(),
        })
    }
}

/// What a record weighs against `--batch-max-bytes`: its key, value and
/// headers (names and values). Headers count because any producer may send
/// wide ones: a wide export's `columns` header is as large as its value.
pub fn record_bytes(message: &impl Message) -> usize {
    let headers = message
        .headers()
        .map_or(0, |headers| headers.iter().map(|header| header.key.len() + header.value.map_or(0, <[u8]>::len)).sum());
    message.payload().map_or(0, <[u8]>::len) + message.key().map_or(0, <[u8]>::len) + headers
}

/// How far past the consumer's clock a read time may lie: producers' clocks
/// drift, but not by a day (NTP is required, see docs/design.md).
pub const READ_TIME_FUTURE_TOLERANCE: TimeDelta = TimeDelta::days(1);

/// When the producer read the record: the `read_at_ms` header if it is a
/// plausible time, else the Kafka record's timestamp if that is, else `now`.
///
/// Plausible is from the Unix epoch to `now` + [`READ_TIME_FUTURE_TOLERANCE`].
/// An earlier time may be one PostgreSQL refuses (before 4713 BC), and a
/// later one, stored, would stay the newest `read_at` for good and hide the
/// pipeline's staleness (`pipeline_freshness`). The order itself is valid
/// either way: only its provenance is approximated, never the order lost.
pub fn read_time(header_ms: Option<i64>, kafka_timestamp_ms: Option<i64>, now: DateTime<Utc>) -> DateTime<Utc> {
    let plausible = |time: &DateTime<Utc>| *time >= DateTime::UNIX_EPOCH && *time <= now + READ_TIME_FUTURE_TOLERANCE;
    let from_ms = |ms: i64| DateTime::<Utc>::from_timestamp_millis(ms).filter(plausible);
    header_ms.and_then(from_ms).or_else(|| kafka_timestamp_ms.and_then(from_ms)).unwrap_or(now)
}

/// The `source_version` header as a version: absent or unreadable is 0, the
/// oldest, so that a versioned record always wins over an unversioned one.
pub fn source_version(header: Option<i64>) -> i64 {
    header.filter(|version| *version >= 0).unwrap_or(0)
}

/// A line or byte offset for its `bigint` column: absent, unreadable or
/// past `i64::MAX` is 0, as for a record from before these headers.
fn stored_number(header: Result<u64, ProvenanceError>) -> i64 {
    header.ok().and_then(|number| i64::try_from(number).ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, OwnedMessage, Timestamp};
    use schema::message::headers;

    /// A `read_at_ms` header's value as the decoder reads it.
    fn ms(value: &str) -> Option<i64> {
        FoundProvenance::find([(headers::READ_AT_MS, Some(value.as_bytes()))]).read_at_ms().ok()
    }

    /// A `source_version` header's value as the decoder reads it.
    fn version(value: &str) -> Option<i64> {
        FoundProvenance::find([(headers::SOURCE_VERSION, Some(value.as_bytes()))]).source_version().ok()
    }

    fn message(payload: &[u8], version: Option<&str>) -> OwnedMessage {
        let mut headers = OwnedHeaders::new().insert(Header { key: headers::SOURCE_FILE, value: Some("a.csv") });
        if let Some(version) = version {
            headers = headers.insert(Header { key: headers::SOURCE_VERSION, value: Some(version) });
        }
        with_headers(payload, headers)
    }

    /// A record of the orders topic at partition 1, offset 5.
    fn with_headers(payload: &[u8], headers: OwnedHeaders) -> OwnedMessage {
        OwnedMessage::new(Some(payload.to_vec()), None, "orders".into(), Timestamp::NotAvailable, 1, 5, Some(headers))
    }

    const ORDER: &[u8] = br#"{"schema_version":1,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5","flags":["zero_totals"]}"#;

    #[test]
    fn an_order_decodes_with_its_version_and_flags() {
        let record = decode(&message(ORDER, Some("1099511627776"))).record.unwrap();
        assert_eq!(record.order.id, 7);
        assert_eq!(record.source.version, 1 << 40);
        assert_eq!(record.flags, vec![schema::Flag::ZeroTotals]);
        assert_eq!((record.partition, record.offset), (1, 5));
    }

    #[test]
    fn a_version_3_order_reads_its_packed_provenance() {
        const VERSION_3: &[u8] = br#"{"schema_version":3,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5"}"#;
        let headers = OwnedHeaders::new().insert(Header {
            key: headers::PROVENANCE,
            value: Some("42 3917 1099511631693 1764374400123 fp in box/a.csv"),
        });
        let record = decode(&with_headers(VERSION_3, headers)).record.unwrap();
        let source = &record.source;
        assert_eq!((&*source.file, source.line, source.offset), ("in box/a.csv", 42, 3917));
        assert_eq!((source.version, source.read_at.timestamp_millis()), (1_099_511_631_693, 1_764_374_400_123));
    }

    #[test]
    fn extra_values_and_the_header_travel_with_the_order() {
        const WITH_EXTRA: &[u8] = br#"{"schema_version":2,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5","extra":{"currency":"EUR","note":"a\u0000b"}}"#;
        let headers = OwnedHeaders::new()
            .insert(Header { key: headers::SOURCE_FILE, value: Some("a.csv") })
            .insert(Header { key: headers::COLUMNS, value: Some(r#"["id","currency"]"#) });
        let record = decode(&with_headers(WITH_EXTRA, headers)).record.unwrap();
        let extra: Vec<_> = record.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(extra, [("currency", "EUR"), ("note", "a\\u0000b")], "in file order, NUL escaped");
        assert_eq!(record.source.columns.as_deref(), Some(r#"["id","currency"]"#));
        let plain = decode(&message(ORDER, None)).record.unwrap();
        assert!(plain.extra.is_empty(), "version 1: no extra values");
        assert_eq!(
            plain.source.columns.as_deref(),
            Some(STANDARD_COLUMNS_JSON),
            "no columns header: the standard five, which the producer does not send"
        );
    }

    #[test]
    fn a_record_weighs_its_key_value_and_headers() {
        let headers = OwnedHeaders::new()
            .insert(Header { key: headers::COLUMNS, value: Some(r#"["id","currency"]"#) })
            .insert(Header::<&str> { key: "empty", value: None });
        let message = OwnedMessage::new(
            Some(ORDER.to_vec()),
            Some(b"7".to_vec()),
            "orders".into(),
            Timestamp::NotAvailable,
            1,
            5,
            Some(headers),
        );
        assert_eq!(record_bytes(&message), ORDER.len() + 1 + "columns".len() + 17 + "empty".len());
    }

    #[test]
    fn a_plausible_read_time_is_kept() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().to_utc();
        let read = now - TimeDelta::minutes(5);
        assert_eq!(read_time(ms(&read.timestamp_millis().to_string()), Some(now.timestamp_millis()), now), read);
        let slightly_ahead = (now + TimeDelta::hours(2)).timestamp_millis().to_string();
        assert_eq!(read_time(ms(&slightly_ahead), None, now), now + TimeDelta::hours(2), "a clock a bit ahead");
    }

    #[test]
    fn an_implausible_read_time_falls_back_to_the_kafka_timestamp_then_now() {
        let now = DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().to_utc();
        let kafka = now - TimeDelta::seconds(1);
        let unusable = [
            "99999999999999999", // past what chrono represents
            "-1000000000000000", // year -29,719: before PostgreSQL's 4713 BC
            "6250000000000000",  // year 200,000: would pin the newest read time
            "-1",                // before the Unix epoch
            "9223372036854775807",
            "soon",
            "",
        ];
        for header in unusable {
            assert_eq!(read_time(ms(header), Some(kafka.timestamp_millis()), now), kafka, "{header}");
            assert_eq!(read_time(ms(header), Some(i64::MIN), now), now, "{header}, no usable timestamp");
        }
        assert_eq!(read_time(None, None, now), now);
    }

    #[test]
    fn a_missing_or_bad_version_is_the_oldest() {
        assert_eq!(source_version(None), 0);
        assert_eq!(source_version(version("x")), 0);
        assert_eq!(source_version(version("-4")), 0);
        assert_eq!(source_version(version("12")), 12);
        assert_eq!(source_version(version(" 12 ")), 12, "surrounding spaces are allowed, as before");
    }

    #[test]
    fn a_nul_in_the_source_file_header_is_escaped_and_the_order_kept() {
        let headers = OwnedHeaders::new().insert(Header { key: headers::SOURCE_FILE, value: Some("a\0.csv") });
        assert_eq!(&*decode(&with_headers(ORDER, headers)).record.unwrap().source.file, "a\\u0000.csv");
    }

    #[test]
    fn records_of_one_file_in_a_row_share_its_name() {
        let from = |file: &str| OwnedHeaders::new().insert(Header { key: headers::SOURCE_FILE, value: Some(file) });
        let mut decoder = Decoder::default();
        let mut file_of = |file: &str| decoder.decode(&with_headers(ORDER, from(file))).record.unwrap().source.file;
        let (first, second, other, again) = (file_of("a.csv"), file_of("a.csv"), file_of("b.csv"), file_of("a.csv"));
        assert!(Arc::ptr_eq(&first, &second), "the second record reuses the first's name");
        assert_eq!(
            (&*other, &*again),
            ("b.csv", "a.csv"),
            "another file gets its own name, and the first its own again"
        );
        assert!(!Arc::ptr_eq(&first, &other));
    }

    #[test]
    fn the_standard_header_is_borrowed_not_copied() {
        let plain = decode(&message(ORDER, None)).record.unwrap();
        assert!(matches!(plain.source.columns, Some(Cow::Borrowed(_))), "{:?}", plain.source.columns);
    }

    #[test]
    fn a_nul_in_a_json_string_becomes_a_dead_letter_whose_text_holds_no_nul() {
        let value = br#"{"schema_version":1,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"1","shipment_total":"2","flags":["zero\u0000"]}"#;
        let letter = decode(&message(value, None)).record.unwrap_err();
        assert_eq!(letter.reason, reasons::UNDECODABLE_VALUE);
        assert!(letter.message.contains("zero\\u0000"), "the decoder's message quotes the flag: {}", letter.message);
        assert!(!letter.message.contains('\0') && !letter.source.contains('\0'));
        assert_eq!(letter.payload, value, "the payload stays exact");
    }

    #[test]
    fn garbage_and_unknown_versions_become_dead_letters_with_their_reason() {
        let garbage = decode(&message(b"not json", None)).record.unwrap_err();
        assert_eq!(garbage.reason, reasons::UNDECODABLE_VALUE);
        let future = decode(&message(br#"{"schema_version":9}"#, None)).record.unwrap_err();
        assert_eq!(future.reason, reasons::UNKNOWN_SCHEMA_VERSION);
    }
}
