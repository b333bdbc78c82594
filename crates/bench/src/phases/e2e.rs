//! orderstream end to end: the file renamed into the empty inbox until the
//! last row is committed (cold), then the same file again under another
//! name (re-ingest: newer versions, same values, all unchanged). The CPU of
//! every component during the cold run says which one sets the ceiling.

use std::time::{Duration, Instant};

use anyhow::{bail, ensure};
use harness::poll_until;

use crate::input::Input;
use crate::load_watch::epoch_now;
use crate::pipeline::Pipeline;
use crate::procfs::clock_ticks_per_second;
use crate::profile::Profiler;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// How long a cold run or a re-ingest may take.
const LOAD_WITHIN: Duration = Duration::from_secs(1800);
/// How often progress is read.
const POLL: Duration = Duration::from_millis(200);
/// The idle window after the re-ingest.
const IDLE_WINDOW: Duration = Duration::from_secs(5);

/// CPU seconds of each component.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuSeconds {
    /// The producer.
    pub producer: f64,
    /// The consumer group, summed.
    pub consumers: f64,
    /// The Kafka broker.
    pub kafka: f64,
    /// Of that, the broker's JIT compiler threads: a fresh JVM's one-off
    /// cost, which a long-running broker no longer pays.
    pub kafka_jit: f64,
    /// PostgreSQL, backends included.
    pub postgres: f64,
}

/// What the phase measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct E2eResult {
    /// File in the inbox → last row committed.
    pub cold_seconds: f64,
    /// File in the inbox → every record published (the producer's metric).
    pub publish_seconds: f64,
    /// The producer's CPU seconds until it had published every record.
    pub producer_cpu_to_publish: f64,
    /// CPU seconds over the cold run.
    pub cold_cpu: CpuSeconds,
    /// Second file in the inbox → last offset stored.
    pub reingest_seconds: f64,
    /// Peak memory after the cold run, KiB: producer, largest consumer.
    pub cold_peak_kib: (u64, u64),
    /// The consumers' batches during the cold run.
    pub batches: f64,
    /// Records in those batches.
    pub batch_records: f64,
    /// Seconds spent in their transactions (begin to commit).
    pub transaction_seconds: f64,
    /// Cores used with nothing to do: producer, consumers.
    pub idle_cores: (f64, f64),
    /// `orderstream-verify` of the cold file after both loads (0 without
    /// the re-ingest): every line accounted for, wall seconds.
    pub verify_seconds: f64,
}

/// Runs the phase: the cold load, then the re-ingest.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<E2eResult> {
    say(format!("phase e2e: cold load of {} orders, then re-ingest of the same file", settings.orders));
    run_loads(settings, services, input, Reingest::Yes).await
}

/// Runs the cold load only (the comparison's rounds: the re-ingest and
/// the idle window add minutes and no figure it compares).
pub async fn run_cold(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<E2eResult> {
    say(format!("phase e2e: cold load of {} orders ({})", settings.orders, settings.bin_dir().display()));
    run_loads(settings, services, input, Reingest::No).await
}

/// Whether the phase re-ingests the file after the cold load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reingest {
    Yes,
    No,
}

