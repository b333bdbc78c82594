//! Writes a batch of orders in two steps: the new ids first, then the known
//! ones under a version guard.
//!
//! "Newer" is the record's source version (see [`crate::batch::Source::version`]):
//! a stored row is replaced only by a strictly larger version, so replays,
//! redeliveries and re-read files are no-ops.
//!
//! 1. [`insert_new`]: every row is offered as `INSERT … ON CONFLICT (id) DO
//!    NOTHING RETURNING id`. The ids it returns were not stored: they count
//!    as inserted, and nothing else is asked about them. A live pipeline
//!    mostly sees new orders, so this one statement is usually the whole
//!    write: locking first cost PostgreSQL about a third of its time on
//!    fresh orders, to find nothing.
//! 2. The rest are known ids. Their stored rows are locked `FOR UPDATE` in
//!    ascending id order ([`lock_existing`]), each row's outcome is decided
//!    ([`row_outcome`]), which keeps the counts exact (nobody changes them
//!    until we commit), and the rows that write go through the version guard
//!    ([`write_rows`]).
//!
//! Step 1 pays off when most ids are new, and costs a second index probe
//! per row when they are not (a re-ingest, a replay): the consumer then
//! goes straight to step 2 for every row, whose guarded write inserts the
//! few new ones. Each batch takes the path that suited the one before it
//! ([`WritePath`]).
//!
//! Both steps take ids in ascending order. Two transactions never write one
//! id at once in a group (each batch first locks its partitions' rows in
//! `consumer_offsets`, and an id has one partition); were they to (partitions
//! added to the topic), PostgreSQL's deadlock detector would abort one, and
//! a deadlock is a transient error the consumer retries.
//!
//! Rows travel as arrays expanded by `unnest` in the select list, where
//! PostgreSQL streams them in step (`unnest` in `FROM` materialises every
//! array first); in our measurement faster than binary `COPY` into a
//! temporary table, which lives on only in the benchmark that compares the
//! two (`examples/write_bench.rs`, built on [`ORDER_COLUMNS`] and
//! [`VERSION_GUARD`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use tokio_postgres::types::{ToSql, Type};

use crate::batch::{BusinessValues, OrderRecord};

/// How the rows of a batch landed. Every applied record counts exactly once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UpsertOutcome {
    /// New order ids.
    pub inserted: u64,
    /// Known ids replaced by a newer version with different business values.
    pub updated: u64,
    /// Duplicates and replays: an older or equal version (nothing written),
    /// a newer version with the same values (only the version advances), or
    /// a record superseded by a newer one of the same batch.
    pub unchanged: u64,
}

impl std::ops::AddAssign for UpsertOutcome {
    fn add_assign(&mut self, other: Self) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// Which statement a batch's rows meet first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WritePath {
    /// [`insert_new`] for every row, then the version guard for the ids it
    /// found stored: one probe per new id, two per known one.
    #[default]
    InsertFirst,
    /// The version guard for every row ([`lock_existing`], [`write_rows`]):
    /// two probes per new id, one per known one.
    LockFirst,
}

impl WritePath {
    /// The path for the next batch, given that `stored` of this batch's
    /// `rows` distinct ids were stored before it: lock-first when more
    /// than half were, insert-first otherwise; unchanged after an empty batch.
    pub fn next(self, stored: usize, rows: usize) -> WritePath {
        match rows {
            0 => self,
            _ if stored * 2 > rows => WritePath::LockFirst,
            _ => WritePath::InsertFirst,
        }
    }
}

/// The path one consumer's next batch takes: written after each batch,
/// read at the start of the next (one batch is written at a time).
#[derive(Debug, Default)]
pub struct NextWritePath(AtomicBool);

impl NextWritePath {
    /// The path to take now.
    pub fn get(&self) -> WritePath {
        if self.0.load(Ordering::Relaxed) {
            WritePath::LockFirst
        } else {
            WritePath::InsertFirst
        }
    }

    /// Records the path for the next batch.
    pub fn set(&self, path: WritePath) {
        self.0.store(path == WritePath::LockFirst, Ordering::Relaxed);
    }
}

/// What one row does to the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowOutcome {
    /// No stored row: written.
    Inserted,
    /// Stored row older with other values: written.
    Updated,
    /// Stored row older with the same values: written to advance the version.
    NewerVersionSameValues,
    /// Stored row as new or newer: not written.
    NotNewer,
}

