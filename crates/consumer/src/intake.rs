//! The dead-letter topic into the `dead_letters` table: the producer's bad
//! CSV lines reach PostgreSQL like orders do, exactly once and within the
//! batch wait.
//!
//! A second Kafka consumer in the same process reads the dead-letter topic
//! (Kafka group `<group>.dead-letters`, so the orders group's rebalances are
//! not disturbed by it). Its positions are kept exactly as the orders' are:
//! in `consumer_offsets` under the consumer group and the dead-letter topic,
//! locked, planned and stored by [`crate::offsets`] in the same transaction
//! as the rows. So a crash, a restart or a second consumer never stores a
//! record twice nor skips one.
//!
//! Records the consumer published itself (`stage=consumer`, see
//! [`dead_letters::stage_of`]) are in the table already, written with their
//! batch: they are counted past, nothing inserted. A line the producer sent
//! twice (it re-sends what it was not sure Kafka took) or a replay of the
//! topic from its start is passed by the table's unique index on the line
//! (`dead_letters_producer_line_once`).
//!
//! No record's content stops it: its headers are stored in bounded form
//! (`dead_letters`), and a row the table still refuses is isolated by
//! bisection, logged, counted (`orderstream_consumer_skipped_records_total`)
//! and passed: it stays on the dead-letter topic.
//!
//! The intake runs beside the orders loop and never holds it up: it has its
//! own connection and transaction. A failure a retry may fix is retried
//! (readiness says so meanwhile); any other stops the whole consumer.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use deadpool_postgres::{Pool, Transaction};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message, OwnedMessage};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::apply::{write_in_savepoints, ApplyError, BatchReport};
use crate::config::Config;
use crate::dead_letters::{self, ProducerDeadLetter};
use crate::decode::record_bytes;
use crate::error::ConsumerError;
use crate::events::{DeadLetterIntakeCommitted, RecordSkipped};
use crate::kafka::{after_commit, kafka_config, wait_for_topic, RebalanceContext};
use crate::metrics::Metrics;
use crate::offsets::{self, offset_ranges};
use crate::retry::retry_transient;
use crate::status::StatusBoard;
use telemetry::Readiness;

/// Most dead-letter records stored per transaction.
const INTAKE_BATCH: usize = 500;

/// The Kafka group of the intake, derived from the consumer group.
pub fn intake_group(group: &str) -> String {
    format!("{group}.dead-letters")
}

/// What one intake transaction did.
#[derive(Debug, Default)]
struct Stored {
    /// The `error_kind` of each producer dead letter new in the table.
    inserted: Vec<String>,
    /// Records passed: the consumer's own, lines already stored, or ones
    /// the table refused.
    passed: u64,
    /// Producer dead letters the table refused (source, the database's
    /// reason): they stay on the dead-letter topic only.
    unrecorded: Vec<(String, String)>,
    /// Offsets stored and seeks to make, in the form `after_commit` takes.
    report: BatchReport,
}

/// Reads the dead-letter topic into `dead_letters` until `stop` is
/// cancelled. On an error no retry can fix, cancels `stop` (the whole
/// consumer stops) and returns it.
pub async fn run(
    config: Config,
    pool: Pool,
    stop: CancellationToken,
    metrics: Metrics,
    readiness: Readiness,
    status: StatusBoard,
) -> Result<(), ConsumerError> {
    let result = intake(&config, &pool, &stop, &metrics, &readiness, &status).await;
    if result.is_err() {
        stop.cancel();
    }
    result
}

async fn intake(
    config: &Config,
    pool: &Pool,
    stop: &CancellationToken,
    metrics: &Metrics,
    readiness: &Readiness,
    status: &StatusBoard,
) -> Result<(), ConsumerError> {
    let assigned = Arc::new(Mutex::new(BTreeSet::new()));
    let mut consumer_config = kafka_config(config);
    // The main consumer's memory bounds and group timeouts, each unless
    // `--kafka-option` sets it: a backlog of dead letters is bounded alike.
    let group_timeouts = [("session.timeout.ms", "10000".to_string()), ("heartbeat.interval.ms", "2000".to_string())];
    for (key, value) in config.consumer_bounds().into_iter().chain(group_timeouts) {
        if consumer_config.get(key).is_none() {
            consumer_config.set(key, value);
        }
    }
    let consumer: StreamConsumer<RebalanceContext> = consumer_config
        .set("group.id", intake_group(&config.group.name))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(RebalanceContext::tracking(assigned.clone(), &config.dlq_topic.name, metrics))?;
    if !wait_for_topic(&consumer, &config.dlq_topic.name, stop).await {
        return Ok(());
    }
    consumer.subscribe(&[&config.dlq_topic.name])?;
    info!(message = "Dead-letter intake started.", topic = %config.dlq_topic.name, group = %config.group.name);
    let mut seeked: BTreeMap<i32, i64> = BTreeMap::new();
    while let Some(batch) = gather(&consumer, config, stop).await {
        let batch = owned_only(batch, &assigned, &mut seeked);
        if batch.is_empty() {
            continue;
        }
        let stored = retry_transient("dead-letter intake", stop, metrics, readiness, status, || {
            store_batch(pool, &config.group.name, &config.dlq_topic.name, &batch, &seeked)
        })
        .await?;
        let Some(stored) = stored else { break };
        for (source, reason) in &stored.unrecorded {
            RecordSkipped { source, reason }.emit(metrics);
        }
        let reasons: Vec<&str> = stored.inserted.iter().map(String::as_str).collect();
        DeadLetterIntakeCommitted { reasons: &reasons, passed: stored.passed, at: chrono::Utc::now() }.emit(metrics);
        after_commit(&consumer, &config.dlq_topic.name, &stored.report, &mut seeked);
    }
    consumer.unsubscribe();
    Ok(())
}

