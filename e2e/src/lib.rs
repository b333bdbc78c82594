//! Test harness for end-to-end tests: the real producer and consumer binaries
//! against the real Kafka broker and PostgreSQL that `make test` starts.
//!
//! Every [`Scenario`] gets its own database, topics, consumer group and inbox,
//! so tests run in parallel without seeing each other's data.
//!
//! The services are found through `ORDERSTREAM_TEST_DATABASE_URL` (a role
//! allowed to create databases) and `ORDERSTREAM_TEST_KAFKA_BROKERS`, which
//! `make test` sets. Without them the tests fail and say how to get them:
//! integration tests that pass without the services would prove nothing.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use rust_decimal::Decimal;
use tokio_postgres::NoTls;

pub mod postgres;

/// The header of every order export.
pub const HEADER: &str = "id,user_id,completed_at,item_total,shipment_total\n";

/// Partitions of every test topic: several, as in production, so ordering
/// and rebalancing are exercised.
pub const PARTITIONS: i32 = 6;

pub mod endpoints;
pub mod kafka;
pub mod prometheus;
pub mod services;
pub mod topic;

pub use topic::{TopicReader, TopicRecord};

static SEQUENCE: AtomicU32 = AtomicU32::new(0);

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: end-to-end tests need the test PostgreSQL and Kafka. \
             Run `make test` (it starts them), or `make test-services` and `. .local/test/env`."
        )
    })
}

/// Where the workspace's binaries were built.
pub fn binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("ORDERSTREAM_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug"));
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: build it first (`cargo build --workspace --bins`)", path.display());
    path
}

/// One isolated run of the pipeline.
pub struct Scenario {
    /// Short name, for logs.
    pub name: String,
    /// Connection URL of this scenario's own database.
    pub database_url: String,
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// This scenario's orders topic.
    pub topic: String,
    /// This scenario's dead-letter topic.
    pub dlq_topic: String,
    /// This scenario's consumer group.
    pub group: String,
    /// Temporary folder holding the inbox and the producer's state.
    pub dir: tempfile::TempDir,
}

impl Scenario {
    /// Creates the database and topics of a new scenario on the shared test
    /// Kafka broker.
    pub async fn new(name: &str) -> Scenario {
        Scenario::on_brokers(name, &required_env("ORDERSTREAM_TEST_KAFKA_BROKERS")).await
    }

    /// Creates the database and topics of a new scenario on the given Kafka
    /// brokers (a [`kafka::PrivateKafka`] for tests that stop Kafka).
    pub async fn on_brokers(name: &str, brokers: &str) -> Scenario {
        Scenario::create(name, &required_env("ORDERSTREAM_TEST_DATABASE_URL"), brokers).await
    }

    /// Like [`Scenario::new`], with the database on another cluster (e.g. a
    /// [`postgres::PrivatePostgres`] that the test stops).
    pub async fn new_on(name: &str, admin_url: &str) -> Scenario {
        Scenario::create(name, admin_url, &required_env("ORDERSTREAM_TEST_KAFKA_BROKERS")).await
    }

