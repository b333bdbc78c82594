//! Latency under a steady append: lines written at a fixed rate into a file
//! in the inbox, each line's write time against its row's `written_at`
//! (same machine clock), also split at `read_at` (when the producer read it).

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use harness::poll_until;

use crate::load_watch::epoch_now;
use crate::pipeline::Pipeline;
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// The appender writes this often, each time the lines owed so far.
const TICK: Duration = Duration::from_millis(10);
/// The first id written (far above the generated files' ids).
const FIRST_ID: i64 = 900_000_000;
/// How long the last lines may take to arrive.
const ARRIVE_WITHIN: Duration = Duration::from_secs(120);

/// What the phase measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencyResult {
    /// Lines written.
    pub sent: usize,
    /// Line written → row committed: p50, p99, max, in ms.
    pub written_to_committed_ms: (f64, f64, f64),
    /// Line written → read by the producer: p50, p99, in ms.
    pub written_to_read_ms: (f64, f64),
    /// Peak memory after the phase, KiB: producer, largest consumer.
    pub peak_kib: (u64, u64),
}

/// One line written: its order id and the time right after its write.
type Sent = (i64, f64);

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services) -> anyhow::Result<LatencyResult> {
    say(format!("phase latency: {} lines/s for {} s", settings.latency_rate, settings.latency_seconds));
    let pipeline = Pipeline::start("latency", settings, services).await?;
    let file = pipeline.scenario.inbox().join("live.csv");
    let (rate, seconds) = (settings.latency_rate, Duration::from_secs(settings.latency_seconds));
    let sent = tokio::task::spawn_blocking(move || append_steadily(&file, rate, seconds)).await??;
    let count = sent.len() as i64;
    let arrived = poll_until(ARRIVE_WITHIN, || async { pipeline.scenario.order_count().await >= count }).await;
    ensure!(arrived, "not all {count} lines arrived within {ARRIVE_WITHIN:?}");
    let (ids, times): (Vec<i64>, Vec<f64>) = sent.into_iter().unzip();
    let row = pipeline
        .scenario
        .db()
        .await
        .query_one(
            "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float8,
                    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1)::float8,
                    round(max(ms)::numeric, 1)::float8,
                    round(percentile_cont(0.5) WITHIN GROUP (ORDER BY read_ms)::numeric, 1)::float8,
                    round(percentile_cont(0.99) WITHIN GROUP (ORDER BY read_ms)::numeric, 1)::float8
             FROM (SELECT (extract(epoch FROM o.written_at)::float8 - s.at) * 1000 AS ms,
                          (extract(epoch FROM o.read_at)::float8 - s.at) * 1000 AS read_ms
                   FROM unnest($1::bigint[], $2::float8[]) AS s(id, at) JOIN orders o USING (id)) l",
            &[&ids, &times],
        )
        .await?;
    let result = LatencyResult {
        sent: ids.len(),
        written_to_committed_ms: (row.get(0), row.get(1), row.get(2)),
        written_to_read_ms: (row.get(3), row.get(4)),
        peak_kib: (pipeline.producer_peak_kib(), pipeline.consumer_peak_kib()),
    };
    pipeline.stop(services).await?;
    Ok(result)
}

/// Creates `file` with the export header, then appends `rate` orders per
/// second for `length`, every [`TICK`] one write of whole lines; returns
/// each line's id and the time after its write.
fn append_steadily(file: &Path, rate: u64, length: Duration) -> std::io::Result<Vec<Sent>> {
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(file)?;
    out.write_all(harness::HEADER.as_bytes())?;
    // Let the producer pick the file up before the clock starts.
    std::thread::sleep(Duration::from_secs(1));
    let mut sent = Vec::new();
    let mut next_id = FIRST_ID;
    let started = Instant::now();
    let mut ticks = 0u32;
    loop {
        let elapsed = started.elapsed();
        if elapsed >= length {
            break;
        }
        // Lines owed so far at `rate`, so a late tick catches up instead of drifting.
        let owed = ((elapsed + TICK).min(length).as_secs_f64() * rate as f64) as i64 - (next_id - FIRST_ID);
        if owed > 0 {
            let stamp = chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string();
            let ids = next_id..next_id + owed;
            let lines: String = ids.clone().map(|id| order_line(id, &stamp)).collect();
            out.write_all(lines.as_bytes())?;
            let written = epoch_now();
            sent.extend(ids.map(|id| (id, written)));
            next_id += owed;
        }
        ticks += 1;
        let next_tick = started + TICK * ticks;
        std::thread::sleep(next_tick.saturating_duration_since(Instant::now()));
    }
    let took = started.elapsed().as_secs_f64();
    let lines = next_id - FIRST_ID;
    say(format!("append: {lines} lines in {took:.1} s ({:.0} lines/s)", lines as f64 / took));
    Ok(sent)
}

/// One order of the steady load.
fn order_line(id: i64, completed_at: &str) -> String {
    format!("{id},{},{completed_at},{}.{:02},2.5\n", id % 5000 + 1, 10 + id % 90, id % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_lines_are_valid_export_lines() {
        assert_eq!(order_line(900_000_007, "2024-05-01 10:00"), "900000007,8,2024-05-01 10:00,17.07,2.5\n");
    }
}
