//! One scenario's pipeline under test: its database, topics and inbox (an
//! [`harness::Scenario`]), the ledger its load is recorded in, the continuous
//! monitor, and the final check of the invariant.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::{poll_until, Process, Scenario};
use tokio::task::JoinHandle;

use crate::invariant::{compare, read_found, verify_exports, Differences, Found};
use crate::ledger::Ledger;
use crate::load::LoadWriter;
use crate::monitor::Monitor;

/// How much load a scenario runs and how long its faults last.
#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// Lines the steady load writes.
    pub lines: u64,
    /// Lines per second.
    pub rate: u64,
    /// How long a stopped Kafka or PostgreSQL stays down.
    pub outage: Duration,
    /// Bytes of the oversized line in the bad-input corpus.
    pub huge_line: usize,
    /// How long the pipeline may take to reach the expected state.
    pub converge_within: Duration,
}

impl Size {
    /// The sizes the design promises to survive: 30 s outages, a 100 MB line.
    pub fn full() -> Size {
        Size {
            lines: 30_000,
            rate: 2_000,
            outage: Duration::from_secs(30),
            huge_line: 100 * 1024 * 1024,
            converge_within: Duration::from_secs(180),
        }
    }

    /// A quick run for CI: the same faults, shorter.
    pub fn fast() -> Size {
        Size {
            lines: 6_000,
            rate: 2_000,
            outage: Duration::from_secs(5),
            huge_line: 8 * 1024 * 1024,
            converge_within: Duration::from_secs(120),
        }
    }

    /// `make chaos-cluster`: a slower, longer load, so that it still flows
    /// while a broker of the three restarts (tens of seconds on 2 cores),
    /// and time to converge after a broker came back.
    pub fn cluster() -> Size {
        Size {
            lines: 40_000,
            rate: 1_000,
            outage: Duration::from_secs(10),
            huge_line: 0,
            converge_within: Duration::from_secs(240),
        }
    }

    /// The cluster scenarios, shorter (at half the rate, so the load still
    /// flows when a fault hits).
    pub fn cluster_fast() -> Size {
        Size { lines: 12_000, rate: 500, outage: Duration::from_secs(5), ..Size::cluster() }
    }
}

/// One row of the final table.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Scenario number and name.
    pub name: String,
    /// Input lines written (headers excluded).
    pub lines_in: u64,
    /// Orders expected in PostgreSQL.
    pub rows_expected: usize,
    /// Orders found.
    pub rows_found: usize,
    /// Dead letters expected.
    pub dead_letters_expected: u64,
    /// Distinct dead letters found.
    pub dead_letters_found: u64,
    /// Dead-letter records re-sent after a crash (same source line again).
    pub dead_letters_resent: u64,
    /// From the end of the fault (or of the load, if later) to the invariant holding.
    pub recovered_in: Option<Duration>,
    /// The invariant in one line: `0 lost, 0 doubled, versions never down,
    /// offsets never back` when it held.
    pub verdict: String,
    /// Whether the invariant and every check held.
    pub passed: bool,
    /// What went wrong, if anything.
    pub details: String,
}

impl Outcome {
    /// The row of a scenario that could not start (its services would not
    /// come up): a failure, with the reason.
    pub fn not_run(name: &str, reason: String) -> Outcome {
        Outcome {
            name: name.to_string(),
            lines_in: 0,
            rows_expected: 0,
            rows_found: 0,
            dead_letters_expected: 0,
            dead_letters_found: 0,
            dead_letters_resent: 0,
            recovered_in: None,
            verdict: "not run".to_string(),
            passed: false,
            details: reason,
        }
    }
}

/// The pipeline of one scenario.
pub struct Rig {
    /// Name shown in the table.
    pub name: String,
    /// Database, topics, inbox.
    pub scenario: Scenario,
    /// What the pipeline must end up with.
    pub ledger: Arc<Mutex<Ledger>>,
    /// The load's size.
    pub size: Size,
    monitor: Monitor,
    failures: Vec<String>,
    /// Whether the scenario makes the producer re-send records on purpose
    /// (a crash, a lost state folder): only then may a dead letter appear
    /// on the topic twice.
    producer_resends: bool,
    /// Whether the orders topic must hold exactly one record per valid
    /// line (no producer crash, so any surplus is a duplicate Kafka let in).
    each_line_once_on_topic: bool,
}

/// How long the expected state must keep holding once first reached: a
/// late duplicate or a replayed older version must not slip in after it.
const SETTLE: Duration = Duration::from_secs(5);

impl Rig {
    /// A rig on the shared test services.
    pub async fn new(name: &str, size: Size) -> Rig {
        Rig::around(name, Scenario::new(&slug(name)).await, size)
    }

