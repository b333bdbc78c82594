//! The soak run: the pipeline at a steady rate for a long time, its memory
//! sampled throughout, the invariant checked at the end.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::rig::{Outcome, Rig, Size};

/// Resident memory of a process in MiB, from `/proc`.
fn resident_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Whether memory stayed flat: the mean of the last third of the samples is
/// at most 10 % (and 8 MiB) above the mean of the first third, after the
/// first two samples (warm-up) are left out.
pub fn is_flat(samples: &[f64]) -> bool {
    let steady = &samples[samples.len().min(2)..];
    if steady.len() < 3 {
        return true;
    }
    let third = steady.len() / 3;
    let mean = |part: &[f64]| part.iter().sum::<f64>() / part.len() as f64;
    let (first, last) = (mean(&steady[..third]), mean(&steady[steady.len() - third..]));
    last <= first * 1.10 + 8.0
}

/// Runs the soak and returns its outcome and the memory table.
pub async fn run(duration: Duration, rate: u64, every: Duration) -> (Outcome, String) {
    let size =
        Size { lines: rate * duration.as_secs(), rate, converge_within: Duration::from_secs(600), ..Size::full() };
    let rig = Rig::new("soak", size).await;
    let (producer, consumer) = (rig.scenario.start_producer(), rig.scenario.start_consumer());
    let load = rig.spawn_load(rig.writer("soak", 30, 0));
    let started = Instant::now();
    let (mut producer_mib, mut consumer_mib) = (Vec::new(), Vec::new());
    let mut table = String::from("| minute | producer RSS MiB | consumer RSS MiB |\n|---:|---:|---:|\n");
    while !load.is_finished() {
        tokio::time::sleep(every).await;
        let (p, c) =
            (resident_mib(producer.pid()).unwrap_or(f64::NAN), resident_mib(consumer.pid()).unwrap_or(f64::NAN));
        producer_mib.push(p);
        consumer_mib.push(c);
        let line = format!("| {:.1} | {p:.1} | {c:.1} |", started.elapsed().as_secs_f64() / 60.0);
        println!("soak {line}");
        let _ = writeln!(table, "{line}");
    }
    load.await.expect("load");
    let mut outcome = rig.finish(Instant::now(), vec![producer, consumer]).await;
    for (name, samples) in [("producer", &producer_mib), ("consumer", &consumer_mib)] {
        if !is_flat(samples) {
            outcome.passed = false;
            outcome.details.push_str(&format!("\n{name} memory grew: {samples:?}"));
        }
    }
    (outcome, table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_memory_is_flat_and_growth_is_not() {
        assert!(is_flat(&[10.0, 40.0, 50.0, 51.0, 50.0, 52.0, 50.0, 51.0]));
        assert!(!is_flat(&[10.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]));
    }
}
