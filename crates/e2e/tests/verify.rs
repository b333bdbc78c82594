//! `orderstream-verify` against the real pipeline: every line of every
//! export accounted for (stored, superseded, dead-lettered, in flight,
//! altered, missing), on the real Kafka and PostgreSQL.

// End-to-end: built only with the feature `make test` turns on (docs/testing.md).
#![cfg(feature = "integration-tests")]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use harness::{binary, order_line, poll_until, Scenario, HEADER};
use serde_json::Value;

const ARRIVAL: Duration = Duration::from_secs(60);

/// A line no order can be: its amount is no number.
const BAD_LINE: &str = "9,10,2022-07-01 10:09,abc,1\n";

/// Runs `orderstream-verify --json [args…]` on the scenario; (exit code, report).
fn verify(scenario: &Scenario, args: &[&Path], extra_env: &[(&str, &str)]) -> (i32, Value) {
    let mut command = Command::new(binary("orderstream-verify"));
    command
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_INBOX", scenario.inbox())
        .env("ORDERSTREAM_STATE_DIR", scenario.state_dir())
        .arg("--json")
        .args(args);
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = command.output().expect("run orderstream-verify");
    let report =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| panic!("no JSON report: {}", shown(&output)));
    (output.status.code().expect("an exit code"), report)
}

fn shown(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The account of the file whose path ends with `name`.
fn account<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|file| file["file"].as_str().is_some_and(|path| path.ends_with(name)))
        .unwrap_or_else(|| panic!("no account of {name} in {report:#}"))
}

/// (lines, stored, superseded, dead-lettered, in flight, altered, missing) of one account.
fn counts(account: &Value) -> [u64; 7] {
    let count = |field: &str| account[field].as_u64().unwrap_or_else(|| panic!("{field} in {account:#}"));
    [
        count("lines"),
        count("stored"),
        count("superseded"),
        count("dead_lettered"),
        count("in_flight_not_delivered") + count("in_flight_not_applied"),
        count("altered"),
        count("missing"),
    ]
}

/// (line, order id) of the lines named in `list`.
fn named(account: &Value, list: &str) -> Vec<(u64, i64)> {
    account[list]
        .as_array()
        .expect(list)
        .iter()
        .map(|line| (line["line"].as_u64().unwrap(), line["order_id"].as_i64().unwrap()))
        .collect()
}

async fn dead_letter_count(scenario: &Scenario) -> i64 {
    let client = scenario.db().await;
    client.query_one("SELECT count(*) FROM dead_letters", &[]).await.map_or(0, |row| row.get(0))
}

