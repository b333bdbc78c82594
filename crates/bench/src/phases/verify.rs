//! `orderstream-verify` over the cold load's file once both loads are
//! applied: how long accounting for every line takes, set against `COPY`
//! of the same file (the target: at most 3× its time).

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{ensure, Context};

use crate::pipeline::Pipeline;
use crate::say;
use crate::settings::Settings;

/// Runs `orderstream-verify --json` on `file` (in the pipeline's inbox)
/// and returns its wall time in seconds; every line must be accounted for.
pub fn run(settings: &Settings, pipeline: &Pipeline, file: &str) -> anyhow::Result<f64> {
    say(format!("phase verify: every line of {file} against PostgreSQL"));
    let scenario = &pipeline.scenario;
    let started = Instant::now();
    let output = Command::new(settings.bin_dir().join("orderstream-verify"))
        .env("ORDERSTREAM_DATABASE_URL", &scenario.database_url)
        .env("ORDERSTREAM_KAFKA_BROKERS", &scenario.brokers)
        .env("ORDERSTREAM_TOPIC", &scenario.topic)
        .env("ORDERSTREAM_GROUP", &scenario.group)
        .env("ORDERSTREAM_INBOX", scenario.inbox())
        .env("ORDERSTREAM_STATE_DIR", scenario.state_dir())
        .arg("--json")
        .arg(scenario.inbox().join(file))
        .stdin(Stdio::null())
        .output()
        .context("run orderstream-verify")?;
    let seconds = started.elapsed().as_secs_f64();
    ensure!(
        output.status.success(),
        "orderstream-verify found lines missing or could not verify: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).context("orderstream-verify's JSON")?;
    let lines = report["total"]["lines"].as_u64().unwrap_or(0);
    ensure!(lines == settings.orders, "orderstream-verify accounted for {lines} lines, not {}", settings.orders);
    Ok(seconds)
}
