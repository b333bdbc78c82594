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
    let mut ends = BTreeMap::new();
    for partition in partition_ids(consumer, topic, remaining())? {
        let (low, high) = consumer.fetch_watermarks(topic, partition, remaining())?;
        if high > low {
            assignment.add_partition_offset(topic, partition, Offset::Offset(start(low, high)))?;
            ends.insert(partition, high);
        }
    }
    if ends.is_empty() {
        return Ok(());
    }
    consumer.assign(&assignment)?;
    while !ends.is_empty() {
        if Instant::now() >= deadline {
            return Err(KafkaError::Global(RDKafkaErrorCode::OperationTimedOut));
        }
        match consumer.poll(POLL_WAIT) {
            Some(Ok(message)) => {
                seen(&message);
                if ends.get(&message.partition()).is_some_and(|end| message.offset() + 1 >= *end) {
                    ends.remove(&message.partition());
                }
            }
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                ends.remove(&partition);
            }
            Some(Err(error)) => return Err(error),
            None => {}
        }
    }
    Ok(())
}
