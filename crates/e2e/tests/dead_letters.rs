//! Dead letters of both stages in PostgreSQL, exactly once, and operable
//! without SQL: the real producer and consumer binaries, real
//! Kafka, real PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{binary, order_line, poll_until, OutgoingRecord, Process, Scenario, TopicReader, HEADER};

/// How long an appended bad line may take to be in `dead_letters`: like a
/// good line in `orders`, a second or two, with room for a loaded machine.
const VISIBLE: Duration = Duration::from_secs(5);
/// Start-up of the processes (group join, topic creation).
const STARTED: Duration = Duration::from_secs(60);
/// A restarted consumer's group membership is taken over quickly.
const FAST_GROUP: (&str, &str) = ("ORDERSTREAM_KAFKA_OPTIONS", "session.timeout.ms=6000,heartbeat.interval.ms=1000");

/// The bad lines appended, with the reason each must carry and its line
/// number (the file's header is line 1, one good line is line 2).
const BAD_LINES: [(&str, &str, i64); 3] = [
    ("4,10,01/07/2022,39.14,2.5", "invalid_timestamp", 3),
    ("6,10,2022-07-01 00:19,12€,2.5", "invalid_amount", 4),
    ("2,10,2022-07-01 00:19,39.14", "field_count", 5),
];

/// One row of `dead_letters` as the tests look at it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoredLetter {
    id: i64,
    stage: String,
    reason: String,
    source_file: Option<String>,
    source_line: Option<i64>,
    payload: Vec<u8>,
    resolved: bool,
}

async fn stored_letters(scenario: &Scenario) -> Vec<StoredLetter> {
    let Some(client) = scenario.try_db().await else { return Vec::new() };
    let rows = client
        .query(
            "SELECT id, stage, reason, source_file, source_line, payload, resolved_at IS NOT NULL
             FROM dead_letters ORDER BY id",
            &[],
        )
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|row| StoredLetter {
            id: row.get(0),
            stage: row.get(1),
            reason: row.get(2),
            source_file: row.get(3),
            source_line: row.get(4),
            payload: row.get(5),
            resolved: row.get(6),
        })
        .collect()
}

/// Waits until `count` rows are stored; asserts it within `timeout`.
async fn wait_for_letters(scenario: &Scenario, count: usize, timeout: Duration) -> Vec<StoredLetter> {
    let reached = poll_until(timeout, || async { stored_letters(scenario).await.len() >= count }).await;
    let letters = stored_letters(scenario).await;
    assert!(reached, "{count} dead letters expected within {timeout:?}, found {letters:#?}");
    letters
}

/// Partition → high watermark of the dead-letter topic, for those holding records.
fn dead_letter_watermarks(scenario: &Scenario) -> BTreeMap<i32, i64> {
    scenario.high_watermarks_of(&scenario.dlq_topic)
}

/// Waits until `group` has stored, in PostgreSQL, an offset past every
/// record of the dead-letter topic: the intake read all of it.
async fn wait_until_dead_letter_topic_read(scenario: &Scenario, group: &str) {
    let expected = dead_letter_watermarks(scenario);
    assert!(!expected.is_empty(), "the dead-letter topic is empty");
    let read = poll_until(STARTED, || async {
        let client = scenario.db().await;
        let rows = client
            .query(
                "SELECT partition, next_offset FROM consumer_offsets WHERE group_id = $1 AND topic = $2",
                &[&group, &scenario.dlq_topic],
            )
            .await
            .unwrap_or_default();
        rows.iter().map(|row| (row.get::<_, i32>(0), row.get::<_, i64>(1))).collect::<BTreeMap<_, _>>() == expected
    })
    .await;
    assert!(read, "the intake of {group} never stored offsets {expected:?} of the dead-letter topic");
}

