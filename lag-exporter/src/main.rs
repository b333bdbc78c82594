//! `orderstream-lag-exporter`: the command line over this crate. Parsing,
//! validation and error reporting only; the work is in the library.

use anyhow::Context;
use clap::Parser;
use orderstream_lag_exporter::{run, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    let config = Config::parse();
    config.validate().context("invalid configuration")?;
    run(config, telemetry::shutdown_signal()).await
}
