//! The Kafka side of the producer: one record per order on the orders topic,
//! one per rejected line on the dead-letter topic.
//!
//! The producer is idempotent with `acks=all` and never gives up on a record
//! (`message.timeout.ms=0`): while Kafka is away, records wait in librdkafka's
//! bounded queue and are retried, so a record is only ever confirmed or still
//! pending, never silently dropped.
//!
//! A record Kafka refuses *for good* ([`Refusal::RecordRejected`]: too large
//! for the topic, an invalid record) would be refused again on every restart
//! and stall every file behind it; an order refused so is dead-lettered
//! instead (`refused_by_kafka`, with Kafka's answer), so the file moves on.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::ClientConfig;
use schema::message::headers;
use schema::{OrderMessage, Provenance, Rejection, RejectionKind};
use thiserror::Error;

use crate::config::KafkaConfig;
use crate::delivery::{Answers, DeliveryReports, Ticket};
use crate::tailer::{RecordOutcome, TailedRecord};

/// What the Kafka side can fail with.
#[derive(Debug, Error)]
pub enum PublishError {
    /// The client could not be created (a bad setting).
    #[error("cannot create the Kafka client")]
    Client(#[source] KafkaError),
    /// The SASL password file cannot be read.
    #[error(transparent)]
    Settings(#[from] clients::kafka::KafkaConfigError),
    /// A topic could not be created or checked.
    #[error("cannot create topic {topic}")]
    Topic {
        /// The topic.
        topic: String,
        /// The broker's answer.
        source: KafkaError,
    },
    /// A record of `--max-record-bytes` could not be written to a topic.
    #[error(transparent)]
    RecordLimit(#[from] SizeLimitError),
    /// A `--kafka-option` sets one of the `GUARANTEES` to another value.
    #[error("--kafka-option {key}={value}: the producer sets {key}={required}, which its delivery guarantees need (docs/design.md)")]
    Guarantee {
        /// The setting.
        key: &'static str,
        /// The value given.
        value: String,
        /// The value the producer needs.
        required: &'static str,
    },
}

/// The librdkafka settings the producer's guarantees rest on: every line
/// written once, in order, however long Kafka is away. A `--kafka-option`
/// may repeat them, never change them.
pub const GUARANTEES: [(&str, &str); 3] =
    [("enable.idempotence", "true"), ("acks", "all"), ("message.timeout.ms", "0")];

/// The producer's defaults that a `--kafka-option` may change.
pub const TUNING: [(&str, &str); 2] = [("linger.ms", "5"), ("compression.type", "lz4")];

/// Bytes a record may hold besides its line (and the line quoted once in its
/// error message): the key and the `source_file` header each hold the file's
/// path (up to 4 KiB on Linux), the other headers stay under 1 KiB, and
/// Kafka's batch framing adds under 100 bytes. 16 KiB covers them with room.
pub const RECORD_OVERHEAD_BYTES: usize = 16 * 1024;

/// librdkafka's `message.max.bytes` when not configured.
const CLIENT_MESSAGE_MAX_BYTES_DEFAULT: usize = 1_000_000;

/// The largest record the producer may send when lines are at most
/// `max_record_bytes`: a dead letter carries the line itself, and its error
/// message may quote a field as long as the line, plus
/// [`RECORD_OVERHEAD_BYTES`]. An order's JSON value is far smaller.
pub fn worst_case_record_bytes(max_record_bytes: usize) -> usize {
    max_record_bytes.saturating_mul(2).saturating_add(RECORD_OVERHEAD_BYTES)
}

/// `--max-record-bytes` allows records larger than Kafka accepts: the
/// producer refuses to start rather than dead-letter such lines one by one
/// (or stop, when a dead letter itself is refused).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "--max-record-bytes {max_record_bytes} allows records of up to {worst_case} bytes once encoded (twice the line \
     plus {RECORD_OVERHEAD_BYTES} bytes of key and headers), more than {limit_name} = {limit} accepts; lower \
     --max-record-bytes to at most {largest_allowed} or raise {limit_name}"
)]
pub struct SizeLimitError {
    /// The configured `--max-record-bytes`.
    pub max_record_bytes: usize,
    /// The largest record it allows, see [`worst_case_record_bytes`].
    pub worst_case: usize,
    /// Which limit is too small (a topic's `max.message.bytes`, the client's `message.max.bytes`).
    pub limit_name: String,
    /// That limit.
    pub limit: usize,
    /// The largest `--max-record-bytes` the limit allows.
    pub largest_allowed: usize,
}