/// Starts producer and consumer and waits until a good line went through
/// (both are up), so that timings measure the pipeline, not start-up.
async fn running_pipeline(scenario: &Scenario, file: &str) -> (Process, Process) {
    let consumer = scenario.start_consumer_with(&[FAST_GROUP]);
    let producer = scenario.start_producer();
    scenario.append(file, format!("{HEADER}{}", order_line(1, 1, "10.00", "2.50")).as_bytes());
    scenario.wait_for_orders(1, STARTED).await;
    (producer, consumer)
}

fn append_bad_lines(scenario: &Scenario, file: &str) {
    let bytes: String = BAD_LINES.iter().map(|(line, _, _)| format!("{line}\n")).collect();
    scenario.append(file, bytes.as_bytes());
}

/// Runs `orderstream-consumer ARGS` on the scenario to completion.
fn consumer_command(scenario: &Scenario, args: &[&str]) -> Output {
    Command::new(binary("orderstream-consumer"))
        .args(args)
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", "127.0.0.1:0")
        .stdin(Stdio::null())
        .output()
        .expect("run orderstream-consumer")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn poison(payload: &[u8]) -> OutgoingRecord {
    OutgoingRecord {
        key: Some("999".into()),
        payload: payload.to_vec(),
        headers: vec![("source_file".into(), "poison.csv".into()), ("line".into(), "2".into())],
        partition: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_bad_lines_are_in_dead_letters_once_with_stage_reason_and_place_within_seconds() {
    let scenario = Scenario::new("dl_latency").await;
    let (producer, consumer) = running_pipeline(&scenario, "export.csv").await;

    let appended = Instant::now();
    append_bad_lines(&scenario, "export.csv");
    let letters = wait_for_letters(&scenario, BAD_LINES.len(), VISIBLE).await;
    let elapsed = appended.elapsed();
    eprintln!("{} bad lines visible in dead_letters after {elapsed:?}", BAD_LINES.len());

    assert_eq!(letters.len(), BAD_LINES.len(), "each bad line once: {letters:#?}");
    for (line, reason, number) in BAD_LINES {
        let letter = letters.iter().find(|letter| letter.reason == reason).unwrap_or_else(|| panic!("{reason}"));
        assert_eq!(letter.stage, "producer");
        assert_eq!(letter.source_line, Some(number), "{letter:?}");
        assert!(letter.source_file.as_deref().is_some_and(|file| file.ends_with("export.csv")), "{letter:?}");
        assert_eq!(String::from_utf8_lossy(&letter.payload).trim_end(), line);
    }
    drop(producer);
    drop(consumer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appended_bad_line_raises_the_intakes_stored_counter_by_exactly_one() {
    const STORED: &str = "orderstream_consumer_intake_dead_letters_total";
    const LAST_STORED: &str = "orderstream_consumer_intake_last_stored_timestamp_seconds";
    const COMMITTED: &str = "orderstream_consumer_intake_records_total";
    let scenario = Scenario::new("dl_intake_metrics").await;
    let (_producer, consumer) = running_pipeline(&scenario, "export.csv").await;
    assert_eq!(consumer.metric_sum(STORED), Some(0.0), "no bad line yet");
    assert_eq!(consumer.metric(COMMITTED), Some(0.0), "no record of the dead-letter topic yet");
    assert_eq!(consumer.metric(LAST_STORED), Some(0.0), "nothing stored yet");
    let before = chrono::Utc::now().timestamp();

    let (line, reason, _) = BAD_LINES[1];
    scenario.append("export.csv", format!("{line}\n").as_bytes());
    wait_for_letters(&scenario, 1, VISIBLE).await;
    wait_until_dead_letter_topic_read(&scenario, &scenario.group).await;
    // Counted right after the commit that stored it.
    let counted = poll_until(VISIBLE, || std::future::ready(consumer.metric_sum(STORED) == Some(1.0))).await;
    assert!(counted, "{STORED} should read 1: {:?}", consumer.metric_sum(STORED));
    assert_eq!(consumer.metric(&format!("{STORED}{{reason=\"{reason}\"}}")), Some(1.0), "counted by its reason");
    assert_eq!(consumer.metric(COMMITTED), Some(1.0), "the one record of the dead-letter topic, committed past");
    let last_stored = consumer.metric(LAST_STORED).unwrap();
    assert!(last_stored >= before as f64, "{LAST_STORED} = {last_stored}, appended at {before}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_or_a_replay_of_the_dead_letter_topic_stores_no_dead_letter_twice() {
    let scenario = Scenario::new("dl_replay").await;
    let (producer, consumer) = running_pipeline(&scenario, "export.csv").await;
    append_bad_lines(&scenario, "export.csv");
    let before = wait_for_letters(&scenario, BAD_LINES.len(), VISIBLE).await;

    // A restart: the intake resumes from its stored offsets.
    let (status, output) = consumer.terminate_with_output();
    assert!(status.success(), "{output}");
    let restarted = scenario.start_consumer_with(&[FAST_GROUP]);
    wait_until_dead_letter_topic_read(&scenario, &scenario.group).await;
    assert_eq!(stored_letters(&scenario).await, before, "a restart stored nothing again");

    // A replay: the stored offsets reset to the start of the topic. The
    // consumer finds out on a partition's next record (the seek back is
    // lazy, as for orders), so one more bad line comes; its partition is
    // read again from the start.
    let client = scenario.db().await;
    let reset = client
        .execute("UPDATE consumer_offsets SET next_offset = 0 WHERE topic = $1", &[&scenario.dlq_topic])
        .await
        .unwrap();
    assert!(reset > 0, "the intake stored its offsets in consumer_offsets");
    scenario.append("export.csv", b"7,10,2022-07-01 00:19,-3.00,2.5\n");
    // The new line is stored in the transaction that re-read its partition.
    let after = wait_for_letters(&scenario, BAD_LINES.len() + 1, VISIBLE).await;
    assert_eq!(&after[..BAD_LINES.len()], &before[..], "the replayed lines were not stored again");
    assert_eq!((after[3].reason.as_str(), after[3].source_line), ("negative_amount", Some(6)));

    // And a consumer of another group reads the whole topic from its start.
    let other = scenario.start_consumer_in_group("dl_replay_other_group");
    wait_until_dead_letter_topic_read(&scenario, "dl_replay_other_group").await;
    assert_eq!(stored_letters(&scenario).await, after, "a replay of the whole topic stored nothing again");
    drop((producer, restarted, other));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumers_dead_letters_are_not_doubled_by_reading_the_topic_back() {
    let scenario = Scenario::new("dl_own").await;
    scenario.produce(&[poison(b"not json at all")]).await;
    let consumer = scenario.start_consumer_with(&[FAST_GROUP]);
    let letters = wait_for_letters(&scenario, 1, STARTED).await;
    assert_eq!((letters[0].stage.as_str(), letters[0].reason.as_str()), ("consumer", "undecodable_value"));
    assert_eq!(letters[0].source_line, Some(2));

    let mut topic = TopicReader::new(&scenario.brokers, &scenario.dlq_topic);
    assert!(topic.wait_for(1, STARTED), "the consumer published its dead letter");
    assert_eq!(topic.records[0].headers.get("stage").map(String::as_str), Some("consumer"));
    wait_until_dead_letter_topic_read(&scenario, &scenario.group).await;
    assert_eq!(stored_letters(&scenario).await, letters, "its own record read back is passed");
    drop(consumer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intake_bounds_its_batches_by_bytes_too() {
    let scenario = Scenario::new("dl_intake_bytes").await;
    let letter = |offset: usize| OutgoingRecord {
        key: Some(format!("export.csv:{offset}")),
        payload: vec![b'x'; 4096],
        headers: vec![
            ("stage".into(), "producer".into()),
            ("error_kind".into(), "invalid_amount".into()),
            ("source_fingerprint".into(), "f".into()),
            ("byte_offset".into(), offset.to_string()),
        ],
        partition: Some(0),
    };
    scenario.produce_to(&scenario.dlq_topic, &[letter(10), letter(20), letter(30)]).await;
    // Every record weighs more than the bound: one record per transaction.
    let consumer = scenario.start_consumer_with(&[FAST_GROUP, ("ORDERSTREAM_BATCH_MAX_BYTES", "4096")]);
    wait_for_letters(&scenario, 3, STARTED).await;
    wait_until_dead_letter_topic_read(&scenario, &scenario.group).await;
    let (_, output) = consumer.terminate_with_output();
    let commits = output.lines().filter(|line| line.contains(consumer::INTAKE_STORED_MESSAGE)).count();
    assert_eq!(commits, 3, "three records of 4 KiB under a 4 KiB bound take three transactions:\n{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_replay_neither_doubles_nor_republishes_nor_reopens_a_consumer_dead_letter() {
    let scenario = Scenario::new("dl_topic_replay").await;
    scenario.produce(&[poison(b"not json at all")]).await;
    let consumer = scenario.start_consumer_with(&[FAST_GROUP]);
    wait_for_letters(&scenario, 1, STARTED).await;
    scenario.wait_until_applied(&scenario.group, STARTED).await;
    // Someone dealt with it (as `dead-letters redrive` marks it).
    let db = scenario.db().await;
    db.execute("UPDATE dead_letters SET redriven_at = now()", &[]).await.unwrap();
    let before = stored_letters(&scenario).await;
    assert!(consumer.terminate().success());
    assert!(poll_until(STARTED, || async { scenario.group_is_empty() }).await, "the consumer never left its group");

    let replay = consumer_command(&scenario, &["replay", "--to-earliest", "--yes"]);
    assert!(replay.status.success(), "{}{}", stdout(&replay), String::from_utf8_lossy(&replay.stderr));
    let consumer = scenario.start_consumer_with(&[FAST_GROUP]);
    scenario.wait_until_applied(&scenario.group, STARTED).await;

    assert_eq!(stored_letters(&scenario).await, before, "the record read again is the dead letter stored");
    let still_redriven: i64 =
        db.query_one("SELECT count(*) FROM dead_letters WHERE redriven_at IS NOT NULL", &[]).await.unwrap().get(0);
    assert_eq!(still_redriven, 1, "a redriven dead letter is not pending again");
    // The topic copy is published before the batch commits: once the
    // replayed offsets are applied, a second copy would be there.
    assert_eq!(dead_letter_watermarks(&scenario).values().sum::<i64>(), 1, "published to the topic once");
    drop(consumer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_resolve_and_export_cover_both_stages() {
    let scenario = Scenario::new("dl_operate").await;
    scenario.produce(&[poison(b"{\"schema_version\":99}")]).await;
    let (producer, consumer) = running_pipeline(&scenario, "export.csv").await;
    append_bad_lines(&scenario, "export.csv");
    let letters = wait_for_letters(&scenario, BAD_LINES.len() + 1, VISIBLE).await;
    drop((producer, consumer));
    let consumer_letter = letters.iter().find(|letter| letter.stage == "consumer").expect("the consumer's");

    // list: a table of every dead letter, pending, exit 0.
    let listed = consumer_command(&scenario, &["dead-letters", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let table = stdout(&listed);
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS"), "{table}");
    assert_eq!(lines.iter().filter(|line| line.ends_with("pending")).count(), letters.len(), "{table}");
    assert!(table.contains("export.csv:3") && table.contains("invalid_timestamp"), "{table}");
    assert!(table.contains("poison.csv:2") && table.contains("unknown_schema_version"), "{table}");
    let producer_only = stdout(&consumer_command(&scenario, &["dead-letters", "list", "--stage", "producer"]));
    assert!(!producer_only.contains("unknown_schema_version"), "{producer_only}");
    assert_eq!(producer_only.lines().filter(|line| line.ends_with("pending")).count(), BAD_LINES.len());
    let refused = consumer_command(&scenario, &["dead-letters", "list", "--stage", "elsewhere"]);
    assert!(!refused.status.success(), "an unknown stage is refused");

    // resolve: refuses without a selector; resolves producer dead letters only.
    let unselected = consumer_command(&scenario, &["dead-letters", "resolve"]);
    assert!(!unselected.status.success(), "resolve with no selector must refuse");
    assert!(stored_letters(&scenario).await.iter().all(|letter| !letter.resolved));
    let id = consumer_letter.id.to_string();
    let resolved = consumer_command(&scenario, &["dead-letters", "resolve", "--id", &id]);
    assert!(resolved.status.success(), "{resolved:?}");
    assert!(stored_letters(&scenario).await.iter().all(|letter| !letter.resolved), "a consumer's is redriven instead");
    let resolved = consumer_command(&scenario, &["dead-letters", "resolve", "--reason", "invalid_timestamp"]);
    assert!(resolved.status.success(), "{resolved:?}");
    let now: Vec<(String, bool)> =
        stored_letters(&scenario).await.into_iter().map(|letter| (letter.reason, letter.resolved)).collect();
    assert_eq!(now.iter().filter(|(_, resolved)| *resolved).count(), 1, "{now:?}");
    assert!(now.contains(&("invalid_timestamp".to_string(), true)), "{now:?}");
    let pending = stdout(&consumer_command(&scenario, &["dead-letters", "list", "--pending"]));
    assert!(!pending.contains("invalid_timestamp"), "a resolved one is not pending: {pending}");
    assert!(pending.contains("invalid_amount"), "{pending}");
    let all = stdout(&consumer_command(&scenario, &["dead-letters", "list", "--reason", "invalid_timestamp"]));
    assert!(all.lines().any(|line| line.ends_with("resolved")), "{all}");
    let typo = consumer_command(&scenario, &["dead-letters", "list", "--reason", "bad_amount"]);
    assert!(!typo.status.success(), "an unknown reason is refused, not answered with an empty list");
    // By its name alone: the rows hold the path the producer named.
    let by_name = consumer_command(&scenario, &["dead-letters", "resolve", "--file", "export.csv"]);
    assert!(by_name.status.success(), "{by_name:?}");
    let producer_resolved =
        stored_letters(&scenario).await.iter().filter(|l| l.stage == "producer" && l.resolved).count();
    assert_eq!(producer_resolved, BAD_LINES.len(), "every bad line of export.csv, in whatever folder");

    // export: both stages, the resolved one marked.
    let file = scenario.dir.path().join("dead-letters.csv");
    let exported = consumer_command(&scenario, &["dead-letters", "export", "--output", file.to_str().unwrap()]);
    assert!(exported.status.success(), "{exported:?}");
    let csv = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].ends_with(",redriven_at,stage,source_file,source_line,source_offset,resolved_at"), "{csv}");
    // After the empty or set `redriven_at`, the stage.
    let of_stage = |stage: &str| lines[1..].iter().filter(|line| line.contains(&format!(",{stage},"))).count();
    assert_eq!(of_stage("producer"), BAD_LINES.len(), "{csv}");
    assert_eq!(of_stage("consumer"), 1, "{csv}");
    let pending_file = scenario.dir.path().join("pending.csv");
    let exported = consumer_command(
        &scenario,
        &["dead-letters", "export", "--pending", "--output", pending_file.to_str().unwrap()],
    );
    assert!(exported.status.success(), "{exported:?}");
    assert_eq!(std::fs::read_to_string(&pending_file).unwrap().lines().count(), 1 + 1, "the consumer's alone");
    let to_stdout = consumer_command(&scenario, &["dead-letters", "export"]);
    assert!(to_stdout.status.success(), "{to_stdout:?}");
    assert_eq!(stdout(&to_stdout), csv, "without --output, the same CSV on standard output");
}
