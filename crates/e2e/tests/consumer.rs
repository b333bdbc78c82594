//! The consumer's promises, end to end: the real consumer binary,
//! real Kafka, real PostgreSQL. Records are published straight to Kafka, so
//! each test controls keys, partitions, versions and payloads.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use harness::postgres::PrivatePostgres;
use harness::topic::delete_records_before;
use harness::{order_record, poll_until, ConsumerTotals, OutgoingRecord, Process, Scenario};
use rust_decimal::Decimal;

const APPLIED: Duration = Duration::from_secs(120);
/// A killed consumer's group membership expires quickly, so a restart or a
/// second consumer gets partitions in seconds, not the default 45 s.
const FAST_GROUP: (&str, &str) = ("ORDERSTREAM_KAFKA_OPTIONS", "session.timeout.ms=6000,heartbeat.interval.ms=1000");

fn orders(ids: impl Iterator<Item = i64>) -> Vec<OutgoingRecord> {
    ids.map(|id| order_record(id, id % 97 + 1, &format!("{}.{:02}", id % 300, id % 100), Some(id))).collect()
}

fn expected_table(ids: impl Iterator<Item = i64>) -> BTreeMap<i64, (i64, Decimal, Decimal)> {
    ids.map(|id| {
        (id, (id % 97 + 1, Decimal::from_str(&format!("{}.{:02}", id % 300, id % 100)).unwrap(), Decimal::new(25, 1)))
    })
    .collect()
}

/// Stops the consumer with SIGTERM, checks it exited 0, returns the totals
/// of its final report.
fn stop(consumer: Process) -> ConsumerTotals {
    let (status, output, totals) = consumer.terminate_with_totals();
    assert!(status.success(), "SIGTERM must stop the consumer with exit 0, got {status}:\n{output}");
    totals.unwrap_or_else(|| panic!("no final report at shutdown:\n{output}"))
}

