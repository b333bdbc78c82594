//! Test harness for end-to-end tests: the real producer and consumer binaries
//! against the real Kafka broker and PostgreSQL that `make test` starts.
//!
//! Every [`Scenario`] gets its own database, topics, consumer group and inbox,
//! so tests run in parallel without seeing each other's data.
//!
//! The services are found through `ORDERSTREAM_TEST_DATABASE_URL` (a role
//! allowed to create databases) and `ORDERSTREAM_TEST_KAFKA_BROKERS`, which
//! `make test` sets. The tests (`crates/e2e/tests`) are built only with
//! `orderstream-e2e`'s `integration-tests` feature (which `make test` turns
//! on), so a plain `cargo test` runs the unit tests anywhere; with the feature but without the services the tests fail
//! and say how to get them: integration tests that pass without the services
//! would prove nothing.
//!
//! # Layout
//!
//! - `scenario.rs`: [`Scenario`], one isolated run: its database, topics,
//!   group and inbox, and the commands that start the binaries on it.
//! - `process.rs`: [`Process`], a running binary (killed when dropped, its
//!   output printed on failure) and its `/metrics`.
//! - `records.rs`: test data: CSV lines, the seed exports, records published
//!   straight to a topic, the consumer's totals.
//! - [`topic`]: reading a topic back; [`kafka`] and [`postgres`]: private
//!   brokers and clusters that a test may stop; [`prometheus`]: a real
//!   Prometheus scraping the binaries; [`alertmanager`]: a real Alertmanager
//!   with the repository's routes and inhibitions.
//! - [`service_scripts`]: the one way the tests, the chaos suite and the
//!   bench run `scripts/postgres.sh`, `scripts/kafka.sh` and `scripts/connect.sh`.

use std::future::Future;
use std::io::Write;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod alertmanager;
pub mod endpoints;
pub mod kafka;
pub mod postgres;
mod process;
pub mod prometheus;
mod records;
mod scenario;
pub mod service_scripts;
mod services;
pub mod topic;

pub use process::{binary, Process};
pub use records::{order_line, order_record, seed_files, ConsumerTotals, OutgoingRecord, HEADER};
pub use scenario::{Scenario, PARTITIONS};
pub use topic::{TopicReader, TopicRecord};

/// Makes database, topic and log names unique within this test process.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// The next number of [`SEQUENCE`].
pub(crate) fn next_sequence() -> u32 {
    SEQUENCE.fetch_add(1, Ordering::SeqCst)
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub async fn poll_until<F, Fut>(timeout: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reports a test as skipped, with the reason, on the real standard error:
/// the test harness captures `eprintln!` of passing tests, and a skip must be
/// seen. (cargo test has no skipped status; the test then returns.)
pub fn report_skipped(test: &str, reason: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
}