async fn run_loads(
    settings: &Settings,
    services: &Services,
    input: &Input,
    reingest: Reingest,
) -> anyhow::Result<E2eResult> {
    let orders = settings.orders as i64;
    let work = settings.work_dir();
    let (cold_file, again_file) = (work.join("cold.csv.tmp"), work.join("again.csv.tmp"));
    std::fs::copy(&input.file, &cold_file)?;
    if reingest == Reingest::Yes {
        std::fs::copy(&input.file, &again_file)?;
    }
    let mut pipeline = Pipeline::start("e2e", settings, services).await?;
    let tick = clock_ticks_per_second();
    let cpu_seconds = |from: u64, to: u64| to.saturating_sub(from) as f64 / tick;

    let (producer0, consumers0) = (pipeline.producer_ticks(), pipeline.consumer_ticks());
    let (kafka0, postgres0) = (services.kafka_ticks(), services.postgres_ticks());
    let kafka_jit0 = services.kafka_compiler_ticks();
    let profiler = Profiler::start(settings, &pipeline.pids()).await?;
    let started = epoch_now();
    std::fs::rename(&cold_file, pipeline.scenario.inbox().join("cold.csv"))?;
    let deadline = Instant::now() + LOAD_WITHIN;
    let mut published: Option<(f64, u64)> = None;
    loop {
        if published.is_none()
            && pipeline.producer.metric("orderstream_producer_records_published_total").unwrap_or(0.0) >= orders as f64
        {
            published = Some((epoch_now(), pipeline.producer_ticks()));
        }
        if pipeline.applied().await >= orders {
            break;
        }
        pipeline.check_running()?;
        if pipeline.producer.metric_sum("orderstream_producer_dead_letters_total").unwrap_or(0.0) > 0.0 {
            bail!("the producer dead-lettered lines; see the logs in {}", work.display());
        }
        ensure!(Instant::now() < deadline, "cold load not done after {LOAD_WITHIN:?}");
        tokio::time::sleep(POLL).await;
    }
    let consumer_pid = pipeline.consumers[0].pid();
    profiler.finish(settings, consumer_pid, pipeline.producer.pid()).await;
    let (producer2, consumers1) = (pipeline.producer_ticks(), pipeline.consumer_ticks());
    let (kafka1, postgres1) = (services.kafka_ticks(), services.postgres_ticks());
    let kafka_jit1 = services.kafka_compiler_ticks();
    let (published_at, producer1) = published.unwrap_or((epoch_now(), producer2));

    let db = pipeline.scenario.db().await;
    let last_written: f64 =
        db.query_one("SELECT extract(epoch FROM max(written_at))::float8 FROM orders", &[]).await?.get(0);
    let dead_letters: i64 = db.query_one("SELECT count(*) FROM dead_letters", &[]).await?.get(0);
    ensure!(dead_letters == 0, "{dead_letters} dead letters in the cold run");
    let mut result = E2eResult {
        cold_seconds: last_written - started,
        publish_seconds: published_at - started,
        producer_cpu_to_publish: cpu_seconds(producer0, producer1),
        cold_cpu: CpuSeconds {
            producer: cpu_seconds(producer0, producer2),
            consumers: cpu_seconds(consumers0, consumers1),
            kafka: cpu_seconds(kafka0, kafka1),
            kafka_jit: cpu_seconds(kafka_jit0, kafka_jit1),
            postgres: cpu_seconds(postgres0, postgres1),
        },
        cold_peak_kib: (pipeline.producer_peak_kib(), pipeline.consumer_peak_kib()),
        // The consumer's own view of the cold run: how many batches, how big,
        // how long each transaction (begin to commit) took.
        batches: pipeline.consumers_metric("orderstream_consumer_batch_records_count"),
        batch_records: pipeline.consumers_metric("orderstream_consumer_batch_records_sum"),
        transaction_seconds: pipeline.consumers_metric("orderstream_consumer_batch_commit_seconds_sum"),
        ..E2eResult::default()
    };
    let applied = pipeline.applied().await;
    ensure!(applied == orders, "consumer_offsets sum {applied} != {orders} after the cold run");
    let rows: i64 = db.query_one("SELECT count(*) FROM orders", &[]).await?.get(0);
    ensure!(rows == orders, "{rows} rows, not {orders}, after the cold run");
    if reingest == Reingest::No {
        drop(db);
        pipeline.stop(services).await?;
        return Ok(result);
    }

    let started = epoch_now();
    std::fs::rename(&again_file, pipeline.scenario.inbox().join("again.csv"))?;
    let deadline = Instant::now() + LOAD_WITHIN;
    while pipeline.applied().await < 2 * orders {
        pipeline.check_running()?;
        ensure!(Instant::now() < deadline, "re-ingest not done after {LOAD_WITHIN:?}");
        tokio::time::sleep(POLL).await;
    }
    let last_stored: f64 = db
        .query_one(
            "SELECT extract(epoch FROM max(updated_at))::float8 FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
            &[&pipeline.scenario.group, &pipeline.scenario.topic],
        )
        .await?
        .get(0);
    result.reingest_seconds = last_stored - started;
    // The metrics follow the database commit (after the next batch is
    // gathered): give the last batch a moment to be counted.
    let unchanged_series = "orderstream_consumer_upserts_total{outcome=\"unchanged\"}";
    let all_counted =
        poll_until(Duration::from_secs(5), || async { pipeline.consumers_metric(unchanged_series) >= orders as f64 })
            .await;
    let rows: i64 = db.query_one("SELECT count(*) FROM orders", &[]).await?.get(0);
    ensure!(rows == orders, "re-ingest changed the row count to {rows}");
    if !all_counted || pipeline.consumers_metric(unchanged_series) != orders as f64 {
        say(format!("warning: unchanged outcomes {} != {orders}", pipeline.consumers_metric(unchanged_series)));
    }
    // What the pipeline costs when there is nothing to do: CPU over an idle window.
    let (producer_idle0, consumers_idle0) = (pipeline.producer_ticks(), pipeline.consumer_ticks());
    tokio::time::sleep(IDLE_WINDOW).await;
    let window = IDLE_WINDOW.as_secs_f64();
    result.idle_cores = (
        cpu_seconds(producer_idle0, pipeline.producer_ticks()) / window,
        cpu_seconds(consumers_idle0, pipeline.consumer_ticks()) / window,
    );
    drop(db);
    result.verify_seconds = crate::phases::verify::run(settings, &pipeline, "cold.csv")?;
    pipeline.stop(services).await?;
    Ok(result)
}