/// Waits until the producer's bad lines are in `dead_letters`.
async fn wait_for_dead_letters(scenario: &Scenario, expected: i64) {
    let arrived = poll_until(ARRIVAL, || async { dead_letter_count(scenario).await >= expected }).await;
    assert!(arrived, "{expected} dead letters never arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_load_accounts_for_every_line_and_a_hand_edit_is_altered() {
    let scenario = Scenario::new("verify_clean").await;
    let a = format!(
        "{HEADER}{}{}{BAD_LINE}{}",
        order_line(1, 10, "10.00", "1"),
        order_line(2, 11, "20.00", "1"),
        order_line(3, 12, "30.00", "1")
    );
    scenario.append("a.csv", a.as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(3, ARRIVAL).await;
    // A later export corrects order 1 (on its line 2, as in a.csv).
    scenario.append("b.csv", format!("{HEADER}{}", order_line(1, 10, "12.00", "1")).as_bytes());
    let corrected = poll_until(ARRIVAL, || async {
        scenario.orders().await.get(&1).is_some_and(|(_, item_total, _)| item_total.to_string() == "12.00")
    })
    .await;
    assert!(corrected, "the correction never arrived");
    wait_for_dead_letters(&scenario, 1).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;

    let (code, report) = verify(&scenario, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    let a = account(&report, "a.csv");
    assert_eq!(counts(a), [4, 2, 1, 1, 0, 0, 0], "{a:#}");
    assert_eq!(a["first_superseded"][0]["won_by"].as_str().unwrap().rsplit('/').next(), Some("b.csv:2"));
    assert_eq!(a["dead_lettered_pending"], 1);
    assert_eq!(counts(account(&report, "b.csv")), [1, 1, 0, 0, 0, 0, 0]);

    // Someone edits an amount by hand.
    scenario.db().await.execute("UPDATE orders SET item_total = 99 WHERE id = 2", &[]).await.unwrap();
    let (code, report) = verify(&scenario, &[], &[]);
    assert_eq!(code, 1, "{report:#}");
    let a = account(&report, "a.csv");
    assert_eq!(counts(a), [4, 1, 1, 1, 0, 1, 0], "{a:#}");
    assert_eq!(named(a, "first_altered"), [(3, 2)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_rows_are_named_missing_until_the_export_is_replayed() {
    let scenario = Scenario::new("verify_missing").await;
    let lines: String = (1..=5).map(|id| order_line(id, 10 + id, "10.00", "1")).collect();
    scenario.append("a.csv", format!("{HEADER}{lines}").as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(5, ARRIVAL).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;

    scenario.db().await.execute("DELETE FROM orders WHERE id IN (2, 4)", &[]).await.unwrap();
    let (code, report) = verify(&scenario, &[], &[]);
    assert_eq!(code, 1, "{report:#}");
    let a = account(&report, "a.csv");
    assert_eq!(counts(a), [5, 3, 0, 0, 0, 0, 2], "{a:#}");
    assert_eq!(named(a, "first_missing"), [(3, 2), (5, 4)], "exactly the deleted lines and ids");

    let replayed = Command::new(binary("orderstream-producer"))
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_DLQ_TOPIC", &scenario.dlq_topic)
        .arg("replay")
        .arg(scenario.inbox().join("a.csv"))
        .output()
        .expect("run the producer's replay");
    assert!(replayed.status.success(), "{}", shown(&replayed));
    scenario.wait_for_orders(5, ARRIVAL).await;
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;
    let (code, report) = verify(&scenario, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(counts(account(&report, "a.csv")), [5, 5, 0, 0, 0, 0, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_still_being_appended_counts_its_unsent_tail_in_flight() {
    let scenario = Scenario::new("verify_in_flight").await;
    let first = format!("{HEADER}{}{}", order_line(1, 10, "10.00", "1"), order_line(2, 11, "20.00", "1"));
    scenario.append("a.csv", first.as_bytes());
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer();
    scenario.wait_for_orders(2, ARRIVAL).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;

    // The shop's export goes on while the producer is away, the last line half written.
    scenario.append("a.csv", format!("{}{}3,12,2022-07-", order_line(4, 13, "1.00", "1"), BAD_LINE).as_bytes());
    let (code, report) = verify(&scenario, &[], &[]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(counts(account(&report, "a.csv")), [5, 2, 0, 0, 3, 0, 0], "{report:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_export_with_changed_columns_is_verified_where_it_moved() {
    let scenario = Scenario::new("verify_moved").await;
    let export = "order_id,user_id,completed_at,item_total,shipment_total,currency\n\
                  1,10,2022-07-01 10:01,10.00,1,EUR\n\
                  2,11,2022-07-01 10:02,20.00,1,CHF\n";
    scenario.append("a.csv", export.as_bytes());
    let aliases = [("ORDERSTREAM_COLUMN_ALIASES", "order_id=id")];
    let _consumer = scenario.start_consumer();
    let producer = scenario.start_producer_with(&aliases);
    scenario.wait_for_orders(2, ARRIVAL).await;
    assert!(producer.terminate().success());
    scenario.wait_until_applied(&scenario.group, ARRIVAL).await;

    // Archived under another name, and copied elsewhere.
    let archive = scenario.dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let moved = archive.join("2022_07-renamed.csv");
    std::fs::rename(scenario.inbox().join("a.csv"), &moved).unwrap();
    let copy = scenario.dir.path().join("copy.csv");
    std::fs::copy(&moved, &copy).unwrap();

    let (code, report) = verify(&scenario, &[&moved, &copy], &aliases);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(counts(account(&report, "2022_07-renamed.csv")), [2, 2, 0, 0, 0, 0, 0]);
    assert_eq!(counts(account(&report, "copy.csv")), [2, 2, 0, 0, 0, 0, 0]);

    // The extra column is compared too: a changed currency is an alteration.
    let client = scenario.db().await;
    client.execute("UPDATE orders SET extra = '{\"currency\": \"USD\"}' WHERE id = 2", &[]).await.unwrap();
    let (code, report) = verify(&scenario, &[&moved], &aliases);
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(named(account(&report, "2022_07-renamed.csv"), "first_altered"), [(3, 2)]);
}
