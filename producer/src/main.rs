//! `orderstream-producer`: the command line over this crate (run, `replay
//! FILE`). Parsing, validation and error reporting only; the work is in the
//! library, where tests can call it.

use anyhow::Context;
use clap::Parser;
use orderstream_producer::config::Command;
use orderstream_producer::{replay, run, Config};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init_logging();
    // Reads FAILPOINTS in test builds with the `failpoints` feature; does nothing otherwise.
    let _failpoints = fail::FailScenario::setup();
    let config = Config::parse();
    config.validate().context("invalid configuration")?;
    match config.command.clone() {
        None => run(config, telemetry::shutdown_signal()).await?,
        Some(Command::Replay(args)) => println!("{}", replay::replay(&config, &args).await?),
    }
    Ok(())
}
