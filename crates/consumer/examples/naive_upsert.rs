//! The baseline `make bench` compares orderstream with: what people write by
//! hand, one `INSERT … ON CONFLICT (id) DO UPDATE` and one commit per record.
//!
//! `naive_upsert upsert ORDERSTREAM_DATABASE_URL FILE ROWS` reads the first ROWS records of
//! the CSV export FILE, parses each with the project's own parser and upserts
//! it into `naive_orders` (same columns, defaults and primary key as `orders`)
//! as its own transaction, then prints one `naive:` line with the rate. The
//! database must be empty and is migrated first (the table is created `LIKE
//! orders`).
//!
//! `naive_upsert encoded-size FILE` prints the mean size of the Kafka value
//! (`OrderMessage::encode`) of every record in FILE: the record size the
//! broker's own producer benchmark is given, so both move the same bytes.
//!
//! Both read plain exports (`orderstream-gen`): one record per line, no quoted
//! fields.

use std::io::{BufRead, BufReader};
use std::time::Instant;

use chrono::Utc;
use schema::{parse_order, Columns, FlagRules, OrderMessage};

fn lines(file: &str) -> (Columns, impl Iterator<Item = String>) {
    let reader = BufReader::new(std::fs::File::open(file).unwrap_or_else(|e| panic!("cannot open {file}: {e}")));
    let mut lines = reader.lines().map(|line| line.expect("readable file"));
    let header = lines.next().expect("a header line");
    let columns = Columns::from_header(header.trim_start_matches('\u{feff}').split(',')).expect("a valid header");
    (columns, lines.filter(|line| !line.is_empty()))
}

fn encoded_size(file: &str) {
    let (columns, lines) = lines(file);
    let (rules, now) = (FlagRules::default(), Utc::now());
    let (mut records, mut bytes) = (0u64, 0u64);
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let order = parse_order(&fields, &columns, now).expect("a valid order");
        let flags = rules.flags(&order);
        bytes += OrderMessage::new(order, flags).encode().len() as u64;
        records += 1;
    }
    println!("encoded: records={records} bytes={bytes} mean_value_bytes={:.1}", bytes as f64 / records as f64);
}

async fn upsert(database_url: &str, file: &str, rows: usize) {
    let (mut client, connection) =
        tokio_postgres::connect(database_url, tokio_postgres::NoTls).await.expect("database reachable");
    tokio::spawn(connection);
    orderstream_consumer::migrate::migrate(&mut client).await.expect("migrations apply");
    client
        .batch_execute("DROP TABLE IF EXISTS naive_orders; CREATE TABLE naive_orders (LIKE orders INCLUDING ALL)")
        .await
        .expect("naive_orders created");
    let statement = client
        .prepare(
            "INSERT INTO naive_orders (id, user_id, completed_at, item_total, shipment_total, \
                                       source_file, source_line, source_offset, read_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, completed_at = EXCLUDED.completed_at, \
                 item_total = EXCLUDED.item_total, shipment_total = EXCLUDED.shipment_total, \
                 source_file = EXCLUDED.source_file, source_line = EXCLUDED.source_line, \
                 source_offset = EXCLUDED.source_offset, read_at = EXCLUDED.read_at, written_at = clock_timestamp()",
        )
        .await
        .expect("statement prepares");
    let (columns, lines) = lines(file);
    let (mut done, mut bytes, mut offset) = (0usize, 0u64, 0i64);
    let started = Instant::now();
    for (index, line) in lines.take(rows).enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        let order = parse_order(&fields, &columns, Utc::now()).expect("a valid order");
        let line_number = index as i64 + 2;
        // Autocommit: every statement is its own transaction, i.e. one commit
        // (one WAL flush) per record.
        client
            .execute(
                &statement,
                &[
                    &order.id,
                    &order.user_id,
                    &order.completed_at,
                    &order.item_total,
                    &order.shipment_total,
                    &file,
                    &line_number,
                    &offset,
                    &Utc::now(),
                ],
            )
            .await
            .expect("upsert succeeds");
        offset += line.len() as i64 + 1;
        bytes += line.len() as u64 + 1;
        done += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "naive: rows={done} bytes={bytes} seconds={seconds:.3} rows_per_s={:.1} mb_per_s={:.3}",
        done as f64 / seconds,
        bytes as f64 / seconds / 1e6
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["upsert", url, file, rows] => upsert(url, file, rows.parse().expect("ROWS is a number")).await,
        ["encoded-size", file] => encoded_size(file),
        _ => {
            eprintln!("usage: naive_upsert upsert ORDERSTREAM_DATABASE_URL FILE ROWS | naive_upsert encoded-size FILE");
            std::process::exit(2);
        }
    }
}
