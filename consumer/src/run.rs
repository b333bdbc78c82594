//! The consumer's main loop: gather a batch, write it in one transaction,
//! then commit its Kafka offsets.
//!
//! Offsets are committed only after PostgreSQL committed, so a crash between
//! the two replays the batch, which the idempotent upsert makes harmless.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use schema::message::headers;
use schema::OrderMessage;
use thiserror::Error;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::batch::{last_per_id, next_offsets, OrderRecord, Source};
use crate::config::Config;
use crate::db::{self, DbError};
use crate::migrate::{migrate, MigrateError};
use crate::upsert::{upsert_orders, UpsertOutcome};

/// Longest pause between two tries of a transient failure.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Why the consumer stopped.
#[derive(Debug, Error)]
pub enum ConsumerError {
    /// The database URL is unusable.
    #[error("invalid database configuration: {0}")]
    DatabaseConfig(#[source] tokio_postgres::Error),
    /// The schema could not be brought up to date.
    #[error(transparent)]
    Migrate(#[from] MigrateError),
    /// A Kafka client could not be created or subscribed.
    #[error("Kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The database refused a batch for a reason retrying cannot fix.
    #[error("batch refused by the database: {0}")]
    Write(#[source] DbError),
}

/// Runs the consumer until `shutdown` resolves. The batch being written when
/// it does is finished (or, if the database is away, abandoned uncommitted)
/// before the consumer leaves its group.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ConsumerError> {
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });

    let pool = db::pool(&config.database_url, 4).map_err(ConsumerError::DatabaseConfig)?;
    let Some(()) = retry_transient("migrate", &stop, || apply_migrations(&pool)).await? else {
        return Ok(());
    };

    let consumer: StreamConsumer = kafka_config(&config)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()?;
    if !wait_for_topic(&consumer, &config.topic, &stop).await {
        return Ok(());
    }
    consumer.subscribe(&[&config.topic])?;
    let dead_letters: FutureProducer =
        kafka_config(&config).set("enable.idempotence", "true").set("acks", "all").create()?;
    info!(message = "Consumer started.", topic = %config.topic, group = %config.group);

    let mut total = UpsertOutcome::default();
    while let Some(batch) = next_batch(&consumer, &config, &stop).await {
        let Some(outcome) = write_batch(&batch, &pool, &dead_letters, &config, &stop).await? else {
            break;
        };
        total += outcome;
        commit_offsets(&consumer, &config.topic, &batch);
    }
    consumer.unsubscribe();
    info!(
        message = "Consumer stopped.",
        inserted = total.inserted,
        updated = total.updated,
        unchanged = total.unchanged
    );
    Ok(())
}

/// Waits until the topic exists (the producer creates it), saying so once:
/// a subscription to a missing topic would otherwise sit silent for minutes
/// before librdkafka looks again. `false` if shutdown came first.
async fn wait_for_topic(consumer: &StreamConsumer, topic: &str, stop: &CancellationToken) -> bool {
    let mut said = false;
    loop {
        let exists = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(5))).map(
            |metadata| {
                metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            },
        );
        match exists {
            Ok(true) => return true,
            Ok(false) if !said => {
                info!(message = "Topic does not exist yet; waiting for the producer to create it.", topic);
                said = true;
            }
            Ok(false) => {}
            Err(error) => warn!(message = "Cannot reach Kafka; retrying.", %error),
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn kafka_config(config: &Config) -> ClientConfig {
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", &config.brokers);
    for (key, value) in &config.kafka_options {
        kafka.set(key, value);
    }
    kafka
}

async fn apply_migrations(pool: &Pool) -> Result<(), DbError> {
    let mut client = pool.get().await?;
    match migrate(&mut client).await {
        Ok(_) => Ok(()),
        Err(MigrateError::Database(error)) => Err(DbError::Statement(error)),
        Err(mismatch) => panic!("{mismatch}"),
    }
}

/// Waits for a first record, then gathers more until the batch is full or
/// the batch wait has passed. `None` once shutdown was requested.
async fn next_batch(consumer: &StreamConsumer, config: &Config, stop: &CancellationToken) -> Option<Vec<OwnedMessage>> {
    let mut batch = Vec::with_capacity(config.batch_size);
    let mut deadline = None;
    while batch.len() < config.batch_size {
        let wait = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => return None,
            () = wait => break,
            received = consumer.recv() => match received {
                Ok(message) => {
                    batch.push(message.detach());
                    deadline.get_or_insert_with(|| Instant::now() + config.batch_wait());
                }
                Err(error) => warn!(message = "Kafka receive error.", %error),
            },
        }
    }
    Some(batch)
}

