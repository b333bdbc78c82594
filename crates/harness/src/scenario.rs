//! [`Scenario`]: one isolated run of the pipeline, with its own database,
//! topics, consumer group and inbox, and the commands that start the real
//! binaries on it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use clients::partitions::Watermarks;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;
use rust_decimal::Decimal;
use tokio_postgres::NoTls;

use crate::process::{binary, Process};
use crate::records::OutgoingRecord;
use crate::topic::{TopicReader, TopicRecord};
use crate::{next_sequence, poll_until};

/// Partitions of every test topic: several, as in production, so ordering
/// and rebalancing are exercised.
pub const PARTITIONS: i32 = 6;

/// Partition → (low, high) watermarks of every test partition of `topic`.
/// A broker answers "not leader" or "leader not available" for a moment
/// after a topic is created or a leader moves: asked again until it
/// answers, for 30 s at most.
fn watermarks(consumer: &BaseConsumer, topic: &str) -> BTreeMap<i32, Watermarks> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        match clients::partitions::watermarks(consumer, topic, 0..PARTITIONS, Duration::from_secs(10)) {
            Ok(marks) => return marks,
            Err(error) if std::time::Instant::now() < deadline => {
                eprintln!("watermarks of {topic}: {error}; asking again");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(error) => panic!("watermarks of {topic}: {error}"),
        }
    }
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: end-to-end tests need the test PostgreSQL and Kafka. \
             Run `make test` (it starts them), or `make test-services` and `. .local/test/env`."
        )
    })
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
    /// Where its binaries come from, when not [`binary`]'s folder: the
    /// bench's comparison runs an older release's build on the same services.
    binaries: Option<PathBuf>,
}

impl Scenario {
    /// Creates the database and topics of a new scenario on the shared test
    /// Kafka broker.
    pub async fn new(name: &str) -> Scenario {
        Scenario::on_brokers(name, &required_env("ORDERSTREAM_TEST_KAFKA_BROKERS")).await
    }

    /// Creates the database and topics of a new scenario on the given Kafka
    /// brokers (a [`crate::kafka::PrivateKafka`] for tests that stop Kafka).
    pub async fn on_brokers(name: &str, brokers: &str) -> Scenario {
        Scenario::create(name, &required_env("ORDERSTREAM_TEST_DATABASE_URL"), brokers).await
    }

    /// Like [`Scenario::new`], with the database on another cluster (e.g. a
    /// [`crate::postgres::PrivatePostgres`] that the test stops).
    pub async fn new_on(name: &str, admin_url: &str) -> Scenario {
        Scenario::create(name, admin_url, &required_env("ORDERSTREAM_TEST_KAFKA_BROKERS")).await
    }

    /// Like [`Scenario::on_brokers`], on a Kafka cluster: the topics are
    /// replicated `replication` times with `min.insync.replicas` 2, so a
    /// record is acknowledged only once two brokers hold it (`make
    /// chaos-cluster` kills brokers under load).
    pub async fn on_cluster(name: &str, brokers: &str, replication: i32) -> Scenario {
        Scenario::create_replicated(name, &required_env("ORDERSTREAM_TEST_DATABASE_URL"), brokers, replication).await
    }

    pub(crate) async fn create(name: &str, admin_url: &str, brokers: &str) -> Scenario {
        Scenario::create_replicated(name, admin_url, brokers, 1).await
    }

