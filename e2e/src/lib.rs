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

/// The header of every order export.
pub const HEADER: &str = "id,user_id,completed_at,item_total,shipment_total\n";

/// Partitions of every test topic: several, as in production, so ordering
/// and rebalancing are exercised.
pub const PARTITIONS: i32 = 6;

pub mod kafka;
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
fn binary(name: &str) -> PathBuf {
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
        let admin_url = required_env("ORDERSTREAM_TEST_DATABASE_URL");
        let brokers = brokers.to_string();
        let unique = format!("{name}_{}_{}", std::process::id(), SEQUENCE.fetch_add(1, Ordering::SeqCst));
        let database = format!("t_{unique}");
        let (admin, connection) = tokio_postgres::connect(&admin_url, NoTls).await.expect("connect to test PostgreSQL");
        tokio::spawn(connection);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
        let database_url = url_of(&admin_url, &database);
        let scenario = Scenario {
            name: name.to_string(),
            database_url,
            brokers,
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
            .stdin(Stdio::null());
    }

    /// Starts the real producer binary on this scenario's inbox.
    pub fn start_producer(&self) -> Process {
        let mut command = Command::new(binary("orderstream-producer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_INBOX", self.inbox()).env("ORDERSTREAM_STATE_DIR", self.state_dir());
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

    /// A connection to this scenario's database.
    pub async fn db(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.database_url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
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
}

impl Process {
    fn spawn(name: &str, mut command: Command) -> Process {
        let log = std::env::temp_dir().join(format!("orderstream-e2e-{name}-{}.log", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file);
        let child = command.spawn().unwrap_or_else(|error| panic!("cannot start {name}: {error}"));
        Process { name: name.to_string(), child, log }
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

    /// The process's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
        if std::thread::panicking() {
            eprintln!("--- output of {} ---\n{}", self.name, self.output());
        }
    }
}

/// A CSV line for an order with the given values.
pub fn order_line(id: i64, user_id: i64, item_total: &str, shipment_total: &str) -> String {
    format!("{id},{user_id},2022-07-01 10:{:02},{item_total},{shipment_total}\n", id % 60)
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
