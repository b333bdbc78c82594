//! Asking each part of the pipeline what it knows: the producer's and the
//! consumer's `/status`, Kafka's high watermarks and group members,
//! PostgreSQL's stored offsets, freshness and dead letters; the producer's
//! saved positions when it does not answer. Only reads.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clients::Database;
use contract::status::{ConsumerStatus, ProducerStatus};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde::de::DeserializeOwned;
use serde::Serialize;
use thiserror::Error;

use crate::config::Config;
use crate::config::Topics;
use crate::saved::{saved_delivery, SavedDelivery};

/// Everything gathered in one look.
#[derive(Debug)]
pub struct Gathered {
    /// The producer's `/status`.
    pub producer: ProcessStatus<ProducerStatus>,
    /// The consumer's `/status`.
    pub consumer: ProcessStatus<ConsumerStatus>,
    /// Kafka's view, or why it could not be had.
    pub kafka: Result<KafkaView, Unreachable>,
    /// PostgreSQL's view, or why it could not be had.
    pub database: Result<DatabaseView, Unreachable>,
    /// The inbox's delivery from the producer's saved positions, or why
    /// they cannot be read: read only when the producer does not answer.
    pub saved: Option<Result<SavedDelivery, String>>,
}

/// A process's answer to `GET /status`: `S` is its document
/// (`contract::status`).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessStatus<S> {
    /// Where it was asked.
    pub addr: SocketAddr,
    /// It answered.
    pub up: bool,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<S>,
}

/// What Kafka says about the topic and the group.
#[derive(Debug, Clone)]
pub struct KafkaView {
    /// Partition → (low, high) watermark; empty when the topic does not exist.
    pub watermarks: BTreeMap<i32, (i64, i64)>,
    /// The same for the dead-letter topic, which the consumer's dead-letter
    /// intake reads into PostgreSQL; empty when it does not exist.
    pub dead_letter_watermarks: BTreeMap<i32, (i64, i64)>,
    /// The group's members now.
    pub members: Vec<Member>,
    /// The group's state (`Stable`, `Empty`, `PreparingRebalance`, …).
    pub group_state: String,
}

/// One member of the consumer group.
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// librdkafka's `client.id` of the member.
    pub client_id: String,
    /// Where it connects from.
    pub host: String,
}

/// What PostgreSQL says.
#[derive(Debug, Clone, Default)]
pub struct DatabaseView {
    /// Partition → next offset to apply, stored by the consumer with the rows.
    pub stored_offsets: BTreeMap<i32, i64>,
    /// Partition → next dead-letter record to store, kept by the consumer's
    /// dead-letter intake under the same group and the dead-letter topic.
    pub dead_letter_stored_offsets: BTreeMap<i32, i64>,
    /// Rows in `orders`.
    pub orders: i64,
    /// Newest `read_at` (when the producer read the line).
    pub newest_read_at: Option<DateTime<Utc>>,
    /// Newest `written_at` (when the consumer wrote the row).
    pub newest_written_at: Option<DateTime<Utc>>,
    /// The database's clock, for freshness.
    pub now: Option<DateTime<Utc>>,
    /// Reason → dead letters neither redriven nor resolved.
    pub dead_letters_pending: BTreeMap<String, i64>,
}

/// A service the status depends on cannot be reached.
#[derive(Debug, Clone, Error)]
pub enum Unreachable {
    /// Kafka did not answer.
    #[error(
        "cannot reach Kafka at {brokers}: {reason}. Start it with `make services` (or `make run`), or give --brokers"
    )]
    Kafka {
        /// The brokers asked.
        brokers: String,
        /// librdkafka's answer.
        reason: String,
    },
    /// PostgreSQL did not answer.
    #[error("cannot reach PostgreSQL at {url}: {reason}. Start it with `make services` (or `make run`), or give --database-url")]
    Postgres {
        /// The URL asked, password redacted.
        url: String,
        /// The driver's answer.
        reason: String,
    },
}

/// Asks every part at once; each answer stands alone.
pub async fn gather(config: &Config) -> Gathered {
    let producer = process_status(config.producer_metrics_addr, config.timeout);
    let consumer = process_status(config.consumer_metrics_addr, config.timeout);
    let kafka = kafka_view(config);
    let database = database_view(config);
    let (producer, consumer, kafka, database) = tokio::join!(producer, consumer, kafka, database);
    let saved =
        (!producer.up).then(|| saved_delivery(&config.producer_state_dir, &config.inbox, &config.inbox_matcher()));
    Gathered { producer, consumer, kafka, database, saved }
}

/// Asks `addr` for its `/status`; no answer, or one that is not an `S`, is
/// down, saying why.
async fn process_status<S: DeserializeOwned + Send + 'static>(addr: SocketAddr, timeout: Duration) -> ProcessStatus<S> {
    let asked = tokio::task::spawn_blocking(move || -> Result<S, String> {
        let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(timeout)).build().into();
        let mut response = agent.get(&format!("http://{addr}/status")).call().map_err(|error| error.to_string())?;
        response.body_mut().read_json().map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|join| Err(join.to_string()));
    match asked {
        Ok(status) => ProcessStatus { addr, up: true, error: None, status: Some(status) },
        Err(error) => ProcessStatus { addr, up: false, error: Some(error), status: None },
    }
}

