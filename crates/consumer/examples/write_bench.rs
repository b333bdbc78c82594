//! Measures the consumer's write path on a real PostgreSQL, two comparisons:
//!
//! - `write_bench` (default): how a batch is written and counted. *Lock then
//!   upsert* (the stored rows locked `FOR UPDATE` and read, each row's outcome
//!   decided in Rust, the rows that write sent by `unnest`) against *one
//!   statement* ([`upsert_rows`]: `INSERT … ON CONFLICT … WHERE` older and
//!   different `RETURNING`, plus a version-advance `UPDATE` only for rows it
//!   left alone). Four sets of 200,000 rows in batches of 5,000, each in its
//!   own transaction: insert (fresh ids), update (newer version, other
//!   values), replay (the same versions again: nothing written) and re-read
//!   (newer version, same values: the version advances, counted unchanged).
//!   Both paths must count the same outcomes; rows/s and CPU seconds of the
//!   client process and of its PostgreSQL backend (from `/proc`, so the server
//!   must run on this machine) are printed per set, then the median ratios.
//! - `write_bench copy`: `unnest` of arrays against binary `COPY` into a
//!   temporary table + `INSERT … SELECT`, per batch size (the measurement that
//!   chose `unnest`).
//! - `write_bench partition [SIZES…]`: whether partitioning `orders` by month
//!   of `completed_at` keeps the write cost flat as the table grows
//!   (docs/scaling.md). Per size (default 1,000,000 and 10,000,000 rows) two
//!   databases are filled alike (ids ascending with `completed_at` over 36
//!   months): the migrated, *plain* `orders`, and a *monthly* one (same
//!   columns, `PARTITION BY RANGE (completed_at)`, primary key
//!   `(id, completed_at)`). Then the same batches of 5,000 (4,000 new orders
//!   in the newest month, 1,000 corrections of ids drawn over the whole
//!   table) go through the consumer's lock-then-upsert into both,
//!   interleaved; printed: µs of backend CPU per row and rows/s per layout,
//!   and their ratio. The monthly table needs `ON CONFLICT (id, completed_at)`;
//!   the corrections keep their `completed_at`.
//!
//! `cargo run --release -p orderstream-consumer --example write_bench [copy|partition] [RUNS|SIZES…]`
//! with `ORDERSTREAM_TEST_DATABASE_URL` set (`make test-services`,
//! `. .local/test/env`). Each path writes into its own fresh database,
//! created and dropped by the run; the order of the paths alternates between
//! runs (RUNS, default 3).

use std::time::Instant;

use std::collections::HashSet;

use chrono::{DateTime, TimeZone, Utc};
use deadpool_postgres::{Pool, Transaction};
use orderstream_consumer::batch::{OrderRecord, Source};
use orderstream_consumer::upsert::{
    count, lock_existing, row_outcome, write_rows, ColumnArrays, UpsertOutcome, ORDER_COLUMNS, VERSION_GUARD,
};
use rust_decimal::Decimal;
use schema::Order;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

const ROWS: i64 = 200_000;

/// The consumer's batch size.
const BATCH: usize = 5_000;

/// How a batch is written and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CountingPath {
    /// Lock and read the stored rows, decide in Rust, upsert the rows that write.
    LockThenUpsert,
    /// [`upsert_rows`]: decide in SQL, one statement (two for rows it leaves alone).
    OneStatement,
}

/// The ways rows travel to PostgreSQL, for the `copy` comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WritePath {
    /// The consumer's: one `INSERT … SELECT FROM unnest(arrays) ON CONFLICT`.
    Unnest,
    /// Binary `COPY` into a temporary table, then `INSERT … SELECT … ON CONFLICT`.
    CopyTempTable,
}

const TEMP_TABLE: &str = "CREATE TEMP TABLE IF NOT EXISTS orders_incoming (
    id int8, user_id int8, completed_at timestamptz, item_total numeric, shipment_total numeric,
    source_file text, source_line int8, source_offset int8, read_at timestamptz, source_version int8, flags text[]
) ON COMMIT DELETE ROWS";