/// Dead-letters what cannot be decoded, then writes the rest. `None` if
/// shutdown came while waiting out a database outage.
async fn write_batch(
    batch: &[OwnedMessage],
    pool: &Pool,
    dead_letters: &FutureProducer,
    config: &Config,
    stop: &CancellationToken,
) -> Result<Option<UpsertOutcome>, ConsumerError> {
    let mut records = Vec::with_capacity(batch.len());
    for message in batch {
        match decode(message) {
            Ok(record) => records.push(record),
            Err((kind, reason)) => dead_letter(dead_letters, &config.dlq_topic, message, kind, &reason).await?,
        }
    }
    let rows = last_per_id(records);
    let written = retry_transient("write", stop, || async {
        let mut client = pool.get().await?;
        let transaction = client.transaction().await?;
        let outcome = upsert_orders(&transaction, &rows).await?;
        transaction.commit().await?;
        Ok(outcome)
    })
    .await?;
    Ok(written)
}

/// Retries `attempt` while it fails transiently, with capped exponential
/// backoff and jitter. `Ok(None)` if shutdown came first.
async fn retry_transient<T, F, Fut>(
    what: &str,
    stop: &CancellationToken,
    mut attempt: F,
) -> Result<Option<T>, ConsumerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut backoff = Duration::from_millis(100);
    loop {
        match attempt().await {
            Ok(value) => return Ok(Some(value)),
            Err(error) if error.is_transient() => {
                warn!(message = "Database unavailable; retrying.", operation = what, %error, retry_in_ms = backoff.as_millis() as u64);
                let jittered = backoff.mul_f64(0.5 + fastrand::f64());
                tokio::select! {
                    () = stop.cancelled() => return Ok(None),
                    () = tokio::time::sleep(jittered) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(error) => return Err(ConsumerError::Write(error)),
        }
    }
}

fn decode(message: &OwnedMessage) -> Result<OrderRecord, (&'static str, String)> {
    let payload = message.payload().unwrap_or_default();
    let decoded = OrderMessage::decode(payload).map_err(|error| (error.kind(), error.to_string()))?;
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
    };
    Ok(OrderRecord { order: decoded.order, source, partition: message.partition(), offset: message.offset() })
}

fn header_value<'m>(message: &'m OwnedMessage, name: &str) -> Option<&'m str> {
    let headers = message.headers()?;
    headers.iter().find(|h| h.key == name).and_then(|h| h.value).and_then(|v| std::str::from_utf8(v).ok())
}

/// Publishes an unreadable record to the dead-letter topic with the reason,
/// keeping its original headers; waits until Kafka confirmed it, so that the
/// offset past it is only committed once the dead letter is safe.
async fn dead_letter(
    producer: &FutureProducer,
    topic: &str,
    message: &OwnedMessage,
    kind: &str,
    reason: &str,
) -> Result<(), ConsumerError> {
    warn!(message = "Record dead-lettered.", partition = message.partition(), offset = message.offset(), kind, reason);
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header { key: header.key, value: header.value });
        }
    }
    let headers = headers
        .insert(Header { key: schema::message::headers::ERROR_KIND, value: Some(kind) })
        .insert(Header { key: schema::message::headers::ERROR_MESSAGE, value: Some(reason) });
    let mut record = FutureRecord::to(topic).payload(message.payload().unwrap_or_default()).headers(headers);
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    producer.send(record, rdkafka::util::Timeout::Never).await.map_err(|(error, _)| ConsumerError::Kafka(error))?;
    Ok(())
}

fn commit_offsets(consumer: &StreamConsumer, topic: &str, batch: &[OwnedMessage]) {
    let mut offsets = TopicPartitionList::new();
    for (partition, next) in next_offsets(batch.iter().map(|m| (m.partition(), m.offset()))) {
        offsets.add_partition_offset(topic, partition, Offset::Offset(next)).expect("valid offset");
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        // The batch is in the database; a replay after a lost commit changes nothing.
        warn!(message = "Offset commit failed; the batch may be replayed.", %error);
    }
}
