//! `orderstream-gen`: writes order exports from the library's generator
//! (`make gen`); file handling only.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use orderstream_generator::{write_orders, Spec};

/// Writes a realistic order export (CSV) for demos, tests and benchmarks.
#[derive(Debug, Parser)]
#[command(name = "orderstream-gen", version)]
struct Args {
    /// How many orders to write.
    #[arg(long, env = "ORDERSTREAM_GEN_ORDERS", default_value_t = 1_000_000)]
    orders: u64,
    /// Seed: the same seed writes the same file.
    #[arg(long, env = "ORDERSTREAM_GEN_SEED", default_value_t = 42)]
    seed: u64,
    /// Id of the first order.
    #[arg(long, default_value_t = 1_000_000)]
    first_id: i64,
    /// Completion time of the first order (`YYYY-MM-DDTHH:MM:SS`).
    #[arg(long, default_value = "2022-09-01T00:00:00")]
    start: chrono::NaiveDateTime,
    /// Mean time between two orders' completion (humantime; `--interval-secs`,
    /// its old name, reads a bare number as seconds).
    #[arg(long, alias = "interval-secs", default_value = "30m", value_parser = telemetry::duration::DurationParser::bare_secs().nonzero())]
    interval: std::time::Duration,
    /// File to write; standard output if absent.
    #[arg(long)]
    output: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = Spec {
        orders: args.orders,
        seed: args.seed,
        first_id: args.first_id,
        start: args.start,
        mean_interval: chrono::Duration::from_std(args.interval).context("--interval is too long")?,
    };
    match &args.output {
        Some(path) => write_file(path, &spec),
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            write_orders(&spec, &mut out)?;
            Ok(out.flush()?)
        }
    }
}

/// Writes beside the target and renames, so a watching producer never sees a
/// half-written file under its final name.
fn write_file(path: &Path, spec: &Spec) -> anyhow::Result<()> {
    let partial = path.with_extension("csv.partial");
    let file = std::fs::File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    write_orders(spec, &mut out)?;
    out.flush()?;
    drop(out);
    std::fs::rename(&partial, path).with_context(|| format!("cannot rename to {}", path.display()))
}