/// Writes the records (unique ids, ascending) by binary `COPY` into a
/// temporary table, then upserts them from it with the consumer's guard.
async fn write_copy(client: &Transaction<'_>, records: &[&OrderRecord]) -> Result<(), tokio_postgres::Error> {
    client.batch_execute(TEMP_TABLE).await?;
    client.batch_execute("TRUNCATE orders_incoming").await?;
    let sink = client.copy_in(&format!("COPY orders_incoming ({ORDER_COLUMNS}) FROM STDIN (FORMAT binary)")).await?;
    let types = [
        Type::INT8,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::NUMERIC,
        Type::NUMERIC,
        Type::TEXT,
        Type::INT8,
        Type::INT8,
        Type::TIMESTAMPTZ,
        Type::INT8,
        Type::TEXT_ARRAY,
    ];
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures::pin_mut!(writer);
    for record in records {
        let flags: Vec<&str> = record.flags.iter().map(|flag| flag.as_str()).collect();
        let file: &str = &record.source.file;
        writer
            .as_mut()
            .write(&[
                &record.order.id,
                &record.order.user_id,
                &record.order.completed_at,
                &record.order.item_total,
                &record.order.shipment_total,
                &file,
                &record.source.line,
                &record.source.offset,
                &record.source.read_at,
                &record.source.version,
                &flags,
            ])
            .await?;
    }
    writer.finish().await?;
    let upsert = format!(
        "INSERT INTO orders AS stored ({ORDER_COLUMNS}) SELECT {ORDER_COLUMNS} FROM orders_incoming ORDER BY id {VERSION_GUARD}"
    );
    let statement = client.prepare_cached(&upsert).await?;
    client.execute(&statement, &[]).await?;
    Ok(())
}

/// The candidate's first statement: inserts new ids and, `ON CONFLICT`,
/// replaces rows whose version is older *and* whose business values differ,
/// judged on the locked, latest version of the row (`ON CONFLICT` locks the
/// row before testing its `WHERE`, and keeps it locked when the test fails).
/// Returns each written id and whether it was inserted (`xmax = 0`: a row
/// updated by `ON CONFLICT` carries our transaction as its locker).
fn upsert_changed() -> String {
    unnest_insert(&format!(
        "ORDER BY id
         {VERSION_GUARD}
           AND (stored.user_id, stored.completed_at, stored.item_total, stored.shipment_total, stored.flags)
               IS DISTINCT FROM
               (EXCLUDED.user_id, EXCLUDED.completed_at, EXCLUDED.item_total, EXCLUDED.shipment_total, EXCLUDED.flags)
         RETURNING id, xmax = 0"
    ))
}

/// The rows of a batch as `unnest`ed arrays into `orders`, followed by
/// `tail` (the conflict handling), with the consumer's parameters
/// ([`ColumnArrays`]): the shape of the consumer's write when these
/// comparisons were made (`unnest` in `FROM`; the consumer now expands the
/// arrays in the select list and inserts new ids first, see
/// crates/consumer/src/upsert.rs). The one-statement candidate and the
/// `copy` comparison's `unnest` path use it; the lock-then-upsert path
/// calls the consumer's own [`write_rows`].
fn unnest_insert(tail: &str) -> String {
    format!(
        "INSERT INTO orders AS stored ({ORDER_COLUMNS}, extra)
         SELECT id, u, c, i, s, f, l, o, r, v, string_to_array(fl, ','), e::jsonb
         FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::numeric[], $5::numeric[],
                     $6::text[], $7::int8[], $8::int8[], $9::timestamptz[], $10::int8[], $11::text[], $12::text[])
              AS t(id, u, c, i, s, f, l, o, r, v, fl, e)
         {tail}"
    )
}

/// Advances the version (and provenance) of stored rows older than the
/// record: run only on ids the first statement left alone, which it locked,
/// so any row still older has the record's business values.
const ADVANCE_VERSION: &str = "UPDATE orders AS stored SET
        source_file = t.f, source_line = t.l, source_offset = t.o, read_at = t.r,
        source_version = t.v, written_at = clock_timestamp()
    FROM unnest($1::int8[], $6::text[], $7::int8[], $8::int8[], $9::timestamptz[], $10::int8[])
         AS t(id, f, l, o, r, v)
    WHERE stored.id = t.id AND stored.source_version < t.v";

/// The parameter types of [`ColumnArrays::params`], sent with the statements.
const ARRAY_TYPES: [Type; 12] = [
    Type::INT8_ARRAY,
    Type::INT8_ARRAY,
    Type::TIMESTAMPTZ_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::NUMERIC_ARRAY,
    Type::TEXT_ARRAY,
    Type::INT8_ARRAY,
    Type::INT8_ARRAY,
    Type::TIMESTAMPTZ_ARRAY,
    Type::INT8_ARRAY,
    Type::TEXT_ARRAY,
    Type::TEXT_ARRAY,
];

