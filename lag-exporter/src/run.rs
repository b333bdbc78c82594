//! The polling loop. Each measurement stands alone: a broker or database
//! that is away is counted and retried at the next tick, and the process
//! keeps serving what it last saw.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;
use telemetry::Readiness;
use tokio_postgres::NoTls;
use tracing::{info, warn};

use crate::config::Config;
use crate::lag::read_group_lag;
use crate::metrics::ExporterMetrics;

/// Measures every `interval` until `shutdown` resolves.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let metrics = ExporterMetrics::new();
    let readiness = Readiness::new("no measurement yet");
    telemetry::serve(config.metrics_addr, metrics.registry.clone(), readiness.clone()).await?;
    let mut kafka = ClientConfig::new();
    kafka.set("bootstrap.servers", &config.brokers).set("group.id", &config.group);
    for (key, value) in &config.kafka_options {
        kafka.set(key, value);
    }
    // Reads offsets of the group without joining it.
    let consumer: Arc<BaseConsumer> = Arc::new(kafka.create()?);
    info!(message = "Lag exporter started.", topic = %config.topic, group = %config.group,
          metrics = %config.metrics_addr);
    tokio::pin!(shutdown);
    let mut ticks = tokio::time::interval(config.interval());
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticks.tick() => measure(&config, &consumer, &metrics, &readiness).await,
        }
    }
    Ok(())
}

async fn measure(config: &Config, consumer: &Arc<BaseConsumer>, metrics: &ExporterMetrics, readiness: &Readiness) {
    let timeout = config.interval().max(Duration::from_secs(5));
    let (reader, topic, group) = (consumer.clone(), config.topic.clone(), config.group.clone());
    let lag = tokio::task::spawn_blocking(move || read_group_lag(&reader, &topic, &group, timeout)).await;
    let kafka_ok = match lag {
        Ok(Ok(lag)) => {
            metrics.observe_lag(&config.group, &config.topic, &lag);
            true
        }
        Ok(Err(error)) => {
            warn!(message = "Cannot read offsets from Kafka.", %error);
            metrics.failed("kafka");
            readiness.not_ready("Kafka unreachable");
            false
        }
        Err(join) => {
            warn!(message = "Offset reader panicked.", error = %join);
            metrics.failed("kafka");
            false
        }
    };
    let database_ok = match freshness(&config.database_url).await {
        Ok(Some(seconds)) => {
            metrics.observe_freshness(seconds);
            true
        }
        Ok(None) => true,
        Err(error) => {
            warn!(message = "Cannot read freshness from PostgreSQL.", %error);
            metrics.failed("database");
            false
        }
    };
    if kafka_ok && database_ok {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        metrics.succeeded(now);
        readiness.ready();
    }
}

/// Seconds since the newest committed order was read; `None` while the table
/// is empty or not created yet.
async fn freshness(database_url: &str) -> Result<Option<f64>, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(database_url, NoTls).await?;
    tokio::spawn(connection);
    let exists: bool = client.query_one("SELECT to_regclass('orders') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT EXTRACT(EPOCH FROM clock_timestamp() - max(read_at))::float8 FROM orders", &[])
        .await?;
    Ok(row.get(0))
}
