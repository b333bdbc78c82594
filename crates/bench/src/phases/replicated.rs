//! orderstream end to end on a three-node Kafka cluster (`--cluster`): the
//! e2e phase's cold run, the same file and consumer group, with topics
//! replicated 3 times and `min.insync.replicas` 2, so every record the
//! producer publishes (acks=all) waits for a second broker. Its rate over
//! the one-broker cold run of the same bench is the cost of replication.

use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::cluster::{Cluster, NODES};
use crate::input::Input;
use crate::load_watch::epoch_now;
use crate::phases::e2e::CpuSeconds;
use crate::pipeline::Pipeline;
use crate::procfs::clock_ticks_per_second;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// How long the cold run may take.
const LOAD_WITHIN: Duration = Duration::from_secs(1800);
/// How often progress is read.
const POLL: Duration = Duration::from_millis(200);

/// What the phase measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplicatedResult {
    /// File in the inbox → last row committed.
    pub cold_seconds: f64,
    /// CPU seconds over the cold run (`kafka`: the three nodes).
    pub cold_cpu: CpuSeconds,
}

/// Runs the phase: starts the cluster, loads the file, stops the cluster.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<ReplicatedResult> {
    say(format!("phase replicated: cold load of {} orders on {NODES} brokers, replication {NODES}", settings.orders));
    let cluster = Cluster::start_fresh(settings)?;
    let orders = settings.orders as i64;
    let file = settings.work_dir().join("replicated.csv.tmp");
    std::fs::copy(&input.file, &file)?;
    let replication = i32::try_from(NODES)?;
    let mut pipeline = Pipeline::start_on("replicated", settings, services, &cluster.brokers, replication).await?;
    let tick = clock_ticks_per_second();
    let cpu_seconds = |from: u64, to: u64| to.saturating_sub(from) as f64 / tick;
    let (producer0, consumers0) = (pipeline.producer_ticks(), pipeline.consumer_ticks());
    let (kafka0, postgres0) = (cluster.kafka_ticks(), services.postgres_ticks());
    let started = epoch_now();
    std::fs::rename(&file, pipeline.scenario.inbox().join("replicated.csv"))?;
    let deadline = Instant::now() + LOAD_WITHIN;
    while pipeline.applied().await < orders {
        pipeline.check_running()?;
        ensure!(Instant::now() < deadline, "replicated cold load not done after {LOAD_WITHIN:?}");
        tokio::time::sleep(POLL).await;
    }
    let cold_cpu = CpuSeconds {
        producer: cpu_seconds(producer0, pipeline.producer_ticks()),
        consumers: cpu_seconds(consumers0, pipeline.consumer_ticks()),
        kafka: cpu_seconds(kafka0, cluster.kafka_ticks()),
        // The cluster's report compares whole brokers only.
        kafka_jit: 0.0,
        postgres: cpu_seconds(postgres0, services.postgres_ticks()),
    };
    let db = pipeline.scenario.db().await;
    let last_written: f64 =
        db.query_one("SELECT extract(epoch FROM max(written_at))::float8 FROM orders", &[]).await?.get(0);
    let rows: i64 = db.query_one("SELECT count(*) FROM orders", &[]).await?.get(0);
    ensure!(rows == orders, "{rows} rows, not {orders}, after the replicated cold run");
    drop(db);
    pipeline.stop(services).await?;
    drop(cluster);
    Ok(ReplicatedResult { cold_seconds: last_written - started, cold_cpu })
}