/// Checks that records of `max_record_bytes` fit every limit, given as
/// (name, bytes); the first limit too small is the error.
pub fn size_limit_check(max_record_bytes: usize, limits: &[(String, usize)]) -> Result<(), SizeLimitError> {
    let worst_case = worst_case_record_bytes(max_record_bytes);
    match limits.iter().find(|(_, limit)| worst_case > *limit) {
        None => Ok(()),
        Some((name, limit)) => Err(SizeLimitError {
            max_record_bytes,
            worst_case,
            limit_name: name.clone(),
            limit: *limit,
            largest_allowed: limit.saturating_sub(RECORD_OVERHEAD_BYTES) / 2,
        }),
    }
}

/// Sends records to the orders and dead-letter topics; Kafka's answers come
/// back through [`crate::delivery::InFlight`], so records in flight hold no
/// part of it.
pub struct Publisher {
    producer: ThreadedProducer<DeliveryReports>,
    /// The topics and connection settings.
    config: KafkaConfig,
}

/// The outcome of trying to enqueue one record.
pub enum Enqueued {
    /// On its way; Kafka's answer comes under its ticket.
    Sent,
    /// Nothing to send (a header).
    Nothing,
    /// librdkafka's queue is full: wait for confirmations, then try again.
    QueueFull,
    /// librdkafka refused it at once (too large for `message.max.bytes`, a
    /// fatal client): answered like a refusal in a delivery report.
    Refused(KafkaError),
}

/// Where a record came from, for its headers: shared by every record read
/// from the file in one turn, and kept until the record is confirmed.
#[derive(Debug, Clone)]
pub struct RecordSource {
    /// Path of the file.
    pub file: Arc<str>,
    /// The file's identity (see [`crate::identity`]).
    pub fingerprint: Arc<str>,
    /// When the record was read, Unix milliseconds.
    pub read_at_ms: i64,
}

/// What Kafka refusing a record means: the classification that decides
/// between dead-lettering, stopping, and never giving up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This record, as it is, can never be written to this topic: sending it
    /// again would fail again, so it is dead-lettered and its file moves on.
    RecordRejected,
    /// The client itself can no longer produce (librdkafka's fatal error,
    /// e.g. the idempotent producer's sequence broke): the producer stops.
    ClientFatal,
    /// Anything else: not about this record, so dead-lettering it would be
    /// wrong (an authorisation failure would send the whole stream to the
    /// dead-letter topic). The producer stops with its position before the
    /// record, and a restart sends it again: it never gives up on it.
    NotTheRecord,
}

/// Classifies Kafka's answer to one record. librdkafka retries transient
/// errors itself (`message.timeout.ms=0`: forever), so a refusal that reaches
/// us is one it will not retry; only those about the record's own content
/// are [`Refusal::RecordRejected`]:
///
/// - `MessageSizeTooLarge` (broker 10, or librdkafka's own check against
///   `message.max.bytes`) and `MessageBatchTooLarge` (`RECORD_LIST_TOO_LARGE`,
///   18): the record does not fit the topic's `max.message.bytes`. librdkafka
///   does not split a batch the broker refused, so every record of that batch
///   is dead-lettered; the start check (see [`size_limit_check`]) keeps the
///   limit far above one record, so only a limit lowered at run time does so.
/// - `InvalidRecord` (87): the broker's validation refused it (e.g. a
///   compacted topic and no key).
/// - `InvalidTimestamp` (32): its timestamp is outside the topic's bounds.
/// - `BadMessage` (librdkafka, -199): it cannot be encoded.
///
/// Authorisation failures (`TopicAuthorizationFailed`,
/// `ClusterAuthorizationFailed`) are deliberately not among them: they hold
/// for every record until someone fixes an ACL, and dead-lettering the whole
/// stream would be far worse than stopping.
pub fn classify_refusal(error: &KafkaError) -> Refusal {
    match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::Fatal) => Refusal::ClientFatal,
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
            | RDKafkaErrorCode::MessageBatchTooLarge
            | RDKafkaErrorCode::InvalidRecord
            | RDKafkaErrorCode::InvalidTimestamp
            | RDKafkaErrorCode::BadMessage,
        ) => Refusal::RecordRejected,
        _ => Refusal::NotTheRecord,
    }
}

