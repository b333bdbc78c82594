//! The consumer's Kafka clients: their settings, the rebalance tracking
//! that tells a batch which partitions it still owns, the wait for the
//! topic, and the commit to Kafka after the database commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::FutureProducer;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::apply::BatchReport;
use crate::config::Config;
use crate::events::{PartitionsAssigned, PartitionsRevoked};
use crate::metrics::Metrics;

/// Tracks which partitions this consumer owns, from the rebalance callbacks
/// (run by librdkafka inside `recv`, i.e. while a batch is gathered, which
/// overlaps the previous batch's write).
pub struct RebalanceContext {
    /// Partitions currently assigned.
    assigned: Arc<Mutex<BTreeSet<i32>>>,
    /// The topic subscribed to, for the rebalance events.
    topic: String,
    /// Where the rebalance events are counted.
    metrics: Metrics,
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let revoked = partitions(list);
            PartitionsRevoked { topic: &self.topic, partitions: &revoked }.emit(&self.metrics);
            if let Ok(mut assigned) = self.assigned.lock() {
                revoked.iter().for_each(|p| {
                    assigned.remove(p);
                });
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let added = partitions(list);
            PartitionsAssigned { topic: &self.topic, partitions: &added }.emit(&self.metrics);
            if let Ok(mut assigned) = self.assigned.lock() {
                assigned.extend(added);
            }
        }
    }
}

impl RebalanceContext {
    /// A context that keeps `assigned` up to date and counts the
    /// rebalances of `topic` in `metrics`.
    pub(crate) fn tracking(assigned: Arc<Mutex<BTreeSet<i32>>>, topic: &str, metrics: &Metrics) -> Self {
        RebalanceContext { assigned, topic: topic.to_string(), metrics: metrics.clone() }
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<i32> {
    list.elements().iter().map(|element| element.partition()).collect()
}

/// After the database commit: seek partitions that were ahead of the stored
/// offsets, and commit the stored offsets to Kafka (for lag monitoring; a
/// lost commit only means records are read again and skipped).
pub(crate) fn after_commit(
    consumer: &StreamConsumer<RebalanceContext>,
    topic: &str,
    report: &BatchReport,
    seeked: &mut BTreeMap<i32, i64>,
) {
    for (&partition, &offset) in &report.seeks {
        info!(message = "Position ahead of the stored offset; seeking back.", partition, offset);
        let sought = tokio::task::block_in_place(|| {
            consumer.seek(topic, partition, Offset::Offset(offset), Duration::from_secs(10))
        });
        match sought {
            Ok(()) => {
                seeked.insert(partition, offset);
            }
            Err(error) => warn!(message = "Seek failed; the next batch checks again.", partition, %error),
        }
    }
    for partition in report.next_offsets.keys() {
        seeked.remove(partition);
    }
    if report.next_offsets.is_empty() {
        return;
    }
    let mut offsets = TopicPartitionList::new();
    for (&partition, &next) in &report.next_offsets {
        if offsets.add_partition_offset(topic, partition, Offset::Offset(next)).is_err() {
            return;
        }
    }
    if let Err(error) = consumer.commit(&offsets, CommitMode::Async) {
        warn!(message = "Kafka offset commit failed; only lag monitoring is affected.", %error);
    }
}

/// Waits until the topic exists (the producer creates it), saying so once:
/// a subscription to a missing topic would otherwise sit silent for minutes
/// before librdkafka looks again. `false` if shutdown came first.
pub(crate) async fn wait_for_topic<C: ConsumerContext>(
    consumer: &StreamConsumer<C>,
    topic: &str,
    stop: &CancellationToken,
) -> bool {
    let mut said = false;
    loop {
        let exists = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(5))).map(
            |metadata| {
                metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
            },
        );
        match exists {
            Ok(true) => return true,
            Ok(false) if !said => {
                info!(message = "Topic does not exist yet; waiting for the producer to create it.", topic);
                said = true;
            }
            Ok(false) => {}
            Err(error) => warn!(message = "Cannot reach Kafka; retrying.", %error),
        }
        tokio::select! {
            () = stop.cancelled() => return false,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The librdkafka settings shared by every client (brokers, TLS, SASL).
pub(crate) fn kafka_config(config: &Config) -> ClientConfig {
    config.kafka.client_config()
}

/// The producer of dead letters (`run`) and of redriven records (`redrive`):
/// idempotent with `acks=all`, so a record the consumer lets go of is on the
/// brokers once, and built here only so both uses keep the same guarantee.
pub(crate) fn dead_letter_producer(config: &Config) -> Result<FutureProducer, KafkaError> {
    kafka_config(config).set("enable.idempotence", "true").set("acks", "all").create()
}
