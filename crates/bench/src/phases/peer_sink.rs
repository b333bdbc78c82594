//! The sink half's peer: Kafka Connect (standalone) with the Debezium JDBC
//! sink connector, upserting by `id` into a table of its own in its own
//! database on the bench's PostgreSQL, from a topic of the same N orders
//! as Connect's `JsonConverter` reads them (schema inline, no registry).
//! Timed and costed like [`super::sink`]: first row committed → last row
//! (the JVM's start-up does not count), and from the worker's launch.
//!
//! Every setting and why: BENCHMARKS.md, "Peers".

use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use schema::{parse_order, Columns};

use crate::connect_json::ConnectJsonEncoder;
use crate::connect_worker::{write_properties, ConnectWorker};
use crate::input::Input;
use crate::load_watch::epoch_now;
use crate::load_watch::{watch, CpuTicks, LoadResult, Progress};
use crate::say;
use crate::services::{connect, Services};
use crate::settings::Settings;

/// The peer's database, topic and table.
const DATABASE: &str = "bench_peer";
const TOPIC: &str = "bench.peer.orders";
const TABLE: &str = "peer_orders";
/// The connector's name.
const CONNECTOR: &str = "peer-jdbc-sink";
/// Partitions of the topic: as orderstream's.
const PARTITIONS: i32 = harness::PARTITIONS;
/// How long the drain may take.
const LOAD_WITHIN: Duration = Duration::from_secs(1800);
/// How often progress is read.
const POLL: Duration = Duration::from_millis(200);
/// Records in flight while the topic is filled (below librdkafka's queue of 100,000).
const IN_FLIGHT: usize = 50_000;
/// The connector's batch: records per `put` and per JDBC batch.
const BATCH: &str = "5000";

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<LoadResult> {
    say(format!("phase peer_sink: Kafka Connect + Debezium JDBC sink, {} orders", settings.orders));
    let admin = services.admin().await?;
    // Two statements: CREATE DATABASE cannot run in the implicit transaction of one.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")).await?;
    admin.batch_execute(&format!("CREATE DATABASE {DATABASE}")).await?;
    let url = services.database_url(DATABASE);
    let database = connect(&url).await?;
    // The table the connector creates itself (schema.evolution=basic), plus
    // `written_at` as in `orders`: the same commit clock for both sinks.
    database
        .batch_execute(&format!(
            "CREATE TABLE {TABLE} (id bigint PRIMARY KEY, user_id bigint NOT NULL, completed_at timestamp(6) NOT NULL,
               item_total numeric(38,2) NOT NULL, shipment_total numeric(38,2) NOT NULL,
               written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ))
        .await?;
    services.create_topic(TOPIC, PARTITIONS as u32)?;
    let last_ids = publish(services, input).await?;
    say(format!("peer_sink: {} records on {TOPIC}", settings.orders));

    let dir = settings.work_dir().join("peer-sink");
    std::fs::create_dir_all(&dir)?;
    let (worker, connector) = (dir.join("worker.properties"), dir.join("jdbc-sink.properties"));
    write_properties(&worker, &worker_properties(services, &dir))?;
    write_properties(&connector, &connector_properties(&url)?)?;
    let started = epoch_now();
    let peer = ConnectWorker::start(settings, &worker, &[connector])?;
    let ticks = || CpuTicks { loader: peer.ticks(), service: services.postgres_ticks() };
    let mut check = || peer.check(CONNECTOR);
    // Cheap at any size: whether any row is there, and which of the last
    // record of each partition are (the connector writes a partition in
    // order); a count(*) of the growing table every poll would cost
    // PostgreSQL CPU charged to the peer.
    let last_ids: Vec<i64> = last_ids.into_values().collect();
    let progress = || async {
        let row = database
            .query_one(
                &format!("SELECT EXISTS (SELECT 1 FROM {TABLE}), (SELECT count(*) FROM {TABLE} WHERE id = ANY($1))"),
                &[&last_ids],
            )
            .await?;
        let (any, last_present): (bool, i64) = (row.get(0), row.get(1));
        Ok(match (any, last_present as usize == last_ids.len()) {
            (false, _) => Progress::Nothing,
            (true, false) => Progress::Some,
            (true, true) => Progress::All,
        })
    };
    let watched = watch(started, LOAD_WITHIN, POLL, progress, &ticks, &mut check)
        .await
        .with_context(|| format!("the peer's log: {}", peer.log().display()))?;
    drop(peer);
    let row = database
        .query_one(
            &format!(
                "SELECT count(*), extract(epoch FROM min(written_at))::float8, extract(epoch FROM max(written_at))::float8
                 FROM {TABLE}"
            ),
            &[],
        )
        .await?;
    let (rows, first, last): (i64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    ensure!(rows == settings.orders as i64, "the peer wrote {rows} rows, not {}", settings.orders);
    drop(database);
    admin.batch_execute(&format!("DROP DATABASE {DATABASE} WITH (FORCE)")).await?;
    Ok(watched.result_between(first, last))
}

/// The worker: the bench's broker, JSON with schema, offsets in a file
/// (standalone), and connectors allowed to tune their own consumer.
fn worker_properties(services: &Services, dir: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("bootstrap.servers", services.brokers.clone()),
        ("key.converter", "org.apache.kafka.connect.storage.StringConverter".into()),
        ("value.converter", "org.apache.kafka.connect.json.JsonConverter".into()),
        ("value.converter.schemas.enable", "true".into()),
        ("offset.storage.file.filename", dir.join("offsets").display().to_string()),
        ("offset.flush.interval.ms", "10000".into()),
        ("connector.client.config.override.policy", "All".into()),
    ]
}