/// The candidate: writes the records (unique ids, ascending) and counts how
/// they landed, without locking or reading the stored rows first.
async fn upsert_rows(
    client: &deadpool_postgres::Transaction<'_>,
    records: &[&OrderRecord],
) -> Result<UpsertOutcome, tokio_postgres::Error> {
    let mut outcome = UpsertOutcome::default();
    if records.is_empty() {
        return Ok(outcome);
    }
    let arrays = ColumnArrays::of(records);
    let statement = client.prepare_cached(&upsert_changed()).await?;
    let written = client.query(&statement, &arrays.params()).await?;
    let mut written_ids = HashSet::with_capacity(written.len());
    for row in &written {
        written_ids.insert(row.get::<_, i64>(0));
        if row.get::<_, bool>(1) {
            outcome.inserted += 1;
        } else {
            outcome.updated += 1;
        }
    }
    let left: Vec<&OrderRecord> =
        records.iter().copied().filter(|record| !written_ids.contains(&record.order.id)).collect();
    outcome.unchanged = left.len() as u64;
    if !left.is_empty() {
        let arrays = ColumnArrays::of(&left);
        let params: Vec<(&(dyn ToSql + Sync), Type)> = arrays.params().into_iter().zip(ARRAY_TYPES).collect();
        (**client).query_typed(ADVANCE_VERSION, &params).await?;
    }
    Ok(outcome)
}

fn records(version: i64, cents: i64) -> Vec<OrderRecord> {
    (1..=ROWS)
        .map(|id| OrderRecord {
            order: Order {
                id,
                user_id: id % 5000 + 1,
                completed_at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + chrono::Duration::seconds(id),
                item_total: Decimal::new(cents + id % 10_000, 2),
                shipment_total: Decimal::new(250, 2),
            },
            flags: Vec::new(),
            extra: schema::Extra::new(),
            source: Source {
                file: "bench.csv".into(),
                line: id + 1,
                offset: id * 40,
                read_at: Utc::now(),
                version,
                columns: None,
            },
            partition: 0,
            offset: id,
        })
        .collect()
}

/// User plus system CPU seconds of a process, from `/proc/PID/stat`
/// (clock ticks of 1/100 s, Linux's `USER_HZ`).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = |index: usize| fields.get(index).and_then(|field| field.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// What one set cost.
#[derive(Debug, Clone, Copy)]
struct Cost {
    rows_per_s: f64,
    client_cpu: f64,
    server_cpu: f64,
    outcome: UpsertOutcome,
}

/// Writes one batch the way the consumer did before [`upsert_rows`].
async fn lock_then_upsert(transaction: &Transaction<'_>, rows: &[&OrderRecord]) -> UpsertOutcome {
    let ids: Vec<i64> = rows.iter().map(|r| r.order.id).collect();
    let existing = lock_existing(&**transaction, &ids).await.unwrap();
    let mut outcome = UpsertOutcome::default();
    let mut to_write = Vec::with_capacity(rows.len());
    for &record in rows {
        let row = row_outcome(record, existing.get(&record.order.id));
        count(&mut outcome, row);
        if row.writes() {
            to_write.push(record);
        }
    }
    write_rows(transaction, &to_write).await.unwrap();
    outcome
}

async fn write_set(pool: &Pool, backend: &str, path: CountingPath, all: &[OrderRecord]) -> Cost {
    let (client_before, server_before) = (cpu_seconds("self"), cpu_seconds(backend));
    let started = Instant::now();
    let mut outcome = UpsertOutcome::default();
    for chunk in all.chunks(BATCH) {
        let mut client = pool.get().await.unwrap();
        let transaction = client.transaction().await.unwrap();
        let rows: Vec<&OrderRecord> = chunk.iter().collect();
        outcome += match path {
            CountingPath::LockThenUpsert => lock_then_upsert(&transaction, &rows).await,
            CountingPath::OneStatement => upsert_rows(&transaction, &rows).await.unwrap(),
        };
        transaction.commit().await.unwrap();
    }
    Cost {
        rows_per_s: all.len() as f64 / started.elapsed().as_secs_f64(),
        client_cpu: cpu_seconds("self") - client_before,
        server_cpu: cpu_seconds(backend) - server_before,
        outcome,
    }
}

