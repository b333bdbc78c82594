//! `orderstream-chaos`: runs the fault scenarios and prints one table, or
//! runs the soak. Needs the services `make chaos` starts (see
//! `scripts/chaos.sh`) and binaries built with the `failpoints` features.

use std::time::Duration;

use clap::{Parser, Subcommand};
use orderstream_chaos::cluster::KafkaCluster;
use orderstream_chaos::cluster_scenarios::{self, CLUSTER_SCENARIOS};
use orderstream_chaos::rig::{Outcome, Size};
use orderstream_chaos::scenarios::{self, SCENARIOS};
use orderstream_chaos::{report, soak};

/// orderstream's reliability suite.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Runs fault scenarios and prints the table; exits 1 if any failed.
    Run {
        /// Shorter load and outages (CI).
        #[arg(long)]
        fast: bool,
        /// Scenario ids to run (e.g. `1,12a,15`); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Runs the cluster scenarios on the three-node Kafka cluster
    /// `scripts/chaos.sh cluster` started, and prints the table and each
    /// scenario's verdict; exits 1 if any failed.
    Cluster {
        /// Shorter load and outages.
        #[arg(long)]
        fast: bool,
        /// Scenario ids to run (e.g. `c1,c5`); all by default.
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
    },
    /// Runs the pipeline at a steady rate, sampling memory; exits 1 if the
    /// invariant fails or memory grows.
    Soak {
        /// How long to run (humantime; `--minutes`, its old name, reads a
        /// bare number as minutes).
        #[arg(long, alias = "minutes", env = "SOAK_DURATION", default_value = "30m",
              value_parser = telemetry::duration::DurationParser::bare_mins())]
        duration: Duration,
        /// Lines per second.
        #[arg(long, env = "SOAK_RATE", default_value_t = 1_000)]
        rate: u64,
        /// Time between memory samples (humantime; `--sample-seconds`, its
        /// old name, reads a bare number as seconds).
        #[arg(long, alias = "sample-seconds", default_value = "60s",
              value_parser = telemetry::duration::DurationParser::bare_secs().nonzero())]
        sample_every: Duration,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Mode::Run { fast, only } => {
            let size = if fast { Size::fast() } else { Size::full() };
            let Some(chosen) = chosen(&SCENARIOS, &only) else { return std::process::ExitCode::from(2) };
            let mut outcomes = Vec::new();
            for (id, name) in chosen {
                outcomes.push(timed(name, scenarios::run(id, size)).await);
            }
            println!("{}", report::table(&outcomes));
            closing("chaos", &outcomes)
        }
        Mode::Cluster { fast, only } => {
            let size = if fast { Size::cluster_fast() } else { Size::cluster() };
            let cluster = match KafkaCluster::from_env() {
                Ok(cluster) => cluster,
                Err(error) => {
                    eprintln!("chaos-cluster: {error}");
                    return std::process::ExitCode::from(2);
                }
            };
            let Some(chosen) = chosen(&CLUSTER_SCENARIOS, &only) else { return std::process::ExitCode::from(2) };
            let mut outcomes = Vec::new();
            for (id, name) in chosen {
                outcomes.push(timed(name, cluster_scenarios::run(id, size, &cluster)).await);
            }
            println!("{}", report::table(&outcomes));
            print!("{}", report::verdicts(&outcomes));
            closing("chaos-cluster", &outcomes)
        }
        Mode::Soak { duration, rate, sample_every } => {
            let (outcome, memory) = soak::run(duration, rate, sample_every).await;
            println!("{memory}\n{}", report::table(std::slice::from_ref(&outcome)));
            if outcome.passed {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}

/// The scenarios `--only` names, in the suite's order; `None` (after saying
/// which) if it names one the suite does not have.
fn chosen<'a>(suite: &'a [(&'a str, &'a str)], only: &[String]) -> Option<Vec<(&'a str, &'a str)>> {
    let unknown: Vec<&String> = only.iter().filter(|id| !suite.iter().any(|(known, _)| known == id)).collect();
    if !unknown.is_empty() {
        eprintln!("unknown scenarios {unknown:?}; known: {:?}", suite.iter().map(|(id, _)| id).collect::<Vec<_>>());
        return None;
    }
    Some(suite.iter().copied().filter(|(id, _)| only.is_empty() || only.iter().any(|o| o == id)).collect())
}

/// Runs one scenario, saying when it starts and how it ended.
async fn timed(name: &str, scenario: impl std::future::Future<Output = Outcome>) -> Outcome {
    eprintln!("chaos: running {name} ...");
    let started = std::time::Instant::now();
    let outcome = scenario.await;
    eprintln!(
        "chaos: {name}: {} in {:.0} s",
        if outcome.passed { "pass" } else { "FAIL" },
        started.elapsed().as_secs_f64()
    );
    outcome
}

/// Prints the plain closing line CI reads, `SUITE: N passed, N failed`, and
/// the exit code: 1 if any failed.
fn closing(suite: &str, outcomes: &[Outcome]) -> std::process::ExitCode {
    let failed = outcomes.iter().filter(|outcome| !outcome.passed).count();
    println!("{suite}: {} passed, {failed} failed", outcomes.len() - failed);
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