/// Most kilobytes of records librdkafka's queue holds
/// (`queue.buffering.max.kbytes`, 1 GiB by default): with `--max-in-flight`,
/// what bounds the producer's memory while Kafka is slow or away. A full
/// queue makes reading wait, like `--max-in-flight`.
pub const QUEUE_MAX_KBYTES: usize = 256 * 1024;

/// How long a dead letter sent out of order waits before trying again
/// while librdkafka's queue is full.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(10);

/// librdkafka settings common to every client of ours (brokers, TLS, SASL).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    kafka.connection.client_config()
}

/// The producer's librdkafka settings: the connection's, then
/// [`GUARANTEES`] (a `--kafka-option` may repeat them, not change them),
/// [`TUNING`] unless a `--kafka-option` sets it, and the queue bounds that
/// `max_in_flight` sizes.
fn producer_config(kafka: &KafkaConfig, max_in_flight: usize) -> Result<ClientConfig, PublishError> {
    let mut config = client_config(kafka);
    for (key, required) in GUARANTEES {
        match config.get(key) {
            Some(value) if !same_setting(key, value, required) => {
                return Err(PublishError::Guarantee { key, value: value.to_string(), required })
            }
            _ => config.set(key, required),
        };
    }
    for (key, default) in TUNING {
        if config.get(key).is_none() {
            config.set(key, default);
        }
    }
    config
        .set("queue.buffering.max.messages", (max_in_flight * 2).max(1000).to_string())
        .set("queue.buffering.max.kbytes", QUEUE_MAX_KBYTES.to_string());
    Ok(config)
}

/// Whether `value` is `required` as librdkafka reads it: case aside, and
/// `acks=-1` is `acks=all`.
fn same_setting(key: &str, value: &str, required: &str) -> bool {
    let value = value.trim();
    value.eq_ignore_ascii_case(required) || (key == "acks" && value == "-1" && required == "all")
}

impl Publisher {
    /// Creates the idempotent producer, and where Kafka's answers to the
    /// records it sends arrive. `max_in_flight` sizes librdkafka's queue so
    /// that it never holds more than the producer lets it.
    pub fn new(kafka: &KafkaConfig, max_in_flight: usize) -> Result<(Self, Answers), PublishError> {
        let mut kafka = kafka.clone();
        kafka.connection.load_password_file()?;
        let (reports, answers) = DeliveryReports::new();
        let producer =
            producer_config(&kafka, max_in_flight)?.create_with_context(reports).map_err(PublishError::Client)?;
        Ok((Publisher { producer, config: kafka }, answers))
    }

    /// Creates the orders and dead-letter topics if they do not exist yet.
    pub async fn ensure_topics(&self, partitions: i32) -> Result<(), PublishError> {
        let admin: AdminClient<DefaultClientContext> =
            client_config(&self.config).create().map_err(PublishError::Client)?;
        let topics = [&self.config.topic.name, &self.config.dlq_topic.name]
            .map(|name| NewTopic::new(name, partitions, TopicReplication::Fixed(-1)));
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&topics, &options)
            .await
            .map_err(|source| PublishError::Topic { topic: self.config.topic.name.clone(), source })?;
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

    /// Refuses `max_record_bytes` if a record it allows could exceed the
    /// client's `message.max.bytes` or either topic's `max.message.bytes`. A
    /// topic whose configuration cannot be read (a cluster where the producer
    /// may only write) is left unchecked, and said so once.
    pub async fn check_record_limit(&self, max_record_bytes: usize) -> Result<(), PublishError> {
        let client = client_config(&self.config);
        let client_limit = client
            .get("message.max.bytes")
            .and_then(|value| value.parse().ok())
            .unwrap_or(CLIENT_MESSAGE_MAX_BYTES_DEFAULT);
        let mut limits = vec![("the client's message.max.bytes".to_string(), client_limit)];
        let admin: AdminClient<DefaultClientContext> = client.create().map_err(PublishError::Client)?;
        let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        for topic in [&self.config.topic.name, &self.config.dlq_topic.name] {
            match topic_max_message_bytes(&admin, topic, &options).await {
                Some(limit) => limits.push((format!("topic {topic}'s max.message.bytes"), limit)),
                None => {
                    tracing::warn!(message = "Cannot read the topic's max.message.bytes; record size not checked against it.", %topic)
                }
            }
        }
        Ok(size_limit_check(max_record_bytes, &limits)?)
    }

