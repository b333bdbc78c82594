//! `orderstream-status` and the processes' `/status` and ready files, on the
//! real binaries, Kafka and PostgreSQL: the exit code follows the pipeline
//! (0 caught up, 1 behind or a process down, 2 a service unreachable), and
//! the JSON carries files, percentages, lag per partition and dead letters.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use harness::topic::delete_records_before;
use harness::{binary, order_line, poll_until, OutgoingRecord, Process, Scenario, HEADER};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// The address a process published in its ready file, once it is there.
async fn ready_addr(process: &mut Process, ready_file: &Path) -> SocketAddr {
    let found = poll_until(WAIT, || async { ready_file.exists() }).await;
    process.assert_running();
    assert!(found, "no ready file at {}", ready_file.display());
    let ready: Value = serde_json::from_str(&std::fs::read_to_string(ready_file).unwrap()).unwrap();
    assert_eq!(ready["pid"].as_u64(), Some(u64::from(process.pid())), "the ready file names the process");
    ready["addr"].as_str().unwrap().parse().unwrap()
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Runs `orderstream-status --json` against the scenario; exit code and JSON.
fn status(scenario: &Scenario, producer: SocketAddr, consumer: SocketAddr, overrides: &[(&str, &str)]) -> (i32, Value) {
    let mut command = Command::new(binary("orderstream-status"));
    command
        .arg("--json")
        .args(["--timeout", "3s"])
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_PRODUCER_METRICS_ADDR", producer.to_string())
        .env("ORDERSTREAM_CONSUMER_METRICS_ADDR", consumer.to_string());
    for (name, value) in overrides {
        command.env(name, value);
    }
    let output = command.output().expect("run orderstream-status");
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}): {}", String::from_utf8_lossy(&output.stdout)));
    (output.status.code().expect("exit code"), json)
}

