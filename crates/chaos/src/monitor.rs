//! Checks that hold at every moment, not only at the end: no order's version
//! ever goes down, and no stored consumer offset ever goes backwards.
//!
//! A background task samples `orders.source_version` and `consumer_offsets`
//! every 500 ms while a scenario runs (skipping samples while PostgreSQL is
//! away) and records every regression it sees.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::NoTls;

/// Regressions seen so far, bounded.
#[derive(Debug, Default)]
struct Seen {
    versions: BTreeMap<i64, i64>,
    offsets: BTreeMap<(String, i32), i64>,
    violations: Vec<String>,
    /// Every time an order's version was seen lower than before.
    versions_down: u64,
    /// Every time a stored offset was seen lower than before.
    offsets_back: u64,
    samples: u64,
    /// Bumped by every deliberate offset reset: a sample read before a reset
    /// but recorded after it would otherwise look like offsets going back.
    resets: u64,
}

const KEPT_VIOLATIONS: usize = 20;

impl Seen {
    fn version(&mut self, id: i64, version: i64) {
        let previous = self.versions.insert(id, version);
        if let Some(previous) = previous.filter(|&previous| version < previous) {
            self.versions_down += 1;
            self.violate(format!("order {id}: version went down from {previous} to {version}"));
        }
    }

    fn offset(&mut self, group: String, partition: i32, offset: i64) {
        let previous = self.offsets.insert((group.clone(), partition), offset);
        if let Some(previous) = previous.filter(|&previous| offset < previous) {
            self.offsets_back += 1;
            self.violate(format!(
                "group {group} partition {partition}: stored offset went back from {previous} to {offset}"
            ));
        }
    }

    fn violate(&mut self, violation: String) {
        if self.violations.len() < KEPT_VIOLATIONS {
            self.violations.push(violation);
        }
    }
}

/// What the monitor saw over a whole scenario.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// The regressions, described (the first few).
    pub violations: Vec<String>,
    /// How often an order's version went down.
    pub versions_down: u64,
    /// How often a stored offset went back.
    pub offsets_back: u64,
    /// Samples taken: 0 means the database was never read.
    pub samples: u64,
}

/// The running monitor of one scenario.
pub struct Monitor {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl Monitor {
    /// Starts sampling the database at `database_url`.
    pub fn start(database_url: &str) -> Monitor {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn(sample_forever(database_url.to_string(), seen.clone()));
        Monitor { seen, task }
    }

    /// Forgets the stored offsets seen so far: for a deliberate reset to
    /// the earliest offsets (a replay), which is not a regression.
    pub fn offsets_reset(&self) {
        let mut seen = self.seen.lock().unwrap();
        seen.offsets.clear();
        seen.resets += 1;
    }

    /// Stops sampling; the regressions seen and how many samples were taken.
    pub fn finish(self) -> Watched {
        self.task.abort();
        let seen = self.seen.lock().unwrap();
        Watched {
            violations: seen.violations.clone(),
            versions_down: seen.versions_down,
            offsets_back: seen.offsets_back,
            samples: seen.samples,
        }
    }
}

async fn sample_forever(database_url: String, seen: Arc<Mutex<Seen>>) {
    loop {
        if let Ok((client, connection)) = tokio_postgres::connect(&database_url, NoTls).await {
            let driver = tokio::spawn(connection);
            while sample(&client, &seen).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            driver.abort();
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn sample(client: &tokio_postgres::Client, seen: &Mutex<Seen>) -> Result<(), tokio_postgres::Error> {
    let resets_before = seen.lock().unwrap().resets;
    // One snapshot for both, so they are read at the same moment.
    let transaction_rows = client
        .query(
            "SELECT id, source_version, NULL::text, NULL::int FROM orders
             UNION ALL SELECT NULL, next_offset, group_id || ' topic ' || topic, partition FROM consumer_offsets",
            &[],
        )
        .await;
    let rows = match transaction_rows {
        Ok(rows) => rows,
        // Tables not created yet: nothing to compare.
        Err(error) if error.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => return Ok(()),
        Err(error) => return Err(error),
    };
    let mut seen = seen.lock().unwrap();
    // Offsets read before a deliberate reset are stale: left out.
    let offsets_current = seen.resets == resets_before;
    for row in rows {
        match row.get::<_, Option<i64>>(0) {
            Some(id) => seen.version(id, row.get(1)),
            None if offsets_current => seen.offset(row.get(2), row.get(3), row.get(1)),
            None => {}
        }
    }
    seen.samples += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_going_back_are_a_violation_unless_reset_deliberately() {
        let mut seen = Seen::default();
        seen.offset("g".into(), 0, 900);
        seen.offset("g".into(), 0, 100);
        assert_eq!(seen.violations, vec!["group g partition 0: stored offset went back from 900 to 100"]);
        let mut seen = Seen::default();
        seen.offset("g".into(), 0, 900);
        seen.offsets.clear();
        seen.offset("g".into(), 0, 0);
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    }

    #[test]
    fn a_version_going_down_is_a_violation() {
        let mut seen = Seen::default();
        seen.version(1, 10);
        seen.version(1, 10);
        seen.version(1, 12);
        assert!(seen.violations.is_empty());
        seen.version(1, 11);
        assert_eq!(seen.violations, vec!["order 1: version went down from 12 to 11"]);
    }

    #[test]
    fn an_offset_going_back_is_a_violation() {
        let mut seen = Seen::default();
        seen.offset("g".into(), 0, 5);
        seen.offset("g".into(), 1, 2);
        seen.offset("g".into(), 0, 7);
        assert!(seen.violations.is_empty());
        seen.offset("g".into(), 0, 6);
        assert_eq!(seen.violations.len(), 1);
    }
}
