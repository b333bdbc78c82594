//! A Kafka record → an [`OrderRecord`], or the [`DeadLetter`] it becomes.
//!
//! Decoding is pure and happens before any transaction, so a batch's
//! undecodable records are known before the database is touched.

use chrono::{DateTime, Utc};
use rdkafka::message::{Headers, Message, OwnedMessage};
use schema::message::headers;
use schema::{DecodeError, OrderMessage};

use crate::batch::{OrderRecord, Source};
use crate::dead_letters::{reasons, DeadLetter};

/// One record of a batch, decoded or not.
#[derive(Debug)]
pub struct Decoded {
    /// The record as read from Kafka (for dead letters and positions).
    pub message: OwnedMessage,
    /// The order, or why it cannot be one.
    pub record: Result<OrderRecord, DeadLetter>,
}

/// Decodes one Kafka record.
pub fn decode(message: OwnedMessage) -> Decoded {
    let record = decode_record(&message);
    Decoded { message, record }
}

#[allow(clippy::result_large_err)] // built once per bad record, not worth a box per good one
fn decode_record(message: &OwnedMessage) -> Result<OrderRecord, DeadLetter> {
    let payload = message.payload().unwrap_or_default();
    let decoded = OrderMessage::decode(payload).map_err(|error| {
        let reason = match error {
            DecodeError::UnknownVersion { .. } => reasons::UNKNOWN_SCHEMA_VERSION,
            DecodeError::Malformed(_) => reasons::UNDECODABLE_VALUE,
        };
        DeadLetter::from_message(message, reason, error.to_string())
    })?;
    let header = |name: &str| header_value(message, name);
    let read_at = header(headers::READ_AT_MS)
        .and_then(|ms| ms.parse().ok())
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .or_else(|| message.timestamp().to_millis().and_then(DateTime::<Utc>::from_timestamp_millis))
        .unwrap_or_else(Utc::now);
    let source = Source {
        file: header(headers::SOURCE_FILE).unwrap_or_default().to_string(),
        line: header(headers::LINE).and_then(|v| v.parse().ok()).unwrap_or(0),
        offset: header(headers::BYTE_OFFSET).and_then(|v| v.parse().ok()).unwrap_or(0),
        read_at,
        version: source_version(header(headers::SOURCE_VERSION)),
    };
    Ok(OrderRecord {
        order: decoded.order,
        flags: decoded.flags,
        source,
        partition: message.partition(),
        offset: message.offset(),
    })
}

/// The `source_version` header as a version: absent or unreadable is 0, the
/// oldest, so that a versioned record always wins over an unversioned one.
pub fn source_version(header: Option<&str>) -> i64 {
    header.and_then(|value| value.trim().parse::<i64>().ok()).filter(|version| *version >= 0).unwrap_or(0)
}

fn header_value<'m>(message: &'m OwnedMessage, name: &str) -> Option<&'m str> {
    let headers = message.headers()?;
    headers.iter().filter(|h| h.key == name).last().and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders, Timestamp};

    fn message(payload: &[u8], version: Option<&str>) -> OwnedMessage {
        let mut headers = OwnedHeaders::new().insert(Header { key: headers::SOURCE_FILE, value: Some("a.csv") });
        if let Some(version) = version {
            headers = headers.insert(Header { key: headers::SOURCE_VERSION, value: Some(version) });
        }
        OwnedMessage::new(Some(payload.to_vec()), None, "orders".into(), Timestamp::NotAvailable, 1, 5, Some(headers))
    }

    const ORDER: &[u8] = br#"{"schema_version":1,"id":7,"user_id":3,"completed_at":"2022-07-01T00:19:00Z","item_total":"39.14","shipment_total":"2.5","flags":["zero_totals"]}"#;

    #[test]
    fn an_order_decodes_with_its_version_and_flags() {
        let record = decode(message(ORDER, Some("1099511627776"))).record.unwrap();
        assert_eq!(record.order.id, 7);
        assert_eq!(record.source.version, 1 << 40);
        assert_eq!(record.flags, vec![schema::Flag::ZeroTotals]);
        assert_eq!((record.partition, record.offset), (1, 5));
    }

    #[test]
    fn a_missing_or_bad_version_is_the_oldest() {
        assert_eq!(source_version(None), 0);
        assert_eq!(source_version(Some("x")), 0);
        assert_eq!(source_version(Some("-4")), 0);
        assert_eq!(source_version(Some("12")), 12);
    }

    #[test]
    fn garbage_and_unknown_versions_become_dead_letters_with_their_reason() {
        let garbage = decode(message(b"not json", None)).record.unwrap_err();
        assert_eq!(garbage.reason, reasons::UNDECODABLE_VALUE);
        let future = decode(message(br#"{"schema_version":9}"#, None)).record.unwrap_err();
        assert_eq!(future.reason, reasons::UNKNOWN_SCHEMA_VERSION);
    }
}
