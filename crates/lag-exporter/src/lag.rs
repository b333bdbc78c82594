//! Lag: how many records of a partition the group has not committed yet.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

pub use contract::lag::PartitionOffsets;

/// The group's state as seen from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// Every partition of the topic.
    pub partitions: Vec<PartitionOffsets>,
    /// Members of the group right now: 0 means no consumer is alive.
    pub members: usize,
}

/// Reads offsets and membership for `group` on `topic`. Blocking: call it
/// off the async runtime's worker threads.
pub fn read_group_lag(
    consumer: &BaseConsumer,
    topic: &str,
    group: &str,
    timeout: Duration,
) -> Result<GroupLag, KafkaError> {
    let partitions = clients::partitions::partition_ids(consumer, topic, timeout)?;
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, timeout)?;
    let watermarks = clients::partitions::watermarks(consumer, topic, partitions.iter().copied(), timeout)?;
    let mut offsets = Vec::with_capacity(partitions.len());
    for partition in partitions {
        let (low, high) = watermarks[&partition];
        let committed = committed.find_partition(topic, partition).and_then(|entry| match entry.offset() {
            Offset::Offset(offset) => Some(offset),
            _ => None,
        });
        offsets.push(PartitionOffsets { partition, low, high, committed });
    }
    let members = consumer
        .fetch_group_list(Some(group), timeout)?
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .map_or(0, |g| g.members().len());
    Ok(GroupLag { partitions: offsets, members })
}