async fn kafka_view(config: &Config) -> Result<KafkaView, Unreachable> {
    let mut kafka = config.kafka.clone();
    let brokers = kafka.brokers.clone();
    let unreachable = |reason: String| Unreachable::Kafka { brokers: brokers.clone(), reason };
    kafka.load_password_file().map_err(|error| unreachable(error.to_string()))?;
    let topics = config.topics();
    let (group, timeout) = (config.group.name.clone(), config.timeout);
    tokio::task::spawn_blocking(move || read_kafka(&kafka, &topics, &group, timeout))
        .await
        .map_err(|join| unreachable(join.to_string()))?
        .map_err(|error| unreachable(error.to_string()))
}

fn read_kafka(
    kafka: &clients::KafkaArgs,
    topics: &Topics,
    group: &str,
    timeout: Duration,
) -> Result<KafkaView, rdkafka::error::KafkaError> {
    let consumer: BaseConsumer = kafka.client_config().create()?;
    let watermarks = clients::partitions::topic_watermarks(&consumer, &topics.orders, timeout)?;
    let dead_letter_watermarks = clients::partitions::topic_watermarks(&consumer, &topics.dead_letters, timeout)?;
    let groups = consumer.fetch_group_list(Some(group), timeout)?;
    let described = groups.groups().iter().find(|g| g.name() == group);
    let members = described
        .map(|g| {
            g.members()
                .iter()
                .map(|m| Member { client_id: m.client_id().to_string(), host: m.client_host().to_string() })
                .collect()
        })
        .unwrap_or_default();
    let group_state = described.map_or_else(|| "Dead".to_string(), |g| g.state().to_string());
    Ok(KafkaView { watermarks, dead_letter_watermarks, members, group_state })
}

async fn database_view(config: &Config) -> Result<DatabaseView, Unreachable> {
    let url = clients::postgres::redact(&config.database.database_url);
    let unreachable = |reason: String| Unreachable::Postgres { url: url.clone(), reason };
    let database =
        Database::from_args(&config.database).map_err(|error| unreachable(clients::postgres::describe(&error)))?;
    let client = tokio::time::timeout(config.timeout, database.connect())
        .await
        .map_err(|_| unreachable(format!("no answer within {:?}", config.timeout)))?
        .map_err(|error| unreachable(clients::postgres::describe(&error)))?;
    read_database(&client, &config.group.name, &config.topic.name, &config.dead_letter_topic.name)
        .await
        .map_err(|error| unreachable(clients::postgres::describe(&error)))
}

/// Partition → next offset to apply of `topic`, as the group stored it.
async fn stored_offsets(
    client: &tokio_postgres::Client,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
            &[&group, &topic],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Reads what the status needs, defensively: a table not created yet (a
/// consumer that never ran) reads as empty, and dead letters are counted
/// whether or not the schema has `resolved_at` yet.
async fn read_database(
    client: &tokio_postgres::Client,
    group: &str,
    topic: &str,
    dead_letter_topic: &str,
) -> Result<DatabaseView, tokio_postgres::Error> {
    let present = client
        .query_one(
            "SELECT to_regclass('orders') IS NOT NULL, to_regclass('consumer_offsets') IS NOT NULL,
                    to_regclass('dead_letters') IS NOT NULL,
                    EXISTS (SELECT 1 FROM information_schema.columns
                            WHERE table_schema = current_schema() AND table_name = 'dead_letters'
                              AND column_name = 'resolved_at'),
                    clock_timestamp()",
            &[],
        )
        .await?;
    let (orders, offsets, dead_letters, resolvable): (bool, bool, bool, bool) =
        (present.get(0), present.get(1), present.get(2), present.get(3));
    let mut view = DatabaseView { now: Some(present.get(4)), ..DatabaseView::default() };
    if offsets {
        view.stored_offsets = stored_offsets(client, group, topic).await?;
        view.dead_letter_stored_offsets = stored_offsets(client, group, dead_letter_topic).await?;
    }
    if orders {
        let row = client.query_one("SELECT count(*), max(read_at), max(written_at) FROM orders", &[]).await?;
        (view.orders, view.newest_read_at, view.newest_written_at) = (row.get(0), row.get(1), row.get(2));
    }
    if dead_letters {
        let pending = if resolvable {
            "SELECT reason, count(*) FROM dead_letters WHERE redriven_at IS NULL AND resolved_at IS NULL GROUP BY reason"
        } else {
            "SELECT reason, count(*) FROM dead_letters WHERE redriven_at IS NULL GROUP BY reason"
        };
        let rows = client.query(pending, &[]).await?;
        view.dead_letters_pending = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    }
    Ok(view)
}
