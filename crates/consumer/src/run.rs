//! The consumer loop: gather a batch, apply it in one PostgreSQL transaction
//! (rows, dead letters and offsets together), then commit the offsets to
//! Kafka too, for lag monitoring only.
//!
//! The next batch is gathered and decoded while the current one is written
//! (one batch ahead, in the same task, see [`gather_while`]): the database
//! transaction is most of a batch's time, and reading from Kafka meanwhile
//! costs no guarantee, because everything that depends on the write (Kafka
//! commit, seeks, the revoked-partition filter) still happens between the
//! two batches.
//!
//! Where to read from is decided by PostgreSQL: each batch transaction checks
//! its positions against the stored offsets (see [`crate::offsets`]) and the
//! consumer seeks back when it is ahead. Rebalances are tracked by
//! [`crate::kafka::RebalanceContext`]: records of partitions revoked while a batch was
//! being gathered are dropped from it, never committed by the consumer that
//! lost them; a consumer that lost partitions without knowing (a zombie) is
//! stopped by the same offset check, under the same row lock.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::Pool;
use rdkafka::consumer::{Consumer, ConsumerContext, StreamConsumer};
use rdkafka::message::Message;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::apply::{apply_batch, ApplyError, BatchReport, Target};
use crate::config::Config;
use crate::db::{self, DbError};
use crate::decode::{Decoded, Decoder};
use crate::error::ConsumerError;
use crate::events::{
    ConsumerStarted, FileHeaderUnrecorded, OffsetsSkipped, RecordSkipped, SchemaMigrated, TotalsReached,
};
use crate::intake;
use crate::kafka::{after_commit, dead_letter_producer, kafka_config, wait_for_topic, RebalanceContext};
use crate::metrics::Metrics;
use crate::migrate::{migrate, MigrateError};
use crate::retry::retry_transient;
use crate::status::StatusBoard;
use crate::upsert::NextWritePath;
use telemetry::Readiness;

