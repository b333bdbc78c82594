//! Measures the two write paths of `upsert` on a real PostgreSQL:
//! `unnest` of arrays vs binary `COPY` into a temporary table + `INSERT … SELECT`.
//!
//! `cargo run --release -p orderstream-consumer --example write_bench` with
//! `ORDERSTREAM_TEST_DATABASE_URL` set (`make test-services`, `. .local/test/env`).
//! Each run creates and drops its own database. Per batch size, both paths
//! insert the same fresh rows, then re-apply them with a newer version (updates),
//! in alternating order, each inside the real batch transaction shape
//! (lock existing rows, write).
//!
//! The consumer writes by `unnest` only; the `COPY` path lives here, beside
//! the measurement that decided against it, with the consumer's own column
//! list and version guard so that both paths do the same thing.

use std::time::Instant;

use chrono::Utc;
use deadpool_postgres::Transaction;
use orderstream_consumer::batch::{OrderRecord, Source};
use orderstream_consumer::upsert::{lock_existing, write_rows, ORDER_COLUMNS, VERSION_GUARD};
use rust_decimal::Decimal;
use schema::Order;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

const ROWS: i64 = 200_000;

/// The way rows travel to PostgreSQL.
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
        writer
            .as_mut()
            .write(&[
                &record.order.id,
                &record.order.user_id,
                &record.order.completed_at,
                &record.order.item_total,
                &record.order.shipment_total,
                &record.source.file,
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

fn records(version: i64, cents: i64) -> Vec<OrderRecord> {
    (1..=ROWS)
        .map(|id| OrderRecord {
            order: Order {
                id,
                user_id: id % 5000 + 1,
                completed_at: Utc::now(),
                item_total: Decimal::new(cents + id % 10_000, 2),
                shipment_total: Decimal::new(250, 2),
            },
            flags: Vec::new(),
            source: Source { file: "bench.csv".into(), line: id + 1, offset: id * 40, read_at: Utc::now(), version },
            partition: 0,
            offset: id,
        })
        .collect()
}

async fn run(pool: &deadpool_postgres::Pool, path: WritePath, all: &[OrderRecord], batch: usize) -> f64 {
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

#[tokio::main]
async fn main() {
    let admin_url = std::env::var("ORDERSTREAM_TEST_DATABASE_URL").expect("ORDERSTREAM_TEST_DATABASE_URL");
    let (admin, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    println!("rows={ROWS}; rows/s per path; insert = fresh ids, update = same ids with a newer version");
    println!("{:>6} {:>8} {:>12} {:>12} {:>7}", "batch", "phase", "unnest", "copy", "ratio");
    for batch in [1_000usize, 5_000, 20_000] {
        let mut results = Vec::new();
        for path in [WritePath::Unnest, WritePath::CopyTempTable] {
            let database =
                format!("bench_{}_{batch}_{}", std::process::id(), if path == WritePath::Unnest { "u" } else { "c" });
            admin.batch_execute(&format!("DROP DATABASE IF EXISTS {database}")).await.unwrap();
            admin.batch_execute(&format!("CREATE DATABASE {database}")).await.unwrap();
            let url = format!("{}/{database}", admin_url.rsplit_once('/').unwrap().0);
            let pool = orderstream_consumer::db::pool(&connect::DatabaseArgs::from_url(&url), 1).unwrap();
            {
                let mut client = pool.get().await.unwrap();
                orderstream_consumer::migrate::migrate(&mut client).await.unwrap();
            }
            let insert = run(&pool, path, &records(1, 1000), batch).await;
            let update = run(&pool, path, &records(2, 2000), batch).await;
            results.push((insert, update));
            drop(pool);
            admin.batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)")).await.unwrap();
        }
        let (unnest, copy) = (results[0], results[1]);
        println!("{batch:>6} {:>8} {:>12.0} {:>12.0} {:>7.2}", "insert", unnest.0, copy.0, unnest.0 / copy.0);
        println!("{batch:>6} {:>8} {:>12.0} {:>12.0} {:>7.2}", "update", unnest.1, copy.1, unnest.1 / copy.1);
    }
}