/// The connector, tuned as its documentation allows: upsert by `id` read
/// from the value, batches of 5,000 both from Kafka and to PostgreSQL,
/// the driver's multi-row inserts.
fn connector_properties(url: &str) -> anyhow::Result<Vec<(&'static str, String)>> {
    let config: tokio_postgres::Config = url.parse().context("the peer database's URL")?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        _ => bail!("the bench PostgreSQL is not on TCP: {url}"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres").to_string();
    let password = config.get_password().map(|bytes| String::from_utf8_lossy(bytes).into_owned()).unwrap_or_default();
    Ok(vec![
        ("name", CONNECTOR.into()),
        ("connector.class", "io.debezium.connector.jdbc.JdbcSinkConnector".into()),
        ("tasks.max", "1".into()),
        ("topics", TOPIC.into()),
        ("connection.url", format!("jdbc:postgresql://{host}:{port}/{DATABASE}?reWriteBatchedInserts=true")),
        ("connection.username", user),
        ("connection.password", password),
        ("insert.mode", "upsert".into()),
        ("delete.enabled", "false".into()),
        ("primary.key.mode", "record_value".into()),
        ("primary.key.fields", "id".into()),
        ("schema.evolution", "basic".into()),
        ("collection.name.format", TABLE.into()),
        ("batch.size", BATCH.into()),
        ("consumer.override.max.poll.records", BATCH.into()),
        ("consumer.override.auto.offset.reset", "earliest".into()),
    ])
}

/// Publishes every order of the file to [`TOPIC`], keyed by id, as the
/// connector reads them; returns each partition's last id.
async fn publish(services: &Services, input: &Input) -> anyhow::Result<BTreeMap<i32, i64>> {
    let text = std::fs::read_to_string(&input.file)?;
    let mut lines = text.lines();
    let header = lines.next().context("an empty input file")?;
    let columns = Columns::from_header(header.split(','))?;
    let now = chrono::Utc::now();
    let encoder = ConnectJsonEncoder::default();
    // As orderstream's producer: the sink halves read the same kind of batches.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &services.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()?;
    let mut pending = VecDeque::new();
    let mut last_ids = BTreeMap::new();
    let settle = |delivery: rdkafka::producer::DeliveryFuture, id: i64| async move {
        let delivered = delivery.await.context("delivery answered")?.map_err(|(error, _)| error)?;
        anyhow::Ok((delivered.partition, delivered.offset, id))
    };
    let mut last_offsets: BTreeMap<i32, i64> = BTreeMap::new();
    let mut record = |partition: i32, offset: i64, id: i64| {
        if last_offsets.get(&partition).is_none_or(|&seen| offset > seen) {
            last_offsets.insert(partition, offset);
            last_ids.insert(partition, id);
        }
    };
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let order = parse_order(&fields, &columns, now).map_err(|rejection| anyhow::anyhow!("{rejection:?}"))?;
        let (key, value) = (order.id.to_string(), encoder.encode(&order));
        let delivery = producer
            .send_result(FutureRecord::to(TOPIC).key(&key).payload(&value))
            .map_err(|(error, _)| error)
            .context("enqueue a record")?;
        pending.push_back((delivery, order.id));
        if pending.len() >= IN_FLIGHT {
            let (delivery, id) = pending.pop_front().expect("a pending delivery");
            let (partition, offset, id) = settle(delivery, id).await?;
            record(partition, offset, id);
        }
    }
    while let Some((delivery, id)) = pending.pop_front() {
        let (partition, offset, id) = settle(delivery, id).await?;
        record(partition, offset, id);
    }
    Ok(last_ids)
}
