//! `make bench`: orderstream's throughput, latency and memory against the
//! limits of its parts, measured in one run on this machine, on services of
//! its own, with the end-to-end harness's [`harness::Scenario`] and
//! [`harness::Process`].
//!
//! Phases (each with a fresh database and fresh topics):
//! - warmup: an untimed load of the first 100,000 orders through the
//!   pipeline, so that no figure pays for the fresh broker's JIT.
//! - copy: `psql \copy` of the generated file into a table shaped like
//!   `orders` (primary key included): PostgreSQL's limit.
//! - kafka: the broker's own `ProducerPerformance`, records of the mean
//!   encoded size of ours, acks=all, lz4, idempotent, 6 partitions: Kafka's
//!   limit.
//! - e2e: producer + consumer group: the file renamed into the empty inbox
//!   until the last row is committed (cold), then the same file again under
//!   another name (re-ingest: newer versions, same values, all unchanged);
//!   CPU of every component and the consumers' batches during the cold run.
//!   Then verify: `orderstream-verify` accounts for every line of the cold
//!   file (superseded by the re-ingest), timed against `COPY`.
//! - replicated (`--cluster`): the e2e cold run again on a three-node
//!   Kafka cluster, topics replicated 3 times: the cost of replication.
//! - naive: one `INSERT … ON CONFLICT` and one commit per record
//!   (`crates/consumer/examples/naive_upsert.rs`), a sample, the rate extrapolated.
//! - latency: a steady append; write time per line against
//!   `orders.written_at`.
//! - source: the producer alone publishes the file into a topic (timed
//!   from the topic's end offsets); sink: the consumer group then drains
//!   that topic into `orders` (timed by `written_at`, first row to last).
//! - with `BENCH_SCALING=1`, only copy and e2e, and a one-line report: how
//!   the cost grows with consumers and orders.
//! - with `--compare-with DIR` (`make bench-compare`), only the e2e cold
//!   load, source and sink, for each build in turn, and the ratios.
//! - peer_source, peer_sink (`BENCH_PEERS`, on by default): Kafka Connect,
//!   standalone, doing each half instead: `FileStreamSource` reading the
//!   same file, the Debezium JDBC sink upserting the same orders; timed and
//!   costed the same way.
//!
//! Layout:
//! - `settings`: the `BENCH_*` settings; `ports`: defaults from `ports.env`.
//! - `services`: the bench's own PostgreSQL and Kafka (the project's
//!   scripts), fresh at the start, stopped when dropped; `cluster`: the
//!   replicated run's three-node Kafka cluster.
//! - `input`: the generated file and its mean Kafka value size.
//! - `pipeline`: producer and consumer group on a fresh scenario, started
//!   and settled (ready files, `/readyz`, the consumers' `/status`).
//! - `connect_worker`: the peers' Kafka Connect worker
//!   (`scripts/connect.sh`); `connect_json`: orders as its JSON converter
//!   reads them; `load_watch`: one half's load watched from outside
//!   (first and last arrival, CPU between).
//! - `procfs`: CPU time and peak memory of processes, from `/proc`.
//! - `phases`: one module per phase; `profile`: `BENCH_PERF` and
//!   `BENCH_PROFILE` (`perf`).
//! - `report`: the table and the machine-readable last line; `wire`: bytes
//!   per record on the topic, stored and decompressed.
//! - `compare` (`--compare-with`, `make bench-compare`): this build against
//!   an older one, alternately on the same services and input; new ÷ old.

mod cluster;
mod compare;
mod connect_json;
mod connect_worker;
mod input;
mod load_watch;
mod phases;
mod pipeline;
mod ports;
mod procfs;
mod profile;
mod report;
mod services;
mod settings;
mod wire;

pub use settings::Settings;

use std::time::Instant;

use anyhow::Context;

use crate::report::{Peers, Results};
use crate::services::Services;

/// Prints a progress line on standard error (the report goes to standard
/// output, its last line machine-readable).
pub fn say(message: impl std::fmt::Display) {
    eprintln!("bench: {message}");
}

/// Runs every phase and returns the report. Everything it starts is
/// stopped when the returned future completes or is dropped (Ctrl-C).
pub async fn run(settings: &Settings) -> anyhow::Result<String> {
    let started = Instant::now();
    let services = Services::start_fresh(settings)?;
    let input = input::generate(settings)?;
    say(format!(
        "input: {} orders, {} bytes of CSV, mean Kafka value {:.1} bytes",
        settings.orders, input.file_bytes, input.mean_value_bytes
    ));
    phases::warmup::run(settings, &services, &input).await.context("phase warmup")?;
    if settings.compare_with.is_some() {
        let report = compare::run(settings, &services, &input).await;
        drop(services);
        return report;
    }
    let copy = phases::copy::run(settings, &services, &input).await.context("phase copy")?;
    if settings.scaling {
        let e2e = phases::e2e::run(settings, &services, &input).await.context("phase e2e")?;
        drop(services);
        return Ok(report::render_scaling(settings, &copy, &e2e, started.elapsed()));
    }
    let kafka = phases::kafka::run(settings, &services, &input).await.context("phase kafka")?;
    let e2e = phases::e2e::run(settings, &services, &input).await.context("phase e2e")?;
    let replicated = if settings.cluster {
        Some(phases::replicated::run(settings, &services, &input).await.context("phase replicated")?)
    } else {
        None
    };
    let naive = phases::naive::run(settings, &services, &input).await.context("phase naive")?;
    let latency = phases::latency::run(settings, &services).await.context("phase latency")?;
    let (source, filled) = phases::source::run(settings, &services, &input).await.context("phase source")?;
    let sink = phases::sink::run(settings, &services, filled).await.context("phase sink")?;
    let peers = if settings.peers {
        let source = phases::peer_source::run(settings, &services, &input).await.context("phase peer_source")?;
        let sink = phases::peer_sink::run(settings, &services, &input).await.context("phase peer_sink")?;
        Some(Peers { source, sink })
    } else {
        say("peers skipped (BENCH_PEERS=0)");
        None
    };
    drop(services);
    let results = Results {
        input,
        copy,
        kafka,
        e2e,
        replicated,
        naive,
        latency,
        source,
        sink: sink.load,
        sink_peak_kib: sink.consumer_peak_kib,
        peers,
    };
    Ok(report::render(settings, &results, started.elapsed()))
}
