//! orderstream's file → Kafka half alone: the producer, no consumer
//! running, publishes the generated file into a fresh scenario's topic
//! (it parses and validates every line). Timed like its peer
//! ([`super::peer_source`]) from the topic's end offsets; the filled topic
//! then feeds the [`super::sink`] phase.

use std::time::Duration;

use anyhow::{bail, ensure};
use harness::{Scenario, PARTITIONS};

use crate::input::Input;
use crate::load_watch::epoch_now;
use crate::load_watch::{watch, CpuTicks, LoadResult, TopicFill};
use crate::procfs;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// How long the producer may take to be ready, and to publish the file.
const READY_WITHIN: Duration = Duration::from_secs(60);
const LOAD_WITHIN: Duration = Duration::from_secs(1800);
/// How often the topic's end offsets are read.
pub const POLL: Duration = Duration::from_millis(50);

/// Runs the phase; returns its result and the scenario whose topic holds
/// the N orders in orderstream's wire format.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<(LoadResult, Scenario)> {
    say(format!("phase source: the producer alone publishes {} orders", settings.orders));
    let scenario = Scenario::on_services("bench_sink", &services.admin_url, &services.brokers)
        .await
        .with_binaries_from(&settings.bin_dir());
    let staged = settings.work_dir().join("source.csv.tmp");
    std::fs::copy(&input.file, &staged)?;
    let mut producer = scenario.start_producer();
    ensure!(producer.wait_ready(READY_WITHIN), "the source producer was not ready within {READY_WITHIN:?}");
    let fill = TopicFill::new(&services.brokers, &scenario.topic, PARTITIONS)?;
    // The dead-letter topic, not the producer's /metrics: a scrape every
    // poll would cost the producer CPU that the phase measures.
    let dead_letters = TopicFill::new(&services.brokers, &scenario.dlq_topic, PARTITIONS)?;
    let orders = settings.orders as i64;
    let pid = producer.pid();
    let ticks = || CpuTicks { loader: procfs::cpu_ticks(pid), service: services.kafka_ticks() };
    let started = epoch_now();
    std::fs::rename(&staged, scenario.inbox().join("source.csv"))?;
    let mut check = || {
        if !producer.is_running() {
            bail!("the source producer exited; see the logs in {}", settings.work_dir().display());
        }
        if dead_letters.records()? > 0 {
            bail!("the producer dead-lettered lines; see the logs in {}", settings.work_dir().display());
        }
        Ok(())
    };
    let progress = || async { fill.progress(orders) };
    let watched = watch(started, LOAD_WITHIN, POLL, progress, &ticks, &mut check).await?;
    let published = fill.records()?;
    ensure!(published == orders, "the topic holds {published} records, not {orders}");
    producer.terminate();
    Ok((watched.result(), scenario))
}