    /// A rig on other Kafka brokers (a private broker the scenario stops).
    pub async fn on_brokers(name: &str, brokers: &str, size: Size) -> Rig {
        Rig::around(name, Scenario::on_brokers(&slug(name), brokers).await, size)
    }

    /// A rig whose database lives on another PostgreSQL (one it stops).
    pub async fn on_postgres(name: &str, admin_url: &str, size: Size) -> Rig {
        Rig::around(name, Scenario::new_on(&slug(name), admin_url).await, size)
    }

    fn around(name: &str, scenario: Scenario, size: Size) -> Rig {
        let monitor = Monitor::start(&scenario.database_url);
        Rig {
            name: name.to_string(),
            scenario,
            ledger: Arc::default(),
            size,
            monitor,
            failures: Vec::new(),
            producer_resends: false,
            each_line_once_on_topic: false,
        }
    }

    /// Declares that the scenario makes the producer send records again (it
    /// crashes it, or takes its state away): dead letters may then be on the
    /// topic more than once. Every other scenario must show none re-sent.
    pub fn expect_producer_resends(&mut self) {
        self.producer_resends = true;
    }

    /// A rig on a Kafka cluster: its topics are replicated `replication`
    /// times, `min.insync.replicas` 2.
    pub async fn on_cluster(name: &str, brokers: &str, replication: i32, size: Size) -> Rig {
        Rig::around(name, Scenario::on_cluster(&slug(name), brokers, replication).await, size)
    }

    /// Declares that the producer never re-sends on purpose here, so the
    /// orders topic must end with exactly one record per valid line: a
    /// broker failing over must not make the idempotent producer's retries
    /// land twice, nor lose an acknowledged record.
    pub fn expect_each_line_once_on_topic(&mut self) {
        self.each_line_once_on_topic = true;
    }

    /// A load writer on this rig's inbox; `id_base` keeps writers' ids apart.
    pub fn writer(&self, prefix: &str, seed: u64, id_base: i64) -> LoadWriter {
        LoadWriter::new(&self.scenario.inbox(), prefix, self.ledger.clone(), seed, id_base)
    }

    /// Runs the steady load in the background.
    pub fn spawn_load(&self, mut writer: LoadWriter) -> JoinHandle<LoadWriter> {
        let (lines, rate) = (self.size.lines, self.size.rate);
        tokio::spawn(async move {
            writer.steady(lines, rate).await.expect("write the load");
            writer
        })
    }

    /// Waits until PostgreSQL holds at least `rows` orders: the point where
    /// a fault hits the pipeline mid-stream.
    pub async fn wait_rows(&mut self, rows: usize) {
        let reached =
            poll_until(Duration::from_secs(120), || async { self.scenario.order_count().await >= rows as i64 }).await;
        if !reached {
            self.fail(format!("never reached {rows} rows before the fault"));
        }
    }

    /// Waits until the given orders are stored (any version).
    pub async fn wait_for_ids(&mut self, ids: &[i64]) {
        let wanted: Vec<i64> = ids.to_vec();
        let reached = poll_until(Duration::from_secs(120), || async {
            let Some(client) = self.scenario.try_db().await else { return false };
            match client.query_one("SELECT count(*) FROM orders WHERE id = ANY($1)", &[&wanted]).await {
                Ok(row) => row.get::<_, i64>(0) == wanted.len() as i64,
                Err(_) => false,
            }
        })
        .await;
        if !reached {
            self.fail(format!("{} orders written before the fault never arrived", wanted.len()));
        }
    }

    /// Records a failed check of the scenario itself.
    pub fn fail(&mut self, failure: impl Into<String>) {
        let failure = failure.into();
        eprintln!("  {}: {failure}", self.name);
        self.failures.push(failure);
    }

    /// Checks a condition of the scenario, recording `failure` if it is false.
    pub fn check(&mut self, holds: bool, failure: impl Into<String>) {
        if !holds {
            self.fail(failure);
        }
    }