fn total_lag(report: &Value) -> Option<i64> {
    report["lag"].as_i64()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_1_while_behind_0_once_caught_up_and_1_when_the_consumer_is_down() {
    let scenario = Scenario::new("status_exit").await;
    let lines: String = (1..=20).map(|id| order_line(id, 7, "10.00", "1.00")).collect();
    scenario.append("orders.csv", format!("{HEADER}{lines}").as_bytes());
    let size = std::fs::metadata(scenario.inbox().join("orders.csv")).unwrap().len();
    // A record the consumer can only dead-letter, for the pending count.
    scenario
        .produce(&[OutgoingRecord {
            key: Some("x".into()),
            payload: b"not an order".to_vec(),
            headers: vec![],
            partition: Some(0),
        }])
        .await;

    let producer_ready = scenario.dir.path().join("producer.ready");
    let mut producer =
        scenario.start_producer_with(&[("ORDERSTREAM_PRODUCER_READY_FILE", producer_ready.to_str().unwrap())]);
    let producer_addr = ready_addr(&mut producer, &producer_ready).await;
    let no_consumer: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();

    // Behind: every line is in Kafka, nothing is applied.
    let mut last = Value::Null;
    let delivered = poll_until(WAIT, || {
        let (code, report) = status(&scenario, producer_addr, no_consumer, &[]);
        let done = report["files"][0]["caught_up"] == true && total_lag(&report) == Some(21);
        last = report;
        std::future::ready(done && code == 1)
    })
    .await;
    assert!(delivered, "expected every line in Kafka and a lag of 21 with exit 1: {last:#}");
    assert_eq!(last["state"], "behind");
    assert_eq!(last["consumer"]["up"], false);
    assert_eq!(last["partitions"].as_array().unwrap().len(), 6, "lag for every partition");

    let consumer_ready = scenario.dir.path().join("consumer.ready");
    let mut consumer =
        scenario.start_consumer_with(&[("ORDERSTREAM_CONSUMER_READY_FILE", consumer_ready.to_str().unwrap())]);
    let consumer_addr = ready_addr(&mut consumer, &consumer_ready).await;
    let caught_up = poll_until(WAIT, || {
        let (code, report) = status(&scenario, producer_addr, consumer_addr, &[]);
        last = report;
        std::future::ready(code == 0)
    })
    .await;
    assert!(caught_up, "expected exit 0 once the consumer applied everything: {last:#}");
    assert_eq!(last["state"], "caught_up");
    assert_eq!(last["orders"], 20);
    let file = &last["files"][0];
    assert!(file["path"].as_str().unwrap().ends_with("orders.csv"), "{file}");
    assert_eq!((file["size"].as_u64(), file["delivered_bytes"].as_u64()), (Some(size), Some(size)));
    assert_eq!(file["percent"], 100.0);
    let lags: Vec<i64> = last["partitions"].as_array().unwrap().iter().map(|p| p["lag"].as_i64().unwrap()).collect();
    assert_eq!(lags, [0; 6]);
    assert_eq!(last["dead_letters_pending"], serde_json::json!({ "undecodable_value": 1 }));
    assert_eq!(last["consumer"]["status"]["group"], scenario.group.as_str());
    assert!(!last["consumer"]["status"]["assigned_partitions"].as_array().unwrap().is_empty());

    consumer.kill_hard();
    let (code, report) = status(&scenario, producer_addr, consumer_addr, &[]);
    assert_eq!(code, 1, "a consumer down is not caught up: {report:#}");
    assert_eq!(report["consumer"]["up"], false);
    producer.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn status_is_2_when_postgresql_or_kafka_cannot_be_reached() {
    let scenario = Scenario::new("status_unreachable").await;
    let nowhere: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let closed_database = format!("postgres://nobody:secret@127.0.0.1:{}/nothing", closed_port());
    let (code, report) = status(&scenario, nowhere, nowhere, &[("ORDERSTREAM_DATABASE_URL", &closed_database)]);
    assert_eq!(code, 2, "{report:#}");
    let said = report["unreachable"].to_string();
    assert!(said.contains("PostgreSQL") && said.contains("make services"), "{said}");
    assert!(!said.contains("secret"), "the password is never shown: {said}");

    let closed_kafka = format!("127.0.0.1:{}", closed_port());
    let (code, report) = status(&scenario, nowhere, nowhere, &[("ORDERSTREAM_KAFKA_BROKERS", &closed_kafka)]);
    assert_eq!(code, 2, "{report:#}");
    assert!(report["unreachable"].to_string().contains("Kafka"), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn producer_status_lists_each_followed_file_with_its_delivery() {
    let scenario = Scenario::new("status_producer").await;
    scenario.append("a.csv", format!("{HEADER}{}", order_line(1, 1, "5.00", "1.00")).as_bytes());
    // A line still being written is named: the file is not caught up until
    // it is finished (5 minutes unchanged by default), though every complete
    // record of it is delivered.
    scenario.append("b.csv", format!("{HEADER}{}2,2,2022", order_line(3, 1, "5.00", "1.00")).as_bytes());
    let ready_file = scenario.dir.path().join("producer.ready");
    let mut producer =
        scenario.start_producer_with(&[("ORDERSTREAM_PRODUCER_READY_FILE", ready_file.to_str().unwrap())]);
    let addr = ready_addr(&mut producer, &ready_file).await;

    let mut last = Value::Null;
    let both_delivered = poll_until(WAIT, || {
        let answer = ureq::get(&format!("http://{addr}/status"))
            .call()
            .ok()
            .and_then(|mut response| response.body_mut().read_json::<Value>().ok());
        last = answer.unwrap_or(Value::Null);
        let files = last["files"].as_array().cloned().unwrap_or_default();
        let delivered = files.len() == 2 && files.iter().all(|file| file["percent"] == 100.0);
        std::future::ready(delivered && files.iter().any(|file| file["unterminated_bytes"] == 8))
    })
    .await;
    assert!(both_delivered, "{last:#}");
    assert_eq!(last["caught_up"], false, "b.csv's last line waits: {last:#}");
    let mut names: Vec<&str> = last["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| file["path"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.csv", "b.csv"]);
    for file in last["files"].as_array().unwrap() {
        assert_eq!(file["percent"], 100.0, "{file}");
        assert!(file["delivered_bytes"].as_u64().unwrap() > 0 && file["size"].as_u64().unwrap() > 0, "{file}");
    }
    assert_eq!(last["in_flight"], 0);
    assert_eq!(last["last_error"], Value::Null);
    assert!(last["started_at"].is_string() && last["version"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_the_producer_down_status_shows_each_file_from_its_saved_positions() {
    let scenario = Scenario::new("status_saved").await;
    let lines: String = (1..=5).map(|id| order_line(id, 7, "10.00", "1.00")).collect();
    scenario.append("orders.csv", format!("{HEADER}{lines}").as_bytes());
    let size = std::fs::metadata(scenario.inbox().join("orders.csv")).unwrap().len();
    let (inbox, state_dir) = (scenario.inbox(), scenario.state_dir());
    let saved_positions =
        [("ORDERSTREAM_INBOX", inbox.to_str().unwrap()), ("ORDERSTREAM_STATE_DIR", state_dir.to_str().unwrap())];
    let producer_ready = scenario.dir.path().join("producer.ready");
    let mut producer =
        scenario.start_producer_with(&[("ORDERSTREAM_PRODUCER_READY_FILE", producer_ready.to_str().unwrap())]);
    let producer_addr = ready_addr(&mut producer, &producer_ready).await;
    let no_consumer: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let nowhere: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();

    // The whole file saved as delivered: asked as if the producer were down
    // while it runs, so the wait ends with its position flush, not a sleep.
    let mut last = Value::Null;
    let saved = poll_until(WAIT, || {
        let (_, report) = status(&scenario, nowhere, no_consumer, &saved_positions);
        let done = report["files"][0]["percent"] == 100.0;
        last = report;
        std::future::ready(done)
    })
    .await;
    assert!(saved, "expected the file saved as delivered: {last:#}");
    producer.kill_hard();

    let (code, report) = status(&scenario, producer_addr, no_consumer, &saved_positions);
    assert_eq!(code, 1, "the producer is down: {report:#}");
    assert_eq!(report["producer"]["up"], false);
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{report:#}");
    let file = &files[0];
    assert!(file["path"].as_str().unwrap().ends_with("orders.csv"), "{file}");
    assert_eq!(file["source"], "saved_positions");
    assert_eq!((file["size"].as_u64(), file["delivered_bytes"].as_u64()), (Some(size), Some(size)));
    assert_eq!(file["percent"], 100.0);
    assert_eq!(file["caught_up"], true);
    assert!(report["saved_positions"].as_str().unwrap().ends_with("positions.json"), "{report:#}");

    // Lines appended while it is down are not delivered: below 100 %.
    let appended: String = (6..=9).map(|id| order_line(id, 7, "10.00", "1.00")).collect();
    scenario.append("orders.csv", appended.as_bytes());
    let (code, report) = status(&scenario, producer_addr, no_consumer, &saved_positions);
    assert_eq!(code, 1, "{report:#}");
    let file = &report["files"][0];
    assert_eq!(file["source"], "saved_positions");
    assert_eq!(file["delivered_bytes"].as_u64(), Some(size), "{file}");
    assert_eq!(file["size"].as_u64(), Some(size + appended.len() as u64), "{file}");
    assert!(file["percent"].as_f64().unwrap() < 100.0, "{file}");
    assert_eq!(file["caught_up"], false);
}

/// Order lines `ids`, each with its newline.
fn order_lines(ids: std::ops::RangeInclusive<i64>) -> String {
    ids.map(|id| order_line(id, 7, "10.00", "1.00")).collect()
}

/// Starts the consumer and waits for its `/status` address.
async fn consumer_up(scenario: &Scenario) -> (Process, SocketAddr) {
    let ready_file = scenario.dir.path().join("consumer.ready");
    let mut consumer =
        scenario.start_consumer_with(&[("ORDERSTREAM_CONSUMER_READY_FILE", ready_file.to_str().unwrap())]);
    let addr = ready_addr(&mut consumer, &ready_file).await;
    (consumer, addr)
}

/// Polls the status until `done` holds of its exit code and report; the
/// last report either way.
async fn status_until(
    scenario: &Scenario,
    producer: SocketAddr,
    consumer: SocketAddr,
    done: impl Fn(i32, &Value) -> bool,
) -> (bool, Value) {
    let mut last = Value::Null;
    let reached = poll_until(WAIT, || {
        let (code, report) = status(scenario, producer, consumer, &[]);
        let reached = done(code, &report);
        last = report;
        std::future::ready(reached)
    })
    .await;
    (reached, last)
}

fn says(report: &Value, words: &str) -> bool {
    report["problems"].as_array().is_some_and(|problems| {
        problems.iter().any(|problem| problem.as_str().is_some_and(|problem| problem.contains(words)))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_inbox_file_the_producer_cannot_open_is_named_until_a_chmod_lets_it_load() {
    use std::os::unix::fs::PermissionsExt;
    let scenario = Scenario::new("status_unreadable").await;
    scenario.append("open.csv", format!("{HEADER}{}", order_lines(1..=3)).as_bytes());
    scenario.append("locked.csv", format!("{HEADER}{}", order_lines(4..=6)).as_bytes());
    let locked = scenario.inbox().join("locked.csv");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let ready_file = scenario.dir.path().join("producer.ready");
    let mut producer = scenario
        .start_producer_bound_by_file_modes(&[("ORDERSTREAM_PRODUCER_READY_FILE", ready_file.to_str().unwrap())]);
    let producer_addr = ready_addr(&mut producer, &ready_file).await;
    let (_consumer, consumer_addr) = consumer_up(&scenario).await;

    let (named, report) = status_until(&scenario, producer_addr, consumer_addr, |code, report| {
        code == 1 && report["orders"] == 3 && says(report, "locked.csv cannot be opened by the producer")
    })
    .await;
    assert!(named, "expected the readable file loaded and locked.csv named, exit 1: {report:#}");
    let listed = report["files"].as_array().unwrap().iter().find(|file| file["unreadable"].is_string()).cloned();
    let listed = listed.unwrap_or_else(|| panic!("locked.csv not among the files: {report:#}"));
    assert!(listed["path"].as_str().unwrap().ends_with("locked.csv") && listed["caught_up"] == false, "{listed}");
    assert_eq!(producer.metric("orderstream_producer_unreadable_files"), Some(1.0));

    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (loaded, report) =
        status_until(&scenario, producer_addr, consumer_addr, |code, report| code == 0 && report["orders"] == 6).await;
    assert!(loaded, "expected locked.csv loaded once readable, exit 0: {report:#}");
    assert_eq!(producer.metric("orderstream_producer_unreadable_files"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn records_deleted_by_retention_before_they_were_applied_are_reported_not_hidden() {
    let scenario = Scenario::new("status_retention").await;
    let record = |n: i64| OutgoingRecord {
        key: Some(format!("k{n}")),
        payload: b"not an order".to_vec(),
        headers: vec![],
        partition: Some(0),
    };
    scenario.produce(&(0..3).map(record).collect::<Vec<_>>()).await;
    let (consumer, _) = consumer_up(&scenario).await;
    let applied =
        poll_until(WAIT, || async { scenario.stored_offsets(&scenario.group).await.get(&0) == Some(&3) }).await;
    assert!(applied, "the first 3 records were never applied: {:?}", scenario.stored_offsets(&scenario.group).await);
    consumer.kill_hard();

    // 7 more, of which retention removes 5 before any consumer applied them.
    scenario.produce(&(3..10).map(record).collect::<Vec<_>>()).await;
    assert_eq!(delete_records_before(&scenario.brokers, &scenario.topic, 0, 8).await, 8);
    let nowhere: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let (code, report) = status(&scenario, nowhere, nowhere, &[]);
    assert_eq!(code, 1, "{report:#}");
    let partition = &report["partitions"][0];
    assert_eq!(
        (partition["deleted_by_retention"].as_i64(), partition["lag"].as_i64()),
        (Some(5), Some(7)),
        "{report:#}"
    );
    let topic = &scenario.topic;
    let expected = format!("5 record(s) on {topic}/0 were deleted by retention before the consumer applied them");
    assert!(says(&report, &expected), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dead_letter_intake_lag_is_shown_and_counts_as_waiting() {
    let scenario = Scenario::new("status_intake").await;
    let dead_letter = |n: i64| OutgoingRecord {
        key: Some(format!("bad{n}")),
        payload: format!("bad line {n}").into_bytes(),
        headers: vec![],
        partition: Some(0),
    };
    scenario.produce_to(&scenario.dlq_topic, &(0..3).map(dead_letter).collect::<Vec<_>>()).await;
    let nowhere: SocketAddr = format!("127.0.0.1:{}", closed_port()).parse().unwrap();
    let (code, report) = status(&scenario, nowhere, nowhere, &[]);
    assert_eq!(code, 1, "{report:#}");
    let intake = &report["dead_letter_intake"];
    assert_eq!(
        (intake["topic"].as_str(), intake["lag"].as_i64()),
        (Some(scenario.dlq_topic.as_str()), Some(3)),
        "{report:#}"
    );
    let expected =
        format!("3 dead letter(s) on {} not stored in PostgreSQL by the dead-letter intake yet", scenario.dlq_topic);
    assert!(says(&report, &expected), "{report:#}");

    let (_consumer, consumer_addr) = consumer_up(&scenario).await;
    let (stored, report) =
        status_until(&scenario, nowhere, consumer_addr, |_, report| report["dead_letter_intake"]["lag"] == 0).await;
    assert!(stored, "the intake never caught up: {report:#}");
    assert!(!says(&report, "dead-letter intake"), "{report:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_last_line_without_its_newline_is_named_until_its_file_is_finished_then_loaded() {
    let scenario = Scenario::new("status_final_line").await;
    let final_line = order_line(3, 7, "10.00", "1.00");
    let final_line = final_line.trim_end();
    scenario.append("a.csv", format!("{HEADER}{}{final_line}", order_lines(1..=2)).as_bytes());
    let ready_file = scenario.dir.path().join("producer.ready");
    let mut producer = scenario.start_producer_with(&[
        ("ORDERSTREAM_PRODUCER_READY_FILE", ready_file.to_str().unwrap()),
        ("ORDERSTREAM_CLOSE_INACTIVE", "20s"),
    ]);
    let producer_addr = ready_addr(&mut producer, &ready_file).await;
    let (_consumer, consumer_addr) = consumer_up(&scenario).await;

    let waiting =
        format!("a.csv: {} bytes after its last newline, published when the file is finished", final_line.len());
    let (named, report) = status_until(&scenario, producer_addr, consumer_addr, |code, report| {
        code == 1 && report["orders"] == 2 && says(report, &waiting)
    })
    .await;
    assert!(named, "expected 2 orders and the last line named, exit 1: {report:#}");
    assert!(says(&report, "close-inactive 20s"), "{report:#}");

    let (loaded, report) =
        status_until(&scenario, producer_addr, consumer_addr, |code, report| code == 0 && report["orders"] == 3).await;
    assert!(loaded, "expected the last line loaded once the file was finished, exit 0: {report:#}");
}
