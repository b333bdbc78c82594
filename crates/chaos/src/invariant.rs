//! The data invariant: every valid line is in `orders` exactly once with the
//! values of its newest version; every invalid line is on the dead-letter
//! topic once, with its reason, and in `dead_letters` exactly once with its
//! stage (`producer` for a line it could not read, `consumer` for a record
//! it refused); nothing else is in either.
//!
//! [`compare`] is pure, so the checker itself is unit-tested; [`read_found`]
//! reads what PostgreSQL and Kafka hold. [`verify_exports`] is the
//! independent oracle beside the ledger: `orderstream-verify` must account
//! for every line of every export the scenario left (exit 0, nothing in
//! flight).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use harness::{Scenario, TopicReader};

use crate::ledger::{DeadLetterKey, ExpectedRow, Ledger};

/// What the pipeline's outputs hold.
#[derive(Debug, Default, Clone)]
pub struct Found {
    /// Order id → stored values.
    pub orders: BTreeMap<i64, ExpectedRow>,
    /// Distinct dead letters on the topic (a record re-sent after a producer
    /// crash carries the same source and offset and counts once) → count.
    pub dead_letters: BTreeMap<DeadLetterKey, u32>,
    /// Records on the dead-letter topic beyond the distinct ones: re-sends.
    pub dead_letters_resent: u64,
    /// Rows of the `dead_letters` table, as (payload, `stage/reason`) → count.
    pub dead_letter_rows: BTreeMap<DeadLetterKey, u32>,
}

/// How the found state differs from the expected one; empty when the
/// invariant holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Differences {
    /// Expected orders not stored.
    pub missing: Vec<i64>,
    /// Stored orders no valid line produced.
    pub extra: Vec<i64>,
    /// Orders stored with other values than their newest version's.
    pub wrong: Vec<(i64, ExpectedRow, ExpectedRow)>,
    /// Dead letters expected n times but found m times: (bytes, reason, n, m).
    pub dead_letters: Vec<(String, String, u32, u32)>,
    /// Same, for the `dead_letters` table (reason as `stage/reason`).
    pub dead_letter_rows: Vec<(String, String, u32, u32)>,
}

impl Differences {
    /// Whether the invariant holds.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
            && self.extra.is_empty()
            && self.wrong.is_empty()
            && self.dead_letters.is_empty()
            && self.dead_letter_rows.is_empty()
    }

    /// Orders and dead letters expected but not (or too seldom) found.
    pub fn lost(&self) -> u64 {
        let dead_letters = self.dead_letters.iter().chain(&self.dead_letter_rows);
        self.missing.len() as u64
            + dead_letters.map(|(_, _, expected, found)| u64::from(expected.saturating_sub(*found))).sum::<u64>()
    }

    /// Orders no line produced, and dead letters found more often than
    /// expected.
    pub fn doubled(&self) -> u64 {
        let dead_letters = self.dead_letters.iter().chain(&self.dead_letter_rows);
        self.extra.len() as u64
            + dead_letters.map(|(_, _, expected, found)| u64::from(found.saturating_sub(*expected))).sum::<u64>()
    }

    /// The differences, a few of each kind, for the report.
    pub fn describe(&self) -> String {
        const SHOWN: usize = 5;
        let mut text = String::new();
        if !self.missing.is_empty() {
            let _ = writeln!(
                text,
                "missing {} orders, e.g. {:?}",
                self.missing.len(),
                &self.missing[..self.missing.len().min(SHOWN)]
            );
        }
        if !self.extra.is_empty() {
            let _ = writeln!(
                text,
                "extra {} orders, e.g. {:?}",
                self.extra.len(),
                &self.extra[..self.extra.len().min(SHOWN)]
            );
        }
        for (id, expected, found) in self.wrong.iter().take(SHOWN) {
            let _ = writeln!(text, "order {id}: expected {expected:?}, found {found:?}");
        }
        if self.wrong.len() > SHOWN {
            let _ = writeln!(text, "... {} orders with wrong values in all", self.wrong.len());
        }
        for (what, list) in [("dead letter", &self.dead_letters), ("dead_letters row", &self.dead_letter_rows)] {
            for (bytes, reason, expected, found) in list.iter().take(SHOWN) {
                let _ = writeln!(text, "{what} {bytes:?} ({reason}): expected {expected}, found {found}");
            }
            if list.len() > SHOWN {
                let _ = writeln!(text, "... {} {what}s differ in all", list.len());
            }
        }
        text
    }
}

/// Compares what the pipeline holds with what the ledger says it must.
pub fn compare(expected: &Ledger, found: &Found) -> Differences {
    let mut differences = Differences::default();
    for (id, row) in &expected.orders {
        match found.orders.get(id) {
            None => differences.missing.push(*id),
            Some(stored) if stored != row => differences.wrong.push((*id, row.clone(), stored.clone())),
            Some(_) => {}
        }
    }
    differences.extra = found.orders.keys().filter(|id| !expected.orders.contains_key(id)).copied().collect();
    differences.dead_letters = count_differences(&expected.all_dead_letters(), &found.dead_letters);
    differences.dead_letter_rows = count_differences(&expected_rows(expected), &found.dead_letter_rows);
    differences
}

