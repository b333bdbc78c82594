//! No header stops the pipeline: a wide export, a read time PostgreSQL
//! cannot store, and dead letters with oversized headers are all stored (or
//! stored with a bounded, documented stand-in) while the consumer and its
//! dead-letter intake keep running. The real producer and consumer
//! binaries, real Kafka, real PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::time::Duration;

use harness::{order_line, order_record, poll_until, OutgoingRecord, Scenario, HEADER};
use schema::message::{headers, stages};

/// Start-up of both processes (topics, group join) and the rows' arrival.
const ARRIVAL: Duration = Duration::from_secs(60);

/// Deterministic text PostgreSQL cannot compress: it compresses an index
/// entry before measuring it against the btree limit, so repeated or
/// patterned names would fit and prove nothing.
fn incompressible_text(state: &mut u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            ALPHABET[(*state % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// A wide shop export: the five columns plus `extra` columns of 16
/// characters, with `ids` as its orders.
fn wide_export(extra: usize, ids: std::ops::RangeInclusive<i64>) -> String {
    let mut state = 0x9E37_79B9_7F4A_7C15;
    let names: Vec<String> = (0..extra).map(|_| incompressible_text(&mut state, 16)).collect();
    let mut export = format!("{},{}\n", HEADER.trim_end(), names.join(","));
    for id in ids {
        let values: Vec<String> = (0..extra).map(|_| incompressible_text(&mut state, 16)).collect();
        export.push_str(&format!("{},{}\n", order_line(id, 7, "10.00", "1").trim_end(), values.join(",")));
    }
    export
}

/// Unix milliseconds of the database's clock.
async fn database_now_ms(scenario: &Scenario) -> i64 {
    let client = scenario.db().await;
    let row = client.query_one("SELECT (extract(epoch FROM now()) * 1000)::int8", &[]).await.unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_export_beside_a_normal_one_loads_every_order_and_the_consumer_keeps_running() {
    let scenario = Scenario::new("headers_wide").await;
    scenario.append("wide.csv", wide_export(400, 1..=5).as_bytes());
    let normal: String = (101..=120).map(|id| order_line(id, 3, "5.00", "0")).collect();
    scenario.append("normal.csv", format!("{HEADER}{normal}").as_bytes());
    let _producer = scenario.start_producer();
    let mut consumer = scenario.start_consumer();

    let all_arrived = poll_until(ARRIVAL, || async { scenario.order_count().await == 25 }).await;
    consumer.assert_running();
    assert!(all_arrived, "25 orders expected, {} in PostgreSQL", scenario.order_count().await);

    let client = scenario.db().await;
    let wide_extras = client
        .query_one("SELECT count(*) FROM orders WHERE (SELECT count(*) FROM jsonb_object_keys(extra)) = 400", &[])
        .await
        .unwrap();
    assert_eq!(wide_extras.get::<_, i64>(0), 5, "every extra value of the wide export is kept");
    let recorded =
        client.query("SELECT cardinality(columns) FROM source_files ORDER BY cardinality(columns)", &[]).await.unwrap();
    let widths: Vec<i32> = recorded.iter().map(|row| row.get(0)).collect();
    assert_eq!(widths, [5, 405], "both files' headers are recorded, the wide one whole");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_time_postgres_cannot_store_or_from_the_far_future_does_not_stop_the_consumer() {
    let scenario = Scenario::new("headers_read_at").await;
    let mut consumer = scenario.start_consumer();
    let now_ms = database_now_ms(&scenario).await;
    let read_at = |id: i64, read_at_ms: String| {
        let mut record = order_record(id, 1, "10.00", Some(id));
        record.headers.push((headers::READ_AT_MS.to_string(), read_at_ms));
        // As the producer sends it: the header goes to `source_files` too.
        record.headers.push((headers::COLUMNS.to_string(), r#"["id","user_id"]"#.to_string()));
        OutgoingRecord { partition: Some(0), ..record }
    };
    scenario
        .produce(&[
            // Year -29,719: representable, before PostgreSQL's 4713 BC; the
            // smallest version, so its read time is the file header's too.
            read_at(1, "-1000000000000000".into()),
            // Past what chrono represents.
            read_at(2, "99999999999999999".into()),
            // Year 200,000: storable, and would pin the newest read time,
            // hiding the pipeline's staleness for good.
            read_at(3, "6250000000000000".into()),
            read_at(4, now_ms.to_string()),
        ])
        .await;

    let all_arrived = poll_until(ARRIVAL, || async { scenario.order_count().await == 4 }).await;
    consumer.assert_running();
    assert!(all_arrived, "4 orders expected, {} in PostgreSQL", scenario.order_count().await);
    let client = scenario.db().await;
    let plausible = client
        .query(
            "SELECT id FROM orders WHERE read_at BETWEEN now() - interval '1 hour' AND now() + interval '1 hour'
             ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    let ids: Vec<i64> = plausible.iter().map(|row| row.get(0)).collect();
    assert_eq!(ids, [1, 2, 3, 4], "an unusable read time falls back to the record's Kafka timestamp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_file_path_longer_than_an_index_entry_is_recorded_whole() {
    let scenario = Scenario::new("headers_long_path").await;
    let mut consumer = scenario.start_consumer();
    let mut state = 0x5851_F42D_4C95_7F2D;
    let long_path = format!("/{}/orders.csv", incompressible_text(&mut state, 5_000));
    let mut record = order_record(1, 1, "10.00", Some(1));
    record.headers.retain(|(name, _)| name != headers::SOURCE_FILE);
    record.headers.push((headers::SOURCE_FILE.to_string(), long_path.clone()));
    record.headers.push((headers::COLUMNS.to_string(), r#"["id","user_id"]"#.to_string()));
    scenario.produce(&[record, order_record(2, 1, "10.00", Some(2))]).await;

    let all_arrived = poll_until(ARRIVAL, || async { scenario.order_count().await == 2 }).await;
    consumer.assert_running();
    assert!(all_arrived, "2 orders expected, {} in PostgreSQL", scenario.order_count().await);
    let client = scenario.db().await;
    let recorded =
        client.query_one("SELECT count(*) FROM source_files WHERE source_file = $1", &[&long_path]).await.unwrap();
    assert_eq!(recorded.get::<_, i64>(0), 1, "the long path is recorded whole, once");
}

/// A producer's dead letter as it arrives on the dead-letter topic.
fn producer_dead_letter(line: i64, error_kind: &str, fingerprint: &str) -> OutgoingRecord {
    let header = |name: &str, value: String| (name.to_string(), value);
    OutgoingRecord {
        key: Some(format!("bad.csv:{line}")),
        payload: format!("{line},x,not an order").into_bytes(),
        headers: vec![
            header(headers::SOURCE_FILE, "bad.csv".into()),
            header(headers::SOURCE_FINGERPRINT, fingerprint.into()),
            header(headers::LINE, line.to_string()),
            header(headers::BYTE_OFFSET, (line * 100).to_string()),
            header(headers::ERROR_KIND, error_kind.into()),
            header(headers::ERROR_MESSAGE, "not an order".into()),
            header(headers::STAGE, stages::PRODUCER.into()),
        ],
        partition: Some(0),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_with_an_oversized_error_kind_or_fingerprint_are_stored_once_and_the_intake_goes_on() {
    let scenario = Scenario::new("headers_dead_letters").await;
    let mut consumer = scenario.start_consumer();
    let mut state = 0x2545_F491_4F6C_DD1D;
    let huge_kind = incompressible_text(&mut state, 12_000);
    let huge_fingerprint = incompressible_text(&mut state, 12_000);
    let letters = [
        producer_dead_letter(2, &huge_kind, "fp"),
        producer_dead_letter(3, "invalid_amount", &huge_fingerprint),
        producer_dead_letter(4, "invalid_amount", "fp"),
    ];
    // Sent twice, as a producer re-sends after a crash: still one row each.
    scenario.produce_to(&scenario.dlq_topic, &letters).await;
    scenario.produce_to(&scenario.dlq_topic, &letters).await;

    let intake_read_all = poll_until(ARRIVAL, || async {
        let Some(client) = scenario.try_db().await else { return false };
        client
            .query_opt(
                "SELECT 1 FROM consumer_offsets WHERE group_id = $1 AND topic = $2 AND partition = 0
                 AND next_offset = 6",
                &[&scenario.group, &scenario.dlq_topic],
            )
            .await
            .is_ok_and(|row| row.is_some())
    })
    .await;
    consumer.assert_running();
    assert!(intake_read_all, "the intake never stored the offset past the six records");

    let client = scenario.db().await;
    let rows = client
        .query(
            "SELECT source_line, reason, source_fingerprint, octet_length(raw_headers) FROM dead_letters
             WHERE stage = 'producer' ORDER BY source_line",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3, "each line once");
    let reason: String = rows[0].get(1);
    assert!(reason.len() <= 64 && huge_kind.starts_with(reason.trim_end_matches('…')), "bounded: {reason}");
    assert!(rows[0].get::<_, i32>(3) > 12_000, "the exact headers are kept beside the bounded reason");
    assert_eq!(rows[1].get::<_, Option<String>>(2).as_deref(), Some(huge_fingerprint.as_str()), "kept whole");
    assert_eq!(rows[2].get::<_, String>(1), "invalid_amount");
}
