//! Exports whose columns change: extra columns kept and stored,
//! renamed columns mapped, a header changed inside a file honoured, a
//! missing column dead-lettered with a clear reason, `reject` and `ignore`
//! modes. The real producer and consumer binaries, real Kafka, real
//! PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::time::Duration;

use harness::{order_line, poll_until, Process, Scenario, HEADER};

/// Start-up of both processes (topics, group join) and the rows' arrival.
const ARRIVAL: Duration = Duration::from_secs(60);

/// A line of the export with two extra columns and its known columns reordered:
/// `coupon_code,shipment_total,completed_at,id,item_total,user_id,currency`.
const WIDE_HEADER: &str = "coupon_code,Shipment_Total,completed_at,ID,item_total,user_id,currency\n";

fn wide_line(id: i64, coupon: &str, currency: &str) -> String {
    format!("{coupon},2.5,2022-07-01 10:{:02},{id},10.{:02},{},{currency}\n", id % 60, id % 100, id % 50 + 1)
}

/// `orders.extra` of every row, as text (NULL as `None`), by id.
async fn extras(scenario: &Scenario) -> Vec<(i64, Option<String>)> {
    let client = scenario.db().await;
    let rows = client.query("SELECT id, extra::text FROM orders ORDER BY id", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Waits until `dead_letters` holds `expected` producer rows; returns their
/// (reason, message), in line order.
async fn wait_for_dead_letters(scenario: &Scenario, expected: usize) -> Vec<(String, String)> {
    let query = "SELECT reason, message FROM dead_letters WHERE stage = 'producer' ORDER BY source_line";
    let seen = std::cell::RefCell::new(Vec::new());
    let reached = poll_until(ARRIVAL, || async {
        let Some(client) = scenario.try_db().await else { return false };
        let rows: Vec<(String, String)> = client
            .query(query, &[])
            .await
            .map(|rows| rows.iter().map(|row| (row.get(0), row.get(1))).collect())
            .unwrap_or_default();
        let enough = rows.len() >= expected;
        *seen.borrow_mut() = rows;
        enough
    })
    .await;
    let seen = seen.into_inner();
    assert!(reached, "expected {expected} producer dead letters, found {seen:?}");
    seen
}

async fn wait_for_metric(process: &Process, series: &str, expected: f64) {
    let reached = poll_until(ARRIVAL, || async { process.metric(series) == Some(expected) }).await;
    assert!(reached, "{series} never was {expected}: {:?}", process.metric(series));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_extra_columns_and_reordered_known_columns_keep_every_row_and_its_extras() {
    let scenario = Scenario::new("columns_extra").await;
    scenario.append("2022_06.csv", format!("{HEADER}{}", order_line(1, 1, "5.00", "0")).as_bytes());
    let producer = scenario.start_producer();
    let _consumer = scenario.start_consumer();
    scenario.wait_for_orders(1, ARRIVAL).await;

    // Next month's export gained two columns, and its known columns moved.
    let rows: String = (2..=21).map(|id| wide_line(id, if id % 2 == 0 { "SUMMER" } else { "" }, "EUR")).collect();
    scenario.append("2022_07.csv", format!("{WIDE_HEADER}{rows}").as_bytes());
    scenario.wait_for_orders(21, ARRIVAL).await;

    let stored = extras(&scenario).await;
    assert_eq!(stored[0], (1, None), "an order without extra columns stores none");
    assert_eq!(stored[1], (2, Some(r#"{"currency": "EUR", "coupon_code": "SUMMER"}"#.to_string())));
    assert_eq!(stored[2], (3, Some(r#"{"currency": "EUR", "coupon_code": ""}"#.to_string())));
    let client = scenario.db().await;
    let by_sql = client
        .query_one(
            "SELECT count(*) FROM orders WHERE extra->>'coupon_code' = 'SUMMER' AND extra->>'currency' = 'EUR'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(by_sql.get::<_, i64>(0), 10, "extras are queryable with SQL");
    let totals = scenario.orders().await;
    assert_eq!(totals[&7], (8, "10.07".parse().unwrap(), "2.50".parse().unwrap()), "known columns read by name");

    // Said once per file and column; the file is listed as a changed export.
    wait_for_metric(&producer, r#"orderstream_producer_new_columns_total{column="currency"}"#, 1.0).await;
    wait_for_metric(&producer, r#"orderstream_producer_new_columns_total{column="coupon_code"}"#, 1.0).await;
    let changed = client.query("SELECT source_file, columns FROM analysis_header_changes", &[]).await.unwrap();
    assert_eq!(changed.len(), 1, "only the second file's header differs from the one before it");
    assert!(changed[0].get::<_, String>(0).ends_with("2022_07.csv"));
    let columns: Vec<String> = changed[0].get(1);
    assert_eq!(columns, ["coupon_code", "shipment_total", "completed_at", "id", "item_total", "user_id", "currency"]);

    // A correction that changes only an extra value is an update.
    scenario.append("2022_07.csv", wide_line(2, "SUMMER", "USD").as_bytes());
    let corrected = poll_until(ARRIVAL, || async {
        extras(&scenario).await[1].1.as_deref() == Some(r#"{"currency": "USD", "coupon_code": "SUMMER"}"#)
    })
    .await;
    assert!(corrected, "the extra-only correction was not applied: {:?}", extras(&scenario).await[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_column_maps_back_by_alias() {
    let scenario = Scenario::new("columns_alias").await;
    let rows: String = (1..=5).map(|id| format!("{id},{},2022-07-01 10:00,1.{id},0\n", id + 100)).collect();
    scenario.append(
        "renamed.csv",
        format!("\u{feff}Order_ID,CUSTOMER,completed_at,item_total,shipment_total\n{rows}").as_bytes(),
    );
    let _producer = scenario.start_producer_with(&[("ORDERSTREAM_COLUMN_ALIASES", "order_id=id,customer=user_id")]);
    let _consumer = scenario.start_consumer();
    scenario.wait_for_orders(5, ARRIVAL).await;
    let orders = scenario.orders().await;
    assert_eq!(orders[&3], (103, "1.30".parse().unwrap(), "0.00".parse().unwrap()));
    assert!(extras(&scenario).await.iter().all(|(_, extra)| extra.is_none()), "aliased columns are not extras");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_changed_inside_a_file_is_honoured_from_that_line_on_across_a_restart() {
    let scenario = Scenario::new("columns_mid_file").await;
    let changed = "currency,id,user_id,completed_at,item_total,shipment_total\n";
    let before: String = (1..=3).map(|id| order_line(id, 7, "10.00", "1")).collect();
    let after: String = (4..=5).map(|id| format!("EUR,{id},7,2022-07-01 10:00,20.00,1\n")).collect();
    scenario.append("appended.csv", format!("{HEADER}{before}{changed}{after}").as_bytes());
    let producer = scenario.start_producer();
    let _consumer = scenario.start_consumer();
    scenario.wait_for_orders(5, ARRIVAL).await;

    // Restarted in the middle of the file: the records after the saved
    // position are read by the header in force there, the changed one.
    // (Terminating saves the confirmed positions.)
    producer.terminate();
    scenario.append("appended.csv", b"USD,6,7,2022-07-01 10:00,30.00,1\n");
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(6, ARRIVAL).await;

    let stored = extras(&scenario).await;
    let expected_extra = |id: i64| match id {
        1..=3 => None,
        4 | 5 => Some(r#"{"currency": "EUR"}"#.to_string()),
        _ => Some(r#"{"currency": "USD"}"#.to_string()),
    };
    assert_eq!(stored, (1..=6).map(|id| (id, expected_extra(id))).collect::<Vec<_>>());
    let orders = scenario.orders().await;
    assert_eq!(orders[&6].1, "30.00".parse().unwrap(), "read by the changed header after the restart");
    let client = scenario.db().await;
    let headers = client.query("SELECT count(*) FROM source_files", &[]).await.unwrap();
    assert_eq!(headers[0].get::<_, i64>(0), 2, "one row per header of the file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_column_dead_letters_the_file_naming_it_and_the_extra_columns() {
    let scenario = Scenario::new("columns_missing").await;
    let rows: String = (1..=3).map(|id| format!("{id},7,2022-07-01 10:00,10.00,EUR\n")).collect();
    scenario.append("broken.csv", format!("id,user_id,completed_at,item_total,currency\n{rows}").as_bytes());
    let producer = scenario.start_producer();
    let _consumer = scenario.start_consumer();
    // The header line too: a first line that is no usable header might be data.
    let letters = wait_for_dead_letters(&scenario, 4).await;
    let reason = "header lacks the column(s) `shipment_total` (extra columns seen: `currency`)";
    let header_line = format!("the first line is an unusable header: {reason}");
    assert_eq!(letters[0], ("bad_header".to_string(), header_line));
    assert_eq!(letters[1..], vec![("bad_header".to_string(), reason.to_string()); 3]);
    wait_for_metric(&producer, "orderstream_producer_unusable_headers_total", 1.0).await;
    assert_eq!(scenario.order_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_mode_dead_letters_a_file_with_extra_columns() {
    let scenario = Scenario::new("columns_reject").await;
    let rows: String = (1..=2).map(|id| wide_line(id, "X", "EUR")).collect();
    scenario.append("wide.csv", format!("{WIDE_HEADER}{rows}").as_bytes());
    let _producer = scenario.start_producer_with(&[("ORDERSTREAM_UNKNOWN_COLUMNS", "reject")]);
    let _consumer = scenario.start_consumer();
    // The header line itself is dead-lettered too (it might have been data).
    let letters = wait_for_dead_letters(&scenario, 3).await;
    for (reason, message) in &letters {
        assert_eq!(reason, "bad_header");
        assert!(message.contains("`coupon_code`, `currency`") && message.contains("reject"), "{message}");
    }
    assert_eq!(scenario.order_count().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_mode_keeps_every_row_and_drops_the_extra_values() {
    let scenario = Scenario::new("columns_ignore").await;
    let rows: String = (1..=4).map(|id| wide_line(id, "X", "EUR")).collect();
    scenario.append("wide.csv", format!("{WIDE_HEADER}{rows}").as_bytes());
    let producer = scenario.start_producer_with(&[("ORDERSTREAM_UNKNOWN_COLUMNS", "ignore")]);
    let _consumer = scenario.start_consumer();
    scenario.wait_for_orders(4, ARRIVAL).await;
    assert!(extras(&scenario).await.iter().all(|(_, extra)| extra.is_none()));
    // Still said: the export changed.
    wait_for_metric(&producer, r#"orderstream_producer_new_columns_total{column="currency"}"#, 1.0).await;
}
