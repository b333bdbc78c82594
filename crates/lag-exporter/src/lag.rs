//! Lag: how many records of a partition the group has not committed yet.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

/// One partition's offsets, as the broker reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The partition.
    pub partition: i32,
    /// The first offset still held.
    pub low: i64,
    /// One past the last record written.
    pub high: i64,
    /// The group's committed offset (the next record it will read), if any.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Records written and not yet committed by the group, including those
    /// retention deleted before the group reached them: counting from the
    /// low watermark instead would show a lag of 0 while records were lost.
    /// Without a commit, everything still held counts: a group that never
    /// committed is behind by all of it.
    pub fn lag(&self) -> i64 {
        let from = self.committed.unwrap_or(self.low);
        (self.high - from).max(0)
    }

    /// Records retention deleted before the group committed past them (the
    /// low watermark above the committed offset): they can never be applied.
    /// 0 without a commit, as nothing says where the group would start.
    pub fn deleted_before_committed(&self) -> i64 {
        self.committed.map_or(0, |committed| (self.low - committed).max(0))
    }
}

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
    let partitions = connect::partitions::partition_ids(consumer, topic, timeout)?;
    let mut wanted = TopicPartitionList::new();
    for partition in &partitions {
        wanted.add_partition(topic, *partition);
    }
    let committed = consumer.committed_offsets(wanted, timeout)?;
    let watermarks = connect::partitions::watermarks(consumer, topic, partitions.iter().copied(), timeout)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_what_is_written_but_not_committed() {
        let offsets = PartitionOffsets { partition: 0, low: 0, high: 100, committed: Some(60) };
        assert_eq!(offsets.lag(), 40);
    }

    #[test]
    fn without_a_commit_everything_held_is_lag() {
        let offsets = PartitionOffsets { partition: 0, low: 10, high: 100, committed: None };
        assert_eq!(offsets.lag(), 90);
    }

    #[test]
    fn records_deleted_below_the_commit_stay_in_the_lag_and_are_counted_apart() {
        let offsets = PartitionOffsets { partition: 0, low: 50, high: 100, committed: Some(20) };
        assert_eq!(offsets.lag(), 80, "30 deleted, 50 held: none of them applied");
        assert_eq!(offsets.deleted_before_committed(), 30);
        let caught_up = PartitionOffsets { partition: 0, low: 50, high: 100, committed: Some(100) };
        assert_eq!(caught_up.deleted_before_committed(), 0);
        let never = PartitionOffsets { partition: 0, low: 50, high: 100, committed: None };
        assert_eq!(never.deleted_before_committed(), 0);
    }

    #[test]
    fn lag_is_never_negative() {
        let offsets = PartitionOffsets { partition: 0, low: 0, high: 100, committed: Some(120) };
        assert_eq!(offsets.lag(), 0);
    }
}