    /// Enqueues one record under `ticket`: an order to the orders topic, a
    /// rejection with its original bytes to the dead-letter topic.
    pub fn enqueue(&self, ticket: Ticket, source: &RecordSource, record: &TailedRecord) -> Enqueued {
        if !matches!(record.outcome, RecordOutcome::Header) {
            self.fatal_error_failpoint();
        }
        let sent = match &record.outcome {
            RecordOutcome::Header => return Enqueued::Nothing,
            RecordOutcome::Order(order, flags, extra) => {
                let message = OrderMessage::with_extra(order.clone(), flags.clone(), extra.clone());
                let headers = source_headers(source, record);
                let headers = if flags.is_empty() {
                    headers
                } else {
                    let names: Vec<&str> = flags.iter().map(|flag| flag.as_str()).collect();
                    headers.insert(header(headers::FLAGS, &names.join(",")))
                };
                let (key, payload) = (message.key(), message.encode());
                let order = BaseRecord::with_opaque_to(&self.config.topic.name, ticket)
                    .key(&key)
                    .payload(&payload)
                    .headers(headers);
                self.producer.send(order).map_err(|(error, _)| error)
            }
            RecordOutcome::Rejected(rejection) => {
                let key = dead_letter_key(source, record);
                let dead_letter = self.dead_letter(ticket, source, record, rejection, &key);
                self.producer.send(dead_letter).map_err(|(error, _)| error)
            }
        };
        match sent {
            Ok(()) => Enqueued::Sent,
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)) => Enqueued::QueueFull,
            Err(error) => Enqueued::Refused(error),
        }
    }

    /// Sends an order Kafka refused for good to the dead-letter topic instead,
    /// with Kafka's answer as the reason; waits while librdkafka's queue is
    /// full. Resolves once Kafka confirmed or refused the dead letter.
    pub async fn dead_letter_refused(
        &self,
        source: &RecordSource,
        record: &TailedRecord,
        refusal: &KafkaError,
    ) -> Result<(), KafkaError> {
        let rejection = Rejection::new(RejectionKind::RefusedByKafka, format!("Kafka refused the order: {refusal}"));
        let key = dead_letter_key(source, record);
        let reports = self.producer.context();
        let (ticket, answer) = reports.side_ticket();
        loop {
            match self.producer.send(self.dead_letter(ticket, source, record, &rejection, &key)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // librdkafka's polling thread frees room as Kafka answers.
                    tokio::time::sleep(QUEUE_FULL_RETRY).await
                }
                Err((error, _)) => {
                    reports.cancel_side_ticket(ticket);
                    return Err(error);
                }
            }
        }
        answer.await.unwrap_or(Err(KafkaError::Canceled))
    }

    /// The client's fatal error, once it has one: then it can produce no more.
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    /// Test builds: `FAILPOINTS=producer-kafka-fatal=K*off->return` puts the
    /// client in librdkafka's fatal state before its K+1-th record is sent,
    /// so that the end-to-end tests see the producer stop on a fatal client
    /// (nothing outside the process can cause one on demand). Inert unless
    /// set, and absent from release builds.
    fn fatal_error_failpoint(&self) {
        fail::fail_point!("producer-kafka-fatal", |_| clients::faults::raise_fatal_error(
            self.producer.client(),
            "failpoint producer-kafka-fatal"
        ));
    }

    fn dead_letter<'a>(
        &'a self,
        ticket: Ticket,
        source: &'a RecordSource,
        record: &'a TailedRecord,
        rejection: &Rejection,
        key: &'a str,
    ) -> BaseRecord<'a, str, [u8], Ticket> {
        let headers = source_headers(source, record)
            .insert(header(headers::ERROR_KIND, rejection.kind.as_str()))
            .insert(header(headers::ERROR_MESSAGE, &rejection.message))
            .insert(header(headers::STAGE, schema::message::stages::PRODUCER));
        BaseRecord::with_opaque_to(&self.config.dlq_topic.name, ticket)
            .key(key)
            .payload(&record.raw[..])
            .headers(headers)
    }
}

