//! The naive baseline: one `INSERT … ON CONFLICT` and one commit per record
//! (`crates/consumer/examples/naive_upsert.rs`), on a sample of the file; the rate
//! extrapolated.

use std::process::Command;

use anyhow::{ensure, Context};

use crate::input::{key_value, Input};
use crate::say;
use crate::services::Services;
use crate::settings::Settings;

/// What the phase measured.
#[derive(Debug, Clone, Copy)]
pub struct NaiveResult {
    /// Rows per second.
    pub rows_per_s: f64,
    /// Megabytes of CSV per second.
    pub mb_per_s: f64,
    /// Seconds the sample took.
    pub seconds: f64,
}

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<NaiveResult> {
    say(format!("phase naive: one upsert + one commit per record, {} rows", settings.naive_rows));
    let admin = services.admin().await?;
    // Two statements: CREATE DATABASE cannot run in the implicit transaction of one.
    admin.batch_execute("DROP DATABASE IF EXISTS bench_naive WITH (FORCE)").await?;
    admin.batch_execute("CREATE DATABASE bench_naive").await?;
    let mut naive = Command::new(settings.naive_upsert());
    naive.arg("upsert").arg(services.database_url("bench_naive")).arg(&input.file).arg(settings.naive_rows.to_string());
    let output = tokio::task::spawn_blocking(move || naive.output()).await?.context("run naive_upsert")?;
    ensure!(output.status.success(), "naive_upsert failed: {}", String::from_utf8_lossy(&output.stderr));
    let line = String::from_utf8_lossy(&output.stdout);
    let field = |key: &str| key_value(&line, key).with_context(|| format!("no {key} in naive_upsert's line: {line}"));
    let result =
        NaiveResult { rows_per_s: field("rows_per_s")?, mb_per_s: field("mb_per_s")?, seconds: field("seconds")? };
    admin.batch_execute("DROP DATABASE bench_naive WITH (FORCE)").await?;
    Ok(result)
}
