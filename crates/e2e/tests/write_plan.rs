//! The consumer's write statements on a real PostgreSQL: the lock query
//! keeps using the primary key as the table grows, the first step of a
//! write inserts only the ids not stored, and both write paths reach the
//! same rows and counts.
//!
//! A prepared statement gets a cached generic plan after five executions;
//! planned on a young table of a few hundred rows that plan is a sequential
//! scan, and PostgreSQL keeps it until an `ANALYZE` invalidates it. Every
//! batch then scans the whole table: at 5,000 lines/s on a fresh database
//! the bench saw latency grow to 40 s within 20 s, until autovacuum ran.
//! This test grows a table under the consumer's `lock_existing` with
//! autovacuum off and counts the scans PostgreSQL did for it.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use chrono::Utc;
use consumer::batch::{OrderRecord, Source};
use consumer::upsert::{insert_new, lock_existing, UpsertOutcome, WritePath};
use harness::Scenario;
use rust_decimal::Decimal;

const YOUNG_ROWS: i64 = 1_000;
const GROWN_ROWS: i64 = 200_000;
const BATCH: i64 = 300;

async fn insert_orders(client: &tokio_postgres::Client, ids: std::ops::RangeInclusive<i64>) {
    client
        .execute(
            "INSERT INTO orders (id, user_id, completed_at, item_total, shipment_total,
                                 source_file, source_line, source_offset, read_at)
             SELECT g, 1, now(), 10, 2.5, 'plan.csv', g, g, now() FROM generate_series($1::int8, $2::int8) g",
            &[ids.start(), ids.end()],
        )
        .await
        .unwrap();
}