/// A fresh migrated database, its pool (one connection) and its backend's pid.
async fn fresh_database(admin: &tokio_postgres::Client, admin_url: &str, name: &str) -> (Pool, String) {
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0);
    let pool = orderstream_consumer::db::pool(&clients::DatabaseArgs::from_url(&url), 1).unwrap();
    let mut client = pool.get().await.unwrap();
    orderstream_consumer::migrate::migrate(&mut client).await.unwrap();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    drop(client);
    (pool, backend.to_string())
}

const SETS: [&str; 4] = ["insert", "update", "replay", "re-read"];

/// One run of both counting paths over the four sets; returns each path's costs per set.
async fn counting_run(admin: &tokio_postgres::Client, admin_url: &str, run: usize) -> [[Cost; 4]; 2] {
    let sets = [records(1, 1000), records(2, 2000), records(2, 2000), records(3, 2000)];
    let order = if run % 2 == 0 {
        [CountingPath::LockThenUpsert, CountingPath::OneStatement]
    } else {
        [CountingPath::OneStatement, CountingPath::LockThenUpsert]
    };
    let mut costs: [Option<[Cost; 4]>; 2] = [None, None];
    for path in order {
        let name = format!("bench_{}_{run}_{}", std::process::id(), path as u8);
        let (pool, backend) = fresh_database(admin, admin_url, &name).await;
        let mut per_set = Vec::new();
        for set in &sets {
            per_set.push(write_set(&pool, &backend, path, set).await);
        }
        drop(pool);
        admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        costs[path as usize] = Some(per_set.try_into().unwrap());
    }
    let [old, new] = costs.map(Option::unwrap);
    for (set, (old, new)) in SETS.iter().zip(old.iter().zip(new.iter())) {
        assert_eq!(old.outcome, new.outcome, "both paths count the {set} set alike");
    }
    [old, new]
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn compare_counting(admin: &tokio_postgres::Client, admin_url: &str, runs: usize) {
    println!("rows={ROWS}, batch={BATCH}; old = lock then upsert, new = one statement");
    println!("rows/s, and CPU seconds of the client (cl) and its PostgreSQL backend (pg)");
    println!(
        "{:>3} {:>7} {:>9} {:>9} {:>6} {:>6} {:>6} {:>6} {:>6} {:>7} {:>7}",
        "run", "set", "old r/s", "new r/s", "ratio", "old cl", "new cl", "old pg", "new pg", "cpu new/old", "outcome"
    );
    let mut ratios = vec![(Vec::new(), Vec::new()); 4];
    for run in 0..runs {
        let [old, new] = counting_run(admin, admin_url, run).await;
        for (index, set) in SETS.iter().enumerate() {
            let (o, n) = (old[index], new[index]);
            let speed = n.rows_per_s / o.rows_per_s;
            let cpu = (n.client_cpu + n.server_cpu) / (o.client_cpu + o.server_cpu);
            ratios[index].0.push(speed);
            ratios[index].1.push(cpu);
            let UpsertOutcome { inserted, updated, unchanged } = n.outcome;
            println!(
                "{run:>3} {set:>7} {:>9.0} {:>9.0} {speed:>6.2} {:>6.2} {:>6.2} {:>6.2} {:>6.2} {cpu:>11.2} {inserted}/{updated}/{unchanged}",
                o.rows_per_s, n.rows_per_s, o.client_cpu, n.client_cpu, o.server_cpu, n.server_cpu
            );
        }
    }
    println!("median over {runs} runs: new ÷ old");
    for (set, (speed, cpu)) in SETS.iter().zip(ratios) {
        println!("{set:>7}: rows/s {:.2}, CPU {:.2}", median(speed), median(cpu));
    }
}

async fn run_copy(pool: &Pool, path: WritePath, all: &[OrderRecord], batch: usize) -> f64 {
    let started = Instant::now();
    for chunk in all.chunks(batch) {
        let mut client = pool.get().await.unwrap();
        let transaction = client.transaction().await.unwrap();
        let ids: Vec<i64> = chunk.iter().map(|r| r.order.id).collect();
        lock_existing(&*transaction, &ids).await.unwrap();
        let rows: Vec<&OrderRecord> = chunk.iter().collect();
        match path {
            WritePath::Unnest => write_rows(&transaction, &rows).await.unwrap(),
            WritePath::CopyTempTable => write_copy(&transaction, &rows).await.unwrap(),
        }
        transaction.commit().await.unwrap();
    }
    all.len() as f64 / started.elapsed().as_secs_f64()
}

async fn compare_copy(admin: &tokio_postgres::Client, admin_url: &str) {
    println!("rows={ROWS}; rows/s per path; insert = fresh ids, update = same ids with a newer version");
    println!("{:>6} {:>8} {:>12} {:>12} {:>7}", "batch", "phase", "unnest", "copy", "ratio");
    for batch in [1_000usize, 5_000, 20_000] {
        let mut results = Vec::new();
        for path in [WritePath::Unnest, WritePath::CopyTempTable] {
            let name =
                format!("bench_{}_{batch}_{}", std::process::id(), if path == WritePath::Unnest { "u" } else { "c" });
            let (pool, _) = fresh_database(admin, admin_url, &name).await;
            let insert = run_copy(&pool, path, &records(1, 1000), batch).await;
            let update = run_copy(&pool, path, &records(2, 2000), batch).await;
            results.push((insert, update));
            drop(pool);
            admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        }
        let (unnest, copy) = (results[0], results[1]);
        println!("{batch:>6} {:>8} {:>12.0} {:>12.0} {:>7.2}", "insert", unnest.0, copy.0, unnest.0 / copy.0);
        println!("{batch:>6} {:>8} {:>12.0} {:>12.0} {:>7.2}", "update", unnest.1, copy.1, unnest.1 / copy.1);
    }
}

/// Table sizes of the partition comparison when none are given.
const PARTITION_SIZES: [i64; 2] = [1_000_000, 10_000_000];

/// Measured batches per layout and size, after one warm-up batch each.
const PARTITION_BATCHES: usize = 20;

/// Of each batch, the new orders; the rest are corrections of stored ones.
const NEW_PER_BATCH: usize = 4_000;

/// The filled rows' `completed_at` spans 36 months (1,095 days, in seconds)
/// from [`FIRST_MONTH`]: the monthly table has 36 partitions, all realistic.
const SPAN_SECONDS: i64 = 1_095 * 86_400;

/// The first month of the filled rows.
const FIRST_MONTH: &str = "2022-01-01 00:00:00+00";

/// How `orders` is laid out in one of the compared databases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The migrated table: primary key `id`.
    Plain,
    /// Partitioned by month of `completed_at`: primary key `(id, completed_at)`.
    Monthly,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Plain => "plain",
            Layout::Monthly => "monthly",
        }
    }

    /// The consumer's guarded upsert for this layout: a partitioned table's
    /// unique key must contain the partition key, so the conflict target does.
    fn upsert(self) -> String {
        let guard = match self {
            Layout::Plain => VERSION_GUARD.to_string(),
            Layout::Monthly => VERSION_GUARD.replacen("ON CONFLICT (id)", "ON CONFLICT (id, completed_at)", 1),
        };
        unnest_insert(&guard)
    }
}

