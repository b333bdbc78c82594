//! Lag in seconds: how long ago the oldest record the group has not applied
//! was written to Kafka.
//!
//! Records say how far behind the group is; seconds say how late the data
//! is, which is what a reader of the warehouse feels. For every partition
//! with lag, the record at the group's committed offset is the oldest one not
//! applied: its Kafka timestamp, against now, is that partition's lag in
//! seconds. Bounded per measurement: one record per lagging partition, read
//! within one deadline, each partition paused once it gave its record.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::lag::PartitionOffsets;

/// Client settings of the reader of oldest records: it never commits, and
/// fetches little, since it keeps one record per partition.
pub const READER_SETTINGS: [(&str, &str); 4] = [
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("max.partition.fetch.bytes", "65536"),
    ("queued.max.messages.kbytes", "1024"),
];

/// The oldest record the group has not applied, on one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldestUnapplied {
    /// The partition.
    pub partition: i32,
    /// When the record was written (its Kafka timestamp), in Unix
    /// milliseconds.
    pub written_at_ms: i64,
}

/// A partition's lag in seconds, as far as it is known this measurement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PartitionAge {
    /// Nothing unapplied: 0 seconds behind.
    CaughtUp,
    /// The oldest unapplied record was written this many seconds ago.
    Behind(f64),
    /// Behind, but its oldest record was not read within the deadline.
    Unknown,
}

/// Each partition's lag in seconds at `now_ms`, from its offsets and the
/// oldest unapplied records read. A clock behind the broker's never makes it
/// negative.
pub fn partition_ages(
    now_ms: i64,
    offsets: &[PartitionOffsets],
    oldest: &[OldestUnapplied],
) -> Vec<(i32, PartitionAge)> {
    offsets
        .iter()
        .map(|partition| {
            let age = if partition.lag() == 0 {
                PartitionAge::CaughtUp
            } else {
                match oldest.iter().find(|record| record.partition == partition.partition) {
                    Some(record) => PartitionAge::Behind((now_ms - record.written_at_ms).max(0) as f64 / 1000.0),
                    None => PartitionAge::Unknown,
                }
            };
            (partition.partition, age)
        })
        .collect()
}

/// Where the group will read next on a lagging partition: its committed
/// offset, or the first record still held when it has none or it was
/// deleted.
fn next_unapplied(offsets: &PartitionOffsets) -> i64 {
    offsets.committed.unwrap_or(offsets.low).max(offsets.low)
}

/// Reads the oldest unapplied record of every lagging partition of `topic`,
/// within `deadline`. Partitions whose record did not arrive in time are
/// left out. Blocking: call it off the async runtime's worker threads.
pub fn read_oldest_unapplied(
    reader: &BaseConsumer,
    topic: &str,
    offsets: &[PartitionOffsets],
    deadline: Duration,
) -> Result<Vec<OldestUnapplied>, KafkaError> {
    let mut wanted = TopicPartitionList::new();
    for partition in offsets.iter().filter(|partition| partition.lag() > 0) {
        wanted.add_partition_offset(topic, partition.partition, Offset::Offset(next_unapplied(partition)))?;
    }
    if wanted.count() == 0 {
        return Ok(Vec::new());
    }
    reader.assign(&wanted)?;
    // A partition paused by the previous measurement stays paused across
    // assignments: without this, it would never give a record again.
    reader.resume(&wanted)?;
    let found = collect_first_records(reader, topic, wanted.count(), deadline);
    reader.unassign()?;
    found
}

/// Polls until every assigned partition gave one record or `deadline`
/// passes, pausing each partition after its first.
fn collect_first_records(
    reader: &BaseConsumer,
    topic: &str,
    partitions: usize,
    deadline: Duration,
) -> Result<Vec<OldestUnapplied>, KafkaError> {
    let until = Instant::now() + deadline;
    let mut found: HashMap<i32, i64> = HashMap::new();
    while found.len() < partitions {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(message) = reader.poll(left) else { continue };
        let message = message?;
        if found.contains_key(&message.partition()) {
            continue;
        }
        if let Some(written_at_ms) = message.timestamp().to_millis() {
            found.insert(message.partition(), written_at_ms);
        }
        let mut done = TopicPartitionList::new();
        done.add_partition(topic, message.partition());
        reader.pause(&done)?;
    }
    Ok(found.into_iter().map(|(partition, written_at_ms)| OldestUnapplied { partition, written_at_ms }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(partition: i32, high: i64, committed: Option<i64>) -> PartitionOffsets {
        PartitionOffsets { partition, low: 0, high, committed }
    }

    #[test]
    fn a_lagging_partition_is_as_old_as_its_oldest_unapplied_record() {
        let ages = partition_ages(
            100_000,
            &[offsets(0, 10, Some(4))],
            &[OldestUnapplied { partition: 0, written_at_ms: 40_000 }],
        );
        assert_eq!(ages, [(0, PartitionAge::Behind(60.0))]);
    }

    #[test]
    fn a_caught_up_partition_is_zero_seconds_behind_whatever_was_read() {
        let ages = partition_ages(
            100_000,
            &[offsets(0, 10, Some(10))],
            &[OldestUnapplied { partition: 0, written_at_ms: 1_000 }],
        );
        assert_eq!(ages, [(0, PartitionAge::CaughtUp)]);
    }

    #[test]
    fn a_lagging_partition_whose_record_was_not_read_is_unknown() {
        let ages = partition_ages(100_000, &[offsets(0, 10, None), offsets(1, 5, Some(5))], &[]);
        assert_eq!(ages, [(0, PartitionAge::Unknown), (1, PartitionAge::CaughtUp)]);
    }

    #[test]
    fn a_broker_clock_ahead_of_ours_never_gives_a_negative_age() {
        let ages = partition_ages(
            100_000,
            &[offsets(2, 10, Some(3))],
            &[OldestUnapplied { partition: 2, written_at_ms: 105_000 }],
        );
        assert_eq!(ages, [(2, PartitionAge::Behind(0.0))]);
    }

    #[test]
    fn the_next_unapplied_record_is_at_the_commit_or_the_first_held() {
        assert_eq!(next_unapplied(&PartitionOffsets { partition: 0, low: 5, high: 10, committed: Some(7) }), 7);
        assert_eq!(next_unapplied(&PartitionOffsets { partition: 0, low: 5, high: 10, committed: None }), 5);
        assert_eq!(next_unapplied(&PartitionOffsets { partition: 0, low: 5, high: 10, committed: Some(2) }), 5);
    }
}
