//! The walking skeleton's promises, end to end: real binaries, real Kafka,
//! real PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use harness::{order_line, poll_until, report_skipped, seed_files, Scenario, HEADER};
use rust_decimal::Decimal;

const ARRIVAL: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_and_appended_lines_both_arrive() {
    let scenario = Scenario::new("existing_appended").await;
    scenario.append(
        "a.csv",
        format!("{HEADER}{}{}", order_line(1, 10, "39.14", "2.5"), order_line(2, 11, "10", "6")).as_bytes(),
    );
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(2, ARRIVAL).await;

    scenario.append("a.csv", order_line(3, 12, "7.10", "0").as_bytes());
    scenario.wait_for_orders(3, ARRIVAL).await;

    let orders = scenario.orders().await;
    assert_eq!(orders[&1], (10, Decimal::new(3914, 2), Decimal::new(250, 2)));
    assert_eq!(orders[&3], (12, Decimal::new(710, 2), Decimal::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_line_arrives_within_a_second() {
    let scenario = Scenario::new("within_a_second").await;
    scenario.append("a.csv", format!("{HEADER}{}", order_line(1, 10, "1", "1")).as_bytes());
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(1, ARRIVAL).await;

    let appended = Instant::now();
    scenario.append("a.csv", order_line(2, 10, "2", "1").as_bytes());
    let arrived = poll_until(Duration::from_secs(1), || async { scenario.order_count().await == 2 }).await;
    assert!(arrived, "the appended line was not in PostgreSQL after {:?}", appended.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_line_in_two_files_gives_one_row() {
    let scenario = Scenario::new("two_files").await;
    let line = order_line(42, 7, "12.34", "2.5");
    scenario.append("first.csv", format!("{HEADER}{line}").as_bytes());
    scenario.append("second.csv", format!("{HEADER}{line}{}", order_line(43, 7, "1", "1")).as_bytes());
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(2, ARRIVAL).await;
    // Both files were fully read once order 43 (after the duplicate) is in.
    let orders = scenario.orders().await;
    assert_eq!(orders.len(), 2);
    assert_eq!(orders[&42], (7, Decimal::new(1234, 2), Decimal::new(25, 1)));
}

/// Each stored row's physical version (`xmin`, the transaction that last
/// wrote it): unchanged only if no statement rewrote the row, even with
/// identical values.
async fn row_versions(scenario: &Scenario) -> BTreeMap<i64, String> {
    let client = scenario.db().await;
    let rows = client.query("SELECT id, xmin::text FROM orders", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_topic_and_restarting_the_consumer_create_no_duplicates() {
    let scenario = Scenario::new("replay").await;
    let lines: String = (1..=500).map(|id| order_line(id, id % 37 + 1, "20.00", "2.5")).collect();
    scenario.append("a.csv", format!("{HEADER}{lines}").as_bytes());
    let _producer = scenario.start_producer();
    let consumer = scenario.start_consumer();
    scenario.wait_for_orders(500, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let before = scenario.orders().await;
    let versions_before = row_versions(&scenario).await;

    consumer.kill_hard();
    let _restarted = scenario.start_consumer();
    // A consumer in a fresh group re-reads every record from the beginning.
    let replay_group = format!("{}-replay", scenario.group);
    let mut replayer = scenario.start_consumer_in_group(&replay_group);
    scenario.append("a.csv", order_line(501, 1, "1", "1").as_bytes());
    scenario.wait_for_orders(501, ARRIVAL).await;
    // The replay really ran: the fresh group stored offsets up to the end of
    // every partition, past all 501 records.
    scenario.wait_until_applied(&replay_group, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    replayer.assert_running();

    let mut after = scenario.orders().await;
    after.remove(&501);
    assert_eq!(after, before, "replays changed stored orders");
    assert_eq!(scenario.order_count().await, 501);
    let mut versions_after = row_versions(&scenario).await;
    versions_after.remove(&501);
    assert_eq!(versions_after, versions_before, "the replay rewrote rows it should have left alone");
    // Every replayed record counted as unchanged; 501 went to whichever group got it first.
    let series = |outcome: &str| format!("orderstream_consumer_upserts_total{{outcome=\"{outcome}\"}}");
    let (unchanged, inserted, updated) = (
        replayer.metric(&series("unchanged")),
        replayer.metric(&series("inserted")),
        replayer.metric(&series("updated")),
    );
    assert_eq!(updated, Some(0.0));
    assert!(
        unchanged
            .zip(inserted)
            .is_some_and(|(unchanged, inserted)| unchanged + inserted == 501.0 && unchanged >= 500.0),
        "replayer: unchanged {unchanged:?}, inserted {inserted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_killed_mid_file_loses_no_line() {
    let scenario = Scenario::new("producer_kill").await;
    const TOTAL: i64 = 60_000;
    let lines: String = (1..=TOTAL).map(|id| order_line(id, id % 1000 + 1, "15.50", "6")).collect();
    scenario.append("big.csv", format!("{HEADER}{lines}").as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    let partway = poll_until(ARRIVAL, || async { scenario.order_count().await > 0 }).await;
    assert!(partway, "no order arrived");
    let positions = scenario.state_dir().join("positions.json");
    let saved = poll_until(ARRIVAL, || async { positions.exists() }).await;
    assert!(saved, "the producer never saved a position");
    producer.kill_hard();
    let stored_at_kill = scenario.order_count().await;

    let restarted = scenario.start_producer();
    scenario.wait_for_orders(TOTAL, Duration::from_secs(120)).await;
    let orders = scenario.orders().await;
    assert_eq!(orders.len() as i64, TOTAL);
    assert!((1..=TOTAL).all(|id| orders.contains_key(&id)));
    let resumed = restarted.metric(r#"orderstream_producer_files_followed_total{start="resumed"}"#);
    assert_eq!(resumed, Some(1.0), "the restart did not resume the file at its delivered position");
    let published = scenario.topic_record_count(&scenario.topic);
    assert!(published < 2 * TOTAL, "the restart re-read the file: {published} records published");
    eprintln!("producer killed with {stored_at_kill} of {TOTAL} orders stored; all present after restart; {published} records published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_producer_resumes_without_re_reading() {
    let scenario = Scenario::new("producer_restart").await;
    const TOTAL: i64 = 1_000;
    let lines: String = (1..=TOTAL).map(|id| order_line(id, id % 10 + 1, "9.99", "2.5")).collect();
    scenario.append("a.csv", format!("{HEADER}{lines}").as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(TOTAL, ARRIVAL).await;
    assert!(producer.terminate().success(), "SIGTERM stops the producer cleanly");

    let _restarted = scenario.start_producer();
    scenario.append("a.csv", order_line(TOTAL + 1, 1, "1", "1").as_bytes());
    scenario.wait_for_orders(TOTAL + 1, ARRIVAL).await;
    assert_eq!(scenario.topic_record_count(&scenario.topic), TOTAL + 1, "each line was published exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_line_goes_to_the_dead_letter_topic_with_its_reason() {
    let scenario = Scenario::new("dead_letter").await;
    let bad = "2,11,2022-07-01 10:00,-5.00,2.5";
    scenario.append(
        "a.csv",
        format!("{HEADER}{}{bad}\n{}", order_line(1, 10, "1", "1"), order_line(3, 12, "1", "1")).as_bytes(),
    );
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(2, ARRIVAL).await;
    let dead = scenario.read_topic(&scenario.dlq_topic, 1, ARRIVAL);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].payload, bad.as_bytes());
    assert_eq!(dead[0].headers["error_kind"], "negative_amount");
    assert_eq!(dead[0].headers["line"], "3");
    assert!(dead[0].headers["source_file"].ends_with("a.csv"));
    assert!(!scenario.orders().await.contains_key(&2));
}

/// Sums of the seed exports, computed from the files without the project's
/// parser: (orders, item_total sum, shipment_total sum).
fn seed_totals(files: &[std::path::PathBuf]) -> (usize, Decimal, Decimal) {
    let mut orders = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(file).unwrap();
        for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let fields: Vec<&str> = line.split(',').collect();
            let item = Decimal::from_str(fields[3]).unwrap();
            let shipment = Decimal::from_str(fields[4]).unwrap();
            orders.insert(fields[0].to_string(), (item, shipment));
        }
    }
    let items = orders.values().map(|(item, _)| *item).sum();
    let shipments = orders.values().map(|(_, shipment)| *shipment).sum();
    (orders.len(), items, shipments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_exports_load_exactly_with_matching_totals() {
    let Some(files) = seed_files() else {
        report_skipped(
            "seed_exports_load_exactly_with_matching_totals",
            "../shared/data/seed-orders is absent (it is not part of the repository)",
        );
        return;
    };
    let scenario = Scenario::new("seed").await;
    for file in &files {
        std::fs::copy(file, scenario.inbox().join(file.file_name().unwrap())).unwrap();
    }
    let (expected_orders, expected_items, expected_shipments) = seed_totals(&files);
    assert_eq!(expected_orders, 3024, "the seed sample has 3,024 orders");
    let _consumer = scenario.start_consumer();
    let _producer = scenario.start_producer();
    scenario.wait_for_orders(expected_orders as i64, ARRIVAL).await;
    let client = scenario.db().await;
    let row = client.query_one("SELECT count(*), sum(item_total), sum(shipment_total) FROM orders", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 3024);
    assert_eq!(row.get::<_, Decimal>(1), expected_items);
    assert_eq!(row.get::<_, Decimal>(2), expected_shipments);
    assert!(scenario.read_topic(&scenario.dlq_topic, 1, Duration::from_secs(2)).is_empty(), "no seed line is invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_after_the_producer_lost_its_state_folder_still_wins() {
    let scenario = Scenario::new("state_lost").await;
    scenario.append("july.csv", format!("{HEADER}{}", order_line(1, 10, "10.00", "2.5")).as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(1, ARRIVAL).await;
    assert!(producer.terminate().success());

    // The processed export is moved away and the state folder is lost (a
    // container recreated without its volume); then a correction arrives.
    std::fs::rename(scenario.inbox().join("july.csv"), scenario.dir.path().join("july.csv")).unwrap();
    std::fs::remove_dir_all(scenario.state_dir()).unwrap();
    let _producer = scenario.start_producer();
    scenario.append("july-fixed.csv", format!("{HEADER}{}", order_line(1, 10, "12.00", "2.5")).as_bytes());
    let corrected = poll_until(ARRIVAL, || async { scenario.orders().await[&1].1 == Decimal::new(1200, 2) }).await;
    assert!(corrected, "the correction lost to the older export: {:?}", scenario.orders().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correction_from_a_second_producer_on_the_same_topic_wins() {
    let scenario = Scenario::new("two_producers").await;
    scenario.append("july.csv", format!("{HEADER}{}", order_line(1, 10, "10.00", "2.5")).as_bytes());
    let _consumer = scenario.start_consumer();
    let _first = scenario.start_producer();
    scenario.wait_for_orders(1, ARRIVAL).await;

    // Another host: its own inbox and state, the same topics.
    let (inbox, state) = (scenario.dir.path().join("inbox-2"), scenario.dir.path().join("state-2"));
    std::fs::create_dir_all(&inbox).unwrap();
    let second = [("ORDERSTREAM_INBOX", inbox.to_str().unwrap()), ("ORDERSTREAM_STATE_DIR", state.to_str().unwrap())];
    let _second = scenario.start_producer_with(&second);
    std::fs::write(inbox.join("july-fixed.csv"), format!("{HEADER}{}", order_line(1, 10, "12.00", "2.5"))).unwrap();
    let corrected = poll_until(ARRIVAL, || async { scenario.orders().await[&1].1 == Decimal::new(1200, 2) }).await;
    assert!(corrected, "the second producer's correction lost: {:?}", scenario.orders().await);
}