/// Replaces the migrated `orders` (and the views on it, which writes do not
/// touch) by the same columns partitioned by month, one partition per month
/// of the fill.
fn monthly_orders() -> String {
    format!(
        "CREATE TABLE orders_monthly (LIKE orders INCLUDING DEFAULTS INCLUDING CONSTRAINTS,
             PRIMARY KEY (id, completed_at)) PARTITION BY RANGE (completed_at);
         DROP TABLE orders CASCADE;
         ALTER TABLE orders_monthly RENAME TO orders;
         DO $$ BEGIN
           FOR month IN 0..35 LOOP
             EXECUTE format('CREATE TABLE orders_%s PARTITION OF orders FOR VALUES FROM (%L) TO (%L)',
               month, timestamptz '{FIRST_MONTH}' + month * interval '1 month',
               timestamptz '{FIRST_MONTH}' + (month + 1) * interval '1 month');
           END LOOP;
         END $$;"
    )
}

/// The `completed_at` of filled row `id` of `size`: ids ascend with time,
/// as an export's do. Integer seconds, so SQL and Rust agree exactly.
fn filled_completed_at(id: i64, size: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds((id - 1) * SPAN_SECONDS / size)
}

/// Fills `orders` with `size` rows at version 1.
fn fill(size: i64) -> String {
    format!(
        "INSERT INTO orders (id, user_id, completed_at, item_total, shipment_total,
                             source_file, source_line, source_offset, read_at, source_version)
         SELECT i, i % 50000 + 1, timestamptz '{FIRST_MONTH}' + ((i - 1) * {SPAN_SECONDS} / {size}) * interval '1 second',
                (i % 100000) / 100.0, 4.99, 'fill.csv', i + 1, i * 60, now(), 1
         FROM generate_series(1::int8, {size}) AS i"
    )
}

