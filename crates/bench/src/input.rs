//! The bench's input: one generated export, and the mean size of its
//! records as Kafka values (what the broker's own benchmark is given).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

use crate::settings::Settings;

/// The generated file.
#[derive(Debug, Clone)]
pub struct Input {
    /// The CSV export.
    pub file: PathBuf,
    /// Its size.
    pub file_bytes: u64,
    /// Mean encoded size of a record's Kafka value.
    pub mean_value_bytes: f64,
}

impl Input {
    /// The record size given to `ProducerPerformance`: the mean, rounded.
    pub fn record_size(&self) -> u64 {
        self.mean_value_bytes.round() as u64
    }
}

/// Seconds between two generated orders: one a minute (the generator's
/// default is one per 30 min) up to 1,000,000 orders, which from 2022-09-01
/// end in 2024; more orders come closer together so that the last is still
/// in 2024, never in the future (which the producer would dead-letter).
fn interval_secs(orders: u64) -> u64 {
    (60 * 1_000_000 / orders.max(1)).clamp(1, 60)
}

/// Generates `settings.orders` orders, [`interval_secs`] apart.
pub fn generate(settings: &Settings) -> anyhow::Result<Input> {
    let file = settings.work_dir().join("orders.csv");
    let status = Command::new(settings.bin_dir().join("orderstream-gen"))
        .args(["--orders", &settings.orders.to_string(), "--seed", &settings.seed.to_string()])
        .args(["--interval", &format!("{}s", interval_secs(settings.orders)), "--output"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .context("run orderstream-gen")?;
    if !status.success() {
        bail!("orderstream-gen failed");
    }
    let file_bytes = std::fs::metadata(&file)?.len();
    let output =
        Command::new(settings.naive_upsert()).arg("encoded-size").arg(&file).output().context("run naive_upsert")?;
    let line = String::from_utf8_lossy(&output.stdout);
    let Some(mean_value_bytes) = key_value(&line, "mean_value_bytes") else {
        bail!("naive_upsert encoded-size printed no mean_value_bytes: {line}");
    };
    Ok(Input { file, file_bytes, mean_value_bytes })
}

/// The number after `key=` in a `name: key=value …` line of the bench's own
/// helper programs.
pub fn key_value(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace().find_map(|pair| pair.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_reads_one_field_of_a_summary_line() {
        let line = "naive: rows=2000 seconds=1.50 rows_per_s=1333.3 mb_per_s=0.06";
        assert_eq!(key_value(line, "rows_per_s"), Some(1333.3));
        assert_eq!(key_value(line, "seconds"), Some(1.5));
        assert_eq!(key_value(line, "missing"), None);
    }
}
