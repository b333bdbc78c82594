//! Turns a batch of Kafka records into what one transaction writes: the last
//! version of each order, in id order, and the offsets to commit afterwards.
//!
//! Pure logic, so the rules are unit-tested without Kafka or PostgreSQL.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schema::Order;

/// Where a record came from: the producer's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The CSV file.
    pub file: String,
    /// 1-based line where the record starts.
    pub line: i64,
    /// Byte offset where the record starts.
    pub offset: i64,
    /// When the producer read the line.
    pub read_at: DateTime<Utc>,
}

/// One decoded order record and its place in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order.
    pub order: Order,
    /// Its origin.
    pub source: Source,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset within the partition.
    pub offset: i64,
}

/// The rows of one write, one per order id.
#[derive(Debug, Default, PartialEq)]
pub struct Rows {
    /// The last record of each id in the batch, in ascending id order: the
    /// fixed order means two consumers writing overlapping ids lock rows in
    /// the same sequence and cannot deadlock.
    pub records: Vec<OrderRecord>,
}

/// Keeps the last record per order id (Kafka keeps records of one key in
/// order, so the last one read is the newest), sorted by id.
pub fn last_per_id(records: impl IntoIterator<Item = OrderRecord>) -> Rows {
    let mut by_id: BTreeMap<i64, OrderRecord> = BTreeMap::new();
    for record in records {
        by_id.insert(record.order.id, record);
    }
    Rows { records: by_id.into_values().collect() }
}

/// The offset to commit for each partition once a batch is written: one past
/// the highest offset seen, as Kafka expects.
pub fn next_offsets(positions: impl IntoIterator<Item = (i32, i64)>) -> BTreeMap<i32, i64> {
    let mut next = BTreeMap::new();
    for (partition, offset) in positions {
        let entry = next.entry(partition).or_insert(offset + 1);
        *entry = (*entry).max(offset + 1);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn record(id: i64, item_total: i64, partition: i32, offset: i64) -> OrderRecord {
        OrderRecord {
            order: Order {
                id,
                user_id: 1,
                completed_at: Utc.with_ymd_and_hms(2022, 7, 1, 0, 0, 0).unwrap(),
                item_total: Decimal::new(item_total, 2),
                shipment_total: Decimal::ZERO,
            },
            source: Source { file: "a.csv".into(), line: 2, offset: 0, read_at: Utc::now() },
            partition,
            offset,
        }
    }

    #[test]
    fn last_record_of_an_id_wins() {
        let rows = last_per_id([record(7, 100, 0, 1), record(7, 200, 0, 2), record(3, 50, 1, 1)]);
        let kept: Vec<_> = rows.records.iter().map(|r| (r.order.id, r.order.item_total)).collect();
        assert_eq!(kept, vec![(3, Decimal::new(50, 2)), (7, Decimal::new(200, 2))]);
    }

    #[test]
    fn rows_come_in_ascending_id_order() {
        let rows = last_per_id([record(9, 1, 0, 1), record(2, 1, 0, 2), record(5, 1, 0, 3)]);
        let ids: Vec<_> = rows.records.iter().map(|r| r.order.id).collect();
        assert_eq!(ids, vec![2, 5, 9]);
    }

    #[test]
    fn offsets_to_commit_are_one_past_the_highest_per_partition() {
        let next = next_offsets([(0, 5), (1, 9), (0, 7), (0, 6)]);
        assert_eq!(next, BTreeMap::from([(0, 8), (1, 10)]));
    }
}
