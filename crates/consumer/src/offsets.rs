//! Kafka offsets stored in PostgreSQL, in the transaction of the rows they
//! cover: the database, not Kafka, says what has been applied.
//!
//! Every batch transaction locks its partitions' rows of `consumer_offsets`
//! (in partition order, so concurrent consumers cannot deadlock) and then
//! [`plan`]s against them:
//! - records below the stored `next_offset` were applied already (by us
//!   before a crash, or by another consumer before a rebalance): dropped;
//! - a partition whose first record lies *above* the stored offset means our
//!   position is ahead of the truth (records were read but never applied):
//!   nothing of it is applied, and the consumer seeks back to the stored
//!   offset. This is also how a newly assigned partition is put where the
//!   database says: the seek is lazy, on its first batch.
//!
//! A partition whose first record, right after seeking to the stored offset,
//! still lies above it has lost offsets: they no longer exist in Kafka
//! (retention deleted them before they were applied, or they were
//! transaction markers). Nothing can bring them back; the plan applies from
//! the first record there is and reports the gap ([`OffsetPlan::skipped`]),
//! which the consumer logs and counts, never passes silently.
//!
//! A partition with no stored row yet starts where Kafka put the consumer
//! (its committed offset, or the earliest record): the row is created with
//! that position inside the same transaction, so two consumers racing for it
//! still serialise on the row.

use std::collections::BTreeMap;

use deadpool_postgres::GenericClient;

/// What a batch transaction does with one partition's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionDecision {
    /// Apply the records at or above `from`; store `next` afterwards.
    Apply {
        /// The stored next offset: records below it are already applied.
        from: i64,
        /// One past the highest offset of the batch, stored on commit.
        next: i64,
    },
    /// Every record of the batch is below the stored offset.
    AlreadyApplied,
    /// The batch starts after the stored offset: apply nothing, seek back.
    SeekTo(i64),
}

/// The decisions for every partition of a batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OffsetPlan {
    /// Partition → decision.
    pub partitions: BTreeMap<i32, PartitionDecision>,
    /// Partition → how many offsets below its first record were never read:
    /// the stored next offset no longer exists in Kafka.
    pub skipped: BTreeMap<i32, i64>,
}

impl OffsetPlan {
    /// Whether the record at this position is to be applied by this batch.
    pub fn accepts(&self, partition: i32, offset: i64) -> bool {
        matches!(self.partitions.get(&partition), Some(PartitionDecision::Apply { from, .. }) if offset >= *from)
    }

    /// The offsets to store (and commit to Kafka) once the batch is written.
    pub fn next_offsets(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(partition, decision)| match decision {
                PartitionDecision::Apply { next, .. } => Some((*partition, *next)),
                _ => None,
            })
            .collect()
    }

    /// Partitions whose position must be moved back to the stored offset.
    pub fn seeks(&self) -> BTreeMap<i32, i64> {
        self.partitions
            .iter()
            .filter_map(|(partition, decision)| match decision {
                PartitionDecision::SeekTo(offset) => Some((*partition, *offset)),
                _ => None,
            })
            .collect()
    }
}

/// The lowest and highest offset per partition of a batch's positions.
pub fn offset_ranges(positions: impl IntoIterator<Item = (i32, i64)>) -> BTreeMap<i32, (i64, i64)> {
    let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for (partition, offset) in positions {
        let range = ranges.entry(partition).or_insert((offset, offset));
        range.0 = range.0.min(offset);
        range.1 = range.1.max(offset);
    }
    ranges
}