/// Longest a batch transaction may take before it is abandoned and retried.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// How often, at most, the totals are logged while records flow.
const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// Runs the consumer until `shutdown` resolves. A batch being gathered when
/// it does is abandoned (its records are read again next time); a batch being
/// written is finished, unless the database is away, then it is abandoned
/// uncommitted. Then the consumer leaves its group.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ConsumerError> {
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });
    let metrics = Metrics::new();
    let readiness = Readiness::new("connecting to PostgreSQL");
    let status = StatusBoard::new(&config.group.name);
    let bound = telemetry::serve_with_status(
        config.observability.metrics_addr,
        metrics.registry.clone(),
        readiness.clone(),
        status.report(),
    )
    .await?;
    if let Some(path) = &config.observability.ready_file {
        telemetry::write_ready_file(path, bound)
            .map_err(|source| ConsumerError::ReadyFile { path: path.clone(), source })?;
    }

    let pool = db::pool(&config.database, 4)?;
    let Some(()) =
        retry_transient("migrate", &stop, &metrics, &readiness, &status, || apply_migrations(&pool, &metrics)).await?
    else {
        return Ok(());
    };

    let assigned = status.assigned.clone();
    let mut consumer_config = kafka_config(&config);
    // The memory bounds, and group timeouts under which a crashed member's
    // partitions move after 10 s rather than librdkafka's 45 s (heartbeats
    // come from librdkafka's own thread, so a long batch never misses one):
    // each unless `--kafka-option` sets it, which wins, as documented.
    let group_timeouts = [("session.timeout.ms", "10000".to_string()), ("heartbeat.interval.ms", "2000".to_string())];
    for (key, value) in config.consumer_bounds().into_iter().chain(group_timeouts) {
        if consumer_config.get(key).is_none() {
            consumer_config.set(key, value);
        }
    }
    let consumer: StreamConsumer<RebalanceContext> = consumer_config
        .set("group.id", &config.group.name)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create_with_context(RebalanceContext::tracking(assigned.clone(), &config.topic.name, &metrics))?;
    if !wait_for_topic(&consumer, &config.topic.name, &stop).await {
        return Ok(());
    }
    consumer.subscribe(&[&config.topic.name])?;
    let dlq_producer = dead_letter_producer(&config)?;
    ConsumerStarted { topic: &config.topic.name, group: &config.group.name, batch_size: config.batch_size }.emit();
    readiness.ready();
    // The producer's dead letters into the table, beside the orders (see `intake`).
    let intake = tokio::spawn(intake::run(
        config.clone(),
        pool.clone(),
        stop.clone(),
        metrics.clone(),
        readiness.clone(),
        status.clone(),
    ));

    let write_path = NextWritePath::default();
    let target = Target {
        pool: &pool,
        group: &config.group.name,
        topic: &config.topic.name,
        dlq_topic: &config.dlq_topic.name,
        dlq_producer: &dlq_producer,
        write_path: &write_path,
    };
    let mut seeked: BTreeMap<i32, i64> = BTreeMap::new();
    let mut last_summary = Instant::now();
    // The batch written in the next round, gathered during this one.
    let mut batch: Vec<Decoded> = Vec::new();
    loop {
        let writing =
            (!batch.is_empty()).then(|| write_batch(&target, &batch, &seeked, &stop, &metrics, &readiness, &status));
        let (written, next) = gather_while(&consumer, &config, &stop, writing).await;
        let mut sought = BTreeMap::new();
        match written.transpose()? {
            None => {}
            Some(Written::Abandoned) => break,
            Some(Written::Committed(report)) => {
                // Chaos suite: a crash after the PostgreSQL commit, before the Kafka offset commit.
                fail::fail_point!("consumer-after-db-commit", |_| std::process::abort());
                metrics.batch_committed(
                    report.accepted,
                    report.outcome,
                    &report.dead_letter_reasons,
                    report.already_applied,
                    report.seconds,
                );
                metrics.committed_at(&report.read_at, chrono::Utc::now());
                status.batch_committed(report.accepted);
                for (&partition, &count) in &report.skipped_offsets {
                    OffsetsSkipped { partition, count }.emit(&metrics);
                }
                for (source, reason) in &report.unrecorded {
                    RecordSkipped { source, reason }.emit(&metrics);
                }
                for (file, reason) in &report.unrecorded_headers {
                    FileHeaderUnrecorded { file, reason }.emit(&metrics);
                }
                after_commit(&consumer, &config.topic.name, &report, &mut seeked);
                sought = report.seeks;
                if last_summary.elapsed() >= SUMMARY_EVERY {
                    TotalsReached { totals: metrics.totals(), at_shutdown: false }.emit(&metrics);
                    status.log_rate();
                    last_summary = Instant::now();
                }
            }
        }
        let Some(mut next) = next else { break };
        metrics.received(next.len());
        // Read before those seeks: the partition's records come again from the stored offset.
        next.retain(|decoded| !sought.contains_key(&decoded.message.partition()));
        batch = owned_partitions_only(next, &assigned, &mut seeked);
    }
    consumer.unsubscribe();
    stop.cancel();
    let intake = intake.await.unwrap_or_else(|panicked| {
        error!(message = "Dead-letter intake panicked.", error = %panicked);
        Ok(())
    });
    let totals = metrics.totals();
    TotalsReached { totals, at_shutdown: true }.emit(&metrics);
    if let Some(path) = &config.observability.ready_file {
        // For a harness: the totals, once the endpoints are gone.
        if let Err(error) = telemetry::write_final_report(path, &totals) {
            warn!(message = "Cannot write the final report.", file = %telemetry::final_report_path(path).display(), %error);
        }
    }
    info!(message = "Consumer stopped.");
    intake
}

/// What became of a batch handed to the writer.
enum Written {
    /// Committed in PostgreSQL (boxed: the report is large, `Abandoned` empty).
    Committed(Box<BatchReport>),
    /// Shutdown came while the database was away: not committed.
    Abandoned,
}