/// (sequential scans, index scans) of `orders` counted by this backend and
/// not yet flushed to the cumulative statistics. Since PostgreSQL 15 that
/// may include earlier transactions of the session (stats are flushed at
/// most once a second, between transactions), so the tests compare two
/// readings taken inside one transaction, where nothing is flushed.
async fn pending_scans(transaction: &tokio_postgres::Transaction<'_>) -> (i64, i64) {
    let row = transaction
        .query_one(
            "SELECT coalesce(seq_scan, 0), coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables WHERE relname = 'orders'",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn lock_query_uses_the_primary_key_after_the_table_grew() {
    let scenario = Scenario::new("write_plan").await;
    let mut client = scenario.db().await;
    consumer::migrate::migrate(&mut client).await.expect("migrations apply");
    // Nothing may re-plan behind the test's back.
    client.batch_execute("ALTER TABLE orders SET (autovacuum_enabled = false)").await.unwrap();
    insert_orders(&client, 1..=YOUNG_ROWS).await;
    let batch: Vec<i64> = (1..=BATCH).collect();

    // The hazard, shown with a prepared statement of the same query: ten
    // executions on the young table, then the table grows.
    let prepared = client.prepare("SELECT id FROM orders WHERE id = ANY($1) ORDER BY id FOR UPDATE").await.unwrap();
    for _ in 0..10 {
        let transaction = client.transaction().await.unwrap();
        transaction.query(&prepared, &[&batch]).await.unwrap();
        transaction.commit().await.unwrap();
    }
    // The consumer's query, also run ten times on the young table.
    for _ in 0..10 {
        let transaction = client.transaction().await.unwrap();
        assert_eq!(lock_existing(&transaction, &batch).await.unwrap().len(), BATCH as usize);
        transaction.commit().await.unwrap();
    }

    insert_orders(&client, YOUNG_ROWS + 1..=GROWN_ROWS).await;
    let probe: Vec<i64> = (GROWN_ROWS - BATCH + 1..=GROWN_ROWS).collect();

    let transaction = client.transaction().await.unwrap();
    let (seq_before, _) = pending_scans(&transaction).await;
    transaction.query(&prepared, &[&probe]).await.unwrap();
    let (seq_after, _) = pending_scans(&transaction).await;
    transaction.rollback().await.unwrap();
    let prepared_seq = seq_after - seq_before;
    assert!(
        prepared_seq >= 1,
        "control: the prepared statement was expected to keep its sequential-scan plan on this PostgreSQL \
         (if the planner no longer does that, this test cannot tell the consumer's query apart and needs a new control)"
    );

    let transaction = client.transaction().await.unwrap();
    let (seq_before, idx_before) = pending_scans(&transaction).await;
    let locked = lock_existing(&transaction, &probe).await.unwrap();
    let (seq_after, idx_after) = pending_scans(&transaction).await;
    transaction.rollback().await.unwrap();
    let (seq, idx) = (seq_after - seq_before, idx_after - idx_before);
    assert_eq!(locked.len(), BATCH as usize, "every probed id exists and is locked");
    assert_eq!(seq, 0, "the lock query scanned the whole {GROWN_ROWS}-row table");
    assert!(idx >= 1, "the lock query used no index (index scans: {idx})");
}

/// A one-connection pool on the scenario's database: the consumer's write
/// functions take its transactions.
fn pool_of(scenario: &Scenario) -> deadpool_postgres::Pool {
    let manager = deadpool_postgres::Manager::new(scenario.database_url.parse().unwrap(), tokio_postgres::NoTls);
    deadpool_postgres::Pool::builder(manager).max_size(1).build().unwrap()
}

fn record(id: i64, item_total_cents: i64) -> OrderRecord {
    OrderRecord {
        order: schema::Order {
            id,
            user_id: 1,
            completed_at: Utc::now(),
            item_total: Decimal::new(item_total_cents, 2),
            shipment_total: Decimal::new(250, 2),
        },
        flags: Vec::new(),
        extra: schema::Extra::new(),
        source: Source {
            file: "new.csv".into(),
            line: id + 1,
            offset: id * 40,
            read_at: Utc::now(),
            version: 1 << 40,
            columns: None,
        },
        partition: 0,
        offset: id,
    }
}

#[tokio::test]
async fn the_first_write_step_inserts_only_the_ids_not_stored() {
    let scenario = Scenario::new("write_new_rows").await;
    let mut client = scenario.db().await;
    consumer::migrate::migrate(&mut client).await.expect("migrations apply");
    insert_orders(&client, 1..=5).await; // item_total 10, version 0
    let records: Vec<OrderRecord> = (1..=10).map(|id| record(id, 9_900)).collect();
    let batch: Vec<&OrderRecord> = records.iter().collect();

    let pool = pool_of(&scenario);
    let mut pooled = pool.get().await.unwrap();
    let transaction = pooled.transaction().await.unwrap();
    let mut inserted = insert_new(&transaction, &batch).await.unwrap();
    transaction.commit().await.unwrap();
    inserted.sort_unstable();
    assert_eq!(inserted, (6..=10).collect::<Vec<i64>>(), "only the ids not stored are inserted and returned");

    let rows = client.query("SELECT id, item_total, source_version FROM orders ORDER BY id", &[]).await.unwrap();
    let table: Vec<(i64, Decimal, i64)> = rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    let expected: Vec<(i64, Decimal, i64)> = (1..=10)
        .map(|id| if id <= 5 { (id, Decimal::new(1_000, 2), 0) } else { (id, Decimal::new(9_900, 2), 1 << 40) })
        .collect();
    assert_eq!(table, expected, "stored rows are left for the version guard, untouched by this step");
}

/// The table as (id, item_total, source_version), by id.
async fn table(client: &tokio_postgres::Client) -> Vec<(i64, Decimal, i64)> {
    let rows = client.query("SELECT id, item_total, source_version FROM orders ORDER BY id", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect()
}

#[tokio::test]
async fn both_write_paths_reach_the_same_rows_and_counts() {
    // Stored: ids 1..=6 (item_total 10, version 0). The batch: newer versions
    // of 1..=3 with other values, an older version of 4, new ids 7..=10, and
    // id 8 twice (the later record wins).
    let mut records: Vec<OrderRecord> = (1..=4).chain(7..=10).map(|id| record(id, 9_900)).collect();
    records[3].source.version = -1;
    let mut superseding = record(8, 7_700);
    superseding.source.version += 1;
    records.push(superseding);
    let batch: Vec<&OrderRecord> = records.iter().collect();

    let mut results = Vec::new();
    for path in [WritePath::InsertFirst, WritePath::LockFirst] {
        let scenario = Scenario::new("write_paths").await;
        let mut client = scenario.db().await;
        consumer::migrate::migrate(&mut client).await.expect("migrations apply");
        insert_orders(&client, 1..=6).await;
        let pool = pool_of(&scenario);
        let mut pooled = pool.get().await.unwrap();
        let mut transaction = pooled.transaction().await.unwrap();
        let upserted = consumer::upsert_with_bisection(&mut transaction, batch.clone(), path).await.unwrap();
        transaction.commit().await.unwrap();
        assert!(upserted.rejected.is_empty(), "{path:?}: {:?}", upserted.rejected);
        assert_eq!(
            upserted.outcome,
            UpsertOutcome { inserted: 4, updated: 3, unchanged: 2 },
            "{path:?}: every record counted once, as the version guard decides"
        );
        assert_eq!((upserted.stored, upserted.rows), (4, 8), "{path:?}: 4 of the 8 distinct ids were stored");
        results.push(table(&client).await);
    }
    assert_eq!(results[0], results[1], "insert-first and lock-first leave the same table");
    let expected: Vec<(i64, Decimal, i64)> = (1..=10)
        .map(|id| match id {
            1..=3 | 7 | 9 | 10 => (id, Decimal::new(9_900, 2), 1 << 40),
            8 => (id, Decimal::new(7_700, 2), (1 << 40) + 1),
            _ => (id, Decimal::new(1_000, 2), 0),
        })
        .collect();
    assert_eq!(results[0], expected);
}
