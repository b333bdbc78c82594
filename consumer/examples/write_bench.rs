//! Measures the two write paths of `upsert` on a real PostgreSQL:
//! `unnest` of arrays vs binary `COPY` into a temporary table + `INSERT … SELECT`.
//!
//! `cargo run --release -p orderstream-consumer --example write_bench` with
//! `ORDERSTREAM_TEST_DATABASE_URL` set (`make test-services`, `. .local/test/env`).
//! Each run creates and drops its own database. Per batch size, both paths
//! insert the same fresh rows, then re-apply them with a newer version (updates),
//! in alternating order, each inside the real batch transaction shape
//! (lock existing rows, write).

use std::time::Instant;

use chrono::Utc;
use orderstream_consumer::batch::{OrderRecord, Source};
use orderstream_consumer::upsert::{lock_existing, write_rows, WritePath};
use rust_decimal::Decimal;
use schema::Order;

const ROWS: i64 = 200_000;

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
        write_rows(&transaction, path, &rows).await.unwrap();
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