impl RowOutcome {
    /// Whether the row must be sent to the database.
    pub fn writes(self) -> bool {
        !matches!(self, RowOutcome::NotNewer)
    }
}

/// A stored row, as locked before writing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// Its source version.
    pub version: i64,
    /// Its business values.
    pub values: BusinessValues,
}

/// The version guard and outcome rule, for one row.
pub fn row_outcome(record: &OrderRecord, stored: Option<&StoredRow>) -> RowOutcome {
    match stored {
        None => RowOutcome::Inserted,
        Some(stored) if record.source.version <= stored.version => RowOutcome::NotNewer,
        Some(stored) if same_values(&stored.values, &record.values()) => RowOutcome::NewerVersionSameValues,
        Some(_) => RowOutcome::Updated,
    }
}

/// PostgreSQL keeps microseconds; a nanosecond difference is not a change.
fn same_values(stored: &BusinessValues, incoming: &BusinessValues) -> bool {
    stored.user_id == incoming.user_id
        && stored.completed_at.timestamp_micros() == incoming.completed_at.timestamp_micros()
        && stored.item_total == incoming.item_total
        && stored.shipment_total == incoming.shipment_total
        && stored.flags == incoming.flags
        && stored.extra == incoming.extra
}

/// Adds one row outcome to the counts.
pub fn count(outcome: &mut UpsertOutcome, row: RowOutcome) {
    match row {
        RowOutcome::Inserted => outcome.inserted += 1,
        RowOutcome::Updated => outcome.updated += 1,
        RowOutcome::NewerVersionSameValues | RowOutcome::NotNewer => outcome.unchanged += 1,
    }
}

/// The lock query. It is sent as an unnamed statement with its parameter
/// types (`query_typed`), so PostgreSQL plans it for each batch with the
/// batch's ids: a *prepared* statement gets a cached generic plan after five
/// executions, and when those ran on a young, small table that plan is a
/// sequential scan, kept while the table grows (until autovacuum's `ANALYZE`
/// invalidates it) — every batch then scans the whole table. Measured at
/// 5,000 lines/s on a fresh database: latency growing to 40 s within 20 s.
const LOCK_EXISTING: &str =
    "SELECT id, source_version, user_id, completed_at, item_total, shipment_total, flags, extra::text
     FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE";

/// Locks the stored rows of these ids (ascending) and returns them.
pub async fn lock_existing(
    client: &impl tokio_postgres::GenericClient,
    ids: &[i64],
) -> Result<HashMap<i64, StoredRow>, tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = client.query_typed(LOCK_EXISTING, &[(&ids, Type::INT8_ARRAY)]).await?;
    Ok(rows
        .iter()
        .map(|row| {
            let values = BusinessValues {
                user_id: row.get(2),
                completed_at: row.get(3),
                item_total: row.get(4),
                shipment_total: row.get(5),
                flags: row.get(6),
                // Read as text and parsed here: the column is written only
                // from JSON this consumer serialised, so it always parses.
                extra: row.get::<_, Option<&str>>(7).and_then(|text| serde_json::from_str(text).ok()),
            };
            (row.get(0), StoredRow { version: row.get(1), values })
        })
        .collect())
}

/// The guard: a stored row is replaced only by a strictly newer version.
/// Public for the write benchmark, whose other write path must keep the same guard.
pub const VERSION_GUARD: &str = "
ON CONFLICT (id) DO UPDATE SET
    user_id = EXCLUDED.user_id,
    completed_at = EXCLUDED.completed_at,
    item_total = EXCLUDED.item_total,
    shipment_total = EXCLUDED.shipment_total,
    source_file = EXCLUDED.source_file,
    source_line = EXCLUDED.source_line,
    source_offset = EXCLUDED.source_offset,
    read_at = EXCLUDED.read_at,
    source_version = EXCLUDED.source_version,
    flags = EXCLUDED.flags,
    extra = EXCLUDED.extra,
    written_at = clock_timestamp()
WHERE EXCLUDED.source_version > stored.source_version";

/// The `orders` columns a write sets, in the order both write paths send
/// them (public for the write benchmark). The consumer's write also sets
/// `extra` ([`VERSION_GUARD`] copies it); the benchmark's rows have none,
/// so its `COPY` path leaves it NULL.
pub const ORDER_COLUMNS: &str =
    "id, user_id, completed_at, item_total, shipment_total, source_file, source_line, source_offset, read_at, source_version, flags";

