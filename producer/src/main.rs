use anyhow::Context;
use clap::Parser;
use orderstream_producer::{run, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    // Reads FAILPOINTS in test builds with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
    let config = Config::parse();
    config.validate().map_err(anyhow::Error::msg).context("invalid configuration")?;
    run(config, telemetry::shutdown_signal()).await?;
    Ok(())
}
