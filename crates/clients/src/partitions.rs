//! A topic's partitions, their watermarks, and reading them to the end:
//! what the epoch floor, both replays, the lag exporter, `status`, `verify`,
//! the bench and the end-to-end tests each used to write for themselves.
//!
//! Every function here blocks (librdkafka's metadata and watermark calls
//! do): call them on a blocking thread from async code.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

/// A partition's (low, high) watermarks: its first offset still held and
/// the offset its next record will get.
pub type Watermarks = (i64, i64);

/// How long one poll waits while reading partitions to their end: short, so
/// the deadline is checked often.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// The partition ids the cluster's metadata lists for `topic`, as listed.
pub fn partition_ids(consumer: &BaseConsumer, topic: &str, timeout: Duration) -> Result<Vec<i32>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    Ok(metadata.topics().iter().flat_map(|topic| topic.partitions()).map(|partition| partition.id()).collect())
}

/// Partition → watermarks of the given partitions of `topic`; the first
/// partition whose watermarks cannot be read fails the whole call.
pub fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: impl IntoIterator<Item = i32>,
    timeout: Duration,
) -> Result<BTreeMap<i32, Watermarks>, KafkaError> {
    partitions
        .into_iter()
        .map(|partition| Ok((partition, consumer.fetch_watermarks(topic, partition, timeout)?)))
        .collect()
}

/// Partition → watermarks of every partition of `topic`; empty when the
/// topic does not exist (its metadata carries an error and no partition).
pub fn topic_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<BTreeMap<i32, Watermarks>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let partitions = metadata
        .topics()
        .iter()
        .filter(|listed| listed.name() == topic && listed.error().is_none())
        .flat_map(|listed| listed.partitions())
        .map(|partition| partition.id());
    watermarks(consumer, topic, partitions.collect::<Vec<_>>(), timeout)
}

/// Reads every partition of `topic` from `start(low, high)` up to its high
/// watermark as it was when the read began, handing each record to `seen`;
/// records written meanwhile are not waited for. Partitions holding no
/// record are skipped. The consumer's assignment is replaced; it should
/// have `enable.partition.eof` set, so that a partition whose last records
/// were deleted meanwhile still ends. Fails with `OperationTimedOut` once
/// `deadline` passes, and with the first error the client reports.
pub fn read_to_high_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    start: impl Fn(i64, i64) -> i64,
    deadline: Instant,
    mut seen: impl FnMut(&BorrowedMessage<'_>),
) -> Result<(), KafkaError> {
    let remaining = || deadline.saturating_duration_since(Instant::now());
    let mut assignment = TopicPartitionList::new();
    let mut ends = PartitionEnds::default();
    for partition in partition_ids(consumer, topic, remaining())? {
        let (low, high) = consumer.fetch_watermarks(topic, partition, remaining())?;
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start(low, high)))?;
            ends.expect(partition, high);
        }
    }
    if ends.all_reached() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    while !ends.all_reached() {
        if Instant::now() >= deadline {
            return Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut));
        }
        match consumer.poll(POLL_WAIT) {
            Some(Ok(message)) => {
                seen(&message);
                ends.read(message.partition(), message.offset());
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => ends.reached(partition),
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    Ok(())
}

/// The partitions a read still has to finish, each with the high watermark
/// it reads up to.
#[derive(Debug, Default)]
struct PartitionEnds {
    /// Partition → the offset after the last record to read.
    unfinished: BTreeMap<i32, i64>,
}

impl PartitionEnds {
    /// `partition` is read up to, not including, `high`.
    fn expect(&mut self, partition: i32, high: i64) {
        self.unfinished.insert(partition, high);
    }

    /// A record at `offset` of `partition` was read: the partition is done
    /// when it was the last one before the end.
    fn read(&mut self, partition: i32, offset: i64) {
        if self.unfinished.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            self.unfinished.remove(&partition);
        }
    }

    /// The client reported the end of `partition` (its last records may
    /// have been deleted meanwhile).
    fn reached(&mut self, partition: i32) {
        self.unfinished.remove(&partition);
    }

    /// Whether nothing is left to read.
    fn all_reached(&self) -> bool {
        self.unfinished.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_ends_at_each_partitions_high_watermark_or_its_end_of_partition() {
        let mut ends = PartitionEnds::default();
        assert!(ends.all_reached(), "no partition holding records: nothing to read");
        ends.expect(0, 10);
        ends.expect(1, 3);
        ends.read(0, 8);
        ends.read(1, 2);
        assert!(!ends.all_reached(), "partition 0 has one record left");
        ends.read(7, 100);
        assert!(!ends.all_reached(), "a partition not being read changes nothing");
        ends.reached(0);
        assert!(ends.all_reached());
    }

    #[test]
    fn a_record_past_the_high_watermark_of_the_start_also_ends_its_partition() {
        let mut ends = PartitionEnds::default();
        ends.expect(2, 5);
        ends.read(2, 9);
        assert!(ends.all_reached());
    }
}