/// The batch's rows from the statement's array parameters, in
/// [`ORDER_COLUMNS`] order then `extra`: `unnest` in the select list, so the
/// arrays stream in step instead of being materialised first.
const ROWS_FROM_ARRAYS: &str = "SELECT unnest($1::int8[]), unnest($2::int8[]), unnest($3::timestamptz[]),
        unnest($4::numeric[]), unnest($5::numeric[]), unnest($6::text[]), unnest($7::int8[]),
        unnest($8::int8[]), unnest($9::timestamptz[]), unnest($10::int8[]),
        string_to_array(unnest($11::text[]), ','), unnest($12::text[])::jsonb";

fn guarded_upsert() -> String {
    format!("INSERT INTO orders AS stored ({ORDER_COLUMNS}, extra) {ROWS_FROM_ARRAYS} {VERSION_GUARD}")
}

/// Inserts the rows whose ids are not stored, in one statement, and returns
/// those ids; the others are left for [`lock_existing`] and [`write_rows`].
fn insert_missing() -> String {
    format!(
        "WITH inserted AS (
             INSERT INTO orders ({ORDER_COLUMNS}, extra) {ROWS_FROM_ARRAYS}
             ON CONFLICT (id) DO NOTHING RETURNING id)
         SELECT coalesce(array_agg(id), '{{}}') FROM inserted"
    )
}

/// Inserts the records (unique ids, ascending) whose ids are not stored yet
/// and returns the ids it inserted: those rows are
/// [`RowOutcome::Inserted`]. A stored id is left as it is.
pub async fn insert_new(
    client: &impl GenericClient,
    records: &[&OrderRecord],
) -> Result<Vec<i64>, tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let columns = ColumnArrays::of(records);
    let statement = client.prepare_cached(&insert_missing()).await?;
    let row = client.query_one(&statement, &columns.params()).await?;
    Ok(row.get(0))
}

/// Writes the records (unique ids, ascending) with the version guard.
pub async fn write_rows(client: &impl GenericClient, records: &[&OrderRecord]) -> Result<(), tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let columns = ColumnArrays::of(records);
    let statement = client.prepare_cached(&guarded_upsert()).await?;
    client.execute(&statement, &columns.params()).await?;
    Ok(())
}

fn flag_list(record: &OrderRecord) -> String {
    record.flags.iter().map(|flag| flag.as_str()).collect::<Vec<_>>().join(",")
}

/// The records of one statement as one array per column: the parameters of
/// the consumer's write statements, in [`ORDER_COLUMNS`] order then `extra`
/// (as JSON text). Public for the write benchmark, whose statements take the
/// same parameters.
pub struct ColumnArrays<'a> {
    ids: Vec<i64>,
    user_ids: Vec<i64>,
    completed_at: Vec<DateTime<Utc>>,
    item_totals: Vec<Decimal>,
    shipment_totals: Vec<Decimal>,
    files: Vec<&'a str>,
    lines: Vec<i64>,
    offsets: Vec<i64>,
    read_at: Vec<DateTime<Utc>>,
    versions: Vec<i64>,
    flags: Vec<String>,
    extra: Vec<Option<String>>,
}

