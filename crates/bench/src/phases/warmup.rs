//! An untimed load through the pipeline before any measured phase. The
//! bench starts a fresh broker, whose JVM compiles its produce, fetch and
//! group paths once load begins: on the first 100,000 orders its JIT
//! compiler threads took 37–45 % of the broker's CPU, charged to whichever
//! phase came first (in a comparison, to the first round's baseline). The
//! warm-up takes that first burst. HotSpot goes on compiling for minutes
//! (six such loads still left it at 25–37 %), so every cold run also
//! reports the compilers' CPU on its own (`CpuSeconds::kafka_jit`).

use std::io::{BufRead, BufReader, BufWriter, Write};

use anyhow::Context;

use crate::input::Input;
use crate::phases::e2e;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// Orders in the warm-up load: a few seconds of load.
pub const WARMUP_ORDERS: u64 = 100_000;

/// Runs the first [`WARMUP_ORDERS`] lines of the input (fewer if the input
/// is smaller) through the producer and group, on a scenario of its own
/// that is dropped afterwards.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<()> {
    let orders = WARMUP_ORDERS.min(settings.orders);
    say(format!("phase warmup: {orders} orders, untimed, for the fresh broker's JIT"));
    let file = settings.work_dir().join("warmup.csv");
    let file_bytes = head(&input.file, &file, orders).context("write the warm-up file")?;
    let warmup_input = Input { file, file_bytes, ..input.clone() };
    let warmup_settings = Settings { orders, perf: false, profile: false, ..settings.clone() };
    let cpu = e2e::run_cold(&warmup_settings, services, &warmup_input).await?.cold_cpu;
    let share = 100.0 * cpu.kafka_jit / cpu.kafka.max(f64::MIN_POSITIVE);
    say(format!("phase warmup: the broker's JIT compilers took {share:.0} % of its CPU"));
    std::fs::remove_file(&warmup_input.file)?;
    Ok(())
}

/// Copies the header and the first `orders` lines of `from` to `to`;
/// returns the bytes written.
fn head(from: &std::path::Path, to: &std::path::Path, orders: u64) -> std::io::Result<u64> {
    let mut reader = BufReader::new(std::fs::File::open(from)?);
    let mut writer = BufWriter::new(std::fs::File::create(to)?);
    let (mut line, mut written) = (Vec::new(), 0u64);
    for _ in 0..=orders {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        writer.write_all(&line)?;
        written += line.len() as u64;
    }
    writer.flush()?;
    Ok(written)
}
