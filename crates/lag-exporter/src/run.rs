//! The polling loop. Each measurement stands alone: a broker or database
//! that is away is counted and retried at the next tick, and the process
//! keeps serving what it last saw.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clients::Database;
use rdkafka::consumer::BaseConsumer;
use telemetry::Readiness;

use crate::age::{partition_ages, read_oldest_unapplied, READER_SETTINGS};
use crate::config::Config;
use crate::database;
use crate::events::{DatabaseUnreadable, ExporterStarted, OffsetsUnreadable, OldestUnappliedUnreadable};
use crate::lag::{read_group_lag, GroupLag};
use crate::metrics::ExporterMetrics;

/// Measures every `interval` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ExporterMetrics::new();
    metrics.expect_members(&config.group.name, config.expected_consumers);
    let readiness = Readiness::new("no measurement yet");
    let bound =
        telemetry::serve(config.observability.metrics_addr, metrics.registry.clone(), readiness.clone()).await?;
    if let Some(path) = &config.observability.ready_file {
        telemetry::write_ready_file(path, bound)
            .map_err(|error| anyhow::anyhow!("cannot write the ready file {}: {error}", path.display()))?;
    }
    let database = Database::from_args(&config.database)?;
    let mut kafka = config.kafka.clone();
    kafka.load_password_file()?;
    // Reads offsets of the group without joining it.
    let consumer: Arc<BaseConsumer> = Arc::new(kafka.client_config().set("group.id", &config.group.name).create()?);
    // Reads the oldest unapplied records by assignment: never joins the
    // group, never commits.
    let mut reader_config = kafka.client_config();
    reader_config.set("group.id", &config.group.name);
    for (key, value) in READER_SETTINGS {
        reader_config.set(key, value);
    }
    let reader: Arc<BaseConsumer> = Arc::new(reader_config.create()?);
    let clients = KafkaClients { offsets: consumer, oldest: reader };
    ExporterStarted { topic: &config.topic.name, group: &config.group.name, addr: bound }.emit();
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(config.interval());
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => measure(&config, &database, &clients, &metrics, &readiness).await,
        }
    }
    Ok(())
}

/// The exporter's two Kafka clients: one reads offsets and membership, the
/// other the oldest unapplied records (it is assigned partitions, which
/// would disturb the first's reads).
struct KafkaClients {
    offsets: Arc<BaseConsumer>,
    oldest: Arc<BaseConsumer>,
}

async fn measure(
    config: &Config,
    database: &Database,
    clients: &KafkaClients,
    metrics: &ExporterMetrics,
    readiness: &Readiness,
) {
    let timeout = config.interval().max(Duration::from_secs(5));
    let (reader, topic, group) = (clients.offsets.clone(), config.topic.name.clone(), config.group.name.clone());
    let lag = tokio::task::spawn_blocking(move || read_group_lag(&reader, &topic, &group, timeout)).await;
    let kafka_ok = match lag {
        Ok(Ok(lag)) => {
            metrics.observe_lag(&config.group.name, &config.topic.name, &lag);
            measure_ages(config, &clients.oldest, metrics, lag, timeout).await
        }
        Ok(Err(error)) => {
            OffsetsUnreadable { error: &error }.emit(metrics);
            readiness.not_ready("Kafka unreachable");
            false
        }
        Err(join) => {
            OffsetsUnreadable { error: &format!("the offset reader panicked: {join}") }.emit(metrics);
            false
        }
    };
    let database_ok = match database::read(database).await {
        Ok(reading) => {
            if let Some(seconds) = reading.freshness_seconds {
                metrics.observe_freshness(seconds);
            }
            if let Some(pending) = &reading.pending_dead_letters {
                metrics.observe_dead_letters_pending(pending);
            }
            true
        }
        Err(error) => {
            DatabaseUnreadable { error: &clients::postgres::describe(&error) }.emit(metrics);
            false
        }
    };
    if kafka_ok && database_ok {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        metrics.succeeded(now);
        readiness.ready();
    }
}

/// Lag in seconds, from the oldest unapplied record of each lagging
/// partition, read within `deadline`. False when Kafka could not be read.
async fn measure_ages(
    config: &Config,
    reader: &Arc<BaseConsumer>,
    metrics: &ExporterMetrics,
    lag: GroupLag,
    deadline: Duration,
) -> bool {
    let (reader, topic) = (reader.clone(), config.topic.name.clone());
    let offsets = lag.partitions.clone();
    let read = tokio::task::spawn_blocking(move || read_oldest_unapplied(&reader, &topic, &offsets, deadline)).await;
    match read {
        Ok(Ok(oldest)) => {
            let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
            let ages = partition_ages(now_ms, &lag.partitions, &oldest);
            metrics.observe_ages(&config.group.name, &config.topic.name, &ages);
            true
        }
        Ok(Err(error)) => {
            OldestUnappliedUnreadable { error: &error }.emit(metrics);
            false
        }
        Err(join) => {
            OldestUnappliedUnreadable { error: &format!("the oldest-record reader panicked: {join}") }.emit(metrics);
            false
        }
    }
}