    /// Polls until the pipeline holds the expected state and keeps holding
    /// it for `SETTLE`, or the deadline passes; the last state read and
    /// when the state that held started to match.
    pub async fn converge(&self) -> (Found, Differences, Option<Instant>) {
        let deadline = Instant::now() + self.size.converge_within;
        let mut matched_since: Option<Instant> = None;
        loop {
            if let Some(found) = read_found(&self.scenario).await {
                // Compared under the lock, not on a copy: the soak's ledger holds millions of orders.
                let differences = compare(&self.ledger.lock().unwrap(), &found);
                matched_since = if differences.is_empty() { matched_since.or(Some(Instant::now())) } else { None };
                let settled = matched_since.is_some_and(|since| since.elapsed() >= SETTLE);
                if settled || Instant::now() >= deadline {
                    return (found, differences, matched_since.filter(|_| settled));
                }
            } else if Instant::now() >= deadline {
                return (Found::default(), Differences { missing: vec![-1], ..Differences::default() }, None);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits for the invariant, stops the monitor and the processes, and
    /// returns the scenario's row of the table.
    pub async fn finish(self, fault_ended: Instant, processes: Vec<Process>) -> Outcome {
        // Recovery counts from the end of the fault, or of the load if that
        // ended later (scenarios finish once their load is written).
        let recovering_since = fault_ended.max(Instant::now());
        let (found, differences, matched_at) = self.converge().await;
        let watched = self.monitor.finish();
        let mut details: Vec<String> = self.failures;
        if !differences.is_empty() {
            details.push(differences.describe());
        } else if matched_at.is_none() {
            details.push(format!("the expected state did not hold for {SETTLE:?} once reached"));
        } else if let Err(verdict) = tokio::task::block_in_place(|| verify_exports(&self.scenario)) {
            // The independent oracle: every line of every export left accounted for.
            details.push(verdict);
        }
        let resent_unexpectedly = if self.producer_resends { 0 } else { found.dead_letters_resent };
        if resent_unexpectedly > 0 {
            details.push(format!(
                "{} dead letters were on the topic twice, though the producer never crashed nor lost its state",
                found.dead_letters_resent
            ));
        }
        let (mut topic_short, mut topic_surplus) = (0, 0);
        if self.each_line_once_on_topic {
            let expected = self.ledger.lock().unwrap().order_records();
            let published = tokio::task::block_in_place(|| self.scenario.topic_record_count(&self.scenario.topic));
            let published = u64::try_from(published).unwrap_or(0);
            (topic_short, topic_surplus) = (expected.saturating_sub(published), published.saturating_sub(expected));
            if published != expected {
                details.push(format!("the orders topic holds {published} records for {expected} valid lines"));
            }
        }
        details.extend(watched.violations.iter().cloned());
        if watched.samples == 0 {
            details.push("the monitor never read the database".into());
        }
        if !details.is_empty() {
            for process in &processes {
                let output = process.output();
                let tail: Vec<&str> = output.lines().rev().take(15).collect();
                details.push(format!(
                    "last lines of a process:\n    {}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
                ));
            }
        }
        drop(processes);
        let verdict = Verdict {
            lost: differences.lost() + topic_short,
            doubled: differences.doubled() + resent_unexpectedly + topic_surplus,
            wrong: differences.wrong.len() as u64,
            versions_down: watched.versions_down,
            offsets_back: watched.offsets_back,
        };
        let ledger = self.ledger.lock().unwrap();
        Outcome {
            name: self.name.clone(),
            lines_in: ledger.lines_in,
            rows_expected: ledger.orders.len(),
            rows_found: found.orders.len(),
            dead_letters_expected: ledger.dead_letter_count(),
            dead_letters_found: found.dead_letters.values().map(|&count| u64::from(count)).sum(),
            dead_letters_resent: found.dead_letters_resent,
            recovered_in: matched_at.map(|at| at.saturating_duration_since(recovering_since)),
            verdict: verdict.to_string(),
            passed: details.is_empty(),
            details: details.join("\n"),
        }
    }

    /// Forgets the offsets the monitor saw (before a deliberate replay).
    pub fn offsets_reset(&self) {
        self.monitor.offsets_reset();
    }
}

/// The invariant's four counts, as the suite's closing lines print them.
struct Verdict {
    lost: u64,
    doubled: u64,
    /// Orders stored with other values than their newest line's.
    wrong: u64,
    versions_down: u64,
    offsets_back: u64,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} lost, {} doubled, ", self.lost, self.doubled)?;
        match self.versions_down {
            0 => write!(formatter, "versions never down, ")?,
            times => write!(formatter, "versions down {times} times, ")?,
        }
        match self.offsets_back {
            0 => write!(formatter, "offsets never back")?,
            times => write!(formatter, "offsets back {times} times")?,
        }
        if self.wrong > 0 {
            write!(formatter, ", {} orders with wrong values", self.wrong)?;
        }
        Ok(())
    }
}

fn slug(name: &str) -> String {
    let slug: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    slug.chars().take(24).collect()
}

pub(crate) fn quarter(size: Size) -> usize {
    (size.lines / 4) as usize * 9 / 10
}

pub(crate) fn append(path: &std::path::Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_invariant_reads_as_the_closing_sentence() {
        let held = Verdict { lost: 0, doubled: 0, wrong: 0, versions_down: 0, offsets_back: 0 };
        assert_eq!(held.to_string(), "0 lost, 0 doubled, versions never down, offsets never back");
        let broken = Verdict { lost: 3, doubled: 1, wrong: 2, versions_down: 4, offsets_back: 1 };
        assert_eq!(
            broken.to_string(),
            "3 lost, 1 doubled, versions down 4 times, offsets back 1 times, 2 orders with wrong values"
        );
    }
}