    async fn create(name: &str, admin_url: &str, brokers: &str) -> Scenario {
        let unique = format!("{name}_{}_{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::SeqCst));
        let database = format!("t_{unique}");
        let (admin, connection) = tokio_postgres::connect(admin_url, NoTls).await.expect("connect to PostgreSQL");
        tokio::spawn(connection);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        let scenario = Scenario {
            name: name.to_string(),
            database_url: url_of(admin_url, &database),
            brokers: brokers.to_string(),
            topic: format!("orders-{unique}"),
            dlq_topic: format!("orders.dlq-{unique}"),
            group: format!("group-{unique}"),
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(scenario.inbox()).unwrap();
        scenario.create_topics().await;
        scenario
    }

    async fn create_topics(&self) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        let topics =
            [&self.topic, &self.dlq_topic].map(|name| NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1)));
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create test topics") {
            result.expect("test topic created");
        }
    }

    /// The folder the producer watches.
    pub fn inbox(&self) -> PathBuf {
        self.dir.path().join("inbox")
    }

    /// The producer's state folder.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Appends bytes to a file in the inbox, creating it if needed.
    pub fn append(&self, file: &str, bytes: &[u8]) {
        let mut handle = std::fs::OpenOptions::new().create(true).append(true).open(self.inbox().join(file)).unwrap();
        handle.write_all(bytes).unwrap();
        handle.sync_data().unwrap();
    }

    fn common_env(&self, command: &mut Command) {
        command
            .env("KAFKA_BROKERS", &self.brokers)
            .env("ORDERSTREAM_TOPIC", &self.topic)
            .env("ORDERSTREAM_DLQ_TOPIC", &self.dlq_topic)
            .env("RUST_LOG", "info")
            .env("ORDERSTREAM_PRODUCER_METRICS_ADDR", "127.0.0.1:0")
            .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null());
    }

    /// Starts the real producer binary on this scenario's inbox.
    pub fn start_producer(&self) -> Process {
        self.start_producer_with(&[])
    }

    /// Starts the producer with extra environment (e.g. `FAILPOINTS`).
    pub fn start_producer_with(&self, extra_env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(binary("orderstream-producer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_INBOX", self.inbox()).env("ORDERSTREAM_STATE_DIR", self.state_dir());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        Process::spawn(&format!("{}-producer", self.name), command)
    }

    /// Starts the real consumer binary on this scenario's database.
    pub fn start_consumer(&self) -> Process {
        self.start_consumer_in_group(&self.group)
    }

    /// Starts a consumer in another group: it re-reads the whole topic.
    pub fn start_consumer_in_group(&self, group: &str) -> Process {
        let mut command = Command::new(binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("DATABASE_URL", &self.database_url).env("ORDERSTREAM_GROUP", group);
        Process::spawn(&format!("{}-consumer", self.name), command)
    }

    /// Starts the real lag exporter on this scenario's group, topic and database.
    pub fn start_lag_exporter(&self) -> Process {
        let mut command = Command::new(binary("orderstream-lag-exporter"));
        self.common_env(&mut command);
        command
            .env("DATABASE_URL", &self.database_url)
            .env("ORDERSTREAM_GROUP", &self.group)
            .env("ORDERSTREAM_LAG_INTERVAL_MS", "1000")
            .env("ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR", "127.0.0.1:0");
        Process::spawn(&format!("{}-lag-exporter", self.name), command)
    }

    /// A connection to this scenario's database.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A connection to this scenario's database, `None` while it is away.
    pub async fn try_db(&self) -> Option<tokio_postgres::Client> {
        let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls).await.ok()?;
        tokio::spawn(connection);
        Some(client)
    }

    /// Rows in `orders`, 0 while the table does not exist yet.
    pub async fn order_count(&self) -> i64 {
        let client = self.db().await;
        match client.query_one("SELECT count(*) FROM orders", &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0,
        }
    }

    /// Every stored order: id → (user_id, item_total, shipment_total).
    pub async fn orders(&self) -> BTreeMap<i64, (i64, Decimal, Decimal)> {
        let client = self.db().await;
        let rows = client.query("SELECT id, user_id, item_total, shipment_total FROM orders", &[]).await.unwrap();
        rows.iter().map(|row| (row.get(0), (row.get(1), row.get(2), row.get(3)))).collect()
    }

    /// Waits until `orders` holds `expected` rows; panics with the count seen
    /// if it does not within `timeout`.
    pub async fn wait_for_orders(&self, expected: i64, timeout: Duration) {
        let last = std::cell::Cell::new(0);
        let reached = poll_until(timeout, || async {
            last.set(self.order_count().await);
            last.get() >= expected
        })
        .await;
        assert!(reached, "{}: expected {expected} orders within {timeout:?}, found {}", self.name, last.get());
    }

    /// How many records a topic holds: the sum of its partitions' high
    /// watermarks (test topics are never compacted or truncated).
    pub fn topic_record_count(&self, topic: &str) -> i64 {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        (0..PARTITIONS)
            .map(|partition| {
                let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)).unwrap();
                high - low
            })
            .sum()
    }

    /// Every record on a topic, read from the beginning until `expected`
    /// records were read or `timeout` passed.
    pub fn read_topic(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<TopicRecord> {
        let mut reader = TopicReader::new(&self.brokers, topic);
        reader.wait_for(expected, timeout);
        reader.records
    }
}