impl<'a> ColumnArrays<'a> {
    /// The arrays of these records, in their order.
    pub fn of(records: &[&'a OrderRecord]) -> Self {
        ColumnArrays {
            ids: records.iter().map(|r| r.order.id).collect(),
            user_ids: records.iter().map(|r| r.order.user_id).collect(),
            completed_at: records.iter().map(|r| r.order.completed_at).collect(),
            item_totals: records.iter().map(|r| r.order.item_total).collect(),
            shipment_totals: records.iter().map(|r| r.order.shipment_total).collect(),
            files: records.iter().map(|r| &*r.source.file).collect(),
            lines: records.iter().map(|r| r.source.line).collect(),
            offsets: records.iter().map(|r| r.source.offset).collect(),
            read_at: records.iter().map(|r| r.source.read_at).collect(),
            versions: records.iter().map(|r| r.source.version).collect(),
            flags: records.iter().map(|r| flag_list(r)).collect(),
            // Sent as text, cast to jsonb in the statement: no JSON type support needed in the driver.
            extra: records
                .iter()
                .map(|r| (!r.extra.is_empty()).then(|| serde_json::to_string(&r.extra).expect("string pairs")))
                .collect(),
        }
    }

    /// The statement parameters `$1` … `$12`.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 12] {
        [
            &self.ids,
            &self.user_ids,
            &self.completed_at,
            &self.item_totals,
            &self.shipment_totals,
            &self.files,
            &self.lines,
            &self.offsets,
            &self.read_at,
            &self.versions,
            &self.flags,
            &self.extra,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::record;
    use rust_decimal::Decimal;

    fn stored(version: i64, item_total: i64) -> StoredRow {
        let mut values = record(1, item_total, version, 0).values();
        values.item_total = Decimal::new(item_total, 2);
        StoredRow { version, values }
    }

    #[test]
    fn the_next_batch_locks_first_once_most_ids_were_stored() {
        use WritePath::{InsertFirst, LockFirst};
        assert_eq!(WritePath::default(), InsertFirst, "a fresh consumer expects new orders");
        assert_eq!(InsertFirst.next(0, 5_000), InsertFirst, "a live tail of new orders");
        assert_eq!(InsertFirst.next(5_000, 5_000), LockFirst, "a re-ingest of stored orders");
        assert_eq!(InsertFirst.next(2_501, 5_000), LockFirst);
        assert_eq!(LockFirst.next(2_500, 5_000), InsertFirst, "half new is insert-first's case");
        assert_eq!(LockFirst.next(0, 0), LockFirst, "an empty batch says nothing");
        assert_eq!(InsertFirst.next(0, 0), InsertFirst);
    }

    #[test]
    fn the_path_one_batch_chose_is_the_one_the_next_reads() {
        let next = NextWritePath::default();
        assert_eq!(next.get(), WritePath::InsertFirst);
        next.set(WritePath::LockFirst);
        assert_eq!(next.get(), WritePath::LockFirst);
        next.set(WritePath::InsertFirst);
        assert_eq!(next.get(), WritePath::InsertFirst);
    }

    #[test]
    fn unknown_id_is_inserted() {
        assert_eq!(row_outcome(&record(1, 100, 5, 0), None), RowOutcome::Inserted);
    }

    #[test]
    fn older_or_equal_version_is_unchanged_and_not_written() {
        assert_eq!(row_outcome(&record(1, 999, 5, 0), Some(&stored(10, 100))), RowOutcome::NotNewer);
        assert_eq!(row_outcome(&record(1, 999, 10, 0), Some(&stored(10, 100))), RowOutcome::NotNewer);
        assert!(!RowOutcome::NotNewer.writes());
    }

    #[test]
    fn newer_version_with_other_values_is_an_update() {
        assert_eq!(row_outcome(&record(1, 999, 11, 0), Some(&stored(10, 100))), RowOutcome::Updated);
    }

    #[test]
    fn newer_version_with_same_values_advances_the_version_but_counts_unchanged() {
        let outcome = row_outcome(&record(1, 100, 11, 0), Some(&stored(10, 100)));
        assert_eq!(outcome, RowOutcome::NewerVersionSameValues);
        assert!(outcome.writes());
        let mut counts = UpsertOutcome::default();
        count(&mut counts, outcome);
        assert_eq!(counts, UpsertOutcome { inserted: 0, updated: 0, unchanged: 1 });
    }

    #[test]
    fn a_correction_of_an_extra_value_alone_is_an_update() {
        let mut old = stored(10, 100);
        old.values.extra = Some(serde_json::json!({"currency": "EUR", "coupon": "X"}));
        let mut incoming = record(1, 100, 11, 0);
        incoming.extra = [("coupon", "X"), ("currency", "EUR")].map(|(k, v)| (k.to_string(), v.to_string())).into();
        assert_eq!(row_outcome(&incoming, Some(&old)), RowOutcome::NewerVersionSameValues, "key order is no change");
        incoming.extra.insert("currency".into(), "USD".into());
        assert_eq!(row_outcome(&incoming, Some(&old)), RowOutcome::Updated);
        incoming.extra.clear();
        assert_eq!(row_outcome(&incoming, Some(&old)), RowOutcome::Updated, "extras dropped is a change too");
    }

    #[test]
    fn equal_amounts_with_other_scale_are_the_same_value() {
        let mut incoming = record(1, 0, 11, 0);
        incoming.order.item_total = Decimal::new(250, 2);
        let mut old = stored(10, 0);
        old.values.item_total = Decimal::new(25, 1);
        assert_eq!(row_outcome(&incoming, Some(&old)), RowOutcome::NewerVersionSameValues);
    }
}
