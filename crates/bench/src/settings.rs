//! What a bench run measures and where: every setting from the environment
//! (`BENCH_*`, as `make bench` passes them) or a flag.

use std::path::PathBuf;

use clap::Parser;

use crate::ports::port;

/// orderstream's throughput, latency and memory against the limits of its
/// parts. The last line printed is machine-readable (`bench: key=value …`).
#[derive(Debug, Clone, Parser)]
#[command(version)]
pub struct Settings {
    /// Orders generated (quick: 100000).
    #[arg(long, env = "BENCH_ORDERS", default_value_t = 1_000_000)]
    pub orders: u64,
    /// Rows timed for the naive baseline.
    #[arg(long, env = "BENCH_NAIVE_ROWS", default_value_t = 20_000)]
    pub naive_rows: u64,
    /// Length of the latency phase, in seconds (quick: 10).
    #[arg(long, env = "BENCH_LATENCY_SECONDS", default_value_t = 60)]
    pub latency_seconds: u64,
    /// Lines per second appended in the latency phase.
    #[arg(long, env = "BENCH_LATENCY_RATE", default_value_t = 5_000)]
    pub latency_rate: u64,
    /// Generator seed.
    #[arg(long, env = "BENCH_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Consumer processes in the group (2, as compose deploys; at most 6, the
    /// topics' partitions).
    #[arg(long, env = "BENCH_CONSUMERS", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=6))]
    pub consumers: u8,
    /// Where the pipeline's binaries are (default: beside this binary);
    /// another folder compares an older build in the same setup.
    #[arg(long, env = "BENCH_BIN")]
    pub bin: Option<PathBuf>,
    /// Samples producer and consumer with `perf` during the cold run (top
    /// threads and symbols to `<local>/perf-top.txt`).
    #[arg(long, env = "BENCH_PERF", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub perf: bool,
    /// Samples the whole machine with `perf` and call graphs during the
    /// cold run: CPU share per process and thread, flamegraphs of consumer,
    /// producer and PostgreSQL (`<local>/profile/`; needs `inferno-flamegraph`).
    #[arg(long, env = "BENCH_PROFILE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub profile: bool,
    /// Runs the peers side by side: Kafka Connect's Debezium JDBC sink
    /// against the consumer group, its FileStreamSource against the
    /// producer (`0` skips them: no Java worker, no peer keys).
    #[arg(long, env = "BENCH_PEERS", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = true, action = clap::ArgAction::Set)]
    pub peers: bool,
    /// Also runs the cold end-to-end load on a three-node Kafka cluster
    /// (topics replicated 3 times, `min.insync.replicas` 2; ports.env's
    /// `PORT_BENCH_CLUSTER_*`): the cost of replication, as its rate over
    /// the one-broker e2e rate of the same run.
    #[arg(long, env = "BENCH_CLUSTER", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub cluster: bool,
    /// Runs only `COPY` and the end-to-end phase and prints one
    /// `scaling:` line (rows/s, CPU per record by component, the ratios to
    /// `COPY`): how cost grows with the consumers and the table, several
    /// points in the time of one full run (docs/runs/2026-11-benchmarks.md, "How cost grows").
    #[arg(long, env = "BENCH_SCALING", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub scaling: bool,
    /// Compares this build against the pipeline binaries in this folder
    /// (an older release's, built by `make bench-compare REF=…`): both run
    /// alternately on the same services and input, and the report is new
    /// ÷ old for each figure instead of the phases' table.
    #[arg(long, env = "BENCH_COMPARE_WITH")]
    pub compare_with: Option<PathBuf>,
    /// What the compared build is called in the report (its git ref).
    #[arg(long, env = "BENCH_COMPARE_LABEL", default_value = "baseline")]
    pub compare_label: String,
    /// Rounds of the comparison; each runs both builds, odd rounds the
    /// baseline first, even rounds this build first (A B B A …), and the
    /// medians are compared.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Fails the comparison (exit 1) when this build's end-to-end or sink
    /// rate is below this fraction of the baseline's (`make test`: 0.75).
    #[arg(long, env = "BENCH_MIN_RATIO")]
    pub min_ratio: Option<f64>,
    /// Folder of the bench's services, logs and report (wiped at the start).
    #[arg(long, env = "BENCH_LOCAL", default_value = ".local/bench")]
    pub local: PathBuf,
    /// The bench PostgreSQL's port.
    #[arg(long, env = "BENCH_PG_PORT", default_value_t = port("PORT_BENCH_PG"))]
    pub pg_port: u16,
    /// The bench Kafka's client port.
    #[arg(long, env = "BENCH_KAFKA_PORT", default_value_t = port("PORT_BENCH_KAFKA"))]
    pub kafka_port: u16,
    /// The bench Kafka's controller port.
    #[arg(long, env = "BENCH_KAFKA_CONTROLLER_PORT", default_value_t = port("PORT_BENCH_KAFKA_CONTROLLER"))]
    pub kafka_controller_port: u16,
    /// The peers' Kafka Connect worker's REST port.
    #[arg(long, env = "BENCH_CONNECT_PORT", default_value_t = port("PORT_BENCH_CONNECT"))]
    pub connect_port: u16,
}

impl Settings {
    /// The folder holding the input, the processes' logs and the phases'
    /// files (kept until the next run).
    pub fn work_dir(&self) -> PathBuf {
        std::path::absolute(self.local.join("work")).unwrap_or_else(|_| self.local.join("work"))
    }

    /// The pipeline's binaries: `--bin`, or the folder of this binary
    /// (the same `cargo build --release`).
    pub fn bin_dir(&self) -> PathBuf {
        let beside_me = || std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from));
        let dir = self.bin.clone().or_else(beside_me).unwrap_or_else(|| PathBuf::from("target/release"));
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The naive baseline's program, built as an example beside this binary.
    pub fn naive_upsert(&self) -> PathBuf {
        let beside_me = std::env::current_exe().ok().and_then(|exe| exe.parent().map(PathBuf::from));
        beside_me.unwrap_or_else(|| PathBuf::from("target/release")).join("examples/naive_upsert")
    }
}