fn url_of(admin_url: &str, database: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{database}")
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub async fn poll_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A running binary, killed when dropped so a failing test leaves nothing
/// behind. Its output goes to a log file named after it, printed on failure.
pub struct Process {
    name: String,
    child: Child,
    log: PathBuf,
    /// Where the process writes its bound address (`--ready-file`).
    ready_file: PathBuf,
}

/// The ready-file variables of the binaries that serve endpoints; each
/// binary reads only its own.
const READY_FILE_VARIABLES: [&str; 3] =
    ["ORDERSTREAM_PRODUCER_READY_FILE", "ORDERSTREAM_CONSUMER_READY_FILE", "ORDERSTREAM_LAG_EXPORTER_READY_FILE"];

impl Process {
    fn spawn(name: &str, mut command: Command) -> Process {
        // One file per process, even for processes of the same name (a
        // restarted consumer, a second member): its output and the metrics
        // address read from it are its own.
        let sequence = SEQUENCE.fetch_add(1, Ordering::SeqCst);
        let log = std::env::temp_dir().join(format!("orderstream-e2e-{name}-{}-{sequence}.log", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file);
        // A ready file beside the log, unless the test chose one.
        let chosen = command
            .get_envs()
            .find(|(name, value)| value.is_some() && READY_FILE_VARIABLES.iter().any(|variable| name == variable))
            .and_then(|(_, value)| value.map(PathBuf::from));
        let ready_file = chosen.unwrap_or_else(|| {
            let path = log.with_extension("ready");
            for variable in READY_FILE_VARIABLES {
                command.env(variable, &path);
            }
            path
        });
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Process { name: name.to_string(), child, log, ready_file }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill_hard(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }

    /// The address the process serves `/metrics` on, from its ready file
    /// (it binds port 0 in tests); waits for the file up to a minute.
    pub fn metrics_addr(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = std::fs::read_to_string(&self.ready_file).ok();
            if let Some(addr) = ready.and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok()) {
                return addr["addr"].as_str().expect("addr in the ready file").to_string();
            }
            assert!(Instant::now() < deadline, "{} never served metrics:\n{}", self.name, self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The current value of one series of the process's `/metrics`, e.g.
    /// `orderstream_consumer_upserts_total{outcome="unchanged"}`; `None` if
    /// it is not exported (or the endpoint does not answer).
    pub fn metric(&self, series: &str) -> Option<f64> {
        let addr = self.metrics_addr();
        let mut response = ureq::get(&format!("http://{addr}/metrics")).call().ok()?;
        let text = response.body_mut().read_to_string().ok()?;
        let line = text.lines().find(|line| line.strip_prefix(series).is_some_and(|rest| rest.starts_with(' ')))?;
        line.rsplit(' ').next()?.parse().ok()
    }

    /// The process's peak resident memory so far (`VmHWM`), in bytes.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The operating system's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`, ...) without waiting.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success(), "kill -{name} {} failed", self.name);
    }

    /// Waits up to `timeout` for the process to exit by itself; its status, or
    /// `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Panics if the process has exited, showing its output.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("{} exited with {status}:\n{}", self.name, self.output());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ready_file);
        if std::thread::panicking() {
            eprintln!("--- output of {} ---\n{}", self.name, self.output());
        }
    }
}

/// A CSV line for an order with the given values.
pub fn order_line(id: i64, user_id: i64, item_total: &str, shipment_total: &str) -> String {
    format!("{id},{user_id},2022-07-01 10:{:02},{item_total},{shipment_total}\n", id % 60)
}

/// Reports a test as skipped, with the reason, on the real standard error:
/// the test harness captures `eprintln!` of passing tests, and a skip must be
/// seen. (cargo test has no skipped status; the test then returns.)
pub fn report_skipped(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}

/// The seed exports shared by the workplace, if present: `../shared` beside
/// the checkout is not part of the repository.
pub fn seed_files() -> Option<Vec<PathBuf>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/seed-orders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "csv"))
        .collect();
    files.sort();
    (!files.is_empty()).then_some(files)
}

// --- consumer tests ---

/// One record to publish directly to a scenario's topic, bypassing the
/// producer, so consumer tests control keys, partitions, headers and values.
#[derive(Debug, Clone)]
pub struct OutgoingRecord {
    /// Kafka key.
    pub key: Option<String>,
    /// The value's bytes.
    pub payload: Vec<u8>,
    /// Headers, in order.
    pub headers: Vec<(String, String)>,
    /// A fixed partition, or the partitioner's choice by key.
    pub partition: Option<i32>,
}

/// A valid order record as the producer would publish it, with a
/// `source_version` header (none when `version` is `None`).
pub fn order_record(id: i64, user_id: i64, item_total: &str, version: Option<i64>) -> OutgoingRecord {
    use std::str::FromStr;
    let order = schema::Order {
        id,
        user_id,
        completed_at: chrono::DateTime::parse_from_rfc3339("2022-07-01T10:00:00Z").unwrap().into(),
        item_total: Decimal::from_str(item_total).unwrap(),
        shipment_total: Decimal::new(25, 1),
    };
    let message = schema::OrderMessage::new(order, Vec::new());
    let mut headers = vec![
        (schema::message::headers::SOURCE_FILE.to_string(), "test.csv".to_string()),
        (schema::message::headers::LINE.to_string(), (id + 1).to_string()),
    ];
    if let Some(version) = version {
        headers.push((schema::message::headers::SOURCE_VERSION.to_string(), version.to_string()));
    }
    OutgoingRecord { key: Some(message.key()), payload: message.encode(), headers, partition: None }
}

