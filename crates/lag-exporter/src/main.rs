//! `orderstream-lag-exporter`: the command line over this crate. Parsing,
//! validation and error reporting only; the work is in the library.

use anyhow::Context;
use orderstream_lag_exporter::{run, Config};

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: the aliases change the environment.
    let config: Config = telemetry::startup(telemetry::Logging::On).context("invalid configuration")?;
    main_with(config)
}

#[tokio::main]
async fn main_with(config: Config) -> anyhow::Result<()> {
    run(config, telemetry::shutdown_signal()).await
}