fn order_record(id: i64, completed_at: DateTime<Utc>, cents: i64, version: i64) -> OrderRecord {
    OrderRecord {
        order: Order {
            id,
            user_id: id % 50_000 + 1,
            completed_at,
            item_total: Decimal::new(cents, 2),
            shipment_total: Decimal::new(499, 2),
        },
        flags: Vec::new(),
        extra: schema::Extra::new(),
        source: Source {
            file: "bench.csv".into(),
            line: id + 1,
            offset: id * 60,
            read_at: Utc::now(),
            version,
            columns: None,
        },
        partition: 0,
        offset: id,
    }
}

/// The batches for one size, the same for both layouts: ids ascending and
/// unique, as the consumer writes them. Corrections carry a newer version
/// and another item total, and keep their `completed_at`; new orders land in
/// the last month of the fill.
fn partition_batches(size: i64) -> Vec<Vec<OrderRecord>> {
    let mut random = fastrand::Rng::with_seed(size as u64);
    let newest = Utc.with_ymd_and_hms(2024, 12, 31, 0, 0, 0).unwrap();
    let mut next_id = size + 1;
    (0..=PARTITION_BATCHES as i64)
        .map(|batch| {
            let version = batch + 2;
            let mut corrected: Vec<i64> = (0..BATCH - NEW_PER_BATCH).map(|_| random.i64(1..=size)).collect();
            corrected.sort_unstable();
            corrected.dedup();
            let mut rows: Vec<OrderRecord> = corrected
                .into_iter()
                .map(|id| order_record(id, filled_completed_at(id, size), 100_000 + version, version))
                .collect();
            for _ in 0..NEW_PER_BATCH {
                let completed_at = newest + chrono::Duration::milliseconds(next_id - size);
                rows.push(order_record(next_id, completed_at, next_id % 100_000, 1));
                next_id += 1;
            }
            rows
        })
        .collect()
}

/// One layout's database at one size: its pool, backend pid and statement.
struct PartitionTarget {
    layout: Layout,
    pool: Pool,
    backend: String,
    upsert: String,
    rows: usize,
    seconds: f64,
    /// Backend CPU seconds of the whole batches, and of their lock query alone.
    cpu: f64,
    lock_cpu: f64,
    outcome: UpsertOutcome,
}

/// Locks, decides and writes one batch the consumer's way (the upsert being
/// the layout's), in one transaction; adds its wall and backend CPU time.
async fn write_partition_batch(target: &mut PartitionTarget, rows: &[OrderRecord], measured: bool) {
    let cpu_before = cpu_seconds(&target.backend);
    let started = Instant::now();
    let mut client = target.pool.get().await.unwrap();
    let transaction = client.transaction().await.unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r.order.id).collect();
    let existing = lock_existing(&*transaction, &ids).await.unwrap();
    let locked_cpu = cpu_seconds(&target.backend);
    let mut outcome = UpsertOutcome::default();
    let mut to_write = Vec::with_capacity(rows.len());
    for record in rows {
        let row = row_outcome(record, existing.get(&record.order.id));
        count(&mut outcome, row);
        if row.writes() {
            to_write.push(record);
        }
    }
    let arrays = ColumnArrays::of(&to_write);
    let statement = transaction.prepare_cached(&target.upsert).await.unwrap();
    transaction.execute(&statement, &arrays.params()).await.unwrap();
    transaction.commit().await.unwrap();
    if measured {
        target.seconds += started.elapsed().as_secs_f64();
        target.cpu += cpu_seconds(&target.backend) - cpu_before;
        target.lock_cpu += locked_cpu - cpu_before;
        target.rows += rows.len();
        target.outcome += outcome;
    }
}