/// The totals a consumer logged at shutdown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerTotals {
    /// Rows inserted.
    pub inserted: u64,
    /// Rows updated.
    pub updated: u64,
    /// Duplicates, replays, older versions.
    pub unchanged: u64,
    /// Records dead-lettered.
    pub dead_lettered: u64,
}

/// Reads the last "Consumer totals at shutdown." line of a consumer's output.
pub fn consumer_totals(output: &str) -> Option<ConsumerTotals> {
    let line = output.lines().rev().find(|line| line.contains("Consumer totals at shutdown."))?;
    let field = |name: &str| -> Option<u64> {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        line[start..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    Some(ConsumerTotals {
        inserted: field("inserted")?,
        updated: field("updated")?,
        unchanged: field("unchanged")?,
        dead_lettered: field("dead_lettered")?,
    })
}

impl Scenario {
    /// Starts the consumer binary with extra environment (e.g. batch size,
    /// `ORDERSTREAM_KAFKA_OPTIONS`).
    pub fn start_consumer_with(&self, extra_env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("DATABASE_URL", &self.database_url).env("ORDERSTREAM_GROUP", &self.group);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        Process::spawn(&format!("{}-consumer", self.name), command)
    }

    /// Runs `orderstream-consumer redrive [--reason REASON]` to completion.
    pub fn redrive(&self, reason: Option<&str>) -> std::process::Output {
        let mut command = Command::new(binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("DATABASE_URL", &self.database_url).arg("redrive");
        if let Some(reason) = reason {
            command.arg("--reason").arg(reason);
        }
        command.output().expect("run the redrive command")
    }

    /// Publishes records to this scenario's topic and waits for every
    /// delivery confirmation.
    pub async fn produce(&self, records: &[OutgoingRecord]) {
        use rdkafka::message::{Header, OwnedHeaders};
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .unwrap();
        let sends = records.iter().map(|record| {
            let mut headers = OwnedHeaders::new();
            for (key, value) in &record.headers {
                headers = headers.insert(Header { key, value: Some(value) });
            }
            let mut kafka = FutureRecord::to(&self.topic).payload(&record.payload).headers(headers);
            if let Some(key) = &record.key {
                kafka = kafka.key(key);
            }
            if let Some(partition) = record.partition {
                kafka = kafka.partition(partition);
            }
            producer.send_result(kafka).map_err(|(error, _)| error).expect("record enqueued")
        });
        // Every record is enqueued before any is awaited (`send` would wait for
        // each in turn): in order, so per-partition order is kept.
        let pending: Vec<_> = sends.collect();
        for delivery in pending {
            delivery.await.expect("delivery answered").expect("record delivered");
        }
    }

    /// Partition → next offset stored by this scenario's group in PostgreSQL.
    pub async fn stored_offsets(&self, group: &str) -> BTreeMap<i32, i64> {
        let client = self.db().await;
        match client
            .query(
                "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
                &[&group, &self.topic],
            )
            .await
        {
            Ok(rows) => rows.iter().map(|row| (row.get(0), row.get(1))).collect(),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Partition → high watermark, for the partitions holding records.
    pub fn high_watermarks(&self) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        (0..PARTITIONS)
            .filter_map(|partition| {
                let (_, high) = consumer.fetch_watermarks(&self.topic, partition, Duration::from_secs(10)).unwrap();
                (high > 0).then_some((partition, high))
            })
            .collect()
    }

    /// Waits until `group` has stored, in PostgreSQL, an offset past every
    /// record of the topic: everything published has been applied.
    pub async fn wait_until_applied(&self, group: &str, timeout: Duration) {
        let expected = self.high_watermarks();
        let last = std::cell::RefCell::new(BTreeMap::new());
        let done = poll_until(timeout, || async {
            *last.borrow_mut() = self.stored_offsets(group).await;
            *last.borrow() == expected
        })
        .await;
        assert!(done, "{}: stored offsets {:?} never reached {:?}", self.name, last.borrow(), expected);
    }
}

impl Process {
    /// Sends SIGTERM, waits, and returns the exit status with the complete output.
    pub fn terminate_with_output(self) -> (std::process::ExitStatus, String) {
        let log = self.log.clone();
        let status = self.terminate();
        (status, std::fs::read_to_string(log).unwrap_or_default())
    }
}
