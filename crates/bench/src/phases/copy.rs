//! PostgreSQL's limit: `psql \copy` of the generated file into a table
//! shaped like `orders` (primary key included), timed around `psql`.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, ensure, Context};

use crate::input::Input;
use crate::say;
use crate::services::{connect, Services};
use crate::settings::Settings;

/// What the phase measured.
#[derive(Debug, Clone, Copy)]
pub struct CopyResult {
    /// Seconds the `\copy` took.
    pub seconds: f64,
}

/// Runs the phase.
pub async fn run(settings: &Settings, services: &Services, input: &Input) -> anyhow::Result<CopyResult> {
    say(format!("phase copy: \\copy of {} rows into a table shaped like orders", settings.orders));
    let admin = services.admin().await?;
    // Two statements: CREATE DATABASE cannot run in the implicit transaction of one.
    admin.batch_execute("DROP DATABASE IF EXISTS bench_copy WITH (FORCE)").await?;
    admin.batch_execute("CREATE DATABASE bench_copy").await?;
    let url = services.database_url("bench_copy");
    // The schema exactly as the consumer creates it (its migration runner).
    let log = std::fs::File::create(settings.work_dir().join("migrate.log"))?;
    let migrated = Command::new(settings.bin_dir().join("orderstream-consumer"))
        .arg("migrate")
        .env("ORDERSTREAM_DATABASE_URL", &url)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("run orderstream-consumer migrate")?;
    ensure!(migrated.success(), "migrations failed; see {}/migrate.log", settings.work_dir().display());
    let database = connect(&url).await?;
    database
        .batch_execute(
            "CREATE TABLE copy_orders (LIKE orders INCLUDING ALL);
             ALTER TABLE copy_orders ALTER source_file SET DEFAULT 'copy', ALTER source_line SET DEFAULT 0,
               ALTER source_offset SET DEFAULT 0, ALTER read_at SET DEFAULT clock_timestamp();",
        )
        .await?;
    let copy = format!(
        "\\copy copy_orders (id, user_id, completed_at, item_total, shipment_total) FROM '{}' WITH (FORMAT csv, HEADER true)",
        input.file.display()
    );
    let started = Instant::now();
    let output = Command::new("psql").args(["-X", "-q", "-v", "ON_ERROR_STOP=1", &url, "-c", &copy]).output()?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!("\\copy failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    let rows: i64 = database.query_one("SELECT count(*) FROM copy_orders", &[]).await?.get(0);
    ensure!(rows == settings.orders as i64, "COPY loaded {rows} rows, not {}", settings.orders);
    drop(database);
    admin.batch_execute("DROP DATABASE bench_copy WITH (FORCE)").await?;
    Ok(CopyResult { seconds })
}