/// The rows `dead_letters` must hold: every dead letter of both stages once
/// (a line the producer re-sent is one row, like one distinct record on the
/// topic), keyed by (bytes, `stage/reason`) so a wrong stage is a difference.
pub fn expected_rows(expected: &Ledger) -> BTreeMap<DeadLetterKey, u32> {
    let staged = |stage: &str, letters: &BTreeMap<DeadLetterKey, u32>| {
        letters
            .iter()
            .map(|((bytes, reason), count)| ((bytes.clone(), format!("{stage}/{reason}")), *count))
            .collect::<Vec<_>>()
    };
    let mut rows = BTreeMap::new();
    for (key, count) in staged("producer", &expected.producer_dead_letters)
        .into_iter()
        .chain(staged("consumer", &expected.consumer_dead_letters))
    {
        *rows.entry(key).or_default() += count;
    }
    rows
}

fn count_differences(
    expected: &BTreeMap<DeadLetterKey, u32>,
    found: &BTreeMap<DeadLetterKey, u32>,
) -> Vec<(String, String, u32, u32)> {
    let keys: BTreeSet<&DeadLetterKey> = expected.keys().chain(found.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (want, have) = (expected.get(key).copied().unwrap_or(0), found.get(key).copied().unwrap_or(0));
            (want != have).then(|| (shorten(&key.0), key.1.clone(), want, have))
        })
        .collect()
}

fn shorten(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    if bytes.len() > 80 {
        format!("{text}… ({} bytes)", bytes.len())
    } else {
        text
    }
}

/// Reads the stored orders, the dead-letter topic and the `dead_letters`
/// table of a scenario. `None` while PostgreSQL cannot be read.
pub async fn read_found(scenario: &Scenario) -> Option<Found> {
    let client = scenario.try_db().await?;
    let rows =
        client.query("SELECT id, user_id, completed_at, item_total, shipment_total FROM orders", &[]).await.ok()?;
    let orders = rows
        .iter()
        .map(|row| {
            let stored = ExpectedRow {
                user_id: row.get(1),
                completed_at: row.get(2),
                item_total: row.get(3),
                shipment_total: row.get(4),
            };
            (row.get::<_, i64>(0), stored)
        })
        .collect();
    let mut dead_letter_rows: BTreeMap<DeadLetterKey, u32> = BTreeMap::new();
    for row in client.query("SELECT payload, stage || '/' || reason FROM dead_letters", &[]).await.ok()? {
        *dead_letter_rows.entry((row.get(0), row.get(1))).or_default() += 1;
    }
    let (dead_letters, dead_letters_resent) = read_dead_letter_topic(scenario);
    Some(Found { orders, dead_letters, dead_letters_resent, dead_letter_rows })
}