/// A dead letter's key: its place in its file, so re-sends of one line share it.
fn dead_letter_key(source: &RecordSource, record: &TailedRecord) -> String {
    format!("{}:{}", source.file, record.offset)
}

/// A topic's `max.message.bytes`, `None` when it cannot be read.
async fn topic_max_message_bytes(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    options: &AdminOptions,
) -> Option<usize> {
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], options).await.ok()?;
    let resource = described.into_iter().next()?.ok()?;
    resource.get("max.message.bytes")?.value.as_ref()?.parse().ok()
}

/// The headers every record carries: where it came from (the wire format
/// is `schema::provenance`'s: one header, and `columns` for a non-standard
/// export). Room for the three a dead letter adds.
fn source_headers(source: &RecordSource, record: &TailedRecord) -> OwnedHeaders {
    let provenance = Provenance {
        source_file: &source.file,
        fingerprint: &source.fingerprint,
        line: record.line,
        byte_offset: record.offset,
        source_version: record.version,
        read_at_ms: source.read_at_ms,
        columns: record.columns.as_deref(),
    };
    clients::headers::with_pairs(OwnedHeaders::new_with_capacity(5), provenance.to_headers().iter())
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header { key, value: Some(value) }
}

/// Why a record Kafka answered cannot count as delivered: the producer
/// stops before it, its file's position still before the record.
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// Kafka refused a record for a reason that is not the record's own
    /// (see `Refusal::NotTheRecord`), or refused a dead letter; its file's
    /// position stays before it, so a restart sends it again.
    #[error("Kafka refused the record from {file} at byte {offset} (a restart sends it again)")]
    Delivery {
        /// Source file.
        file: String,
        /// Where the refused record starts.
        offset: u64,
        /// Kafka's answer.
        source: KafkaError,
    },
    /// Kafka refused an order for good, and then its dead letter too: the
    /// line is in neither topic, so its file's position stays before it.
    #[error("Kafka refused the order from {file} at byte {offset} ({refusal}), and its dead letter")]
    DeadLetterRefused {
        /// Source file.
        file: String,
        /// Where the refused record starts.
        offset: u64,
        /// Why the order was refused (Kafka's answer, as text).
        refusal: String,
        /// Why its dead letter was refused (boxed: errors stay small).
        source: Box<KafkaError>,
    },
    /// The Kafka client failed fatally and can produce no more. The producer
    /// exits rather than build a new client: librdkafka fails every queued
    /// record with it, and sending all of them again in order from a new
    /// client is exactly what a restart does from the saved positions; a
    /// supervisor (compose `restart: unless-stopped`) restarts it.
    #[error("the Kafka client failed fatally ({code:?}): {reason}; exiting so that a restart resumes from the saved positions")]
    KafkaFatal {
        /// librdkafka's fatal error code.
        code: RDKafkaErrorCode,
        /// librdkafka's explanation.
        reason: String,
    },
}

/// How a record Kafka accepted got there.
pub(crate) enum Delivered {
    /// As sent.
    AsSent,
    /// An order Kafka refused for good, dead-lettered instead.
    DeadLetteredInstead {
        /// Source file.
        file: Arc<str>,
        /// Where the record starts.
        offset: u64,
        /// Kafka's refusal.
        refusal: KafkaError,
    },
}

