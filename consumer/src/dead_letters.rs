//! Records that can never be written: to the `orders.dlq` topic (for other
//! tools) and to the `dead_letters` table (for analysts, in Metabase).
//!
//! The table row is written in the batch's transaction, beside the offsets
//! that move past the record, so it exists exactly once. The topic copy is
//! published and confirmed *before* that commit: a crash in between publishes
//! it again on replay (at least once on the topic, exactly once in the table).

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schema::message::headers;

/// Why the consumer dead-lettered a record: a bounded set, used as the
/// `reason` column, the `error_kind` header and a metric label.
pub mod reasons {
    /// The value is not JSON of an order.
    pub const UNDECODABLE_VALUE: &str = "undecodable_value";
    /// The value claims a layout this build does not read.
    pub const UNKNOWN_SCHEMA_VERSION: &str = "unknown_schema_version";
    /// PostgreSQL refused the row (constraint, overflow).
    pub const REJECTED_BY_DATABASE: &str = "rejected_by_database";
    /// Every reason, for pre-registering metric labels.
    pub const ALL: [&str; 3] = [UNDECODABLE_VALUE, UNKNOWN_SCHEMA_VERSION, REJECTED_BY_DATABASE];
}

/// One record that cannot be written, with everything needed to inspect and
/// redrive it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// `topic/partition/offset`, and ` source_file:line` when known.
    pub source: String,
    /// One of [`reasons`].
    pub reason: &'static str,
    /// The human explanation.
    pub message: String,
    /// The Kafka key, kept so a redriven record lands on the same partition.
    pub key: Option<Vec<u8>>,
    /// The raw value.
    pub payload: Vec<u8>,
    /// The original headers, in order (names may repeat in Kafka).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl DeadLetter {
    /// Captures a Kafka record and why it is dead.
    pub fn from_message(message: &OwnedMessage, reason: &'static str, explanation: String) -> Self {
        let headers: Vec<(String, Option<Vec<u8>>)> = message
            .headers()
            .map(|all| all.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default();
        let text = |name: &str| {
            headers
                .iter()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.as_deref())
                .map(|value| String::from_utf8_lossy(value).into_owned())
        };
        let mut source = format!("{}/{}/{}", message.topic(), message.partition(), message.offset());
        if let (Some(file), Some(line)) = (text(headers::SOURCE_FILE), text(headers::LINE)) {
            source.push_str(&format!(" {file}:{line}"));
        }
        DeadLetter {
            source,
            reason,
            message: explanation,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().unwrap_or_default().to_vec(),
            headers,
        }
    }

    /// The original headers as a JSON object of text values (the last value
    /// wins for a repeated name), for the `headers` column.
    pub fn headers_json(&self) -> String {
        let map: BTreeMap<&str, String> = self
            .headers
            .iter()
            .map(|(key, value)| {
                (key.as_str(), String::from_utf8_lossy(value.as_deref().unwrap_or_default()).into_owned())
            })
            .collect();
        serde_json::to_string(&map).unwrap_or_else(|_| "{}".into())
    }
}

/// Inserts the rows of `dead_letters` (inside the batch transaction).
pub async fn insert_all(client: &impl GenericClient, letters: &[DeadLetter]) -> Result<(), tokio_postgres::Error> {
    if letters.is_empty() {
        return Ok(());
    }
    let statement = client
        .prepare_cached(
            "INSERT INTO dead_letters (source, reason, message, record_key, payload, headers)
             VALUES ($1, $2, $3, $4, $5, ($6::text)::jsonb)",
        )
        .await?;
    for letter in letters {
        let headers = letter.headers_json();
        client
            .execute(
                &statement,
                &[&letter.source, &letter.reason, &letter.message, &letter.key, &letter.payload, &headers],
            )
            .await?;
    }
    Ok(())
}

/// Publishes the dead letters to the dead-letter topic with the original
/// headers plus `error_kind` and `error_message`, and waits until Kafka
/// confirmed every one.
pub async fn publish_all(producer: &FutureProducer, topic: &str, letters: &[DeadLetter]) -> Result<(), KafkaError> {
    let sends = letters.iter().map(|letter| {
        let mut kafka_headers = OwnedHeaders::new();
        for (key, value) in &letter.headers {
            kafka_headers = kafka_headers.insert(Header { key, value: value.as_deref() });
        }
        let kafka_headers = kafka_headers
            .insert(Header { key: headers::ERROR_KIND, value: Some(letter.reason) })
            .insert(Header { key: headers::ERROR_MESSAGE, value: Some(&letter.message) });
        let mut record = FutureRecord::to(topic).payload(&letter.payload).headers(kafka_headers);
        if let Some(key) = &letter.key {
            record = record.key(key);
        }
        producer.send(record, rdkafka::util::Timeout::Never)
    });
    for result in futures::future::join_all(sends).await {
        result.map_err(|(error, _)| error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Timestamp;

    fn message() -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header { key: headers::SOURCE_FILE, value: Some("inbox/a.csv") })
            .insert(Header { key: headers::LINE, value: Some("7") });
        OwnedMessage::new(
            Some(b"oops".to_vec()),
            Some(b"42".to_vec()),
            "orders".into(),
            Timestamp::NotAvailable,
            3,
            99,
            Some(headers),
        )
    }

    #[test]
    fn source_names_the_kafka_position_and_the_csv_line() {
        let letter = DeadLetter::from_message(&message(), reasons::UNDECODABLE_VALUE, "bad".into());
        assert_eq!(letter.source, "orders/3/99 inbox/a.csv:7");
        assert_eq!(letter.key.as_deref(), Some(&b"42"[..]));
        assert_eq!(letter.payload, b"oops");
    }

    #[test]
    fn headers_become_a_json_object_of_text() {
        let letter = DeadLetter::from_message(&message(), reasons::UNDECODABLE_VALUE, "bad".into());
        let json: serde_json::Value = serde_json::from_str(&letter.headers_json()).unwrap();
        assert_eq!(json, serde_json::json!({"source_file": "inbox/a.csv", "line": "7"}));
    }
}
