//! `orderstream-producer`: the command line over this crate (run, `replay
//! FILE`). Parsing, validation and error reporting only; the work is in the
//! library, where tests can call it.

use anyhow::Context;
use clap::Parser;
use orderstream_producer::config::Command;
use orderstream_producer::{replay, run, Config};

/// See `telemetry::allocator`: glibc's malloc cost a tenth of the CPU.
#[global_allocator]
static ALLOCATOR: telemetry::allocator::Allocator = telemetry::allocator::Allocator;

fn main() -> anyhow::Result<()> {
    telemetry::allocator::tune();
    // Before the runtime starts its threads: the aliases change the environment.
    let deprecated = connect::env::apply_aliases();
    main_with(deprecated)
}

#[tokio::main]
async fn main_with(deprecated: Vec<connect::env::Alias>) -> anyhow::Result<()> {
    telemetry::init_logging();
    connect::env::warn_deprecated(&deprecated);
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