/// Waits for a first record, then takes more for the batch wait, up to
/// [`INTAKE_BATCH`] records and `--batch-max-bytes` (a dead letter carries
/// whatever line or headers were refused: their size is not bounded by the
/// count); `None` once `stop` is cancelled.
async fn gather(
    consumer: &StreamConsumer<RebalanceContext>,
    config: &Config,
    stop: &CancellationToken,
) -> Option<Vec<OwnedMessage>> {
    let mut batch = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut bytes = 0;
    while batch.len() < INTAKE_BATCH && bytes < config.batch_max_bytes {
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
                    bytes += record_bytes(&message);
                    batch.push(message.detach());
                    deadline.get_or_insert_with(|| Instant::now() + config.batch_wait());
                }
                Err(error) => tracing::warn!(message = "Kafka receive error on the dead-letter topic.", %error),
            },
        }
    }
    Some(batch)
}

/// Drops the records of partitions revoked while the batch was gathered.
fn owned_only(
    mut batch: Vec<OwnedMessage>,
    assigned: &Mutex<BTreeSet<i32>>,
    seeked: &mut BTreeMap<i32, i64>,
) -> Vec<OwnedMessage> {
    let Ok(owned) = assigned.lock().map(|owned| owned.clone()) else { return Vec::new() };
    seeked.retain(|partition, _| owned.contains(partition));
    batch.retain(|message| owned.contains(&message.partition()));
    batch
}

/// Stores the batch's producer dead letters and its offsets in one
/// transaction, after the same offset check as the orders' batches.
async fn store_batch(
    pool: &Pool,
    group: &str,
    topic: &str,
    batch: &[OwnedMessage],
    seeked: &BTreeMap<i32, i64>,
) -> Result<Stored, ApplyError> {
    let mut client = pool.get().await?;
    let mut transaction = client.transaction().await?;
    let ranges = offset_ranges(batch.iter().map(|message| (message.partition(), message.offset())));
    let stored = offsets::lock_stored(&transaction, group, topic, &ranges).await?;
    let plan = offsets::plan(&ranges, &stored, seeked);
    let (accepted, letters) = producer_letters(batch, &plan);
    let (inserted, refused) = record_producer_letters(&mut transaction, &letters).await?;
    let next_offsets = plan.next_offsets();
    offsets::store(&transaction, group, topic, &next_offsets).await?;
    transaction.commit().await?;
    Ok(Stored {
        passed: accepted - inserted.len() as u64,
        inserted,
        unrecorded: refused.into_iter().map(|(index, reason)| (letters[index].source.clone(), reason)).collect(),
        report: BatchReport { next_offsets, seeks: plan.seeks(), ..BatchReport::default() },
    })
}

/// Inserts the producer's dead letters; ones the table refuses are isolated
/// by bisection in savepoints, as the orders' batches isolate theirs, and
/// returned as (index, reason) instead of stopping the intake. Returns the
/// reasons of the letters new in the table, and the refused ones.
async fn record_producer_letters(
    transaction: &mut Transaction<'_>,
    letters: &[ProducerDeadLetter],
) -> Result<(Vec<String>, Vec<(usize, String)>), ApplyError> {
    let mut inserted = Vec::new();
    let refused = write_in_savepoints(
        transaction,
        "producer_dead_letters",
        letters,
        |savepoint, letters| {
            Box::pin(async move {
                let new = dead_letters::insert_producer_letters(savepoint, letters).await?;
                Ok(new.into_iter().map(|letter| letter.reason.clone()).collect::<Vec<_>>())
            })
        },
        |_, reasons| inserted.extend(reasons),
    )
    .await?;
    Ok((inserted, refused))
}

/// How many records the plan accepts, and the producer dead letters among
/// them (the consumer's own are left out: already stored).
fn producer_letters(batch: &[OwnedMessage], plan: &offsets::OffsetPlan) -> (u64, Vec<ProducerDeadLetter>) {
    let mut accepted = 0;
    let mut letters = Vec::new();
    for message in batch {
        if plan.accepts(message.partition(), message.offset()) {
            accepted += 1;
            letters.extend(ProducerDeadLetter::from_message(message));
        }
    }
    (accepted, letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_intake_has_its_own_kafka_group_derived_from_the_consumer_group() {
        assert_eq!(intake_group("orderstream"), "orderstream.dead-letters");
    }

    #[test]
    fn records_of_revoked_partitions_are_dropped() {
        let message = |partition| {
            OwnedMessage::new(None, None, "orders.dlq".into(), rdkafka::Timestamp::NotAvailable, partition, 0, None)
        };
        let assigned = Mutex::new(BTreeSet::from([1]));
        let mut seeked = BTreeMap::from([(0, 5), (1, 7)]);
        let kept = owned_only(vec![message(0), message(1)], &assigned, &mut seeked);
        assert_eq!(kept.iter().map(|m| m.partition()).collect::<Vec<_>>(), vec![1]);
        assert_eq!(seeked, BTreeMap::from([(1, 7)]));
    }
}
