//! Replay without offset surgery, end to end: one file with its original
//! versions (`orderstream-producer replay FILE`), and the whole topic
//! (`orderstream-consumer replay`), on the real Kafka and PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{binary, order_line, poll_until, Scenario, HEADER};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use rust_decimal::Decimal;
use schema::message::{epoch_of_version, source_version};

const ARRIVAL: Duration = Duration::from_secs(60);

/// Runs `orderstream-producer replay FILE [extra…]` to completion.
fn replay_file(scenario: &Scenario, file: &Path, extra: &[&str]) -> Output {
    Command::new(binary("orderstream-producer"))
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .arg("replay")
        .arg(file)
        .args(extra)
        .output()
        .expect("run the producer's replay")
}

/// Runs `orderstream-consumer replay ARGS…` for the scenario's group.
fn replay_topic(scenario: &Scenario, args: &[&str]) -> Output {
    Command::new(binary("orderstream-consumer"))
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .arg("replay")
        .args(args)
        .output()
        .expect("run the consumer's replay")
}

fn shown(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `source_version` of every record of the orders topic with this key.
fn versions_of(scenario: &Scenario, key: &str, expected_records: usize) -> Vec<i64> {
    scenario
        .read_topic(&scenario.topic, expected_records, ARRIVAL)
        .into_iter()
        .filter(|record| record.key.as_deref() == Some(key))
        .map(|record| record.headers["source_version"].parse().unwrap())
        .collect()
}

async fn item_total(scenario: &Scenario, id: i64) -> Option<Decimal> {
    scenario.orders().await.get(&id).map(|(_, item_total, _)| *item_total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_file_restores_a_deleted_row_and_keeps_a_later_correction() {
    let scenario = Scenario::new("replay_file").await;
    let a = format!(
        "{HEADER}{}{}{}",
        order_line(1, 10, "10.00", "1"),
        order_line(2, 11, "20.00", "1"),
        order_line(3, 12, "30.00", "1")
    );
    scenario.append("a.csv", a.as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(3, ARRIVAL).await;
    // File B, read later, corrects order 1.
    scenario.append("b.csv", format!("{HEADER}{}", order_line(1, 10, "12.00", "1")).as_bytes());
    let corrected =
        poll_until(ARRIVAL, || async { item_total(&scenario, 1).await == Some(Decimal::new(1200, 2)) }).await;
    assert!(corrected, "the correction never arrived");
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let original_versions = versions_of(&scenario, "2", 4);
    assert_eq!(original_versions.len(), 1);

    // A restored backup lost order 2.
    scenario.db().await.execute("DELETE FROM orders WHERE id = 2", &[]).await.unwrap();
    let replayed = replay_file(&scenario, &scenario.inbox().join("a.csv"), &[]);
    assert!(replayed.status.success(), "{}", shown(&replayed));

    scenario.wait_for_orders(3, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert_eq!(item_total(&scenario, 2).await, Some(Decimal::new(2000, 2)), "order 2 is back");
    assert_eq!(
        item_total(&scenario, 1).await,
        Some(Decimal::new(1200, 2)),
        "the older file never overrides the correction"
    );
    let versions = versions_of(&scenario, "2", 7);
    assert_eq!(versions, [original_versions[0]; 2], "the replayed record carries its original version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_of_unknown_epoch_is_refused_unless_given_one() {
    let scenario = Scenario::new("replay_epoch").await;
    scenario.append("a.csv", format!("{HEADER}{}", order_line(1, 10, "10.00", "1")).as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(1, ARRIVAL).await;
    assert!(producer.terminate().success());

    // Never published: no record on the topics tells its epoch.
    let elsewhere = tempfile::tempdir().unwrap();
    let unknown = elsewhere.path().join("never-seen.csv");
    std::fs::write(&unknown, format!("{HEADER}{}", order_line(7, 70, "70.00", "1"))).unwrap();
    let refused = replay_file(&scenario, &unknown, &[]);
    assert!(!refused.status.success(), "{}", shown(&refused));
    assert_eq!(scenario.topic_record_count(&scenario.topic), 1, "nothing published");

    let epoch = 4_242;
    let given = replay_file(&scenario, &unknown, &["--epoch", &epoch.to_string()]);
    assert!(given.status.success(), "{}", shown(&given));
    scenario.wait_for_orders(2, ARRIVAL).await;
    let offset = HEADER.len() as u64;
    assert_eq!(versions_of(&scenario, "7", 2), [source_version(epoch, offset).unwrap()]);
    let stored: i64 =
        scenario.db().await.query_one("SELECT source_version FROM orders WHERE id = 7", &[]).await.unwrap().get(0);
    assert_eq!(epoch_of_version(stored), epoch);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_epoch_left_stops_the_producer_instead_of_wrapping_versions() {
    let scenario = Scenario::new("replay_last_epoch").await;
    scenario.append("a.csv", format!("{HEADER}{}", order_line(7, 1, "10.00", "2.5")).as_bytes());
    let file = scenario.inbox().join("a.csv");
    let past = replay_file(&scenario, &file, &["--epoch", "134217728"]);
    assert!(!past.status.success(), "{}", shown(&past));
    assert!(shown(&past).contains("past the largest epoch, 134217727"), "{}", shown(&past));

    // The largest epoch fits; it leaves no epoch above it for a new file.
    let last = replay_file(&scenario, &file, &["--epoch", "134217727"]);
    assert!(last.status.success(), "{}", shown(&last));
    let mut producer = scenario.start_producer();
    let exited = producer.wait_exit(ARRIVAL);
    assert!(exited.is_some_and(|status| !status.success()), "still running or succeeded:\n{}", producer.output());
    assert!(producer.output().contains("no file epoch is left"), "{}", producer.output());
    let versions = versions_of(&scenario, "7", 1);
    assert_eq!(
        versions,
        [source_version(134_217_727, HEADER.len() as u64).unwrap()],
        "a wrapped version was published"
    );
}

/// Partition → the group's committed offset in Kafka.
fn kafka_committed(scenario: &Scenario) -> BTreeMap<i32, i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &scenario.brokers)
        .set("group.id", &scenario.group)
        .create()
        .unwrap();
    let mut partitions = TopicPartitionList::new();
    for partition in 0..harness::PARTITIONS {
        partitions.add_partition(&scenario.topic, partition);
    }
    let committed = consumer.committed_offsets(partitions, Duration::from_secs(10)).unwrap();
    committed
        .elements()
        .iter()
        .filter_map(|element| match element.offset() {
            Offset::Offset(offset) => Some((element.partition(), offset)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_topic_replay_refuses_a_live_group_and_reapplies_the_topic_once_it_stopped() {
    let scenario = Scenario::new("replay_topic").await;
    let lines: String = (1..=30).map(|id| order_line(id, id, "5.00", "1")).collect();
    scenario.append("a.csv", format!("{HEADER}{lines}").as_bytes());
    let consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(30, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert!(producer.terminate().success());
    let applied = scenario.stored_offsets(&scenario.group).await;

    let refused = replay_topic(&scenario, &["--to-earliest", "--yes"]);
    assert!(!refused.status.success(), "a live group must be refused: {}", shown(&refused));
    assert_eq!(scenario.stored_offsets(&scenario.group).await, applied, "nothing moved");

    assert!(consumer.terminate().success());
    assert!(poll_until(ARRIVAL, || async { scenario.group_is_empty() }).await, "the consumer never left its group");
    scenario.db().await.execute("DELETE FROM orders WHERE id <= 10", &[]).await.unwrap();

    let dry_run = replay_topic(&scenario, &["--to-earliest"]);
    assert!(dry_run.status.success(), "{}", shown(&dry_run));
    assert_eq!(scenario.stored_offsets(&scenario.group).await, applied, "without --yes nothing moves");

    let moved = replay_topic(&scenario, &["--to-earliest", "--yes"]);
    assert!(moved.status.success(), "{}", shown(&moved));
    // Every partition that holds records goes back to its first one.
    let earliest: BTreeMap<i32, i64> = applied.keys().map(|&partition| (partition, 0)).collect();
    assert_eq!(scenario.stored_offsets(&scenario.group).await, earliest, "PostgreSQL's offsets moved");
    assert_eq!(kafka_committed(&scenario), earliest, "Kafka's committed offsets moved");

    let _consumer = scenario.start_consumer();
    scenario.wait_for_orders(30, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert_eq!(scenario.orders().await.len(), 30, "the deleted rows came back");

    let at = chrono::Utc::now() + chrono::Duration::days(1);
    let later = replay_topic(&scenario, &["--to-datetime", &at.to_rfc3339(), "--yes"]);
    assert!(!later.status.success(), "the group is live again: {}", shown(&later));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_file_is_recognised_by_its_name_and_first_bytes() {
    let scenario = Scenario::new("replay_copy").await;
    scenario.append("2022_07.csv", format!("{HEADER}{}", order_line(1, 10, "10.00", "1")).as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(1, ARRIVAL).await;
    assert!(producer.terminate().success());
    let original = versions_of(&scenario, "1", 1);

    // Restored from an archive: another inode, same name and content.
    let archive = tempfile::tempdir().unwrap();
    let copy = archive.path().join("2022_07.csv");
    std::fs::copy(scenario.inbox().join("2022_07.csv"), &copy).unwrap();
    let replayed = replay_file(&scenario, &copy, &[]);
    assert!(replayed.status.success(), "{}", shown(&replayed));
    assert_eq!(versions_of(&scenario, "1", 2), [original[0]; 2]);

    // The same name with other first bytes is another file.
    std::fs::write(&copy, format!("{HEADER}{}", order_line(1, 10, "99.00", "1"))).unwrap();
    let refused = replay_file(&scenario, &copy, &[]);
    assert!(!refused.status.success(), "{}", shown(&refused));
    assert_eq!(scenario.topic_record_count(&scenario.topic), 2, "nothing published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_a_datetime_goes_back_to_the_first_record_written_since() {
    let scenario = Scenario::new("replay_since").await;
    let lines =
        |ids: std::ops::RangeInclusive<i64>| -> String { ids.map(|id| order_line(id, id, "5.00", "1")).collect() };
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=20)).as_bytes());
    let consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(20, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let before_since = scenario.high_watermarks();
    let since = chrono::Utc::now();
    scenario.append("a.csv", lines(21..=30).as_bytes());
    scenario.wait_for_orders(30, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert!(producer.terminate().success());
    assert!(consumer.terminate().success());
    assert!(poll_until(ARRIVAL, || async { scenario.group_is_empty() }).await, "the consumer never left its group");

    let moved = replay_topic(&scenario, &["--to-datetime", &since.to_rfc3339(), "--yes"]);
    assert!(moved.status.success(), "{}", shown(&moved));
    // Each partition goes back to its first record written after `since`.
    let expected: BTreeMap<i32, i64> = scenario
        .high_watermarks()
        .keys()
        .map(|&partition| (partition, before_since.get(&partition).copied().unwrap_or(0)))
        .collect();
    assert_eq!(scenario.stored_offsets(&scenario.group).await, expected);
    assert_eq!(kafka_committed(&scenario), expected);
}

/// Every stored order's `source_version`: what a replay must leave alone.
async fn stored_versions(scenario: &Scenario) -> BTreeMap<i64, i64> {
    let rows = scenario.db().await.query("SELECT id, source_version FROM orders", &[]).await.unwrap();
    rows.iter().map(|row| (row.get(0), row.get(1))).collect()
}

/// Starts with two orders, then a third is appended once they arrived: the
/// file's fingerprint holds the checksum of its first, shorter, bytes.
/// Returns the producer's version of every order.
async fn a_file_that_grew(scenario: &Scenario, name: &str) -> BTreeMap<i64, i64> {
    scenario.append(
        name,
        format!("{HEADER}{}{}", order_line(1, 10, "10.00", "1"), order_line(2, 11, "20.00", "1")).as_bytes(),
    );
    let producer = scenario.start_producer();
    scenario.wait_for_orders(2, ARRIVAL).await;
    scenario.append(name, order_line(3, 12, "30.00", "1").as_bytes());
    scenario.wait_for_orders(3, ARRIVAL).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    stored_versions(scenario).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_grew_is_replayed_with_its_original_epoch() {
    let scenario = Scenario::new("replay_grown").await;
    let _consumer = scenario.start_consumer();
    let original = a_file_that_grew(&scenario, "a.csv").await;

    scenario.db().await.execute("DELETE FROM orders WHERE id = 1", &[]).await.unwrap();
    let replayed = replay_file(&scenario, &scenario.inbox().join("a.csv"), &[]);
    assert!(replayed.status.success(), "{}", shown(&replayed));
    scenario.wait_for_orders(3, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert_eq!(stored_versions(&scenario).await, original, "order 1 is back with its original version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_a_file_that_grew_is_replayed_with_its_original_epoch() {
    let scenario = Scenario::new("replay_grown_copy").await;
    let _consumer = scenario.start_consumer();
    let original = a_file_that_grew(&scenario, "2022_07.csv").await;

    let archive = tempfile::tempdir().unwrap();
    let copy = archive.path().join("2022_07.csv");
    std::fs::copy(scenario.inbox().join("2022_07.csv"), &copy).unwrap();
    scenario.db().await.execute("DELETE FROM orders WHERE id = 3", &[]).await.unwrap();
    let replayed = replay_file(&scenario, &copy, &[]);
    assert!(replayed.status.success(), "{}", shown(&replayed));
    scenario.wait_for_orders(3, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert_eq!(stored_versions(&scenario).await, original, "order 3 is back with its original version");
}

/// July: 200 orders, longer than the 4 KiB the first-bytes checksum covers.
/// `corrected` shortens order 150's line and changes order 180's amount.
fn july(corrected: bool) -> String {
    let mut export = HEADER.to_string();
    for id in 1..=200 {
        let item_total = match (corrected, id) {
            (true, 150) => "90.00",
            (false, 150) => "900.00",
            (true, 180) => "55.00",
            _ => "50.00",
        };
        export.push_str(&order_line(id, 10, item_total, "1"));
    }
    export
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_never_takes_the_epoch_of_a_corrected_reexport_with_the_same_head() {
    let scenario = Scenario::new("replay_july").await;
    let original = july(false);
    let corrected = july(true);
    assert_eq!(original.as_bytes()[..4096], corrected.as_bytes()[..4096], "the same first 4 KiB");
    scenario.append("2022_07.csv", original.as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(200, ARRIVAL).await;
    assert!(producer.terminate().success());
    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("2022_07.csv");
    std::fs::write(&backup, &original).unwrap();

    // The corrected re-export replaces July in the inbox, under the same name.
    let staged = scenario.inbox().join("2022_07.csv.part");
    std::fs::write(&staged, &corrected).unwrap();
    std::fs::rename(&staged, scenario.inbox().join("2022_07.csv")).unwrap();
    let producer = scenario.start_producer();
    let arrived = poll_until(ARRIVAL, || async {
        item_total(&scenario, 150).await == Some(Decimal::new(9000, 2))
            && item_total(&scenario, 180).await == Some(Decimal::new(5500, 2))
    })
    .await;
    assert!(arrived, "the correction never arrived");
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let after_correction = stored_versions(&scenario).await;

    let replayed = replay_file(&scenario, &backup, &[]);
    let said = shown(&replayed);
    assert!(replayed.status.success(), "{said}");
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    assert_eq!(item_total(&scenario, 180).await, Some(Decimal::new(5500, 2)), "the correction stays: {said}");
    assert_eq!(stored_versions(&scenario).await, after_correction, "no row of the correction moved: {said}");
    assert!(said.contains("set aside: epoch"), "the correction's epoch is named as set aside: {said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_whose_only_lookalike_is_a_correction_is_refused_naming_it() {
    let scenario = Scenario::new("replay_july_refused").await;
    // Only the corrected re-export was ever published.
    scenario.append("2022_07.csv", july(true).as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(200, ARRIVAL).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let published = scenario.topic_record_count(&scenario.topic);
    let correction_epoch = epoch_of_version(versions_of(&scenario, "1", 200)[0]);

    let backup_dir = tempfile::tempdir().unwrap();
    let backup = backup_dir.path().join("2022_07.csv");
    std::fs::write(&backup, july(false)).unwrap();
    let refused = replay_file(&scenario, &backup, &[]);
    let said = shown(&refused);
    assert!(!refused.status.success(), "{said}");
    assert_eq!(scenario.topic_record_count(&scenario.topic), published, "nothing published: {said}");
    assert!(said.contains(&format!("epoch {correction_epoch} from ")), "the candidate is named: {said}");
    assert!(said.contains("line 151 differs") && said.contains("--epoch"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_a_file_publishes_its_last_line_without_a_newline_with_its_original_version() {
    let scenario = Scenario::new("replay_final_line").await;
    let last = order_line(3, 12, "30.00", "1");
    let a =
        format!("{HEADER}{}{}{}", order_line(1, 10, "10.00", "1"), order_line(2, 11, "20.00", "1"), last.trim_end());
    scenario.append("a.csv", a.as_bytes());
    let producer = scenario.start_producer_with(&[("ORDERSTREAM_CLOSE_INACTIVE", "1s")]);
    let published = versions_of(&scenario, "3", 3);
    assert_eq!(published.len(), 1, "the producer published the final line once the file was finished");
    assert!(producer.terminate().success());

    let replayed = replay_file(&scenario, &scenario.inbox().join("a.csv"), &[]);
    assert!(replayed.status.success(), "{}", shown(&replayed));
    assert_eq!(versions_of(&scenario, "3", 6), [published[0]; 2], "replayed, with the producer's version");
}
