//! Turns the records of a batch into what one transaction writes: the newest
//! version of each order, in id order.
//!
//! Pure logic, so the rules are unit-tested without Kafka or PostgreSQL.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use schema::{Extra, Flag, Order};

/// Where a record came from: the producer's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The CSV file (shared by the records decoded from it in a row).
    pub file: Arc<str>,
    /// 1-based line where the record starts.
    pub line: i64,
    /// Byte offset where the record starts.
    pub offset: i64,
    /// When the producer read the line.
    pub read_at: DateTime<Utc>,
    /// The record's place in source order (header `source_version`, see
    /// [`schema::message::source_version`]); 0 when absent, i.e. older than
    /// any versioned record. Decides which of two versions of an order wins.
    pub version: i64,
    /// The file's header in force at the record (header `columns`, a JSON
    /// array of names), as sent; absent from older producers. Recorded per
    /// file in `source_files`. The standard header is borrowed, not copied
    /// per record.
    pub columns: Option<Cow<'static, str>>,
}

/// One decoded order record and its place in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// The order.
    pub order: Order,
    /// Why it looks odd, if it does; stored with the row for analysts.
    pub flags: Vec<Flag>,
    /// The export's columns beyond the known ones (stored in `orders.extra`).
    pub extra: Extra,
    /// Its origin.
    pub source: Source,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset within the partition.
    pub offset: i64,
}

impl OrderRecord {
    /// The order's business values: what decides `updated` vs `unchanged`.
    pub fn values(&self) -> BusinessValues {
        BusinessValues {
            user_id: self.order.user_id,
            completed_at: self.order.completed_at,
            item_total: self.order.item_total,
            shipment_total: self.order.shipment_total,
            flags: self.flags.iter().map(|flag| flag.as_str().to_string()).collect(),
            extra: extra_json(&self.extra),
        }
    }
}

/// Extra values as the JSON object `orders.extra` holds; `None` (SQL NULL)
/// when there are none. Compared as JSON values, so key order (which `jsonb`
/// does not keep) never makes a difference.
pub fn extra_json(extra: &Extra) -> Option<serde_json::Value> {
    (!extra.is_empty()).then(|| serde_json::to_value(extra).expect("string pairs serialise"))
}

/// What an order says, as opposed to where it came from: a newer version with
/// the same business values is a duplicate for anyone reading the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessValues {
    /// The customer.
    pub user_id: i64,
    /// Completion time.
    pub completed_at: DateTime<Utc>,
    /// Items total.
    pub item_total: rust_decimal::Decimal,
    /// Shipping total.
    pub shipment_total: rust_decimal::Decimal,
    /// Flag names.
    pub flags: Vec<String>,
    /// The export's extra columns as a JSON object: a correction that only
    /// changes one of them is an update.
    pub extra: Option<serde_json::Value>,
}

/// The rows of one write, one per order id, borrowed from the batch (a
/// batch is kept whole until it commits, for retries; copying every record
/// once more per write would cost an allocation or two per record).
#[derive(Debug, Default, PartialEq)]
pub struct Rows<'a> {
    /// The newest record of each id in the batch, in ascending id order: the
    /// fixed order means two consumers writing overlapping ids lock rows in
    /// the same sequence and cannot deadlock.
    pub records: Vec<&'a OrderRecord>,
}

impl Rows<'_> {
    /// The ids, ascending.
    pub fn ids(&self) -> Vec<i64> {
        self.records.iter().map(|record| record.order.id).collect()
    }
}

/// Keeps the newest record per order id, sorted by id. "Newest" is the
/// largest source version, then the later Kafka position: the same rule the
/// upsert's version guard applies, so the batch never discards the record the
/// table would have kept.
///
/// One stable sort by (id, version, partition, offset) and a pass keeping
/// each id's last: on a tie the record met later wins, as it would replace
/// the earlier in a map. (A `BTreeMap` of the batch cost a tree node per
/// record.)
pub fn last_per_id<'a>(records: impl IntoIterator<Item = &'a OrderRecord>) -> Rows<'a> {
    let mut sorted: Vec<&OrderRecord> = records.into_iter().collect();
    sorted.sort_by_key(|record| (record.order.id, record.source.version, record.partition, record.offset));
    let mut newest: Vec<&OrderRecord> = Vec::with_capacity(sorted.len());
    for record in sorted {
        match newest.last_mut() {
            Some(last) if last.order.id == record.order.id => *last = record,
            _ => newest.push(record),
        }
    }
    Rows { records: newest }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    pub(crate) fn record(id: i64, item_total: i64, version: i64, offset: i64) -> OrderRecord {
        OrderRecord {
            order: Order {
                id,
                user_id: 1,
                completed_at: Utc.with_ymd_and_hms(2022, 7, 1, 0, 0, 0).unwrap(),
                item_total: Decimal::new(item_total, 2),
                shipment_total: Decimal::ZERO,
            },
            flags: Vec::new(),
            extra: Extra::new(),
            source: Source { file: "a.csv".into(), line: 2, offset: 0, read_at: Utc::now(), version, columns: None },
            partition: 0,
            offset,
        }
    }

    #[test]
    fn last_record_of_an_id_wins_when_versions_are_equal() {
        let records = [record(7, 100, 0, 1), record(7, 200, 0, 2), record(3, 50, 0, 3)];
        let rows = last_per_id(&records);
        let kept: Vec<_> = rows.records.iter().map(|r| (r.order.id, r.order.item_total)).collect();
        assert_eq!(kept, vec![(3, Decimal::new(50, 2)), (7, Decimal::new(200, 2))]);
    }

    #[test]
    fn newest_version_wins_even_if_read_first() {
        let records = [record(7, 100, 30, 1), record(7, 200, 25, 2)];
        let rows = last_per_id(&records);
        assert_eq!(rows.records.len(), 1);
        assert_eq!(rows.records[0].order.item_total, Decimal::new(100, 2));
    }

    #[test]
    fn the_later_partition_wins_and_an_exact_tie_keeps_the_record_met_last() {
        let mut other_partition = record(7, 300, 0, 1);
        other_partition.partition = 1;
        let records = [other_partition, record(7, 100, 0, 5)];
        assert_eq!(last_per_id(&records).records[0].order.item_total, Decimal::new(300, 2));
        let records = [record(7, 100, 0, 5), record(7, 200, 0, 5), record(4, 1, 0, 5)];
        let kept: Vec<_> = last_per_id(&records).records.iter().map(|r| (r.order.id, r.order.item_total)).collect();
        assert_eq!(kept, vec![(4, Decimal::new(1, 2)), (7, Decimal::new(200, 2))]);
    }

    #[test]
    fn rows_come_in_ascending_id_order() {
        let records = [record(9, 1, 0, 1), record(2, 1, 0, 2), record(5, 1, 0, 3)];
        let rows = last_per_id(&records);
        assert_eq!(rows.ids(), vec![2, 5, 9]);
    }
}
