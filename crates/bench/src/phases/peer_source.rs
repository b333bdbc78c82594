//! The source half's peer: Kafka Connect's `FileStreamSource` connector
//! (standalone worker) reading the generated file into a topic, raw lines
//! (it neither parses nor validates; the header line travels too). Timed
//! like [`super::source`] from the topic's end offsets: first record →
//! N-th record (the JVM's start-up does not count), and from the worker's
//! launch; CPU of the worker and the broker over the load.
//!
//! Every setting and why: BENCHMARKS.md, "Peers".

use std::time::Duration;

use anyhow::Context;

use crate::connect_worker::{write_properties, ConnectWorker};
use crate::input::Input;
use crate::load_watch::epoch_now;
use crate::load_watch::{watch, CpuTicks, LoadResult, TopicFill};
use crate::phases::source::POLL;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// The peer's topic.
const TOPIC: &str = "bench.peer.lines";
/// The connector's name.
const CONNECTOR: &str = "peer-file-source";
/// Partitions: as orderstream's topic.
const PARTITIONS: i32 = harness::PARTITIONS;
/// How long the load may take.
const LOAD_WITHIN: Duration = Duration::from_secs(1800);

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<LoadResult> {
    say(format!("phase peer_source: Kafka Connect FileStreamSource, {} orders", settings.orders));
    services.create_topic(TOPIC, PARTITIONS as u32)?;
    let dir = settings.work_dir().join("peer-source");
    std::fs::create_dir_all(&dir)?;
    let (worker, connector) = (dir.join("worker.properties"), dir.join("file-source.properties"));
    write_properties(&worker, &worker_properties(services, &dir))?;
    write_properties(&connector, &connector_properties(input))?;
    let fill = TopicFill::new(&services.brokers, TOPIC, PARTITIONS)?;
    // N records: the file has N + 1 lines (the header too), but when a
    // poll fills `batch.size` exactly at the end of the file, the task keeps
    // the lines left in its buffer until more data arrives (seen here:
    // 100,000 records of 100,001 lines with batch.size 10,000).
    let lines = settings.orders as i64;
    let started = epoch_now();
    let peer = ConnectWorker::start(settings, &worker, &[connector])?;
    let ticks = || CpuTicks { loader: peer.ticks(), service: services.kafka_ticks() };
    let mut check = || peer.check(CONNECTOR);
    let progress = || async { fill.progress(lines) };
    let watched = watch(started, LOAD_WITHIN, POLL, progress, &ticks, &mut check)
        .await
        .with_context(|| format!("the peer's log: {}", peer.log().display()))?;
    drop(peer);
    Ok(watched.result())
}

/// The worker: the bench's broker, lines as strings, offsets in a file
/// (standalone), and connectors allowed to tune their own producer.
fn worker_properties(services: &Services, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", services.brokers.clone()),
        ("key.converter", "org.apache.kafka.connect.storage.StringConverter".into()),
        ("value.converter", "org.apache.kafka.connect.storage.StringConverter".into()),
        ("offset.storage.file.filename", dir.join("offsets").display().to_string()),
        ("offset.flush.interval.ms", "10000".into()),
        ("connector.client.config.override.policy", "All".into()),
    ]
}

/// The connector (one task: the file connector has no more), tuned as the
/// producer's documentation advises for throughput: larger reads, batches
/// that linger a little, lz4, and acks=all with idempotence (orderstream's
/// producer settings, so both sources give the same guarantee).
fn connector_properties(input: &Input) -> Vec<(&'static str, String)> {
    vec![
        ("name", CONNECTOR.into()),
        ("connector.class", "org.apache.kafka.connect.file.FileStreamSourceConnector".into()),
        ("tasks.max", "1".into()),
        ("file", input.file.display().to_string()),
        ("topic", TOPIC.into()),
        ("batch.size", "10000".into()),
        ("producer.override.acks", "all".into()),
        ("producer.override.enable.idempotence", "true".into()),
        ("producer.override.max.in.flight.requests.per.connection", "5".into()),
        ("producer.override.linger.ms", "5".into()),
        ("producer.override.batch.size", "262144".into()),
        ("producer.override.compression.type", "lz4".into()),
    ]
}
