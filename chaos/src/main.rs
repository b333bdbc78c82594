//! `orderstream-chaos`: runs the fault scenarios and prints one table, or
//! runs the soak. Needs the services `make chaos` starts (see
//! `scripts/chaos.sh`) and binaries built with the `failpoints` features.

use std::time::Duration;

use clap::{Parser, Subcommand};
use orderstream_chaos::rig::Size;
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
    /// Runs the pipeline at a steady rate, sampling memory; exits 1 if the
    /// invariant fails or memory grows.
    Soak {
        /// How long to run.
        #[arg(long, env = "SOAK_MINUTES", default_value_t = 30)]
        minutes: u64,
        /// Lines per second.
        #[arg(long, env = "SOAK_RATE", default_value_t = 1_000)]
        rate: u64,
        /// Seconds between memory samples.
        #[arg(long, default_value_t = 60)]
        sample_seconds: u64,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Mode::Run { fast, only } => {
            let size = if fast { Size::fast() } else { Size::full() };
            let unknown: Vec<&String> =
                only.iter().filter(|id| !SCENARIOS.iter().any(|(known, _)| known == id)).collect();
            if !unknown.is_empty() {
                eprintln!("unknown scenarios {unknown:?}; known: {:?}", SCENARIOS.map(|(id, _)| id));
                return std::process::ExitCode::from(2);
            }
            let mut outcomes = Vec::new();
            for (id, name) in SCENARIOS.iter().filter(|(id, _)| only.is_empty() || only.iter().any(|o| o == id)) {
                eprintln!("chaos: running {name} ...");
                let started = std::time::Instant::now();
                let outcome = scenarios::run(id, size).await;
                eprintln!(
                    "chaos: {name}: {} in {:.0} s",
                    if outcome.passed { "pass" } else { "FAIL" },
                    started.elapsed().as_secs_f64()
                );
                outcomes.push(outcome);
            }
            println!("{}", report::table(&outcomes));
            let failed = outcomes.iter().filter(|outcome| !outcome.passed).count();
            // The plain closing line CI reads: `N passed, N failed`.
            println!("chaos: {} passed, {failed} failed", outcomes.len() - failed);
            if failed == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Mode::Soak { minutes, rate, sample_seconds } => {
            let (outcome, memory) =
                soak::run(Duration::from_secs(minutes * 60), rate, Duration::from_secs(sample_seconds)).await;
            println!("{memory}\n{}", report::table(std::slice::from_ref(&outcome)));
            if outcome.passed {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
    }
}