/// A fresh migrated database with `orders` in this layout, filled with `size` rows.
async fn partition_target(
    admin: &tokio_postgres::Client,
    admin_url: &str,
    layout: Layout,
    size: i64,
) -> PartitionTarget {
    let name = format!("bench_partition_{}", layout.name());
    let (pool, backend) = fresh_database(admin, admin_url, &name).await;
    let client = pool.get().await.unwrap();
    if layout == Layout::Monthly {
        client.batch_execute(&monthly_orders()).await.unwrap();
    }
    let started = Instant::now();
    client.batch_execute(&fill(size)).await.unwrap();
    // Each its own statement (VACUUM refuses a transaction block): the
    // measured writes then do not pay for hint bits or a pending checkpoint.
    client.batch_execute("VACUUM (ANALYZE) orders").await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
    eprintln!("{}: filled {size} rows in {:.0} s", layout.name(), started.elapsed().as_secs_f64());
    drop(client);
    PartitionTarget {
        layout,
        pool,
        backend,
        upsert: layout.upsert(),
        rows: 0,
        seconds: 0.0,
        cpu: 0.0,
        lock_cpu: 0.0,
        outcome: UpsertOutcome::default(),
    }
}

/// Index bytes of `orders`, over all its partitions (a plain table has no partition tree).
async fn index_bytes(target: &PartitionTarget) -> i64 {
    let client = target.pool.get().await.unwrap();
    let query = "SELECT coalesce((SELECT sum(pg_indexes_size(relid)) FROM pg_partition_tree('orders') WHERE isleaf),
                         pg_indexes_size('orders'))::int8";
    client.query_one(query, &[]).await.unwrap().get(0)
}

async fn compare_partitioning(admin: &tokio_postgres::Client, admin_url: &str, sizes: &[i64]) {
    println!(
        "batches of {BATCH} ({NEW_PER_BATCH} new in the newest month, the rest corrections over the whole table), \
         {PARTITION_BATCHES} per layout and size, interleaved; CPU = the PostgreSQL backend's"
    );
    println!(
        "{:>10} {:>8} {:>10} {:>9} {:>9} {:>10} {:>15}",
        "rows", "layout", "cpu µs/row", "of: lock", "rows/s", "index MB", "outcome"
    );
    for &size in sizes {
        let mut targets = [
            partition_target(admin, admin_url, Layout::Plain, size).await,
            partition_target(admin, admin_url, Layout::Monthly, size).await,
        ];
        for (index, batch) in partition_batches(size).iter().enumerate() {
            // Alternate which layout goes first, so neither always follows the other's writes.
            let order = if index % 2 == 0 { [0, 1] } else { [1, 0] };
            for which in order {
                write_partition_batch(&mut targets[which], batch, index > 0).await;
            }
        }
        for target in &targets {
            let UpsertOutcome { inserted, updated, unchanged } = target.outcome;
            println!(
                "{size:>10} {:>8} {:>10.1} {:>9.1} {:>9.0} {:>10.0} {:>15}",
                target.layout.name(),
                target.cpu * 1e6 / target.rows as f64,
                target.lock_cpu * 1e6 / target.rows as f64,
                target.rows as f64 / target.seconds,
                index_bytes(target).await as f64 / 1e6,
                format!("{inserted}/{updated}/{unchanged}")
            );
        }
        let [plain, monthly] = &targets;
        assert_eq!(plain.outcome, monthly.outcome, "both layouts count the batches alike");
        println!(
            "{size:>10} monthly/plain: cpu per row {:.2}, rows/s {:.2}",
            (monthly.cpu / monthly.rows as f64) / (plain.cpu / plain.rows as f64),
            (monthly.rows as f64 / monthly.seconds) / (plain.rows as f64 / plain.seconds)
        );
        for target in targets {
            drop(target.pool);
            let name = format!("bench_partition_{}", target.layout.name());
            admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await.unwrap();
        }
    }
}

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("ORDERSTREAM_TEST_DATABASE_URL").expect("ORDERSTREAM_TEST_DATABASE_URL");
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(3);
    if args.iter().any(|arg| arg == "copy") {
        compare_copy(&admin, &admin_url).await;
    } else if args.iter().any(|arg| arg == "partition") {
        let sizes: Vec<i64> = args.iter().filter_map(|arg| arg.parse().ok()).collect();
        compare_partitioning(&admin, &admin_url, if sizes.is_empty() { &PARTITION_SIZES } else { &sizes }).await;
    } else {
        compare_counting(&admin, &admin_url, runs).await;
    }
}