/// What Kafka's answer to one record means for the producer (see
/// [`classify_refusal`]): an order refused for good is dead-lettered in its
/// place; a record whose dead letter cannot be written, a refusal that is not
/// about the record, or a fatal client stop the producer before the record.
pub(crate) async fn settle(
    publisher: &Publisher,
    source: &RecordSource,
    record: &TailedRecord,
    answer: Result<(), KafkaError>,
) -> Result<Delivered, DeliveryError> {
    let Err(refusal) = answer else { return Ok(Delivered::AsSent) };
    if let Some((code, reason)) = publisher.fatal_error() {
        return Err(DeliveryError::KafkaFatal { code, reason });
    }
    let file = || source.file.to_string();
    match (classify_refusal(&refusal), &record.outcome) {
        (Refusal::RecordRejected, RecordOutcome::Order(..)) => {
            match publisher.dead_letter_refused(source, record, &refusal).await {
                Ok(()) => {
                    Ok(Delivered::DeadLetteredInstead { file: source.file.clone(), offset: record.offset, refusal })
                }
                Err(dead_letter) => Err(DeliveryError::DeadLetterRefused {
                    file: file(),
                    offset: record.offset,
                    refusal: refusal.to_string(),
                    source: Box::new(dead_letter),
                }),
            }
        }
        (Refusal::ClientFatal, _) => {
            Err(DeliveryError::KafkaFatal { code: RDKafkaErrorCode::Fatal, reason: refusal.to_string() })
        }
        _ => Err(DeliveryError::Delivery { file: file(), offset: record.offset, source: refusal }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_with(options: &[&str]) -> Result<ClientConfig, PublishError> {
        let mut args = vec!["p"];
        for option in options {
            args.extend(["--kafka-option", option]);
        }
        let config = <crate::Config as clap::Parser>::try_parse_from(args).unwrap();
        producer_config(&config.kafka, 10)
    }

    #[test]
    fn a_kafka_option_tunes_the_producer_but_cannot_weaken_its_guarantees() {
        let defaults = config_with(&[]).unwrap();
        assert_eq!((defaults.get("linger.ms"), defaults.get("compression.type")), (Some("5"), Some("lz4")));
        assert_eq!(defaults.get("acks"), Some("all"));

        let tuned =
            config_with(&["linger.ms=20", "compression.type=zstd", "acks=-1", "enable.idempotence=True"]).unwrap();
        assert_eq!((tuned.get("linger.ms"), tuned.get("compression.type")), (Some("20"), Some("zstd")));

        for weakening in ["acks=1", "enable.idempotence=false", "message.timeout.ms=30000"] {
            let error = config_with(&[weakening]).unwrap_err();
            assert!(matches!(error, PublishError::Guarantee { .. }), "{weakening}: {error:?}");
            assert!(
                error.to_string().starts_with(&format!("--kafka-option {weakening}: the producer sets")),
                "{error}"
            );
        }
    }

    #[test]
    fn record_limit_names_the_limit_too_small_and_both_numbers() {
        let limits = |topic: usize| {
            vec![("client".to_string(), 1_000_000), ("topic orders's max.message.bytes".to_string(), topic)]
        };
        assert_eq!(size_limit_check(64 * 1024, &limits(1_048_588)), Ok(()));
        assert_eq!(worst_case_record_bytes(64 * 1024), 2 * 65_536 + RECORD_OVERHEAD_BYTES);
        let exact = worst_case_record_bytes(64 * 1024);
        assert_eq!(size_limit_check(64 * 1024, &limits(exact)), Ok(()), "a record exactly at the limit fits");
        let error = size_limit_check(64 * 1024, &limits(exact - 1)).unwrap_err();
        assert_eq!((error.limit, error.worst_case), (exact - 1, exact));
        assert_eq!(error.largest_allowed, 64 * 1024 - 1);
        let message = error.to_string();
        assert!(message.contains("65536") && message.contains(&(exact - 1).to_string()), "{message}");
        assert!(message.contains("topic orders's max.message.bytes"), "{message}");
        let client_first = size_limit_check(600_000, &limits(100)).unwrap_err();
        assert_eq!(client_first.limit_name, "client", "the first limit too small is named");
        assert_eq!(size_limit_check(usize::MAX, &[]), Ok(()), "no limit known, nothing refused");
    }

    #[test]
    fn only_refusals_about_the_record_itself_dead_letter_it() {
        let delivery = |code| KafkaError::MessageProduction(code);
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::MessageBatchTooLarge,
            RDKafkaErrorCode::InvalidRecord,
            RDKafkaErrorCode::InvalidTimestamp,
            RDKafkaErrorCode::BadMessage,
        ] {
            assert_eq!(classify_refusal(&delivery(code)), Refusal::RecordRejected, "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::ClusterAuthorizationFailed,
            RDKafkaErrorCode::UnknownTopicOrPartition,
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::InvalidMessage,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::PurgeQueue,
        ] {
            assert_eq!(classify_refusal(&delivery(code)), Refusal::NotTheRecord, "{code:?}");
        }
        assert_eq!(classify_refusal(&delivery(RDKafkaErrorCode::Fatal)), Refusal::ClientFatal);
        assert_eq!(
            classify_refusal(&KafkaError::Canceled),
            Refusal::NotTheRecord,
            "a dropped future is not the record"
        );
    }
}
