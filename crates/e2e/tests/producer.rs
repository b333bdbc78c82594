//! The producer's promises, read back from Kafka itself: the real binary, the
//! real broker, files changing under it.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use harness::kafka::PrivateKafka;
use harness::topic::set_topic_config;
use harness::{order_line, poll_until, Scenario, TopicReader, TopicRecord, HEADER};

const ARRIVAL: Duration = Duration::from_secs(60);

/// Order ids published, with how often each was published.
fn published_ids(records: &[TopicRecord]) -> BTreeMap<i64, usize> {
    let mut ids = BTreeMap::new();
    for record in records {
        *ids.entry(record.json()["id"].as_i64().unwrap()).or_insert(0) += 1;
    }
    ids
}

fn lines(ids: std::ops::RangeInclusive<i64>) -> String {
    ids.map(|id| order_line(id, id % 50 + 1, "10.00", "2.5")).collect()
}

/// A second of inactivity closes a file that left the inbox (5 min by default).
const QUICK_CLOSE: (&str, &str) = ("ORDERSTREAM_CLOSE_INACTIVE", "1s");

/// The producer's settings to archive a delivered file into `archive` once
/// it has been idle for a second.
fn archive_after_a_second(archive: &std::path::Path) -> [(&'static str, &str); 3] {
    [("ORDERSTREAM_ARCHIVE_DIR", archive.to_str().unwrap()), ("ORDERSTREAM_ARCHIVE_AFTER", "1s"), QUICK_CLOSE]
}

/// Waits until the producer's saved positions no longer hold a file whose
/// path ends with `name`: it was released.
async fn wait_until_forgotten(scenario: &Scenario, name: &str) {
    let positions = scenario.state_dir().join("positions.json");
    let needle = format!("{name}\"");
    let forgotten =
        poll_until(ARRIVAL, || async { std::fs::read_to_string(&positions).is_ok_and(|text| !text.contains(&needle)) })
            .await;
    assert!(forgotten, "{name} was never released:\n{}", std::fs::read_to_string(&positions).unwrap_or_default());
}

/// Waits until the producer's `series` (e.g. `orderstream_producer_truncations_total`) is at least `at_least`.
async fn wait_for_metric(process: &harness::Process, series: &str, at_least: f64) {
    let reached = poll_until(ARRIVAL, || async { process.metric(series).is_some_and(|value| value >= at_least) }).await;
    assert!(reached, "{series} never reached {at_least}: {:?}", process.metric(series));
}

/// Waits until the producer's `/status` satisfies `condition`.
async fn wait_for_status(process: &harness::Process, what: &str, condition: impl Fn(&serde_json::Value) -> bool) {
    let reached = poll_until(ARRIVAL, || async { process.status().is_some_and(|status| condition(&status)) }).await;
    assert!(reached, "/status never showed {what}: {:?}", process.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_file_is_picked_up_within_a_second() {
    let scenario = Scenario::new("new_file").await;
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    // The first scan of the inbox is done: start-up is over, the inbox is watched.
    wait_for_status(&producer, "the first scan", |status| status["scanned"] == true).await;

    let created = Instant::now();
    scenario.append("fresh.csv", format!("{HEADER}{}", order_line(1, 1, "1", "1")).as_bytes());
    assert!(orders.wait_for(1, Duration::from_secs(1)), "not published after {:?}", created.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_file_is_neither_re_read_nor_lost() {
    let scenario = Scenario::new("rotation").await;
    scenario.append("app.csv", format!("{HEADER}{}", lines(1..=100)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&[QUICK_CLOSE]);
    assert!(orders.wait_for(100, ARRIVAL));

    // Rotation: the last lines land in the old file, which is renamed out of
    // the inbox's pattern; a new file takes the old name.
    scenario.append("app.csv", lines(101..=110).as_bytes());
    std::fs::rename(scenario.inbox().join("app.csv"), scenario.inbox().join("app.csv.1")).unwrap();
    scenario.append("app.csv", format!("{HEADER}{}", lines(111..=160)).as_bytes());
    assert!(orders.wait_for(160, ARRIVAL), "published {}", orders.records.len());
    wait_until_forgotten(&scenario, "app.csv.1").await;

    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 160, "a line was published twice");
    let ids = published_ids(&orders.records);
    assert_eq!(ids.len(), 160);
    assert!(ids.values().all(|count| *count == 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_last_line_without_its_newline_is_published_once_its_file_is_finished() {
    let scenario = Scenario::new("final_line").await;
    let last = order_line(3, 4, "10.00", "2.5");
    scenario.append("a.csv", format!("{HEADER}{}{}", lines(1..=2), last.trim_end()).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&[QUICK_CLOSE]);
    assert!(orders.wait_for(3, ARRIVAL), "the last line was never published: {:?}", published_ids(&orders.records));
    wait_for_status(&producer, "a.csv caught up", |status| status["caught_up"] == true).await;
    assert_eq!(producer.metric("orderstream_producer_unterminated_bytes"), Some(0.0));

    // The writer comes back: what it appends is a line of its own, newer.
    scenario.append("a.csv", format!("\n{}", lines(4..=4)).as_bytes());
    assert!(orders.wait_for(4, ARRIVAL));
    let version_of = |id: i64| {
        let record = orders.records.iter().find(|record| record.json()["id"] == id).unwrap();
        record.headers["source_version"].parse::<i64>().unwrap()
    };
    assert!(version_of(4) > version_of(3), "an append after the final line is newer");

    // Deleted with nothing left unpublished, the file is released.
    std::fs::remove_file(scenario.inbox().join("a.csv")).unwrap();
    wait_until_forgotten(&scenario, "a.csv").await;
    assert!(producer.terminate().success());
    let ids = published_ids(&orders.records);
    assert_eq!(ids, (1..=4).map(|id| (id, 1)).collect(), "each line once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_file_keeps_its_position() {
    let scenario = Scenario::new("rename").await;
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=20)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(20, ARRIVAL));
    std::fs::rename(scenario.inbox().join("a.csv"), scenario.inbox().join("b.csv")).unwrap();
    wait_for_metric(&producer, "orderstream_producer_files_renamed_total", 1.0).await;
    scenario.append("b.csv", lines(21..=21).as_bytes());
    assert!(orders.wait_for(21, ARRIVAL));
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 21, "the renamed file was read again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copytruncate_is_detected_and_followed_from_the_new_start() {
    let scenario = Scenario::new("copytruncate").await;
    scenario.append("app.csv", format!("{HEADER}{}", lines(1..=100)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(100, ARRIVAL));

    let path = scenario.inbox().join("app.csv");
    std::fs::copy(&path, scenario.dir.path().join("app.csv.1")).unwrap();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(0).unwrap();
    scenario.append("app.csv", format!("{HEADER}{}", lines(101..=120)).as_bytes());
    assert!(orders.wait_for(120, ARRIVAL), "published {}", orders.records.len());
    wait_for_metric(&producer, "orderstream_producer_truncations_total", 1.0).await;
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn line_written_in_two_parts_seconds_apart_is_published_once_whole() {
    let scenario = Scenario::new("two_parts").await;
    scenario.append("a.csv", format!("{HEADER}1,10,2022-07").as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    // The header is a complete record, the partial line not yet.
    wait_for_metric(&producer, "orderstream_producer_records_read_total", 1.0).await;
    // The writer pauses mid-line: this pause is the scenario, not a wait.
    tokio::time::sleep(Duration::from_secs(2)).await;
    scenario.append("a.csv", b"-01 00:19,39.14,2.5\n");
    assert!(orders.wait_for(1, ARRIVAL));
    assert!(producer.terminate().success());

    assert_eq!(scenario.topic_record_count(&scenario.topic), 1);
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 0, "the partial line was dead-lettered");
    let order = orders.records[0].json();
    assert_eq!(order["completed_at"], "2022-07-01T00:19:00Z");
    assert_eq!(order["item_total"], "39.14");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_file_is_released_and_forgotten() {
    let scenario = Scenario::new("deleted").await;
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let _producer = scenario.start_producer_with(&[QUICK_CLOSE]);
    assert!(orders.wait_for(10, ARRIVAL));
    std::fs::remove_file(scenario.inbox().join("a.csv")).unwrap();
    wait_until_forgotten(&scenario, "a.csv").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_renamed_out_of_the_inbox_is_still_followed_for_late_appends() {
    let scenario = Scenario::new("late_appends").await;
    scenario.append("app.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(10, ARRIVAL));
    let rotated = scenario.dir.path().join("app.csv.rotated");
    std::fs::rename(scenario.inbox().join("app.csv"), &rotated).unwrap();
    // The writer keeps its handle and goes on appending after the rotation:
    // this pause (longer than the 2 s after which files used to be released)
    // is the scenario, not a wait.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut writer = std::fs::OpenOptions::new().append(true).open(&rotated).unwrap();
    std::io::Write::write_all(&mut writer, lines(11..=15).as_bytes()).unwrap();
    assert!(orders.wait_for(15, ARRIVAL), "late appends lost: published {}", orders.records.len());
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_archived_while_the_producer_was_down_is_finished_from_the_archive() {
    let scenario = Scenario::new("archive_restart").await;
    let archive = scenario.dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let archive_env = ("ORDERSTREAM_ARCHIVE_DIR", archive.to_str().unwrap());
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&[archive_env]);
    assert!(orders.wait_for(10, ARRIVAL));
    assert!(producer.terminate().success());

    // While it is down, the file grows and is moved to the archive.
    scenario.append("a.csv", lines(11..=25).as_bytes());
    std::fs::rename(scenario.inbox().join("a.csv"), archive.join("a.csv")).unwrap();
    let _producer = scenario.start_producer_with(&[archive_env]);
    assert!(orders.wait_for(25, ARRIVAL), "the archived rest was not delivered: {}", orders.records.len());
    let ids = published_ids(&orders.records);
    assert!((1..=25).all(|id| ids.get(&id) == Some(&1)), "a line was lost or doubled: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_after_moves_a_delivered_inactive_file_and_it_is_not_read_again() {
    let scenario = Scenario::new("archive_after").await;
    let archive = scenario.dir.path().join("archive");
    let settings = archive_after_a_second(&archive);
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&settings);
    assert!(orders.wait_for(10, ARRIVAL));
    let archived = poll_until(ARRIVAL, || async { archive.join("a.csv").exists() }).await;
    assert!(archived, "the delivered file was never archived");
    assert!(!scenario.inbox().join("a.csv").exists());
    wait_until_forgotten(&scenario, "a.csv").await;
    assert!(producer.terminate().success());
    let _restarted = scenario.start_producer_with(&settings);
    scenario.append("b.csv", format!("{HEADER}{}", lines(11..=11)).as_bytes());
    assert!(orders.wait_for(11, ARRIVAL));
    assert_eq!(scenario.topic_record_count(&scenario.topic), 11, "the archived file was read again");
}

/// An archive folder on another filesystem than the inbox (`/dev/shm` is
/// tmpfs), removed when dropped.
fn archive_on_another_filesystem(scenario: &Scenario) -> tempfile::TempDir {
    let archive = tempfile::Builder::new().prefix("orderstream-archive-").tempdir_in("/dev/shm").unwrap();
    let device = |path: &std::path::Path| std::os::unix::fs::MetadataExt::dev(&std::fs::metadata(path).unwrap());
    assert_ne!(device(archive.path()), device(&scenario.inbox()), "/dev/shm is on the inbox's filesystem");
    archive
}

/// Every order of `ids` is in PostgreSQL, and the consumer inserted each once.
async fn assert_loaded_once(scenario: &Scenario, consumer: harness::Process, ids: std::ops::RangeInclusive<i64>) {
    let total = ids.clone().count() as i64;
    scenario.wait_for_orders(total, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let loaded: Vec<i64> = scenario.orders().await.into_keys().collect();
    assert_eq!(loaded, ids.collect::<Vec<_>>(), "PostgreSQL differs from the file");
    let (status, output, totals) = consumer.terminate_with_totals();
    assert!(status.success(), "{status}:\n{output}");
    let totals = totals.expect("the consumer's final report");
    assert_eq!((totals.inserted, totals.updated), (total as u64, 0), "a line was applied twice: {totals:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_after_moves_a_file_to_another_filesystem_and_every_row_loads_once() {
    let scenario = Scenario::new("archive_cross_fs").await;
    let archive = archive_on_another_filesystem(&scenario);
    let settings = archive_after_a_second(archive.path());
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=40)).as_bytes());
    let consumer = scenario.start_consumer();
    let producer = scenario.start_producer_with(&settings);
    // The copy is renamed into place before the inbox file is removed: wait
    // for both, or the check below races the removal.
    let (archived, inboxed) = (archive.path().join("a.csv"), scenario.inbox().join("a.csv"));
    poll_until(ARRIVAL, || async { archived.exists() && !inboxed.exists() }).await;
    assert!(archived.exists(), "never archived across filesystems:\n{}", producer.output());
    assert!(!inboxed.exists(), "the inbox still holds the archived file");
    let copy = std::fs::read_to_string(archive.path().join("a.csv")).unwrap();
    assert_eq!(copy, format!("{HEADER}{}", lines(1..=40)), "the archived copy differs from the file");
    let leftovers: Vec<_> =
        std::fs::read_dir(archive.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["a.csv"], "a temporary copy was left in the archive");
    wait_until_forgotten(&scenario, "a.csv").await;
    assert_loaded_once(&scenario, consumer, 1..=40).await;
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 40, "a line was published twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_moved_to_another_filesystem_while_the_producer_was_down_is_finished_from_there() {
    let scenario = Scenario::new("archive_cross_fs_restart").await;
    let archive = archive_on_another_filesystem(&scenario);
    let archive_env = ("ORDERSTREAM_ARCHIVE_DIR", archive.path().to_str().unwrap());
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let consumer = scenario.start_consumer();
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&[archive_env]);
    assert!(orders.wait_for(10, ARRIVAL));
    let first_part = (HEADER.len() + lines(1..=10).len()) as u64;
    let saved = poll_until(ARRIVAL, || async { saved_position(&scenario, "a.csv") == first_part }).await;
    assert!(saved, "the delivered position was never saved: {}", saved_position(&scenario, "a.csv"));
    producer.kill_hard();

    // While it is down, the file grows and is moved the way `mv` moves it to
    // another filesystem: copied (a new inode), then removed.
    scenario.append("a.csv", lines(11..=25).as_bytes());
    std::fs::copy(scenario.inbox().join("a.csv"), archive.path().join("a.csv")).unwrap();
    std::fs::remove_file(scenario.inbox().join("a.csv")).unwrap();
    let restarted = scenario.start_producer_with(&[archive_env]);
    assert!(orders.wait_for(25, ARRIVAL), "the moved rest was not delivered: {}", orders.records.len());
    assert_loaded_once(&scenario, consumer, 1..=25).await;
    let (status, output) = restarted.terminate_with_output();
    assert!(status.success(), "{status}:\n{output}");
    let ids = published_ids(&orders.records);
    assert!((1..=10).all(|id| ids.get(&id) <= Some(&2)), "a delivered line was published again as new: {ids:?}");
    assert!((11..=25).all(|id| ids.get(&id) == Some(&1)), "the rest was lost or doubled: {ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_the_file_in_both_folders_publishes_nothing_again_and_finishes_the_move() {
    let scenario = Scenario::new("archive_cross_fs_crash").await;
    let archive = archive_on_another_filesystem(&scenario);
    let settings = archive_after_a_second(archive.path());
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=30)).as_bytes());
    let consumer = scenario.start_consumer();
    let crash = ("FAILPOINTS", "producer-archive-before-inbox-removal=return");
    let mut crashing = scenario.start_producer_with(&[settings.as_slice(), &[crash]].concat());
    let status = crashing.wait_exit(ARRIVAL).expect("the copy never reached the crash point");
    assert!(!status.success(), "{status}");
    let copy = std::fs::read_to_string(archive.path().join("a.csv")).unwrap();
    assert_eq!(copy, std::fs::read_to_string(scenario.inbox().join("a.csv")).unwrap(), "not in both folders");

    let restarted = scenario.start_producer_with(&settings);
    let finished = poll_until(ARRIVAL, || async { !scenario.inbox().join("a.csv").exists() }).await;
    assert!(finished, "the interrupted move was never finished:\n{}", restarted.output());
    assert_eq!(std::fs::read_to_string(archive.path().join("a.csv")).unwrap(), copy);
    wait_until_forgotten(&scenario, "a.csv").await;
    assert_loaded_once(&scenario, consumer, 1..=30).await;
    assert!(restarted.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 30, "a line was published again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_folder_that_cannot_be_listed_stops_the_start_naming_it() {
    let scenario = Scenario::new("archive_unlistable").await;
    // Root lists any folder whatever its mode: a file where the folder should be fails for everyone.
    let archive = scenario.dir.path().join("archive-is-a-file");
    std::fs::write(&archive, "not a folder").unwrap();
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=3)).as_bytes());
    let mut refused = scenario.start_producer_with(&[("ORDERSTREAM_ARCHIVE_DIR", archive.to_str().unwrap())]);
    let status = refused.wait_exit(Duration::from_secs(20));
    let output = refused.output();
    assert!(status.is_some_and(|status| !status.success()), "started anyway ({status:?}):\n{output}");
    assert!(output.contains(archive.to_str().unwrap()), "the error does not name the archive:\n{output}");
    assert_eq!(scenario.topic_record_count(&scenario.topic), 0, "it published before refusing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archived_and_released_file_leaves_no_unread_bytes_series() {
    let scenario = Scenario::new("archive_series").await;
    let archive = scenario.dir.path().join("archive");
    let settings = archive_after_a_second(&archive);
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer_with(&settings);
    assert!(orders.wait_for(10, ARRIVAL));
    let series_of_a = || async {
        let series = producer.metric_series("orderstream_producer_unread_bytes").unwrap_or_default();
        series.into_iter().filter(|series| series.contains("a.csv")).collect::<Vec<_>>()
    };
    assert!(poll_until(ARRIVAL, || async { !series_of_a().await.is_empty() }).await, "a.csv never had a series");
    assert!(poll_until(ARRIVAL, || async { archive.join("a.csv").exists() }).await, "never archived");
    wait_until_forgotten(&scenario, "a.csv").await;
    let gone = poll_until(ARRIVAL, || async { series_of_a().await.is_empty() }).await;
    assert!(gone, "series of a released file are still exported: {:?}", series_of_a().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_under_two_inbox_names_is_published_once_and_never_flaps_between_them() {
    let scenario = Scenario::new("two_names").await;
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    std::fs::hard_link(scenario.inbox().join("a.csv"), scenario.inbox().join("b.csv")).unwrap();
    std::os::unix::fs::symlink(scenario.inbox().join("a.csv"), scenario.inbox().join("c.csv")).unwrap();
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(10, ARRIVAL));
    // The loop passes every 200 ms: renames back and forth between the
    // names would show within a few passes.
    let renamed = || async { producer.metric("orderstream_producer_files_renamed_total").unwrap_or(0.0) > 0.0 };
    assert!(!poll_until(Duration::from_secs(3), renamed).await, "the names were taken for renames");
    assert!(!orders.wait_for(11, Duration::from_secs(2)), "a line was published twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewritten_file_is_detected_on_restart_and_read_again() {
    let scenario = Scenario::new("rewritten").await;
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=10)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(10, ARRIVAL));
    assert!(producer.terminate().success());

    // Same name, same length, same first bytes: only the last line differs.
    let path = scenario.inbox().join("a.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replace("10,11,2022-07-01 10:10,10.00", "10,11,2022-07-01 10:10,99.00")).unwrap();
    let restarted = scenario.start_producer();
    wait_for_metric(&restarted, r#"orderstream_producer_files_followed_total{start="rewritten"}"#, 1.0).await;
    assert!(orders.wait_for(20, ARRIVAL), "the rewritten file was not read again");
    let last = orders.records.iter().rev().find(|r| r.json()["id"] == 10).unwrap();
    assert_eq!(last.json()["item_total"], "99.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_dead_lettered_with_their_reason_and_good_lines_arrive() {
    let scenario = Scenario::new("corpus").await;
    let huge = format!("9,1,2022-07-01 00:19,1.00,{}", "9".repeat(70 * 1024));
    let corpus: Vec<(&str, Option<&str>)> = vec![
        ("1,10,2022-07-01 00:19,39.14,2.5", None),
        ("2,10,2022-07-01 00:19,39.14", Some("field_count")),
        ("3,abc,2022-07-01 00:19,39.14,2.5", Some("invalid_id")),
        ("4,10,01/07/2022,39.14,2.5", Some("invalid_timestamp")),
        ("5,10,2999-01-01 00:00,39.14,2.5", Some("future_timestamp")),
        ("6,10,2022-07-01 00:19,12€,2.5", Some("invalid_amount")),
        ("7,10,2022-07-01 00:19,-3.00,2.5", Some("negative_amount")),
        ("8,10,2022-07-01 00:19,3.001,2.5", Some("too_many_decimals")),
        (&huge, Some("record_too_long")),
        ("247792,10,2022-07-01T00:19:00+02:00,0,0", None),
        ("\"11\",10,\"2022-07-01 00:19\",\"1.50\",\"2.5\"", None),
    ];
    let mut bytes = format!("\u{feff}{HEADER}").into_bytes();
    for (line, _) in &corpus {
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"\n12,10,2022-07-01 00:19,1,\xff\xfe\n");
    bytes.extend_from_slice(HEADER.as_bytes());
    bytes.extend_from_slice(b"13,10,2022-07-01 00:19,2.00,6\n");
    scenario.append("corpus.csv", &bytes);
    scenario.append(
        "wrong_header.csv",
        b"id,user_id,completed_at,total\n20,1,2022-07-01 00:19,5\n21,1,2022-07-01 00:19,5\n",
    );

    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let mut dead = TopicReader::new(&scenario.brokers, &scenario.dlq_topic);
    let producer = scenario.start_producer();
    assert!(orders.wait_for(4, ARRIVAL), "published {}", orders.records.len());
    assert!(dead.wait_for(12, ARRIVAL), "dead-lettered {}", dead.records.len());
    // One report for the bad header, not one per line of its file.
    assert_eq!(producer.metric("orderstream_producer_unusable_headers_total"), Some(1.0));
    assert!(producer.terminate().success());

    let ids: Vec<i64> = published_ids(&orders.records).into_keys().collect();
    assert_eq!(ids, [1, 11, 13, 247792]);
    let flagged = orders.records.iter().find(|r| r.json()["id"] == 247792).unwrap();
    assert_eq!(flagged.headers["flags"], "zero_totals");
    assert_eq!(flagged.json()["completed_at"], "2022-06-30T22:19:00Z");

    let mut reasons: BTreeMap<String, String> = BTreeMap::new();
    for record in &dead.records {
        let file = record.headers["source_file"].rsplit('/').next().unwrap().to_string();
        reasons.insert(format!("{file}:{}", record.headers["line"]), record.headers["error_kind"].clone());
        assert!(!record.headers["error_message"].is_empty());
        assert!(record.headers.contains_key("byte_offset"));
    }
    let expected: BTreeMap<String, String> = [
        ("corpus.csv:3", "field_count"),
        ("corpus.csv:4", "invalid_id"),
        ("corpus.csv:5", "invalid_timestamp"),
        ("corpus.csv:6", "future_timestamp"),
        ("corpus.csv:7", "invalid_amount"),
        ("corpus.csv:8", "negative_amount"),
        ("corpus.csv:9", "too_many_decimals"),
        ("corpus.csv:10", "record_too_long"),
        ("corpus.csv:14", "invalid_utf8"),
        ("wrong_header.csv:1", "bad_header"),
        ("wrong_header.csv:2", "bad_header"),
        ("wrong_header.csv:3", "bad_header"),
    ]
    .into_iter()
    .map(|(place, kind)| (place.to_string(), kind.to_string()))
    .collect();
    assert_eq!(reasons, expected);
    let negative = dead.records.iter().find(|r| r.headers["error_kind"] == "negative_amount").unwrap();
    assert_eq!(negative.payload, b"7,10,2022-07-01 00:19,-3.00,2.5", "original bytes, terminator stripped");
    let oversized = dead.records.iter().find(|r| r.headers["error_kind"] == "record_too_long").unwrap();
    assert_eq!(oversized.payload.len(), 1024, "only a prefix of an oversized record is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_stopped_and_restarted_mid_file_loses_nothing() {
    let kafka = PrivateKafka::start();
    let scenario = Scenario::on_brokers("kafka_outage", &kafka.brokers()).await;
    const TOTAL: i64 = 30_000;
    scenario.append("big.csv", format!("{HEADER}{}", lines(1..=TOTAL)).as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let mut producer = scenario.start_producer();
    assert!(orders.wait_for(1, ARRIVAL));

    kafka.stop();
    scenario.append("big.csv", lines(TOTAL + 1..=TOTAL + 100).as_bytes());
    producer.assert_running();
    kafka.restart();
    drop(orders);
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    assert!(orders.wait_for((TOTAL + 100) as usize, Duration::from_secs(120)), "read {}", orders.records.len());
    producer.assert_running();
    let ids = published_ids(&orders.records);
    let missing: Vec<i64> = (1..=TOTAL + 100).filter(|id| !ids.contains_key(id)).collect();
    assert!(missing.is_empty(), "{} ids lost, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_without_header_loses_no_line() {
    let scenario = Scenario::new("no_header").await;
    scenario.append("headless.csv", lines(1..=3).as_bytes());
    let mut dead = TopicReader::new(&scenario.brokers, &scenario.dlq_topic);
    let producer = scenario.start_producer();
    assert!(dead.wait_for(3, ARRIVAL), "dead-lettered {}", dead.records.len());
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.topic), 0);
    let mut by_line: Vec<(String, String, Vec<u8>)> = dead
        .records
        .iter()
        .map(|r| (r.headers["line"].clone(), r.headers["error_kind"].clone(), r.payload.clone()))
        .collect();
    by_line.sort();
    let first = order_line(1, 2, "10.00", "2.5");
    assert_eq!(by_line[0], ("1".into(), "bad_header".into(), first.trim_end().as_bytes().to_vec()));
    assert!(by_line.iter().all(|(_, kind, _)| kind == "bad_header"));
}

/// One record per batch, so a topic limit between two records' sizes refuses
/// exactly the larger one (the broker checks whole batches).
const ONE_RECORD_PER_BATCH: (&str, &str) = ("ORDERSTREAM_KAFKA_OPTIONS", "batch.num.messages=1");

/// A file name of 240 characters that compress badly: its records are about
/// 200 bytes larger than those of a short-named file.
fn long_file_name() -> String {
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let name: String = (0..240)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[(rng % 36) as usize])
        })
        .collect();
    format!("{name}.csv")
}

/// Publishes order 1 from `short.csv`, then lowers the orders topic's
/// `max.message.bytes` to between that record's size and the size of the same
/// record from a file with a long name. Returns the producer.
async fn limit_between_short_and_long_records(scenario: &Scenario, orders: &mut TopicReader) -> harness::Process {
    scenario.append("short.csv", format!("{HEADER}{}", order_line(1, 1, "10.00", "2.5")).as_bytes());
    let producer = scenario.start_producer_with(&[ONE_RECORD_PER_BATCH]);
    assert!(orders.wait_for(1, ARRIVAL), "the first order never arrived");
    let limit = orders.records[0].batch_bytes() + 110;
    set_topic_config(&scenario.brokers, &scenario.topic, "max.message.bytes", &limit.to_string()).await;
    producer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_kafka_refuses_for_good_is_dead_lettered_and_its_file_moves_on() {
    let scenario = Scenario::new("refused").await;
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let mut producer = limit_between_short_and_long_records(&scenario, &mut orders).await;
    let refused = order_line(2, 1, "10.00", "2.5");
    scenario.append(&long_file_name(), format!("{HEADER}{refused}").as_bytes());
    scenario.append("short.csv", order_line(3, 1, "10.00", "2.5").as_bytes());
    let mut dead = TopicReader::new(&scenario.brokers, &scenario.dlq_topic);
    assert!(dead.wait_for(1, ARRIVAL), "the refused order was never dead-lettered");
    assert!(orders.wait_for(2, ARRIVAL), "the order after it never arrived");
    producer.assert_running();
    assert_eq!(dead.records[0].headers["error_kind"], "refused_by_kafka");
    assert!(dead.records[0].headers["error_message"].contains("too large"), "{:?}", dead.records[0].headers);
    assert_eq!(dead.records[0].payload, refused.trim_end().as_bytes());
    assert_eq!(published_ids(&orders.records).into_keys().collect::<Vec<_>>(), [1, 3]);
    // The file moved on: another line of it arrives once the limit allows it.
    set_topic_config(&scenario.brokers, &scenario.topic, "max.message.bytes", "1048588").await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(scenario.inbox().join(long_file_name()))
        .and_then(|mut file| std::io::Write::write_all(&mut file, order_line(4, 1, "1.00", "2.5").as_bytes()))
        .unwrap();
    assert!(orders.wait_for(3, ARRIVAL));
    assert!(producer.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 1, "the refused order was dead-lettered again");
    assert_eq!(published_ids(&orders.records).into_keys().collect::<Vec<_>>(), [1, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_order_whose_dead_letter_is_refused_too_is_not_lost() {
    let scenario = Scenario::new("refused_twice").await;
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let mut producer = limit_between_short_and_long_records(&scenario, &mut orders).await;
    set_topic_config(&scenario.brokers, &scenario.dlq_topic, "max.message.bytes", "16").await;
    scenario.append(&long_file_name(), format!("{HEADER}{}", order_line(2, 1, "10.00", "2.5")).as_bytes());
    let status = producer.wait_exit(ARRIVAL).expect("the producer went on without the line");
    assert!(!status.success(), "a stop on a lost line must not look clean: {status}");
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 0);

    set_topic_config(&scenario.brokers, &scenario.topic, "max.message.bytes", "1048588").await;
    set_topic_config(&scenario.brokers, &scenario.dlq_topic, "max.message.bytes", "1048588").await;
    let restarted = scenario.start_producer();
    assert!(orders.wait_for(2, ARRIVAL), "the line was lost: its position had moved past it");
    let (status, output) = restarted.terminate_with_output();
    assert!(status.success(), "{status}:\n{output}");
    assert_eq!(published_ids(&orders.records).into_keys().collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_record_bytes_larger_than_the_topic_accepts_is_refused_at_start() {
    let scenario = Scenario::new("record_limit").await;
    // 100,000 bytes: less than a dead letter of a 64 KiB line may need.
    set_topic_config(&scenario.brokers, &scenario.topic, "max.message.bytes", "100000").await;
    scenario.append("a.csv", format!("{HEADER}{}", lines(1..=3)).as_bytes());
    let mut refused = scenario.start_producer();
    let status = refused.wait_exit(ARRIVAL).expect("the producer started anyway");
    assert!(!status.success(), "{status}");
    assert_eq!(scenario.topic_record_count(&scenario.topic), 0, "it published before refusing");

    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let fitting = scenario.start_producer_with(&[("ORDERSTREAM_MAX_RECORD_BYTES", "30000")]);
    assert!(orders.wait_for(3, ARRIVAL), "a --max-record-bytes that fits was refused too");
    assert!(fitting.terminate().success());
}

/// The delivered byte offset the producer saved for the file whose path ends
/// with `name` (0 when it saved none).
fn saved_position(scenario: &Scenario, name: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string(scenario.state_dir().join("positions.json")) else { return 0 };
    let stored: serde_json::Value = serde_json::from_str(&text).expect("positions.json is JSON");
    let files = stored["files"].as_object().expect("files in positions.json");
    let file = files.values().find(|file| file["path"].as_str().is_some_and(|path| path.ends_with(name)));
    file.map_or(0, |file| file["delivered"]["offset"].as_u64().expect("a delivered offset"))
}

/// The byte offset at which each line of `text` starts.
fn line_starts(text: &str) -> Vec<u64> {
    let mut starts = vec![0];
    starts.extend(text.match_indices('\n').map(|(at, _)| at as u64 + 1).filter(|start| *start < text.len() as u64));
    starts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_kafka_client_stops_the_producer_and_a_restart_delivers_every_line_once() {
    let scenario = Scenario::new("producer_fatal").await;
    const TOTAL: i64 = 3_000;
    const FIRST_PART: i64 = 500;
    // The fatal error comes with the 1,001st record: after the first part
    // was confirmed, while the second is being sent.
    let failpoint = ("FAILPOINTS", "producer-kafka-fatal=1000*off->return");
    let first_part = format!("{HEADER}{}", lines(1..=FIRST_PART));
    scenario.append("a.csv", first_part.as_bytes());
    let mut orders = TopicReader::new(&scenario.brokers, &scenario.topic);
    let mut failing = scenario.start_producer_with(&[failpoint]);
    assert!(orders.wait_for(FIRST_PART as usize, ARRIVAL), "published {}", orders.records.len());
    scenario.append("a.csv", lines(FIRST_PART + 1..=TOTAL).as_bytes());
    let status = failing.wait_exit(ARRIVAL).expect("the producer went on with a fatal client");
    assert_eq!(status.code(), Some(1), "a fatal client must stop the producer with an error: {status}");
    drop(failing);

    // The saved position covers only records Kafka confirmed: every line
    // before it is on the topic.
    let text = std::fs::read_to_string(scenario.inbox().join("a.csv")).unwrap();
    let saved = saved_position(&scenario, "a.csv");
    assert!(
        saved >= first_part.len() as u64 && saved < text.len() as u64,
        "saved {saved}: not between the confirmed first part ({}) and the end ({})",
        first_part.len(),
        text.len()
    );
    let on_topic = scenario.topic_record_count(&scenario.topic) as usize;
    let mut published = TopicReader::new(&scenario.brokers, &scenario.topic);
    assert!(published.wait_for(on_topic, ARRIVAL));
    let confirmed: std::collections::BTreeSet<u64> =
        published.records.iter().map(|record| record.headers["byte_offset"].parse().unwrap()).collect();
    let header_bytes = HEADER.len() as u64;
    let unconfirmed: Vec<u64> = line_starts(&text)
        .into_iter()
        .filter(|start| *start >= header_bytes && *start < saved && !confirmed.contains(start))
        .collect();
    assert!(unconfirmed.is_empty(), "the saved position {saved} passed unconfirmed records at {unconfirmed:?}");

    // Restarted without the failpoint: every line in PostgreSQL, once.
    let consumer = scenario.start_consumer();
    let restarted = scenario.start_producer();
    scenario.wait_for_orders(TOTAL, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let expected: BTreeMap<i64, (i64, rust_decimal::Decimal, rust_decimal::Decimal)> = (1..=TOTAL)
        .map(|id| (id, (id % 50 + 1, rust_decimal::Decimal::new(1000, 2), rust_decimal::Decimal::new(25, 1))))
        .collect();
    assert_eq!(scenario.orders().await, expected, "PostgreSQL differs from the file");
    let (status, output, totals) = consumer.terminate_with_totals();
    assert!(status.success(), "{status}:\n{output}");
    let totals = totals.expect("the consumer's final report");
    assert_eq!((totals.inserted, totals.updated), (TOTAL as u64, 0), "a line was applied twice: {totals:?}");
    assert!(restarted.terminate().success());
    assert_eq!(scenario.topic_record_count(&scenario.dlq_topic), 0, "a line was dead-lettered");
    assert_eq!(totals.dead_lettered, 0);
}