/// Decides, per partition, what the batch applies given the stored offsets.
///
/// `seeked` holds where this consumer last sought each partition to: right
/// after seeking to the stored offset, a first record above it is legitimate
/// (offsets of a topic need not be contiguous, e.g. transaction markers) and
/// is applied instead of sought again forever.
pub fn plan(
    ranges: &BTreeMap<i32, (i64, i64)>,
    stored: &BTreeMap<i32, i64>,
    seeked: &BTreeMap<i32, i64>,
) -> OffsetPlan {
    let mut skipped = BTreeMap::new();
    let partitions = ranges
        .iter()
        .map(|(&partition, &(first, last))| {
            let decision = match stored.get(&partition).copied() {
                None => PartitionDecision::Apply { from: first, next: last + 1 },
                Some(truth) if first > truth && seeked.get(&partition) != Some(&truth) => {
                    PartitionDecision::SeekTo(truth)
                }
                Some(truth) if last < truth => PartitionDecision::AlreadyApplied,
                Some(truth) => {
                    if first > truth {
                        skipped.insert(partition, first - truth);
                    }
                    PartitionDecision::Apply { from: truth, next: last + 1 }
                }
            };
            (partition, decision)
        })
        .collect();
    OffsetPlan { partitions, skipped }
}

/// Locks the stored offsets of the batch's partitions, creating a row at the
/// batch's first offset where none exists; returns partition → next offset.
pub async fn lock_stored(
    client: &impl GenericClient,
    group: &str,
    topic: &str,
    ranges: &BTreeMap<i32, (i64, i64)>,
) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
    let partitions: Vec<i32> = ranges.keys().copied().collect();
    let firsts: Vec<i64> = ranges.values().map(|(first, _)| *first).collect();
    client
        .execute(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
             SELECT $1, $2, p, o FROM unnest($3::int4[], $4::int8[]) AS t(p, o) ORDER BY p
             ON CONFLICT (group_id, topic, partition) DO NOTHING",
            &[&group, &topic, &partitions, &firsts],
        )
        .await?;
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets
             WHERE group_id = $1 AND topic = $2 AND partition = ANY($3)
             ORDER BY partition FOR UPDATE",
            &[&group, &topic, &partitions],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Stores the next offsets of the applied partitions (rows locked by
/// [`lock_stored`] in the same transaction).
pub async fn store(
    client: &impl GenericClient,
    group: &str,
    topic: &str,
    next: &BTreeMap<i32, i64>,
) -> Result<(), tokio_postgres::Error> {
    if next.is_empty() {
        return Ok(());
    }
    let partitions: Vec<i32> = next.keys().copied().collect();
    let offsets: Vec<i64> = next.values().copied().collect();
    client
        .execute(
            "UPDATE consumer_offsets AS c SET next_offset = t.o, updated_at = clock_timestamp()
             FROM unnest($3::int4[], $4::int8[]) AS t(p, o)
             WHERE c.group_id = $1 AND c.topic = $2 AND c.partition = t.p",
            &[&group, &topic, &partitions, &offsets],
        )
        .await?;
    Ok(())
}

/// All the group's stored offsets of the topic, locked until the
/// transaction ends: a topic replay moves them while no member runs.
pub async fn lock_all_stored(
    client: &impl tokio_postgres::GenericClient,
    group: &str,
    topic: &str,
) -> Result<BTreeMap<i32, i64>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT partition, next_offset FROM consumer_offsets
             WHERE group_id = $1 AND topic = $2 ORDER BY partition FOR UPDATE",
            &[&group, &topic],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// Writes a topic replay's new position of every partition, creating rows
/// where none exist (a partition the group never stored).
pub async fn store_replay_positions(
    client: &impl tokio_postgres::GenericClient,
    group: &str,
    topic: &str,
    targets: &BTreeMap<i32, i64>,
) -> Result<(), tokio_postgres::Error> {
    let partitions: Vec<i32> = targets.keys().copied().collect();
    let offsets: Vec<i64> = targets.values().copied().collect();
    client
        .execute(
            "INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
             SELECT $1, $2, p, o FROM unnest($3::int4[], $4::int8[]) AS t(p, o) ORDER BY p
             ON CONFLICT (group_id, topic, partition)
             DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = clock_timestamp()",
            &[&group, &topic, &partitions, &offsets],
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(items: &[(i32, i64, i64)]) -> BTreeMap<i32, (i64, i64)> {
        items.iter().map(|&(p, a, b)| (p, (a, b))).collect()
    }

    #[test]
    fn ranges_span_each_partitions_offsets() {
        assert_eq!(offset_ranges([(0, 5), (1, 9), (0, 7), (0, 6)]), ranges(&[(0, 5, 7), (1, 9, 9)]));
    }

    #[test]
    fn records_below_the_stored_offset_are_dropped() {
        let plan = plan(&ranges(&[(0, 10, 19)]), &BTreeMap::from([(0, 15)]), &BTreeMap::new());
        assert_eq!(plan.partitions[&0], PartitionDecision::Apply { from: 15, next: 20 });
        assert!(!plan.accepts(0, 14));
        assert!(plan.accepts(0, 15));
        assert_eq!(plan.next_offsets(), BTreeMap::from([(0, 20)]));
    }

    #[test]
    fn a_batch_entirely_applied_already_writes_nothing() {
        let plan = plan(&ranges(&[(2, 10, 19)]), &BTreeMap::from([(2, 20)]), &BTreeMap::new());
        assert_eq!(plan.partitions[&2], PartitionDecision::AlreadyApplied);
        assert!(plan.next_offsets().is_empty());
        assert!(!plan.accepts(2, 19));
    }

    #[test]
    fn a_position_ahead_of_the_stored_offset_is_a_gap_and_seeks_back() {
        let plan = plan(&ranges(&[(0, 30, 39), (1, 5, 6)]), &BTreeMap::from([(0, 20), (1, 5)]), &BTreeMap::new());
        assert_eq!(plan.seeks(), BTreeMap::from([(0, 20)]));
        assert!(!plan.accepts(0, 30));
        assert_eq!(plan.next_offsets(), BTreeMap::from([(1, 7)]), "other partitions are still applied");
    }

    #[test]
    fn after_seeking_a_first_record_above_the_stored_offset_is_accepted() {
        let plan = plan(&ranges(&[(0, 21, 25)]), &BTreeMap::from([(0, 20)]), &BTreeMap::from([(0, 20)]));
        assert_eq!(plan.partitions[&0], PartitionDecision::Apply { from: 20, next: 26 });
    }

    #[test]
    fn offsets_missing_after_the_seek_are_reported_as_skipped() {
        // Retention deleted offsets 20..120 before they were applied.
        let plan =
            plan(&ranges(&[(0, 120, 130), (1, 7, 9)]), &BTreeMap::from([(0, 20), (1, 7)]), &BTreeMap::from([(0, 20)]));
        assert_eq!(plan.skipped, BTreeMap::from([(0, 100)]));
        assert_eq!(plan.next_offsets(), BTreeMap::from([(0, 131), (1, 10)]));
    }

    #[test]
    fn nothing_is_skipped_while_reading_on_from_the_stored_offset_or_before_seeking() {
        let contiguous = plan(&ranges(&[(0, 20, 25)]), &BTreeMap::from([(0, 20)]), &BTreeMap::from([(0, 20)]));
        assert!(contiguous.skipped.is_empty());
        let ahead = plan(&ranges(&[(0, 30, 35)]), &BTreeMap::from([(0, 20)]), &BTreeMap::new());
        assert!(ahead.skipped.is_empty(), "ahead without a seek yet is a seek back, not a loss");
        let fresh = plan(&ranges(&[(3, 100, 120)]), &BTreeMap::new(), &BTreeMap::new());
        assert!(fresh.skipped.is_empty());
    }

    #[test]
    fn a_partition_without_stored_offset_starts_where_kafka_put_us() {
        let plan = plan(&ranges(&[(3, 100, 120)]), &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(plan.partitions[&3], PartitionDecision::Apply { from: 100, next: 121 });
    }
}