/// Runs `orderstream-verify --json` on the scenario's inbox and archive
/// (`<dir>/archive`, where a scenario keeps one); `Err` says what it found
/// missing, altered or still in flight, or why it could not run.
pub fn verify_exports(scenario: &Scenario) -> Result<(), String> {
    let output = std::process::Command::new(harness::binary("orderstream-verify"))
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_INBOX", scenario.inbox())
        .env("ORDERSTREAM_ARCHIVE_DIR", scenario.dir.path().join("archive"))
        .env("ORDERSTREAM_STATE_DIR", scenario.state_dir())
        .arg("--json")
        .output()
        .map_err(|error| format!("orderstream-verify could not run: {error}"))?;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).map_err(|_| {
        format!(
            "orderstream-verify exited {} without a report: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    verify_verdict(output.status.code(), &report)
}

/// The oracle's verdict from its exit code and JSON report: every line
/// accounted for and none still in flight once the pipeline converged.
fn verify_verdict(code: Option<i32>, report: &serde_json::Value) -> Result<(), String> {
    let total = &report["total"];
    let count = |field: &str| total[field].as_u64().unwrap_or(0);
    let in_flight = count("in_flight_not_delivered") + count("in_flight_not_applied");
    if code == Some(0) && in_flight == 0 {
        return Ok(());
    }
    let named: Vec<String> = report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|file| {
            let name = file["file"].as_str().unwrap_or("?").to_string();
            file["first_missing"].as_array().into_iter().flatten().map(move |line| format!("{name}:{}", line["line"]))
        })
        .collect();
    Err(format!(
        "orderstream-verify (exit {code:?}): {} missing, {} altered, {in_flight} in flight; first missing: {}",
        count("missing"),
        count("altered"),
        named.join(", ")
    ))
}

/// Distinct dead letters on the topic and how many records were re-sends.
fn read_dead_letter_topic(scenario: &Scenario) -> (BTreeMap<DeadLetterKey, u32>, u64) {
    let total = scenario.topic_record_count(&scenario.dlq_topic).max(0) as usize;
    let mut reader = TopicReader::new(&scenario.brokers, &scenario.dlq_topic);
    reader.wait_for(total, Duration::from_secs(30));
    let mut identities = BTreeSet::new();
    let mut distinct: BTreeMap<DeadLetterKey, u32> = BTreeMap::new();
    for record in &reader.records {
        let header = |name: &str| record.headers.get(name).cloned().unwrap_or_default();
        let reason = header("error_kind");
        // The same source line re-sent has the same source and offset; a line
        // read again from a copy of its file has another source.
        let identity = (header("source_fingerprint"), header("byte_offset"), record.payload.clone(), reason.clone());
        if identities.insert(identity) {
            *distinct.entry((record.payload.clone(), reason)).or_default() += 1;
        }
    }
    let resent = reader.records.len() as u64 - identities.len() as u64;
    (distinct, resent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rust_decimal::Decimal;

    fn row(item_cents: i64) -> ExpectedRow {
        ExpectedRow {
            user_id: 1,
            completed_at: chrono::Utc.with_ymd_and_hms(2022, 7, 1, 10, 0, 0).unwrap(),
            item_total: Decimal::new(item_cents, 2),
            shipment_total: Decimal::new(25, 1),
        }
    }

    fn ledger() -> Ledger {
        let mut ledger = Ledger::default();
        ledger.valid(1, row(100));
        ledger.valid(2, row(200));
        ledger.valid(2, row(250));
        ledger.rejected(b"x,1", "field_count");
        ledger
    }

    fn matching(ledger: &Ledger) -> Found {
        Found {
            orders: ledger.orders.clone(),
            dead_letters: ledger.all_dead_letters(),
            dead_letters_resent: 0,
            dead_letter_rows: expected_rows(ledger),
        }
    }

    #[test]
    fn the_verify_oracle_holds_only_with_nothing_missing_nor_in_flight() {
        let report = |missing: u64, in_flight: u64| {
            serde_json::json!({
                "total": {"missing": missing, "altered": 0, "in_flight_not_delivered": in_flight, "in_flight_not_applied": 0},
                "files": [{"file": "/inbox/a.csv", "first_missing": [{"line": 7}]}]
            })
        };
        assert_eq!(verify_verdict(Some(0), &report(0, 0)), Ok(()));
        let missing = verify_verdict(Some(1), &report(1, 0)).unwrap_err();
        assert!(missing.contains("1 missing") && missing.contains("/inbox/a.csv:7"), "{missing}");
        assert!(verify_verdict(Some(0), &report(0, 2)).unwrap_err().contains("2 in flight"));
    }

    #[test]
    fn identical_state_holds_the_invariant() {
        let ledger = ledger();
        assert!(compare(&ledger, &matching(&ledger)).is_empty());
    }

    #[test]
    fn older_version_stored_is_a_wrong_value() {
        let ledger = ledger();
        let mut found = matching(&ledger);
        found.orders.insert(2, row(200));
        let differences = compare(&ledger, &found);
        assert_eq!(differences.wrong, vec![(2, row(250), row(200))]);
        assert!(differences.describe().contains("order 2"));
    }

    #[test]
    fn missing_and_extra_orders_are_reported() {
        let ledger = ledger();
        let mut found = matching(&ledger);
        found.orders.remove(&1);
        found.orders.insert(9, row(1));
        let differences = compare(&ledger, &found);
        assert_eq!((differences.missing, differences.extra), (vec![1], vec![9]));
    }

    #[test]
    fn missing_duplicated_or_misclassified_dead_letters_are_reported() {
        let ledger = ledger();
        let mut found = matching(&ledger);
        found.dead_letters.insert((b"x,1".to_vec(), "field_count".into()), 2);
        assert_eq!(compare(&ledger, &found).dead_letters, vec![("x,1".into(), "field_count".into(), 1, 2)]);
        found.dead_letters.clear();
        found.dead_letters.insert((b"x,1".to_vec(), "invalid_id".into()), 1);
        assert_eq!(compare(&ledger, &found).dead_letters.len(), 2, "one missing, one unexpected");
    }

    #[test]
    fn every_dead_letter_must_be_in_the_table_with_its_stage() {
        let mut ledger = ledger();
        ledger.poison(b"garbage", "undecodable_value");
        let mut found = matching(&ledger);
        found.dead_letter_rows.clear();
        assert_eq!(
            compare(&ledger, &found).dead_letter_rows,
            vec![
                ("garbage".into(), "consumer/undecodable_value".into(), 1, 0),
                ("x,1".into(), "producer/field_count".into(), 1, 0)
            ]
        );
    }

    #[test]
    fn producer_dead_letters_must_be_in_the_table_once_with_their_stage() {
        let ledger = ledger();
        let mut found = matching(&ledger);
        found.dead_letter_rows.insert((b"x,1".to_vec(), "producer/field_count".into()), 2);
        assert_eq!(
            compare(&ledger, &found).dead_letter_rows,
            vec![("x,1".into(), "producer/field_count".into(), 1, 2)],
            "a re-sent line stored twice"
        );
        found.dead_letter_rows = BTreeMap::from([((b"x,1".to_vec(), "consumer/field_count".into()), 1)]);
        assert_eq!(compare(&ledger, &found).dead_letter_rows.len(), 2, "wrong stage: one missing, one unexpected");
    }
}