async fn written_at(scenario: &Scenario) -> BTreeMap<i64, (String, i64)> {
    let client = scenario.db().await;
    let rows = client.query("SELECT id, written_at::text, source_version FROM orders", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), (row.get(1), row.get(2)))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_mid_batch_resumes_with_exactly_the_expected_table() {
    let scenario = Scenario::new("kill9").await;
    const TOTAL: i64 = 30_000;
    scenario.produce(&orders(1..=TOTAL)).await;
    let consumer = scenario.start_consumer_with(&[FAST_GROUP, ("ORDERSTREAM_BATCH_SIZE", "2000")]);
    let started = poll_until(APPLIED, || async { scenario.order_count().await > 0 }).await;
    assert!(started, "no order arrived");
    consumer.kill_hard();
    let stored_at_kill = scenario.order_count().await;

    let restarted = scenario.start_consumer_with(&[FAST_GROUP]);
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    let totals = stop(restarted);
    assert_eq!(scenario.orders().await, expected_table(1..=TOTAL));
    assert_eq!(
        totals,
        ConsumerTotals { inserted: (TOTAL - stored_at_kill) as u64, updated: 0, unchanged: 0, dead_lettered: 0 },
        "the restarted consumer applied exactly the records the killed one had not committed"
    );
    eprintln!("killed with {stored_at_kill} of {TOTAL} stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_replays_change_nothing_and_count_as_unchanged() {
    let scenario = Scenario::new("duplicates").await;
    const TOTAL: i64 = 300;
    let consumer = scenario.start_consumer();
    scenario.produce(&orders(1..=TOTAL)).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    let before = written_at(&scenario).await;

    scenario.produce(&orders(1..=TOTAL)).await; // the same records again: redelivery or a re-read file
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    let totals = stop(consumer);
    assert_eq!(
        totals,
        ConsumerTotals { inserted: TOTAL as u64, updated: 0, unchanged: TOTAL as u64, dead_lettered: 0 }
    );
    assert_eq!(written_at(&scenario).await, before, "duplicates wrote nothing");

    let replay_group = format!("{}-replay", scenario.group);
    let replayer = scenario.start_consumer_in_group(&replay_group);
    scenario.wait_until_applied(&replay_group, APPLIED).await;
    let totals = stop(replayer);
    assert_eq!(totals, ConsumerTotals { inserted: 0, updated: 0, unchanged: 2 * TOTAL as u64, dead_lettered: 0 });
    assert_eq!(written_at(&scenario).await, before, "a full replay wrote nothing");
    assert_eq!(scenario.orders().await, expected_table(1..=TOTAL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_version_never_overwrites_newer() {
    let scenario = Scenario::new("versions").await;
    let consumer = scenario.start_consumer();
    let step = |records: Vec<OutgoingRecord>| {
        let scenario = &scenario;
        async move {
            scenario.produce(&records).await;
            scenario.wait_until_applied(&scenario.group, APPLIED).await;
        }
    };
    step(vec![order_record(1, 7, "10.00", Some(10)), order_record(3, 7, "1.00", Some(1))]).await;
    step(vec![order_record(1, 7, "5.00", Some(5))]).await; // older: ignored
    step(vec![order_record(1, 7, "10.00", Some(20))]).await; // newer, same values: version advances
    step(vec![order_record(1, 7, "15.00", Some(15))]).await; // between: must not win now
    step(vec![order_record(3, 7, "3.00", Some(2))]).await; // newer, other values: updated
                                                           // Within one batch, the newest version wins whatever the arrival order.
    step(vec![order_record(2, 8, "30.00", Some(30)), order_record(2, 8, "25.00", Some(25))]).await;

    let client = scenario.db().await;
    let rows = client.query("SELECT id, item_total, source_version FROM orders ORDER BY id", &[]).await.unwrap();
    let stored: Vec<(i64, Decimal, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
    assert_eq!(
        stored,
        vec![(1, Decimal::new(1000, 2), 20), (2, Decimal::new(3000, 2), 30), (3, Decimal::new(300, 2), 2),]
    );
    let totals = stop(consumer);
    assert_eq!(totals, ConsumerTotals { inserted: 3, updated: 1, unchanged: 4, dead_lettered: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_under_load_loses_nothing() {
    let postgres = PrivatePostgres::start();
    let scenario = Scenario::new_on("pg_outage", &postgres.admin_url()).await;
    const TOTAL: i64 = 20_000;
    const CHUNK: i64 = 500;
    let mut consumer = scenario.start_consumer();
    let load = async {
        for start in (1..=TOTAL).step_by(CHUNK as usize) {
            scenario.produce(&orders(start..start + CHUNK)).await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let outage = async {
        assert!(poll_until(APPLIED, || async { scenario.order_count().await > 0 }).await, "no order arrived");
        postgres.stop();
        // The outage itself, under load: a minute in production terms; 10 s keeps the suite short.
        tokio::time::sleep(Duration::from_secs(10)).await;
        postgres.start_again();
    };
    tokio::join!(load, outage);
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    consumer.assert_running();
    let noticed = consumer.metric(r#"orderstream_consumer_unavailable_total{dependency="database"}"#);
    assert!(noticed.is_some_and(|retries| retries > 0.0), "the outage was never noticed: {noticed:?}");
    let totals = stop(consumer);
    assert_eq!(scenario.orders().await, expected_table(1..=TOTAL));
    assert_eq!(totals, ConsumerTotals { inserted: TOTAL as u64, updated: 0, unchanged: 0, dead_lettered: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_record_is_dead_lettered_while_its_neighbours_are_written() {
    let scenario = Scenario::new("poison").await;
    let on_partition_0 = |mut record: OutgoingRecord| {
        record.partition = Some(0);
        record
    };
    let raw = |payload: &[u8]| OutgoingRecord {
        key: Some("999".into()),
        payload: payload.to_vec(),
        headers: vec![("source_file".into(), "poison.csv".into()), ("line".into(), "9".into())],
        partition: Some(0),
    };
    let mut records: Vec<OutgoingRecord> = Vec::new();
    records.extend(orders(1..=5).into_iter().map(on_partition_0));
    records.push(raw(b"this is not json"));
    records.extend(orders(6..=10).into_iter().map(on_partition_0));
    records.push(raw(br#"{"schema_version":99,"id":1}"#));
    records.extend(orders(11..=15).into_iter().map(on_partition_0));
    records.push(on_partition_0(order_record(100, 1, "-5.00", Some(1)))); // the CHECK constraint refuses it
    records.extend(orders(16..=20).into_iter().map(on_partition_0));
    let consumer = scenario.start_consumer();
    scenario.produce(&records).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;

    // The partition is not blocked: a later record still arrives.
    scenario.produce(&[on_partition_0(order_record(21, 1, "1.00", Some(1)))]).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    assert_eq!(scenario.orders().await, {
        let mut expected = expected_table(1..=20);
        expected.insert(21, (1, Decimal::new(100, 2), Decimal::new(25, 1)));
        expected
    });

    let client = scenario.db().await;
    let rows = client
        .query("SELECT reason, source, payload, headers->>'source_file' FROM dead_letters ORDER BY id", &[])
        .await
        .unwrap();
    let reasons: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(reasons, vec!["undecodable_value", "unknown_schema_version", "rejected_by_database"]);
    assert_eq!(rows[0].get::<_, Vec<u8>>(2), b"this is not json");
    assert!(
        rows[0].get::<_, String>(1).starts_with(&format!("{}/0/5", scenario.topic)),
        "{}",
        rows[0].get::<_, String>(1)
    );
    assert_eq!(rows[0].get::<_, String>(3), "poison.csv");

    let dead = scenario.read_topic(&scenario.dlq_topic, 3, APPLIED);
    // The dead-letter topic has several partitions: its order across them is not defined.
    let mut kinds: Vec<&str> = dead.iter().map(|record| record.headers["error_kind"].as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, vec!["rejected_by_database", "undecodable_value", "unknown_schema_version"]);
    assert!(dead
        .iter()
        .all(|record| record.headers.contains_key("error_message") && record.headers.contains_key("line")));
    let totals = stop(consumer);
    assert_eq!(totals.dead_lettered, 3);
    assert_eq!(totals.inserted, 21);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_with_a_rebalance_mid_stream_give_exactly_the_expected_table() {
    let scenario = Scenario::new("rebalance").await;
    const TOTAL: i64 = 20_000;
    const CHUNK: i64 = 1_000;
    let mut first = Some(scenario.start_consumer_with(&[FAST_GROUP]));
    let mut second = None;
    let mut first_totals = None;
    for (index, start) in (1..=TOTAL).step_by(CHUNK as usize).enumerate() {
        scenario.produce(&orders(start..start + CHUNK)).await;
        if index == 5 {
            second = Some(scenario.start_consumer_with(&[FAST_GROUP])); // joins under load
        }
        if index == 12 {
            first_totals = first.take().map(stop); // leaves under load
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    let second_totals = stop(second.expect("second consumer started"));
    let first_totals = first_totals.expect("first consumer stopped");
    assert_eq!(scenario.orders().await, expected_table(1..=TOTAL));
    assert_eq!(
        first_totals.inserted + second_totals.inserted,
        TOTAL as u64,
        "every record applied once: {first_totals:?} + {second_totals:?}"
    );
    assert_eq!(first_totals.unchanged + second_totals.unchanged, 0, "no record applied twice");
    assert!(first_totals.inserted > 0 && second_totals.inserted > 0, "{first_totals:?} {second_totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_republishes_fixed_dead_letters_once_and_marks_them() {
    let scenario = Scenario::new("redrive").await;
    let consumer = scenario.start_consumer();
    let client = scenario.db().await;
    let migrated = poll_until(APPLIED, || async {
        client.query_one("SELECT 1 FROM information_schema.tables WHERE table_name = 'dead_letters'", &[]).await.is_ok()
    })
    .await;
    assert!(migrated);
    client.batch_execute("ALTER TABLE orders ADD CONSTRAINT test_blocked_user CHECK (user_id <> 666)").await.unwrap();
    scenario.produce(&[order_record(1, 666, "12.00", Some(1)), order_record(2, 1, "3.00", Some(1))]).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    assert_eq!(scenario.order_count().await, 1);

    client.batch_execute("ALTER TABLE orders DROP CONSTRAINT test_blocked_user").await.unwrap(); // the cause is fixed
    let output = scenario.redrive(Some("rejected_by_database"));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    scenario.wait_for_orders(2, APPLIED).await;
    let redriven: i64 =
        client.query_one("SELECT count(*) FROM dead_letters WHERE redriven_at IS NOT NULL", &[]).await.unwrap().get(0);
    assert_eq!(redriven, 1);
    let again = scenario.redrive(None);
    assert!(again.status.success());
    assert_eq!(
        scenario.topic_record_count(&scenario.topic),
        3,
        "the second redrive published nothing: two orders and one redriven dead letter"
    );
    let totals = stop(consumer);
    assert_eq!(totals, ConsumerTotals { inserted: 2, updated: 0, unchanged: 0, dead_lettered: 1 });
}

/// A record of order `id` whose `source_file` header holds a NUL byte.
fn with_nul_in_source_file(id: i64) -> OutgoingRecord {
    let mut record = order_record(id, 1, "1.00", Some(id));
    record.headers[0].1 = "nul\0.csv".into();
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_with_nul_in_value_header_or_key_never_stop_the_consumer() {
    let scenario = Scenario::new("nul").await;
    let on_partition_0 = |mut record: OutgoingRecord| {
        record.partition = Some(0);
        record
    };
    // PostgreSQL refuses NUL in text and `\u0000` in jsonb: the decoder's
    // message quotes the flag, the dead letter's source and headers carry the file name.
    let nul_in_value = br#"{"schema_version":1,"id":900,"user_id":1,"completed_at":"2022-07-01T10:00:00Z","item_total":"1.00","shipment_total":"2.5","flags":["zero\u0000"]}"#;
    let undecodable = OutgoingRecord {
        key: Some("900".into()),
        payload: nul_in_value.to_vec(),
        headers: vec![("source_file".into(), "nul\0.csv".into()), ("line".into(), "9\0".into())],
        partition: Some(0),
    };
    let nul_key_garbage =
        OutgoingRecord { key: Some("\0".into()), payload: b"not json\0".to_vec(), headers: vec![], partition: Some(0) };
    let mut nul_key_order = order_record(101, 1, "1.00", Some(101));
    nul_key_order.key = Some("1\u{0}01".into());
    let mut records: Vec<OutgoingRecord> = orders(1..=5).into_iter().map(on_partition_0).collect();
    records.push(undecodable);
    records.extend(orders(6..=10).into_iter().map(on_partition_0));
    records.push(on_partition_0(with_nul_in_source_file(100)));
    records.push(on_partition_0(nul_key_order));
    records.push(nul_key_garbage);
    records.extend(orders(11..=15).into_iter().map(on_partition_0));
    let mut consumer = scenario.start_consumer();
    scenario.produce(&records).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    // The partition is not blocked: a later record still arrives.
    scenario.produce(&[on_partition_0(order_record(16, 1, "1.00", Some(1)))]).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    consumer.assert_running();

    let mut expected = expected_table(1..=15);
    for id in [16, 100, 101] {
        expected.insert(id, (1, Decimal::new(100, 2), Decimal::new(25, 1)));
    }
    assert_eq!(scenario.orders().await, expected);
    let client = scenario.db().await;
    let file: String = client.query_one("SELECT source_file FROM orders WHERE id = 100", &[]).await.unwrap().get(0);
    assert_eq!(file, "nul\\u0000.csv", "stored with the NUL escaped");

    let rows = client
        .query(
            "SELECT reason, payload, record_key, headers->>'source_file', position('\\x00'::bytea IN raw_headers) > 0
             FROM dead_letters ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    type StoredLetter = (String, Vec<u8>, Option<Vec<u8>>, Option<String>, Option<bool>);
    let letters: Vec<StoredLetter> =
        rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))).collect();
    assert_eq!(
        letters,
        vec![
            (
                "undecodable_value".into(),
                nul_in_value.to_vec(),
                Some(b"900".to_vec()),
                Some("nul\\u0000.csv".into()),
                Some(true)
            ),
            ("undecodable_value".into(), b"not json\0".to_vec(), Some(b"\0".to_vec()), None, Some(false)),
        ],
        "the exact bytes kept, the readable columns escaped"
    );
    assert_eq!(consumer.metric("orderstream_consumer_skipped_records_total"), Some(0.0), "nothing had to be skipped");
    assert_eq!(consumer.metric(r#"orderstream_consumer_dead_letters_total{reason="undecodable_value"}"#), Some(2.0));
    let status = consumer.terminate();
    assert!(status.success(), "SIGTERM must stop the consumer with exit 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_goes_in_batches_and_publishes_the_exact_headers() {
    const REFUSED: i64 = 25;
    let scenario = Scenario::new("redrive_batches").await;
    let consumer = scenario.start_consumer();
    let client = scenario.db().await;
    let migrated = poll_until(APPLIED, || async {
        client.query_one("SELECT 1 FROM information_schema.tables WHERE table_name = 'dead_letters'", &[]).await.is_ok()
    })
    .await;
    assert!(migrated);
    client.batch_execute("ALTER TABLE orders ADD CONSTRAINT test_blocked_user CHECK (user_id <> 666)").await.unwrap();
    let mut refused: Vec<OutgoingRecord> = (1..=REFUSED).map(|id| order_record(id, 666, "12.00", Some(id))).collect();
    refused[0].headers[0].1 = "nul\0.csv".into();
    scenario.produce(&refused).await;
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    assert_eq!(scenario.order_count().await, 0);

    client.batch_execute("ALTER TABLE orders DROP CONSTRAINT test_blocked_user").await.unwrap();
    let mut command = std::process::Command::new(harness::binary("orderstream-consumer"));
    command
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .args(["redrive", "--batch-size", "10"]);
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    scenario.wait_for_orders(REFUSED, APPLIED).await;
    // Three transactions (10 + 10 + 5), each marking its own rows (`xmin`:
    // the transaction that last wrote a row).
    let marks: i64 = client
        .query_one("SELECT count(DISTINCT xmin::text) FROM dead_letters WHERE redriven_at IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    let pending: i64 =
        client.query_one("SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL", &[]).await.unwrap().get(0);
    assert_eq!((marks, pending), (3, 0));
    let republished = scenario.read_topic(&scenario.topic, 2 * REFUSED as usize, APPLIED);
    assert_eq!(republished.len(), 2 * REFUSED as usize, "each dead letter published once more");
    let nul_headers = republished.iter().filter(|record| record.headers["source_file"] == "nul\0.csv").count();
    assert_eq!(nul_headers, 2, "the original and its redrive carry the same header bytes");
    assert_eq!(consumer.metric(r#"orderstream_consumer_upserts_total{outcome="inserted"}"#), Some(REFUSED as f64));
    let status = consumer.terminate();
    assert!(status.success(), "SIGTERM must stop the consumer with exit 0, got {status}");
}

/// Every record on partition 0: the test's offsets are then exact.
fn all_on_partition_0(records: Vec<OutgoingRecord>) -> Vec<OutgoingRecord> {
    records.into_iter().map(|record| OutgoingRecord { partition: Some(0), ..record }).collect()
}

/// Rows of `dead_letters`: (reason, source).
async fn stored_dead_letters(scenario: &Scenario) -> Vec<(String, String)> {
    let client = scenario.db().await;
    let rows = client.query("SELECT reason, source FROM dead_letters ORDER BY id", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_dead_letter_producer_stops_the_consumer_before_the_record_and_a_restart_dead_letters_it_once() {
    let scenario = Scenario::new("dlq_fatal").await;
    let bad = OutgoingRecord {
        key: Some("999".into()),
        payload: b"this is not json".to_vec(),
        headers: vec![("source_file".into(), "bad.csv".into()), ("line".into(), "6".into())],
        partition: Some(0),
    };
    // Offsets 0-4 good, 5 the bad record, 6-10 good.
    let mut records = all_on_partition_0(orders(1..=5));
    records.push(bad);
    records.extend(all_on_partition_0(orders(6..=10)));
    scenario.produce(&records).await;

    // The dead-letter producer turns fatal before the bad record's dead letter is published.
    let mut failing = scenario.start_consumer_with(&[FAST_GROUP, ("FAILPOINTS", "consumer-dlq-producer-fatal=return")]);
    let status = failing.wait_exit(APPLIED).expect("the consumer went on with a fatal dead-letter producer");
    assert!(!status.success(), "a stop on a fatal client must not look clean: {status}");
    let stored = scenario.stored_offsets(&scenario.group).await;
    assert!(stored.get(&0).copied().unwrap_or(0) <= 5, "offsets moved past the record not dead-lettered: {stored:?}");
    assert_eq!(stored_dead_letters(&scenario).await, vec![], "the failed batch's dead letter was committed");
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 0, "a fatal client published");
    drop(failing);

    let restarted = scenario.start_consumer_with(&[FAST_GROUP]);
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    let letters = scenario.read_topic(&scenario.dlq_topic, 1, APPLIED);
    let totals = stop(restarted);
    assert_eq!(scenario.orders().await, expected_table(1..=10));
    assert_eq!(
        stored_dead_letters(&scenario).await,
        vec![("undecodable_value".into(), format!("{}/0/5 bad.csv:6", scenario.topic))]
    );
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 1, "the dead letter was published twice");
    assert_eq!(letters[0].payload, b"this is not json");
    assert_eq!(letters[0].headers["error_kind"], "undecodable_value");
    assert_eq!(totals.dead_lettered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_retention_deleted_before_they_were_applied_are_counted_and_the_rest_applied() {
    let scenario = Scenario::new("retention_gap").await;
    scenario.produce(&all_on_partition_0(orders(1..=10))).await;
    let consumer = scenario.start_consumer_with(&[FAST_GROUP]);
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    stop(consumer);

    // Offsets 10-29 arrive while the consumer is down; 10-19 are deleted
    // (as retention would) before it reads them.
    scenario.produce(&all_on_partition_0(orders(11..=30))).await;
    let low_watermark = delete_records_before(&scenario.brokers, &scenario.topic, 0, 20).await;
    assert_eq!(low_watermark, 20);
    let restarted = scenario.start_consumer_with(&[FAST_GROUP]);
    scenario.wait_until_applied(&scenario.group, APPLIED).await;
    assert_eq!(scenario.stored_offsets(&scenario.group).await, BTreeMap::from([(0, 30)]), "not at the high watermark");
    let skipped = r#"orderstream_consumer_skipped_offsets_total{partition="0"}"#;
    let counted = poll_until(APPLIED, || async { restarted.metric(skipped).is_some_and(|count| count >= 10.0) }).await;
    assert!(counted, "the lost offsets were never counted: {:?}", restarted.metric(skipped));
    assert_eq!(
        restarted.metric_sum("orderstream_consumer_skipped_offsets_total"),
        Some(10.0),
        "exactly the deleted offsets 10-19, on partition 0 only"
    );
    let totals = stop(restarted);
    let mut expected = expected_table(1..=10);
    expected.extend(expected_table(21..=30));
    assert_eq!(scenario.orders().await, expected, "the records after the deletion point must be applied");
    assert_eq!(totals.inserted, 10);
}