    pub(crate) async fn create_replicated(name: &str, admin_url: &str, brokers: &str, replication: i32) -> Scenario {
        let unique = format!("{name}_{}_{}", std::process::id(), next_sequence());
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
            binaries: None,
        };
        std::fs::create_dir_all(scenario.inbox()).unwrap();
        scenario.create_topics(replication).await;
        scenario
    }

    async fn create_topics(&self, replication: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        let min_insync = replication.min(2).to_string();
        let topics = [&self.topic, &self.dlq_topic].map(|name| {
            NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(replication))
                .set("min.insync.replicas", &min_insync)
                .set("unclean.leader.election.enable", "false")
        });
        for result in admin.create_topics(&topics, &AdminOptions::new()).await.expect("create test topics") {
            result.expect("test topic created");
        }
    }

    /// Runs the binaries of `folder` instead of [`binary`]'s (another
    /// build, e.g. an older release's, on the same services).
    pub fn with_binaries_from(mut self, folder: &Path) -> Scenario {
        self.binaries = Some(folder.to_path_buf());
        self
    }

    /// The path of one of this scenario's binaries.
    fn binary(&self, name: &str) -> PathBuf {
        match &self.binaries {
            Some(folder) => folder.join(name),
            None => binary(name),
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
            .env("ORDERSTREAM_KAFKA_BROKERS", &self.brokers)
            .env("ORDERSTREAM_TOPIC", &self.topic)
            .env("ORDERSTREAM_DLQ_TOPIC", &self.dlq_topic)
            .env("RUST_LOG", "info")
            .env("ORDERSTREAM_PRODUCER_METRICS_ADDR", "127.0.0.1:0")
            .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", "127.0.0.1:0")
            .stdin(Stdio::null());
        if self.binaries.is_some() {
            // Another build may be an older release, from before every
            // variable was `ORDERSTREAM_…`; these names are still read as
            // aliases, and the `ORDERSTREAM_` names win where both are set.
            command.env("KAFKA_BROKERS", &self.brokers).env("DATABASE_URL", &self.database_url);
        }
    }

    /// Starts the real producer binary on this scenario's inbox.
    pub fn start_producer(&self) -> Process {
        self.start_producer_with(&[])
    }

    /// Starts the producer with extra environment (e.g. `FAILPOINTS`).
    pub fn start_producer_with(&self, extra_env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(self.binary("orderstream-producer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_INBOX", self.inbox()).env("ORDERSTREAM_STATE_DIR", self.state_dir());
        for (name, value) in extra_env {
            command.env(name, value);
        }
        Process::spawn(&format!("{}-producer", self.name), command)
    }

    /// Starts the producer as an uploader's file permissions bind it: run as
    /// root (a container, CI), it gives up the capabilities that let root
    /// open any file (`setpriv`), so a file of mode 000 cannot be opened.
    pub fn start_producer_bound_by_file_modes(&self, extra_env: &[(&str, &str)]) -> Process {
        use std::os::unix::fs::MetadataExt;
        let root = std::fs::metadata("/proc/self").is_ok_and(|process| process.uid() == 0);
        let producer = self.binary("orderstream-producer");
        let mut command = if root {
            let mut setpriv = Command::new("setpriv");
            let dropped = "-dac_override,-dac_read_search";
            setpriv.arg(format!("--inh-caps={dropped}")).arg(format!("--bounding-set={dropped}")).arg(producer);
            setpriv
        } else {
            Command::new(producer)
        };
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
        let mut command = Command::new(self.binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_DATABASE_URL", &self.database_url).env("ORDERSTREAM_GROUP", group);
        Process::spawn(&format!("{}-consumer", self.name), command)
    }

    /// Starts the real lag exporter on this scenario's group, topic and database.
    pub fn start_lag_exporter(&self) -> Process {
        let mut command = Command::new(self.binary("orderstream-lag-exporter"));
        self.common_env(&mut command);
        command
            .env("ORDERSTREAM_DATABASE_URL", &self.database_url)
            .env("ORDERSTREAM_GROUP", &self.group)
            .env("ORDERSTREAM_LAG_INTERVAL_MS", "1000")
            .env("ORDERSTREAM_LAG_EXPORTER_METRICS_ADDR", "127.0.0.1:0");
        Process::spawn(&format!("{}-lag-exporter", self.name), command)
    }

    /// Starts `orderstream-verify --every 2s` on this scenario's inbox,
    /// producer state and database, serving its metrics.
    pub fn start_verifier(&self) -> Process {
        let mut command = Command::new(self.binary("orderstream-verify"));
        self.common_env(&mut command);
        command
            .env("ORDERSTREAM_DATABASE_URL", &self.database_url)
            .env("ORDERSTREAM_GROUP", &self.group)
            .env("ORDERSTREAM_INBOX", self.inbox())
            .env("ORDERSTREAM_STATE_DIR", self.state_dir())
            .env("ORDERSTREAM_VERIFY_EVERY", "2s")
            .env("ORDERSTREAM_VERIFY_METRICS_ADDR", "127.0.0.1:0");
        Process::spawn(&format!("{}-verify", self.name), command)
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
        watermarks(&consumer, topic).values().map(|(low, high)| high - low).sum()
    }

    /// Every record on a topic, read from the beginning until `expected`
    /// records were read or `timeout` passed.
    pub fn read_topic(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<TopicRecord> {
        let mut reader = TopicReader::new(&self.brokers, topic);
        reader.wait_for(expected, timeout);
        reader.records
    }
    /// Starts the consumer binary with extra environment (e.g. batch size,
    /// `ORDERSTREAM_KAFKA_OPTIONS`).
    pub fn start_consumer_with(&self, extra_env: &[(&str, &str)]) -> Process {
        let mut command = Command::new(self.binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_DATABASE_URL", &self.database_url).env("ORDERSTREAM_GROUP", &self.group);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        Process::spawn(&format!("{}-consumer", self.name), command)
    }

    /// Runs `orderstream-consumer redrive [--reason REASON]` to completion.
    pub fn redrive(&self, reason: Option<&str>) -> std::process::Output {
        let mut command = Command::new(self.binary("orderstream-consumer"));
        self.common_env(&mut command);
        command.env("ORDERSTREAM_DATABASE_URL", &self.database_url).arg("redrive");
        if let Some(reason) = reason {
            command.arg("--reason").arg(reason);
        }
        command.output().expect("run the redrive command")
    }

    /// Publishes records to this scenario's topic and waits for every
    /// delivery confirmation.
    pub async fn produce(&self, records: &[OutgoingRecord]) {
        self.produce_to(&self.topic, records).await;
    }

    /// Publishes records to `topic` (e.g. the scenario's dead-letter topic,
    /// as another producer would) and waits for every delivery confirmation.
    pub async fn produce_to(&self, topic: &str, records: &[OutgoingRecord]) {
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
            let mut kafka = FutureRecord::to(topic).payload(&record.payload).headers(headers);
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

    /// Whether the scenario's group has no members in Kafka's description
    /// of it: every consumer of the group left (a topic replay needs that).
    pub fn group_is_empty(&self) -> bool {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        consumer
            .fetch_group_list(Some(&self.group), Duration::from_secs(10))
            .is_ok_and(|list| list.groups().iter().all(|group| group.members().is_empty()))
    }

    /// Partition → high watermark of the orders topic, for the partitions
    /// holding records.
    pub fn high_watermarks(&self) -> BTreeMap<i32, i64> {
        self.high_watermarks_of(&self.topic)
    }

    /// Partition → high watermark of `topic`, for the partitions holding records.
    pub fn high_watermarks_of(&self, topic: &str) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &self.brokers).create().unwrap();
        watermarks(&consumer, topic)
            .into_iter()
            .filter(|(_, (_, high))| *high > 0)
            .map(|(partition, (_, high))| (partition, high))
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

fn url_of(admin_url: &str, database: &str) -> String {
    let (base, _) = admin_url.rsplit_once('/').expect("URL with a database");
    format!("{base}/{database}")
}