/// Applies a batch in one transaction, retrying transient failures.
async fn write_batch(
    target: &Target<'_>,
    batch: &[Decoded],
    seeked: &BTreeMap<i32, i64>,
    stop: &CancellationToken,
    metrics: &Metrics,
    readiness: &Readiness,
    status: &StatusBoard,
) -> Result<Written, ConsumerError> {
    let applied = retry_transient("write", stop, metrics, readiness, status, || async {
        tokio::time::timeout(BATCH_TIMEOUT, apply_batch(target, batch, seeked))
            .await
            .unwrap_or(Err(ApplyError::Database(DbError::Timeout(BATCH_TIMEOUT))))
    })
    .await?;
    Ok(applied.map_or(Written::Abandoned, |report| Written::Committed(Box::new(report))))
}

/// Drops the records of partitions revoked while the batch was gathered:
/// another consumer owns them now. Forgets the seeks of revoked partitions.
fn owned_partitions_only(
    mut batch: Vec<Decoded>,
    assigned: &Mutex<BTreeSet<i32>>,
    seeked: &mut BTreeMap<i32, i64>,
) -> Vec<Decoded> {
    let owned = match assigned.lock() {
        Ok(owned) => owned.clone(),
        Err(_) => return Vec::new(),
    };
    seeked.retain(|partition, _| owned.contains(partition));
    let before = batch.len();
    batch.retain(|d| owned.contains(&d.message.partition()));
    if batch.len() < before {
        info!(message = "Dropped records of revoked partitions from the batch.", dropped = before - batch.len());
    }
    batch
}

async fn apply_migrations(pool: &Pool, metrics: &Metrics) -> Result<(), ApplyError> {
    let mut client = pool.get().await?;
    match migrate(&mut client).await {
        Ok(applied) => {
            SchemaMigrated { applied }.emit(metrics);
            Ok(())
        }
        Err(MigrateError::Database(error)) => Err(error.into()),
        Err(mismatch) => Err(ApplyError::Database(DbError::Migration(mismatch.to_string()))),
    }
}

/// Gathers the next batch while `writing` (the previous batch's write, if
/// any) runs, and returns both. The batch waits for a first record, then
/// takes more until it is full, or until the batch wait has passed *and* the
/// write is done: while the writer is busy, waiting longer adds no latency
/// and fills the batch. A write that ends before any record came returns at
/// once, so that its Kafka commit and metrics do not wait for the next
/// record. The batch is `None` once shutdown was requested; the write is
/// finished either way (it stops on its own only if the database is away).
async fn gather_while<C, W>(
    consumer: &StreamConsumer<C>,
    config: &Config,
    stop: &CancellationToken,
    writing: Option<W>,
) -> (Option<W::Output>, Option<Vec<Decoded>>)
where
    C: ConsumerContext + 'static,
    W: Future,
{
    let busy = writing.is_some();
    let writing = async move {
        match writing {
            Some(write) => Some(write.await),
            None => None,
        }
    };
    tokio::pin!(writing);
    let mut written = None;
    let mut batch = Vec::with_capacity(config.batch_size);
    let mut decoder = Decoder::default();
    let mut bytes = 0;
    let mut deadline = None;
    let mut stopped = false;
    while batch.len() < config.batch_size && bytes < config.batch_max_bytes {
        let wait = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = stop.cancelled() => {
                stopped = true;
                break;
            }
            output = &mut writing, if written.is_none() => {
                written = Some(output);
                if busy && batch.is_empty() {
                    break;
                }
            }
            () = wait, if written.is_some() => break,
            received = consumer.recv() => match received {
                Ok(message) => {
                    let decoded = decoder.decode(&message);
                    bytes += decoded.message.weight();
                    batch.push(decoded);
                    deadline.get_or_insert_with(|| Instant::now() + config.batch_wait());
                }
                Err(error) => warn!(message = "Kafka receive error.", %error),
            },
        }
    }
    let written = match written {
        Some(output) => output,
        None => writing.await,
    };
    (written, (!stopped).then_some(batch))
}
