//! The Kafka side of the producer: one record per order on the orders topic,
//! one per rejected line on the dead-letter topic.
//!
//! The producer is idempotent with `acks=all` and never gives up on a record
//! (`message.timeout.ms=0`): while Kafka is away, records wait in librdkafka's
//! bounded queue and are retried, so a record is only ever confirmed or still
//! pending, never silently dropped.

use std::borrow::Cow;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::message::headers;
use schema::OrderMessage;
use thiserror::Error;

use crate::config::KafkaConfig;
use crate::tailer::{RecordOutcome, TailedRecord};

/// What the Kafka side can fail with.
#[derive(Debug, Error)]
pub enum PublishError {
    /// The client could not be created (a bad setting).
    #[error("cannot create the Kafka client: {0}")]
    Client(#[source] KafkaError),
    /// The SASL password file cannot be read.
    #[error(transparent)]
    Settings(#[from] connect::kafka::KafkaConfigError),
    /// A topic could not be created or checked.
    #[error("cannot create topic {topic}: {source}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        source: KafkaError,
    },
    /// librdkafka refused the record outright (too large, unknown setting…).
    #[error("cannot enqueue the record from {file} at byte {offset}: {source}")]
    Enqueue {
        /// Source file.
        file: String,
        /// Byte offset of the record.
        offset: u64,
        /// The reason.
        source: KafkaError,
    },
}

/// Sends records to the orders and dead-letter topics.
pub struct Publisher {
    producer: FutureProducer,
    config: KafkaConfig,
}

/// The outcome of trying to enqueue one record.
pub enum Enqueued {
    /// On its way; the future resolves when Kafka confirmed or refused it.
    Sent(DeliveryFuture),
    /// Nothing to send (a header).
    Nothing,
    /// librdkafka's queue is full: wait for confirmations, then try again.
    QueueFull,
}

/// Most kilobytes of records librdkafka's queue holds
/// (`queue.buffering.max.kbytes`, 1 GiB by default): with `--max-in-flight`,
/// what bounds the producer's memory while Kafka is slow or away. A full
/// queue makes reading wait, like `--max-in-flight`.
pub const QUEUE_MAX_KBYTES: usize = 256 * 1024;

/// librdkafka settings common to every client of ours (brokers, TLS, SASL).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    kafka.connection.client_config()
}

impl Publisher {
    /// Creates the idempotent producer. `max_in_flight` sizes librdkafka's
    /// queue so that it never holds more than the producer lets it.
    pub fn new(kafka: &KafkaConfig, max_in_flight: usize) -> Result<Self, PublishError> {
        let mut kafka = kafka.clone();
        kafka.connection.load_password_file()?;
        let producer = client_config(&kafka)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", "0")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", (max_in_flight * 2).max(1000).to_string())
            .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES.to_string())
            .create()
            .map_err(PublishError::Client)?;
        Ok(Publisher { producer, config: kafka })
    }

    /// Creates the orders and dead-letter topics if they do not exist yet.
    pub async fn ensure_topics(&self, partitions: i32) -> Result<(), PublishError> {
        let admin: AdminClient<DefaultClientContext> =
            client_config(&self.config).create().map_err(PublishError::Client)?;
        let topics = [&self.config.topic, &self.config.dlq_topic]
            .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&topics, &options)
            .await
            .map_err(|source| PublishError::Topic { topic: self.config.topic.clone(), source })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                // A secured cluster where the producer may only write: the
                // topics are created by whoever set its ACLs.
                Err((
                    topic,
                    RDKafkaErrorCode::TopicAuthorizationFailed | RDKafkaErrorCode::ClusterAuthorizationFailed,
                )) => {
                    tracing::info!(message = "Not allowed to create topics; expecting them to exist.", %topic);
                }
                Err((topic, code)) => return Err(PublishError::Topic { topic, source: KafkaError::AdminOp(code) }),
            }
        }
        Ok(())
    }

    /// Enqueues one record: an order to the orders topic, a rejection with
    /// its original bytes to the dead-letter topic. `file` and `fingerprint`
    /// name its source.
    pub fn enqueue(
        &self,
        file: &str,
        fingerprint: &str,
        record: &TailedRecord,
        read_at_ms: i64,
    ) -> Result<Enqueued, PublishError> {
        let offset = DecimalText::unsigned(record.offset);
        let offset = offset.as_str();
        let line = DecimalText::unsigned(record.line);
        let read_at = DecimalText::signed(read_at_ms);
        let version = DecimalText::signed(record.version);
        let source = OwnedHeaders::new_with_capacity(8)
            .insert(header(headers::SOURCE_FILE, file))
            .insert(header(headers::SOURCE_FINGERPRINT, fingerprint))
            .insert(header(headers::LINE, line.as_str()))
            .insert(header(headers::BYTE_OFFSET, offset))
            .insert(header(headers::SOURCE_VERSION, version.as_str()))
            .insert(header(headers::READ_AT_MS, read_at.as_str()));
        let (topic, key, payload, headers) = match &record.outcome {
            RecordOutcome::Header => return Ok(Enqueued::Nothing),
            RecordOutcome::Order(order, flags) => {
                let message = OrderMessage::new(order.clone(), flags.clone());
                let headers = if flags.is_empty() {
                    source
                } else {
                    let names: Vec<&str> = flags.iter().map(|flag| flag.as_str()).collect();
                    source.insert(header(headers::FLAGS, &names.join(",")))
                };
                (&self.config.topic, message.key(), Cow::Owned(message.encode()), headers)
            }
            RecordOutcome::Rejected(rejection) => {
                let headers = source
                    .insert(header(headers::ERROR_KIND, rejection.kind.as_str()))
                    .insert(header(headers::ERROR_MESSAGE, &rejection.message));
                (&self.config.dlq_topic, format!("{file}:{offset}"), Cow::Borrowed(&record.raw[..]), headers)
            }
        };
        let result =
            self.producer.send_result(FutureRecord::to(topic).key(&key).payload(payload.as_ref()).headers(headers));
        match result {
            Ok(delivery) => Ok(Enqueued::Sent(delivery)),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => Ok(Enqueued::QueueFull),
            Err((source, _)) => Err(PublishError::Enqueue { file: file.to_string(), offset: record.offset, source }),
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header { key, value: Some(value) }
}

/// An integer in decimal, as `to_string` writes it, formatted on the stack:
/// four header values per record each cost an allocation as `String`s.
struct DecimalText {
    /// Room for the longest 64-bit value, `u64::MAX` or `i64::MIN` (20 bytes).
    bytes: [u8; 20],
    /// Where the text starts; it ends at the end of `bytes`.
    start: usize,
}

impl DecimalText {
    fn unsigned(mut value: u64) -> Self {
        let mut text = DecimalText { bytes: [0; 20], start: 20 };
        loop {
            text.start -= 1;
            text.bytes[text.start] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                return text;
            }
        }
    }

    fn signed(value: i64) -> Self {
        let mut text = Self::unsigned(value.unsigned_abs());
        if value < 0 {
            text.start -= 1;
            text.bytes[text.start] = b'-';
        }
        text
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.start..]).expect("ASCII digits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_writes_what_to_string_writes() {
        for value in [0, 1, 9, 10, 99, 100, 1_234_567, u64::MAX / 10, u64::MAX - 1, u64::MAX] {
            assert_eq!(DecimalText::unsigned(value).as_str(), value.to_string());
        }
        for value in [0, 1, -1, 10, -10, 1_700_000_000_000, i64::MAX, i64::MIN, i64::MIN + 1] {
            assert_eq!(DecimalText::signed(value).as_str(), value.to_string());
        }
    }
}
