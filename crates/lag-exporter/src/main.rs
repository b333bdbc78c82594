//! `orderstream-lag-exporter`: the command line over this crate. Parsing,
//! validation and error reporting only; the work is in the library.

use anyhow::Context;
use clap::Parser;
use orderstream_lag_exporter::{run, Config};

fn main() -> anyhow::Result<()> {
    // Before the runtime starts its threads: the aliases change the environment.
    let deprecated = connect::env::apply_aliases();
    main_with(deprecated)
}

#[tokio::main]
async fn main_with(deprecated: Vec<connect::env::Alias>) -> anyhow::Result<()> {
    telemetry::init_logging();
    connect::env::warn_deprecated(&deprecated);
    let config = Config::parse();
    config.validate().context("invalid configuration")?;
    run(config, telemetry::shutdown_signal()).await
}
